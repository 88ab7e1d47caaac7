/* Internals of the layer applier, shared by its pieces: layer.c (the
 * archive, whiteouts, the public API), layer_entry.c (making one entry),
 * layer_path.c (entry names and the set of paths a layer wrote) and
 * layer_fs.c (resolving and changing paths beneath the root). Functions
 * of the last two return 0 or a negative errno and leave the message to
 * the caller, which knows the entry. */
#ifndef HUSK_LAYER_INT_H
#define HUSK_LAYER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "husk/layer.h"

struct archive;
struct archive_entry;

/* Longest cleaned entry name kept, NUL included. */
#define LAYER_PATH_MAX 4096

/* Cleans a tar entry name into a path relative to the root, in out (cap
 * bytes): leading and repeated `/` and `.` components dropped, `..` taking
 * away the component before it. "" is the root itself. -EINVAL when a
 * `..` would climb above the root, -ENAMETOOLONG when out is too small. */
int layer_clean_path(const char *name, char *out, size_t cap);

/* Splits a cleaned, non-empty path at its last `/`: *base points into path,
 * and dir (cap bytes) gets what comes before ("" at the root). */
int layer_split(const char *path, char *dir, size_t cap, const char **base);

/* The paths one layer wrote (and their parents), so that its own opaque
 * markers and whiteouts spare them. An open-addressing hash set. */
struct layer_set {
	char **slot;
	size_t cap, used;
};

/* Adds path and every parent of it; -ENOMEM. */
int layer_set_add(struct layer_set *s, const char *path);
bool layer_set_has(const struct layer_set *s, const char *path);
void layer_set_free(struct layer_set *s);

/* openat2(root, rel, flags | O_CLOEXEC) with RESOLVE_BENEATH and
 * RESOLVE_NO_MAGICLINKS; "" opens the root itself. Returns the descriptor
 * or a negative errno (-EXDEV for a path that leads out of the root). */
int layer_open_beneath(int rootfd, const char *rel, int flags);

/* An O_PATH descriptor of directory rel, made (mode 0755, as Docker makes
 * missing parents) with its missing parents when create is set. */
int layer_open_dir(int rootfd, const char *rel, bool create);

/* Removes name in dirfd and, for a directory, everything below it,
 * without following any symlink. A missing name is not an error. */
int layer_remove_tree(int dirfd, const char *name);

/* Empties directory rel of everything not in keep: rel's own path and the
 * children's paths are looked up as "rel/child"; a kept directory is
 * pruned the same way below. */
int layer_prune(int dirfd, const char *rel, const struct layer_set *keep);

/* --- one layer being applied (layer.c, layer_entry.c) --- */

/* layer_create_entry's result for an entry left out on purpose. */
#define LAYER_SKIPPED 1

/* A directory's mode and times, applied once the layer is in. */
struct layer_dir_meta {
	char *path;
	mode_t mode;
	struct timespec times[2];
};

/* What an entry asks for beyond its type. */
struct layer_meta {
	uid_t uid;
	gid_t gid;
	mode_t mode;
	struct timespec times[2]; /* atime, mtime */
};

struct layer_applier {
	struct archive *a;
	int rootfd;
	unsigned flags;
	struct husk_layer_stats *st;
	struct husk_error *err;
	struct layer_set wrote;      /* what this layer wrote */
	struct layer_dir_meta *dirs; /* directories to finish */
	size_t ndirs, dircap;
	const char *name;          /* the entry's name as the tar spells it */
	const char *base;          /* its last component, inside path */
	char last[256];            /* the last entry applied, for errors */
	char path[LAYER_PATH_MAX]; /* the entry's cleaned name */
	char dir[LAYER_PATH_MAX];  /* path's directory part */
};

/* Records "layer entry 'NAME': what[: strerror(-rc)]" and returns rc
 * (a negative errno). */
int layer_fail(struct layer_applier *ap, int rc, bool with_errno,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A failure to resolve path beneath the root (EXDEV: a symlink out). */
int layer_fail_resolve(struct layer_applier *ap, int rc, const char *path);
/* libarchive's failure, when doing what `when` says. */
int layer_fail_archive(struct layer_applier *ap, const char *when);

/* The entry's owner, mode and times; EINVAL for an owner out of range. */
int layer_read_meta(struct layer_applier *ap, struct archive_entry *e,
                    struct layer_meta *m);
/* Owner and xattrs of an open directory now, its mode and times queued
 * for the end of the layer. */
int layer_dir_meta_now(struct layer_applier *ap, struct archive_entry *e,
                       int fd, const struct layer_meta *m);
/* Makes the entry at ap->base in dirfd, replacing what is there: 0,
 * LAYER_SKIPPED, or a negative errno with ap->err filled. */
int layer_create_entry(struct layer_applier *ap, struct archive_entry *e,
                       int dirfd, const struct layer_meta *m);

#endif
