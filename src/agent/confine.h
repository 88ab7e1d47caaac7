/* husk-agent: the last steps of a container's process before execve.
 *
 * Resolving Docker's -u against the image's /etc/passwd and /etc/group,
 * then dropping what a container does not get: rlimits set, capabilities
 * cut to Docker's default 14, the user switched, Docker's default seccomp
 * profile loaded. Everything here runs in the container's own process
 * (after fork, normally after pivot_root), never in the agent itself. */
#ifndef HUSK_AGENT_CONFINE_H
#define HUSK_AGENT_CONFINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent.h"

/* Docker's default capabilities as a bit mask (capability n is bit n):
 * CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP
 * SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE. What `docker run`
 * shows as CapBnd 00000000a80425fb. */
#define CONFINE_DEFAULT_CAPS 0xa80425fbULL

/* RLIMIT_NOFILE a container starts with (soft and hard), unless
 * /proc/sys/fs/nr_open is lower. */
#define CONFINE_NOFILE 1048576

/* Resolves Docker's -u (u->user: "", "uid", "uid:gid", "name",
 * "name:group", "uid:group", "name:gid") against ROOT/etc/passwd and
 * ROOT/etc/group, following runc's rules:
 *  - "" means uid 0 (and root's passwd entry, when there is one);
 *  - a numeric user is a uid even when no entry has it; a name must exist;
 *  - the primary group is the entry's (0 without one), unless a group is
 *    given, which is numeric or must exist;
 *  - supplementary groups (every /etc/group entry listing the user's name)
 *    are filled only when no group was given, as Docker does.
 * Missing files are empty ones. With u->has_uid the uid, gid and groups
 * are kept as they are and only home is looked up (by uid).
 * home receives the entry's home directory, or "/" without one; it may be
 * NULL. Errors: ENOENT "unable to find user NAME: no matching entries in
 * passwd file" (likewise for groups), EINVAL for a malformed spec or an id
 * out of range, E2BIG beyond AGENT_MAX_GROUPS groups, ENAMETOOLONG when
 * home does not fit. Symbolic links in the files' paths stay inside root. */
int confine_resolve_user(const char *root, struct agent_user_cfg *u, char *home,
                         size_t home_cap, struct husk_error *err);

/* Runs in the container's process right before execve (after pivot_root;
 * the process must be single-threaded and hold full root capabilities).
 * In order: RLIMIT_NOFILE, PR_SET_NO_NEW_PRIVS when asked (Docker's
 * --security-opt no-new-privileges; off by default), the bounding set cut
 * to CONFINE_DEFAULT_CAPS, ambient capabilities cleared, Docker's default
 * seccomp profile, then groups/gid/uid from u and the final capability
 * sets: for uid 0 effective = permitted = CONFINE_DEFAULT_CAPS, for any
 * other uid none; inheritable always empty. Nothing the filter denies is
 * called after it is loaded, and execve is allowed. */
int confine_apply(const struct agent_user_cfg *u, bool no_new_privs,
                  struct husk_error *err);

/* Installs Docker's default seccomp profile in the calling thread (see
 * seccomp_profile.c). The caller needs CAP_SYS_ADMIN or no_new_privs. */
int confine_seccomp_default(struct husk_error *err);

#endif
