/* The image store: blobs (verification, resume, crashes), image records,
 * tags, rmi/prune with container users, leases, concurrent processes,
 * image config parsing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "scratch.h"

#include "husk/store.h"

struct fx {
	void *sc; /* struct scratch, from scratch.h */
	char root[512];
	struct husk_store *s;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	scratch_setup(&f->sc, "husk-store");
	snprintf(f->root, sizeof(f->root), "%s/root",
	         ((struct scratch *)f->sc)->dir);
	struct husk_error e = {0};
	if (husk_store_open(f->root, &f->s, &e) < 0)
		fail_msg("open: %s", e.msg);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	husk_store_close(f->s);
	scratch_teardown(&f->sc);
	free(f);
	return 0;
}

static const char *in_root(const struct fx *f, const char *rel)
{
	static char bufs[4][700];
	static int next;
	char *b = bufs[next++ % 4];
	snprintf(b, sizeof(bufs[0]), "%s/%s", f->root, rel);
	return b;
}

static size_t count_dir(const char *path)
{
	DIR *d = opendir(path);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void digest_of(const char *text, char d[HUSK_DIGEST_MAX])
{
	assert_int_equal(husk_sha256_buf(text, strlen(text), d, NULL), 0);
}

static void must(int rc, const struct husk_error *e)
{
	if (rc < 0)
		fail_msg("rc %d: %s", rc, e->msg);
}

/* ---- blobs ---- */

static void blob_write_commit_and_read(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	const char *text = "hello, blob";
	char d[HUSK_DIGEST_MAX], got[HUSK_DIGEST_MAX];
	digest_of(text, d);
	struct husk_blob_writer *w;
	must(husk_store_blob_begin(f->s, d, 11, 0, &w, &e), &e);
	assert_int_equal(count_dir(in_root(f, "tmp")), 1);
	must(husk_blob_writer_write(w, text, 5, &e), &e);
	assert_false(husk_store_blob_has(f->s, d));
	must(husk_blob_writer_write(w, text + 5, 6, &e), &e);
	must(husk_blob_writer_commit(w, got, &e), &e);
	assert_string_equal(got, d);
	assert_true(husk_store_blob_has(f->s, d));
	assert_int_equal(count_dir(in_root(f, "tmp")), 0);

	char path[600];
	must(husk_store_blob_path(f->s, d, path, sizeof(path), &e), &e);
	char want[700];
	snprintf(want, sizeof(want), "%s/blobs/sha256/%s", f->root,
	         husk_digest_hex(d));
	assert_string_equal(path, want);
	int fd;
	must(husk_store_blob_open(f->s, d, 11, true, &fd, &e), &e);
	char buf[32] = {0};
	assert_int_equal(read(fd, buf, sizeof(buf)), 11);
	assert_string_equal(buf, text);
	close(fd);
	char *data;
	size_t len;
	must(husk_store_blob_read(f->s, d, 100, &data, &len, &e), &e);
	assert_int_equal(len, 11);
	assert_string_equal(data, text);
	free(data);
	assert_int_equal(husk_store_blob_read(f->s, d, 5, &data, &len, &e),
	                 -EFBIG);
	assert_int_equal(husk_store_blob_open(f->s, d, 12, false, &fd, &e),
	                 -EBADMSG);
	assert_int_equal(husk_store_check(f->s, &e), 0);
}

static void blob_mismatch_leaves_nothing(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	char want[HUSK_DIGEST_MAX], have[HUSK_DIGEST_MAX];
	digest_of("expected", want);
	digest_of("tampered", have);
	struct husk_blob_writer *w;
	must(husk_store_blob_begin(f->s, want, 8, 0, &w, &e), &e);
	must(husk_blob_writer_write(w, "tampered", 8, &e), &e);
	assert_int_equal(husk_blob_writer_commit(w, NULL, &e), -EBADMSG);
	char msg[300];
	snprintf(msg, sizeof(msg), "digest mismatch: expected %s, got %s", want,
	         have);
	assert_string_equal(e.msg, msg);
	assert_false(husk_store_blob_has(f->s, want));
	assert_false(husk_store_blob_has(f->s, have));
	assert_int_equal(count_dir(in_root(f, "tmp")), 0);
	assert_int_equal(count_dir(in_root(f, "blobs/sha256")), 0);
}

static void blob_size_is_enforced(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	char d[HUSK_DIGEST_MAX];
	digest_of("abc", d);
	struct husk_blob_writer *w;
	must(husk_store_blob_begin(f->s, d, 3, 0, &w, &e), &e);
	must(husk_blob_writer_write(w, "ab", 2, &e), &e);
	/* Refused before a byte is written. */
	assert_int_equal(husk_blob_writer_write(w, "cd", 2, &e), -EFBIG);
	assert_non_null(strstr(e.msg, "more data than the expected 3 bytes"));
	assert_int_equal(husk_blob_writer_offset(w), 2);
	husk_blob_writer_abort(w);
	assert_int_equal(count_dir(in_root(f, "tmp")), 0);

	/* Short: incomplete, nothing published. */
	must(husk_store_blob_begin(f->s, d, 3, 0, &w, &e), &e);
	must(husk_blob_writer_write(w, "ab", 2, &e), &e);
	assert_int_equal(husk_blob_writer_commit(w, NULL, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "incomplete: 2 of 3 bytes"));
	assert_false(husk_store_blob_has(f->s, d));
	assert_int_equal(count_dir(in_root(f, "tmp")), 0);

	/* Bad arguments. */
	assert_int_equal(husk_store_blob_begin(f->s, "sha256:zz", 3, 0, &w, &e),
	                 -EINVAL);
	assert_int_equal(
	    husk_store_blob_begin(f->s, NULL, 3, HUSK_BLOB_RESUMABLE, &w, &e),
	    -EINVAL);
	assert_int_equal(husk_store_blob_begin(f->s, d, -5, 0, &w, &e),
	                 -EINVAL);
}

static void blob_without_known_digest(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	char d[HUSK_DIGEST_MAX], want[HUSK_DIGEST_MAX];
	struct husk_blob_writer *w;
	must(husk_store_blob_begin(f->s, NULL, HUSK_SIZE_UNKNOWN, 0, &w, &e),
	     &e);
	must(husk_blob_writer_write(w, "free size", 9, &e), &e);
	must(husk_blob_writer_commit(w, d, &e), &e);
	digest_of("free size", want);
	assert_string_equal(d, want);
	assert_true(husk_store_blob_has(f->s, d));
	/* The same content again is no error. */
	must(husk_store_blob_put(f->s, "free size", 9, d, &e), &e);
	assert_string_equal(d, want);
}

static void blob_resumes_a_partial(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	const char *text = "0123456789";
	char d[HUSK_DIGEST_MAX];
	digest_of(text, d);
	uint64_t off = 99;
	must(husk_store_blob_partial(f->s, d, &off, &e), &e);
	assert_int_equal(off, 0);
	struct husk_blob_writer *w, *w2;
	must(husk_store_blob_begin(f->s, d, 10, HUSK_BLOB_RESUMABLE, &w, &e),
	     &e);
	must(husk_blob_writer_write(w, text, 4, &e), &e);
	/* A second writer of the same partial is refused. */
	assert_int_equal(
	    husk_store_blob_begin(f->s, d, 10, HUSK_BLOB_RESUMABLE, &w2, &e),
	    -EBUSY);
	husk_blob_writer_abort(w);
	must(husk_store_blob_partial(f->s, d, &off, &e), &e);
	assert_int_equal(off, 4);
	assert_false(husk_store_blob_has(f->s, d));

	must(husk_store_blob_begin(f->s, d, 10, HUSK_BLOB_RESUMABLE, &w, &e),
	     &e);
	assert_int_equal(husk_blob_writer_offset(w), 4);
	must(husk_blob_writer_write(w, text + 4, 3, &e), &e);
	/* Short commit keeps the partial to resume. */
	assert_int_equal(husk_blob_writer_commit(w, NULL, &e), -EBADMSG);
	must(husk_store_blob_partial(f->s, d, &off, &e), &e);
	assert_int_equal(off, 7);

	must(husk_store_blob_begin(f->s, d, 10, HUSK_BLOB_RESUMABLE, &w, &e),
	     &e);
	must(husk_blob_writer_write(w, text + 7, 3, &e), &e);
	must(husk_blob_writer_commit(w, NULL, &e), &e);
	assert_true(husk_store_blob_has(f->s, d));
	assert_int_equal(count_dir(in_root(f, "partial")), 0);
	assert_int_equal(husk_store_check(f->s, &e), 0);
}

static void blob_bad_partial_is_discarded(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	char d[HUSK_DIGEST_MAX];
	digest_of("good data", d);
	/* A partial that is not a prefix of the blob. */
	char path[700];
	snprintf(path, sizeof(path), "%s/partial/%s", f->root,
	         husk_digest_hex(d));
	write_file(path, "bad ", 0600);
	struct husk_blob_writer *w;
	must(husk_store_blob_begin(f->s, d, 9, HUSK_BLOB_RESUMABLE, &w, &e),
	     &e);
	assert_int_equal(husk_blob_writer_offset(w), 4);
	must(husk_blob_writer_write(w, "data ", 5, &e), &e);
	assert_int_equal(husk_blob_writer_commit(w, NULL, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "digest mismatch"));
	assert_int_equal(count_dir(in_root(f, "partial")), 0);
	/* Longer than the blob: restarted from zero. */
	write_file(path, "much too long for it", 0600);
	must(husk_store_blob_begin(f->s, d, 9, HUSK_BLOB_RESUMABLE, &w, &e),
	     &e);
	assert_int_equal(husk_blob_writer_offset(w), 0);
	must(husk_blob_writer_write(w, "good data", 9, &e), &e);
	must(husk_blob_writer_commit(w, NULL, &e), &e);
}

/* A child that starts writing half a blob and then dies: by _exit, or
 * by SIGKILL while the parent watches. */
static pid_t half_writer(const char *root, const char *digest, bool resumable,
                         bool wait_for_kill, int ready_fd)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid > 0)
		return pid;
	/* Never outlive a parent whose assertion failed. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	struct husk_store *s;
	struct husk_blob_writer *w;
	if (husk_store_open(root, &s, NULL) < 0 ||
	    husk_store_blob_begin(s, digest, 10,
	                          resumable ? HUSK_BLOB_RESUMABLE : 0, &w,
	                          NULL) < 0 ||
	    husk_blob_writer_write(w, "01234", 5, NULL) < 0)
		_exit(1);
	if (!wait_for_kill)
		_exit(0); /* no abort, no close: as a crash would */
	if (write(ready_fd, "r", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

static void crash_leaves_no_blob_and_cleanup_works(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	char d[HUSK_DIGEST_MAX];
	digest_of("0123456789", d);
	int status;

	pid_t pid = half_writer(f->root, d, false, false, -1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(count_dir(in_root(f, "tmp")), 1);
	assert_false(husk_store_blob_has(f->s, d));

	/* A live writer's file survives another process's cleanup. */
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid = half_writer(f->root, d, false, true, p[1]);
	char c;
	assert_int_equal(read(p[0], &c, 1), 1);
	/* Its own open removed the first child's leftover. */
	assert_int_equal(count_dir(in_root(f, "tmp")), 1);
	struct husk_store *again;
	must(husk_store_open(f->root, &again, &e), &e);
	assert_int_equal(count_dir(in_root(f, "tmp")), 1);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	husk_store_close(again);
	must(husk_store_open(f->root, &again, &e), &e);
	assert_int_equal(count_dir(in_root(f, "tmp")), 0);
	assert_false(husk_store_blob_has(again, d));

	/* A resumable writer killed mid-way leaves a partial to resume. */
	pid = half_writer(f->root, d, true, true, p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	struct husk_blob_writer *w;
	assert_int_equal(
	    husk_store_blob_begin(again, d, 10, HUSK_BLOB_RESUMABLE, &w, &e),
	    -EBUSY);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(p[0]);
	close(p[1]);
	assert_false(husk_store_blob_has(again, d));
	uint64_t off;
	must(husk_store_blob_partial(again, d, &off, &e), &e);
	assert_int_equal(off, 5);
	must(husk_store_blob_begin(again, d, 10, HUSK_BLOB_RESUMABLE, &w, &e),
	     &e);
	assert_int_equal(husk_blob_writer_offset(w), 5);
	must(husk_blob_writer_write(w, "56789", 5, &e), &e);
	must(husk_blob_writer_commit(w, NULL, &e), &e);
	assert_true(husk_store_blob_has(again, d));
	must(husk_store_check(again, &e), &e);
	husk_store_close(again);
}

static void corrupt_blob_is_detected(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	char d[HUSK_DIGEST_MAX];
	must(husk_store_blob_put(f->s, "pristine", 8, d, &e), &e);
	char path[600];
	must(husk_store_blob_path(f->s, d, path, sizeof(path), &e), &e);
	write_file(path, "tainted!", 0444);
	int fd;
	must(husk_store_blob_open(f->s, d, 8, false, &fd, &e), &e);
	close(fd);
	assert_int_equal(husk_store_blob_open(f->s, d, 8, true, &fd, &e),
	                 -EBADMSG);
	assert_non_null(strstr(e.msg, "is corrupt"));
	assert_int_equal(husk_store_check(f->s, &e), -EBADMSG);
	assert_int_equal(
	    husk_store_blob_open(f->s, "sha256:00", 8, true, &fd, &e), -EINVAL);
	char absent[HUSK_DIGEST_MAX];
	digest_of("absent", absent);
	assert_int_equal(husk_store_blob_open(f->s, absent, 8, true, &fd, &e),
	                 -ENOENT);
}

/* ---- images ---- */

struct image {
	char id[HUSK_DIGEST_MAX];
	char manifest[HUSK_DIGEST_MAX];
	struct husk_layer_desc layers[4];
	size_t n;
};

/* Stores layers with the given contents, a config naming them and
 * (with_manifest) a manifest blob, and puts the image as name (NULL:
 * untagged). A seed makes configs, hence ids, differ. */
static void make_image_in(struct husk_store *s, const char *name,
                          const char *seed, const char *const *contents,
                          size_t n, bool with_manifest, struct image *img)
{
	struct husk_error e = {0};
	memset(img, 0, sizeof(*img));
	char cfg[2048];
	int len = snprintf(cfg, sizeof(cfg),
	                   "{\"architecture\":\"amd64\",\"os\":\"linux\","
	                   "\"created\":\"%s\",\"config\":{\"Cmd\":[\"sh\"]},"
	                   "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[",
	                   seed);
	for (size_t i = 0; i < n; i++) {
		struct husk_layer_desc *l = &img->layers[i];
		must(husk_store_blob_put(s, contents[i], strlen(contents[i]),
		                         l->digest, &e),
		     &e);
		l->size = strlen(contents[i]);
		snprintf(l->media_type, sizeof(l->media_type),
		         "application/vnd.oci.image.layer.v1.tar");
		len += snprintf(cfg + len, sizeof(cfg) - (size_t)len,
		                "%s\"%s\"", i ? "," : "", l->digest);
	}
	snprintf(cfg + len, sizeof(cfg) - (size_t)len, "]}}");
	must(husk_store_blob_put(s, cfg, strlen(cfg), img->id, &e), &e);
	if (with_manifest) {
		char m[256];
		snprintf(m, sizeof(m), "{\"manifest-of\":\"%s\"}", img->id);
		must(husk_store_blob_put(s, m, strlen(m), img->manifest, &e),
		     &e);
	}
	img->n = n;
	struct husk_image_spec spec = {
	    .config_digest = img->id,
	    .manifest_digest = img->manifest,
	    .layers = img->layers,
	    .n_layers = n,
	};
	struct husk_ref ref;
	if (name)
		must(husk_ref_parse(name, &ref, &e), &e);
	must(husk_store_image_put(s, name ? &ref : NULL, &spec, NULL, &e), &e);
}

static void make_image(struct fx *f, const char *name, const char *seed,
                       struct image *img)
{
	char a[64], b[64];
	snprintf(a, sizeof(a), "%s layer 0", seed);
	snprintf(b, sizeof(b), "%s layer 1", seed);
	const char *contents[] = {a, b};
	make_image_in(f->s, name, seed, contents, 2, true, img);
}

static void get_resolves(struct fx *f, const char *what, const char *id)
{
	struct husk_image img;
	struct husk_error e = {0};
	int rc = husk_store_image_get(f->s, what, &img, &e);
	if (rc < 0)
		fail_msg("get %s: %s", what, e.msg);
	assert_string_equal(img.id, id);
	husk_image_free(&img);
}

static void image_put_and_get(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	struct image a;
	make_image(f, "busybox", "a", &a);
	struct husk_image img;
	must(husk_store_image_get(f->s, "busybox", &img, &e), &e);
	assert_string_equal(img.id, a.id);
	assert_string_equal(img.config_digest, a.id);
	assert_string_equal(img.manifest_digest, a.manifest);
	assert_string_equal(img.os, "linux");
	assert_string_equal(img.architecture, "amd64");
	assert_string_equal(img.created, "a");
	assert_int_equal(img.n_layers, 2);
	assert_string_equal(img.layers[1].digest, a.layers[1].digest);
	/* diff_ids come from the config (here equal to the digests). */
	assert_string_equal(img.layers[0].diff_id, a.layers[0].digest);
	assert_int_equal(img.n_refs, 2);
	char byd[300];
	snprintf(byd, sizeof(byd), "docker.io/library/busybox@%s", a.manifest);
	assert_string_equal(img.refs[0], "docker.io/library/busybox:latest");
	assert_string_equal(img.refs[1], byd);
	assert_true(img.stored_at > 0);
	assert_true(img.size > 20);
	husk_image_free(&img);

	get_resolves(f, "busybox:latest", a.id);
	get_resolves(f, "docker.io/library/busybox:latest", a.id);
	get_resolves(f, "index.docker.io/library/busybox", a.id);
	get_resolves(f, a.id, a.id);
	get_resolves(f, husk_digest_hex(a.id), a.id);
	char prefix[32];
	snprintf(prefix, sizeof(prefix), "%.12s", husk_digest_hex(a.id));
	get_resolves(f, prefix, a.id);
	snprintf(prefix, sizeof(prefix), "sha256:%.5s", husk_digest_hex(a.id));
	get_resolves(f, prefix, a.id);
	snprintf(byd, sizeof(byd), "busybox@%s", a.manifest);
	get_resolves(f, byd, a.id);

	assert_int_equal(husk_store_image_get(f->s, "busybox:other", &img, &e),
	                 -ENOENT);
	assert_string_equal(e.msg, "no such image: busybox:other");
	assert_int_equal(husk_store_image_get(f->s, "Bad", &img, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "lowercase"));
	assert_int_equal(husk_store_image_get(f->s, "sha256:xyz", &img, &e),
	                 -EINVAL);
	assert_int_equal(husk_store_image_get(f->s, "", &img, &e), -EINVAL);
	must(husk_store_check(f->s, &e), &e);
}

struct events {
	char log[2048];
};

static void on_rmi(enum husk_rmi_event ev, const char *what, void *ctx)
{
	struct events *v = ctx;
	size_t n = strlen(v->log);
	snprintf(v->log + n, sizeof(v->log) - n, "%s %.19s\n",
	         ev == HUSK_RMI_UNTAGGED ? "untagged" : "deleted", what);
}

static void put_by_tag_and_digest(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	/* Pulled as name:tag@digest of an index: that digest, the platform
	 * manifest's digest and the tag all find the image. */
	char index[HUSK_DIGEST_MAX], name[300];
	digest_of("an index", index);
	snprintf(name, sizeof(name), "localhost:5000/app:v1@%s", index);
	struct image a;
	make_image(f, name, "a", &a);
	get_resolves(f, "localhost:5000/app:v1", a.id);
	get_resolves(f, name, a.id);
	snprintf(name, sizeof(name), "localhost:5000/app@%s", index);
	get_resolves(f, name, a.id);
	snprintf(name, sizeof(name), "localhost:5000/app:other@%s", a.manifest);
	get_resolves(f, name, a.id);
	struct husk_image img;
	must(husk_store_image_get(f->s, a.id, &img, &e), &e);
	assert_int_equal(img.n_refs, 3);
	husk_image_free(&img);
	/* Removing the tag takes the repository's digests along. */
	struct events v = {{0}};
	must(husk_store_image_remove(f->s, "localhost:5000/app:v1", false,
	                             on_rmi, &v, &e),
	     &e);
	assert_non_null(strstr(v.log, "deleted "));
	assert_int_equal(count_dir(in_root(f, "images")), 0);
}

static void ambiguous_prefix_is_refused(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	struct image imgs[17];
	/* 17 ids: two share their first hex digit. */
	for (int i = 0; i < 17; i++) {
		char seed[16];
		snprintf(seed, sizeof(seed), "s%d", i);
		const char *contents[] = {"shared layer"};
		make_image_in(f->s, NULL, seed, contents, 1, false, &imgs[i]);
	}
	for (int i = 0; i < 17; i++)
		for (int j = i + 1; j < 17; j++) {
			const char *a = husk_digest_hex(imgs[i].id);
			if (a[0] != husk_digest_hex(imgs[j].id)[0])
				continue;
			char p[2] = {a[0], 0};
			struct husk_image img;
			assert_int_equal(
			    husk_store_image_get(f->s, p, &img, &e), -EINVAL);
			assert_non_null(strstr(e.msg, "ambiguous"));
			return;
		}
	fail_msg("no two ids share a first digit");
}

static void put_refuses_bad_images(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	struct husk_ref ref;
	must(husk_ref_parse("app", &ref, &e), &e);
	char cfg[HUSK_DIGEST_MAX], layer[HUSK_DIGEST_MAX];
	digest_of("layer", layer);
	char text[256];
	snprintf(text, sizeof(text), "{\"rootfs\":{\"diff_ids\":[\"%s\"]}}",
	         layer);
	must(husk_store_blob_put(f->s, text, strlen(text), cfg, &e), &e);
	struct husk_layer_desc l = {.size = 5};
	memcpy(l.digest, layer, sizeof(l.digest));
	struct husk_image_spec spec = {
	    .config_digest = cfg, .layers = &l, .n_layers = 1};
	/* The layer blob is missing. */
	assert_int_equal(husk_store_image_put(f->s, &ref, &spec, NULL, &e),
	                 -ENOENT);
	assert_non_null(strstr(e.msg, "layer blob"));
	/* Wrong size. */
	must(husk_store_blob_put(f->s, "layer", 5, layer, &e), &e);
	l.size = 6;
	assert_int_equal(husk_store_image_put(f->s, &ref, &spec, NULL, &e),
	                 -EBADMSG);
	/* diff_ids and layers disagree. */
	spec.n_layers = 0;
	assert_int_equal(husk_store_image_put(f->s, &ref, &spec, NULL, &e),
	                 -EINVAL);
	assert_non_null(strstr(e.msg, "1 diff_ids for 0 layers"));
	/* Config missing or malformed. */
	char absent[HUSK_DIGEST_MAX];
	digest_of("absent", absent);
	spec.config_digest = absent;
	assert_int_equal(husk_store_image_put(f->s, &ref, &spec, NULL, &e),
	                 -ENOENT);
	spec.config_digest = "sha256:nope";
	assert_int_equal(husk_store_image_put(f->s, &ref, &spec, NULL, &e),
	                 -EINVAL);
	must(husk_store_blob_put(f->s, "[1]", 3, cfg, &e), &e);
	spec.config_digest = cfg;
	assert_int_equal(husk_store_image_put(f->s, &ref, &spec, NULL, &e),
	                 -EINVAL);
	/* Nothing was recorded. */
	assert_int_equal(count_dir(in_root(f, "images")), 0);
	struct husk_image img;
	assert_int_equal(husk_store_image_get(f->s, "app", &img, &e), -ENOENT);
}

static void retag_moves_the_tag(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	struct image a, b;
	make_image(f, "app:v1", "a", &a);
	make_image(f, "app:v1", "b", &b);
	get_resolves(f, "app:v1", b.id);
	struct husk_image img;
	must(husk_store_image_get(f->s, a.id, &img, &e), &e);
	/* a keeps only its digest reference. */
	assert_int_equal(img.n_refs, 1);
	assert_non_null(strstr(img.refs[0], "@sha256:"));
	husk_image_free(&img);
	struct husk_ref ref;
	must(husk_ref_parse("app:old", &ref, &e), &e);
	must(husk_store_image_tag(f->s, a.id, &ref, &e), &e);
	get_resolves(f, "app:old", a.id);
	must(husk_ref_parse("other/name:x", &ref, &e), &e);
	must(husk_store_image_tag(f->s, "app:v1", &ref, &e), &e);
	get_resolves(f, "other/name:x", b.id);
	assert_int_equal(husk_store_image_tag(f->s, "nope", &ref, &e), -ENOENT);
	char bydigest[300];
	snprintf(bydigest, sizeof(bydigest), "x@%s", a.id);
	must(husk_ref_parse(bydigest, &ref, &e), &e);
	assert_int_equal(husk_store_image_tag(f->s, a.id, &ref, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "digest"));
	must(husk_store_check(f->s, &e), &e);
}

struct listed {
	size_t n;
	char ids[8][HUSK_DIGEST_MAX];
};

static int collect(const struct husk_image *img, void *ctx)
{
	struct listed *l = ctx;
	memcpy(l->ids[l->n++], img->id, HUSK_DIGEST_MAX);
	return 0;
}

static int stop_early(const struct husk_image *img, void *ctx)
{
	return 42;
}

/* Rewrites the stored_at of id's record, as if stored at t. */
static void set_stored_at(struct fx *f, const char *id, int t)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/images/%s.json", f->root,
	         husk_digest_hex(id));
	FILE *in = fopen(path, "r");
	assert_non_null(in);
	char text[8192], out[8300];
	size_t n = fread(text, 1, sizeof(text) - 1, in);
	fclose(in);
	text[n] = '\0';
	char *field = strstr(text, "\"stored_at\"");
	assert_non_null(field);
	char *num = strpbrk(field, "0123456789");
	char *after = num + strspn(num, "0123456789");
	snprintf(out, sizeof(out), "%.*s%d%s", (int)(num - text), text, t,
	         after);
	write_file(path, out, 0644);
}

static void list_is_newest_first(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	struct listed l = {0};
	must(husk_store_image_list(f->s, collect, &l, &e), &e);
	assert_int_equal(l.n, 0);
	struct image a, b;
	make_image(f, "a", "a", &a);
	make_image(f, "b", "b", &b);
	set_stored_at(f, a.id, 1);
	must(husk_store_image_list(f->s, collect, &l, &e), &e);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.ids[0], b.id);
	assert_string_equal(l.ids[1], a.id);
	set_stored_at(f, b.id, 0);
	l.n = 0;
	must(husk_store_image_list(f->s, collect, &l, &e), &e);
	assert_string_equal(l.ids[0], a.id);
	assert_int_equal(husk_store_image_list(f->s, stop_early, NULL, &e), 42);
	must(husk_store_check(f->s, &e), &e);
}

static void rmi_untags_then_deletes_and_collects(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	struct image a, b;
	const char *ca[] = {"shared", "only a"};
	const char *cb[] = {"shared", "only b"};
	make_image_in(f->s, "app:1", "a", ca, 2, false, &a);
	make_image_in(f->s, "app:2", "b", cb, 2, false, &b);
	struct husk_ref ref;
	must(husk_ref_parse("app:also", &ref, &e), &e);
	must(husk_store_image_tag(f->s, "app:1", &ref, &e), &e);
	size_t blobs = count_dir(in_root(f, "blobs/sha256"));
	assert_int_equal(blobs, 5); /* shared, only a, only b, 2 configs */

	struct events v = {{0}};
	must(husk_store_image_remove(f->s, "app:1", false, on_rmi, &v, &e), &e);
	assert_string_equal(v.log, "untagged app:1\n");
	get_resolves(f, "app:also", a.id);
	v.log[0] = '\0';
	must(husk_store_image_remove(f->s, "app:also", false, on_rmi, &v, &e),
	     &e);
	char want[200];
	snprintf(want, sizeof(want), "untagged app:also\ndeleted %.19s\n",
	         a.id);
	assert_string_equal(v.log, want);
	/* a's config and own layer are gone, the shared layer stays. */
	assert_int_equal(count_dir(in_root(f, "blobs/sha256")), 3);
	assert_true(husk_store_blob_has(f->s, a.layers[0].digest));
	assert_false(husk_store_blob_has(f->s, a.layers[1].digest));
	assert_false(husk_store_blob_has(f->s, a.id));
	assert_int_equal(
	    husk_store_image_remove(f->s, "app:1", false, NULL, NULL, &e),
	    -ENOENT);
	must(husk_store_check(f->s, &e), &e);
}

static void rmi_of_tag_takes_its_digests(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	struct image a;
	make_image(f, "web:1", "a", &a);
	struct events v = {{0}};
	must(husk_store_image_remove(f->s, "web:1", false, on_rmi, &v, &e), &e);
	/* on_rmi cuts names at 19 characters. */
	const char *want = "untagged web:1\nuntagged web@sha256:";
	assert_int_equal(strncmp(v.log, want, strlen(want)), 0);
	assert_non_null(strstr(v.log, "deleted sha256:"));
	assert_int_equal(count_dir(in_root(f, "images")), 0);
	assert_int_equal(count_dir(in_root(f, "blobs/sha256")), 0);
}

static void rmi_by_id_across_repositories(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	struct image a;
	make_image(f, "one:1", "a", &a);
	struct husk_ref ref;
	must(husk_ref_parse("two:1", &ref, &e), &e);
	must(husk_store_image_tag(f->s, a.id, &ref, &e), &e);
	assert_int_equal(husk_store_image_remove(f->s, husk_digest_hex(a.id),
	                                         false, NULL, NULL, &e),
	                 -EBUSY);
	assert_non_null(strstr(e.msg, "referenced in multiple repositories"));
	get_resolves(f, "one:1", a.id);
	struct events v = {{0}};
	must(husk_store_image_remove(f->s, a.id, true, on_rmi, &v, &e), &e);
	assert_non_null(strstr(v.log, "untagged one:1\n"));
	assert_non_null(strstr(v.log, "untagged two:1\n"));
	assert_non_null(strstr(v.log, "deleted "));
	assert_int_equal(count_dir(in_root(f, "images")), 0);
}

static void images_in_use_are_kept(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	struct image a;
	const char *ca[] = {"in use"};
	make_image_in(f->s, "svc", "a", ca, 1, false, &a);
	must(husk_store_image_ref(f->s, a.id, "ctr1", &e), &e);
	must(husk_store_image_ref(f->s, a.id, "ctr1", &e), &e); /* again */
	assert_int_equal(
	    husk_store_image_remove(f->s, "svc", false, NULL, NULL, &e),
	    -EBUSY);
	assert_non_null(strstr(e.msg, "being used by container ctr1"));
	assert_int_equal(
	    husk_store_image_remove(f->s, a.id, false, NULL, NULL, &e), -EBUSY);
	assert_non_null(strstr(e.msg, "being used by container ctr1"));
	get_resolves(f, "svc", a.id);
	struct husk_image img;
	must(husk_store_image_get(f->s, "svc", &img, &e), &e);
	assert_int_equal(img.n_users, 1);
	husk_image_free(&img);

	/* Forced: untagged only; prune keeps it while it is used. */
	struct events v = {{0}};
	must(husk_store_image_remove(f->s, "svc", true, on_rmi, &v, &e), &e);
	assert_string_equal(v.log, "untagged svc:latest\n");
	get_resolves(f, a.id, a.id);
	struct husk_prune_result res;
	must(husk_store_prune(f->s, NULL, NULL, &res, &e), &e);
	assert_int_equal(res.images_deleted, 0);
	assert_true(husk_store_blob_has(f->s, a.layers[0].digest));
	must(husk_store_check(f->s, &e), &e);

	must(husk_store_image_unref(f->s, a.id, "ctr1", &e), &e);
	must(husk_store_image_unref(f->s, a.id, "ctr1", &e), &e);
	must(husk_store_prune(f->s, NULL, NULL, &res, &e), &e);
	assert_int_equal(res.images_deleted, 1);
	assert_int_equal(res.blobs_deleted, 2);
	assert_true(res.bytes_freed > a.layers[0].size); /* and config */
	assert_int_equal(count_dir(in_root(f, "refs")), 0);

	assert_int_equal(husk_store_image_ref(f->s, a.id, "ctr2", &e), -ENOENT);
	assert_int_equal(husk_store_image_ref(f->s, a.id, "../x", &e), -EINVAL);
	assert_int_equal(husk_store_image_ref(f->s, a.id, "..", &e), -EINVAL);
	assert_int_equal(husk_store_image_ref(f->s, a.id, "", &e), -EINVAL);
	assert_int_equal(husk_store_image_ref(f->s, "abc", "c", &e), -EINVAL);
}

static void prune_keeps_what_is_referenced_or_held(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	struct image a, b;
	make_image(f, "keep", "a", &a);
	make_image(f, NULL, "b", &b); /* untagged: pruned */
	char loose[HUSK_DIGEST_MAX], held[HUSK_DIGEST_MAX];

	/* A blob written by a handle that is gone: garbage. */
	struct husk_store *other;
	must(husk_store_open(f->root, &other, &e), &e);
	must(husk_store_blob_put(other, "loose", 5, loose, &e), &e);
	husk_store_close(other);
	/* Blobs written or held by a live handle: kept. */
	must(husk_store_open(f->root, &other, &e), &e);
	/* A hold given up again protects nothing. */
	assert_int_equal(husk_store_blob_hold(other, loose, &e), 1);
	must(husk_store_release(other, &e), &e);
	must(husk_store_blob_put(other, "held", 4, held, &e), &e);
	struct husk_store *third;
	char claimed[HUSK_DIGEST_MAX];
	must(husk_store_open(f->root, &third, &e), &e);
	must(husk_store_blob_put(third, "claimed", 7, claimed, &e), &e);
	husk_store_close(third);
	assert_int_equal(husk_store_blob_hold(other, claimed, &e), 1);
	char absent[HUSK_DIGEST_MAX];
	digest_of("absent", absent);
	assert_int_equal(husk_store_blob_hold(other, absent, &e), 0);

	/* An unlocked partial goes, a stale tmp file too. */
	write_file(in_root(f, "partial/0000"), "x", 0600);

	struct events v = {{0}};
	struct husk_prune_result res;
	must(husk_store_prune(f->s, on_rmi, &v, &res, &e), &e);
	assert_int_equal(res.images_deleted, 1);
	assert_non_null(strstr(v.log, "deleted "));
	assert_true(husk_store_blob_has(f->s, held));
	assert_true(husk_store_blob_has(f->s, claimed));
	assert_false(husk_store_blob_has(f->s, loose));
	assert_false(husk_store_blob_has(f->s, b.id));
	assert_false(husk_store_blob_has(f->s, b.layers[0].digest));
	assert_false(husk_store_blob_has(f->s, b.manifest));
	assert_true(husk_store_blob_has(f->s, a.id));
	assert_true(husk_store_blob_has(f->s, a.manifest));
	assert_true(husk_store_blob_has(f->s, a.layers[1].digest));
	assert_int_equal(count_dir(in_root(f, "partial")), 0);

	/* Once the handle is closed its blobs are garbage too. */
	husk_store_close(other);
	must(husk_store_prune(f->s, NULL, NULL, &res, &e), &e);
	assert_int_equal(res.blobs_deleted, 2);
	assert_false(husk_store_blob_has(f->s, held));
	assert_int_equal(count_dir(in_root(f, "leases")), 0);
	must(husk_store_check(f->s, &e), &e);
}

static void put_releases_holds(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	struct husk_store *other;
	must(husk_store_open(f->root, &other, &e), &e);
	struct image a;
	make_image_in(other, NULL, "a", (const char *[]){"l0"}, 1, false, &a);
	char extra[HUSK_DIGEST_MAX];
	must(husk_store_blob_put(other, "extra", 5, extra, &e), &e);
	/* The put image's blobs left the lease; the extra blob did not. */
	struct husk_ref ref;
	must(husk_ref_parse("a", &ref, &e), &e);
	must(husk_store_image_tag(f->s, a.id, &ref, &e), &e);
	must(husk_store_image_remove(f->s, "a", false, NULL, NULL, &e), &e);
	assert_false(husk_store_blob_has(f->s, a.layers[0].digest));
	assert_true(husk_store_blob_has(f->s, extra));
	husk_store_close(other);
}

static void crashed_holder_lease_is_dropped(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct husk_store *s;
		if (husk_store_open(f->root, &s, NULL) < 0 ||
		    husk_store_blob_put(s, "orphan", 6, NULL, NULL) < 0)
			_exit(1);
		_exit(0); /* dies holding a lease */
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(count_dir(in_root(f, "leases")), 1);
	struct husk_prune_result res;
	must(husk_store_prune(f->s, NULL, NULL, &res, &e), &e);
	assert_int_equal(res.blobs_deleted, 1);
	assert_int_equal(count_dir(in_root(f, "leases")), 0);
}

static void corrupt_metadata_is_reported(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	struct image a;
	make_image(f, "app", "a", &a);
	char path[700];
	snprintf(path, sizeof(path), "%s/images/%s.json", f->root,
	         husk_digest_hex(a.id));
	write_file(path, "{not json", 0644);
	assert_int_equal(husk_store_check(f->s, &e), -EUCLEAN);
	assert_non_null(strstr(e.msg, "corrupt"));
	/* GC refuses to guess what a broken record needed. */
	assert_int_equal(husk_store_prune(f->s, NULL, NULL, NULL, &e),
	                 -EUCLEAN);
	assert_non_null(strstr(e.msg, "not collecting garbage"));
	assert_true(husk_store_blob_has(f->s, a.layers[0].digest));
	/* Listing skips it rather than failing. */
	struct listed l = {0};
	must(husk_store_image_list(f->s, collect, &l, &e), &e);
	assert_int_equal(l.n, 0);
	write_file(in_root(f, "repositories.json"), "[]", 0644);
	struct husk_image img;
	assert_int_equal(husk_store_image_get(f->s, "app", &img, &e), -EUCLEAN);
}

static void missing_blob_fails_check(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	struct image a;
	make_image(f, "app", "a", &a);
	must(husk_store_check(f->s, &e), &e);
	char path[600];
	must(husk_store_blob_path(f->s, a.layers[0].digest, path, sizeof(path),
	                          &e),
	     &e);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(husk_store_check(f->s, &e), -EUCLEAN);
	assert_non_null(strstr(e.msg, "missing"));
}

static void root_from_environment(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	char root[600];
	snprintf(root, sizeof(root), "%s/env-root",
	         ((struct scratch *)f->sc)->dir);
	setenv("HUSK_ROOT", root, 1);
	struct husk_store *s;
	must(husk_store_open(NULL, &s, &e), &e);
	unsetenv("HUSK_ROOT");
	assert_string_equal(husk_store_root(s), root);
	struct stat st;
	assert_int_equal(stat(root, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	husk_store_close(s);
	husk_store_close(NULL);
}

/* ---- several processes at once ---- */

/* One process's round: a layer shared by every worker (written, or
 * reused by holding it), its own layer, a config; put as wN:i, then the
 * previous round's image removed, and now and then a prune. */
static int worker_round(struct husk_store *s, int n, int i,
                        struct husk_error *e)
{
	char own[64], seed[64], name[64], cfg_d[HUSK_DIGEST_MAX];
	snprintf(own, sizeof(own), "worker %d layer %d", n, i);
	snprintf(seed, sizeof(seed), "w%d-%d", n, i);
	snprintf(name, sizeof(name), "w%d:%d", n, i);
	struct husk_layer_desc l[2] = {{.size = 6}, {.size = strlen(own)}};
	digest_of("shared", l[0].digest);
	if ((i % 2 == 0 || husk_store_blob_hold(s, l[0].digest, e) != 1) &&
	    husk_store_blob_put(s, "shared", 6, NULL, e) < 0)
		return -1;
	if (husk_store_blob_put(s, own, strlen(own), l[1].digest, e) < 0)
		return -1;
	char cfg[512];
	snprintf(cfg, sizeof(cfg),
	         "{\"created\":\"%s\",\"rootfs\":{\"diff_ids\":"
	         "[\"%s\",\"%s\"]}}",
	         seed, l[0].digest, l[1].digest);
	if (husk_store_blob_put(s, cfg, strlen(cfg), cfg_d, e) < 0)
		return -1;
	struct husk_image_spec spec = {
	    .config_digest = cfg_d, .layers = l, .n_layers = 2};
	struct husk_ref ref;
	if (husk_ref_parse(name, &ref, e) < 0 ||
	    husk_store_image_put(s, &ref, &spec, NULL, e) < 0)
		return -1;
	snprintf(name, sizeof(name), "w%d:%d", n, i - 1);
	if (i > 0 && husk_store_image_remove(s, name, false, NULL, NULL, e) < 0)
		return -1;
	if (i % 4 == 3 && husk_store_prune(s, NULL, NULL, NULL, e) < 0)
		return -1;
	return 0;
}

static int worker(const char *root, int n)
{
	struct husk_store *s;
	struct husk_error e = {0};
	int rc = husk_store_open(root, &s, &e);
	for (int i = 0; rc == 0 && i < 12; i++)
		rc = worker_round(s, n, i, &e);
	husk_store_close(s);
	if (rc < 0)
		fprintf(stderr, "worker %d: %s\n", n, e.msg);
	return rc < 0;
}

static void concurrent_processes_stay_consistent(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	enum { WORKERS = 3 };
	pid_t pids[WORKERS];
	for (int n = 0; n < WORKERS; n++) {
		pids[n] = fork();
		assert_true(pids[n] >= 0);
		if (pids[n] == 0)
			_exit(worker(f->root, n));
	}
	for (int n = 0; n < WORKERS; n++) {
		int status;
		assert_int_equal(waitpid(pids[n], &status, 0), pids[n]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	must(husk_store_check(f->s, &e), &e);
	for (int n = 0; n < WORKERS; n++) {
		char name[32];
		snprintf(name, sizeof(name), "w%d:11", n);
		struct husk_image img;
		must(husk_store_image_get(f->s, name, &img, &e), &e);
		assert_int_equal(img.n_layers, 2);
		husk_image_free(&img);
	}
	struct listed l = {0};
	must(husk_store_image_list(f->s, collect, &l, &e), &e);
	assert_int_equal(l.n, WORKERS);
	struct husk_prune_result res;
	must(husk_store_prune(f->s, NULL, NULL, &res, &e), &e);
	/* shared + one own layer and a config per image. */
	assert_int_equal(count_dir(in_root(f, "blobs/sha256")),
	                 1 + 2 * WORKERS);
	assert_int_equal(count_dir(in_root(f, "tmp")), 0);
	assert_int_equal(count_dir(in_root(f, "leases")), 0);
}

/* ---- image configs ---- */

static int parse(const char *json, struct husk_image_config *cfg,
                 struct husk_error *e)
{
	return husk_image_config_parse(json, strlen(json), cfg, e);
}

static void config_full(void **state)
{
	struct husk_image_config cfg;
	struct husk_error e = {0};
	const char *json =
	    "{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\","
	    "\"created\":\"2024-01-01T00:00:00Z\","
	    "\"config\":{\"Entrypoint\":[\"/bin/sh\",\"-c\"],"
	    "\"Cmd\":[\"echo hi\"],\"Env\":[\"PATH=/bin\",\"A=b=c\"],"
	    "\"WorkingDir\":\"/srv\",\"User\":\"1000:1000\","
	    "\"StopSignal\":\"SIGQUIT\",\"Labels\":{\"x\":\"y\"}},"
	    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:"
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	    "\"]},\"history\":[{}]}  \n";
	must(parse(json, &cfg, &e), &e);
	assert_string_equal(cfg.architecture, "arm64");
	assert_string_equal(cfg.os, "linux");
	assert_string_equal(cfg.variant, "v8");
	assert_string_equal(cfg.created, "2024-01-01T00:00:00Z");
	assert_int_equal(cfg.n_entrypoint, 2);
	assert_string_equal(cfg.entrypoint[1], "-c");
	assert_null(cfg.entrypoint[2]);
	assert_int_equal(cfg.n_cmd, 1);
	assert_string_equal(cfg.cmd[0], "echo hi");
	assert_int_equal(cfg.n_env, 2);
	assert_string_equal(cfg.env[1], "A=b=c");
	assert_string_equal(cfg.working_dir, "/srv");
	assert_string_equal(cfg.user, "1000:1000");
	assert_string_equal(cfg.stop_signal, "SIGQUIT");
	assert_int_equal(cfg.n_diff_ids, 1);
	husk_image_config_free(&cfg);
	assert_null(cfg.cmd);
}

static void config_minimal_and_nulls(void **state)
{
	struct husk_image_config cfg;
	struct husk_error e = {0};
	must(parse("{}", &cfg, &e), &e);
	assert_null(cfg.entrypoint);
	assert_null(cfg.cmd);
	assert_null(cfg.working_dir);
	assert_string_equal(cfg.os, "");
	assert_int_equal(cfg.n_diff_ids, 0);
	husk_image_config_free(&cfg);
	must(parse("{\"architecture\":null,\"config\":null,\"rootfs\":null}",
	           &cfg, &e),
	     &e);
	husk_image_config_free(&cfg);
	must(parse("{\"config\":{\"Entrypoint\":null,\"Cmd\":null,\"Env\":"
	           "null,\"WorkingDir\":null,\"User\":null},\"rootfs\":{"
	           "\"diff_ids\":null}}",
	           &cfg, &e),
	     &e);
	assert_null(cfg.env);
	husk_image_config_free(&cfg);
	must(parse("{\"config\":{\"Cmd\":[]}}", &cfg, &e), &e);
	assert_int_equal(cfg.n_cmd, 0);
	assert_non_null(cfg.cmd);
	assert_null(cfg.cmd[0]);
	husk_image_config_free(&cfg);
	/* Docker's strslice: a lone string is a one-item list. */
	must(parse("{\"config\":{\"Cmd\":\"sh\"}}", &cfg, &e), &e);
	assert_int_equal(cfg.n_cmd, 1);
	assert_string_equal(cfg.cmd[0], "sh");
	husk_image_config_free(&cfg);
}

static void config_wrong_types(void **state)
{
	static const struct {
		const char *json, *why;
	} cases[] = {
	    {"[]", "not a JSON object"},
	    {"", "invalid JSON"},
	    {"{", "invalid JSON"},
	    {"{} x", "data after"},
	    {"{\"os\":1}", "os must be a string"},
	    {"{\"architecture\":\""
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
	     "too long"},
	    {"{\"config\":\"x\"}", "config must be an object"},
	    {"{\"config\":{\"Cmd\":42}}", "config.Cmd must be a list"},
	    {"{\"config\":{\"Entrypoint\":{}}}", "config.Entrypoint must be"},
	    {"{\"config\":{\"Cmd\":[\"a\",null]}}",
	     "config.Cmd must be a list"},
	    {"{\"config\":{\"Env\":\"A=b\"}}", "config.Env must be a list"},
	    {"{\"config\":{\"Env\":[1]}}", "config.Env must be a list"},
	    {"{\"config\":{\"WorkingDir\":[]}}", "config.WorkingDir must be"},
	    {"{\"config\":{\"User\":0}}", "config.User must be a string"},
	    {"{\"config\":{\"Env\":[\"A=\\u0000b\"]}}", "NUL"},
	    {"{\"rootfs\":[]}", "rootfs must be an object"},
	    {"{\"rootfs\":{\"type\":\"other\"}}", "not 'layers'"},
	    {"{\"rootfs\":{\"diff_ids\":[\"md5:x\"]}}", "invalid digest"},
	    {"{\"rootfs\":{\"diff_ids\":\"x\"}}", "rootfs.diff_ids must be"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct husk_image_config cfg;
		struct husk_error e = {0};
		int rc = parse(cases[i].json, &cfg, &e);
		if (rc != -EINVAL)
			fail_msg("%s: %d, not -EINVAL", cases[i].json, rc);
		if (!strstr(e.msg, cases[i].why))
			fail_msg("%s: '%s' lacks '%s'", cases[i].json, e.msg,
			         cases[i].why);
		assert_null(cfg.cmd);
		assert_null(cfg.env);
	}
}

static void config_of_a_stored_image(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	struct image a;
	make_image(f, "app", "a", &a);
	struct husk_image img;
	must(husk_store_image_get(f->s, "app", &img, &e), &e);
	struct husk_image_config cfg;
	must(husk_store_image_config(f->s, &img, &cfg, &e), &e);
	assert_int_equal(cfg.n_cmd, 1);
	assert_string_equal(cfg.cmd[0], "sh");
	assert_int_equal(cfg.n_diff_ids, 2);
	husk_image_config_free(&cfg);
	husk_image_free(&img);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(blob_write_commit_and_read),
	    T(blob_mismatch_leaves_nothing),
	    T(blob_size_is_enforced),
	    T(blob_without_known_digest),
	    T(blob_resumes_a_partial),
	    T(blob_bad_partial_is_discarded),
	    T(crash_leaves_no_blob_and_cleanup_works),
	    T(corrupt_blob_is_detected),
	    T(image_put_and_get),
	    T(put_by_tag_and_digest),
	    T(ambiguous_prefix_is_refused),
	    T(put_refuses_bad_images),
	    T(retag_moves_the_tag),
	    T(list_is_newest_first),
	    T(rmi_untags_then_deletes_and_collects),
	    T(rmi_of_tag_takes_its_digests),
	    T(rmi_by_id_across_repositories),
	    T(images_in_use_are_kept),
	    T(prune_keeps_what_is_referenced_or_held),
	    T(put_releases_holds),
	    T(crashed_holder_lease_is_dropped),
	    T(corrupt_metadata_is_reported),
	    T(missing_blob_fails_check),
	    T(root_from_environment),
	    T(concurrent_processes_stay_consistent),
	    cmocka_unit_test(config_full),
	    cmocka_unit_test(config_minimal_and_nulls),
	    cmocka_unit_test(config_wrong_types),
	    T(config_of_a_stored_image),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
