/* Pulling from registries (src/lib/registry_*.c) against real registries
 * and a fake one.
 *
 * The group setup builds the test images (tests/images/build.sh), starts
 * two docker-registry instances on loopback (tests/images/registry.sh:
 * anonymous, and HTTP Basic with a bcrypt htpasswd) and pushes the images
 * (tests/images/push.sh). Without docker-registry, skopeo or htpasswd the
 * tests that need a registry are skipped with a message; without the
 * image tools, all are.
 *
 * What a real registry refuses to serve (a blob that does not match its
 * digest, a truncated transfer, a 100 MB manifest, redirects, a token
 * service) comes from a fake server: a forked child answering canned
 * responses from a route table, one connection at a time, logging every
 * request head to a file so a test can see what the client sent. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "scratch.h"

#include "husk/layer.h"
#include "husk/registry.h"

#define USER     "alice"
#define PASSWORD "s3cret:pass"

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_CONFIG   "application/vnd.oci.image.config.v1+json"
#define MT_OCI_GZIP     "application/vnd.oci.image.layer.v1.tar+gzip"

/* ---- the group's environment ---- */

static struct {
	bool images;     /* build.sh ran: fake-server tests can run */
	bool registries; /* registries up, images pushed */
	char why[200];   /* why tests are skipped */
	char dir[64];    /* everything lives here */
	char repo[512];  /* the source tree */
	int anon_port, auth_port;
} env;

static void need_images(void)
{
	if (!env.images) {
		print_message("# skipped: %s\n", env.why);
		skip();
	}
}

static void need_registries(void)
{
	need_images();
	if (!env.registries) {
		print_message("# skipped: %s\n", env.why);
		skip();
	}
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs registry.sh start and returns the port it prints, or -1. */
static int start_registry(const char *name, const char *extra)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
	         "%s/tests/images/registry.sh start %s/%s %s 2>>%s/setup.log",
	         env.repo, env.dir, name, extra, env.dir);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	int port = -1;
	if (fscanf(p, "%d", &port) != 1)
		port = -1;
	return pclose(p) == 0 ? port : -1;
}

static const char *image_dir(void)
{
	static char b[128];
	snprintf(b, sizeof(b), "%s/images", env.dir);
	return b;
}

/* The digest build.sh recorded for image name. */
static const char *built_digest(const char *name)
{
	static char d[4][HUSK_DIGEST_MAX];
	static int next;
	char *out = d[next++ % 4];
	char path[256];
	snprintf(path, sizeof(path), "%s/%s.digest", image_dir(), name);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(out, HUSK_DIGEST_MAX, f));
	fclose(f);
	out[strcspn(out, "\n")] = '\0';
	assert_true(husk_digest_valid(out));
	return out;
}

static bool have_tools(const char *tools)
{
	return sh("for t in %s; do command -v $t >/dev/null || exit 1; done",
	          tools) == 0;
}

static void stop_registries(void)
{
	if (env.anon_port > 0)
		sh("%s/tests/images/registry.sh stop %s/anon", env.repo,
		   env.dir);
	if (env.auth_port > 0)
		sh("%s/tests/images/registry.sh stop %s/auth", env.repo,
		   env.dir);
	env.anon_port = env.auth_port = 0;
}

static int group_setup(void **state)
{
	const char *repo = getenv("HUSK_REPO");
	snprintf(env.repo, sizeof(env.repo), "%s", repo && *repo ? repo : ".");
	snprintf(env.dir, sizeof(env.dir), "/tmp/husk-registry.XXXXXX");
	if (!mkdtemp(env.dir))
		return -1;
	if (access("tests/images/build.sh", X_OK) != 0 && !(repo && *repo)) {
		snprintf(env.why, sizeof(env.why),
		         "run from the source tree or set HUSK_REPO");
		return 0;
	}
	if (!have_tools("tar gzip zstd sha256sum")) {
		snprintf(env.why, sizeof(env.why),
		         "tar, gzip, zstd or sha256sum missing");
		return 0;
	}
	if (sh("%s/tests/images/build.sh %s >>%s/setup.log 2>&1", env.repo,
	       image_dir(), env.dir) != 0) {
		print_error("build.sh failed; see %s/setup.log\n", env.dir);
		return -1;
	}
	env.images = true;
	if (!have_tools("docker-registry skopeo htpasswd curl")) {
		snprintf(env.why, sizeof(env.why),
		         "docker-registry, skopeo, htpasswd or curl missing "
		         "(apt-get install docker-registry skopeo "
		         "apache2-utils curl)");
		return 0;
	}
	env.anon_port = start_registry("anon", "");
	env.auth_port =
	    start_registry("auth", "--htpasswd '" USER ":" PASSWORD "'");
	if (env.anon_port < 0 || env.auth_port < 0 ||
	    sh("%s/tests/images/push.sh %s 127.0.0.1:%d >>%s/setup.log 2>&1",
	       env.repo, image_dir(), env.anon_port, env.dir) != 0 ||
	    sh("%s/tests/images/push.sh %s 127.0.0.1:%d --creds '" USER
	       ":" PASSWORD "' busybox >>%s/setup.log 2>&1",
	       env.repo, image_dir(), env.auth_port, env.dir) != 0) {
		print_error("registries or pushes failed; see %s/setup.log\n",
		            env.dir);
		stop_registries();
		return -1;
	}
	env.registries = true;
	return 0;
}

static int group_teardown(void **state)
{
	stop_registries();
	if (env.dir[0] && !getenv("HUSK_KEEP_TEST_DIR"))
		sh("rm -rf '%s'", env.dir);
	return 0;
}

/* ---- each test: a fresh store and options ---- */

struct fx {
	void *sc;
	struct husk_store *s;
	struct husk_pull_opts o;
	char auth[256];
	struct husk_error e;
	/* Progress: the first and the last report of one digest. */
	const char *watch;
	bool seen;
	struct husk_pull_progress first, last;
	size_t reports;
};

static void on_progress(const struct husk_pull_progress *p, void *ctx)
{
	struct fx *f = ctx;
	f->reports++;
	assert_true(p->done <= p->total);
	if (!f->watch || strcmp(p->digest, f->watch) != 0)
		return;
	if (!f->seen)
		f->first = *p;
	f->seen = true;
	f->last = *p;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	scratch_setup(&f->sc, "husk-reg");
	struct scratch *sc = f->sc;
	if (husk_store_open(at(sc, "store"), &f->s, &f->e) < 0)
		fail_msg("open: %s", f->e.msg);
	/* Never the host's own credentials. */
	snprintf(f->auth, sizeof(f->auth), "%s", at(sc, "auth.json"));
	f->o.auth_file = f->auth;
	f->o.progress = on_progress;
	f->o.progress_ctx = f;
	*state = f;
	return 0;
}

static void fakes_stop(pid_t pid);

static int teardown(void **state)
{
	struct fx *f = *state;
	fakes_stop(0);
	husk_store_close(f->s);
	scratch_teardown(&f->sc);
	free(f);
	return 0;
}

static void must(int rc, const struct husk_error *e)
{
	if (rc < 0)
		fail_msg("rc %d: %s", rc, e->msg);
}

static void expect_error(int rc, int code, const struct husk_error *e,
                         const char *needle)
{
	if (rc != -code || !strstr(e->msg, needle))
		fail_msg("want -%d with '%s', got %d: %s", code, needle, rc,
		         e->msg);
}

static const char *anon_ref(const char *name)
{
	static char b[4][128];
	static int next;
	char *out = b[next++ % 4];
	snprintf(out, sizeof(b[0]), "127.0.0.1:%d/%s", env.anon_port, name);
	return out;
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

/* The store is consistent and holds no image (partial downloads are
 * left alone: a prune would remove them). */
static void assert_store_clean(struct fx *f)
{
	must(husk_store_check(f->s, &f->e), &f->e);
	assert_int_equal(count_images(f), 0);
}

static bool has_ref(const struct husk_image *img, const char *ref)
{
	for (size_t i = 0; i < img->n_refs; i++)
		if (strcmp(img->refs[i], ref) == 0)
			return true;
	return false;
}

/* Pulls ref and checks what every good pull gives. */
static void pull_ok(struct fx *f, const char *ref, struct husk_image *img,
                    size_t layers)
{
	must(husk_pull(f->s, ref, &f->o, img, &f->e), &f->e);
	assert_int_equal(img->n_layers, layers);
	must(husk_store_check(f->s, &f->e), &f->e);
	struct husk_image_config cfg;
	must(husk_store_image_config(f->s, img, &cfg, &f->e), &f->e);
	assert_int_equal(cfg.n_diff_ids, layers);
	assert_string_equal(cfg.os, "linux");
	husk_image_config_free(&cfg);
	struct husk_image again;
	must(husk_store_image_get(f->s, ref, &again, &f->e), &f->e);
	assert_string_equal(again.id, img->id);
	husk_image_free(&again);
}

/* ---- real registries ---- */

static void pull_busybox(void **state)
{
	need_registries();
	struct fx *f = *state;
	struct husk_image img;
	pull_ok(f, anon_ref("busybox"), &img, 1);
	assert_string_equal(img.manifest_digest, built_digest("busybox"));
	assert_string_equal(img.architecture, "amd64");
	assert_string_equal(img.layers[0].media_type, MT_OCI_GZIP);
	char ref[200];
	snprintf(ref, sizeof(ref), "%s:latest", anon_ref("busybox"));
	assert_true(has_ref(&img, ref));
	snprintf(ref, sizeof(ref), "%s@%s", anon_ref("busybox"),
	         built_digest("busybox"));
	assert_true(has_ref(&img, ref));
	struct husk_image_config cfg;
	must(husk_store_image_config(f->s, &img, &cfg, &f->e), &f->e);
	assert_int_equal(cfg.n_cmd, 1);
	assert_string_equal(cfg.cmd[0], "sh");
	husk_image_config_free(&cfg);
	assert_true(f->reports >= 2);
	husk_image_free(&img);
}

static bool exists(const struct scratch *sc, const char *rel)
{
	struct stat st;
	return lstat(at(sc, rel), &st) == 0;
}

/* Three layers; applied in order they give the whiteouts' result. */
static void pull_layers(void **state)
{
	need_registries();
	struct fx *f = *state;
	struct husk_image img;
	pull_ok(f, anon_ref("layers"), &img, 3);
	assert_string_equal(img.manifest_digest, built_digest("layers"));
	if (geteuid() != 0) {
		husk_image_free(&img);
		return; /* applying needs root for the owners */
	}
	struct scratch *sc = f->sc;
	assert_int_equal(mkdir(at(sc, "root"), 0755), 0);
	int root = open(at(sc, "root"), O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(root >= 0);
	for (size_t i = 0; i < img.n_layers; i++) {
		int fd;
		must(husk_store_blob_open(f->s, img.layers[i].digest,
		                          (int64_t)img.layers[i].size, true,
		                          &fd, &f->e),
		     &f->e);
		must(husk_layer_apply_fd(root, fd, HUSK_LAYER_SKIP_DEVICES,
		                         NULL, &f->e),
		     &f->e);
		close(fd);
	}
	close(root);
	assert_true(exists(sc, "root/bin/busybox"));
	assert_false(exists(sc, "root/etc/removeme"));
	assert_false(exists(sc, "root/opt/gone"));
	assert_false(exists(sc, "root/opt/opaque/a"));
	assert_false(exists(sc, "root/opt/opaque/b"));
	assert_true(exists(sc, "root/opt/opaque/c"));
	assert_true(exists(sc, "root/opt/kept/file"));
	husk_image_free(&img);
}

static void pull_multiarch_default_amd64(void **state)
{
	need_registries();
	struct fx *f = *state;
	struct husk_image img;
	pull_ok(f, anon_ref("multiarch"), &img, 1);
	/* Recorded under the index's digest, what the tag names. */
	assert_string_equal(img.manifest_digest, built_digest("multiarch"));
	assert_string_equal(img.architecture, "amd64");
	husk_image_free(&img);
}

static void pull_multiarch_arm64(void **state)
{
	need_registries();
	struct fx *f = *state;
	struct husk_image img;
	f->o.platform = "linux/arm64";
	pull_ok(f, anon_ref("multiarch"), &img, 1);
	assert_string_equal(img.architecture, "arm64");
	assert_string_equal(img.variant, "v8");
	char *id = strdup(img.id);
	husk_image_free(&img);
	f->o.platform = "linux/arm64/v8";
	pull_ok(f, anon_ref("multiarch"), &img, 1);
	assert_string_equal(img.id, id);
	free(id);
	husk_image_free(&img);
}

static void pull_multiarch_missing_platform(void **state)
{
	need_registries();
	struct fx *f = *state;
	struct husk_image img;
	f->o.platform = "linux/s390x";
	int rc = husk_pull(f->s, anon_ref("multiarch"), &f->o, &img, &f->e);
	expect_error(rc, ENOENT, &f->e, "no image for platform linux/s390x");
	assert_non_null(strstr(f->e.msg, "linux/amd64, linux/arm64/v8"));
	assert_store_clean(f);
	f->o.platform = "linux";
	rc = husk_pull(f->s, anon_ref("multiarch"), &f->o, &img, &f->e);
	expect_error(rc, EINVAL, &f->e, "invalid platform");
}

/* --platform on a single-platform image must match its config. */
static void pull_single_platform_mismatch(void **state)
{
	need_registries();
	struct fx *f = *state;
	struct husk_image img;
	f->o.platform = "linux/arm64";
	int rc = husk_pull(f->s, anon_ref("busybox"), &f->o, &img, &f->e);
	expect_error(rc, ENOENT, &f->e, "is for linux/amd64, not linux/arm64");
	assert_store_clean(f);
}

static void pull_zstd(void **state)
{
	need_registries();
	struct fx *f = *state;
	struct husk_image img;
	pull_ok(f, anon_ref("zstd"), &img, 1);
	assert_string_equal(img.manifest_digest, built_digest("zstd"));
	assert_string_equal(img.layers[0].media_type,
	                    "application/vnd.oci.image.layer.v1.tar+zstd");
	husk_image_free(&img);
}

static void pull_docker_schema2(void **state)
{
	need_registries();
	struct fx *f = *state;
	struct husk_image img;
	pull_ok(f, anon_ref("docker"), &img, 1);
	assert_string_equal(img.manifest_digest, built_digest("docker"));
	assert_string_equal(img.layers[0].media_type,
	                    "application/vnd.docker.image.rootfs.diff.tar."
	                    "gzip");
	husk_image_free(&img);
}

static void pull_by_digest(void **state)
{
	need_registries();
	struct fx *f = *state;
	char ref[256];
	snprintf(ref, sizeof(ref), "%s@%s", anon_ref("multiarch"),
	         built_digest("multiarch"));
	struct husk_image img;
	pull_ok(f, ref, &img, 1);
	assert_true(has_ref(&img, ref));
	char tag[200];
	snprintf(tag, sizeof(tag), "%s:latest", anon_ref("multiarch"));
	assert_false(has_ref(&img, tag)); /* no tag was asked for */
	husk_image_free(&img);
	/* A digest the registry does not have. */
	snprintf(ref, sizeof(ref), "%s@sha256:%064d", anon_ref("busybox"), 0);
	int rc = husk_pull(f->s, ref, &f->o, &img, &f->e);
	expect_error(rc, ENOENT, &f->e, "404 Not Found: manifest unknown");
	rc = husk_pull(f->s, anon_ref("nosuch:tag"), &f->o, &img, &f->e);
	expect_error(rc, ENOENT, &f->e, "manifest unknown");
}

/* A second image sharing a layer holds it instead of downloading. */
static void pull_reuses_blobs(void **state)
{
	need_registries();
	struct fx *f = *state;
	struct husk_image a, b;
	pull_ok(f, anon_ref("busybox"), &a, 1);
	f->watch = a.layers[0].digest;
	pull_ok(f, anon_ref("docker"), &b, 1);
	assert_true(f->seen);
	assert_true(f->first.finished); /* reported once, already there */
	assert_int_equal(f->first.done, f->first.total);
	husk_image_free(&a);
	husk_image_free(&b);
}

/* ---- credentials ---- */

static void write_auth_file(const char *path, const char *host,
                            const char *user, const char *password)
{
	char pair[128], cmd[512];
	snprintf(pair, sizeof(pair), "%s:%s", user, password);
	snprintf(cmd, sizeof(cmd),
	         "printf '{\"auths\":{\"%s\":{\"auth\":\"%%s\"}},"
	         "\"credsStore\":\"keep-me\"}' \"$(printf %%s '%s' | "
	         "base64 -w0)\" >'%s'",
	         host, pair, path);
	assert_int_equal(system(cmd), 0);
}

static void auth_anonymous_refused(void **state)
{
	need_registries();
	struct fx *f = *state;
	char ref[128];
	snprintf(ref, sizeof(ref), "127.0.0.1:%d/busybox", env.auth_port);
	struct husk_image img;
	int rc = husk_pull(f->s, ref, &f->o, &img, &f->e);
	expect_error(rc, EACCES, &f->e,
	             "401 Unauthorized: unauthorized: authentication "
	             "required");
	assert_store_clean(f);
	/* Wrong credentials: the same, with no hint about logging in. */
	char host[64];
	snprintf(host, sizeof(host), "127.0.0.1:%d", env.auth_port);
	write_auth_file(f->auth, host, USER, "wrong");
	rc = husk_pull(f->s, ref, &f->o, &img, &f->e);
	expect_error(rc, EACCES, &f->e, "unauthorized");
}

static void auth_file_credentials(void **state)
{
	need_registries();
	struct fx *f = *state;
	char host[64], ref[128];
	snprintf(host, sizeof(host), "127.0.0.1:%d", env.auth_port);
	snprintf(ref, sizeof(ref), "%s/busybox", host);
	write_auth_file(f->auth, host, USER, PASSWORD);
	struct husk_image img;
	pull_ok(f, ref, &img, 1);
	husk_image_free(&img);
	/* The same through $HUSK_AUTH_FILE. */
	husk_store_close(f->s);
	must(husk_store_open(at(f->sc, "store2"), &f->s, &f->e), &f->e);
	f->o.auth_file = NULL;
	setenv("HUSK_AUTH_FILE", f->auth, 1);
	int rc = husk_pull(f->s, ref, &f->o, &img, &f->e);
	unsetenv("HUSK_AUTH_FILE");
	must(rc, &f->e);
	husk_image_free(&img);
}

/* The whole file, NUL-terminated; NULL when it cannot be read. */
static char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	char *b = calloc(1, (size_t)st.st_size + 1);
	assert_non_null(b);
	ssize_t n = read(fd, b, (size_t)st.st_size);
	close(fd);
	assert_int_equal(n, st.st_size);
	if (len)
		*len = (size_t)n;
	return b;
}

static void login_logout(void **state)
{
	need_registries();
	struct fx *f = *state;
	char host[64], ref[128];
	snprintf(host, sizeof(host), "127.0.0.1:%d", env.auth_port);
	snprintf(ref, sizeof(ref), "%s/busybox", host);
	/* The file's other entries and keys stay. */
	snprintf(f->auth, sizeof(f->auth), "%s", at(f->sc, "cfg/husk/a.json"));
	assert_int_equal(mkdir(at(f->sc, "cfg"), 0755), 0);
	assert_int_equal(mkdir(at(f->sc, "cfg/husk"), 0700), 0);
	write_auth_file(f->auth, "other.example", "bob", "x");
	int rc = husk_registry_login(host, USER, "wrong", &f->o, &f->e);
	expect_error(rc, EACCES, &f->e, "401 Unauthorized");
	char *text = slurp(f->auth, NULL);
	assert_null(strstr(text, host));
	free(text);

	must(husk_registry_login(host, USER, PASSWORD, &f->o, &f->e), &f->e);
	struct stat st;
	assert_int_equal(stat(f->auth, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	text = slurp(f->auth, NULL);
	assert_non_null(strstr(text, host));
	assert_non_null(strstr(text, "other.example"));
	assert_non_null(strstr(text, "keep-me"));
	free(text);
	struct husk_image img;
	pull_ok(f, ref, &img, 1);
	husk_image_free(&img);

	must(husk_registry_logout(host, &f->o, &f->e), &f->e);
	text = slurp(f->auth, NULL);
	assert_null(strstr(text, host));
	assert_non_null(strstr(text, "other.example"));
	free(text);
	rc = husk_registry_logout(host, &f->o, &f->e);
	expect_error(rc, ENOENT, &f->e, "not logged in");
	husk_store_close(f->s);
	must(husk_store_open(at(f->sc, "store2"), &f->s, &f->e), &f->e);
	rc = husk_pull(f->s, ref, &f->o, &img, &f->e);
	expect_error(rc, EACCES, &f->e, "unauthorized");

	/* A fresh file, parent directories made 0700. */
	snprintf(f->auth, sizeof(f->auth), "%s", at(f->sc, "new/dir/a.json"));
	must(husk_registry_login(host, USER, PASSWORD, &f->o, &f->e), &f->e);
	assert_int_equal(stat(at(f->sc, "new/dir"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(f->auth, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	rc = husk_registry_login("bad host!", USER, PASSWORD, &f->o, &f->e);
	expect_error(rc, EINVAL, &f->e, "invalid registry host");
	rc = husk_registry_login(host, "a:b", PASSWORD, &f->o, &f->e);
	expect_error(rc, EINVAL, &f->e, "without ':'");
}

/* ---- the fake registry ---- */

struct route {
	const char *path; /* exact, without the query */
	int status;
	const char *headers; /* extra lines, each ending in \r\n */
	const void *body;
	size_t len;
	size_t send;        /* close after this many body bytes (0: all) */
	uint64_t stream;    /* send this many filler bytes as the body */
	bool no_length;     /* no Content-Length: the body ends at close */
	const char *need;   /* a request header line this route wants */
	const char *refuse; /* WWW-Authenticate sent when need is missing */
};

/* A route; the fields after len are given by name. */
#define ROUTE(p, st, h, b, l, ...)                                             \
	{                                                                      \
		.path = (p), .status = (st), .headers = (h), .body = (b),      \
		.len = (l), __VA_ARGS__                                        \
	}

struct fake {
	pid_t pid;
	int fd, port;
	char log[256];
};

static void fk_write(int fd, const void *p, size_t n, uint64_t *sent)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return;
		p = (const char *)p + w;
		n -= (size_t)w;
		*sent += (uint64_t)w;
	}
}

static void fk_log(const char *log, const char *text)
{
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		uint64_t ignored = 0;
		fk_write(fd, text, strlen(text), &ignored);
		close(fd);
	}
}

static const struct route *fk_find(const struct route *r, size_t n,
                                   const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(r[i].path, path) == 0)
			return &r[i];
	return NULL;
}

static void fk_respond(int c, const struct route *rt, const char *req,
                       const char *log)
{
	static const char unauthorized[] =
	    "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":"
	    "\"authentication required\"}]}";
	static const char unknown[] =
	    "{\"errors\":[{\"code\":\"NAME_UNKNOWN\",\"message\":"
	    "\"repository name not known to registry\"}]}";
	char head[1024];
	const char *body = rt ? rt->body : unknown;
	size_t len = rt ? rt->len : strlen(unknown);
	int status = rt ? rt->status : 404;
	char extra[512] = "";
	if (rt && rt->need && !strcasestr(req, rt->need)) {
		status = 401;
		body = unauthorized;
		len = strlen(unauthorized);
		snprintf(extra, sizeof(extra), "WWW-Authenticate: %s\r\n",
		         rt->refuse ? rt->refuse : "Basic realm=\"fake\"");
		rt = NULL;
	} else if (rt && rt->headers) {
		snprintf(extra, sizeof(extra), "%s", rt->headers);
	}
	uint64_t total = rt && rt->stream ? rt->stream : len;
	int n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\n", status);
	if (!(rt && rt->no_length))
		n += snprintf(head + n, sizeof(head) - (size_t)n,
		              "Content-Length: %llu\r\n",
		              (unsigned long long)total);
	snprintf(head + n, sizeof(head) - (size_t)n,
	         "Connection: close\r\n%s\r\n", extra);
	uint64_t sent = 0;
	fk_write(c, head, strlen(head), &sent);
	sent = 0;
	if (rt && rt->stream) {
		static char fill[64 << 10];
		memset(fill, ' ', sizeof(fill));
		fill[0] = '{';
		while (sent < rt->stream) {
			uint64_t before = sent;
			fk_write(c, fill, sizeof(fill), &sent);
			if (sent - before < sizeof(fill))
				break; /* the client hung up */
		}
	} else {
		size_t want = rt && rt->send ? rt->send : len;
		fk_write(c, body, want, &sent);
	}
	char line[64];
	snprintf(line, sizeof(line), "sent %llu\n", (unsigned long long)sent);
	fk_log(log, line);
}

/* One connection: read the request head, log it, answer, close. */
static void fk_serve(int c, const struct route *routes, size_t n,
                     const char *log)
{
	char req[16384];
	size_t len = 0;
	while (len < sizeof(req) - 1) {
		ssize_t r = read(c, req + len, sizeof(req) - 1 - len);
		if (r <= 0)
			return;
		if (req[0] == 0x16)
			return; /* a TLS handshake: we only speak HTTP */
		len += (size_t)r;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	fk_log(log, req);
	char path[1024] = "";
	sscanf(req, "%*s %1023s", path);
	path[strcspn(path, "?")] = '\0';
	fk_respond(c, fk_find(routes, n, path), req, log);
}

/* Listens on 127.0.0.1 and a free port (fk->port) before any route is
 * known, since a route may have to name the port. */
static void fake_listen(struct fake *fk, const struct scratch *sc,
                        const char *name)
{
	fk->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fk->fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	assert_int_equal(bind(fk->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fk->fd, 64), 0);
	assert_int_equal(getsockname(fk->fd, (struct sockaddr *)&a, &alen), 0);
	fk->port = ntohs(a.sin_port);
	snprintf(fk->log, sizeof(fk->log), "%s", at(sc, name));
}

/* Fake servers still running: a failed assertion skips fake_stop, so
 * teardown stops them. */
static pid_t fakes[8];

/* Forks the server; it answers from its copy of routes until killed,
 * or until the test program ends. */
static void fake_serve(struct fake *fk, const struct route *routes, size_t n)
{
	fk->pid = fork();
	assert_true(fk->pid >= 0);
	if (fk->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* Not holding the test's output open. */
		int null = open("/dev/null", O_RDWR);
		dup2(null, 1);
		dup2(null, 2);
		signal(SIGPIPE, SIG_IGN);
		for (;;) {
			int c = accept(fk->fd, NULL, NULL);
			if (c < 0)
				continue;
			fk_serve(c, routes, n, fk->log);
			shutdown(c, SHUT_RDWR);
			close(c);
		}
	}
	close(fk->fd);
	fk->fd = -1;
	for (size_t i = 0; i < sizeof(fakes) / sizeof(*fakes); i++)
		if (!fakes[i]) {
			fakes[i] = fk->pid;
			break;
		}
}

static void fakes_stop(pid_t pid)
{
	for (size_t i = 0; i < sizeof(fakes) / sizeof(*fakes); i++)
		if (fakes[i] && (!pid || fakes[i] == pid)) {
			kill(fakes[i], SIGKILL);
			waitpid(fakes[i], NULL, 0);
			fakes[i] = 0;
		}
}

static void fake_start(struct fake *fk, const struct scratch *sc,
                       const char *name, const struct route *routes, size_t n)
{
	fake_listen(fk, sc, name);
	fake_serve(fk, routes, n);
}

static void fake_stop(struct fake *fk)
{
	if (fk->pid > 0)
		fakes_stop(fk->pid);
	fk->pid = 0;
}

/* A small image for the fake registry: a config and one layer. */
struct fimg {
	char layer_digest[HUSK_DIGEST_MAX], cfg_digest[HUSK_DIGEST_MAX];
	char manifest_digest[HUSK_DIGEST_MAX];
	char config[512], manifest[1024];
	char cfg_path[128], layer_path[128];
};

static void fimg_make(struct fimg *fi, const void *layer, size_t len,
                      const char *layer_mt, const char *config_mt)
{
	assert_int_equal(husk_sha256_buf(layer, len, fi->layer_digest, NULL),
	                 0);
	snprintf(fi->config, sizeof(fi->config),
	         "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{"
	         "\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
	         fi->layer_digest);
	assert_int_equal(husk_sha256_buf(fi->config, strlen(fi->config),
	                                 fi->cfg_digest, NULL),
	                 0);
	snprintf(fi->manifest, sizeof(fi->manifest),
	         "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST
	         "\",\"config\":{\"mediaType\":\"%s\",\"digest\":\"%s\","
	         "\"size\":%zu},\"layers\":[{\"mediaType\":\"%s\","
	         "\"digest\":\"%s\",\"size\":%zu}]}",
	         config_mt, fi->cfg_digest, strlen(fi->config), layer_mt,
	         fi->layer_digest, len);
	assert_int_equal(husk_sha256_buf(fi->manifest, strlen(fi->manifest),
	                                 fi->manifest_digest, NULL),
	                 0);
	snprintf(fi->cfg_path, sizeof(fi->cfg_path), "/v2/test/blobs/%s",
	         fi->cfg_digest);
	snprintf(fi->layer_path, sizeof(fi->layer_path), "/v2/test/blobs/%s",
	         fi->layer_digest);
}

#define CT_OCI "Content-Type: " MT_OCI_MANIFEST "\r\n"

/* "Authorization: Basic base64(USER:PASSWORD)". */
static void basic_auth(char *out, size_t cap)
{
	FILE *p = popen("printf %s '" USER ":" PASSWORD "' | base64 -w0", "r");
	assert_non_null(p);
	char b64[64] = "";
	assert_non_null(fgets(b64, sizeof(b64), p));
	pclose(p);
	snprintf(out, cap, "Authorization: Basic %s", b64);
}

static const char *fake_ref(const struct fake *fk, const char *rest)
{
	static char b[160];
	snprintf(b, sizeof(b), "127.0.0.1:%d/test%s", fk->port, rest);
	return b;
}

static void pull_fails(struct fx *f, const struct fake *fk, const char *rest,
                       int code, const char *needle)
{
	struct husk_image img;
	int rc = husk_pull(f->s, fake_ref(fk, rest), &f->o, &img, &f->e);
	expect_error(rc, code, &f->e, needle);
	assert_store_clean(f);
}

/* A manifest of a kind husk does not know, schema 1, a mediaType that
 * contradicts the Content-Type, an unknown layer type, a non-image
 * config. */
static void hostile_media_types(void **state)
{
	need_images();
	struct fx *f = *state;
	static const char unknown[] = "{\"schemaVersion\":2,\"mediaType\":"
	                              "\"application/vnd.example.thing+json\"}";
	static const char schema1[] =
	    "{\"schemaVersion\":1,\"name\":\"test\",\"fsLayers\":[]}";
	static const char index_as_manifest[] =
	    "{\"schemaVersion\":2,\"mediaType\":"
	    "\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}";
	struct fimg odd, art;
	fimg_make(&odd, "x", 1, "application/vnd.example.layer", MT_OCI_CONFIG);
	fimg_make(&art, "x", 1, MT_OCI_GZIP,
	          "application/vnd.example.artifact.config.v1+json");
	struct route routes[] = {
	    ROUTE("/v2/", 200, NULL, "{}", 2),
	    ROUTE("/v2/test/manifests/unknown", 200,
	          "Content-Type: application/vnd.example.thing+json\r\n",
	          unknown, strlen(unknown)),
	    ROUTE(
	        "/v2/test/manifests/schema1", 200,
	        "Content-Type: application/vnd.docker.distribution.manifest.v1+"
	        "prettyjws\r\n",
	        schema1, strlen(schema1)),
	    ROUTE("/v2/test/manifests/confused", 200, CT_OCI, index_as_manifest,
	          strlen(index_as_manifest)),
	    ROUTE("/v2/test/manifests/oddlayer", 200, CT_OCI, odd.manifest,
	          strlen(odd.manifest)),
	    ROUTE(odd.cfg_path, 200, NULL, odd.config, strlen(odd.config)),
	    ROUTE("/v2/test/manifests/artifact", 200, CT_OCI, art.manifest,
	          strlen(art.manifest)),
	};
	struct fake fk;
	fake_start(&fk, f->sc, "log", routes, sizeof(routes) / sizeof(*routes));
	pull_fails(f, &fk, ":unknown", EPROTONOSUPPORT,
	           "unsupported manifest media type "
	           "'application/vnd.example.thing+json'");
	pull_fails(f, &fk, ":schema1", EPROTONOSUPPORT, "schema 1");
	pull_fails(f, &fk, ":confused", EBADMSG,
	           "manifest says mediaType application/vnd.oci.image.index."
	           "v1+json but was served as " MT_OCI_MANIFEST);
	pull_fails(f, &fk, ":oddlayer", EPROTONOSUPPORT,
	           "unknown layer media type application/vnd.example.layer");
	pull_fails(f, &fk, ":artifact", EPROTONOSUPPORT,
	           "not a container image");
	fake_stop(&fk);
}

/* A blob whose bytes are not its digest; a manifest that is not the
 * digest it was asked by. */
static void hostile_digest_mismatch(void **state)
{
	need_images();
	struct fx *f = *state;
	static const char good[] = "the real layer bytes";
	static const char evil[] = "the evil layer bytes";
	struct fimg fi;
	fimg_make(&fi, good, strlen(good), MT_OCI_GZIP, MT_OCI_CONFIG);
	char by_digest[160];
	snprintf(by_digest, sizeof(by_digest),
	         "/v2/test/manifests/sha256:%064d", 7);
	struct route routes[] = {
	    ROUTE("/v2/", 200, NULL, "{}", 2),
	    ROUTE("/v2/test/manifests/latest", 200, CT_OCI, fi.manifest,
	          strlen(fi.manifest)),
	    ROUTE(by_digest, 200, CT_OCI, fi.manifest, strlen(fi.manifest)),
	    ROUTE(fi.cfg_path, 200, NULL, fi.config, strlen(fi.config)),
	    ROUTE(fi.layer_path, 200, NULL, evil, strlen(evil)),
	};
	struct fake fk;
	fake_start(&fk, f->sc, "log", routes, sizeof(routes) / sizeof(*routes));
	pull_fails(f, &fk, "", EBADMSG, "digest mismatch: expected");
	assert_false(husk_store_blob_has(f->s, fi.layer_digest));
	uint64_t partial = 1;
	must(husk_store_blob_partial(f->s, fi.layer_digest, &partial, &f->e),
	     &f->e);
	assert_int_equal(partial, 0); /* bad data is not kept to resume */
	/* The config it did fetch is no longer held: prune takes it. */
	assert_true(husk_store_blob_has(f->s, fi.cfg_digest));
	struct husk_prune_result pr = {0};
	must(husk_store_prune(f->s, NULL, NULL, &pr, &f->e), &f->e);
	assert_int_equal(pr.blobs_deleted, 1);
	assert_false(husk_store_blob_has(f->s, fi.cfg_digest));
	char ref[100];
	snprintf(ref, sizeof(ref), "@sha256:%064d", 7);
	pull_fails(f, &fk, ref, EBADMSG, "manifest digest mismatch");
	fake_stop(&fk);
}

static char *layout_blob(const char *image, const char *digest, size_t *len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s/blobs/sha256/%s", image_dir(),
	         image, husk_digest_hex(digest));
	char *b = slurp(path, len);
	assert_non_null(b);
	return b;
}

/* The busybox image's manifest and config, from the layout. */
struct bb {
	char *manifest, *config, *layer;
	size_t manifest_len, config_len, layer_len;
	char cfg_digest[HUSK_DIGEST_MAX], layer_digest[HUSK_DIGEST_MAX];
	char cfg_path[128], layer_path[128];
};

static void digest_after(const char *json, const char *key, char *out)
{
	const char *p = strstr(json, key);
	assert_non_null(p);
	p = strstr(p, "\"digest\":\"");
	assert_non_null(p);
	snprintf(out, HUSK_DIGEST_MAX, "%.71s", p + 10);
	assert_true(husk_digest_valid(out));
}

static void bb_load(struct bb *b)
{
	b->manifest =
	    layout_blob("busybox", built_digest("busybox"), &b->manifest_len);
	digest_after(b->manifest, "\"config\"", b->cfg_digest);
	digest_after(b->manifest, "\"layers\"", b->layer_digest);
	b->config = layout_blob("busybox", b->cfg_digest, &b->config_len);
	b->layer = layout_blob("busybox", b->layer_digest, &b->layer_len);
	snprintf(b->cfg_path, sizeof(b->cfg_path), "/v2/test/blobs/%s",
	         b->cfg_digest);
	snprintf(b->layer_path, sizeof(b->layer_path), "/v2/test/blobs/%s",
	         b->layer_digest);
}

static void bb_free(struct bb *b)
{
	free(b->manifest);
	free(b->config);
	free(b->layer);
}

static uint64_t partial_of(struct fx *f, const char *digest)
{
	uint64_t n = 0;
	must(husk_store_blob_partial(f->s, digest, &n, &f->e), &f->e);
	return n;
}

/* The connection closes half-way through the layer, without a
 * Content-Length to tell (the body just ends) and with one (a cut
 * transfer): an error either way, and the half kept. A server that
 * ignores Range (200) sends the start again, which husk skips, and then
 * completes the blob. */
static void hostile_truncated_blob_resumes(void **state)
{
	need_images();
	struct fx *f = *state;
	struct bb b;
	bb_load(&b);
	size_t half = b.layer_len / 2;
	struct route routes[] = {
	    ROUTE("/v2/", 200, NULL, "{}", 2),
	    ROUTE("/v2/test/manifests/latest", 200, CT_OCI, b.manifest,
	          b.manifest_len),
	    ROUTE(b.cfg_path, 200, NULL, b.config, b.config_len),
	    ROUTE(b.layer_path, 200, NULL, b.layer, b.layer_len, .send = half,
	          .no_length = true),
	};
	const size_t n = sizeof(routes) / sizeof(*routes);
	struct fake fk;
	fake_start(&fk, f->sc, "log1", routes, n);
	pull_fails(f, &fk, "", EIO, "is incomplete");
	assert_non_null(strstr(f->e.msg, "pull again to resume"));
	assert_int_equal(partial_of(f, b.layer_digest), half);
	assert_false(husk_store_blob_has(f->s, b.layer_digest));
	fake_stop(&fk);

	routes[3].no_length = false; /* the first half again, then cut */
	fake_start(&fk, f->sc, "log2", routes, n);
	pull_fails(f, &fk, "", EIO, "bytes kept; pull again to resume");
	assert_int_equal(partial_of(f, b.layer_digest), half);
	fake_stop(&fk);

	routes[3].send = 0; /* whole, and still no Range support */
	fake_start(&fk, f->sc, "log3", routes, n);
	f->watch = b.layer_digest;
	struct husk_image img;
	pull_ok(f, fake_ref(&fk, ""), &img, 1);
	assert_int_equal(f->first.done, half); /* resumed, not restarted */
	assert_true(f->last.finished);
	assert_int_equal(partial_of(f, b.layer_digest), 0);
	husk_image_free(&img);
	char *log = slurp(fk.log, NULL);
	char range[64];
	snprintf(range, sizeof(range), "Range: bytes=%zu-", half);
	assert_non_null(strstr(log, range));
	free(log);
	fake_stop(&fk);
	bb_free(&b);
}

/* Truncated by the fake, then completed by the real registry with a
 * 206 for the rest. */
static void truncated_blob_resumes_from_registry(void **state)
{
	need_registries();
	struct fx *f = *state;
	struct bb b;
	bb_load(&b);
	size_t part = b.layer_len / 3;
	struct route routes[] = {
	    ROUTE("/v2/", 200, NULL, "{}", 2),
	    ROUTE("/v2/test/manifests/latest", 200, CT_OCI, b.manifest,
	          b.manifest_len),
	    ROUTE(b.cfg_path, 200, NULL, b.config, b.config_len),
	    ROUTE(b.layer_path, 200, NULL, b.layer, b.layer_len, .send = part),
	};
	struct fake fk;
	fake_start(&fk, f->sc, "log", routes, sizeof(routes) / sizeof(*routes));
	pull_fails(f, &fk, "", EIO, "pull again to resume");
	fake_stop(&fk);
	assert_int_equal(partial_of(f, b.layer_digest), part);
	f->watch = b.layer_digest;
	struct husk_image img;
	pull_ok(f, anon_ref("busybox"), &img, 1);
	assert_int_equal(f->first.done, part);
	assert_true(f->last.finished);
	husk_image_free(&img);
	bb_free(&b);
}

/* Leaves a partial download of n bytes of junk for digest. */
static void plant_partial(struct fx *f, const char *digest, int64_t size,
                          size_t n)
{
	struct husk_blob_writer *w;
	must(husk_store_blob_begin(f->s, digest, size, HUSK_BLOB_RESUMABLE, &w,
	                           &f->e),
	     &f->e);
	char *junk = malloc(n);
	memset(junk, 'j', n);
	must(husk_blob_writer_write(w, junk, n, &f->e), &f->e);
	free(junk);
	husk_blob_writer_abort(w);
	assert_int_equal(partial_of(f, digest), n);
}

/* A partial download that is not a prefix of the blob (a damaged disk,
 * another tool) fails the digest once the rest is in: the blob is then
 * fetched again from the start, whether the partial was short or
 * already full length. */
static void damaged_partial_refetched(void **state)
{
	need_registries();
	struct fx *f = *state;
	struct bb b;
	bb_load(&b);
	for (int full = 0; full < 2; full++) {
		plant_partial(f, b.layer_digest, (int64_t)b.layer_len,
		              full ? b.layer_len : b.layer_len / 2);
		f->watch = b.layer_digest;
		f->seen = false;
		struct husk_image img;
		pull_ok(f, anon_ref("busybox"), &img, 1);
		assert_true(f->first.done > 0);
		assert_true(f->last.finished);
		husk_image_free(&img);
		struct husk_error e;
		assert_int_equal(husk_store_image_remove(f->s,
		                                         anon_ref("busybox"),
		                                         false, NULL, NULL, &e),
		                 0);
		assert_false(husk_store_blob_has(f->s, b.layer_digest));
	}
	bb_free(&b);
}

/* Another process downloading the same blob into the store: the pull
 * waits for it, then takes the finished blob without fetching it. */
static void concurrent_download_waited_for(void **state)
{
	need_registries();
	struct fx *f = *state;
	struct bb b;
	bb_load(&b);
	int go[2];
	assert_int_equal(pipe(go), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* The other pull: half now, the rest 300 ms later. */
		struct husk_store *s2;
		struct husk_blob_writer *w;
		struct husk_error e;
		int ok =
		    husk_store_open(at(f->sc, "store"), &s2, &e) == 0 &&
		    husk_store_blob_begin(s2, b.layer_digest,
		                          (int64_t)b.layer_len,
		                          HUSK_BLOB_RESUMABLE, &w, &e) == 0 &&
		    husk_blob_writer_write(w, b.layer, b.layer_len / 2, &e) ==
		        0;
		if (write(go[1], "g", 1) != 1 || !ok)
			_exit(1);
		usleep(300 * 1000);
		ok = husk_blob_writer_write(w, b.layer + b.layer_len / 2,
		                            b.layer_len - b.layer_len / 2,
		                            &e) == 0 &&
		     husk_blob_writer_commit(w, NULL, &e) == 0;
		husk_store_close(s2);
		_exit(ok ? 0 : 1);
	}
	char c;
	assert_int_equal(read(go[0], &c, 1), 1);
	close(go[0]);
	close(go[1]);
	f->watch = b.layer_digest;
	struct husk_image img;
	pull_ok(f, anon_ref("busybox"), &img, 1);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* Held once finished by the other writer, never downloaded here. */
	assert_true(f->first.finished);
	husk_image_free(&img);
	bb_free(&b);
}

/* Waits for the fake's "sent N" line after the request for path. */
static uint64_t fake_sent(const struct fake *fk)
{
	for (int i = 0; i < 500; i++) {
		char *log = slurp(fk->log, NULL);
		char *s = log ? strstr(log, "/manifests/") : NULL;
		s = s ? strstr(s, "sent ") : NULL;
		uint64_t n = s ? strtoull(s + 5, NULL, 10) : 0;
		free(log);
		if (s)
			return n;
		usleep(10000);
	}
	fail_msg("the fake server never finished its answer");
	return 0;
}

/* 100 MB manifests, announced and not: refused after at most what the
 * socket buffers hold beyond the 4 MiB limit. */
static void hostile_huge_manifest(void **state)
{
	need_images();
	struct fx *f = *state;
	const uint64_t huge = 100ull << 20;
	for (int announced = 1; announced >= 0; announced--) {
		struct route routes[] = {
		    ROUTE("/v2/", 200, NULL, "{}", 2),
		    ROUTE("/v2/test/manifests/latest", 200, CT_OCI, NULL, 0,
		          .stream = huge, .no_length = !announced),
		};
		struct fake fk;
		fake_start(&fk, f->sc, announced ? "log1" : "log2", routes, 2);
		pull_fails(f, &fk, "", EMSGSIZE, "is larger than 4 MiB");
		uint64_t sent = fake_sent(&fk);
		fake_stop(&fk);
		print_message("# %s 100 MB manifest: the server got %llu bytes "
		              "out\n",
		              announced ? "announced" : "unannounced",
		              (unsigned long long)sent);
		assert_true(sent < 40ull << 20);
	}
}

/* Blobs redirected to another origin get no Authorization; a redirect
 * within the registry keeps it; plain HTTP to a non-loopback host is
 * refused. */
static void hostile_redirect_drops_auth(void **state)
{
	need_images();
	struct fx *f = *state;
	static const char layer[] = "layer bytes behind a redirect";
	struct fimg fi;
	fimg_make(&fi, layer, strlen(layer), MT_OCI_GZIP, MT_OCI_CONFIG);
	struct route storage[] = {
	    ROUTE("/storage/layer", 200, NULL, layer, strlen(layer)),
	};
	struct fake st;
	fake_start(&st, f->sc, "storage.log", storage, 1);

	char need[128], to_storage[160], to_self[200], moved[160];
	basic_auth(need, sizeof(need));
	snprintf(to_storage, sizeof(to_storage),
	         "Location: http://localhost:%d/storage/layer\r\n", st.port);
	snprintf(moved, sizeof(moved), "/v2/test/moved/%s", fi.cfg_digest);
	snprintf(to_self, sizeof(to_self), "Location: %s\r\n", moved);
	struct route routes[] = {
	    ROUTE("/v2/", 200, NULL, "{}", 2, .need = need),
	    ROUTE("/v2/test/manifests/latest", 200, CT_OCI, fi.manifest,
	          strlen(fi.manifest), .need = need),
	    ROUTE(fi.cfg_path, 307, to_self, "", 0, .need = need),
	    ROUTE(moved, 200, NULL, fi.config, strlen(fi.config), .need = need),
	    ROUTE(fi.layer_path, 307, to_storage, "", 0, .need = need),
	    ROUTE("/v2/test/manifests/far", 200, CT_OCI, fi.manifest,
	          strlen(fi.manifest), .need = need),
	};
	struct fake fk;
	fake_start(&fk, f->sc, "registry.log", routes,
	           sizeof(routes) / sizeof(*routes));
	char host[64];
	snprintf(host, sizeof(host), "127.0.0.1:%d", fk.port);
	write_auth_file(f->auth, host, USER, PASSWORD);
	struct husk_image img;
	pull_ok(f, fake_ref(&fk, ""), &img, 1);
	husk_image_free(&img);
	char *reg_log = slurp(fk.log, NULL);
	char *st_log = slurp(st.log, NULL);
	assert_non_null(strstr(reg_log, need));
	assert_non_null(strstr(reg_log, "GET /v2/test/moved/"));
	assert_non_null(strstr(st_log, "GET /storage/layer"));
	assert_null(strcasestr(st_log, "authorization"));
	free(reg_log);
	free(st_log);
	fake_stop(&fk);
	fake_stop(&st);

	/* Plain HTTP to a host that is not loopback: never contacted. */
	routes[4].headers = "Location: http://192.0.2.1/storage/layer\r\n";
	husk_store_close(f->s);
	must(husk_store_open(at(f->sc, "store2"), &f->s, &f->e), &f->e);
	fake_start(&fk, f->sc, "registry2.log", routes,
	           sizeof(routes) / sizeof(*routes));
	snprintf(host, sizeof(host), "127.0.0.1:%d", fk.port);
	write_auth_file(f->auth, host, USER, PASSWORD);
	pull_fails(f, &fk, "", EPROTO, "refusing plain HTTP to 192.0.2.1:80");
	fake_stop(&fk);
}

/* The token flow: /v2/ says Bearer, the realm gives a token for the
 * pull scope against Basic credentials (or refuses anonymous ones), the
 * token opens the rest. */
static void token_auth(void **state)
{
	need_images();
	struct fx *f = *state;
	static const char layer[] = "layer bytes behind a token";
	static const char token[] =
	    "{\"token\":\"tok-123\",\"expires_in\":300}";
	static const char bearer[] = "Authorization: Bearer tok-123";
	struct fimg fi;
	fimg_make(&fi, layer, strlen(layer), MT_OCI_GZIP, MT_OCI_CONFIG);
	char basic[128], challenge[200];
	basic_auth(basic, sizeof(basic));
	struct fake fk;
	fake_listen(&fk, f->sc, "log");
	snprintf(challenge, sizeof(challenge),
	         "Bearer realm=\"http://127.0.0.1:%d/token\",service=\"fake "
	         "registry\"",
	         fk.port);
	struct route routes[] = {
	    ROUTE("/v2/", 200, NULL, "{}", 2, .need = bearer),
	    ROUTE("/token", 200, "Content-Type: application/json\r\n", token,
	          strlen(token), .need = basic, .refuse = "Basic realm=\"t\""),
	    ROUTE("/v2/test/manifests/latest", 200, CT_OCI, fi.manifest,
	          strlen(fi.manifest), .need = bearer),
	    ROUTE(fi.cfg_path, 200, NULL, fi.config, strlen(fi.config),
	          .need = bearer),
	    ROUTE(fi.layer_path, 200, NULL, layer, strlen(layer),
	          .need = bearer),
	};
	for (size_t i = 0; i < 5; i++)
		if (!routes[i].refuse)
			routes[i].refuse = challenge;
	fake_serve(&fk, routes, 5);
	pull_fails(f, &fk, "", EACCES,
	           "401 Unauthorized: unauthorized: authentication required "
	           "(no credentials)");
	char host[64];
	snprintf(host, sizeof(host), "127.0.0.1:%d", fk.port);
	int rc = husk_registry_login(host, USER, "wrong", &f->o, &f->e);
	expect_error(rc, EACCES, &f->e, "log in: token request to http://");
	must(husk_registry_login(host, USER, PASSWORD, &f->o, &f->e), &f->e);
	struct husk_image img;
	pull_ok(f, fake_ref(&fk, ""), &img, 1);
	husk_image_free(&img);
	char *log = slurp(fk.log, NULL);
	assert_non_null(strstr(log, "GET /token?service=fake%20registry&"
	                            "scope=repository%3Atest%3Apull "));
	assert_non_null(strstr(log, bearer));
	free(log);
	fake_stop(&fk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(pull_busybox, setup, teardown),
	    cmocka_unit_test_setup_teardown(pull_layers, setup, teardown),
	    cmocka_unit_test_setup_teardown(pull_multiarch_default_amd64, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(pull_multiarch_arm64, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(pull_multiarch_missing_platform,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(pull_single_platform_mismatch,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(pull_zstd, setup, teardown),
	    cmocka_unit_test_setup_teardown(pull_docker_schema2, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(pull_by_digest, setup, teardown),
	    cmocka_unit_test_setup_teardown(pull_reuses_blobs, setup, teardown),
	    cmocka_unit_test_setup_teardown(auth_anonymous_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(auth_file_credentials, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(login_logout, setup, teardown),
	    cmocka_unit_test_setup_teardown(hostile_media_types, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(hostile_digest_mismatch, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(hostile_truncated_blob_resumes,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        truncated_blob_resumes_from_registry, setup, teardown),
	    cmocka_unit_test_setup_teardown(damaged_partial_refetched, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(concurrent_download_waited_for,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(hostile_huge_manifest, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(hostile_redirect_drops_auth, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(token_auth, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
