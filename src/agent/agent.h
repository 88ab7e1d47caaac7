/* husk-agent: the shared pieces of the guest agent (PID 1 of a microVM,
 * or an ordinary process on the host for tests).
 *
 * The session (session.c) turns CREATE/EXEC requests into these plain
 * structs; the container's filesystem (rootfs.c), its cgroup (cgroup.c) and
 * the last steps before exec (confine.c) read them. Strings are
 * NUL-terminated copies, already checked against the protocol's limits. */
#ifndef HUSK_AGENT_H
#define HUSK_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "husk/error.h"

#define AGENT_MAX_GROUPS 256

struct agent_mount;

/* What CREATE says about the container as a whole. */
struct agent_container_cfg {
	char id[129];          /* [A-Za-z0-9_.-], 1..128; checked by session */
	char root_device[256]; /* block device (EROFS or ext4), a share's
	                          directory "9p:TAG/SUBDIR" (share.h) or, in
	                          host mode, a directory to use read-only */
	bool readonly_root;    /* no writable layer: the root stays read-only */
	char hostname[65];     /* "" means the id's first 12 characters */
	uint64_t memory_limit; /* bytes; 0: none */
	uint32_t cpu_millis;   /* 1000 = one CPU; 0: none */
	uint64_t pids_limit;   /* 0: none */
	/* The id of a container whose first process's PID namespace this
	 * one joins (a pod's shared namespace); "": a new one. Checked by
	 * the session. */
	char pid_ns_of[129];
	/* MOUNT entries in the order given (volume.h); owned by the
	 * request, valid until the first process has entered its root. */
	const struct agent_mount *mounts;
	size_t nmounts;
};

/* Who the process runs as. user is Docker's -u: "", "uid", "uid:gid",
 * "name", "name:group", resolved in the container's /etc/passwd and
 * /etc/group; has_uid means uid/gid/groups came numerically in the
 * request and user is not consulted. */
struct agent_user_cfg {
	char user[257];
	bool has_uid;
	uid_t uid;
	gid_t gid;
	gid_t groups[AGENT_MAX_GROUPS];
	size_t ngroups;
};

/* Where the agent runs. */
struct agent_env {
	bool host_mode;        /* an ordinary process on the host (tests) */
	const char *state_dir; /* per-container mounts: "/run/husk" */
	const char *cgroup;    /* cgroup v2 directory for containers
	                          ("/sys/fs/cgroup/husk"); NULL: no cgroups
	                          (then limits are refused with ENOTSUP) */
};

/* Helpers shared by cgroup.c, rootfs.c and rootfs_enter.c (agent_util.c). */

/* snprintf into buf; ENAMETOOLONG ("path too long") when it does not fit. */
int agent_pathf(char *buf, size_t cap, struct husk_error *err, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

/* EINVAL unless id is 1..128 bytes, without '/', and not ".", ".." or
 * "shares" (STATE/shares is the agent's, share.h). The session checks the
 * stricter protocol charset before this. */
int agent_check_id(const char *id, struct husk_error *err);

#endif
