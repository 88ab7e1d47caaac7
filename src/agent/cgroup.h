/* husk-agent: each container's cgroup v2 group, env->cgroup/ID.
 *
 * The agent itself must not live in env->cgroup (cgroup v2 lets a group
 * with processes of its own hand no controllers down to its children). */
#ifndef HUSK_AGENT_CGROUP_H
#define HUSK_AGENT_CGROUP_H

#include <stdint.h>
#include <sys/types.h>

#include "agent.h"

struct cgroup_stats {
	uint64_t memory_usage;
	uint64_t memory_limit; /* UINT64_MAX: none */
	uint64_t cpu_usage_ns;
	uint64_t pids_current;
};

/* Creates env->cgroup (if missing) with +memory +cpu +pids in its parent's
 * cgroup.subtree_control and its own, then env->cgroup/ID (an existing
 * one is reused) with memory.max (and memory.swap.max 0 when the file
 * exists), cpu.max "QUOTA 100000" with QUOTA = cpu_millis * 100, and
 * pids.max. Zero limits write nothing; a controller the kernel will not
 * enable is an error only when its limit is set. cpu_millis below 10 is
 * EINVAL (the kernel's smallest quota is 1 ms per period). ENOTSUP when
 * env->cgroup is NULL and any limit is set (NULL and no limits: a
 * no-op). */
int cgroup_create(const struct agent_env *env,
                  const struct agent_container_cfg *c, struct husk_error *err);

/* Moves pid (0 = the caller) into env->cgroup/ID (cgroup.procs). No-op
 * when env->cgroup is NULL. */
int cgroup_attach(const struct agent_env *env, const char *id, pid_t pid,
                  struct husk_error *err);

/* memory.current, memory.max, cpu.stat's usage_usec and pids.current; a
 * file that is missing (its controller is off) reads as 0, or no limit.
 * ENOENT when the cgroup does not exist, ENOTSUP when env->cgroup is
 * NULL, EINVAL for a file that does not parse. */
int cgroup_stats(const struct agent_env *env, const char *id,
                 struct cgroup_stats *s, struct husk_error *err);

/* The oom_kill count of memory.events (0 when unknown). */
int cgroup_oom_kills(const struct agent_env *env, const char *id, uint64_t *n,
                     struct husk_error *err);

/* Kills what is left (cgroup.kill when present, else SIGKILL to each pid
 * in cgroup.procs), then rmdir, retrying for about a second while the
 * group is busy. Idempotent; a no-op when env->cgroup is NULL. */
int cgroup_remove(const struct agent_env *env, const char *id,
                  struct husk_error *err);

#endif
