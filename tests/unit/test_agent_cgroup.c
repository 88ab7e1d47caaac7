/* cgroup.c against a fake cgroup tree: plain files in a temporary
 * directory stand in for the kernel's interface files (the build hosts
 * run cgroup v1; a real cgroup2 exists only in the guest). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/agent/cgroup.h"

struct fake {
	char top[64];  /* stands for /sys/fs/cgroup */
	char base[96]; /* env->cgroup: top/husk */
	char ct[128];  /* top/husk/c1 */
	struct agent_env env;
	struct agent_container_cfg cfg;
};

static void put(const char *dir, const char *name, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* The file's contents, in a static buffer; "<missing>" when absent. */
static const char *get(const char *dir, const char *name)
{
	static char buf[256];
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	if (!f)
		return "<missing>";
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->top, sizeof(f->top), "/tmp/husk-cgroup-XXXXXX");
	assert_non_null(mkdtemp(f->top));
	snprintf(f->base, sizeof(f->base), "%s/husk", f->top);
	snprintf(f->ct, sizeof(f->ct), "%s/c1", f->base);
	put(f->top, "cgroup.subtree_control", "");
	assert_int_equal(mkdir(f->base, 0755), 0);
	put(f->base, "cgroup.subtree_control", "");
	/* mkdir in a real cgroup2 fills the new group with its files; the
	 * fake has them ready. */
	assert_int_equal(mkdir(f->ct, 0755), 0);
	static const char *const files[] = {
	    "memory.max", "memory.swap.max", "cpu.max",
	    "pids.max",   "cgroup.procs",
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		put(f->ct, files[i], "untouched");
	f->env =
	    (struct agent_env){.state_dir = "/nonexistent", .cgroup = f->base};
	snprintf(f->cfg.id, sizeof(f->cfg.id), "c1");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fake *f = *state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->top);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void create_writes_controllers_and_limits(void **state)
{
	struct fake *f = *state;
	struct husk_error e = {0};
	f->cfg.memory_limit = 256 << 20;
	f->cfg.cpu_millis = 1500;
	f->cfg.pids_limit = 100;
	assert_int_equal(cgroup_create(&f->env, &f->cfg, &e), 0);
	assert_string_equal(get(f->top, "cgroup.subtree_control"),
	                    "+memory +cpu +pids");
	assert_string_equal(get(f->base, "cgroup.subtree_control"),
	                    "+memory +cpu +pids");
	assert_string_equal(get(f->ct, "memory.max"), "268435456");
	assert_string_equal(get(f->ct, "memory.swap.max"), "0");
	assert_string_equal(get(f->ct, "cpu.max"), "150000 100000");
	assert_string_equal(get(f->ct, "pids.max"), "100");
}

static void create_without_swap_file(void **state)
{
	struct fake *f = *state;
	struct husk_error e = {0};
	char path[256];
	snprintf(path, sizeof(path), "%s/memory.swap.max", f->ct);
	assert_int_equal(unlink(path), 0);
	f->cfg.memory_limit = 4096;
	assert_int_equal(cgroup_create(&f->env, &f->cfg, &e), 0);
	assert_string_equal(get(f->ct, "memory.max"), "4096");
	assert_string_equal(get(f->ct, "memory.swap.max"), "<missing>");
}

static void zero_limits_write_nothing(void **state)
{
	struct fake *f = *state;
	struct husk_error e = {0};
	assert_int_equal(cgroup_create(&f->env, &f->cfg, &e), 0);
	assert_string_equal(get(f->ct, "memory.max"), "untouched");
	assert_string_equal(get(f->ct, "memory.swap.max"), "untouched");
	assert_string_equal(get(f->ct, "cpu.max"), "untouched");
	assert_string_equal(get(f->ct, "pids.max"), "untouched");
}

static void creates_the_container_group(void **state)
{
	struct fake *f = *state;
	struct husk_error e = {0};
	snprintf(f->cfg.id, sizeof(f->cfg.id), "fresh");
	assert_int_equal(cgroup_create(&f->env, &f->cfg, &e), 0);
	char path[256];
	snprintf(path, sizeof(path), "%s/fresh", f->base);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
}

static void failed_limit_removes_new_group(void **state)
{
	struct fake *f = *state;
	struct husk_error e = {0};
	/* A new group in the fake has no memory.max: the write fails and
	 * the group must not stay behind. */
	snprintf(f->cfg.id, sizeof(f->cfg.id), "fresh");
	f->cfg.memory_limit = 1 << 20;
	assert_int_equal(cgroup_create(&f->env, &f->cfg, &e), -ENOENT);
	assert_non_null(strstr(e.msg, "memory.max"));
	char path[256];
	snprintf(path, sizeof(path), "%s/fresh", f->base);
	assert_int_equal(access(path, F_OK), -1);
}

static void no_cgroup_and_limits_is_enotsup(void **state)
{
	struct fake *f = *state;
	struct husk_error e = {0};
	f->env.cgroup = NULL;
	assert_int_equal(cgroup_create(&f->env, &f->cfg, &e), 0);
	f->cfg.pids_limit = 10;
	assert_int_equal(cgroup_create(&f->env, &f->cfg, &e), -ENOTSUP);
	assert_int_equal(e.code, ENOTSUP);
	assert_non_null(strstr(e.msg, "cgroup v2"));
	/* The other calls are no-ops or say so. */
	assert_int_equal(cgroup_attach(&f->env, "c1", 0, &e), 0);
	assert_int_equal(cgroup_remove(&f->env, "c1", &e), 0);
	uint64_t n = 7;
	assert_int_equal(cgroup_oom_kills(&f->env, "c1", &n, &e), 0);
	assert_int_equal(n, 0);
	struct cgroup_stats s;
	assert_int_equal(cgroup_stats(&f->env, "c1", &s, &e), -ENOTSUP);
}

static void tiny_cpu_limit_is_einval(void **state)
{
	struct fake *f = *state;
	struct husk_error e = {0};
	f->cfg.cpu_millis = 5;
	assert_int_equal(cgroup_create(&f->env, &f->cfg, &e), -EINVAL);
	assert_string_equal(get(f->ct, "cpu.max"), "untouched");
}

static void not_a_cgroup_dir_is_an_error(void **state)
{
	struct fake *f = *state;
	struct husk_error e = {0};
	char path[256];
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", f->top);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(cgroup_create(&f->env, &f->cfg, &e), -ENOENT);
	assert_non_null(strstr(e.msg, "not a cgroup v2 directory"));
}

static void bad_ids_are_refused(void **state)
{
	struct fake *f = *state;
	struct husk_error e = {0};
	static const char *const bad[] = {"", ".", "..", "a/b", "../husk"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(f->cfg.id, sizeof(f->cfg.id), "%s", bad[i]);
		assert_int_equal(cgroup_create(&f->env, &f->cfg, &e), -EINVAL);
		assert_int_equal(cgroup_attach(&f->env, bad[i], 1, &e),
		                 -EINVAL);
		assert_int_equal(cgroup_remove(&f->env, bad[i], &e), -EINVAL);
	}
}

static void attach_writes_pid(void **state)
{
	struct fake *f = *state;
	struct husk_error e = {0};
	assert_int_equal(cgroup_attach(&f->env, "c1", 1234, &e), 0);
	assert_string_equal(get(f->ct, "cgroup.procs"), "1234");
	assert_int_equal(cgroup_attach(&f->env, "c1", 0, &e), 0);
	assert_string_equal(get(f->ct, "cgroup.procs"), "0");
	assert_int_equal(cgroup_attach(&f->env, "c1", -1, &e), -EINVAL);
	assert_int_equal(cgroup_attach(&f->env, "nope", 1, &e), -ENOENT);
}

static void stats_parse(void **state)
{
	struct fake *f = *state;
	struct husk_error e = {0};
	put(f->ct, "memory.current", "1234\n");
	put(f->ct, "memory.max", "max\n");
	put(f->ct, "cpu.stat",
	    "usage_usec 5000\nuser_usec 3000\n"
	    "system_usec 2000\n");
	put(f->ct, "pids.current", "3\n");
	struct cgroup_stats s;
	assert_int_equal(cgroup_stats(&f->env, "c1", &s, &e), 0);
	assert_int_equal(s.memory_usage, 1234);
	assert_true(s.memory_limit == UINT64_MAX);
	assert_int_equal(s.cpu_usage_ns, 5000000);
	assert_int_equal(s.pids_current, 3);
	put(f->ct, "memory.max", "1048576\n");
	assert_int_equal(cgroup_stats(&f->env, "c1", &s, &e), 0);
	assert_int_equal(s.memory_limit, 1048576);
}

static void stats_missing_files_are_unknown(void **state)
{
	struct fake *f = *state;
	struct husk_error e = {0};
	char path[256];
	snprintf(path, sizeof(path), "%s/memory.max", f->ct);
	assert_int_equal(unlink(path), 0);
	struct cgroup_stats s;
	memset(&s, 0xaa, sizeof(s));
	assert_int_equal(cgroup_stats(&f->env, "c1", &s, &e), 0);
	assert_int_equal(s.memory_usage, 0);
	assert_true(s.memory_limit == UINT64_MAX);
	assert_int_equal(s.cpu_usage_ns, 0);
	assert_int_equal(s.pids_current, 0);
	assert_int_equal(cgroup_stats(&f->env, "nope", &s, &e), -ENOENT);
}

static void malformed_stats_are_errors(void **state)
{
	struct fake *f = *state;
	static const char *const cases[][2] = {
	    {"memory.current", "abc\n"},
	    {"memory.current", ""},
	    {"memory.current", "-5\n"},
	    {"memory.current", "12 34\n"},
	    {"memory.current", "99999999999999999999999\n"},
	    {"memory.max", "unlimited\n"},
	    {"pids.current", "3x\n"},
	    {"cpu.stat", "usage_usec x\n"},
	    {"cpu.stat", "usage_usec \n"},
	    {"cpu.stat", "usage_usec 18446744073709551615\n"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct husk_error e = {0};
		put(f->ct, "memory.current", "1\n");
		put(f->ct, "memory.max", "max\n");
		put(f->ct, "pids.current", "1\n");
		put(f->ct, "cpu.stat", "usage_usec 1\n");
		put(f->ct, cases[i][0], cases[i][1]);
		struct cgroup_stats s;
		int r = cgroup_stats(&f->env, "c1", &s, &e);
		if (r != -EINVAL && r != -ERANGE)
			fail_msg("%s = '%s' gave %d", cases[i][0], cases[i][1],
			         r);
		assert_non_null(strstr(e.msg, cases[i][0]));
	}
}

static void oom_kills_parse(void **state)
{
	struct fake *f = *state;
	struct husk_error e = {0};
	uint64_t n = 99;
	assert_int_equal(cgroup_oom_kills(&f->env, "c1", &n, &e), 0);
	assert_int_equal(n, 0); /* no memory.events */
	put(f->ct, "memory.events",
	    "low 0\nhigh 0\nmax 4\noom 2\n"
	    "oom_kill 3\noom_group_kill 9\n");
	assert_int_equal(cgroup_oom_kills(&f->env, "c1", &n, &e), 0);
	assert_int_equal(n, 3);
	put(f->ct, "memory.events", "oom_group_kill 9\noom 1\n");
	assert_int_equal(cgroup_oom_kills(&f->env, "c1", &n, &e), 0);
	assert_int_equal(n, 0);
	put(f->ct, "memory.events", "oom_kill -1\n");
	assert_int_equal(cgroup_oom_kills(&f->env, "c1", &n, &e), -EINVAL);
	put(f->ct, "memory.events", "oom_kill\n");
	assert_int_equal(cgroup_oom_kills(&f->env, "c1", &n, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "memory.events"));
}

static void remove_is_idempotent(void **state)
{
	struct fake *f = *state;
	struct husk_error e = {0};
	char path[256];
	snprintf(path, sizeof(path), "%s/empty", f->base);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(cgroup_remove(&f->env, "empty", &e), 0);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(cgroup_remove(&f->env, "empty", &e), 0);
	assert_int_equal(cgroup_remove(&f->env, "never", &e), 0);
}

static void remove_writes_cgroup_kill(void **state)
{
	struct fake *f = *state;
	struct husk_error e = {0};
	put(f->ct, "cgroup.kill", "");
	/* A real group's files vanish with rmdir; the fake's stay. */
	assert_int_equal(cgroup_remove(&f->env, "c1", &e), -ENOTEMPTY);
	assert_string_equal(get(f->ct, "cgroup.kill"), "1");
}

static void remove_kills_listed_pids(void **state)
{
	struct fake *f = *state;
	struct husk_error e = {0};
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		alarm(10); /* should the kill go astray, fail; never hang */
		for (;;)
			pause();
	}
	char procs[64];
	snprintf(procs, sizeof(procs), "junk\n99999999999\n%d\n", (int)child);
	put(f->ct, "cgroup.procs", procs);
	assert_int_equal(cgroup_remove(&f->env, "c1", &e), -ENOTEMPTY);
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
}

/* pid 0 in cgroup.procs must not become kill(0, ...), which would hit the
 * whole process group: try it in a group of its own. */
static void remove_never_kills_pid_zero(void **state)
{
	struct fake *f = *state;
	put(f->ct, "cgroup.procs", "0\n");
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct husk_error e = {0};
		setpgid(0, 0);
		cgroup_remove(&f->env, "c1", &e);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(create_writes_controllers_and_limits),
	    T(create_without_swap_file),
	    T(zero_limits_write_nothing),
	    T(creates_the_container_group),
	    T(failed_limit_removes_new_group),
	    T(no_cgroup_and_limits_is_enotsup),
	    T(tiny_cpu_limit_is_einval),
	    T(not_a_cgroup_dir_is_an_error),
	    T(bad_ids_are_refused),
	    T(attach_writes_pid),
	    T(stats_parse),
	    T(stats_missing_files_are_unknown),
	    T(malformed_stats_are_errors),
	    T(oom_kills_parse),
	    T(remove_is_idempotent),
	    T(remove_writes_cgroup_kill),
	    T(remove_kills_listed_pids),
	    T(remove_never_kills_pid_zero),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
