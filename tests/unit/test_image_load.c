/* `husk load` (husk_image_load): docker save archives (legacy layout and
 * Docker 25's OCI layout inside), OCI layouts as a directory and as a
 * tar, several images per archive, multi-platform indexes; hostile and
 * damaged archives, after which the store must be exactly as before;
 * the early commits that bound open files; and a real `docker save` (and
 * skopeo's OCI archive of it) when a dockerd can run here.
 *
 * The archives are made here with libarchive's writer from a small model
 * of an image (struct timg) so each test can bend one thing. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "scratch.h"

#include "husk/image_load.h"
#include "husk/layer.h"
#include "husk/store.h"

#define OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_INDEX    "application/vnd.oci.image.index.v1+json"
#define OCI_CONFIG   "application/vnd.oci.image.config.v1+json"
#define OCI_TAR      "application/vnd.oci.image.layer.v1.tar"
#define OCI_TAR_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define DOCKER_TAR   "application/vnd.docker.image.rootfs.diff.tar"
#define HUNDRED_MB   (100ll << 20)

/* ---- fixture ---- */

struct fx {
	void *sc; /* struct scratch */
	char root[512];
	struct husk_store *s;
	char lines[8][320];
	size_t n_lines;
	struct husk_error e;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	scratch_setup(&f->sc, "husk-load");
	snprintf(f->root, sizeof(f->root), "%s/store",
	         ((struct scratch *)f->sc)->dir);
	if (husk_store_open(f->root, &f->s, &f->e) < 0)
		fail_msg("open: %s", f->e.msg);
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

static void on_loaded(const char *line, void *ctx)
{
	struct fx *f = ctx;
	assert_true(f->n_lines < 8);
	snprintf(f->lines[f->n_lines++], sizeof(f->lines[0]), "%s", line);
}

static void must(int rc, const struct husk_error *e)
{
	if (rc < 0)
		fail_msg("rc %d: %s", rc, e->msg);
}

static size_t count_dir(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return 0;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static int count_one(const struct husk_image *img, void *ctx)
{
	(*(size_t *)ctx)++;
	return 0;
}

static size_t count_images(struct fx *f)
{
	size_t n = 0;
	must(husk_store_image_list(f->s, count_one, &n, &f->e), &f->e);
	return n;
}

static void load_path(struct fx *f, const char *path)
{
	f->n_lines = 0;
	must(husk_image_load(f->s, path, on_loaded, f, &f->e), &f->e);
	must(husk_store_check(f->s, &f->e), &f->e);
}

/* ---- strings and blobs ---- */

/* Every string made by fmt (and every buffer pooled) lives until the end
 * of the test. */
static void **pool;
static size_t pool_n, pool_cap;

static void *pooled(void *p)
{
	assert_non_null(p);
	if (pool_n == pool_cap) {
		pool_cap = pool_cap ? 2 * pool_cap : 256;
		pool = realloc(pool, pool_cap * sizeof(*pool));
		assert_non_null(pool);
	}
	pool[pool_n++] = p;
	return p;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	char *s;
	va_start(ap, f);
	assert_true(vasprintf(&s, f, ap) >= 0);
	va_end(ap);
	return pooled(s);
}

/* A path in the test's scratch directory, valid until its end. */
static const char *path_in(const struct fx *f, const char *rel)
{
	return fmt("%s/%s", ((const struct scratch *)f->sc)->dir, rel);
}

static int pool_teardown(void **state)
{
	for (size_t i = 0; i < pool_n; i++)
		free(pool[i]);
	free(pool);
	pool = NULL;
	pool_n = pool_cap = 0;
	return teardown(state);
}

struct blob {
	char digest[HUSK_DIGEST_MAX];
	char *data;
	size_t len;
};

static void blob_set(struct blob *b, char *data, size_t len)
{
	b->data = data;
	b->len = len;
	assert_int_equal(husk_sha256_buf(data, len, b->digest, NULL), 0);
}

static void blob_text(struct blob *b, char *text)
{
	blob_set(b, text, strlen(text));
}

/* A one-file layer tar, gzip-compressed when asked. */
static void layer_tar(const char *file, const char *content, bool gzip,
                      struct blob *out)
{
	size_t cap = 64 * 1024, used = 0;
	char *buf = pooled(malloc(cap));
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	if (gzip)
		archive_write_add_filter_gzip(a);
	assert_int_equal(archive_write_open_memory(a, buf, cap, &used), 0);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, file);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)strlen(content));
	assert_int_equal(archive_write_header(a, e), 0);
	assert_int_equal(archive_write_data(a, content, strlen(content)),
	                 (la_ssize_t)strlen(content));
	archive_entry_free(e);
	assert_int_equal(archive_write_close(a), 0);
	archive_write_free(a);
	blob_set(out, buf, used);
}

/* ---- a model image ---- */

struct timg {
	size_t n_layers;
	struct blob layer[3]; /* as stored: plain or gzip tars */
	char diff_id[3][HUSK_DIGEST_MAX];
	const char *layer_type;
	struct blob config, manifest;
};

static const char *diff_ids_json(const struct timg *t)
{
	const char *s = "";
	for (size_t i = 0; i < t->n_layers; i++)
		s = fmt("%s%s\"%s\"", s, i ? "," : "", t->diff_id[i]);
	return s;
}

static void timg_config(struct timg *t, const char *diff_ids)
{
	blob_text(&t->config,
	          fmt("{\"architecture\":\"amd64\",\"os\":\"linux\","
	              "\"created\":\"2024-01-02T03:04:05Z\",\"config\":{"
	              "\"Cmd\":[\"/bin/sh\"],\"Env\":[\"PATH=/bin\"]},"
	              "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[%s]}}",
	              diff_ids));
}

static const char *desc(const char *type, const struct blob *b)
{
	return fmt("{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}",
	           type, b->digest, b->len);
}

static void timg_manifest(struct timg *t)
{
	const char *layers = "";
	for (size_t i = 0; i < t->n_layers; i++)
		layers = fmt("%s%s%s", layers, i ? "," : "",
		             desc(t->layer_type, &t->layer[i]));
	blob_text(&t->manifest,
	          fmt("{\"schemaVersion\":2,\"mediaType\":\"" OCI_MANIFEST
	              "\",\"config\":%s,\"layers\":[%s]}",
	              desc(OCI_CONFIG, &t->config), layers));
}

/* seed makes each image's content (and so its digests) its own. */
static void timg_make(struct timg *t, const char *seed, size_t n, bool gzip)
{
	memset(t, 0, sizeof(*t));
	t->n_layers = n;
	t->layer_type = gzip ? OCI_TAR_GZIP : OCI_TAR;
	for (size_t i = 0; i < n; i++) {
		struct blob plain;
		const char *file = fmt("file%zu", i);
		const char *text = fmt("%s layer %zu\n", seed, i);
		layer_tar(file, text, false, &plain);
		memcpy(t->diff_id[i], plain.digest, HUSK_DIGEST_MAX);
		if (gzip)
			layer_tar(file, text, true, &t->layer[i]);
		else
			t->layer[i] = plain;
	}
	timg_config(t, diff_ids_json(t));
	timg_manifest(t);
}

/* ---- archives: a list of files, written as a tar or a directory ---- */

struct afile {
	const char *name;
	const char *data; /* NULL for a link */
	size_t len;
	const char *link;
	bool hard; /* link is a hard link's target */
};

struct arc {
	struct afile f[64];
	size_t n;
};

static void arc_add(struct arc *a, const char *name, const void *data,
                    size_t len)
{
	assert_true(a->n < 64);
	a->f[a->n++] = (struct afile){name, data, len, NULL, false};
}

static void arc_text(struct arc *a, const char *name, const char *text)
{
	arc_add(a, name, text, strlen(text));
}

static void arc_symlink(struct arc *a, const char *name, const char *target)
{
	assert_true(a->n < 64);
	a->f[a->n++] = (struct afile){name, NULL, 0, target, false};
}

static void arc_hardlink(struct arc *a, const char *name, const char *target)
{
	assert_true(a->n < 64);
	a->f[a->n++] = (struct afile){name, NULL, 0, target, true};
}

static struct afile *arc_find(struct arc *a, const char *name)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->f[i].name, name) == 0)
			return &a->f[i];
	fail_msg("no %s in the test archive", name);
	return NULL;
}

static void arc_replace(struct arc *a, const char *name, const char *text)
{
	struct afile *x = arc_find(a, name);
	x->data = text;
	x->len = strlen(text);
}

static void arc_blob(struct arc *a, const struct blob *b)
{
	arc_add(a, fmt("blobs/sha256/%s", husk_digest_hex(b->digest)), b->data,
	        b->len);
}

static void write_entry(struct archive *w, const struct afile *x)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, x->name);
	archive_entry_set_mtime(e, 0, 0);
	if (x->hard) {
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_hardlink(e, x->link);
	} else if (x->link) {
		archive_entry_set_filetype(e, AE_IFLNK);
		archive_entry_set_perm(e, 0777);
		archive_entry_set_symlink(e, x->link);
	} else {
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (la_int64_t)x->len);
	}
	assert_int_equal(archive_write_header(w, e), 0);
	if (x->len)
		assert_int_equal(archive_write_data(w, x->data, x->len),
		                 (la_ssize_t)x->len);
	archive_entry_free(e);
}

static void arc_tar(const struct arc *a, const char *path, bool gzip)
{
	struct archive *w = archive_write_new();
	archive_write_set_format_pax_restricted(w);
	if (gzip)
		archive_write_add_filter_gzip(w);
	assert_int_equal(archive_write_open_filename(w, path), 0);
	for (size_t i = 0; i < a->n; i++)
		write_entry(w, &a->f[i]);
	assert_int_equal(archive_write_close(w), 0);
	archive_write_free(w);
}

static void mkdirs_for(const char *path)
{
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(buf, 0755);
		*p = '/';
	}
}

static void arc_dir(const struct arc *a, const char *dir)
{
	mkdir(dir, 0755);
	for (size_t i = 0; i < a->n; i++) {
		const char *p = fmt("%s/%s", dir, a->f[i].name);
		mkdirs_for(p);
		if (a->f[i].hard) {
			assert_int_equal(
			    link(fmt("%s/%s", dir, a->f[i].link), p), 0);
			continue;
		}
		if (a->f[i].link) {
			assert_int_equal(symlink(a->f[i].link, p), 0);
			continue;
		}
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, a->f[i].data, a->f[i].len),
		                 (ssize_t)a->f[i].len);
		close(fd);
	}
}

/* ---- the formats ---- */

/* Legacy docker save: <v1id>/{VERSION,json,layer.tar}, <id>.json. The
 * v1 ids are opaque: made up here from the image's config digest. */
static const char *legacy_dir(const struct timg *t, size_t i)
{
	return fmt("%.62s%02zu", husk_digest_hex(t->config.digest), i);
}

static void add_legacy(struct arc *a, const struct timg *t)
{
	arc_add(a, fmt("%s.json", husk_digest_hex(t->config.digest)),
	        t->config.data, t->config.len);
	for (size_t i = 0; i < t->n_layers; i++) {
		const char *d = legacy_dir(t, i);
		arc_text(a, fmt("%s/VERSION", d), "1.0");
		arc_text(a, fmt("%s/json", d), fmt("{\"id\":\"%s\"}", d));
		arc_add(a, fmt("%s/layer.tar", d), t->layer[i].data,
		        t->layer[i].len);
	}
}

/* One manifest.json item; blob_paths: Docker 25's blobs/sha256/ paths. */
static const char *docker_item(const struct timg *t, const char *tags,
                               bool blob_paths)
{
	const char *layers = "";
	for (size_t i = 0; i < t->n_layers; i++)
		layers =
		    fmt("%s%s\"%s\"", layers, i ? "," : "",
		        blob_paths ? fmt("blobs/sha256/%s",
		                         husk_digest_hex(t->layer[i].digest))
		                   : fmt("%s/layer.tar", legacy_dir(t, i)));
	const char *config =
	    blob_paths
	        ? fmt("blobs/sha256/%s", husk_digest_hex(t->config.digest))
	        : fmt("%s.json", husk_digest_hex(t->config.digest));
	return fmt("{\"Config\":\"%s\",\"RepoTags\":%s,\"Layers\":[%s]}",
	           config, tags, layers);
}

static void add_oci_blobs(struct arc *a, const struct timg *t)
{
	for (size_t i = 0; i < t->n_layers; i++)
		arc_blob(a, &t->layer[i]);
	arc_blob(a, &t->config);
	arc_blob(a, &t->manifest);
}

/* An index.json descriptor of t's manifest with annotations (JSON
 * object members, may be ""). */
static const char *oci_item(const struct timg *t, const char *annotations)
{
	return fmt("{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"%s\","
	           "\"size\":%zu,\"annotations\":{%s}}",
	           t->manifest.digest, t->manifest.len, annotations);
}

static void add_oci_index(struct arc *a, const char *items)
{
	arc_text(a, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
	arc_text(a, "index.json",
	         fmt("{\"schemaVersion\":2,\"manifests\":[%s]}", items));
}

/* A docker save archive of one two-layer image tagged busybox:latest. */
static void docker_archive(struct arc *a, struct timg *t)
{
	memset(a, 0, sizeof(*a));
	timg_make(t, "docker", 2, false);
	add_legacy(a, t);
	arc_text(a, "manifest.json",
	         fmt("[%s]", docker_item(t, "[\"busybox:latest\"]", false)));
}

/* An OCI layout of one two-layer gzip image named example.com/app:1. */
static void oci_archive(struct arc *a, struct timg *t)
{
	memset(a, 0, sizeof(*a));
	timg_make(t, "oci", 2, true);
	add_oci_blobs(a, t);
	add_oci_index(a, oci_item(t, "\"org.opencontainers.image.ref.name\":"
	                             "\"example.com/app:1\""));
}

/* ---- checks ---- */

static void assert_image(struct fx *f, const char *what, const struct timg *t,
                         const char *layer_type, bool with_manifest)
{
	struct husk_image img;
	struct husk_image_config cfg;
	must(husk_store_image_get(f->s, what, &img, &f->e), &f->e);
	assert_string_equal(img.id, t->config.digest);
	assert_string_equal(img.manifest_digest,
	                    with_manifest ? t->manifest.digest : "");
	assert_int_equal(img.n_layers, t->n_layers);
	for (size_t i = 0; i < t->n_layers; i++) {
		assert_string_equal(img.layers[i].digest, t->layer[i].digest);
		assert_string_equal(img.layers[i].diff_id, t->diff_id[i]);
		assert_int_equal(img.layers[i].size, t->layer[i].len);
		assert_string_equal(img.layers[i].media_type, layer_type);
	}
	assert_string_equal(img.os, "linux");
	must(husk_store_image_config(f->s, &img, &cfg, &f->e), &f->e);
	assert_int_equal(cfg.n_cmd, 1);
	assert_string_equal(cfg.cmd[0], "/bin/sh");
	assert_int_equal(cfg.n_diff_ids, t->n_layers);
	husk_image_config_free(&cfg);
	husk_image_free(&img);
}

static void assert_lines(struct fx *f, size_t n, ...)
{
	va_list ap;
	va_start(ap, n);
	assert_int_equal(f->n_lines, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(f->lines[i], va_arg(ap, const char *));
	va_end(ap);
}

static bool has_line(const struct fx *f, const char *line)
{
	for (size_t i = 0; i < f->n_lines; i++)
		if (strcmp(f->lines[i], line) == 0)
			return true;
	return false;
}

/* The store exactly as a fresh one: no image, blob or leftover. */
static void assert_untouched(struct fx *f)
{
	struct husk_error e = {0};
	assert_int_equal(count_images(f), 0);
	assert_int_equal(count_dir(fmt("%s/blobs/sha256", f->root)), 0);
	assert_int_equal(count_dir(fmt("%s/tmp", f->root)), 0);
	assert_int_equal(count_dir(fmt("%s/images", f->root)), 0);
	if (husk_store_check(f->s, &e) < 0)
		fail_msg("store check: %s", e.msg);
}

/* Loading path fails with code and a message containing want; the store
 * is left as it was. */
static void refused(struct fx *f, const char *path, int code, const char *want)
{
	struct husk_error e = {0};
	f->n_lines = 0;
	int rc = husk_image_load(f->s, path, on_loaded, f, &e);
	if (rc != -code || !strstr(e.msg, want))
		fail_msg("got %d '%s', want %d '...%s...'", rc, e.msg, -code,
		         want);
	if (getenv("SHOW_ERRORS"))
		print_message("%s\n", e.msg);
	assert_int_equal(f->n_lines, 0);
	assert_untouched(f);
}

static void refused_arc(struct fx *f, const struct arc *a, int code,
                        const char *want)
{
	const char *p = path_in(f, "hostile.tar");
	arc_tar(a, p, false);
	refused(f, p, code, want);
}

/* ---- loading ---- */

static void docker_legacy_two_layers(void **state)
{
	struct fx *f = *state;
	struct arc a;
	struct timg t;
	docker_archive(&a, &t);
	arc_replace(&a, "manifest.json",
	            fmt("[%s]", docker_item(&t,
	                                    "[\"busybox:latest\","
	                                    "\"example.com/team/app:v1\"]",
	                                    false)));
	arc_text(&a, "repositories", "{}");
	arc_tar(&a, path_in(f, "a.tar"), false);
	load_path(f, path_in(f, "a.tar"));
	assert_lines(f, 2, "Loaded image: busybox:latest",
	             "Loaded image: example.com/team/app:v1");
	assert_image(f, "busybox", &t, DOCKER_TAR, false);
	assert_image(f, "example.com/team/app:v1", &t, DOCKER_TAR, false);
	assert_int_equal(count_images(f), 1);
	/* config and two layers; VERSION, json, manifest.json stay out. */
	assert_int_equal(count_dir(fmt("%s/blobs/sha256", f->root)), 3);
	assert_int_equal(count_dir(fmt("%s/tmp", f->root)), 0);

	/* Again: the blobs are there already; nothing changes. */
	load_path(f, path_in(f, "a.tar"));
	assert_lines(f, 2, "Loaded image: busybox:latest",
	             "Loaded image: example.com/team/app:v1");
	assert_int_equal(count_images(f), 1);
	assert_int_equal(count_dir(fmt("%s/blobs/sha256", f->root)), 3);
}

static void docker_with_oci_layout_inside(void **state)
{
	struct fx *f = *state;
	struct arc a = {0};
	struct timg t;
	/* Docker 25+: blobs/ holds everything, legacy dirs link into it,
	 * manifest.json names blobs, index.json is there too. */
	timg_make(&t, "docker25", 2, false);
	add_oci_blobs(&a, &t);
	for (size_t i = 0; i < 2; i++)
		arc_symlink(&a, fmt("%s/layer.tar", legacy_dir(&t, i)),
		            fmt("../blobs/sha256/%s",
		                husk_digest_hex(t.layer[i].digest)));
	add_oci_index(&a, oci_item(&t, "\"io.containerd.image.name\":"
	                               "\"docker.io/library/app:25\""));
	arc_text(&a, "manifest.json",
	         fmt("[%s]", docker_item(&t, "[\"app:25\"]", true)));
	arc_tar(&a, path_in(f, "a.tar"), false);
	load_path(f, path_in(f, "a.tar"));
	assert_lines(f, 1, "Loaded image: app:25");
	assert_image(f, "app:25", &t, OCI_TAR, false);
	/* config and layers; the manifest blob is not the docker way. */
	assert_int_equal(count_dir(fmt("%s/blobs/sha256", f->root)), 3);

	/* The legacy paths through the symlinks give the same image. */
	struct arc b = {0};
	add_oci_blobs(&b, &t);
	arc_symlink(
	    &b, fmt("%s/layer.tar", legacy_dir(&t, 0)),
	    fmt("../blobs/sha256/%s", husk_digest_hex(t.layer[0].digest)));
	/* A tar hard link names its target from the archive root. */
	arc_hardlink(
	    &b, fmt("%s/layer.tar", legacy_dir(&t, 1)),
	    fmt("blobs/sha256/%s", husk_digest_hex(t.layer[1].digest)));
	arc_add(&b, fmt("%s.json", husk_digest_hex(t.config.digest)),
	        t.config.data, t.config.len);
	arc_text(&b, "manifest.json",
	         fmt("[%s]", docker_item(&t, "[\"app:legacy\"]", false)));
	arc_tar(&b, path_in(f, "b.tar"), false);
	load_path(f, path_in(f, "b.tar"));
	assert_image(f, "app:legacy", &t, DOCKER_TAR, false);
}

static void oci_layout_directory(void **state)
{
	struct fx *f = *state;
	struct arc a;
	struct timg t, u, v;
	oci_archive(&a, &t);
	timg_make(&u, "second", 1, false);
	timg_make(&v, "third", 1, true);
	add_oci_blobs(&a, &u);
	add_oci_blobs(&a, &v);
	arc_replace(
	    &a, "index.json",
	    fmt("{\"schemaVersion\":2,\"manifests\":[%s,%s,%s]}",
	        oci_item(&t, "\"org.opencontainers.image.ref.name\":"
	                     "\"example.com/app:1\""),
	        oci_item(&u, "\"io.containerd.image.name\":"
	                     "\"docker.io/library/alpine:3\","
	                     "\"org.opencontainers.image.ref.name\":\"3\""),
	        /* A bare tag names no repository: loaded by id. */
	        oci_item(&v, "\"org.opencontainers.image.ref.name\":"
	                     "\"latest\"")));
	arc_dir(&a, path_in(f, "layout"));
	/* A trailing slash, as shells complete it. */
	load_path(f, fmt("%s/", path_in(f, "layout")));
	assert_lines(f, 3, "Loaded image: example.com/app:1",
	             "Loaded image: alpine:3",
	             fmt("Loaded image ID: %s", v.config.digest));
	assert_image(f, "example.com/app:1", &t, OCI_TAR_GZIP, true);
	assert_image(f, "alpine:3", &u, OCI_TAR, true);
	assert_image(f, v.config.digest, &v, OCI_TAR_GZIP, true);
	/* The manifest digest names the image too. */
	assert_image(f, fmt("example.com/app@%s", t.manifest.digest), &t,
	             OCI_TAR_GZIP, true);
	assert_int_equal(count_images(f), 3);
}

static void directory_links_stay_inside(void **state)
{
	struct fx *f = *state;
	struct arc a;
	struct timg t;
	oci_archive(&a, &t);
	struct afile *l = arc_find(
	    &a, fmt("blobs/sha256/%s", husk_digest_hex(t.layer[0].digest)));
	l->data = NULL;
	l->len = 0;
	l->link = "/etc/hostname";
	arc_dir(&a, path_in(f, "abs"));
	refused(f, path_in(f, "abs"), EINVAL, "points outside the archive");
	l->link = "../../../../../../etc/hostname";
	arc_dir(&a, path_in(f, "rel"));
	refused(f, path_in(f, "rel"), EINVAL, "points outside the archive");
	/* The directory itself may be reached through a symlink. */
	oci_archive(&a, &t);
	arc_dir(&a, path_in(f, "real"));
	assert_int_equal(symlink(path_in(f, "real"), path_in(f, "via")), 0);
	load_path(f, path_in(f, "via"));
	assert_image(f, "example.com/app:1", &t, OCI_TAR_GZIP, true);
}

static void oci_layout_tar_from_a_pipe(void **state)
{
	struct fx *f = *state;
	struct arc a;
	struct timg t;
	oci_archive(&a, &t);
	/* The whole archive gzip-compressed, as `docker save | gzip`. */
	arc_tar(&a, path_in(f, "oci.tar.gz"), true);
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		int fd = open(path_in(f, "oci.tar.gz"), O_RDONLY);
		char buf[4096];
		ssize_t n;
		while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
			if (write(p[1], buf, (size_t)n) != n)
				_exit(1);
		_exit(0);
	}
	close(p[1]);
	int rc = husk_image_load_fd(f->s, p[0], on_loaded, f, &f->e);
	close(p[0]);
	int status;
	waitpid(pid, &status, 0);
	must(rc, &f->e);
	assert_lines(f, 1, "Loaded image: example.com/app:1");
	assert_image(f, "example.com/app:1", &t, OCI_TAR_GZIP, true);
	must(husk_store_check(f->s, &f->e), &f->e);
}

static void several_docker_images(void **state)
{
	struct fx *f = *state;
	struct arc a = {0};
	struct timg t, u;
	timg_make(&t, "base", 2, false);
	timg_make(&u, "child", 3, false);
	/* u shares t's base layer: Docker writes a symlink to it. */
	u.layer[0] = t.layer[0];
	memcpy(u.diff_id[0], t.diff_id[0], HUSK_DIGEST_MAX);
	timg_config(&u, diff_ids_json(&u));
	/* Of two entries with one name the later counts, as in tar -x. */
	arc_text(&a, "manifest.json", "not json at all");
	add_legacy(&a, &t);
	arc_add(&a, fmt("%s.json", husk_digest_hex(u.config.digest)),
	        u.config.data, u.config.len);
	arc_symlink(&a, fmt("%s/layer.tar", legacy_dir(&u, 0)),
	            fmt("../%s/layer.tar", legacy_dir(&t, 0)));
	for (size_t i = 1; i < 3; i++)
		arc_add(&a, fmt("%s/layer.tar", legacy_dir(&u, i)),
		        u.layer[i].data, u.layer[i].len);
	arc_text(&a, "manifest.json",
	         fmt("[%s,%s]", docker_item(&t, "[\"base:1\"]", false),
	             docker_item(&u, "null", false)));
	arc_tar(&a, path_in(f, "a.tar"), false);
	load_path(f, path_in(f, "a.tar"));
	assert_lines(f, 2, "Loaded image: base:1",
	             fmt("Loaded image ID: %s", u.config.digest));
	assert_image(f, "base:1", &t, DOCKER_TAR, false);
	assert_image(f, u.config.digest, &u, DOCKER_TAR, false);
	/* 2 configs, 2 + 2 layers (one shared). */
	assert_int_equal(count_dir(fmt("%s/blobs/sha256", f->root)), 6);
}

static const char *host_goarch(void)
{
	struct utsname u;
	uname(&u);
	if (strcmp(u.machine, "x86_64") == 0)
		return "amd64";
	if (strcmp(u.machine, "aarch64") == 0)
		return "arm64";
	return fmt("%s", u.machine);
}

static void multi_platform_index(void **state)
{
	struct fx *f = *state;
	struct arc a;
	struct timg t;
	struct blob index, other;
	oci_archive(&a, &t);
	/* The other platform's manifest is listed but not in the archive,
	 * as docker and containerd save only the host's. */
	blob_text(&other, "not saved");
	const char *other_arch =
	    strcmp(host_goarch(), "arm64") == 0 ? "amd64" : "arm64";
	blob_text(&index,
	          fmt("{\"schemaVersion\":2,\"mediaType\":\"" OCI_INDEX "\","
	              "\"manifests\":["
	              "{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"%s\","
	              "\"size\":9,\"platform\":{\"os\":\"linux\","
	              "\"architecture\":\"%s\"}},"
	              "{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"%s\","
	              "\"size\":%zu,\"platform\":{\"os\":\"linux\","
	              "\"architecture\":\"%s\"}}]}",
	              other.digest, other_arch, t.manifest.digest,
	              t.manifest.len, host_goarch()));
	arc_blob(&a, &index);
	arc_replace(&a, "index.json",
	            fmt("{\"schemaVersion\":2,\"manifests\":[%s]}",
	                fmt("{\"mediaType\":\"" OCI_INDEX "\",\"digest\":"
	                    "\"%s\",\"size\":%zu,\"annotations\":{"
	                    "\"io.containerd.image.name\":"
	                    "\"docker.io/library/multi:1\"}}",
	                    index.digest, index.len)));
	arc_tar(&a, path_in(f, "a.tar"), false);
	load_path(f, path_in(f, "a.tar"));
	assert_lines(f, 1, "Loaded image: multi:1");
	assert_image(f, "multi:1", &t, OCI_TAR_GZIP, true);

	/* With the host's manifest missing too, nothing fits. */
	struct husk_store *s2;
	husk_store_close(f->s);
	f->s = NULL;
	must(husk_store_open(path_in(f, "store2"), &s2, &f->e), &f->e);
	f->s = s2;
	snprintf(f->root, sizeof(f->root), "%s", path_in(f, "store2"));
	struct afile *m = arc_find(
	    &a, fmt("blobs/sha256/%s", husk_digest_hex(t.manifest.digest)));
	m->name = "blobs/sha256/gone";
	refused_arc(f, &a, ENOENT, "holds no image for linux/");
}

/* ---- hostile archives ---- */

static void not_an_archive_of_images(void **state)
{
	struct fx *f = *state;
	struct arc a = {0};
	arc_text(&a, "hello.txt", "hi");
	refused_arc(f, &a, EINVAL, "no manifest.json");
	write_file(path_in(f, "empty.tar"), "", 0644);
	refused(f, path_in(f, "empty.tar"), EINVAL, "no manifest.json");
	write_file(path_in(f, "junk.tar"),
	           "this is not a tar archive, not at all, no", 0644);
	refused(f, path_in(f, "junk.tar"), EBADMSG, "reading the archive");
	refused(f, path_in(f, "missing.tar"), ENOENT, "missing.tar");
	struct arc b = {0};
	arc_text(&b, "repositories", "{}");
	refused_arc(f, &b, EPROTONOSUPPORT, "without manifest.json");
}

static void malformed_manifest_json(void **state)
{
	struct fx *f = *state;
	struct arc a;
	struct timg t;
	docker_archive(&a, &t);
	const char *bad[][2] = {
	    {"[{\"Config\": ", "malformed JSON"},
	    {"[{}] trailing", "malformed JSON"},
	    {"{\"Config\":\"x\"}", "must be a list of images"},
	    {"[42]", "must be an object"},
	    {"[{\"Layers\":[]}]", "Config is missing"},
	    {"[]", "holds no images"},
	    {"", "malformed JSON"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		arc_replace(&a, "manifest.json", bad[i][0]);
		refused_arc(f, &a, EINVAL, bad[i][1]);
	}
	/* A config that is not one (its name is no digest: not checked). */
	arc_text(&a, "cfg.json", "{\"rootfs\":5}");
	arc_replace(&a, "manifest.json",
	            fmt("[{\"Config\":\"cfg.json\",\"Layers\":[]}]"));
	refused_arc(f, &a, EINVAL, "manifest.json image 1: image config");
	arc_replace(&a, "manifest.json",
	            fmt("[%s]", docker_item(&t, "[\"Bad Tag\"]", false)));
	refused_arc(f, &a, EINVAL, "RepoTags: 'Bad Tag'");
	arc_replace(&a, "manifest.json",
	            fmt("[%s]", docker_item(&t, "[\"x@sha256:0\"]", false)));
	refused_arc(f, &a, EINVAL, "RepoTags");
}

static void layer_paths_must_stay_inside(void **state)
{
	struct fx *f = *state;
	struct arc a;
	struct timg t;
	docker_archive(&a, &t);
	const char *cfg = fmt("%s.json", husk_digest_hex(t.config.digest));
	const char *one = fmt("%s/layer.tar", legacy_dir(&t, 0));
	const char *cases[][3] = {
	    {"../etc/layer.tar", "not a relative path", NULL},
	    {"x/../../layer.tar", "not a relative path", NULL},
	    {"/etc/passwd", "not a relative path", NULL},
	    {"nothere/layer.tar", "is not in the archive", NULL},
	};
	for (size_t i = 0; i < 4; i++) {
		arc_replace(&a, "manifest.json",
		            fmt("[{\"Config\":\"%s\",\"Layers\":[\"%s\","
		                "\"%s\"]}]",
		                cfg, one, cases[i][0]));
		refused_arc(f, &a, i == 3 ? ENOENT : EINVAL, cases[i][1]);
	}
	/* A symlink in the archive that leads out of it. */
	docker_archive(&a, &t);
	struct afile *l = arc_find(&a, one);
	l->data = NULL;
	l->len = 0;
	l->link = "../../../etc/passwd";
	refused_arc(f, &a, EINVAL, "points outside the archive");
	l->link = "/etc/passwd";
	refused_arc(f, &a, EINVAL, "points outside the archive");
	l->link = "layer.tar"; /* itself */
	refused_arc(f, &a, ELOOP, "too many symlinks");
	/* A config that is not there. */
	docker_archive(&a, &t);
	arc_find(&a, cfg)->name = "other.json";
	refused_arc(f, &a, ENOENT, "is not in the archive");
}

static void diff_ids_must_match_layers(void **state)
{
	struct fx *f = *state;
	struct arc a;
	struct timg t;
	docker_archive(&a, &t);
	/* The layers in the wrong order. */
	const char *swapped = fmt("\"%s\",\"%s\"", t.diff_id[1], t.diff_id[0]);
	timg_config(&t, swapped);
	struct arc b = {0};
	add_legacy(&b, &t);
	arc_text(&b, "manifest.json",
	         fmt("[%s]", docker_item(&t, "[\"a:1\"]", false)));
	refused_arc(f, &b, EBADMSG, "but the config's diff_id is");

	/* One diff_id for two layers. */
	timg_config(&t, fmt("\"%s\"", t.diff_id[0]));
	memset(&b, 0, sizeof(b));
	add_legacy(&b, &t);
	arc_text(&b, "manifest.json",
	         fmt("[%s]", docker_item(&t, "[\"a:1\"]", false)));
	refused_arc(f, &b, EINVAL, "lists 1 diff_ids for 2 layers");

	/* A gzip layer.tar: Docker's layers are plain tars. */
	timg_make(&t, "gz", 1, true);
	memset(&b, 0, sizeof(b));
	add_legacy(&b, &t);
	arc_text(&b, "manifest.json",
	         fmt("[%s]", docker_item(&t, "[\"a:1\"]", false)));
	refused_arc(f, &b, EBADMSG, "gzip-compressed");

	/* A config whose name is not its digest. */
	docker_archive(&a, &t);
	arc_find(&a, fmt("%s.json", husk_digest_hex(t.config.digest)))->data =
	    fmt("%s ", t.config.data);
	arc_find(&a, fmt("%s.json", husk_digest_hex(t.config.digest)))->len++;
	refused_arc(f, &a, EBADMSG, "is corrupt");
}

static void oci_blob_must_match_its_name(void **state)
{
	struct fx *f = *state;
	struct arc a;
	struct timg t;
	oci_archive(&a, &t);
	struct afile *l = arc_find(
	    &a, fmt("blobs/sha256/%s", husk_digest_hex(t.layer[1].digest)));
	char *copy = pooled(malloc(l->len));
	memcpy(copy, l->data, l->len);
	copy[l->len / 2] ^= 1;
	l->data = copy;
	refused_arc(f, &a, EBADMSG, "is corrupt");

	/* Size from the descriptor. */
	oci_archive(&a, &t);
	arc_replace(&a, "index.json",
	            fmt("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
	                "\"" OCI_MANIFEST
	                "\",\"digest\":\"%s\",\"size\":%zu}]}",
	                t.manifest.digest, t.manifest.len + 1));
	refused_arc(f, &a, EBADMSG, "its descriptor says");

	/* A blob the manifest names but the archive lacks. */
	oci_archive(&a, &t);
	arc_find(&a, fmt("blobs/sha256/%s", husk_digest_hex(t.layer[0].digest)))
	    ->name = "blobs/sha256/elsewhere";
	refused_arc(f, &a, ENOENT, "is not in the archive");

	/* No oci-layout, or a version from the future. */
	oci_archive(&a, &t);
	arc_find(&a, "oci-layout")->name = "not-oci-layout";
	refused_arc(f, &a, EINVAL, "without oci-layout");
	oci_archive(&a, &t);
	arc_replace(&a, "oci-layout", "{\"imageLayoutVersion\":\"2.0.0\"}");
	refused_arc(f, &a, EPROTONOSUPPORT, "layout version");
	/* A digest of another algorithm. */
	oci_archive(&a, &t);
	arc_replace(&a, "index.json",
	            "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
	            "\"" OCI_MANIFEST "\",\"digest\":\"sha512:abcd\","
	            "\"size\":1}]}");
	refused_arc(f, &a, EPROTONOSUPPORT, "unsupported digest algorithm");
}

static void unknown_media_types(void **state)
{
	struct fx *f = *state;
	struct arc a;
	struct timg t;
	oci_archive(&a, &t);
	t.layer_type = "application/x-mystery";
	timg_manifest(&t);
	memset(&a, 0, sizeof(a));
	add_oci_blobs(&a, &t);
	add_oci_index(&a, oci_item(&t, ""));
	refused_arc(f, &a, EPROTONOSUPPORT, "unknown layer media type");

	oci_archive(&a, &t);
	arc_replace(&a, "index.json",
	            fmt("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
	                "\"application/vnd.example.thing+json\",\"digest\":"
	                "\"%s\",\"size\":%zu}]}",
	                t.manifest.digest, t.manifest.len));
	refused_arc(f, &a, EPROTONOSUPPORT, "unknown manifest media type");

	/* An artifact, not a container image. */
	oci_archive(&a, &t);
	struct blob m;
	blob_text(&m, fmt("{\"schemaVersion\":2,\"config\":{\"mediaType\":"
	                  "\"application/vnd.cncf.helm.config.v1+json\","
	                  "\"digest\":\"%s\",\"size\":%zu},\"layers\":[]}",
	                  t.config.digest, t.config.len));
	arc_blob(&a, &m);
	arc_replace(
	    &a, "index.json",
	    fmt("{\"schemaVersion\":2,\"manifests\":[%s]}",
	        fmt("{\"digest\":\"%s\",\"size\":%zu}", m.digest, m.len)));
	refused_arc(f, &a, EPROTONOSUPPORT, "not a container image");
}

struct capped {
	int fd;
	size_t written, cap;
};

static la_ssize_t capped_write(struct archive *a, void *ctx, const void *p,
                               size_t n)
{
	struct capped *c = ctx;
	if (c->written < c->cap) {
		size_t k = n < c->cap - c->written ? n : c->cap - c->written;
		assert_int_equal(write(c->fd, p, k), (ssize_t)k);
		c->written += k;
	}
	return (la_ssize_t)n;
}

/* A tar whose entry name says HUNDRED_MB bytes, cut after 64 KiB: a
 * loader that read the data would see a truncated archive instead. */
static void huge_entry_tar(const char *path, const char *name, bool layout)
{
	struct capped c = {open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644), 0,
	                   64 * 1024};
	assert_true(c.fd >= 0);
	struct archive *w = archive_write_new();
	archive_write_set_format_pax_restricted(w);
	assert_int_equal(archive_write_open(w, &c, NULL, capped_write, NULL),
	                 0);
	if (layout) {
		struct afile l = {"oci-layout",
		                  "{\"imageLayoutVersion\":\"1.0.0\"}", 30,
		                  NULL, false};
		write_entry(w, &l);
	}
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, HUNDRED_MB);
	assert_int_equal(archive_write_header(w, e), 0);
	archive_entry_free(e);
	char buf[65536];
	memset(buf, ' ', sizeof(buf));
	buf[0] = '[';
	assert_int_equal(archive_write_data(w, buf, sizeof(buf)),
	                 (la_ssize_t)sizeof(buf));
	archive_write_free(w); /* pads to 100 MB, into the void */
	close(c.fd);
}

static void huge_json_is_refused_early(void **state)
{
	struct fx *f = *state;
	huge_entry_tar(path_in(f, "m.tar"), "manifest.json", false);
	refused(f, path_in(f, "m.tar"), EMSGSIZE, "manifest.json is 104857600");
	huge_entry_tar(path_in(f, "i.tar"), "./index.json", true);
	refused(f, path_in(f, "i.tar"), EMSGSIZE, "index.json is 104857600");

	/* A config over a smaller limit. */
	struct arc a;
	struct timg t;
	docker_archive(&a, &t);
	arc_tar(&a, path_in(f, "a.tar"), false);
	size_t mlen = arc_find(&a, "manifest.json")->len;
	assert_true(t.config.len > mlen);
	struct husk_load_limits lim = {.json_max = mlen};
	struct husk_error e = {0};
	assert_int_equal(husk_image_load_limited(f->s, path_in(f, "a.tar"), -1,
	                                         &lim, NULL, NULL, &e),
	                 -EMSGSIZE);
	assert_non_null(strstr(e.msg, "config"));
	assert_untouched(f);
}

static void truncated_archive(void **state)
{
	struct fx *f = *state;
	struct arc a = {0};
	struct timg t;
	timg_make(&t, "cut", 2, false);
	/* A layer big enough that the cut lands inside its data. */
	char *big = fmt("%*s", 300000, "x");
	blob_set(&t.layer[1], big, strlen(big));
	add_legacy(&a, &t);
	arc_text(&a, "manifest.json",
	         fmt("[%s]", docker_item(&t, "[\"a:1\"]", false)));
	const char *p = path_in(f, "cut.tar");
	arc_tar(&a, p, false);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(truncate(p, st.st_size / 2), 0);
	refused(f, p, EBADMSG, "runcated");
}

static void bad_second_image_loads_nothing(void **state)
{
	struct fx *f = *state;
	struct arc a;
	struct timg t;
	docker_archive(&a, &t);
	arc_replace(&a, "manifest.json",
	            fmt("[%s,%s]", docker_item(&t, "[\"good:1\"]", false),
	                fmt("{\"Config\":\"%s.json\",\"RepoTags\":[\"bad:1\"],"
	                    "\"Layers\":[\"nothere/layer.tar\",\"x\"]}",
	                    husk_digest_hex(t.config.digest))));
	refused_arc(f, &a, ENOENT, "manifest.json image 2: layer 1");
}

/* ---- limits: early commits ---- */

static void early_commits_keep_the_store_consistent(void **state)
{
	struct fx *f = *state;
	struct arc a;
	struct timg t;
	/* Nothing in memory, one open writer: every file is spooled and
	 * most are committed early; JSON is read back from the store. */
	struct husk_load_limits lim = {.memory_max = 1, .open_blobs_max = 1};
	oci_archive(&a, &t);
	arc_tar(&a, path_in(f, "oci.tar"), false);
	f->n_lines = 0;
	must(husk_image_load_limited(f->s, path_in(f, "oci.tar"), -1, &lim,
	                             on_loaded, f, &f->e),
	     &f->e);
	assert_lines(f, 1, "Loaded image: example.com/app:1");
	assert_image(f, "example.com/app:1", &t, OCI_TAR_GZIP, true);
	must(husk_store_check(f->s, &f->e), &f->e);

	/* A failure after early commits records nothing and leaves only
	 * unreferenced, valid blobs, which prune collects once the handle
	 * is closed. */
	struct timg u;
	struct arc b = {0};
	timg_make(&u, "late-failure", 2, false);
	add_legacy(&b, &u);
	arc_text(&b, "manifest.json",
	         fmt("[%s]", docker_item(&u, "[\"late:1\"]", false)));
	arc_find(&b, fmt("%s.json", husk_digest_hex(u.config.digest)))->name =
	    "renamed.json";
	arc_tar(&b, path_in(f, "b.tar"), false);
	struct husk_error e = {0};
	assert_int_equal(husk_image_load_limited(f->s, path_in(f, "b.tar"), -1,
	                                         &lim, NULL, NULL, &e),
	                 -ENOENT);
	assert_int_equal(count_images(f), 1);
	must(husk_store_check(f->s, &f->e), &f->e);
	husk_store_close(f->s);
	must(husk_store_open(f->root, &f->s, &f->e), &f->e);
	struct husk_prune_result res = {0};
	must(husk_store_prune(f->s, NULL, NULL, &res, &f->e), &f->e);
	assert_int_equal(res.images_deleted, 0);
	assert_true(res.blobs_deleted >= 1);
	assert_int_equal(count_images(f), 1);
	must(husk_store_check(f->s, &f->e), &f->e);
}

/* ---- a real docker save ---- */

static const char *repo_dir(void)
{
	const char *r = getenv("HUSK_REPO");
	return r && *r ? r : ".";
}

/* Applies img's layers in order into dir. */
static void apply_image(struct fx *f, const char *what, const char *dir)
{
	struct husk_image img;
	struct husk_layer_stats st;
	must(husk_store_image_get(f->s, what, &img, &f->e), &f->e);
	assert_int_equal(mkdir(dir, 0755), 0);
	for (size_t i = 0; i < img.n_layers; i++) {
		char blob[700];
		must(husk_store_blob_path(f->s, img.layers[i].digest, blob,
		                          sizeof(blob), &f->e),
		     &f->e);
		must(husk_layer_apply(dir, blob, 0, &st, &f->e), &f->e);
	}
	husk_image_free(&img);
}

static void real_docker_save(void **state)
{
	struct fx *f = *state;
	const char *out = path_in(f, "docker.tar");
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "%s/tests/images/docker-save.sh %s >%s 2>&1",
	         repo_dir(), out, path_in(f, "docker-save.log"));
	int st = system(cmd);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
		snprintf(cmd, sizeof(cmd), "cat %s >&2",
		         path_in(f, "docker-save.log"));
		if (system(cmd) != 0)
			print_message("docker-save.sh skipped\n");
		print_message("skipped: no dockerd can run here\n");
		skip();
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(cmd, sizeof(cmd), "cat %s >&2",
		         path_in(f, "docker-save.log"));
		assert_int_equal(system(cmd), 0);
		fail_msg("docker-save.sh failed");
	}
	load_path(f, out);
	/* In manifest.json's order, which is docker's own. */
	bool built = f->n_lines == 2;
	assert_true(f->n_lines == 1 || built);
	assert_true(has_line(f, "Loaded image: husk-test/busybox:1"));
	apply_image(f, "husk-test/busybox:1", path_in(f, "root1"));
	struct stat sb;
	assert_int_equal(stat(path_in(f, "root1/bin/busybox"), &sb), 0);
	if (built) {
		assert_true(has_line(f, "Loaded image: husk-test/busybox:2"));
		apply_image(f, "husk-test/busybox:2", path_in(f, "root2"));
		int fd = open(path_in(f, "root2/hello.txt"), O_RDONLY);
		char buf[64] = {0};
		assert_true(fd >= 0);
		assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
		close(fd);
		assert_string_equal(buf, "hello from a second layer\n");
	}

	/* skopeo's OCI archive of the same image: gzip layers, new config. */
	if (system("command -v skopeo >/dev/null") != 0)
		return;
	const char *tag = built ? "husk-test/busybox:2" : "husk-test/busybox:1";
	snprintf(cmd, sizeof(cmd),
	         "skopeo --insecure-policy copy -q docker-archive:%s:%s "
	         "oci-archive:%s:husk-test/busybox:oci >%s 2>&1",
	         out, tag, path_in(f, "oci.tar"), path_in(f, "skopeo.log"));
	if (system(cmd) != 0) {
		snprintf(cmd, sizeof(cmd), "cat %s >&2",
		         path_in(f, "skopeo.log"));
		if (system(cmd) != 0)
			print_message("no skopeo log\n");
		print_message("skopeo copy failed; OCI part left out\n");
		return;
	}
	load_path(f, path_in(f, "oci.tar"));
	assert_lines(f, 1, "Loaded image: husk-test/busybox:oci");
	apply_image(f, "husk-test/busybox:oci", path_in(f, "root3"));
	assert_int_equal(stat(path_in(f, "root3/bin/busybox"), &sb), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, pool_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(docker_legacy_two_layers),
	    T(docker_with_oci_layout_inside),
	    T(oci_layout_directory),
	    T(directory_links_stay_inside),
	    T(oci_layout_tar_from_a_pipe),
	    T(several_docker_images),
	    T(multi_platform_index),
	    T(not_an_archive_of_images),
	    T(malformed_manifest_json),
	    T(layer_paths_must_stay_inside),
	    T(diff_ids_must_match_layers),
	    T(oci_blob_must_match_its_name),
	    T(unknown_media_types),
	    T(huge_json_is_refused_early),
	    T(truncated_archive),
	    T(bad_second_image_loads_nothing),
	    T(early_commits_keep_the_store_consistent),
	    T(real_docker_save),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
