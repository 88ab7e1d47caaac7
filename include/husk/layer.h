/* Applying OCI/Docker image layers (tar streams) onto a directory.
 *
 * An image's root file system is built by applying its layers in order
 * onto one directory. Each layer is a tar stream, plain or compressed
 * with gzip or zstd (libarchive detects which), with OCI semantics:
 *
 *  - an entry creates its path or replaces what is there: a non-directory
 *    replaces anything (a directory there is removed with its whole tree);
 *    a directory over a directory merges, taking the new owner, mode and
 *    times;
 *  - `.wh.NAME` (a whiteout) removes NAME from the same directory and is
 *    not created itself; `.wh..wh..opq` (an opaque marker) empties its
 *    directory of what earlier layers put there. Both act on earlier
 *    layers only: what this same layer writes survives, wherever the
 *    marker sits in the tar. Other `.wh..wh.` names (aufs metadata) are
 *    skipped;
 *  - hard links point at a path inside the root, written earlier by this
 *    or a previous layer; symlinks are stored verbatim;
 *  - owners are the tar's numeric uid/gid; modes keep setuid, setgid and
 *    sticky bits (applied after the owner, which would clear them);
 *    extended attributes (security.capability included) are set after the
 *    owner too; directories get their mode and times once the whole layer
 *    is in, since writing inside them changes their times. trusted.overlay.
 *    and user.overlay. attributes are skipped: they would steer the
 *    overlayfs that later stacks this tree, and are never image content.
 *
 * Nothing is ever written, removed or linked outside the root. Entry names
 * are taken relative to the root (a leading `/` is dropped, as Docker
 * does) and cleaned lexically; one whose `..` climbs above the root is
 * refused (EINVAL). Every path is then resolved beneath the root's
 * descriptor by openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
 * and every change is an *at() call on a parent directory's descriptor
 * that never follows the last component. So a symlink that leads out of
 * the root (absolute, or `..` above it), planted by this or an earlier
 * layer, cannot be written through: such an entry fails with EXDEV (or
 * ELOOP) naming it. A symlink that stays inside the root is followed for
 * the directories above an entry, as Docker does. Hard links to a
 * directory, to a missing path or to a symlink that leads out are refused;
 * a whiteout of `.`, `..` or of nothing is refused (EINVAL).
 *
 * Needs Linux >= 5.6 (openat2) and /proc mounted (extended attributes of
 * symlinks and device nodes, and modes of device nodes and fifos, are set
 * through /proc/self/fd/N, since no descriptor of them can be opened
 * safely). The caller needs the privileges the layer asks for: root (or
 * CAP_CHOWN, CAP_MKNOD, CAP_FOWNER, CAP_SYS_ADMIN for trusted.* xattrs).
 *
 * A layer that fails part-way leaves the root partly modified. Callers
 * build an image into a temporary directory and throw it away on error.
 */
#ifndef HUSK_LAYER_H
#define HUSK_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "husk/error.h"

/* What one layer did. */
struct husk_layer_stats {
	uint64_t entries;   /* entries created or updated */
	uint64_t bytes;     /* bytes of regular-file data written */
	uint64_t whiteouts; /* whiteouts and opaque markers applied */
	uint64_t skipped;   /* entries or xattrs left out (see the flags) */
};

enum {
	/* Device nodes that mknod(2) refuses with EPERM (an unprivileged
	 * caller) are skipped and counted instead of failing the layer. */
	HUSK_LAYER_SKIP_DEVICES = 1,
	/* Extended attributes the file system refuses with ENOTSUP or EPERM
	 * are skipped and counted instead of failing the layer. */
	HUSK_LAYER_IGNORE_XATTR_ERRORS = 2,
};

/* Compression a layer media type names (husk_layer_check_media_type). */
enum husk_layer_compression {
	HUSK_LAYER_TAR = 0,
	HUSK_LAYER_GZIP = 1,
	HUSK_LAYER_ZSTD = 2,
};

/* Applies the layer read from tar_fd (to its end) onto the directory
 * root_dirfd (any directory descriptor, O_PATH included; neither is
 * closed). st, when not NULL, is filled even on failure with what was done
 * so far. Errors: EINVAL for an entry that escapes or is malformed, EXDEV
 * or ELOOP for one reached through a symlink out of the root, EBADMSG for
 * a damaged or truncated archive (libarchive's message and the entry
 * name), EPERM for a device node that may not be made, and the errno of a
 * failed system call, always naming the entry. */
int husk_layer_apply_fd(int root_dirfd, int tar_fd, unsigned flags,
                        struct husk_layer_stats *st, struct husk_error *err);

/* The same, from len bytes at buf (tests, fuzzing, small layers). */
int husk_layer_apply_memory(int root_dirfd, const void *buf, size_t len,
                            unsigned flags, struct husk_layer_stats *st,
                            struct husk_error *err);

/* The same, by paths: root must be an existing directory. */
int husk_layer_apply(const char *root, const char *tar_path, unsigned flags,
                     struct husk_layer_stats *st, struct husk_error *err);

/* Returns the compression (enum husk_layer_compression) of a layer media
 * type husk can apply: application/vnd.oci.image.layer.v1.tar[+gzip|+zstd],
 * their .nondistributable. variants, and Docker's
 * application/vnd.docker.image.rootfs[.foreign].diff.tar[.gzip|.zstd].
 * Anything else is EPROTONOSUPPORT "unknown layer media type X". The
 * appliers themselves detect the compression from the bytes. */
int husk_layer_check_media_type(const char *media_type, struct husk_error *err);

#endif
