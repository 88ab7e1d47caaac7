/* The 9P2000.L server: framing, dispatch, and the session-level requests
 * (version, attach, clunk, flush, auth, xattrs, locks). File and directory
 * requests are in p9_ops_file.c and p9_ops_dir.c; host name resolution
 * only in p9_fs.c. */
#include "p9_server.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p9_fs.h"
#include "p9_ops.h"

int p9_server_init(struct p9_server *s, const char *dir, bool read_only,
                   struct husk_error *err)
{
	struct stat st;
	memset(s, 0, sizeof(*s));
	s->read_only = read_only;
	/* The share itself is named by the host (the command line), so a
	 * plain open; O_PATH because I/O always reopens (p9_fs.h). */
	s->root_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->root_fd < 0)
		return husk_err_errno(err, errno, "9p share %s", dir);
	if (fstat(s->root_fd, &st) < 0) {
		int e = errno;
		close(s->root_fd);
		s->root_fd = -1;
		return husk_err_errno(err, e, "9p share %s", dir);
	}
	s->root_dev = st.st_dev;
	return 0;
}

void p9_server_destroy(struct p9_server *s)
{
	p9_fid_clear(&s->fids);
	if (s->root_fd >= 0)
		close(s->root_fd);
	s->root_fd = -1;
	s->msize = 0;
}

/* ---- helpers for the handlers (p9_ops.h) ---- */

struct p9_fid *p9_req_fid(struct p9_req *r, uint32_t id)
{
	return p9_fid_get(&r->s->fids, id);
}

int p9_req_name(struct p9_req *r, char *name)
{
	int rc = p9_get_str(&r->in, name, P9_MAX_NAME + 1);
	return rc < 0 ? rc : p9_check_name(name);
}

void p9_reply(struct p9_req *r)
{
	p9_begin(&r->out, (uint8_t)(r->type + 1), r->tag);
}

int p9_reply_qid_of(struct p9_req *r, int fd)
{
	struct stat st;
	int rc = p9_fstat(fd, &st);
	if (rc < 0)
		return rc;
	struct p9_qid q = p9_qid_of(&st, r->s->root_dev);
	p9_reply(r);
	p9_put_qid(&r->out, &q);
	return 0;
}

void p9_set_owner(int fd, uint32_t uid, uint32_t gid)
{
	if (fchownat(fd, "", (uid_t)uid, (gid_t)gid,
	             AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		/* See p9_ops.h: not an error for the guest. */
	}
}

/* ---- session requests ---- */

/* Tversion msize[4] version[s]: a new session. Anything but 9P2000.L is
 * answered "unknown", as the protocol asks. */
static int op_version(struct p9_req *r)
{
	char version[32];
	uint32_t msize = p9_get32(&r->in);
	int rc = p9_get_str(&r->in, version, sizeof(version));
	if (rc == -EPROTO)
		return rc;
	/* Every fid of the old session goes, whatever the answer. */
	p9_fid_clear(&r->s->fids);
	r->s->msize = 0;
	if (rc < 0 || strcmp(version, P9_VERSION_L)) {
		p9_reply(r);
		p9_put32(&r->out, msize < P9_MAX_MSIZE ? msize : P9_MAX_MSIZE);
		p9_put_str(&r->out, "unknown", 7);
		return 0;
	}
	if (msize < P9_MIN_MSIZE)
		return -EINVAL;
	r->s->msize = msize < P9_MAX_MSIZE ? msize : P9_MAX_MSIZE;
	p9_reply(r);
	p9_put32(&r->out, r->s->msize);
	p9_put_str(&r->out, P9_VERSION_L, strlen(P9_VERSION_L));
	return 0;
}

/* Tattach fid[4] afid[4] uname[s] aname[s] n_uname[4]: the share's root.
 * aname is ignored (a device serves one directory). */
static int op_attach(struct p9_req *r)
{
	char uname[P9_MAX_UNAME + 1], aname[P9_MAX_UNAME + 1];
	uint32_t fid = p9_get32(&r->in);
	uint32_t afid = p9_get32(&r->in);
	int rc = p9_get_str(&r->in, uname, sizeof(uname));
	int rc2 = p9_get_str(&r->in, aname, sizeof(aname));
	uint32_t n_uname = p9_get32(&r->in);
	if (r->in.bad)
		return -EPROTO;
	if (rc < 0 || rc2 < 0)
		return rc < 0 ? rc : rc2;
	if (afid != P9_NOFID)
		return -EINVAL; /* no Tauth, so no afid */
	int fd = fcntl(r->s->root_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int e;
	struct p9_fid *f = p9_fid_add(&r->s->fids, fid, &e);
	if (!f) {
		close(fd);
		return -e;
	}
	f->fd = fd;
	f->type = S_IFDIR;
	f->uid = n_uname;
	return p9_reply_qid_of(r, fd);
}

/* Tclunk fid[4]. */
static int op_clunk(struct p9_req *r)
{
	uint32_t fid = p9_get32(&r->in);
	if (r->in.bad)
		return -EPROTO;
	if (!p9_fid_remove(&r->s->fids, fid))
		return -EBADF;
	p9_reply(r);
	return 0;
}

/* Tflush oldtag[2]: every request is answered before the next is read,
 * so there is never one in flight to cancel. */
static int op_flush(struct p9_req *r)
{
	p9_get16(&r->in);
	if (r->in.bad)
		return -EPROTO;
	p9_reply(r);
	return 0;
}

/* Tlock fid[4] type[1] flags[4] start[8] length[8] proc_id[4] client[s].
 * Always granted. Linux's v9fs takes the lock in the guest's own VFS
 * first, so processes inside the VM still exclude each other; what is
 * lost is only locking against host processes, which a share used as a
 * container volume does not promise (and a host lock held for a guest
 * would need a thread to wait in, which a vCPU must not do). */
static int op_lock(struct p9_req *r)
{
	char client[P9_MAX_UNAME + 1];
	uint32_t fid = p9_get32(&r->in);
	p9_get8(&r->in);
	p9_get32(&r->in);
	p9_get64(&r->in);
	p9_get64(&r->in);
	p9_get32(&r->in);
	int rc = p9_get_str(&r->in, client, sizeof(client));
	if (r->in.bad)
		return -EPROTO;
	if (rc < 0)
		return rc;
	if (!p9_req_fid(r, fid))
		return -EBADF;
	p9_reply(r);
	p9_put8(&r->out, P9_LOCK_SUCCESS);
	return 0;
}

/* Tgetlock: the same fields; answered "unlocked" (see op_lock). */
static int op_getlock(struct p9_req *r)
{
	char client[P9_MAX_UNAME + 1];
	uint32_t fid = p9_get32(&r->in);
	p9_get8(&r->in);
	uint64_t start = p9_get64(&r->in);
	uint64_t length = p9_get64(&r->in);
	uint32_t proc = p9_get32(&r->in);
	int rc = p9_get_str(&r->in, client, sizeof(client));
	if (r->in.bad)
		return -EPROTO;
	if (rc < 0)
		return rc;
	if (!p9_req_fid(r, fid))
		return -EBADF;
	p9_reply(r);
	p9_put8(&r->out, P9_LOCK_TYPE_UNLCK);
	p9_put64(&r->out, start);
	p9_put64(&r->out, length);
	p9_put32(&r->out, proc);
	p9_put_str(&r->out, client, strlen(client));
	return 0;
}

/* Extended attributes are not offered: host xattrs include security.*
 * and trusted.* names a guest must not set, and containers rarely need
 * them on volumes. */
static int op_xattr(struct p9_req *r)
{
	return -EOPNOTSUPP;
}

/* No authentication: the transport is the VM's own device. */
static int op_auth(struct p9_req *r)
{
	return -EOPNOTSUPP;
}

struct op {
	uint8_t type;
	bool modifies; /* refused with EROFS on a read-only share */
	int (*fn)(struct p9_req *r);
};

static const struct op ops[] = {
    {P9_TVERSION, false, op_version},     {P9_TAUTH, false, op_auth},
    {P9_TATTACH, false, op_attach},       {P9_TFLUSH, false, op_flush},
    {P9_TWALK, false, p9_op_walk},        {P9_TCLUNK, false, op_clunk},
    {P9_TLOPEN, false, p9_op_lopen}, /* EROFS for writing, itself */
    {P9_TLCREATE, true, p9_op_lcreate},   {P9_TREAD, false, p9_op_read},
    {P9_TWRITE, true, p9_op_write},       {P9_TREADDIR, false, p9_op_readdir},
    {P9_TFSYNC, false, p9_op_fsync},      {P9_TGETATTR, false, p9_op_getattr},
    {P9_TSETATTR, true, p9_op_setattr},   {P9_TSTATFS, false, p9_op_statfs},
    {P9_TMKDIR, true, p9_op_mkdir},       {P9_TSYMLINK, true, p9_op_symlink},
    {P9_TMKNOD, true, p9_op_mknod},       {P9_TREADLINK, false, p9_op_readlink},
    {P9_TLINK, true, p9_op_link},         {P9_TRENAME, true, p9_op_rename},
    {P9_TRENAMEAT, true, p9_op_renameat}, {P9_TUNLINKAT, true, p9_op_unlinkat},
    {P9_TREMOVE, false, p9_op_remove}, /* clunks even on EROFS, itself */
    {P9_TXATTRWALK, false, op_xattr},     {P9_TXATTRCREATE, true, op_xattr},
    {P9_TLOCK, false, op_lock},           {P9_TGETLOCK, false, op_getlock},
};

static int dispatch(struct p9_req *r)
{
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (ops[i].type != r->type)
			continue;
		/* Tversion opens the session; nothing comes before it. */
		if (r->s->msize == 0 && r->type != P9_TVERSION)
			return -EPROTO;
		if (ops[i].modifies && r->s->read_only)
			return -EROFS;
		return ops[i].fn(r);
	}
	return -EPROTO; /* not a 9P2000.L request we know */
}

uint32_t p9_server_handle(struct p9_server *s, const uint8_t *req, size_t len,
                          uint8_t *resp, size_t cap)
{
	if (len < P9_HDR_SIZE)
		return 0;
	if (cap > P9_MAX_MSIZE)
		cap = P9_MAX_MSIZE;
	if (s->msize && cap > s->msize)
		cap = s->msize;
	if (cap < P9_IOHDR_SIZE)
		return 0;
	struct p9_req r = {.s = s,
	                   .in = {.p = req, .len = len},
	                   .out = {.p = resp, .cap = cap}};
	uint32_t size = p9_get32(&r.in);
	r.type = p9_get8(&r.in);
	r.tag = p9_get16(&r.in);
	int rc;
	if (size < P9_HDR_SIZE || size > len)
		rc = -EPROTO; /* the size field lies */
	else if (s->msize && size > s->msize)
		rc = -EMSGSIZE;
	else {
		r.in.len = size;
		rc = dispatch(&r);
	}
	if (rc == 0) {
		uint32_t n = p9_finish(&r.out);
		if (n)
			return n;
		rc = -EMSGSIZE; /* the reply did not fit */
	}
	p9_begin(&r.out, P9_RLERROR, r.tag);
	p9_put32(&r.out, (uint32_t)-rc);
	return p9_finish(&r.out);
}
