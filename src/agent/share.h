/* husk-agent: directories of virtio-9p shares, "9p:TAG/SUBDIR".
 *
 * A pod's containers get their roots and volumes from directories of one
 * share the host exports, rather than a disk each. virtio-9p lets a tag be
 * mounted only once (a second mount fails: "no channels available"), so
 * the agent mounts each share it is asked for once, read-write, at
 * STATE/shares/TAG (STATE = env->state_dir) and keeps it for its life;
 * each user gets a bind of its SUBDIR: a container's root (read-only, as
 * its lower layer) or a volume.
 *
 * What is in the share is not trusted: a container with a writable volume
 * of it can put symlinks there. So SUBDIR is opened beneath the share with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
 * and the bind is made from that fd through /proc/self/fd/N: no '..' and
 * no link can point a bind anywhere else.
 *
 * A tag is used in one form only: a share mounted here cannot also be a
 * plain "9p:TAG:..." volume (that one is mounted by the container itself,
 * and the second mount would find no channel). */
#ifndef HUSK_AGENT_SHARE_H
#define HUSK_AGENT_SHARE_H

#include <stdbool.h>
#include <stddef.h>

#include "agent.h"

/* What virtio-9p needs, and the largest message size QEMU and husk-vmm
 * accept, which makes big reads and writes few round trips. */
#define AGENT_P9_OPTIONS "trans=virtio,version=9p2000.L,msize=262144"

#define AGENT_SHARE_TAG_MAX 31 /* what we accept as a virtio-9p mount tag */
/* "9p:TAG/SUBDIR" whole, the protocol's limit for ROOT_DEVICE. */
#define AGENT_SHARE_SPEC_MAX 255
/* STATE/shares holds the share mounts; no container may take that id. */
#define AGENT_SHARES_DIR "shares"
/* Shares one agent mounts at most. */
#define AGENT_SHARES_MAX 64

/* 1 to 31 letters, digits, '_' or '-'. */
bool agent_share_valid_tag(const char *tag);

/* Whether a ROOT_DEVICE names a share ("9p:..."). */
bool agent_share_is_spec(const char *spec);

/* Checks and splits "TAG/SUBDIR" (a spec without its "9p:"): TAG as
 * agent_share_valid_tag, SUBDIR one or more '/'-separated components of
 * [A-Za-z0-9_.-], none empty, "." or "..", and "9p:TAG/SUBDIR" at most
 * AGENT_SHARE_SPEC_MAX bytes. Returns NULL with tag and subdir filled
 * (tag holds AGENT_SHARE_TAG_MAX + 1 bytes, subdir AGENT_SHARE_SPEC_MAX +
 * 1), or why it is refused, for a message. */
const char *agent_share_split(const char *src, char *tag, char *subdir);

/* "STATE/shares/TAG". ENAMETOOLONG when it does not fit. */
int agent_share_path(const struct agent_env *env, const char *tag, char *buf,
                     size_t cap, struct husk_error *err);

/* In the agent's own mount namespace: mounts the share TAG at
 * STATE/shares/TAG unless this agent already has, read-write, with
 * AGENT_P9_OPTIONS. Neither nosuid nor nodev: a root from a share must
 * behave like one from a disk; volume binds add them. Errors name the
 * tag. */
int agent_share_mount(const struct agent_env *env, const char *tag,
                      struct husk_error *err);

/* An O_PATH fd of the directory subdir beneath sharefd (see above); a
 * symlink anywhere in subdir is ELOOP, a way out EXDEV. */
int agent_share_open_beneath(int sharefd, const char *subdir,
                             struct husk_error *err);

/* Binds subdir of the share sharefd names on target, read-only (a bind,
 * then a read-only remount of it). For a container's lower layer; target
 * is a path the agent made. */
int agent_share_bind_ro(int sharefd, const char *subdir, const char *target,
                        struct husk_error *err);

#endif
