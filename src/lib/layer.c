/* Applying one image layer (a tar stream) onto a root directory.
 *
 * The archive is read once, in order. Each entry's name is cleaned
 * (layer_path.c), its directory resolved beneath the root (layer_fs.c),
 * and the entry made there by an *at() call on that directory's
 * descriptor. Whiteouts and opaque markers remove what earlier layers put
 * there and spare what this layer wrote, which the set `wrote` remembers;
 * so where a marker sits in the tar does not matter. Directories get their
 * modes and times last: entries written into them afterwards would change
 * their times, and a read-only mode could stop those entries. */
#include "husk/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layer_int.h"

#define READ_BLOCK (64 * 1024)
#define WHITEOUT   ".wh."
#define AUFS_META  ".wh..wh."
#define OPAQUE     ".wh..wh..opq"

/* "layer entry 'NAME': what[: strerror]", returning rc (negative). */
int layer_fail(struct layer_applier *ap, int rc, bool with_errno,
               const char *fmt, ...)
{
	char what[256];
	va_list ap_list;
	va_start(ap_list, fmt);
	vsnprintf(what, sizeof(what), fmt, ap_list);
	va_end(ap_list);
	if (with_errno)
		return husk_err_errno(ap->err, -rc, "layer entry '%s': %s",
		                      ap->name, what);
	return husk_err(ap->err, -rc, "layer entry '%s': %s", ap->name, what);
}

/* A failure to resolve a path beneath the root; EXDEV is the kernel
 * refusing to leave it. */
int layer_fail_resolve(struct layer_applier *ap, int rc, const char *path)
{
	if (!path[0])
		path = ".";
	if (rc == -EXDEV)
		return layer_fail(
		    ap, rc, false,
		    "'%s' leads out of the root through a symlink", path);
	return layer_fail(ap, rc, true, "resolving '%s' beneath the root",
	                  path);
}

/* libarchive's own failure. Its errno is a file-format code or -1 for
 * most damage; only real I/O and memory errors keep their errno. */
int layer_fail_archive(struct layer_applier *ap, const char *when)
{
	int code = archive_errno(ap->a);
	if (code != EIO && code != ENOMEM)
		code = EBADMSG;
	const char *why = archive_error_string(ap->a);
	if (!why)
		why = "unknown error";
	if (ap->name)
		return husk_err(ap->err, code, "layer entry '%s': %s: %s",
		                ap->name, when, why);
	return husk_err(ap->err, code, "layer: %s%s%s%s: %s", when,
	                ap->last[0] ? " after entry '" : "", ap->last,
	                ap->last[0] ? "'" : "", why);
}

/* `./` or `/`: the root's own owner, xattrs, mode and times. */
static int apply_root(struct layer_applier *ap, struct archive_entry *e)
{
	if (archive_entry_filetype(e) != AE_IFDIR || archive_entry_hardlink(e))
		return layer_fail(
		    ap, -EINVAL, false,
		    "would replace the root with a non-directory");
	struct layer_meta m;
	int rc = layer_read_meta(ap, e, &m);
	if (rc < 0)
		return rc;
	int fd = layer_open_beneath(ap->rootfd, "", O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return layer_fail_resolve(ap, fd, ".");
	rc = layer_dir_meta_now(ap, e, fd, &m);
	close(fd);
	if (rc == 0)
		ap->st->entries++;
	return rc;
}

/* `.wh..wh..opq`: what earlier layers put in this directory goes, what
 * this layer wrote there (before or after the marker) stays. */
static int apply_opaque(struct layer_applier *ap)
{
	int fd = layer_open_dir(ap->rootfd, ap->dir, true);
	if (fd < 0)
		return layer_fail_resolve(ap, fd, ap->dir);
	int rc = layer_set_add(&ap->wrote, ap->dir);
	if (rc == 0)
		rc = layer_prune(fd, ap->dir, &ap->wrote);
	close(fd);
	if (rc < 0)
		return layer_fail(ap, rc, true,
		                  "emptying the opaque directory");
	ap->st->whiteouts++;
	return 0;
}

static int apply_whiteout(struct layer_applier *ap)
{
	if (!strcmp(ap->base, OPAQUE))
		return apply_opaque(ap);
	if (!strncmp(ap->base, AUFS_META, strlen(AUFS_META))) {
		ap->st->skipped++;
		return 0;
	}
	const char *victim = ap->base + strlen(WHITEOUT);
	if (!*victim || !strcmp(victim, ".") || !strcmp(victim, ".."))
		return layer_fail(ap, -EINVAL, false,
		                  "whiteout of '%s' refused", victim);

	char vpath[LAYER_PATH_MAX];
	if ((size_t)snprintf(vpath, sizeof(vpath), "%s%s%s", ap->dir,
	                     ap->dir[0] ? "/" : "", victim) >= sizeof(vpath))
		return layer_fail(ap, -ENAMETOOLONG, true, "whiteout");
	if (layer_set_has(&ap->wrote, vpath))
		goto done; /* this layer's own: spared */
	int fd = layer_open_dir(ap->rootfd, ap->dir, false);
	if (fd == -ENOENT || fd == -ENOTDIR)
		goto done; /* nothing there to remove */
	if (fd < 0)
		return layer_fail_resolve(ap, fd, ap->dir);
	int rc = layer_remove_tree(fd, victim);
	close(fd);
	if (rc < 0)
		return layer_fail(ap, rc, true, "removing '%s'", vpath);
done:
	ap->st->whiteouts++;
	return 0;
}

static int apply_entry(struct layer_applier *ap, struct archive_entry *e)
{
	ap->name = archive_entry_pathname(e);
	if (!ap->name)
		return husk_err(ap->err, EBADMSG,
		                "layer: entry after '%s' has no usable name",
		                ap->last);
	int rc = layer_clean_path(ap->name, ap->path, sizeof(ap->path));
	if (rc == -EINVAL)
		return husk_err(ap->err, EINVAL,
		                "layer entry '%s' escapes the root", ap->name);
	if (rc < 0)
		return layer_fail(ap, rc, true, "name");
	if (!ap->path[0])
		return apply_root(ap, e);
	layer_split(ap->path, ap->dir, sizeof(ap->dir), &ap->base);
	if (!strncmp(ap->base, WHITEOUT, strlen(WHITEOUT)))
		return apply_whiteout(ap);

	struct layer_meta m;
	rc = layer_read_meta(ap, e, &m);
	if (rc < 0)
		return rc;
	int dirfd = layer_open_dir(ap->rootfd, ap->dir, true);
	if (dirfd < 0)
		return layer_fail_resolve(ap, dirfd, ap->dir);
	rc = layer_create_entry(ap, e, dirfd, &m);
	close(dirfd);
	if (rc < 0)
		return rc;
	if (rc == LAYER_SKIPPED)
		ap->st->skipped++;
	else
		ap->st->entries++;
	rc = layer_set_add(&ap->wrote, ap->path);
	return rc < 0 ? layer_fail(ap, rc, true, "remembering it") : 0;
}

/* Directory modes and times, now that nothing more is written into
 * them. One replaced or removed later in the layer is left alone. */
static int finish_dirs(struct layer_applier *ap)
{
	for (size_t i = 0; i < ap->ndirs; i++) {
		const struct layer_dir_meta *d = &ap->dirs[i];
		int fd = layer_open_beneath(
		    ap->rootfd, d->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
		if (fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP ||
		    fd == -EXDEV)
			continue;
		ap->name = d->path[0] ? d->path : ".";
		if (fd < 0)
			return layer_fail_resolve(ap, fd, d->path);
		int rc = 0;
		if (fchmod(fd, d->mode) < 0)
			rc = layer_fail(ap, -errno, true, "chmod");
		else if (futimens(fd, d->times) < 0)
			rc = layer_fail(ap, -errno, true, "setting times");
		close(fd);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int apply_all(struct layer_applier *ap)
{
	for (;;) {
		struct archive_entry *e;
		ap->name = NULL;
		int r = archive_read_next_header(ap->a, &e);
		if (r == ARCHIVE_EOF)
			return finish_dirs(ap);
		if (r < ARCHIVE_WARN)
			return layer_fail_archive(ap, "damaged archive");
		int rc = apply_entry(ap, e);
		if (rc < 0)
			return rc;
		snprintf(ap->last, sizeof(ap->last), "%s", ap->name);
	}
}

/* Only tar, and only the compressions image layers use: less of
 * libarchive exposed to what a registry sends. ARCHIVE_WARN from a filter
 * means a libarchive built without zlib or libzstd, which then runs the
 * gzip or zstd program instead: slower, still correct (Debian's links
 * both libraries). */
static struct archive *new_reader(void)
{
	struct archive *a = archive_read_new();
	if (!a)
		return NULL;
	if (archive_read_support_format_tar(a) != ARCHIVE_OK ||
	    archive_read_support_filter_gzip(a) < ARCHIVE_WARN ||
	    archive_read_support_filter_zstd(a) < ARCHIVE_WARN) {
		archive_read_free(a);
		return NULL;
	}
	return a;
}

/* Runs an opened reader to its end and frees it. */
static int apply_reader(struct archive *a, int opened, int rootfd,
                        unsigned flags, struct husk_layer_stats *st,
                        struct husk_error *err)
{
	struct husk_layer_stats unused;
	struct layer_applier *ap = calloc(1, sizeof(*ap));
	if (!ap) {
		archive_read_free(a);
		return husk_err(err, ENOMEM, "layer: out of memory");
	}
	*ap = (struct layer_applier){.a = a,
	                             .rootfd = rootfd,
	                             .flags = flags,
	                             .st = st ? st : &unused,
	                             .err = err};
	*ap->st = (struct husk_layer_stats){0};
	int rc = opened == ARCHIVE_OK
	             ? apply_all(ap)
	             : layer_fail_archive(ap, "opening the archive");
	for (size_t i = 0; i < ap->ndirs; i++)
		free(ap->dirs[i].path);
	free(ap->dirs);
	layer_set_free(&ap->wrote);
	free(ap);
	archive_read_free(a);
	return rc;
}

int husk_layer_apply_fd(int root_dirfd, int tar_fd, unsigned flags,
                        struct husk_layer_stats *st, struct husk_error *err)
{
	struct archive *a = new_reader();
	if (!a)
		return husk_err(err, ENOMEM, "layer: cannot set up libarchive");
	int opened = archive_read_open_fd(a, tar_fd, READ_BLOCK);
	return apply_reader(a, opened, root_dirfd, flags, st, err);
}

int husk_layer_apply_memory(int root_dirfd, const void *buf, size_t len,
                            unsigned flags, struct husk_layer_stats *st,
                            struct husk_error *err)
{
	struct archive *a = new_reader();
	if (!a)
		return husk_err(err, ENOMEM, "layer: cannot set up libarchive");
	int opened = archive_read_open_memory(a, buf, len);
	return apply_reader(a, opened, root_dirfd, flags, st, err);
}

int husk_layer_apply(const char *root, const char *tar_path, unsigned flags,
                     struct husk_layer_stats *st, struct husk_error *err)
{
	int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return husk_err_errno(err, errno, "layer: root '%s'", root);
	int fd = open(tar_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int rc = husk_err_errno(err, errno, "layer: '%s'", tar_path);
		close(rootfd);
		return rc;
	}
	int rc = husk_layer_apply_fd(rootfd, fd, flags, st, err);
	close(fd);
	close(rootfd);
	return rc;
}

/* s starts with prefix: returns what follows, else NULL. */
static const char *after(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);
	return strncmp(s, prefix, n) ? NULL : s + n;
}

/* The compression a suffix names, in the OCI (`+gzip`) or Docker
 * (`.gzip`) spelling; -1 when it names none known. */
static int compression(const char *suffix, char sep)
{
	if (!*suffix)
		return HUSK_LAYER_TAR;
	if (*suffix != sep)
		return -1;
	if (!strcmp(suffix + 1, "gzip"))
		return HUSK_LAYER_GZIP;
	if (!strcmp(suffix + 1, "zstd"))
		return HUSK_LAYER_ZSTD;
	return -1;
}

int husk_layer_check_media_type(const char *media_type, struct husk_error *err)
{
	const char *rest;
	int c = -1;
	if (!media_type)
		media_type = "";
	if ((rest = after(media_type, "application/vnd.oci.image.layer."))) {
		const char *nd = after(rest, "nondistributable.");
		rest = after(nd ? nd : rest, "v1.tar");
		c = rest ? compression(rest, '+') : -1;
	} else if ((rest = after(media_type,
	                         "application/vnd.docker.image.rootfs."))) {
		const char *foreign = after(rest, "foreign.");
		rest = after(foreign ? foreign : rest, "diff.tar");
		c = rest ? compression(rest, '.') : -1;
	}
	if (c < 0)
		return husk_err(err, EPROTONOSUPPORT,
		                "unknown layer media type %s", media_type);
	return c;
}
