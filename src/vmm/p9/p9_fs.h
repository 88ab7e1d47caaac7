/* The only code of the 9P server that resolves names on the host. The
 * confinement rules live here:
 *
 * - A name from the guest is one path component: never "", "." or "..",
 *   never containing '/' (p9_check_name). Paths are walked one component
 *   at a time by the guest's own Twalk.
 * - Every lookup is openat2(dirfd, name) with RESOLVE_BENEATH,
 *   RESOLVE_NO_SYMLINKS and RESOLVE_NO_MAGICLINKS plus O_NOFOLLOW: a
 *   symlink in the share is handed to the guest as a symlink (it can
 *   readlink it; the guest kernel resolves it in the guest's namespace),
 *   never followed on the host, and a component can never leave dirfd.
 * - A fid is an O_PATH descriptor, not a path (p9_fid.h), so renames
 *   cannot retarget it.
 * - Opening a fid for I/O cannot go through /proc/self/fd/N: that is a
 *   magic link, exactly what RESOLVE_NO_MAGICLINKS forbids (and it would
 *   need /proc). A directory reopens itself as openat2(fd, "."), which
 *   stays at fd. A regular file has no such handle, so it is opened again
 *   by name in the directory it was found in, with O_NOFOLLOW and
 *   O_NONBLOCK, and the result must be the same inode as the fid's O_PATH
 *   descriptor; if the name was replaced meanwhile (by a symlink: ELOOP,
 *   or by any other file: ESTALE), the open fails instead of reaching
 *   something else. O_NONBLOCK keeps a FIFO slipped in under the name
 *   from blocking the vCPU thread; it is cleared once the identity holds.
 *   Only regular files and directories are ever opened for I/O.
 */
#ifndef HUSK_VMM_P9_FS_H
#define HUSK_VMM_P9_FS_H

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "p9_fid.h"
#include "p9_proto.h"

/* 0, -EINVAL ("" or a '/'), or -EPERM ("." or ".."). */
int p9_check_name(const char *name);

/* openat2(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, mode)
 * confined as above. The name must have passed p9_check_name. An fd or a
 * negative errno. */
int p9_openat(int dirfd, const char *name, int flags, mode_t mode);

/* An O_PATH handle on name in dirfd (a symlink is returned as itself). */
int p9_lookup(int dirfd, const char *name);

/* Opens fid f for I/O with flags (an O_ACCMODE plus O_APPEND, O_TRUNC,
 * O_DSYNC, O_SYNC), as described above. An fd or a negative errno:
 * -EISDIR for a directory opened for writing, -ELOOP for a symlink,
 * -ENXIO for a device, FIFO or socket, -ESTALE when the name now names
 * another file. */
int p9_reopen(const struct p9_fid *f, int flags);

/* fstat of an O_PATH descriptor (AT_EMPTY_PATH). 0 or a negative errno. */
int p9_fstat(int fd, struct stat *st);

/* The qid of a file: its inode number (mixed with the device when the file
 * lies on another file system than the share's root). */
struct p9_qid p9_qid_of(const struct stat *st, dev_t root_dev);

#endif
