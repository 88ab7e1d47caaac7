/* The container process's last steps: -u resolution against fake passwd and
 * group files, and (as root, in forked children) capabilities, ids, limits
 * and the default seccomp profile as the process sees them afterwards. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <ftw.h>
#include <linux/sched.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/agent/confine.h"

/* ---- fixture: a root directory with etc/ ---- */

struct root {
	char dir[64];
};

static int root_setup(void **state)
{
	struct root *r = calloc(1, sizeof(*r));
	if (!r)
		return -1;
	strcpy(r->dir, "/tmp/test_confine.XXXXXX");
	if (!mkdtemp(r->dir))
		return -1;
	char etc[96];
	snprintf(etc, sizeof(etc), "%s/etc", r->dir);
	if (mkdir(etc, 0755) < 0)
		return -1;
	*state = r;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
	return remove(path);
}

static int root_teardown(void **state)
{
	struct root *r = *state;
	nftw(r->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(r);
	return 0;
}

static void write_bytes(const struct root *r, const char *rel, const char *data,
                        size_t len)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", r->dir, rel);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void write_file(const struct root *r, const char *rel, const char *text)
{
	write_bytes(r, rel, text, strlen(text));
}

static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
                             "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                             "alice:x:1000:1000:Alice:/home/alice:/bin/sh\n"
                             "bob:x:1001:1001::/home/bob\n" /* no shell */
                             "nohome:x:1002:1002\n"; /* no gecos, home, shell */

static const char group[] = "root:x:0:\n"
                            "bin:x:1:root,daemon\n"
                            "wheel:x:10:root\n"
                            "alice:x:1000:\n"
                            "audio:x:29:bob,alice\n"
                            "video:x:44:alice\n"
                            "staff:x:50:\n";

static void write_both(const struct root *r)
{
	write_file(r, "etc/passwd", passwd);
	write_file(r, "etc/group", group);
}

/* Resolves spec in r; returns what confine_resolve_user returned. */
static int resolve(const struct root *r, const char *spec,
                   struct agent_user_cfg *u, char *home, size_t home_cap,
                   struct husk_error *e)
{
	memset(u, 0, sizeof(*u));
	memset(e, 0, sizeof(*e));
	snprintf(u->user, sizeof(u->user), "%s", spec);
	return confine_resolve_user(r->dir, u, home, home_cap, e);
}

static void assert_groups(const struct agent_user_cfg *u, size_t n, ...)
{
	assert_int_equal(u->ngroups, n);
	va_list ap;
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(u->groups[i], va_arg(ap, int));
	va_end(ap);
}

/* ---- user resolution ---- */

static void empty_spec_is_root(void **state)
{
	struct root *r = *state;
	struct agent_user_cfg u;
	struct husk_error e;
	char home[64];
	write_both(r);
	assert_int_equal(resolve(r, "", &u, home, sizeof(home), &e), 0);
	assert_int_equal(u.uid, 0);
	assert_int_equal(u.gid, 0);
	assert_string_equal(home, "/root");
	/* Like `docker run alpine id`: every group listing root. */
	assert_groups(&u, 2, 1, 10);
}

static void numeric_uid_with_entry(void **state)
{
	struct root *r = *state;
	struct agent_user_cfg u;
	struct husk_error e;
	char home[64];
	write_both(r);
	assert_int_equal(resolve(r, "1000", &u, home, sizeof(home), &e), 0);
	assert_int_equal(u.uid, 1000);
	assert_int_equal(u.gid, 1000);
	assert_string_equal(home, "/home/alice");
	assert_groups(&u, 2, 29, 44);
}

static void numeric_uid_without_entry(void **state)
{
	struct root *r = *state;
	struct agent_user_cfg u;
	struct husk_error e;
	char home[64];
	write_both(r);
	assert_int_equal(resolve(r, "4242", &u, home, sizeof(home), &e), 0);
	assert_int_equal(u.uid, 4242);
	assert_int_equal(u.gid, 0);
	assert_string_equal(home, "/");
	assert_groups(&u, 0);

	assert_int_equal(resolve(r, "4242:77", &u, home, sizeof(home), &e), 0);
	assert_int_equal(u.uid, 4242);
	assert_int_equal(u.gid, 77);
	assert_groups(&u, 0);
}

static void names(void **state)
{
	struct root *r = *state;
	struct agent_user_cfg u;
	struct husk_error e;
	char home[64];
	write_both(r);

	assert_int_equal(resolve(r, "alice", &u, home, sizeof(home), &e), 0);
	assert_int_equal(u.uid, 1000);
	assert_int_equal(u.gid, 1000);
	assert_string_equal(home, "/home/alice");
	assert_groups(&u, 2, 29, 44);

	assert_int_equal(resolve(r, "bob", &u, home, sizeof(home), &e), 0);
	assert_int_equal(u.uid, 1001);
	assert_string_equal(home, "/home/bob");
	assert_groups(&u, 1, 29);

	assert_int_equal(resolve(r, "nohome", &u, home, sizeof(home), &e), 0);
	assert_int_equal(u.uid, 1002);
	assert_int_equal(u.gid, 1002);
	assert_string_equal(home, "/");
	assert_groups(&u, 0);
}

/* An explicit group replaces the primary one and, as in runc, leaves no
 * supplementary groups. */
static void explicit_group(void **state)
{
	struct root *r = *state;
	struct agent_user_cfg u;
	struct husk_error e;
	char home[64];
	write_both(r);

	assert_int_equal(resolve(r, "alice:staff", &u, home, sizeof(home), &e),
	                 0);
	assert_int_equal(u.uid, 1000);
	assert_int_equal(u.gid, 50);
	assert_string_equal(home, "/home/alice");
	assert_groups(&u, 0);

	assert_int_equal(resolve(r, "alice:123", &u, home, sizeof(home), &e),
	                 0);
	assert_int_equal(u.gid, 123);

	assert_int_equal(resolve(r, "1001:video", &u, home, sizeof(home), &e),
	                 0);
	assert_int_equal(u.uid, 1001);
	assert_int_equal(u.gid, 44);

	assert_int_equal(resolve(r, ":staff", &u, home, sizeof(home), &e), 0);
	assert_int_equal(u.uid, 0);
	assert_int_equal(u.gid, 50);
	assert_string_equal(home, "/root");

	/* A trailing ':' is no group at all. */
	assert_int_equal(resolve(r, "alice:", &u, home, sizeof(home), &e), 0);
	assert_int_equal(u.gid, 1000);
	assert_groups(&u, 2, 29, 44);
}

static void unknown_user_and_group(void **state)
{
	struct root *r = *state;
	struct agent_user_cfg u;
	struct husk_error e;
	char home[64];
	write_both(r);

	assert_int_equal(resolve(r, "mallory", &u, home, sizeof(home), &e),
	                 -ENOENT);
	assert_string_equal(e.msg, "unable to find user mallory: no matching "
	                           "entries in passwd file");
	assert_int_equal(
	    resolve(r, "alice:nogroup", &u, home, sizeof(home), &e), -ENOENT);
	assert_string_equal(e.msg, "unable to find group nogroup: no matching "
	                           "entries in group file");

	/* A failed resolution leaves u as it was. */
	memset(&u, 0, sizeof(u));
	strcpy(u.user, "alice:nogroup");
	u.uid = 77;
	u.gid = 78;
	assert_int_equal(
	    confine_resolve_user(r->dir, &u, home, sizeof(home), &e), -ENOENT);
	assert_int_equal(u.uid, 77);
	assert_int_equal(u.gid, 78);
}

static void malformed_specs(void **state)
{
	struct root *r = *state;
	struct agent_user_cfg u;
	struct husk_error e;
	char home[64];
	write_both(r);
	static const char *const bad[] = {"a:b:c",      "-1",
	                                  "2147483648", "99999999999999999999",
	                                  "alice:-5",   "0:4294967296"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = resolve(r, bad[i], &u, home, sizeof(home), &e);
		if (rc != -EINVAL)
			fail_msg("'%s': %d %s", bad[i], rc, e.msg);
	}
	assert_int_equal(resolve(r, "2147483647", &u, home, sizeof(home), &e),
	                 0);
	assert_int_equal(u.uid, 2147483647u);
}

static void missing_files(void **state)
{
	struct root *r = *state;
	struct agent_user_cfg u;
	struct husk_error e;
	char home[64];

	assert_int_equal(resolve(r, "", &u, home, sizeof(home), &e), 0);
	assert_int_equal(u.uid, 0);
	assert_int_equal(u.gid, 0);
	assert_string_equal(home, "/");
	assert_groups(&u, 0);
	assert_int_equal(resolve(r, "1000:1000", &u, home, sizeof(home), &e),
	                 0);
	assert_int_equal(u.uid, 1000);
	assert_int_equal(u.gid, 1000);
	assert_int_equal(resolve(r, "alice", &u, home, sizeof(home), &e),
	                 -ENOENT);
	assert_int_equal(resolve(r, "0:wheel", &u, home, sizeof(home), &e),
	                 -ENOENT);

	/* passwd without group: names work, no supplementary groups. */
	write_file(r, "etc/passwd", passwd);
	assert_int_equal(resolve(r, "alice", &u, home, sizeof(home), &e), 0);
	assert_int_equal(u.gid, 1000);
	assert_groups(&u, 0);

	/* No etc/ at all. */
	char etc[96];
	snprintf(etc, sizeof(etc), "%s/etc", r->dir);
	nftw(etc, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	assert_int_equal(resolve(r, "7", &u, home, sizeof(home), &e), 0);
	assert_int_equal(u.uid, 7);
}

static void odd_lines_are_skipped(void **state)
{
	struct root *r = *state;
	struct agent_user_cfg u;
	struct husk_error e;
	char home[64];

	/* A line longer than the reader's 64 KiB, whose second piece would
	 * be a root entry for alice if the rest were read as a new line. */
	size_t big = 64 * 1024 - 1;
	char *text = malloc(big + 1024);
	assert_non_null(text);
	memset(text, 'x', big);
	strcpy(text + big, "alice:x:0:0::/evil:/bin/sh\n");
	strcat(text, "# alice:x:0:0::/comment:/bin/sh\n"
	             "\n"
	             "   \t \n"
	             "garbage\n"
	             "alice:x\n"
	             "alice:x:abc:0::/bad-uid:\n"
	             "alice:x::0::/empty-uid:\n"
	             "alice:x:1000:-1::/bad-gid:\n"
	             ":x:0:0::/no-name:\n"
	             "  alice:x:1000:1000::/home/alice:/bin/sh\r\n"
	             "alice:x:1005:1005::/second:/bin/sh\n");
	write_file(r, "etc/passwd", text);
	free(text);
	write_file(r, "etc/group",
	           "# alice in a comment\n"
	           "bad:x:zz:alice\n"
	           "audio:x:29: bob , alice \n"
	           "nomembers:x:30\n"
	           "video:x:44:alice\n");

	assert_int_equal(resolve(r, "alice", &u, home, sizeof(home), &e), 0);
	assert_int_equal(u.uid, 1000); /* the first good entry wins */
	assert_int_equal(u.gid, 1000);
	assert_string_equal(home, "/home/alice");
	assert_groups(&u, 2, 29, 44);

	/* A NUL makes a line bad as a whole. */
	static const char nul[] = "alice\0:x:0:0::/nul:\n"
	                          "alice:x:0\0:0::/nul:\n"
	                          "alice:x:7:7::/seven:\n";
	write_bytes(r, "etc/passwd", nul, sizeof(nul) - 1);
	assert_int_equal(resolve(r, "alice", &u, home, sizeof(home), &e), 0);
	assert_int_equal(u.uid, 7);
	/* The last line needs no newline. */
	write_file(r, "etc/passwd", "alice:x:8:8::/eight:");
	assert_int_equal(resolve(r, "alice", &u, home, sizeof(home), &e), 0);
	assert_int_equal(u.uid, 8);
	assert_string_equal(home, "/eight");
}

/* With has_uid the request's ids stand; only home is looked up. */
static void numeric_request_keeps_ids(void **state)
{
	struct root *r = *state;
	write_both(r);
	struct agent_user_cfg u = {.has_uid = true, .uid = 1000, .gid = 5};
	strcpy(u.user, "mallory");
	u.groups[0] = 7;
	u.ngroups = 1;
	struct husk_error e = {0};
	char home[64];
	assert_int_equal(
	    confine_resolve_user(r->dir, &u, home, sizeof(home), &e), 0);
	assert_int_equal(u.uid, 1000);
	assert_int_equal(u.gid, 5);
	assert_groups(&u, 1, 7);
	assert_string_equal(home, "/home/alice");

	u.uid = 31337;
	assert_int_equal(
	    confine_resolve_user(r->dir, &u, home, sizeof(home), &e), 0);
	assert_string_equal(home, "/");
	/* home is optional. */
	assert_int_equal(confine_resolve_user(r->dir, &u, NULL, 0, &e), 0);
}

static void home_too_long(void **state)
{
	struct root *r = *state;
	struct agent_user_cfg u;
	struct husk_error e;
	char home[8];
	write_both(r);
	assert_int_equal(resolve(r, "alice", &u, home, sizeof(home), &e),
	                 -ENAMETOOLONG);
}

static void too_many_groups(void **state)
{
	struct root *r = *state;
	struct agent_user_cfg u;
	struct husk_error e;
	char home[64];
	write_file(r, "etc/passwd", passwd);
	size_t cap = (AGENT_MAX_GROUPS + 2) * 32;
	char *text = calloc(1, cap);
	assert_non_null(text);
	size_t off = 0;
	/* alice is in one group too many, bob in exactly the maximum. */
	for (int g = 0; g <= AGENT_MAX_GROUPS; g++)
		off += (size_t)snprintf(
		    text + off, cap - off, "g%d:x:%d:%s\n", g, 2000 + g,
		    g < AGENT_MAX_GROUPS ? "alice,bob" : "alice");
	write_file(r, "etc/group", text);
	free(text);
	assert_int_equal(resolve(r, "alice", &u, home, sizeof(home), &e),
	                 -E2BIG);
	assert_int_equal(resolve(r, "bob", &u, home, sizeof(home), &e), 0);
	assert_int_equal(u.ngroups, AGENT_MAX_GROUPS);
	assert_int_equal(u.groups[AGENT_MAX_GROUPS - 1],
	                 2000 + AGENT_MAX_GROUPS - 1);
}

static void links_stay_inside_root(void **state)
{
	struct root *r = *state;
	struct agent_user_cfg u;
	struct husk_error e;
	char home[64], path[128];
	write_file(r, "etc/passwd.real", "zed:x:4000:4000::/home/zed:\n");
	snprintf(path, sizeof(path), "%s/etc/passwd", r->dir);
	assert_int_equal(symlink("/etc/passwd.real", path), 0);
	assert_int_equal(resolve(r, "zed", &u, home, sizeof(home), &e), 0);
	assert_int_equal(u.uid, 4000);

	/* Up and out is still inside. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink("../../../../../../etc/passwd.real", path), 0);
	assert_int_equal(resolve(r, "zed", &u, home, sizeof(home), &e), 0);
	assert_int_equal(u.uid, 4000);

	snprintf(path, sizeof(path), "%s/etc/group", r->dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(resolve(r, "zed", &u, home, sizeof(home), &e),
	                 -EINVAL);
}

/* ---- confine_apply, in forked children ---- */

#define CHILD_CHECK(cond)                                                      \
	do {                                                                   \
		if (!(cond)) {                                                 \
			dprintf(2, "%s:%d: %s failed (errno %d)\n", __FILE__,  \
			        __LINE__, #cond, errno);                       \
			_exit(1);                                              \
		}                                                              \
	} while (0)

/* Runs fn in a child and asserts that it exited 0. */
static void in_child(void (*fn)(void))
{
	if (geteuid() != 0)
		skip();
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fn();
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("child failed: status 0x%x", status);
}

/* A "Name:\tvalue" line of /proc/self/status, as a hex number. */
static unsigned long long status_hex(const char *name)
{
	FILE *f = fopen("/proc/self/status", "r");
	CHILD_CHECK(f != NULL);
	char line[256];
	unsigned long long v = ~0ULL;
	size_t n = strlen(name);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, name, n) == 0 && line[n] == ':') {
			v = strtoull(line + n + 1, NULL, 16);
			break;
		}
	}
	fclose(f);
	return v;
}

static void apply_or_die(const struct agent_user_cfg *u, bool nnp)
{
	struct husk_error e = {0};
	if (confine_apply(u, nnp, &e) < 0) {
		dprintf(2, "confine_apply: %s\n", e.msg);
		_exit(2);
	}
}

static void check_nofile(void)
{
	struct rlimit rl;
	CHILD_CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	CHILD_CHECK(rl.rlim_cur == rl.rlim_max);
	/* The full 1048576 only where CAP_SYS_RESOURCE allowed raising it. */
	CHILD_CHECK(rl.rlim_cur <= CONFINE_NOFILE);
}

/* A system call through the i386 ABI (int $0x80 works from 64-bit code
 * where the kernel has IA32 emulation); returns -errno like the kernel. */
static long i386_call(long nr, long a, long b)
{
	long ret;
	__asm__ volatile("int $0x80"
	                 : "=a"(ret)
	                 : "a"(nr), "b"(a), "c"(b), "d"(0L), "S"(0L), "D"(0L)
	                 : "memory", "r8", "r9", "r10", "r11");
	return ret;
}

#define I386_GETPID      20
#define I386_CLONE       120
#define I386_PERSONALITY 136
#define I386_UNSHARE     310
#define X32_BIT          0x40000000L
#define X32_GETPID       (X32_BIT | 39)
#define X32_UNSHARE      (X32_BIT | 272)

/* The compatibility ABIs are filtered too (a filter for x86_64 alone
 * would kill these outright, or let them through). */
static void check_compat_abis(bool have_i386)
{
	if (have_i386) {
		CHILD_CHECK(i386_call(I386_GETPID, 0, 0) == getpid());
		CHILD_CHECK(i386_call(I386_UNSHARE, CLONE_NEWNS, 0) == -EPERM);
		CHILD_CHECK(i386_call(I386_PERSONALITY, ADDR_NO_RANDOMIZE, 0) ==
		            -EPERM);
		long r = i386_call(I386_CLONE, CLONE_NEWUSER | SIGCHLD, 0);
		if (r == 0)
			_exit(0);
		CHILD_CHECK(r == -EPERM);
	}
	/* x32 is rarely built into kernels: then allowed calls get ENOSYS,
	 * but denied ones still EPERM from the filter first. */
	errno = 0;
	long r = syscall(X32_GETPID);
	CHILD_CHECK(r == getpid() || (r < 0 && errno == ENOSYS));
	errno = 0;
	CHILD_CHECK(syscall(X32_UNSHARE, CLONE_NEWNS) < 0 && errno == EPERM);
}

static bool probe_i386(void)
{
	return i386_call(I386_GETPID, 0, 0) == getpid();
}

/* What a container may still do, and what not even root in it may. */
static void check_filter(bool have_i386)
{
	/* Ordinary calls. */
	CHILD_CHECK(getpid() > 1);
	int sv[2];
	CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHILD_CHECK(write(sv[0], "x", 1) == 1);
	char c;
	CHILD_CHECK(read(sv[1], &c, 1) == 1 && c == 'x');
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	CHILD_CHECK(s >= 0);
	close(s);
	CHILD_CHECK(personality(0xffffffff) >= 0);
	CHILD_CHECK(personality(PER_LINUX) >= 0);
	pid_t pid = fork(); /* clone without namespace flags */
	CHILD_CHECK(pid >= 0);
	if (pid == 0)
		_exit(0);
	int st;
	CHILD_CHECK(waitpid(pid, &st, 0) == pid && st == 0);

	/* Denied with EPERM whatever the capabilities. */
	errno = 0;
	CHILD_CHECK(unshare(CLONE_NEWNS) < 0 && errno == EPERM);
	errno = 0;
	CHILD_CHECK(mount("none", "/nonexistent-husk", "tmpfs", 0, NULL) < 0 &&
	            errno == EPERM);
	errno = 0;
	CHILD_CHECK(umount2("/nonexistent-husk", 0) < 0 && errno == EPERM);
	errno = 0;
	long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
	if (r == 0)
		_exit(0);
	CHILD_CHECK(r < 0 && errno == EPERM);
	errno = 0;
	CHILD_CHECK(socket(AF_VSOCK, SOCK_STREAM, 0) < 0 && errno == EPERM);
	errno = 0;
	CHILD_CHECK(personality(ADDR_NO_RANDOMIZE) < 0 && errno == EPERM);
	errno = 0;
	CHILD_CHECK(syscall(SYS_keyctl, 0, 0, 0, 0, 0) < 0 && errno == EPERM);
	errno = 0;
	CHILD_CHECK(syscall(SYS_io_uring_setup, 0, NULL) < 0 && errno == EPERM);

	/* clone3 says "not here" so that libc falls back to clone. */
	struct clone_args ca = {.flags = CLONE_NEWUSER, .exit_signal = SIGCHLD};
	errno = 0;
	r = syscall(SYS_clone3, &ca, sizeof(ca));
	if (r == 0)
		_exit(0);
	CHILD_CHECK(r < 0 && errno == ENOSYS);
	CHILD_CHECK(status_hex("Seccomp") == 2);
	check_compat_abis(have_i386);
}

/* The filter on its own, with every capability still held: the denials
 * are the filter's, not the kernel's capability checks. */
static void child_seccomp_only(void)
{
	struct husk_error e = {0};
	bool have_i386 = probe_i386();
	if (confine_seccomp_default(&e) < 0) {
		dprintf(2, "confine_seccomp_default: %s\n", e.msg);
		_exit(2);
	}
	check_filter(have_i386);
	/* chroot is allowed: CAP_SYS_CHROOT is a default capability. */
	CHILD_CHECK(chroot("/") == 0);
}

/* Loading a filter without no_new_privs needs CAP_SYS_ADMIN, which root
 * in some sandboxes lacks. */
static void need_sys_admin(void)
{
	if (geteuid() != 0 || !(status_hex("CapEff") & (1ULL << CAP_SYS_ADMIN)))
		skip();
}

static void seccomp_denies_despite_caps(void **state)
{
	need_sys_admin();
	in_child(child_seccomp_only);
}

static void child_root(void)
{
	struct agent_user_cfg u = {0};
	bool have_i386 = probe_i386();
	apply_or_die(&u, false);
	CHILD_CHECK(getuid() == 0 && geteuid() == 0 && getgid() == 0);
	CHILD_CHECK(getgroups(0, NULL) == 0);
	CHILD_CHECK(status_hex("CapEff") == CONFINE_DEFAULT_CAPS);
	CHILD_CHECK(status_hex("CapPrm") == CONFINE_DEFAULT_CAPS);
	CHILD_CHECK(status_hex("CapBnd") == CONFINE_DEFAULT_CAPS);
	CHILD_CHECK(status_hex("CapInh") == 0);
	CHILD_CHECK(status_hex("CapAmb") == 0);
	CHILD_CHECK(status_hex("NoNewPrivs") == 0);
	check_nofile();
	check_filter(have_i386);
	CHILD_CHECK(chroot("/") == 0);
}

static void root_gets_default_caps(void **state)
{
	/* Docker's own number, independent of how confine.h spells it. */
	assert_int_equal(CONFINE_DEFAULT_CAPS, 0xa80425fbULL);
	need_sys_admin();
	in_child(child_root);
}

static void child_user(void)
{
	struct agent_user_cfg u = {.uid = 1000, .gid = 1000, .ngroups = 3};
	u.groups[0] = 1000;
	u.groups[1] = 2000;
	u.groups[2] = 3000;
	bool have_i386 = probe_i386();
	apply_or_die(&u, true);
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	CHILD_CHECK(getresuid(&ru, &eu, &su) == 0);
	CHILD_CHECK(ru == 1000 && eu == 1000 && su == 1000);
	CHILD_CHECK(getresgid(&rg, &eg, &sg) == 0);
	CHILD_CHECK(rg == 1000 && eg == 1000 && sg == 1000);
	gid_t groups[8];
	CHILD_CHECK(getgroups(8, groups) == 3);
	CHILD_CHECK(groups[0] == 1000 && groups[1] == 2000 &&
	            groups[2] == 3000);
	CHILD_CHECK(status_hex("CapEff") == 0);
	CHILD_CHECK(status_hex("CapPrm") == 0);
	CHILD_CHECK(status_hex("CapInh") == 0);
	CHILD_CHECK(status_hex("CapAmb") == 0);
	CHILD_CHECK(status_hex("CapBnd") == CONFINE_DEFAULT_CAPS);
	CHILD_CHECK(status_hex("NoNewPrivs") == 1);
	check_nofile();
	/* No way back to root, and no chroot without the capability. */
	errno = 0;
	CHILD_CHECK(setuid(0) < 0 && errno == EPERM);
	errno = 0;
	CHILD_CHECK(chroot("/") < 0 && errno == EPERM);
	check_filter(have_i386);
}

static void user_gets_no_caps(void **state)
{
	in_child(child_user);
}

int main(void)
{
#define ROOT_TEST(f)                                                           \
	cmocka_unit_test_setup_teardown(f, root_setup, root_teardown)
	const struct CMUnitTest tests[] = {
	    ROOT_TEST(empty_spec_is_root),
	    ROOT_TEST(numeric_uid_with_entry),
	    ROOT_TEST(numeric_uid_without_entry),
	    ROOT_TEST(names),
	    ROOT_TEST(explicit_group),
	    ROOT_TEST(unknown_user_and_group),
	    ROOT_TEST(malformed_specs),
	    ROOT_TEST(missing_files),
	    ROOT_TEST(odd_lines_are_skipped),
	    ROOT_TEST(numeric_request_keeps_ids),
	    ROOT_TEST(home_too_long),
	    ROOT_TEST(too_many_groups),
	    ROOT_TEST(links_stay_inside_root),
	    cmocka_unit_test(seccomp_denies_despite_caps),
	    cmocka_unit_test(root_gets_default_caps),
	    cmocka_unit_test(user_gets_no_caps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
