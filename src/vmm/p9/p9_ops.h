/* Internal to the 9P server: one request being served, and the handlers
 * in p9_ops_file.c and p9_ops_dir.c. A handler decodes its fields from
 * r->in, checks them, does the work and encodes its reply into r->out
 * (p9_begin with r->type + 1 first). It returns 0 when the reply is
 * written, or a negative errno that p9_server_handle turns into Rlerror
 * (whatever was written is discarded). */
#ifndef HUSK_VMM_P9_OPS_H
#define HUSK_VMM_P9_OPS_H

#include "p9_fid.h"
#include "p9_server.h"
#include "p9_wire.h"

struct p9_req {
	struct p9_server *s;
	struct p9_in in;
	struct p9_out out;
	uint8_t type;
	uint16_t tag;
};

/* Helpers (p9_server.c). */
struct p9_fid *p9_req_fid(struct p9_req *r, uint32_t id);
int p9_req_name(struct p9_req *r, char *name); /* a P9_MAX_NAME+1 buffer */
void p9_reply(struct p9_req *r);               /* p9_begin(type + 1) */
int p9_reply_qid_of(struct p9_req *r, int fd); /* reply with fd's qid */
/* Owner of a newly created file: uid/gid from the guest, errors ignored
 * (a non-root husk-vmm cannot give files away, as QEMU's
 * security_model=none). */
void p9_set_owner(int fd, uint32_t uid, uint32_t gid);

/* p9_ops_file.c */
int p9_op_lopen(struct p9_req *r);
int p9_op_lcreate(struct p9_req *r);
int p9_op_read(struct p9_req *r);
int p9_op_write(struct p9_req *r);
int p9_op_readdir(struct p9_req *r);
int p9_op_fsync(struct p9_req *r);
int p9_op_getattr(struct p9_req *r);
int p9_op_setattr(struct p9_req *r);
int p9_op_statfs(struct p9_req *r);

/* p9_ops_dir.c */
int p9_op_walk(struct p9_req *r);
int p9_op_mkdir(struct p9_req *r);
int p9_op_symlink(struct p9_req *r);
int p9_op_mknod(struct p9_req *r);
int p9_op_readlink(struct p9_req *r);
int p9_op_link(struct p9_req *r);
int p9_op_rename(struct p9_req *r);
int p9_op_renameat(struct p9_req *r);
int p9_op_unlinkat(struct p9_req *r);
int p9_op_remove(struct p9_req *r);

#endif
