/* `husk load`: the archive is read into an entry table (nothing reaches
 * the store but uncommitted writers), every image in it is planned and
 * checked, and only then are the blobs committed and the images recorded.
 * See include/husk/image_load.h for the formats and the guarantees. */
#include "image_load_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "husk/layer.h"

/* JSON is parsed with an int length. */
#define JSON_MAX_CEILING (1u << 30)

int load_image_add(struct load_ctx *c, struct load_image **out, const char *fmt,
                   ...)
{
	if (c->n_img == c->cap_img) {
		size_t cap = c->cap_img ? c->cap_img * 2 : 8;
		void *p = realloc(c->img, cap * sizeof(*c->img));
		if (!p)
			return husk_err(c->err, ENOMEM, "out of memory");
		c->img = p;
		c->cap_img = cap;
	}
	struct load_image *img = &c->img[c->n_img++];
	memset(img, 0, sizeof(*img));
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(img->what, sizeof(img->what), fmt, ap);
	va_end(ap);
	*out = img;
	return 0;
}

int load_image_name(struct load_ctx *c, struct load_image *img,
                    const char *name, const char *what)
{
	struct husk_ref ref;
	struct husk_error e2 = {0};
	if (husk_ref_parse(name, &ref, &e2) < 0)
		return husk_err(c->err, EINVAL, "%s: %s: '%.300s': %s",
		                img->what, what, name, e2.msg);
	if (ref.digest[0])
		return husk_err(c->err, EINVAL,
		                "%s: %s: '%.300s' is not a tag (it has a "
		                "digest)",
		                img->what, what, name);
	void *p = realloc(img->names, (img->n_names + 1) * sizeof(ref));
	if (!p)
		return husk_err(c->err, ENOMEM, "out of memory");
	img->names = p;
	img->names[img->n_names++] = ref;
	return 0;
}

/* Why a layer's digest may differ from its diff_id: compressed data. */
static const char *compressed_hint(const struct load_entry *e)
{
	const unsigned char *p = e->magic;
	if (e->size < sizeof(e->magic))
		return "";
	if (p[0] == 0x1f && p[1] == 0x8b)
		return " (the layer is gzip-compressed; it must be a plain "
		       "tar)";
	if (p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
		return " (the layer is zstd-compressed; it must be a plain "
		       "tar)";
	return "";
}

/* diff_ids are the digests of the uncompressed layers: for a plain tar
 * the blob's own digest, which the archive lets us check. */
static int check_diff_ids(struct load_ctx *c, struct load_image *img,
                          const struct husk_image_config *cfg)
{
	if (cfg->n_diff_ids != img->n_layers)
		return husk_err(c->err, EINVAL,
		                "%s: the config lists %zu diff_ids for %zu "
		                "layers",
		                img->what, cfg->n_diff_ids, img->n_layers);
	for (size_t i = 0; i < img->n_layers; i++) {
		const struct husk_layer_desc *l = &img->layers[i];
		if (husk_layer_check_media_type(l->media_type, NULL) !=
		        HUSK_LAYER_TAR ||
		    strcmp(l->digest, cfg->diff_ids[i]) == 0)
			continue;
		return husk_err(c->err, EBADMSG,
		                "%s: layer %zu ('%s') has sha256 %s, but the "
		                "config's diff_id is %s%s",
		                img->what, i + 1, img->layer_entries[i]->name,
		                l->digest, cfg->diff_ids[i],
		                compressed_hint(img->layer_entries[i]));
	}
	return 0;
}

int load_image_config(struct load_ctx *c, struct load_image *img)
{
	const char *text;
	char *owned;
	char what[96];
	struct husk_image_config cfg;
	struct husk_error e2 = {0};
	if (img->n_layers > LOAD_LAYERS_MAX)
		return husk_err(c->err, EINVAL,
		                "%s: %zu layers, more than the %d allowed",
		                img->what, img->n_layers, LOAD_LAYERS_MAX);
	snprintf(what, sizeof(what), "%s: config", img->what);
	int rc = load_text(c, img->config, what, &text, &owned);
	if (rc < 0)
		return rc;
	rc = husk_image_config_parse(text, img->config->size, &cfg, &e2);
	free(owned);
	if (rc < 0)
		return husk_err(c->err, -rc, "%s: %s", img->what, e2.msg);
	rc = check_diff_ids(c, img, &cfg);
	husk_image_config_free(&cfg);
	memcpy(img->config_digest, img->config->digest,
	       sizeof(img->config_digest));
	return rc;
}

static void image_free(struct load_image *img)
{
	free(img->layers);
	free(img->layer_entries);
	free(img->names);
}

static void ctx_free(struct load_ctx *c)
{
	for (size_t i = 0; i < c->n_img; i++)
		image_free(&c->img[i]);
	free(c->img);
	load_entries_free(c);
}

static void set_limits(struct load_ctx *c, const struct husk_load_limits *lim)
{
	struct husk_load_limits l = lim ? *lim : (struct husk_load_limits){0};
	struct rlimit rl;
	if (!l.json_max)
		l.json_max = HUSK_LOAD_JSON_MAX;
	if (l.json_max > JSON_MAX_CEILING)
		l.json_max = JSON_MAX_CEILING;
	if (!l.memory_max)
		l.memory_max = HUSK_LOAD_MEMORY_MAX;
	if (!l.open_blobs_max)
		l.open_blobs_max = HUSK_LOAD_OPEN_BLOBS_MAX;
	/* Each pending writer is an open file: leave most of them to the
	 * caller. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY && l.open_blobs_max > rl.rlim_cur / 4)
		l.open_blobs_max = rl.rlim_cur / 4 ? rl.rlim_cur / 4 : 1;
	c->lim = l;
}

/* Which format the archive is, from the files at its root. */
static int plan(struct load_ctx *c)
{
	struct load_entry *manifest;
	int rc;
	if (load_find(c, "manifest.json")) {
		rc = load_resolve(c, "manifest.json", "docker archive",
		                  &manifest);
		if (rc == 0)
			rc = load_plan_docker(c, manifest);
	} else if (load_find(c, "index.json")) {
		rc = load_plan_oci(c);
	} else if (load_find(c, "repositories")) {
		rc = husk_err(c->err, EPROTONOSUPPORT,
		              "a docker save archive without manifest.json "
		              "(Docker before 1.10) is not supported");
	} else {
		rc = husk_err(c->err, EINVAL,
		              "not an image archive: no manifest.json (docker "
		              "save) or index.json (OCI layout) in it");
	}
	if (rc == 0 && c->n_img == 0)
		rc = husk_err(c->err, EINVAL, "the archive holds no images");
	return rc;
}

static int commit_image(struct load_ctx *c, struct load_image *img)
{
	int rc = load_entry_commit(c, img->config);
	if (rc == 0 && img->manifest)
		rc = load_entry_commit(c, img->manifest);
	for (size_t i = 0; rc == 0 && i < img->n_layers; i++)
		rc = load_entry_commit(c, img->layer_entries[i]);
	return rc;
}

static void report(const struct load_image *img, husk_load_fn loaded, void *ctx)
{
	char name[HUSK_REF_STRING_MAX], line[HUSK_REF_STRING_MAX + 32];
	if (!loaded)
		return;
	for (size_t i = 0; i < img->n_names; i++) {
		husk_ref_familiar(&img->names[i], name, sizeof(name));
		snprintf(line, sizeof(line), "Loaded image: %s", name);
		loaded(line, ctx);
	}
	if (img->n_names == 0) {
		snprintf(line, sizeof(line), "Loaded image ID: %s",
		         img->config_digest);
		loaded(line, ctx);
	}
}

static int record(struct load_ctx *c, struct load_image *img,
                  husk_load_fn loaded, void *ctx)
{
	struct husk_image_spec spec = {
	    .config_digest = img->config_digest,
	    .manifest_digest = img->manifest_digest,
	    .layers = img->layers,
	    .n_layers = img->n_layers,
	};
	const struct husk_ref *first = img->n_names ? &img->names[0] : NULL;
	int rc = husk_store_image_put(c->s, first, &spec, NULL, c->err);
	for (size_t i = 1; rc == 0 && i < img->n_names; i++)
		rc = husk_store_image_tag(c->s, img->config_digest,
		                          &img->names[i], c->err);
	if (rc == 0)
		report(img, loaded, ctx);
	return rc;
}

/* All blobs first, so that an image is recorded only when every image's
 * data made it; then the records. */
static int commit_and_record(struct load_ctx *c, husk_load_fn loaded, void *ctx)
{
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < c->n_img; i++)
		rc = commit_image(c, &c->img[i]);
	for (size_t i = 0; rc == 0 && i < c->n_img; i++)
		rc = record(c, &c->img[i], loaded, ctx);
	return rc;
}

static struct archive *tar_reader(void)
{
	struct archive *a = archive_read_new();
	if (!a)
		return NULL;
	/* filter_all only warns when a filter would need an external
	 * program; what libarchive has built in is enough. An empty input
	 * is an empty archive, refused later for what it lacks. */
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_empty(a);
	return a;
}

static int open_tar_fd(struct load_ctx *c, int fd, struct archive **out)
{
	struct archive *a = tar_reader();
	if (!a)
		return husk_err(c->err, ENOMEM, "out of memory");
	if (archive_read_open_fd(a, fd, 64 * 1024) != ARCHIVE_OK) {
		int rc =
		    husk_err(c->err, EBADMSG, "reading the archive: %s",
		             archive_error_string(a) ? archive_error_string(a)
		                                     : "cannot open");
		archive_read_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

static int open_dir(struct load_ctx *c, const char *path, struct archive **out)
{
	struct archive *a = archive_read_disk_new();
	if (!a)
		return husk_err(c->err, ENOMEM, "out of memory");
	/* Hybrid: the directory given may be a symlink, nothing in it is
	 * followed. */
	archive_read_disk_set_symlink_hybrid(a);
	archive_read_disk_set_behavior(
	    a, ARCHIVE_READDISK_NO_XATTR | ARCHIVE_READDISK_NO_ACL |
	           ARCHIVE_READDISK_NO_FFLAGS | ARCHIVE_READDISK_NO_SPARSE);
	if (archive_read_disk_open(a, path) != ARCHIVE_OK) {
		int code = archive_errno(a) > 0 ? archive_errno(a) : EIO;
		int rc =
		    husk_err(c->err, code, "%s: %s", path,
		             archive_error_string(a) ? archive_error_string(a)
		                                     : strerror(code));
		archive_read_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

/* Reads the archive (a tar on fd, or the directory at dir), then plans,
 * commits and records. */
static int load(struct load_ctx *c, int fd, const char *dir,
                husk_load_fn loaded, void *ctx)
{
	struct archive *a = NULL;
	int rc = dir ? open_dir(c, dir, &a) : open_tar_fd(c, fd, &a);
	if (rc < 0)
		return rc;
	rc = load_read_archive(c, a, dir);
	archive_read_free(a);
	if (rc == 0)
		rc = plan(c);
	if (rc == 0)
		rc = commit_and_record(c, loaded, ctx);
	return rc;
}

/* A directory's name as the disk walk will report its entries' prefix:
 * without trailing slashes. */
static int dir_prefix(struct load_ctx *c, const char *path, char **out)
{
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	if (!(*out = strndup(path, n)))
		return husk_err(c->err, ENOMEM, "out of memory");
	return 0;
}

static int load_path(struct load_ctx *c, const char *path, husk_load_fn loaded,
                     void *ctx)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return husk_err_errno(c->err, errno, "%s", path);
	if (S_ISDIR(st.st_mode)) {
		char *dir;
		int rc = dir_prefix(c, path, &dir);
		if (rc == 0)
			rc = load(c, -1, dir, loaded, ctx);
		free(dir);
		return rc;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return husk_err_errno(c->err, errno, "open %s", path);
	int rc = load(c, fd, NULL, loaded, ctx);
	close(fd);
	return rc;
}

int husk_image_load_limited(struct husk_store *s, const char *path, int fd,
                            const struct husk_load_limits *lim,
                            husk_load_fn loaded, void *ctx,
                            struct husk_error *err)
{
	struct load_ctx c = {.s = s, .err = err};
	set_limits(&c, lim);
	int rc = path ? load_path(&c, path, loaded, ctx)
	              : load(&c, fd, NULL, loaded, ctx);
	ctx_free(&c);
	return rc;
}

int husk_image_load(struct husk_store *s, const char *path, husk_load_fn loaded,
                    void *ctx, struct husk_error *err)
{
	return husk_image_load_limited(s, path, -1, NULL, loaded, ctx, err);
}

int husk_image_load_fd(struct husk_store *s, int fd, husk_load_fn loaded,
                       void *ctx, struct husk_error *err)
{
	return husk_image_load_limited(s, NULL, fd, NULL, loaded, ctx, err);
}
