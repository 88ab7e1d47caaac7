/* 9P requests on names: walk, create (mkdir, symlink, mknod), link,
 * rename, unlink, remove, readlink. Every name is one checked component
 * resolved by p9_fs.c; the *at syscalls used here never follow a
 * symlink in their last component (mkdirat, symlinkat, mknodat, linkat
 * without AT_SYMLINK_FOLLOW, renameat, unlinkat), so none can be used to
 * act outside the share. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p9_fs.h"
#include "p9_ops.h"

static int dup_fd(int fd)
{
	if (fd < 0)
		return -1;
	int n = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	return n < 0 ? -errno : n;
}

/* Where a walk stands: the current file and the directory it was found
 * in (-1 and NULL at a fid that has none, the root). */
struct walk_pos {
	int fd, parent;
	char name[P9_MAX_NAME + 1];
	bool has_name;
	mode_t type;
};

static void pos_close(struct walk_pos *p)
{
	if (p->fd >= 0)
		close(p->fd);
	if (p->parent >= 0)
		close(p->parent);
	p->fd = p->parent = -1;
}

/* Moves what p holds into fid f (replacing what f had). */
static int pos_install(struct walk_pos *p, struct p9_fid *f, uint32_t uid)
{
	struct stat st = {0};
	char *name = NULL;
	if (p->has_name && !(name = strdup(p->name)))
		return -ENOMEM;
	if (p->parent >= 0 && fstat(p->parent, &st) < 0) {
		free(name);
		return -errno;
	}
	p9_fid_close(f);
	f->fd = p->fd;
	f->parent = p->parent;
	f->name = name;
	f->parent_dev = st.st_dev;
	f->parent_ino = st.st_ino;
	f->type = p->type;
	f->uid = uid;
	p->fd = p->parent = -1;
	return 0;
}

/* Twalk fid[4] newfid[4] nwname[2] nwname*wname[s] -> nwqid[2] qid*.
 * Walks one component at a time. A failure at the first name is an
 * error; a later one answers with the qids walked so far and leaves
 * newfid unset, as 9P says. */
int p9_op_walk(struct p9_req *r)
{
	/* On the stack (4 KiB): devices are served on different vCPU
	 * threads at once. */
	char names[P9_MAX_WALK][P9_MAX_NAME + 1];
	struct p9_qid qids[P9_MAX_WALK];
	uint32_t fid = p9_get32(&r->in);
	uint32_t newfid = p9_get32(&r->in);
	uint16_t n = p9_get16(&r->in);
	if (r->in.bad)
		return -EPROTO;
	if (n > P9_MAX_WALK)
		return -EINVAL;
	int name_rc[P9_MAX_WALK];
	for (unsigned i = 0; i < n; i++) {
		name_rc[i] = p9_get_str(&r->in, names[i], sizeof(names[i]));
		if (name_rc[i] == -EPROTO)
			return -EPROTO;
		if (name_rc[i] == 0)
			name_rc[i] = p9_check_name(names[i]);
	}
	struct p9_fid *f = p9_req_fid(r, fid);
	if (!f)
		return -EBADF;
	struct p9_fid *nf = NULL;
	if (newfid != fid) {
		if (p9_req_fid(r, newfid))
			return -EBADF;
		if (r->s->fids.n >= P9_MAX_FIDS)
			return -EMFILE;
	}

	struct walk_pos p = {
	    .fd = dup_fd(f->fd), .parent = dup_fd(f->parent), .type = f->type};
	int rc = p.fd < 0 ? p.fd : f->parent >= 0 ? p.parent : 0;
	if (rc < 0) {
		if (p.fd >= 0)
			close(p.fd);
		if (p.parent >= 0)
			close(p.parent);
		return rc;
	}
	if (f->name) {
		snprintf(p.name, sizeof(p.name), "%s", f->name);
		p.has_name = true;
	}
	unsigned done = 0;
	for (; done < n; done++) {
		rc = name_rc[done];
		int next = rc < 0 ? rc : p9_lookup(p.fd, names[done]);
		struct stat st;
		if (next >= 0 && (rc = p9_fstat(next, &st)) < 0) {
			close(next);
			next = rc;
		}
		if (next < 0) {
			rc = next;
			break;
		}
		qids[done] = p9_qid_of(&st, r->s->root_dev);
		if (p.parent >= 0)
			close(p.parent);
		p.parent = p.fd;
		p.fd = next;
		p.type = st.st_mode & S_IFMT;
		memcpy(p.name, names[done], sizeof(p.name));
		p.has_name = true;
		rc = 0;
	}
	if (done == 0 && n > 0) {
		pos_close(&p);
		return rc;
	}
	if (done == n) {
		if (newfid == fid) {
			nf = f;
		} else {
			int e;
			nf = p9_fid_add(&r->s->fids, newfid, &e);
			if (!nf) {
				pos_close(&p);
				return -e;
			}
		}
		rc = pos_install(&p, nf, f->uid);
		if (rc < 0) {
			if (nf != f)
				p9_fid_remove(&r->s->fids, newfid);
			pos_close(&p);
			return rc;
		}
	}
	pos_close(&p);
	p9_reply(r);
	p9_put16(&r->out, (uint16_t)done);
	for (unsigned i = 0; i < done; i++)
		p9_put_qid(&r->out, &qids[i]);
	return 0;
}

/* A directory fid to create in, and the checked name. */
static int dir_and_name(struct p9_req *r, uint32_t dfid, const char *name,
                        int name_rc, struct p9_fid **d)
{
	if (r->in.bad)
		return -EPROTO;
	if (name_rc < 0)
		return name_rc;
	*d = p9_req_fid(r, dfid);
	if (!*d)
		return -EBADF;
	if (!S_ISDIR((*d)->type))
		return -ENOTDIR;
	return 0;
}

/* Tmkdir dfid[4] name[s] mode[4] gid[4] -> qid. */
int p9_op_mkdir(struct p9_req *r)
{
	char name[P9_MAX_NAME + 1];
	struct p9_fid *d;
	uint32_t dfid = p9_get32(&r->in);
	int nrc = p9_req_name(r, name);
	uint32_t mode = p9_get32(&r->in);
	uint32_t gid = p9_get32(&r->in);
	int rc = dir_and_name(r, dfid, name, nrc, &d);
	if (rc < 0)
		return rc;
	if (mkdirat(d->fd, name, mode & 0777) < 0)
		return -errno;
	int fd = p9_openat(d->fd, name, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	p9_set_owner(fd, d->uid, gid);
	/* The exact mode, past the host's umask; set-gid and sticky are
	 * meaningful on directories, set-uid is not. */
	if (fchmod(fd, mode & 03777) < 0)
		rc = -errno;
	if (rc == 0)
		rc = p9_reply_qid_of(r, fd);
	close(fd);
	return rc;
}

/* The reply to an op that made name in d: its owner set as the guest
 * asked, then its qid. */
static int reply_new_entry(struct p9_req *r, struct p9_fid *d, const char *name,
                           uint32_t gid)
{
	int fd = p9_lookup(d->fd, name);
	if (fd < 0)
		return fd;
	p9_set_owner(fd, d->uid, gid);
	int rc = p9_reply_qid_of(r, fd);
	close(fd);
	return rc;
}

/* Tsymlink dfid[4] name[s] target[s] gid[4] -> qid. The target is only
 * text stored in the link; it is never resolved on the host. */
int p9_op_symlink(struct p9_req *r)
{
	char name[P9_MAX_NAME + 1], target[P9_MAX_SYMLINK + 1];
	struct p9_fid *d;
	uint32_t dfid = p9_get32(&r->in);
	int nrc = p9_req_name(r, name);
	int trc = p9_get_str(&r->in, target, sizeof(target));
	uint32_t gid = p9_get32(&r->in);
	int rc = dir_and_name(r, dfid, name, nrc, &d);
	if (rc < 0)
		return rc;
	if (trc < 0)
		return trc;
	if (!target[0])
		return -ENOENT; /* as symlink(2) */
	if (symlinkat(target, d->fd, name) < 0)
		return -errno;
	return reply_new_entry(r, d, name, gid);
}

/* Tmknod dfid[4] name[s] mode[4] major[4] minor[4] gid[4] -> qid. Only
 * FIFOs, sockets and empty regular files: a device node in a host
 * directory would hand the host's devices to whoever opens it there. The
 * mode goes through the host's umask (a FIFO or socket cannot be opened
 * safely to fchmod it). */
int p9_op_mknod(struct p9_req *r)
{
	char name[P9_MAX_NAME + 1];
	struct p9_fid *d;
	uint32_t dfid = p9_get32(&r->in);
	int nrc = p9_req_name(r, name);
	uint32_t mode = p9_get32(&r->in);
	p9_get32(&r->in);
	p9_get32(&r->in);
	uint32_t gid = p9_get32(&r->in);
	int rc = dir_and_name(r, dfid, name, nrc, &d);
	if (rc < 0)
		return rc;
	mode_t type = mode & S_IFMT;
	if (type != S_IFIFO && type != S_IFSOCK && type != S_IFREG)
		return -EPERM;
	if (mknodat(d->fd, name, type | (mode & 0777), 0) < 0)
		return -errno;
	return reply_new_entry(r, d, name, gid);
}

/* Treadlink fid[4] -> target[s]: the link's text, as stored. */
int p9_op_readlink(struct p9_req *r)
{
	char target[P9_MAX_SYMLINK + 2];
	uint32_t fid = p9_get32(&r->in);
	if (r->in.bad)
		return -EPROTO;
	struct p9_fid *f = p9_req_fid(r, fid);
	if (!f)
		return -EBADF;
	if (!S_ISLNK(f->type))
		return -EINVAL;
	ssize_t n = readlinkat(f->fd, "", target, sizeof(target));
	if (n < 0)
		return -errno;
	if ((size_t)n >= sizeof(target) - 1)
		return -ENAMETOOLONG;
	p9_reply(r);
	p9_put_str(&r->out, target, (size_t)n);
	return 0;
}

/* Whether f's remembered name in its directory still names f. 0,
 * -ESTALE, or -EBUSY for the root (which has no name). */
static int still_named(const struct p9_fid *f)
{
	struct stat a, b;
	if (f->parent < 0 || !f->name)
		return -EBUSY;
	int rc = p9_fstat(f->fd, &a);
	if (rc < 0)
		return rc;
	if (fstatat(f->parent, f->name, &b, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino ? 0 : -ESTALE;
}

/* Tlink dfid[4] fid[4] name[s]: a hard link to fid's file in dfid. */
int p9_op_link(struct p9_req *r)
{
	char name[P9_MAX_NAME + 1];
	struct p9_fid *d;
	uint32_t dfid = p9_get32(&r->in);
	uint32_t fid = p9_get32(&r->in);
	int nrc = p9_req_name(r, name);
	int rc = dir_and_name(r, dfid, name, nrc, &d);
	if (rc < 0)
		return rc;
	struct p9_fid *f = p9_req_fid(r, fid);
	if (!f)
		return -EBADF;
	if (S_ISDIR(f->type))
		return -EPERM;
	if ((rc = still_named(f)) < 0)
		return rc;
	/* By name, not AT_EMPTY_PATH (that needs CAP_DAC_READ_SEARCH); no
	 * AT_SYMLINK_FOLLOW, so a symlink swapped in is linked as itself. */
	if (linkat(f->parent, f->name, d->fd, name, 0) < 0)
		return -errno;
	p9_reply(r);
	return 0;
}

/* renameat and keeping fids found under the old name on the file. */
static int do_rename(struct p9_req *r, int odir, const char *oname, int ndir,
                     const char *nname)
{
	struct stat st;
	char old[P9_MAX_NAME + 1];
	if (fstat(odir, &st) < 0)
		return -errno;
	/* oname may be a fid's own name, which the fix-up replaces. */
	snprintf(old, sizeof(old), "%s", oname);
	if (renameat(odir, old, ndir, nname) < 0)
		return -errno;
	p9_fid_renamed(&r->s->fids, st.st_dev, st.st_ino, old, ndir, nname);
	p9_reply(r);
	return 0;
}

/* Trename fid[4] dfid[4] name[s]. */
int p9_op_rename(struct p9_req *r)
{
	char name[P9_MAX_NAME + 1];
	struct p9_fid *d;
	uint32_t fid = p9_get32(&r->in);
	uint32_t dfid = p9_get32(&r->in);
	int nrc = p9_req_name(r, name);
	int rc = dir_and_name(r, dfid, name, nrc, &d);
	if (rc < 0)
		return rc;
	struct p9_fid *f = p9_req_fid(r, fid);
	if (!f)
		return -EBADF;
	if ((rc = still_named(f)) < 0)
		return rc;
	return do_rename(r, f->parent, f->name, d->fd, name);
}

/* Trenameat olddirfid[4] oldname[s] newdirfid[4] newname[s]. */
int p9_op_renameat(struct p9_req *r)
{
	char oname[P9_MAX_NAME + 1], nname[P9_MAX_NAME + 1];
	struct p9_fid *od, *nd;
	uint32_t ofid = p9_get32(&r->in);
	int orc = p9_req_name(r, oname);
	uint32_t nfid = p9_get32(&r->in);
	int nrc = p9_req_name(r, nname);
	int rc = dir_and_name(r, ofid, oname, orc, &od);
	if (rc == 0)
		rc = dir_and_name(r, nfid, nname, nrc, &nd);
	if (rc < 0)
		return rc;
	return do_rename(r, od->fd, oname, nd->fd, nname);
}

/* Tunlinkat dfid[4] name[s] flags[4]. */
int p9_op_unlinkat(struct p9_req *r)
{
	char name[P9_MAX_NAME + 1];
	struct p9_fid *d;
	uint32_t dfid = p9_get32(&r->in);
	int nrc = p9_req_name(r, name);
	uint32_t flags = p9_get32(&r->in);
	int rc = dir_and_name(r, dfid, name, nrc, &d);
	if (rc < 0)
		return rc;
	if (flags & ~(uint32_t)P9_AT_REMOVEDIR)
		return -EINVAL;
	if (unlinkat(d->fd, name,
	             (flags & P9_AT_REMOVEDIR) ? AT_REMOVEDIR : 0) < 0)
		return -errno;
	p9_reply(r);
	return 0;
}

/* Tremove fid[4]: unlink fid's file and clunk the fid, which 9P clunks
 * even when the remove fails. */
int p9_op_remove(struct p9_req *r)
{
	uint32_t fid = p9_get32(&r->in);
	if (r->in.bad)
		return -EPROTO;
	struct p9_fid *f = p9_req_fid(r, fid);
	if (!f)
		return -EBADF;
	int rc = r->s->read_only ? -EROFS : still_named(f);
	if (rc == 0 && unlinkat(f->parent, f->name,
	                        S_ISDIR(f->type) ? AT_REMOVEDIR : 0) < 0)
		rc = -errno;
	p9_fid_remove(&r->s->fids, fid);
	if (rc == 0)
		p9_reply(r);
	return rc;
}
