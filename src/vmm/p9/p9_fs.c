/* Confined host lookups for the 9P server; see p9_fs.h for the rules. */
#include "p9_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int p9_check_name(const char *name)
{
	if (!name[0] || strchr(name, '/'))
		return -EINVAL;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -EPERM;
	return 0;
}

int p9_openat(int dirfd, const char *name, int flags, mode_t mode)
{
	if (p9_check_name(name) < 0)
		return -EINVAL; /* a caller's bug; never resolve it */
	/* openat2 refuses O_PATH with any flag it ignores, O_NOCTTY too. */
	if (!(flags & O_PATH))
		flags |= O_NOCTTY;
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
	    .mode = (flags & O_CREAT) ? (mode & 07777) : 0,
	    .resolve =
	        RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	for (;;) {
		long fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
		if (fd >= 0)
			return (int)fd;
		/* EAGAIN: a rename raced the lookup (RESOLVE_BENEATH's
		 * check); the retry resolves afresh. */
		if (errno != EINTR && errno != EAGAIN)
			return -errno;
	}
}

int p9_lookup(int dirfd, const char *name)
{
	return p9_openat(dirfd, name, O_PATH, 0);
}

int p9_fstat(int fd, struct stat *st)
{
	return fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0
	           ? -errno
	           : 0;
}

/* A directory: "." of its own handle, read-only. */
static int reopen_dir(const struct p9_fid *f, int flags)
{
	if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC))
		return -EISDIR;
	struct open_how how = {
	    .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
	    .resolve =
	        RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	for (;;) {
		long fd = syscall(SYS_openat2, f->fd, ".", &how, sizeof(how));
		if (fd >= 0)
			return (int)fd;
		if (errno != EINTR && errno != EAGAIN)
			return -errno;
	}
}

int p9_reopen(const struct p9_fid *f, int flags)
{
	struct stat want, got;
	int rc = p9_fstat(f->fd, &want);
	if (rc < 0)
		return rc;
	if (S_ISDIR(want.st_mode))
		return reopen_dir(f, flags);
	if (S_ISLNK(want.st_mode))
		return -ELOOP;
	if (!S_ISREG(want.st_mode))
		return -ENXIO;
	if (f->parent < 0 || !f->name)
		return -ESTALE;
	flags &= O_ACCMODE | O_APPEND | O_TRUNC | O_DSYNC | O_SYNC;
	/* O_TRUNC would act before the identity check: truncate after it. */
	int fd =
	    p9_openat(f->parent, f->name, (flags & ~O_TRUNC) | O_NONBLOCK, 0);
	if (fd < 0)
		return fd;
	if (fstat(fd, &got) < 0) {
		rc = -errno;
		goto fail;
	}
	if (got.st_dev != want.st_dev || got.st_ino != want.st_ino) {
		rc = -ESTALE;
		goto fail;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		rc = -errno;
		goto fail;
	}
	if ((flags & O_TRUNC) && ftruncate(fd, 0) < 0) {
		rc = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return rc;
}

struct p9_qid p9_qid_of(const struct stat *st, dev_t root_dev)
{
	struct p9_qid q = {.type = P9_QTFILE, .version = 0};
	if (S_ISDIR(st->st_mode))
		q.type = P9_QTDIR;
	else if (S_ISLNK(st->st_mode))
		q.type = P9_QTSYMLINK;
	q.path = (uint64_t)st->st_ino;
	/* Inode numbers repeat across file systems: fold the device into
	 * the high bits for anything mounted below the share. */
	if (st->st_dev != root_dev)
		q.path ^= (uint64_t)st->st_dev << 40;
	return q;
}
