/* `husk run --rootfs DIR`: a directory tree as a read-only VM disk.
 *
 * The guest mounts the container's root from a virtio-blk disk, so a plain
 * directory has to become a filesystem image first. Building one takes
 * seconds; the image is therefore cached under a name derived from the
 * tree's content, and a second run of the same tree (or of an identical
 * copy) boots from the image already there.
 */
#ifndef HUSK_ROOTFS_DISK_H
#define HUSK_ROOTFS_DISK_H

#include <stddef.h>

#include "husk/error.h"

/* Hex digits of a tree hash, without the terminating NUL. */
#define HUSK_ROOTFS_HASH_HEX 64

/* Hashes the tree under dir (SHA-256) into hex (HUSK_ROOTFS_HASH_HEX + 1
 * bytes). Every entry counts, in sorted order and without following
 * symlinks: relative path, type, permission bits, uid, gid, size (files
 * and symlinks), device number, symlink target, hard links within the
 * tree, extended attributes and file contents. Modification times do not
 * count, so that a copy of a tree hits the same cached image.
 * dir itself may be a symlink to a directory; ENOTDIR when it is not a
 * directory. */
int husk_rootfs_hash(const char *dir, char *hex, struct husk_error *err);

/* Returns in out the path of a read-only image of dir:
 * CACHE/rootfs-<hash>.erofs, or CACHE/rootfs-<hash>.ext4 where mkfs.erofs
 * is missing or fails. An image already in the cache is reused; otherwise
 * it is built into a temporary file in cache_dir, synced and renamed into
 * place, so that a crash never leaves a complete-looking partial image and
 * two processes building the same image at once both succeed. cache_dir is
 * created (mode 0700) when missing. Owners, modes, hard links and extended
 * attributes are kept. The tree must not change while this runs. */
int husk_rootfs_disk(const char *dir, const char *cache_dir, char *out,
                     size_t cap, struct husk_error *err);

/* Looks for CACHE/STEM.erofs, then CACHE/STEM.ext4: 1 with its path in
 * out, 0 when neither is there, or a negative errno. */
int husk_disk_cached(const char *cache_dir, const char *stem, char *out,
                     size_t cap, struct husk_error *err);

/* The same for a tree whose key the caller knows (an image's layers):
 * CACHE/NAME.erofs (or .ext4), built from dir only when missing. name is
 * letters, digits, '-' and '_'. */
int husk_disk_named(const char *dir, const char *cache_dir, const char *name,
                    char *out, size_t cap, struct husk_error *err);

#endif
