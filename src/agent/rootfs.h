/* husk-agent: the container's filesystem.
 *
 * Life of a container's root, all under STATE/ID (STATE = env->state_dir):
 *
 *   lower/    the image, read-only (the EROFS or ext4 disk, a bind of a
 *             9p share's directory, or a directory bound read-only in
 *             host mode)
 *   rw/       a tmpfs holding overlayfs's upper/ and work/ (absent with
 *             readonly_root)
 *   rootfs/   what becomes the container's "/": the overlay, or a
 *             read-only bind of lower/
 *   etc/      hostname, hosts and resolv.conf, bound over the image's
 *   host/     only when the agent's own root is the initramfs (see
 *             rootfs_pivot)
 *
 * rootfs_prepare builds this in the agent's mount namespace; the
 * container's first process calls rootfs_enter in its copy of that
 * namespace; rootfs_release takes it all down after the last process.
 *
 * rootfs_enter needs /proc mounted in the agent's namespace: mounts inside
 * the image are made through /proc/self/fd/N so that no path in the image
 * (a symlink /etc/hosts -> /../../x, say) can point a mount outside it. */
#ifndef HUSK_AGENT_ROOTFS_H
#define HUSK_AGENT_ROOTFS_H

#include <stdbool.h>
#include <stddef.h>

#include "agent.h"

/* Finds the block device for a ROOT_DEVICE spec: a path starting with '/'
 * is used as is (it must exist); "serial:NAME" names a virtio-blk disk by
 * its serial (at most 20 bytes, virtio-blk's limit): the first
 * /sys/block/vd* whose serial attribute is NAME gives "/dev/vdX". ENOENT
 * with a clear message when none matches. */
int rootfs_find_device(const char *spec, char *out, size_t cap,
                       struct husk_error *err);

/* The same with the sysfs block directory and the device directory given
 * ("/sys/block", "/dev"), so tests can use fakes. */
int rootfs_find_device_in(const char *sys_block, const char *dev_dir,
                          const char *spec, char *out, size_t cap,
                          struct husk_error *err);

/* In the agent's own mount namespace: builds STATE/ID as above (STATE is
 * created 0700 if missing; STATE/ID must not exist: EEXIST) and writes
 * STATE/ID/rootfs into root. The device is tried as erofs, then ext4,
 * read-only and noatime; a directory is bound read-only; "9p:TAG/SUBDIR"
 * mounts the share once (share.h, EINVAL in host mode) and binds SUBDIR
 * read-only. On failure, undoes what it did (a share stays mounted). */
int rootfs_prepare(const struct agent_env *env,
                   const struct agent_container_cfg *c, char *root, size_t cap,
                   struct husk_error *err);

/* In the container's first process, right after
 * clone(CLONE_NEWNS|CLONE_NEWPID|CLONE_NEWUTS|CLONE_NEWIPC): makes every
 * mount private, mounts /proc, /dev (tmpfs with the usual nodes, devpts,
 * shm, mqueue), /sys read-only, /sys/fs/cgroup (cgroup2, read-only, when
 * the agent has cgroup2 there) and the STATE/ID/etc files inside root;
 * mounts c's volumes (volume.h); masks and write-protects Docker's list
 * of /proc and /sys paths; pivot_root(root) with the old root detached;
 * sets the hostname; with readonly_root remounts "/" read-only. A failure
 * leaves the process half set up: the caller should exit. */
int rootfs_enter(const struct agent_env *env,
                 const struct agent_container_cfg *c, const char *root,
                 struct husk_error *err);

/* After the container's last process: unmounts everything under STATE/ID
 * (lazily, deepest first) and removes the directories it made, with
 * rmdir/unlink only, so a mount that would not go away can never have its
 * contents deleted. Idempotent. */
int rootfs_release(const struct agent_env *env, const char *id,
                   struct husk_error *err);

/* Pieces shared by rootfs.c, rootfs_enter.c and the tests. */

/* "STATE/ID" or "STATE/ID/SUB" (sub may be NULL); ENAMETOOLONG when it
 * does not fit. */
int rootfs_state_path(char *buf, size_t cap, const struct agent_env *env,
                      const char *id, const char *sub, struct husk_error *err);

/* c->hostname, or the id's first 12 characters; EINVAL when it holds
 * spaces or control characters (it goes into /etc/hosts). */
int rootfs_hostname(const struct agent_container_cfg *c, char out[65],
                    struct husk_error *err);

/* Remounts the mount at path read-only, keeping its nosuid, nodev, noexec
 * and atime flags (a bind remount replaces them all). */
int rootfs_remount_ro(const char *path, struct husk_error *err);

/* The same with any of MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC in add
 * set on top of the flags the mount has. */
int rootfs_remount_bind(const char *path, unsigned long add,
                        struct husk_error *err);

/* Makes root the process's "/" and detaches the old root. pivot_root(2)
 * refuses to move away from the initramfs (a root mount without a parent),
 * which is where the agent runs as PID 1; then, or always when
 * rebind_first, the old root is first bound recursively on spare (a
 * directory to create) and moved over "/", which gives it a parent, and
 * the pivot is retried. spare may be NULL: no retry. */
int rootfs_pivot(const char *root, const char *spare, bool rebind_first,
                 struct husk_error *err);

#endif
