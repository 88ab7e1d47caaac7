/* The fid table of one 9P session.
 *
 * A fid is a host file descriptor, never a path: `fd` is an O_PATH handle
 * on the very file the guest walked to, so a rename on either side cannot
 * make the fid point somewhere else. `parent` and `name` remember where it
 * was found, because a regular file can only be opened for I/O again
 * through its directory (see p9_fs.h); they are updated on our own
 * renames. The table is a small hash over the 32-bit fid number, capped
 * at P9_MAX_FIDS since each fid holds up to three host descriptors.
 */
#ifndef HUSK_VMM_P9_FID_H
#define HUSK_VMM_P9_FID_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define P9_FID_BUCKETS 256

struct p9_fid {
	uint32_t id;
	int fd;     /* O_PATH|O_NOFOLLOW: what the fid is */
	int parent; /* O_PATH of the directory it was found in; -1: root */
	char *name; /* its name in parent; NULL for the root */
	dev_t parent_dev; /* parent's identity, to follow our own renames */
	ino_t parent_ino;
	mode_t type;  /* S_IFMT bits of fd */
	int io_fd;    /* open for I/O after Tlopen/Tlcreate, else -1 */
	uint32_t uid; /* the attaching user: owner of what this fid creates */
	struct p9_fid *next;
};

struct p9_fids {
	struct p9_fid *bucket[P9_FID_BUCKETS];
	unsigned n;
};

/* The fid numbered id, or NULL. */
struct p9_fid *p9_fid_get(struct p9_fids *t, uint32_t id);

/* Adds fid id with no descriptors (all -1). NULL with *e = EBADF when id
 * is P9_NOFID or already in use, EMFILE at P9_MAX_FIDS, ENOMEM. */
struct p9_fid *p9_fid_add(struct p9_fids *t, uint32_t id, int *e);

/* Closes fid id's descriptors and forgets it; false when there is none. */
bool p9_fid_remove(struct p9_fids *t, uint32_t id);

/* Closes the descriptors of f (the fid stays). */
void p9_fid_close(struct p9_fid *f);

/* Forgets every fid (Tversion starts a new session; teardown). */
void p9_fid_clear(struct p9_fids *t);

/* Our rename moved (old directory dev/ino, oldname) to newname in the
 * directory newdir: fids found under the old name follow it. */
void p9_fid_renamed(struct p9_fids *t, dev_t odev, ino_t oino,
                    const char *oldname, int newdir, const char *newname);

#endif
