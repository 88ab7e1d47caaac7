/* A 9P2000.L file server over one host directory, for virtio-9p.
 *
 * Transport-neutral: it takes one request message in a host buffer and
 * writes one reply into another. The guest is hostile: every field is
 * checked (p9_wire.h), every name is confined to the share (p9_fs.h), and
 * a malformed message is answered with Rlerror, never trusted. Every
 * request is served to completion before the next (there is nothing in
 * flight for Tflush to cancel).
 *
 * Protocol subset: version (9P2000.L only; msize capped at P9_MAX_MSIZE),
 * attach, walk, lopen, lcreate, read, write, clunk, remove, getattr,
 * setattr, readdir, mkdir, symlink, mknod (FIFOs and sockets only),
 * readlink, link, rename, renameat, unlinkat, statfs, fsync, flush, lock
 * and getlock (see p9_server.c), xattrwalk and xattrcreate (EOPNOTSUPP).
 * Tauth is refused: the transport is the VM's own device.
 */
#ifndef HUSK_VMM_P9_SERVER_H
#define HUSK_VMM_P9_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "husk/error.h"
#include "p9_fid.h"

struct p9_server {
	int root_fd; /* O_PATH of the shared directory */
	dev_t root_dev;
	bool read_only; /* every modifying request gets EROFS */
	uint32_t msize; /* negotiated by Tversion; 0 before */
	struct p9_fids fids;
	/* getdents64 scratch for Treaddir. */
	uint8_t dents[16384];
};

/* Opens dir (which must be a directory) as the share's root. 0, or a
 * negative errno with *err filled; s is then safe to destroy. */
int p9_server_init(struct p9_server *s, const char *dir, bool read_only,
                   struct husk_error *err);

/* Closes every fid and the root. Safe on a failed or destroyed s. */
void p9_server_destroy(struct p9_server *s);

/* Serves the request in req[0, len) and writes the reply into
 * resp[0, cap). len is what the transport received: the message's own
 * size field must not exceed it. Returns the reply's length, or 0 when
 * there is no reply to give (fewer than 7 bytes: no tag to answer; or
 * cap too small for even an Rlerror). */
uint32_t p9_server_handle(struct p9_server *s, const uint8_t *req, size_t len,
                          uint8_t *resp, size_t cap);

#endif
