/* Making one layer entry (a file, directory, link or node) at its name
 * in a directory already resolved beneath the root, with the owner, mode,
 * times and extended attributes it asks for.
 *
 * Nothing here takes a path of more than one component: the directory is
 * a descriptor and the name its last component, never followed. Files
 * and directories get their metadata through a descriptor of their own;
 * symlinks and device nodes, which must not be opened, by name. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "husk/layer.h"
#include "layer_int.h"

int layer_read_meta(struct layer_applier *ap, struct archive_entry *e,
                    struct layer_meta *m)
{
	int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
	/* (uid_t)-1 would mean "leave the owner" to chown. */
	if (uid < 0 || uid >= UINT32_MAX || gid < 0 || gid >= UINT32_MAX)
		return layer_fail(ap, -EINVAL, false,
		                  "owner %lld:%lld out of range",
		                  (long long)uid, (long long)gid);
	m->uid = (uid_t)uid;
	m->gid = (gid_t)gid;
	m->mode = archive_entry_perm(e) & 07777;
	m->times[1].tv_sec = archive_entry_mtime(e);
	m->times[1].tv_nsec = archive_entry_mtime_nsec(e);
	if (!archive_entry_mtime_is_set(e))
		m->times[1].tv_nsec = UTIME_OMIT;
	else if (m->times[1].tv_nsec < 0 || m->times[1].tv_nsec > 999999999)
		m->times[1].tv_nsec = 0;
	m->times[0] = m->times[1];
	if (archive_entry_atime_is_set(e)) {
		m->times[0].tv_sec = archive_entry_atime(e);
		m->times[0].tv_nsec = archive_entry_atime_nsec(e);
		if (m->times[0].tv_nsec < 0 || m->times[0].tv_nsec > 999999999)
			m->times[0].tv_nsec = 0;
	}
	return 0;
}

/* Overlayfs reads these from its lower layers; a layer must not steer
 * the overlay that later stacks this tree. */
static bool overlay_xattr(const char *name)
{
	return !strncmp(name, "trusted.overlay.", 16) ||
	       !strncmp(name, "user.overlay.", 13);
}

/* One extended attribute of an entry. */
struct xattr {
	const char *name;
	const void *value;
	size_t size;
};

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct xattr *)a)->name,
	              ((const struct xattr *)b)->name);
}

/* The entry's xattrs, once each: libarchive reports an attribute twice
 * when a tar carries both its LIBARCHIVE.xattr and SCHILY.xattr forms.
 * Sorted, so that even a pax header of thousands costs n log n. */
static int list_xattrs(struct archive_entry *e, struct xattr **out,
                       size_t *count)
{
	int n = archive_entry_xattr_reset(e);
	*out = NULL;
	*count = 0;
	if (n <= 0)
		return 0;
	struct xattr *v = calloc((size_t)n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	size_t k = 0;
	while (k < (size_t)n &&
	       archive_entry_xattr_next(e, &v[k].name, &v[k].value,
	                                &v[k].size) == ARCHIVE_OK)
		if (v[k].name)
			k++;
	qsort(v, k, sizeof(*v), by_name);
	size_t kept = 0;
	for (size_t i = 0; i < k; i++)
		if (kept == 0 || strcmp(v[kept - 1].name, v[i].name))
			v[kept++] = v[i];
	*out = v;
	*count = kept;
	return 0;
}

/* Sets one xattr on fd, or, where no descriptor of the file may be opened
 * (symlinks, devices, fifos), on proc: /proc/self/fd/DIRFD/BASE, where
 * the magic link is the directory already resolved beneath the root and
 * lsetxattr does not follow BASE. */
static int set_xattr(struct layer_applier *ap, const struct xattr *x, int fd,
                     const char *proc)
{
	if (overlay_xattr(x->name)) {
		ap->st->skipped++;
		return 0;
	}
	int r = fd >= 0 ? fsetxattr(fd, x->name, x->value, x->size, 0)
	                : lsetxattr(proc, x->name, x->value, x->size, 0);
	if (r == 0)
		return 0;
	if ((errno == ENOTSUP || errno == EPERM) &&
	    (ap->flags & HUSK_LAYER_IGNORE_XATTR_ERRORS)) {
		ap->st->skipped++;
		return 0;
	}
	return layer_fail(ap, -errno, true, "setting xattr %s", x->name);
}

/* Sets the entry's extended attributes on fd or on base in dirfd. */
static int set_xattrs(struct layer_applier *ap, struct archive_entry *e, int fd,
                      int dirfd, const char *base)
{
	char proc[64 + 256] = "";
	struct xattr *v;
	size_t n;

	int rc = list_xattrs(e, &v, &n);
	if (rc < 0)
		return layer_fail(ap, rc, true, "reading its xattrs");
	if (n && fd < 0 &&
	    (size_t)snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", dirfd,
	                     base) >= sizeof(proc))
		rc = layer_fail(ap, -ENAMETOOLONG, true, "setting xattrs");
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = set_xattr(ap, &v[i], fd, proc);
	free(v);
	return rc;
}

/* Makes room for the entry at base in dirfd. A directory meeting a
 * directory merges (returns 1); anything else there goes, a directory
 * with its whole tree. */
static int make_room(struct layer_applier *ap, int dirfd, bool is_dir)
{
	struct stat st;
	if (fstatat(dirfd, ap->base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return layer_fail(ap, -errno, true, "looking at what is there");
	}
	if (is_dir && S_ISDIR(st.st_mode))
		return 1;
	int rc = layer_remove_tree(dirfd, ap->base);
	if (rc < 0)
		return layer_fail(ap, rc, true, "replacing what is there");
	return 0;
}

static int defer_dir(struct layer_applier *ap, const struct layer_meta *m)
{
	if (ap->ndirs == ap->dircap) {
		size_t cap = ap->dircap ? ap->dircap * 2 : 64;
		struct layer_dir_meta *d = realloc(ap->dirs, cap * sizeof(*d));
		if (!d)
			return layer_fail(ap, -ENOMEM, true, "remembering it");
		ap->dirs = d;
		ap->dircap = cap;
	}
	struct layer_dir_meta *d = &ap->dirs[ap->ndirs];
	if (!(d->path = strdup(ap->path)))
		return layer_fail(ap, -ENOMEM, true, "remembering it");
	d->mode = m->mode;
	d->times[0] = m->times[0];
	d->times[1] = m->times[1];
	ap->ndirs++;
	return 0;
}

/* Owner and xattrs now, on the open directory; mode and times at the
 * end. */
int layer_dir_meta_now(struct layer_applier *ap, struct archive_entry *e,
                       int fd, const struct layer_meta *m)
{
	if (fchown(fd, m->uid, m->gid) < 0)
		return layer_fail(ap, -errno, true, "chown");
	int rc = set_xattrs(ap, e, fd, -1, NULL);
	return rc < 0 ? rc : defer_dir(ap, m);
}

static int make_dir(struct layer_applier *ap, struct archive_entry *e,
                    int dirfd, const struct layer_meta *m)
{
	int rc = make_room(ap, dirfd, true);
	if (rc < 0)
		return rc;
	if (rc == 0 && mkdirat(dirfd, ap->base, 0700) < 0)
		return layer_fail(ap, -errno, true, "mkdir");
	int fd = openat(dirfd, ap->base,
	                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return layer_fail(ap, -errno, true, "opening the directory");
	rc = layer_dir_meta_now(ap, e, fd, m);
	close(fd);
	return rc;
}

static int write_all(int fd, const char *buf, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, buf, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Copies the entry's data into fd, holes of a sparse entry included. */
static int copy_data(struct layer_applier *ap, struct archive_entry *e, int fd)
{
	int64_t end = 0;
	for (;;) {
		const void *buf;
		size_t len;
		la_int64_t off;
		int r = archive_read_data_block(ap->a, &buf, &len, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_OK)
			return layer_fail_archive(ap, "reading its data");
		if (off < 0 || (uint64_t)off > INT64_MAX - len)
			return layer_fail(ap, -EBADMSG, false,
			                  "bad data offset");
		int rc = write_all(fd, buf, len, off);
		if (rc < 0)
			return layer_fail(ap, rc, true, "writing");
		ap->st->bytes += len;
		if (off + (int64_t)len > end)
			end = off + (int64_t)len;
	}
	if (archive_entry_size_is_set(e) && archive_entry_size(e) > end &&
	    ftruncate(fd, archive_entry_size(e)) < 0)
		return layer_fail(ap, -errno, true, "setting its size");
	return 0;
}

/* Owner before xattrs and mode: chown drops setuid/setgid bits and
 * security.capability. */
static int file_meta(struct layer_applier *ap, struct archive_entry *e, int fd,
                     const struct layer_meta *m)
{
	if (fchown(fd, m->uid, m->gid) < 0)
		return layer_fail(ap, -errno, true, "chown");
	int rc = set_xattrs(ap, e, fd, -1, NULL);
	if (rc < 0)
		return rc;
	if (fchmod(fd, m->mode) < 0)
		return layer_fail(ap, -errno, true, "chmod");
	if (futimens(fd, m->times) < 0)
		return layer_fail(ap, -errno, true, "setting times");
	return 0;
}

static int make_file(struct layer_applier *ap, struct archive_entry *e,
                     int dirfd, const struct layer_meta *m)
{
	int rc = make_room(ap, dirfd, false);
	if (rc < 0)
		return rc;
	int fd =
	    openat(dirfd, ap->base,
	           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return layer_fail(ap, -errno, true, "creating the file");
	rc = copy_data(ap, e, fd);
	if (rc == 0)
		rc = file_meta(ap, e, fd, m);
	close(fd);
	return rc;
}

/* Metadata of what cannot be opened (symlinks, devices, fifos), by name
 * in dirfd, never following it. Symlinks have no mode of their own. */
static int node_meta(struct layer_applier *ap, struct archive_entry *e,
                     int dirfd, const struct layer_meta *m, bool is_link)
{
	if (fchownat(dirfd, ap->base, m->uid, m->gid, AT_SYMLINK_NOFOLLOW) < 0)
		return layer_fail(ap, -errno, true, "chown");
	int rc = set_xattrs(ap, e, -1, dirfd, ap->base);
	if (rc < 0)
		return rc;
	if (!is_link &&
	    fchmodat(dirfd, ap->base, m->mode, AT_SYMLINK_NOFOLLOW) < 0)
		return layer_fail(ap, -errno, true, "chmod");
	if (utimensat(dirfd, ap->base, m->times, AT_SYMLINK_NOFOLLOW) < 0)
		return layer_fail(ap, -errno, true, "setting times");
	return 0;
}

static int make_symlink(struct layer_applier *ap, struct archive_entry *e,
                        int dirfd, const struct layer_meta *m)
{
	const char *target = archive_entry_symlink(e);
	if (!target)
		return layer_fail(ap, -EBADMSG, false,
		                  "symlink without a target");
	int rc = make_room(ap, dirfd, false);
	if (rc < 0)
		return rc;
	if (symlinkat(target, dirfd, ap->base) < 0)
		return layer_fail(ap, -errno, true, "symlink");
	return node_meta(ap, e, dirfd, m, true);
}

static int make_node(struct layer_applier *ap, struct archive_entry *e,
                     int dirfd, const struct layer_meta *m)
{
	mode_t type = archive_entry_filetype(e);
	int rc = make_room(ap, dirfd, false);
	if (rc < 0)
		return rc;
	if (mknodat(dirfd, ap->base, type | 0600, archive_entry_rdev(e)) < 0) {
		if (errno == EPERM && type != AE_IFIFO &&
		    (ap->flags & HUSK_LAYER_SKIP_DEVICES))
			return LAYER_SKIPPED;
		return layer_fail(ap, -errno, true, "mknod");
	}
	return node_meta(ap, e, dirfd, m, false);
}

/* A hard link keeps its target's metadata: it is the same inode. */
static int make_hardlink(struct layer_applier *ap, int dirfd, const char *link)
{
	char tpath[LAYER_PATH_MAX], tdir[LAYER_PATH_MAX];
	const char *tbase;
	int rc = layer_clean_path(link, tpath, sizeof(tpath));
	if (rc == -EINVAL)
		return layer_fail(ap, -EINVAL, false,
		                  "hard link target '%s' escapes the root",
		                  link);
	if (rc == 0 && !tpath[0])
		return layer_fail(ap, -EPERM, false,
		                  "hard link target '%s' is the root", link);
	if (rc == 0)
		rc = layer_split(tpath, tdir, sizeof(tdir), &tbase);
	if (rc < 0)
		return layer_fail(ap, rc, true, "hard link target '%s'", link);
	int tdirfd = layer_open_dir(ap->rootfd, tdir, false);
	if (tdirfd < 0)
		return layer_fail_resolve(ap, tdirfd, link);

	struct stat tst, st;
	if (fstatat(tdirfd, tbase, &tst, AT_SYMLINK_NOFOLLOW) < 0)
		rc =
		    layer_fail(ap, -errno, true, "hard link target '%s'", link);
	else if (S_ISDIR(tst.st_mode))
		rc = layer_fail(ap, -EPERM, false,
		                "hard link target '%s' is a directory", link);
	else if (S_ISLNK(tst.st_mode)) {
		/* Linking the symlink itself writes nothing outside, but a
		 * link that leads out is no part of an image. */
		int fd = layer_open_beneath(ap->rootfd, tpath, O_PATH);
		if (fd >= 0)
			close(fd);
		if (fd == -EXDEV || fd == -ELOOP)
			rc = layer_fail(ap, -EXDEV, false,
			                "hard link target '%s' is a symlink "
			                "leading out of the root",
			                link);
	}
	if (rc == 0 &&
	    fstatat(dirfd, ap->base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    st.st_dev == tst.st_dev && st.st_ino == tst.st_ino)
		goto out; /* already that very file */
	if (rc == 0)
		rc = make_room(ap, dirfd, false);
	if (rc == 0 && linkat(tdirfd, tbase, dirfd, ap->base, 0) < 0)
		rc = layer_fail(ap, -errno, true, "hard link to '%s'", link);
out:
	close(tdirfd);
	return rc;
}

/* Makes the entry at base in dirfd; 0, LAYER_SKIPPED or a negative errno. */
int layer_create_entry(struct layer_applier *ap, struct archive_entry *e,
                       int dirfd, const struct layer_meta *m)
{
	const char *link = archive_entry_hardlink(e);
	if (link)
		return make_hardlink(ap, dirfd, link);
	mode_t type = archive_entry_filetype(e);
	switch (type) {
	case AE_IFDIR: return make_dir(ap, e, dirfd, m);
	case AE_IFREG: return make_file(ap, e, dirfd, m);
	case AE_IFLNK: return make_symlink(ap, e, dirfd, m);
	case AE_IFCHR:
	case AE_IFBLK:
	case AE_IFIFO: return make_node(ap, e, dirfd, m);
	default:
		return layer_fail(ap, -EINVAL, false,
		                  "unsupported entry type 0%o", (unsigned)type);
	}
}
