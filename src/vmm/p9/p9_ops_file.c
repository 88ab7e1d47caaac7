/* 9P requests on open files and attributes: lopen, lcreate, read, write,
 * readdir, fsync, getattr, setattr, statfs. Opening goes through
 * p9_reopen/p9_openat (p9_fs.h); attributes are read and changed on the
 * fid's own O_PATH descriptor where the kernel allows it (AT_EMPTY_PATH),
 * else on a descriptor p9_reopen made, never by name. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "p9_fs.h"
#include "p9_ops.h"

/* 9P2000.L open flags (Linux's, as net/9p sends them). */
#define P9_DOTL_ACCMODE 03
#define P9_DOTL_EXCL    0200
#define P9_DOTL_TRUNC   01000
#define P9_DOTL_APPEND  02000
#define P9_DOTL_DSYNC   010000
#define P9_DOTL_SYNC    04000000

/* The host open flags we honour; the rest (O_DIRECT, O_NOATIME, O_ASYNC,
 * O_CLOEXEC, ...) concern the guest's own file, not our descriptor. */
static int host_flags(uint32_t f)
{
	int h = (int)(f & P9_DOTL_ACCMODE);
	if ((h & O_ACCMODE) == O_ACCMODE)
		h = O_RDWR;
	if (f & P9_DOTL_TRUNC)
		h |= O_TRUNC;
	if (f & P9_DOTL_APPEND)
		h |= O_APPEND;
	if (f & P9_DOTL_DSYNC)
		h |= O_DSYNC;
	if (f & P9_DOTL_SYNC)
		h |= O_SYNC;
	return h;
}

static bool writes(int h)
{
	return (h & O_ACCMODE) != O_RDONLY || (h & O_TRUNC);
}

/* Tlopen fid[4] flags[4] -> qid iounit[4]. iounit 0: msize bounds I/O. */
int p9_op_lopen(struct p9_req *r)
{
	uint32_t fid = p9_get32(&r->in);
	uint32_t flags = p9_get32(&r->in);
	if (r->in.bad)
		return -EPROTO;
	struct p9_fid *f = p9_req_fid(r, fid);
	if (!f)
		return -EBADF;
	if (f->io_fd >= 0)
		return -EBADF; /* already open */
	int h = host_flags(flags);
	if (r->s->read_only && writes(h))
		return -EROFS;
	int fd = p9_reopen(f, h);
	if (fd < 0)
		return fd;
	int rc = p9_reply_qid_of(r, fd);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	f->io_fd = fd;
	p9_put32(&r->out, 0);
	return 0;
}

/* Tlcreate fid[4] name[s] flags[4] mode[4] gid[4] -> qid iounit[4]: the
 * directory fid becomes the new file, open. */
int p9_op_lcreate(struct p9_req *r)
{
	char name[P9_MAX_NAME + 1];
	struct stat st, pst;
	uint32_t fid = p9_get32(&r->in);
	int nrc = p9_req_name(r, name);
	uint32_t flags = p9_get32(&r->in);
	uint32_t mode = p9_get32(&r->in);
	uint32_t gid = p9_get32(&r->in);
	if (r->in.bad)
		return -EPROTO;
	if (nrc < 0)
		return nrc;
	struct p9_fid *f = p9_req_fid(r, fid);
	if (!f)
		return -EBADF;
	if (!S_ISDIR(f->type) || f->io_fd >= 0)
		return -ENOTDIR;
	int h = host_flags(flags);
	bool created = true;
	int fd = p9_openat(f->fd, name, h | O_CREAT | O_EXCL, mode & 0777);
	if (fd == -EEXIST && !(flags & P9_DOTL_EXCL)) {
		/* O_NONBLOCK: an existing FIFO must not block us. */
		created = false;
		fd = p9_openat(f->fd, name, (h & ~O_TRUNC) | O_NONBLOCK, 0);
	}
	if (fd < 0)
		return fd;
	int rc = 0;
	if (fstat(fd, &st) < 0 || fstat(f->fd, &pst) < 0)
		rc = -errno;
	else if (!S_ISREG(st.st_mode))
		rc = S_ISDIR(st.st_mode) ? -EISDIR : -ENXIO;
	if (rc == 0 && created) {
		p9_set_owner(fd, f->uid, gid);
		/* The exact mode, past the host's umask, less set-uid and
		 * set-gid: a guest must not plant set-id programs in a
		 * host directory. */
		if (fchmod(fd, mode & 01777) < 0)
			rc = -errno;
	}
	if (rc == 0 && !created) {
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0 ||
		    ((h & O_TRUNC) && ftruncate(fd, 0) < 0))
			rc = -errno;
	}
	/* The fid's O_PATH handle, checked to be the file we opened. */
	int pfd = rc == 0 ? p9_lookup(f->fd, name) : -1;
	struct stat pst2;
	if (rc == 0 && pfd < 0)
		rc = pfd;
	else if (rc == 0 && (rc = p9_fstat(pfd, &pst2)) == 0 &&
	         (pst2.st_dev != st.st_dev || pst2.st_ino != st.st_ino))
		rc = -ESTALE;
	char *dup_name = rc == 0 ? strdup(name) : NULL;
	if (rc == 0 && !dup_name)
		rc = -ENOMEM;
	if (rc == 0)
		rc = p9_reply_qid_of(r, fd);
	if (rc < 0) {
		close(fd);
		if (pfd >= 0)
			close(pfd);
		free(dup_name);
		return rc;
	}
	p9_put32(&r->out, 0);
	/* The directory's handle becomes the file's parent. */
	if (f->parent >= 0)
		close(f->parent);
	free(f->name);
	f->parent = f->fd;
	f->parent_dev = pst.st_dev;
	f->parent_ino = pst.st_ino;
	f->fd = pfd;
	f->name = dup_name;
	f->type = S_IFREG;
	f->io_fd = fd;
	return 0;
}

static int open_fid(struct p9_req *r, uint32_t fid, struct p9_fid **f)
{
	*f = p9_req_fid(r, fid);
	if (!*f)
		return -EBADF;
	return (*f)->io_fd >= 0 ? 0 : -EBADF;
}

/* Tread fid[4] offset[8] count[4] -> count[4] data, at most what the
 * reply buffer holds. */
int p9_op_read(struct p9_req *r)
{
	struct p9_fid *f;
	uint32_t fid = p9_get32(&r->in);
	uint64_t off = p9_get64(&r->in);
	uint32_t count = p9_get32(&r->in);
	if (r->in.bad)
		return -EPROTO;
	int rc = open_fid(r, fid, &f);
	if (rc < 0)
		return rc;
	if (off > INT64_MAX)
		return -EINVAL;
	p9_reply(r);
	size_t room = r->out.cap - r->out.off - 4; /* cap >= 11 */
	if (count > room)
		count = (uint32_t)room;
	ssize_t n;
	do
		n = pread(f->io_fd, r->out.p + r->out.off + 4, count,
		          (off_t)off);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	p9_put32(&r->out, (uint32_t)n);
	r->out.off += (size_t)n;
	return 0;
}

/* Twrite fid[4] offset[8] count[4] data[count] -> count[4]. */
int p9_op_write(struct p9_req *r)
{
	struct p9_fid *f;
	uint32_t fid = p9_get32(&r->in);
	uint64_t off = p9_get64(&r->in);
	uint32_t count = p9_get32(&r->in);
	const uint8_t *data = p9_get_bytes(&r->in, count);
	if (r->in.bad)
		return -EPROTO;
	int rc = open_fid(r, fid, &f);
	if (rc < 0)
		return rc;
	if (off > INT64_MAX)
		return -EINVAL;
	ssize_t n;
	do
		n = pwrite(f->io_fd, data, count, (off_t)off);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	p9_reply(r);
	p9_put32(&r->out, (uint32_t)n);
	return 0;
}

/* Treaddir fid[4] offset[8] count[4] -> count[4] entries, each
 * qid[13] offset[8] type[1] name[s]. offset is 0 or an entry's d_off from
 * an earlier reply, which is where the directory is sought to. */
int p9_op_readdir(struct p9_req *r)
{
	struct p9_fid *f;
	uint32_t fid = p9_get32(&r->in);
	uint64_t off = p9_get64(&r->in);
	uint32_t count = p9_get32(&r->in);
	if (r->in.bad)
		return -EPROTO;
	int rc = open_fid(r, fid, &f);
	if (rc < 0)
		return rc;
	if (!S_ISDIR(f->type))
		return -ENOTDIR;
	if (off > INT64_MAX || lseek(f->io_fd, (off_t)off, SEEK_SET) < 0)
		return off > INT64_MAX ? -EINVAL : -errno;
	p9_reply(r);
	size_t start = r->out.off;
	p9_put32(&r->out, 0);
	size_t limit = r->out.cap - r->out.off;
	if (count < limit)
		limit = count;
	size_t used = 0;
	bool full = false;
	while (!full) {
		ssize_t n =
		    getdents64(f->io_fd, r->s->dents, sizeof(r->s->dents));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		for (ssize_t pos = 0; pos < n;) {
			struct dirent64 *de =
			    (struct dirent64 *)(r->s->dents + pos);
			size_t nlen = strnlen(de->d_name, P9_MAX_NAME + 1);
			size_t need = P9_QID_SIZE + 8 + 1 + 2 + nlen;
			if (used + need > limit) {
				full = true;
				break;
			}
			struct p9_qid q = {.type = P9_QTFILE,
			                   .path = de->d_ino};
			if (de->d_type == DT_DIR)
				q.type = P9_QTDIR;
			else if (de->d_type == DT_LNK)
				q.type = P9_QTSYMLINK;
			p9_put_qid(&r->out, &q);
			p9_put64(&r->out, (uint64_t)de->d_off);
			p9_put8(&r->out, de->d_type);
			p9_put_str(&r->out, de->d_name, nlen);
			used += need;
			pos += de->d_reclen;
		}
	}
	/* Patch the count in front of the entries. */
	for (int i = 0; i < 4; i++)
		r->out.p[start + (size_t)i] = (uint8_t)(used >> (8 * i));
	return 0;
}

/* Tfsync fid[4] datasync[4]. A fid not open has nothing of ours to
 * flush. */
int p9_op_fsync(struct p9_req *r)
{
	uint32_t fid = p9_get32(&r->in);
	uint32_t datasync = p9_get32(&r->in);
	if (r->in.bad)
		return -EPROTO;
	struct p9_fid *f = p9_req_fid(r, fid);
	if (!f)
		return -EBADF;
	if (f->io_fd >= 0 &&
	    (datasync ? fdatasync(f->io_fd) : fsync(f->io_fd)) < 0)
		return -errno;
	p9_reply(r);
	return 0;
}

/* Tgetattr fid[4] request_mask[8] -> the basic stat fields. */
int p9_op_getattr(struct p9_req *r)
{
	struct stat st;
	uint32_t fid = p9_get32(&r->in);
	p9_get64(&r->in);
	if (r->in.bad)
		return -EPROTO;
	struct p9_fid *f = p9_req_fid(r, fid);
	if (!f)
		return -EBADF;
	int rc = p9_fstat(f->fd, &st);
	if (rc < 0)
		return rc;
	struct p9_qid q = p9_qid_of(&st, r->s->root_dev);
	struct p9_out *o = &r->out;
	p9_reply(r);
	p9_put64(o, P9_GETATTR_BASIC);
	p9_put_qid(o, &q);
	p9_put32(o, st.st_mode);
	p9_put32(o, st.st_uid);
	p9_put32(o, st.st_gid);
	p9_put64(o, st.st_nlink);
	p9_put64(o, st.st_rdev);
	p9_put64(o, (uint64_t)st.st_size);
	p9_put64(o, (uint64_t)st.st_blksize);
	p9_put64(o, (uint64_t)st.st_blocks);
	p9_put64(o, (uint64_t)st.st_atim.tv_sec);
	p9_put64(o, (uint64_t)st.st_atim.tv_nsec);
	p9_put64(o, (uint64_t)st.st_mtim.tv_sec);
	p9_put64(o, (uint64_t)st.st_mtim.tv_nsec);
	p9_put64(o, (uint64_t)st.st_ctim.tv_sec);
	p9_put64(o, (uint64_t)st.st_ctim.tv_nsec);
	for (int i = 0; i < 4; i++)
		p9_put64(o, 0); /* btime, gen, data_version: not offered */
	return 0;
}

static struct timespec set_time(uint32_t valid, uint32_t bit, uint32_t set_bit,
                                uint64_t sec, uint64_t nsec)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = UTIME_OMIT};
	if (!(valid & bit))
		return ts;
	if (!(valid & set_bit)) {
		ts.tv_nsec = UTIME_NOW;
		return ts;
	}
	ts.tv_sec = (time_t)sec;
	ts.tv_nsec = nsec < 1000000000 ? (long)nsec : 999999999;
	return ts;
}

/* Tsetattr fid[4] valid[4] mode[4] uid[4] gid[4] size[8] atime[8+8]
 * mtime[8+8]. Owner and times are set on the O_PATH handle itself;
 * mode and size need an open descriptor, so only on regular files and
 * directories (p9_reopen). */
int p9_op_setattr(struct p9_req *r)
{
	uint32_t fid = p9_get32(&r->in);
	uint32_t valid = p9_get32(&r->in);
	uint32_t mode = p9_get32(&r->in);
	uint32_t uid = p9_get32(&r->in);
	uint32_t gid = p9_get32(&r->in);
	uint64_t size = p9_get64(&r->in);
	uint64_t asec = p9_get64(&r->in), ansec = p9_get64(&r->in);
	uint64_t msec = p9_get64(&r->in), mnsec = p9_get64(&r->in);
	if (r->in.bad)
		return -EPROTO;
	struct p9_fid *f = p9_req_fid(r, fid);
	if (!f)
		return -EBADF;
	if (valid & (P9_SETATTR_UID | P9_SETATTR_GID)) {
		uid_t u = (valid & P9_SETATTR_UID) ? uid : (uid_t)-1;
		gid_t g = (valid & P9_SETATTR_GID) ? gid : (gid_t)-1;
		if (fchownat(f->fd, "", u, g,
		             AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	if (valid & P9_SETATTR_MODE) {
		int fd = p9_reopen(f, O_RDONLY);
		if (fd < 0)
			return fd == -ELOOP || fd == -ENXIO ? -EOPNOTSUPP : fd;
		/* No set-uid or set-gid on files (see p9_op_lcreate). */
		mode_t m = S_ISDIR(f->type) ? mode & 03777 : mode & 01777;
		int rc = fchmod(fd, m) < 0 ? -errno : 0;
		close(fd);
		if (rc < 0)
			return rc;
	}
	if (valid & P9_SETATTR_SIZE) {
		if (size > INT64_MAX)
			return -EFBIG;
		int fd = f->io_fd;
		bool own = false;
		if (fd < 0 || (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY) {
			fd = p9_reopen(f, O_WRONLY);
			if (fd < 0)
				return fd;
			own = true;
		}
		int rc = ftruncate(fd, (off_t)size) < 0 ? -errno : 0;
		if (own)
			close(fd);
		if (rc < 0)
			return rc;
	}
	if (valid & (P9_SETATTR_ATIME | P9_SETATTR_MTIME)) {
		struct timespec ts[2] = {
		    set_time(valid, P9_SETATTR_ATIME, P9_SETATTR_ATIME_SET,
		             asec, ansec),
		    set_time(valid, P9_SETATTR_MTIME, P9_SETATTR_MTIME_SET,
		             msec, mnsec),
		};
		if (utimensat(f->fd, "", ts,
		              AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	p9_reply(r);
	return 0;
}

/* Tstatfs fid[4] -> type[4] bsize[4] blocks[8] bfree[8] bavail[8]
 * files[8] ffree[8] fsid[8] namelen[4]. */
int p9_op_statfs(struct p9_req *r)
{
	struct statfs sf;
	uint32_t fid = p9_get32(&r->in);
	if (r->in.bad)
		return -EPROTO;
	struct p9_fid *f = p9_req_fid(r, fid);
	if (!f)
		return -EBADF;
	if (fstatfs(f->fd, &sf) < 0)
		return -errno;
	uint64_t fsid;
	memcpy(&fsid, &sf.f_fsid, sizeof(fsid));
	struct p9_out *o = &r->out;
	p9_reply(r);
	p9_put32(o, (uint32_t)sf.f_type);
	p9_put32(o, (uint32_t)sf.f_bsize);
	p9_put64(o, sf.f_blocks);
	p9_put64(o, sf.f_bfree);
	p9_put64(o, sf.f_bavail);
	p9_put64(o, sf.f_files);
	p9_put64(o, sf.f_ffree);
	p9_put64(o, fsid);
	p9_put32(o, (uint32_t)sf.f_namelen);
	return 0;
}
