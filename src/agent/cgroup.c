/* husk-agent: a cgroup v2 group per container, for its limits, its
 * statistics and a sure way to kill everything it started. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"

/* Enough for any of the small files read here (cpu.stat is the largest). */
#define CG_READ_MAX 8192

/* The container's group, env->cgroup/ID. */
static int group_path(char *buf, size_t cap, const struct agent_env *env,
                      const char *id, struct husk_error *err)
{
	int r = agent_check_id(id, err);
	return r ? r : agent_pathf(buf, cap, err, "%s/%s", env->cgroup, id);
}

/* Interface files take one value per write(2); no O_CREAT: a missing file
 * means a controller that is off, not something to make up. */
static int write_file(const char *dir, const char *name, const char *value,
                      struct husk_error *err)
{
	char path[PATH_MAX];
	int r = agent_pathf(path, sizeof(path), err, "%s/%s", dir, name);
	if (r)
		return r;
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return husk_err_errno(err, errno, "open %s", path);
	size_t len = strlen(value);
	ssize_t n = write(fd, value, len);
	int saved = errno;
	close(fd);
	if (n < 0)
		return husk_err_errno(err, saved, "write '%s' to %s", value,
		                      path);
	if ((size_t)n != len)
		return husk_err(err, EIO, "short write to %s", path);
	return 0;
}

/* Reads dir/name into buf, NUL-terminated; -ENOENT without recording an
 * error, so callers can treat a missing file as "unknown". */
static int read_file(const char *dir, const char *name, char *buf, size_t cap,
                     struct husk_error *err)
{
	char path[PATH_MAX];
	int r = agent_pathf(path, sizeof(path), err, "%s/%s", dir, name);
	if (r)
		return r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return -ENOENT;
		return husk_err_errno(err, errno, "open %s", path);
	}
	size_t len = 0;
	ssize_t n = 0;
	while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	int saved = errno;
	close(fd);
	if (len < cap - 1 && n < 0)
		return husk_err_errno(err, saved, "read %s", path);
	buf[len] = '\0';
	return 0;
}

/* A decimal u64 that fills s up to trailing whitespace. */
static bool parse_u64(const char *s, uint64_t *v)
{
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		return false;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno != 0)
		return false;
	while (*end == ' ' || *end == '\t' || *end == '\n')
		end++;
	if (*end != '\0')
		return false;
	*v = x;
	return true;
}

/* A one-number file such as memory.current; "max" reads as UINT64_MAX. */
static int read_u64(const char *dir, const char *name, uint64_t missing,
                    uint64_t *v, struct husk_error *err)
{
	char buf[64];
	int r = read_file(dir, name, buf, sizeof(buf), err);
	if (r == -ENOENT) {
		*v = missing;
		return 0;
	}
	if (r)
		return r;
	if (strcmp(buf, "max\n") == 0 || strcmp(buf, "max") == 0) {
		*v = UINT64_MAX;
		return 0;
	}
	if (!parse_u64(buf, v))
		return husk_err(err, EINVAL, "%s/%s: not a number: '%.32s'",
		                dir, name, buf);
	return 0;
}

/* The value of KEY in a flat-keyed file ("key value" lines, as cpu.stat
 * and memory.events are); *v untouched when the key is absent. */
static int read_key(const char *dir, const char *name, const char *key,
                    uint64_t *v, struct husk_error *err)
{
	char buf[CG_READ_MAX];
	int r = read_file(dir, name, buf, sizeof(buf), err);
	if (r == -ENOENT)
		return 0;
	if (r)
		return r;
	size_t klen = strlen(key);
	char *save = NULL;
	for (char *line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, key, klen) != 0 ||
		    (line[klen] != ' ' && line[klen] != '\0'))
			continue;
		if (line[klen] == '\0' || !parse_u64(line + klen + 1, v))
			return husk_err(err, EINVAL,
			                "%s/%s: bad value for %s: '%.32s'", dir,
			                name, key, line);
		return 0;
	}
	return 0;
}

/* ---- cgroup_create ------------------------------------------------------- */

static const char *const controllers[] = {"memory", "cpu", "pids"};

static bool needs(const struct agent_container_cfg *c, size_t controller)
{
	switch (controller) {
	case 0: return c->memory_limit != 0;
	case 1: return c->cpu_millis != 0;
	default: return c->pids_limit != 0;
	}
}

/* All three in one write; when the kernel refuses that (a controller not
 * built in, or not enabled above), one at a time, and only a controller
 * whose limit is set must succeed. */
static int enable_controllers(const char *dir,
                              const struct agent_container_cfg *c,
                              struct husk_error *err)
{
	char path[PATH_MAX];
	int r = agent_pathf(path, sizeof(path), err,
	                    "%s/cgroup.subtree_control", dir);
	if (r)
		return r;
	if (access(path, F_OK) != 0)
		return husk_err_errno(err, errno,
		                      "%s is not a cgroup v2 directory", dir);
	struct husk_error ignored;
	if (write_file(dir, "cgroup.subtree_control", "+memory +cpu +pids",
	               &ignored) == 0)
		return 0;
	for (size_t i = 0; i < sizeof(controllers) / sizeof(controllers[0]);
	     i++) {
		char add[16];
		snprintf(add, sizeof(add), "+%s", controllers[i]);
		r = write_file(dir, "cgroup.subtree_control", add, &ignored);
		if (r && needs(c, i))
			return husk_err_errno(err, -r,
			                      "enable the %s controller in %s "
			                      "(needed for its limit)",
			                      controllers[i], dir);
	}
	return 0;
}

/* env->cgroup and the controllers its children need. */
static int make_parent(const char *cg, const struct agent_container_cfg *c,
                       struct husk_error *err)
{
	char parent[PATH_MAX];
	int r = agent_pathf(parent, sizeof(parent), err, "%s", cg);
	if (r)
		return r;
	size_t len = strlen(parent);
	while (len > 1 && parent[len - 1] == '/')
		parent[--len] = '\0';
	char *slash = strrchr(parent, '/');
	if (!slash)
		snprintf(parent, sizeof(parent), ".");
	else /* keep the '/' of a top-level group's parent */
		slash[slash == parent] = '\0';
	if ((r = enable_controllers(parent, c, err)))
		return r;
	if (mkdir(cg, 0755) != 0 && errno != EEXIST)
		return husk_err_errno(err, errno, "create cgroup %s", cg);
	return enable_controllers(cg, c, err);
}

static int write_u64(const char *dir, const char *name, uint64_t v,
                     struct husk_error *err)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return write_file(dir, name, buf, err);
}

static int write_limits(const char *dir, const struct agent_container_cfg *c,
                        struct husk_error *err)
{
	int r;
	if (c->memory_limit) {
		if ((r = write_u64(dir, "memory.max", c->memory_limit, err)))
			return r;
		/* Docker's --memory without --memory-swap doubles the limit
		 * with swap; a guest has no swap worth having, so none. */
		char swap[PATH_MAX];
		if ((r = agent_pathf(swap, sizeof(swap), err,
		                     "%s/memory.swap.max", dir)))
			return r;
		if (access(swap, F_OK) == 0 &&
		    (r = write_file(dir, "memory.swap.max", "0", err)))
			return r;
	}
	if (c->cpu_millis) {
		char buf[48];
		snprintf(buf, sizeof(buf), "%" PRIu64 " 100000",
		         (uint64_t)c->cpu_millis * 100);
		if ((r = write_file(dir, "cpu.max", buf, err)))
			return r;
	}
	if (c->pids_limit &&
	    (r = write_u64(dir, "pids.max", c->pids_limit, err)))
		return r;
	return 0;
}

int cgroup_create(const struct agent_env *env,
                  const struct agent_container_cfg *c, struct husk_error *err)
{
	bool limits = c->memory_limit || c->cpu_millis || c->pids_limit;
	if (!env->cgroup)
		return limits
		           ? husk_err(err, ENOTSUP,
		                      "container %s: resource limits need "
		                      "cgroup v2, which this agent has not got",
		                      c->id)
		           : 0;
	if (c->cpu_millis && c->cpu_millis < 10)
		return husk_err(err, EINVAL,
		                "cpu limit of %" PRIu32 " millis is below the "
		                "kernel's minimum of 10 (1 ms per 100 ms)",
		                c->cpu_millis);
	char dir[PATH_MAX];
	int r = group_path(dir, sizeof(dir), env, c->id, err);
	if (r || (r = make_parent(env->cgroup, c, err)))
		return r;
	bool made = mkdir(dir, 0755) == 0;
	if (!made && errno != EEXIST)
		return husk_err_errno(err, errno, "create cgroup %s", dir);
	r = write_limits(dir, c, err);
	if (r && made)
		rmdir(dir);
	return r;
}

/* ---- attach, stats ------------------------------------------------------- */

int cgroup_attach(const struct agent_env *env, const char *id, pid_t pid,
                  struct husk_error *err)
{
	if (!env->cgroup)
		return 0;
	char dir[PATH_MAX], buf[24];
	int r = group_path(dir, sizeof(dir), env, id, err);
	if (r)
		return r;
	if (pid < 0)
		return husk_err(err, EINVAL, "bad pid %d", (int)pid);
	/* cgroup v2 reads "0" as the writing process. */
	snprintf(buf, sizeof(buf), "%d", (int)pid);
	return write_file(dir, "cgroup.procs", buf, err);
}

static int existing_group(const struct agent_env *env, const char *id,
                          char *dir, size_t cap, struct husk_error *err)
{
	if (!env->cgroup)
		return husk_err(err, ENOTSUP, "this agent has no cgroups");
	int r = group_path(dir, cap, env, id, err);
	if (r)
		return r;
	struct stat st;
	if (stat(dir, &st) != 0)
		return husk_err_errno(err, errno, "cgroup %s", dir);
	return 0;
}

int cgroup_stats(const struct agent_env *env, const char *id,
                 struct cgroup_stats *s, struct husk_error *err)
{
	char dir[PATH_MAX];
	int r = existing_group(env, id, dir, sizeof(dir), err);
	if (r)
		return r;
	struct cgroup_stats t = {.memory_limit = UINT64_MAX};
	uint64_t usec = 0;
	if ((r = read_u64(dir, "memory.current", 0, &t.memory_usage, err)) ||
	    (r = read_u64(dir, "memory.max", UINT64_MAX, &t.memory_limit,
	                  err)) ||
	    (r = read_key(dir, "cpu.stat", "usage_usec", &usec, err)) ||
	    (r = read_u64(dir, "pids.current", 0, &t.pids_current, err)))
		return r;
	if (usec > UINT64_MAX / 1000)
		return husk_err(err, ERANGE, "%s/cpu.stat: usage_usec too big",
		                dir);
	t.cpu_usage_ns = usec * 1000;
	*s = t;
	return 0;
}

int cgroup_oom_kills(const struct agent_env *env, const char *id, uint64_t *n,
                     struct husk_error *err)
{
	*n = 0;
	if (!env->cgroup)
		return 0;
	char dir[PATH_MAX];
	int r = group_path(dir, sizeof(dir), env, id, err);
	return r ? r : read_key(dir, "memory.events", "oom_kill", n, err);
}

/* ---- cgroup_remove ------------------------------------------------------- */

/* SIGKILL to each pid listed in cgroup.procs (kernels before 5.14 have no
 * cgroup.kill). Only positive pids other than the agent's own: kill(0)
 * or kill(-1) would reach far beyond the container. */
static void kill_listed(const char *dir)
{
	char path[PATH_MAX];
	if (agent_pathf(path, sizeof(path), NULL, "%s/cgroup.procs", dir))
		return;
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	char line[32];
	while (fgets(line, sizeof(line), f)) {
		uint64_t pid;
		if (parse_u64(line, &pid) && pid > 0 && pid <= INT_MAX &&
		    (pid_t)pid != getpid())
			kill((pid_t)pid, SIGKILL);
	}
	fclose(f);
}

static void kill_all(const char *dir, bool has_kill)
{
	struct husk_error ignored;
	if (!has_kill || write_file(dir, "cgroup.kill", "1", &ignored) != 0)
		kill_listed(dir);
}

int cgroup_remove(const struct agent_env *env, const char *id,
                  struct husk_error *err)
{
	if (!env->cgroup)
		return 0;
	char dir[PATH_MAX], kill_file[PATH_MAX];
	int r = group_path(dir, sizeof(dir), env, id, err);
	if (r || (r = agent_pathf(kill_file, sizeof(kill_file), err,
	                          "%s/cgroup.kill", dir)))
		return r;
	struct stat st;
	if (stat(dir, &st) != 0 && errno == ENOENT)
		return 0;
	bool has_kill = access(kill_file, F_OK) == 0;
	const struct timespec pause = {.tv_nsec = 5 * 1000 * 1000};
	/* Killed processes leave the group as they exit, a moment later;
	 * newly forked ones are caught by the next round. */
	for (int i = 0; i < 200; i++) {
		kill_all(dir, has_kill);
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return husk_err_errno(err, errno, "remove cgroup %s",
			                      dir);
		nanosleep(&pause, NULL);
	}
	return husk_err(err, EBUSY, "cgroup %s still busy after a second", dir);
}
