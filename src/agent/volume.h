/* husk-agent: volumes, the MOUNT entries of CREATE.
 *
 * Each entry is "TYPE:SOURCE:MODE:/dest" (include/husk/proto.h):
 *
 *   9p:TAG:ro|rw:/dest        the virtio-9p share whose mount tag is TAG
 *   9p:TAG/SUBDIR:ro|rw:/dest a directory of that share (share.h): the
 *                             agent mounts the share once, the container
 *                             binds SUBDIR, nosuid and nodev
 *   tmpfs::rw:/dest           a fresh tmpfs (mode 1777, 64 MiB at most)
 *   bind:/host/path:ro|rw:/dest   only for the agent on the host (tests)
 *
 * DEST is everything after the third ':', so it may hold ':' itself.
 *
 * The image is not trusted: a /data -> /etc or ../../.. symlink in it must
 * not carry a volume out of the container's root. The destination is
 * resolved with openat2(RESOLVE_IN_ROOT) against the root, missing
 * directories are made one component at a time inside it, and the mount
 * goes onto the opened file (rootfs_enter.c does the same for /proc,
 * /dev and /etc). */
#ifndef HUSK_AGENT_VOLUME_H
#define HUSK_AGENT_VOLUME_H

#include <stdbool.h>
#include <stddef.h>

#include "agent.h"
#include "share.h"

enum agent_mount_type {
	AGENT_MOUNT_9P,
	AGENT_MOUNT_TMPFS,
	AGENT_MOUNT_BIND,
};

#define AGENT_MOUNT_PATH_MAX 4096

/* One checked MOUNT entry. */
struct agent_mount {
	enum agent_mount_type type;
	bool readonly;
	/* the 9p tag or the bind's host path; "" for tmpfs */
	char source[AGENT_MOUNT_PATH_MAX];
	/* 9p only: the share's directory to bind, "" for the whole share */
	char subdir[AGENT_SHARE_SPEC_MAX + 1];
	/* normalised and relative to the root: "data/x" */
	char dest[AGENT_MOUNT_PATH_MAX];
};

/* Checks and splits one MOUNT value (len bytes, no NUL among them; at most
 * the protocol's 4200). EINVAL with a message quoting the entry when it is
 * malformed: an unknown type, a bad tag, a mode other than ro or rw, a
 * destination that is not absolute, holds "..", is "/" or lies under
 * /proc or /sys, or "bind:" where host_mode is false. */
int agent_mount_parse(const char *s, size_t len, bool host_mode,
                      struct agent_mount *out, struct husk_error *err);

/* "9p:vol0 at /data", "9p:pod/c1/data at /data", "tmpfs at /tmp", for
 * messages. */
void agent_mount_describe(const struct agent_mount *m, char *buf, size_t cap);

/* In the agent, before the container's first process is cloned: mounts
 * the shares c's "9p:TAG/SUBDIR" volumes use (agent_share_mount), so that
 * the process finds them at STATE/shares/TAG in its copy of the agent's
 * mount namespace. */
int agent_mount_shares(const struct agent_env *env,
                       const struct agent_container_cfg *c,
                       struct husk_error *err);

/* In the container's first process, before pivot_root: mounts each of c's
 * volumes, in order, onto its destination inside the root that rootfd
 * names, creating missing directories (or, for a bound file, an empty
 * file) there. Errors name the volume: "mount 9p:vol0 at /data: No such
 * device". */
int agent_mount_volumes(const struct agent_env *env, int rootfd,
                        const struct agent_container_cfg *c,
                        struct husk_error *err);

#endif
