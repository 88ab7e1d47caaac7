#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "husk/rootfs_disk.h"
#include "scratch.h"

/* Every test works in its own scratch directory, removed afterwards. */
static int setup(void **state)
{
	return scratch_setup(state, "husk-rootfs-test");
}

static int teardown(void **state)
{
	return scratch_teardown(state);
}

/* A small tree with one of each kind; mtime_base differs per copy. */
static void make_tree(const char *root, time_t mtime_base)
{
	char p[512];
	assert_int_equal(mkdir(root, 0755), 0);
	snprintf(p, sizeof(p), "%s/etc", root);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/etc/hostname", root);
	write_file(p, "husk\n", 0644);
	snprintf(p, sizeof(p), "%s/bin", root);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/bin/tool", root);
	write_file(p, "#!/bin/sh\necho tool\n", 0755);
	char q[512];
	snprintf(q, sizeof(q), "%s/bin/tool-link", root);
	assert_int_equal(link(p, q), 0);
	/* A second group of links: the walk keeps more than one. */
	snprintf(p, sizeof(p), "%s/etc/motd", root);
	write_file(p, "hello\n", 0644);
	snprintf(q, sizeof(q), "%s/etc/motd.link", root);
	assert_int_equal(link(p, q), 0);
	snprintf(p, sizeof(p), "%s/bin/sh", root);
	assert_int_equal(symlink("tool", p), 0);
	snprintf(p, sizeof(p), "%s/empty", root);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/fifo", root);
	assert_int_equal(mkfifo(p, 0600), 0);

	const char *all[] = {"etc/hostname", "bin/tool", "etc",
	                     "bin",          "empty",    ""};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		struct timeval tv[2] = {{mtime_base + (time_t)i, 0},
		                        {mtime_base + (time_t)i, 0}};
		snprintf(p, sizeof(p), "%s/%s", root, all[i]);
		assert_int_equal(utimes(p, tv), 0);
	}
}

static void hash_of(const char *dir, char *hex)
{
	struct husk_error e = {0};
	int rc = husk_rootfs_hash(dir, hex, &e);
	if (rc != 0)
		fail_msg("hash %s: %s", dir, e.msg);
	assert_int_equal(strlen(hex), HUSK_ROOTFS_HASH_HEX);
}

static void same_tree_in_two_places_same_hash(void **state)
{
	struct scratch *s = *state;
	make_tree(at(s, "a"), 1000000);
	make_tree(at(s, "b"), 2000000); /* other mtimes */
	char ha[65], hb[65];
	hash_of(at(s, "a"), ha);
	hash_of(at(s, "b"), hb);
	assert_string_equal(ha, hb);
	/* Through a symlink to the root, too. */
	assert_int_equal(symlink(at(s, "a"), at(s, "link")), 0);
	hash_of(at(s, "link"), hb);
	assert_string_equal(ha, hb);
	/* And stable: again, the same. */
	hash_of(at(s, "a"), hb);
	assert_string_equal(ha, hb);
}

/* Makes the change, and expects the hash to differ from before. */
static void expect_change(const struct scratch *s, const char *what,
                          void (*change)(const struct scratch *))
{
	char before[65], after[65];
	hash_of(at(s, "t"), before);
	change(s);
	hash_of(at(s, "t"), after);
	if (!strcmp(before, after))
		fail_msg("hash unchanged after: %s", what);
}

static void change_byte(const struct scratch *s)
{
	write_file(at(s, "t/etc/hostname"), "husK\n", 0644);
}

static void change_mode(const struct scratch *s)
{
	assert_int_equal(chmod(at(s, "t/etc/hostname"), 0600), 0);
}

static void change_symlink(const struct scratch *s)
{
	assert_int_equal(unlink(at(s, "t/bin/sh")), 0);
	assert_int_equal(symlink("tooL", at(s, "t/bin/sh")), 0);
}

static void change_owner(const struct scratch *s)
{
	assert_int_equal(lchown(at(s, "t/bin/sh"), 1234, 5678), 0);
}

static void change_root_mode(const struct scratch *s)
{
	assert_int_equal(chmod(at(s, "t"), 0700), 0);
}

static void break_hard_link(const struct scratch *s)
{
	/* Same bytes, mode and owner, but no longer the same inode. */
	assert_int_equal(unlink(at(s, "t/bin/tool-link")), 0);
	write_file(at(s, "t/bin/tool-link"), "#!/bin/sh\necho tool\n", 0755);
}

static void rename_entry(const struct scratch *s)
{
	assert_int_equal(rename(at(s, "t/empty"), at(s, "t/emptz")), 0);
}

static void add_empty_file(const struct scratch *s)
{
	write_file(at(s, "t/emptz/new"), "", 0644);
}

static void every_change_changes_the_hash(void **state)
{
	struct scratch *s = *state;
	make_tree(at(s, "t"), 1000000);
	expect_change(s, "a byte of a file", change_byte);
	expect_change(s, "a file's mode", change_mode);
	expect_change(s, "a symlink target", change_symlink);
	expect_change(s, "the root's mode", change_root_mode);
	expect_change(s, "a hard link turned into a copy", break_hard_link);
	expect_change(s, "a renamed directory", rename_entry);
	expect_change(s, "an empty file added", add_empty_file);
	if (geteuid() == 0)
		expect_change(s, "a symlink's owner", change_owner);
}

static void xattrs_count(void **state)
{
	struct scratch *s = *state;
	make_tree(at(s, "t"), 1000000);
	char before[65], after[65];
	hash_of(at(s, "t"), before);
	if (setxattr(at(s, "t/etc/hostname"), "user.husk", "1", 1, 0) < 0)
		skip(); /* a filesystem without user xattrs */
	hash_of(at(s, "t"), after);
	assert_string_not_equal(before, after);
}

static void not_a_directory(void **state)
{
	struct scratch *s = *state;
	struct husk_error e = {0};
	char hex[65], out[512];
	write_file(at(s, "file"), "x", 0644);
	assert_int_equal(husk_rootfs_hash(at(s, "file"), hex, &e), -ENOTDIR);
	assert_int_equal(e.code, ENOTDIR);
	assert_non_null(strstr(e.msg, "not a directory"));
	assert_int_equal(husk_rootfs_disk(at(s, "file"), at(s, "cache"), out,
	                                  sizeof(out), &e),
	                 -ENOTDIR);
	assert_int_equal(husk_rootfs_hash(at(s, "missing"), hex, &e), -ENOENT);
	assert_non_null(strstr(e.msg, "missing"));
	/* Nothing was created for a tree that is not there. */
	assert_int_equal(access(at(s, "cache"), F_OK), -1);
}

/* The child drops root (DAC override would read anything) and hashes. */
static void unreadable_file_is_named(void **state)
{
	struct scratch *s = *state;
	make_tree(at(s, "t"), 1000000);
	write_file(at(s, "t/etc/secret"), "x", 0600);
	assert_int_equal(chmod(s->dir, 0755), 0);
	assert_int_equal(chmod(at(s, "t/empty"), 0755), 0);
	if (geteuid() != 0)
		assert_int_equal(chmod(at(s, "t/etc/secret"), 0), 0);
	int pipefd[2];
	assert_int_equal(pipe(pipefd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (geteuid() == 0 &&
		    (setresgid(65534, 65534, 65534) || setgroups(0, NULL) ||
		     setresuid(65534, 65534, 65534)))
			_exit(2);
		struct husk_error e = {0};
		char hex[65];
		int rc = husk_rootfs_hash(at(s, "t"), hex, &e);
		dprintf(pipefd[1], "%d %s", rc, e.msg);
		_exit(0);
	}
	close(pipefd[1]);
	char buf[600] = "";
	ssize_t n = read(pipefd[0], buf, sizeof(buf) - 1);
	close(pipefd[0]);
	int status;
	waitpid(pid, &status, 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(n > 0);
	char expect[80];
	snprintf(expect, sizeof(expect), "%d ", -EACCES);
	assert_true(!strncmp(buf, expect, strlen(expect)));
	assert_non_null(strstr(buf, "etc/secret"));
}

static bool have_tool(const char *name)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
	return system(cmd) == 0;
}

static void build_erofs_then_hit_the_cache(void **state)
{
	struct scratch *s = *state;
	if (!have_tool("mkfs.erofs"))
		skip();
	make_tree(at(s, "t"), 1000000);
	if (geteuid() == 0)
		assert_int_equal(lchown(at(s, "t/etc/hostname"), 1000, 1001),
		                 0);
	struct husk_error e = {0};
	char out[512], again[512], hex[65], expect[700];
	/* Two levels that do not exist yet. */
	char cache[512];
	snprintf(cache, sizeof(cache), "%s", at(s, "var/cache"));
	int rc = husk_rootfs_disk(at(s, "t"), cache, out, sizeof(out), &e);
	if (rc != 0)
		fail_msg("%s", e.msg);
	hash_of(at(s, "t"), hex);

	snprintf(expect, sizeof(expect), "%s/rootfs-%s.erofs", cache, hex);
	assert_string_equal(out, expect);

	struct stat st, st2;
	assert_int_equal(stat(cache, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(out, &st), 0);
	assert_true(st.st_size > 0);

	char cmd[1200];
	if (have_tool("fsck.erofs")) {
		snprintf(cmd, sizeof(cmd), "fsck.erofs %s >/dev/null 2>&1",
		         out);
		assert_int_equal(system(cmd), 0);
		/* Contents and owners survive the trip. */
		snprintf(cmd, sizeof(cmd),
		         "fsck.erofs --extract=%s %s >/dev/null 2>&1 && "
		         "cmp -s %s/etc/hostname %s && "
		         "[ \"$(readlink %s/bin/sh)\" = tool ] && "
		         "[ \"$(stat -c %%u:%%g %s/etc/hostname)\" = %s ]",
		         at(s, "x"), out, at(s, "x"), at(s, "t/etc/hostname"),
		         at(s, "x"), at(s, "x"),
		         geteuid() == 0 ? "1000:1001" : "$(id -u):$(id -g)");
		assert_int_equal(system(cmd), 0);
	}

	/* A copy with other mtimes finds the same image, untouched. */
	make_tree(at(s, "copy"), 3000000);
	if (geteuid() == 0)
		assert_int_equal(lchown(at(s, "copy/etc/hostname"), 1000, 1001),
		                 0);
	rc = husk_rootfs_disk(at(s, "copy"), cache, again, sizeof(again), &e);
	if (rc != 0)
		fail_msg("%s", e.msg);
	assert_string_equal(again, out);
	assert_int_equal(stat(out, &st2), 0);
	assert_int_equal(st.st_ino, st2.st_ino);
	assert_int_equal(st.st_mtim.tv_nsec, st2.st_mtim.tv_nsec);
}

/* A directory in PATH with the given fake tools, each failing loudly. */
static void fake_tools(const struct scratch *s, const char *const *names)
{
	assert_int_equal(mkdir(at(s, "fakebin"), 0755), 0);
	for (; *names; names++) {
		char path[512], text[200];
		snprintf(path, sizeof(path), "%s/%s", at(s, "fakebin"), *names);
		snprintf(text, sizeof(text),
		         "#!/bin/sh\necho starting\necho boom-%s >&2\nexit 3\n",
		         *names);
		write_file(path, text, 0755);
	}
}

static void ext4_when_mkfs_erofs_fails(void **state)
{
	struct scratch *s = *state;
	if (!have_tool("mkfs.ext4") && access("/usr/sbin/mkfs.ext4", X_OK))
		skip();
	make_tree(at(s, "t"), 1000000);
	fake_tools(s, (const char *const[]){"mkfs.erofs", NULL});
	char *old = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	char path[1024];
	snprintf(path, sizeof(path), "%s:%s", at(s, "fakebin"), old);
	setenv("PATH", path, 1);
	struct husk_error e = {0};
	char out[512];
	int rc =
	    husk_rootfs_disk(at(s, "t"), at(s, "cache"), out, sizeof(out), &e);
	setenv("PATH", old, 1);
	free(old);
	if (rc != 0)
		fail_msg("%s", e.msg);
	size_t len = strlen(out);
	assert_true(len > 5 && !strcmp(out + len - 5, ".ext4"));
	char cmd[700];
	snprintf(cmd, sizeof(cmd),
	         "PATH=$PATH:/usr/sbin:/sbin; ! command -v e2fsck >/dev/null "
	         "|| e2fsck -fn %s >/dev/null 2>&1",
	         out);
	assert_int_equal(system(cmd), 0);
	/* The next call takes the ext4 image as it is. */
	char again[512];
	assert_int_equal(husk_rootfs_disk(at(s, "t"), at(s, "cache"), again,
	                                  sizeof(again), &e),
	                 0);
	assert_string_equal(again, out);
}

static void both_failing_say_why(void **state)
{
	struct scratch *s = *state;
	make_tree(at(s, "t"), 1000000);
	fake_tools(s, (const char *const[]){"mkfs.erofs", "mkfs.ext4", NULL});
	char *old = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	setenv("PATH", at(s, "fakebin"), 1);
	struct husk_error e = {0};
	char out[512];
	int rc =
	    husk_rootfs_disk(at(s, "t"), at(s, "cache"), out, sizeof(out), &e);
	setenv("PATH", old, 1);
	free(old);
	assert_true(rc < 0);
	assert_int_equal(rc, -e.code);
	assert_non_null(strstr(e.msg, "boom-mkfs.erofs"));
	assert_non_null(strstr(e.msg, "boom-mkfs.ext4"));
	assert_non_null(strstr(e.msg, "exit status 3"));
	/* No partial image, no temporary file left behind. */
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "[ -z \"$(ls -A %s)\" ]", at(s, "cache"));
	assert_int_equal(system(cmd), 0);
}

static void erofs_error_lines_win_over_its_usage(void **state)
{
	struct scratch *s = *state;
	make_tree(at(s, "t"), 1000000);
	fake_tools(s, (const char *const[]){"mkfs.ext4", NULL});
	/* What mkfs.erofs 1.5 does when it cannot open its output. */
	write_file(at(s, "fakebin/mkfs.erofs"),
	           "#!/bin/sh\n"
	           "echo 'mkfs.erofs 1.5'\n"
	           "echo '<E> erofs_io: failed to open(x.img).' >&2\n"
	           "echo 'usage: [options] FILE DIRECTORY' >&2\n"
	           "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do\n"
	           "  echo ' -x#  set xattr tolerance to #' >&2\n"
	           "done\n"
	           "exit 1\n",
	           0755);
	char *old = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	setenv("PATH", at(s, "fakebin"), 1);
	struct husk_error e = {0};
	char out[512];
	int rc =
	    husk_rootfs_disk(at(s, "t"), at(s, "cache"), out, sizeof(out), &e);
	setenv("PATH", old, 1);
	free(old);
	assert_true(rc < 0);
	assert_non_null(strstr(e.msg, "mkfs.erofs failed (exit status 1): "
	                              "<E> erofs_io: failed to open(x.img)."));
	assert_null(strstr(e.msg, "usage"));
	assert_null(strstr(e.msg, "mkfs.erofs 1.5")); /* stdout is not kept */
	assert_non_null(strstr(e.msg, "boom-mkfs.ext4"));
}

static void concurrent_builders_both_succeed(void **state)
{
	struct scratch *s = *state;
	if (!have_tool("mkfs.erofs"))
		skip();
	make_tree(at(s, "t"), 1000000);
	/* Some bulk, so that the builds overlap. */
	char big[512];
	snprintf(big, sizeof(big), "%s", at(s, "t/big"));
	int fd = open(big, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	static char chunk[1 << 16];
	for (int i = 0; i < 64; i++) {
		memset(chunk, i, sizeof(chunk));
		assert_int_equal(write(fd, chunk, sizeof(chunk)),
		                 (ssize_t)sizeof(chunk));
	}
	close(fd);

	enum { N = 4 };
	int pipes[N][2];
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		assert_int_equal(pipe(pipes[i]), 0);
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct husk_error e = {0};
			char out[512];
			int rc = husk_rootfs_disk(at(s, "t"), at(s, "cache"),
			                          out, sizeof(out), &e);
			dprintf(pipes[i][1], "%s", rc == 0 ? out : e.msg);
			_exit(rc == 0 ? 0 : 1);
		}
		close(pipes[i][1]);
	}
	char first[600] = "";
	for (int i = 0; i < N; i++) {
		char buf[600] = "";
		ssize_t n = read(pipes[i][0], buf, sizeof(buf) - 1);
		close(pipes[i][0]);
		int status;
		waitpid(pids[i], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail_msg("builder %d: %s", i, n > 0 ? buf : "?");
		if (i == 0)
			snprintf(first, sizeof(first), "%s", buf);
		assert_string_equal(buf, first);
	}
	/* One image and no temporary files. */
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "[ \"$(ls -A %s | wc -l)\" = 1 ]",
	         at(s, "cache"));
	assert_int_equal(system(cmd), 0);
}

static void cache_that_is_a_file(void **state)
{
	struct scratch *s = *state;
	make_tree(at(s, "t"), 1000000);
	write_file(at(s, "cache"), "", 0644);
	struct husk_error e = {0};
	char out[512];
	assert_int_equal(
	    husk_rootfs_disk(at(s, "t"), at(s, "cache"), out, sizeof(out), &e),
	    -ENOTDIR);
	assert_non_null(strstr(e.msg, "cache"));
	/* And an output buffer too small is an error, not a cut path. */
	assert_int_equal(husk_rootfs_disk(at(s, "t"), at(s, "c2"), out, 20, &e),
	                 -ENAMETOOLONG);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(same_tree_in_two_places_same_hash),
	    T(every_change_changes_the_hash),
	    T(xattrs_count),
	    T(not_a_directory),
	    T(unreadable_file_is_named),
	    T(build_erofs_then_hit_the_cache),
	    T(ext4_when_mkfs_erofs_fails),
	    T(both_failing_say_why),
	    T(erofs_error_lines_win_over_its_usage),
	    T(concurrent_builders_both_succeed),
	    T(cache_that_is_a_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
