/* Layer application (src/lib/layer.c): OCI semantics and hostile tars.
 *
 * The tars are written here with libarchive's writer, so a test can craft
 * exactly the entry it needs, hostile names included. Each test works in
 * a scratch directory holding the root and, beside it, what must never
 * change: outside/ (a directory holding only a canary file) and victim (a
 * file with one link). Every hostile case asserts both the error and that
 * nothing beside the root moved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <cmocka.h>

#include "husk/layer.h"
#include "scratch.h"

#define MTIME   1600000000
#define PWNED   "/husk-layer-test-pwned"
#define TAR_CAP (4 << 20)

/* The root of the current test, an O_PATH descriptor. */
static int root_fd = -1;

static int setup(void **state)
{
	scratch_setup(state, "husk-layer-test");
	struct scratch *s = *state;
	assert_int_equal(mkdir(at(s, "root"), 0755), 0);
	assert_int_equal(mkdir(at(s, "outside"), 0755), 0);
	write_file(at(s, "outside/canary"), "canary", 0644);
	write_file(at(s, "victim"), "victim", 0644);
	root_fd = open(at(s, "root"), O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(root_fd >= 0);
	return 0;
}

static int teardown(void **state)
{
	close(root_fd);
	root_fd = -1;
	return scratch_teardown(state);
}

/* --- writing test tars --------------------------------------------- */

/* Compression of a test tar; FULL_PAX or-ed in writes pax headers for
 * every entry (sub-second times), not only where ustar falls short. */
enum { PLAIN, GZIP, ZSTD, FULL_PAX = 16 };

struct tarw {
	struct archive *a;
	char *buf;
	size_t len;
};

/* Starts a tar. Its entries are owned by root (and some by others, some
 * are devices), so a test that applies one needs root: it is skipped
 * otherwise. */
static void tw_open(struct tarw *t, int filter)
{
	if (geteuid() != 0)
		skip();
	t->buf = malloc(TAR_CAP);
	assert_non_null(t->buf);
	t->len = 0;
	t->a = archive_write_new();
	assert_non_null(t->a);
	if (filter & FULL_PAX)
		assert_int_equal(archive_write_set_format_pax(t->a),
		                 ARCHIVE_OK);
	else
		assert_int_equal(archive_write_set_format_pax_restricted(t->a),
		                 ARCHIVE_OK);
	filter &= ~FULL_PAX;
	if (filter == GZIP)
		assert_int_equal(archive_write_add_filter_gzip(t->a),
		                 ARCHIVE_OK);
	if (filter == ZSTD)
		assert_int_equal(archive_write_add_filter_zstd(t->a),
		                 ARCHIVE_OK);
	assert_int_equal(
	    archive_write_open_memory(t->a, t->buf, TAR_CAP, &t->len),
	    ARCHIVE_OK);
}

/* An entry owned by root with the test's mtime; the caller adds more. */
static struct archive_entry *entry(const char *name, mode_t type, mode_t perm)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, perm);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_mtime(e, MTIME, 0);
	return e;
}

/* Writes e (freed here) and len bytes of data. */
static void tw_add(struct tarw *t, struct archive_entry *e, const void *data,
                   size_t len)
{
	if (archive_entry_filetype(e) == AE_IFREG && !archive_entry_hardlink(e))
		archive_entry_set_size(e, (la_int64_t)len);
	assert_int_equal(archive_write_header(t->a, e), ARCHIVE_OK);
	if (len)
		assert_int_equal(archive_write_data(t->a, data, len),
		                 (la_ssize_t)len);
	archive_entry_free(e);
}

static void tw_file(struct tarw *t, const char *name, const char *text,
                    mode_t perm)
{
	tw_add(t, entry(name, AE_IFREG, perm), text, strlen(text));
}

static void tw_dir(struct tarw *t, const char *name, mode_t perm)
{
	tw_add(t, entry(name, AE_IFDIR, perm), NULL, 0);
}

static void tw_symlink(struct tarw *t, const char *name, const char *target)
{
	struct archive_entry *e = entry(name, AE_IFLNK, 0777);
	archive_entry_set_symlink(e, target);
	tw_add(t, e, NULL, 0);
}

static void tw_hardlink(struct tarw *t, const char *name, const char *target)
{
	struct archive_entry *e = entry(name, AE_IFREG, 0644);
	archive_entry_set_hardlink(e, target);
	tw_add(t, e, NULL, 0);
}

static void tw_close(struct tarw *t)
{
	assert_int_equal(archive_write_close(t->a), ARCHIVE_OK);
	archive_write_free(t->a);
	t->a = NULL;
}

static void tw_free(struct tarw *t)
{
	free(t->buf);
	t->buf = NULL;
}

/* Applies t's bytes onto the root. */
static int apply(struct tarw *t, unsigned flags, struct husk_layer_stats *st,
                 struct husk_error *err)
{
	memset(err, 0, sizeof(*err));
	return husk_layer_apply_memory(root_fd, t->buf, t->len, flags, st, err);
}

/* Applies t, which must succeed, and frees it. */
static void apply_ok(struct tarw *t)
{
	struct husk_error err;
	int rc = apply(t, 0, NULL, &err);
	if (rc != 0)
		fail_msg("apply: %d %s", rc, err.msg);
	tw_free(t);
}

/* Applies t, which must fail with code and a message holding what, and
 * frees it. */
static void apply_fails(struct tarw *t, int code, const char *what)
{
	struct husk_error err;
	int rc = apply(t, 0, NULL, &err);
	if (rc != -code || !strstr(err.msg, what))
		fail_msg("want -%d with '%s', got %d '%s'", code, what, rc,
		         err.msg);
	assert_int_equal(err.code, code);
	tw_free(t);
}

/* --- looking at results -------------------------------------------- */

static const char *in_root(const struct scratch *s, const char *rel)
{
	static char buf[2][600];
	static int next;
	char *b = buf[next++ % 2];
	snprintf(b, sizeof(buf[0]), "%s/root/%s", s->dir, rel);
	return b;
}

static bool exists(const struct scratch *s, const char *rel)
{
	struct stat st;
	return lstat(in_root(s, rel), &st) == 0;
}

static struct stat lstat_of(const struct scratch *s, const char *rel)
{
	struct stat st;
	if (lstat(in_root(s, rel), &st) != 0)
		fail_msg("lstat %s: %s", rel, strerror(errno));
	return st;
}

static void assert_content(const struct scratch *s, const char *rel,
                           const char *text)
{
	char buf[256] = {0};
	int fd = open(in_root(s, rel), O_RDONLY | O_NOFOLLOW);
	assert_true(fd >= 0);
	assert_true(read(fd, buf, sizeof(buf) - 1) >= 0);
	close(fd);
	assert_string_equal(buf, text);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* Nothing beside the root changed. */
static void assert_outside_intact(const struct scratch *s)
{
	struct stat st;
	assert_int_equal(count_entries(s->dir), 3); /* root outside victim */
	assert_int_equal(count_entries(at(s, "outside")), 1);
	assert_int_equal(lstat(at(s, "outside/canary"), &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(st.st_size, 6);
	assert_int_equal(lstat(at(s, "victim"), &st), 0);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(st.st_size, 6);
	assert_int_equal(lstat(PWNED, &st), -1);
}

/* --- plain content ------------------------------------------------- */

static void test_files_dirs_modes_owners_times(void **state)
{
	struct scratch *s = *state;
	struct tarw t;
	tw_open(&t, PLAIN | FULL_PAX);
	struct archive_entry *e = entry("./", AE_IFDIR, 0750);
	tw_add(&t, e, NULL, 0);
	e = entry("etc/", AE_IFDIR, 0755);
	archive_entry_set_mtime(e, 1000000000, 500);
	tw_add(&t, e, NULL, 0);
	e = entry("etc/tool", AE_IFREG, 04755);
	archive_entry_set_uid(e, 1000);
	archive_entry_set_gid(e, 1001);
	archive_entry_set_mtime(e, 1234567890, 123456789);
	tw_add(&t, e, "#!/bin/sh\n", 10);
	tw_file(&t, "etc/hostname", "husk\n", 0640);
	e = entry("tmp", AE_IFDIR, 01777);
	tw_add(&t, e, NULL, 0);
	e = entry("shared/", AE_IFDIR, 02775);
	archive_entry_set_gid(e, 50);
	tw_add(&t, e, NULL, 0);
	/* read-only directory that still gets content after it */
	tw_dir(&t, "ro", 0555);
	tw_file(&t, "ro/inside", "x", 0444);
	tw_close(&t);

	struct husk_layer_stats st;
	struct husk_error err;
	assert_int_equal(apply(&t, 0, &st, &err), 0);
	tw_free(&t);
	assert_int_equal(st.entries, 8);
	assert_int_equal(st.bytes, 16);
	assert_int_equal(st.whiteouts, 0);

	struct stat root = lstat_of(s, "");
	assert_int_equal(root.st_mode & 07777, 0750);
	struct stat tool = lstat_of(s, "etc/tool");
	assert_true(S_ISREG(tool.st_mode));
	assert_int_equal(tool.st_mode & 07777, 04755);
	assert_int_equal(tool.st_uid, 1000);
	assert_int_equal(tool.st_gid, 1001);
	assert_int_equal(tool.st_mtim.tv_sec, 1234567890);
	assert_int_equal(tool.st_mtim.tv_nsec, 123456789);
	assert_content(s, "etc/tool", "#!/bin/sh\n");
	assert_int_equal(lstat_of(s, "etc/hostname").st_mode & 07777, 0640);
	/* directory times land after their content was written */
	struct stat etc = lstat_of(s, "etc");
	assert_int_equal(etc.st_mtim.tv_sec, 1000000000);
	assert_int_equal(etc.st_mtim.tv_nsec, 500);
	assert_int_equal(lstat_of(s, "tmp").st_mode & 07777, 01777);
	struct stat shared = lstat_of(s, "shared");
	assert_int_equal(shared.st_mode & 07777, 02775);
	assert_int_equal(shared.st_gid, 50);
	assert_int_equal(lstat_of(s, "ro").st_mode & 07777, 0555);
	assert_int_equal(lstat_of(s, "ro").st_mtim.tv_sec, MTIME);
	assert_content(s, "ro/inside", "x");
	assert_outside_intact(s);
}

/* The same small layer, compressed each way, by each entry point. */
static void check_compressed(struct scratch *s, int filter)
{
	struct tarw t;
	tw_open(&t, filter);
	tw_dir(&t, "usr/", 0755);
	tw_dir(&t, "usr/bin/", 0755);
	char big[50000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	tw_add(&t, entry("usr/bin/big", AE_IFREG, 0755), big, sizeof(big));
	tw_close(&t);

	/* by descriptor, from a memfd */
	int fd = memfd_create("layer", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, t.buf, t.len), (ssize_t)t.len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	struct husk_layer_stats st;
	struct husk_error err;
	assert_int_equal(husk_layer_apply_fd(root_fd, fd, 0, &st, &err), 0);
	close(fd);
	assert_int_equal(st.entries, 3);
	assert_int_equal(st.bytes, sizeof(big));
	struct stat b = lstat_of(s, "usr/bin/big");
	assert_int_equal(b.st_size, sizeof(big));

	/* by path, onto a second root */
	char tar_path[600], root2[600];
	snprintf(tar_path, sizeof(tar_path), "%s/layer.tar", s->dir);
	snprintf(root2, sizeof(root2), "%s/root2", s->dir);
	write_file(tar_path, "", 0644);
	fd = open(tar_path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, t.buf, t.len), (ssize_t)t.len);
	close(fd);
	assert_int_equal(mkdir(root2, 0755), 0);
	assert_int_equal(husk_layer_apply(root2, tar_path, 0, &st, &err), 0);
	assert_int_equal(st.bytes, sizeof(big));
	tw_free(&t);
}

static void test_gzip_layer(void **state)
{
	check_compressed(*state, GZIP);
}

static void test_zstd_layer(void **state)
{
	check_compressed(*state, ZSTD);
}

static void test_missing_parents_are_made(void **state)
{
	struct scratch *s = *state;
	struct tarw t;
	tw_open(&t, PLAIN);
	tw_file(&t, "/etc/x", "abs", 0600); /* lands in root/etc/x */
	tw_file(&t, "a//b/./c/../d", "d", 0600);
	tw_close(&t);
	apply_ok(&t);
	assert_content(s, "etc/x", "abs");
	assert_int_equal(lstat_of(s, "etc").st_mode & 07777, 0755);
	assert_content(s, "a/b/d", "d");
	assert_false(exists(s, "a/b/c"));
	assert_outside_intact(s);
}

/* A ustar header block at h for name, typeflag type and size bytes. */
static void ustar_header(char *h, const char *name, char type, size_t size)
{
	memset(h, 0, 512);
	snprintf(h, 100, "%s", name);
	snprintf(h + 100, 8, "%07o", 0644);
	snprintf(h + 108, 8, "%07o", 0);
	snprintf(h + 116, 8, "%07o", 0);
	snprintf(h + 124, 12, "%011zo", size);
	snprintf(h + 136, 12, "%011o", MTIME);
	h[156] = type;
	memcpy(h + 257,
	       "ustar\0"
	       "00",
	       8);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += (unsigned char)h[i];
	snprintf(h + 148, 8, "%06o", sum);
}

/* A tar as Go's archive/tar (Docker, containerd) writes a non-ASCII
 * name: a pax `path` record in UTF-8, no hdrcharset. */
static size_t go_style_tar(char *buf, const char *name, const char *text)
{
	char rec[256];
	size_t n = strlen(" path=\n") + strlen(name);
	size_t len = n + 1;
	while ((size_t)snprintf(NULL, 0, "%zu", len) + n != len)
		len++;
	snprintf(rec, sizeof(rec), "%zu path=%s\n", len, name);
	memset(buf, 0, 4 * 512 + 1024);
	ustar_header(buf, "PaxHeaders/x", 'x', len);
	memcpy(buf + 512, rec, len);
	ustar_header(buf + 1024, "placeholder", '0', strlen(text));
	memcpy(buf + 1536, text, strlen(text));
	return 4 * 512 + 1024;
}

/* Names are bytes: UTF-8 passes unchanged whatever the locale; long
 * names (pax) and deep missing parents work. */
static void test_names(void **state)
{
	struct scratch *s = *state;
	const char *utf8 = "h\xc3\xa9llo-\xe2\x9c\x93";
	char raw[4 * 512 + 1024];
	size_t len = go_style_tar(raw, utf8, "utf8");
	struct husk_error err;
	assert_int_equal(
	    husk_layer_apply_memory(root_fd, raw, len, 0, NULL, &err), 0);
	assert_content(s, utf8, "utf8");

	char deep[1200] = "";
	for (int i = 0; i < 100; i++)
		strcat(deep, i ? "/dir-number" : "dir-number");
	strcat(deep, "/leaf");
	struct tarw t;
	tw_open(&t, PLAIN);
	tw_file(&t, deep, "deep", 0644);
	tw_close(&t);
	apply_ok(&t);
	int fd = openat(root_fd, deep, O_RDONLY | O_NOFOLLOW);
	assert_true(fd >= 0);
	close(fd);
	assert_outside_intact(s);
}

static void test_hard_links(void **state)
{
	struct scratch *s = *state;
	struct tarw t;
	tw_open(&t, PLAIN);
	tw_file(&t, "bin/busybox", "bb", 0755);
	tw_hardlink(&t, "bin/sh", "bin/busybox");
	tw_hardlink(&t, "bin/ls", "/bin/busybox"); /* absolute: in root */
	tw_close(&t);
	apply_ok(&t);

	/* the next layer links to a file of the previous one */
	tw_open(&t, PLAIN);
	tw_hardlink(&t, "usr/cat", "bin/busybox");
	tw_hardlink(&t, "bin/sh", "bin/busybox"); /* already that file */
	tw_close(&t);
	apply_ok(&t);

	struct stat bb = lstat_of(s, "bin/busybox");
	assert_int_equal(bb.st_nlink, 4);
	assert_int_equal(lstat_of(s, "bin/sh").st_ino, bb.st_ino);
	assert_int_equal(lstat_of(s, "bin/ls").st_ino, bb.st_ino);
	assert_int_equal(lstat_of(s, "usr/cat").st_ino, bb.st_ino);
	assert_outside_intact(s);
}

static void test_symlinks_stored_verbatim(void **state)
{
	struct scratch *s = *state;
	struct tarw t;
	tw_open(&t, PLAIN);
	tw_symlink(&t, "abs", "/etc/passwd");
	tw_symlink(&t, "up", "../../../victim");
	tw_symlink(&t, "dangling", "nowhere/at/all");
	struct archive_entry *e = entry("owned", AE_IFLNK, 0777);
	archive_entry_set_symlink(e, "abs");
	archive_entry_set_uid(e, 1234);
	archive_entry_set_gid(e, 4321);
	tw_add(&t, e, NULL, 0);
	tw_file(&t, "plain", "p", 0644);
	tw_symlink(&t, "plain", "abs"); /* replaces the file */
	tw_close(&t);
	apply_ok(&t);

	const char *names[] = {"abs", "up", "dangling", "plain"};
	const char *targets[] = {"/etc/passwd", "../../../victim",
	                         "nowhere/at/all", "abs"};
	for (int i = 0; i < 4; i++) {
		char buf[64] = {0};
		assert_true(S_ISLNK(lstat_of(s, names[i]).st_mode));
		assert_true(
		    readlink(in_root(s, names[i]), buf, sizeof(buf) - 1) > 0);
		assert_string_equal(buf, targets[i]);
	}
	struct stat o = lstat_of(s, "owned");
	assert_int_equal(o.st_uid, 1234);
	assert_int_equal(o.st_gid, 4321);
	assert_int_equal(o.st_mtim.tv_sec, MTIME);
	assert_outside_intact(s);
}

static void test_device_and_fifo(void **state)
{
	struct scratch *s = *state;
	struct tarw t;
	tw_open(&t, PLAIN);
	struct archive_entry *e = entry("dev/null", AE_IFCHR, 0666);
	archive_entry_set_rdevmajor(e, 1);
	archive_entry_set_rdevminor(e, 3);
	tw_add(&t, e, NULL, 0);
	e = entry("dev/loop9", AE_IFBLK, 0660);
	archive_entry_set_rdevmajor(e, 7);
	archive_entry_set_rdevminor(e, 9);
	archive_entry_set_gid(e, 6);
	tw_add(&t, e, NULL, 0);
	tw_add(&t, entry("run/fifo", AE_IFIFO, 0620), NULL, 0);
	tw_close(&t);
	apply_ok(&t);

	struct stat n = lstat_of(s, "dev/null");
	assert_true(S_ISCHR(n.st_mode));
	assert_int_equal(n.st_mode & 07777, 0666);
	assert_int_equal(major(n.st_rdev), 1);
	assert_int_equal(minor(n.st_rdev), 3);
	struct stat b = lstat_of(s, "dev/loop9");
	assert_true(S_ISBLK(b.st_mode));
	assert_int_equal(b.st_gid, 6);
	assert_int_equal(minor(b.st_rdev), 9);
	struct stat f = lstat_of(s, "run/fifo");
	assert_true(S_ISFIFO(f.st_mode));
	assert_int_equal(f.st_mode & 07777, 0620);
	assert_int_equal(f.st_mtim.tv_sec, MTIME);
}

/* Drops CAP_MKNOD from this process's effective set. */
static int drop_mknod(void)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	d[CAP_MKNOD / 32].effective &= ~(1u << (CAP_MKNOD % 32));
	return (int)syscall(SYS_capset, &h, d);
}

/* Without CAP_MKNOD (in a child process): a clear EPERM naming the
 * entry, or with HUSK_LAYER_SKIP_DEVICES a skip. Fifos need no
 * privilege. */
static void test_devices_without_privilege(void **state)
{
	struct scratch *s = *state;
	struct tarw t;
	tw_open(&t, PLAIN);
	struct archive_entry *e = entry("dev/zero", AE_IFCHR, 0666);
	archive_entry_set_rdevmajor(e, 1);
	archive_entry_set_rdevminor(e, 5);
	tw_add(&t, e, NULL, 0);
	tw_add(&t, entry("dev/fifo", AE_IFIFO, 0600), NULL, 0);
	tw_close(&t);

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct husk_layer_stats st;
		struct husk_error err;
		if (drop_mknod() < 0)
			_exit(10);
		if (apply(&t, 0, &st, &err) != -EPERM ||
		    !strstr(err.msg, "'dev/zero'"))
			_exit(11);
		if (apply(&t, HUSK_LAYER_SKIP_DEVICES, &st, &err) != 0 ||
		    st.skipped != 1 || st.entries != 1)
			_exit(12);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_false(exists(s, "dev/zero"));
	assert_true(S_ISFIFO(lstat_of(s, "dev/fifo").st_mode));
	tw_free(&t);
}

/* A file capability (v2: CAP_NET_BIND_SERVICE, effective). */
static const unsigned char fcap[20] = {1, 0, 0, 2, 0, 4};

static void test_xattrs(void **state)
{
	struct scratch *s = *state;
	struct tarw t;
	tw_open(&t, PLAIN);
	struct archive_entry *e = entry("ping", AE_IFREG, 04755);
	archive_entry_set_uid(e, 1000);
	archive_entry_xattr_add_entry(e, "security.capability", fcap,
	                              sizeof(fcap));
	archive_entry_xattr_add_entry(e, "trusted.husk", "file", 4);
	archive_entry_xattr_add_entry(e, "trusted.overlay.opaque", "y", 1);
	tw_add(&t, e, "elf", 3);
	e = entry("d", AE_IFDIR, 0755);
	archive_entry_xattr_add_entry(e, "trusted.husk", "dir", 3);
	tw_add(&t, e, NULL, 0);
	e = entry("l", AE_IFLNK, 0777);
	archive_entry_set_symlink(e, "/nowhere");
	archive_entry_xattr_add_entry(e, "trusted.husk", "link", 4);
	tw_add(&t, e, NULL, 0);
	tw_close(&t);

	struct husk_layer_stats st;
	struct husk_error err;
	assert_int_equal(apply(&t, 0, &st, &err), 0);
	tw_free(&t);
	assert_int_equal(st.skipped, 1); /* the overlay attribute */

	char buf[64];
	/* set after the chown, which would have dropped it */
	assert_int_equal(getxattr(in_root(s, "ping"), "security.capability",
	                          buf, sizeof(buf)),
	                 sizeof(fcap));
	assert_memory_equal(buf, fcap, sizeof(fcap));
	struct stat p = lstat_of(s, "ping");
	assert_int_equal(p.st_uid, 1000);
	assert_int_equal(p.st_mode & 07777, 04755);
	assert_int_equal(
	    getxattr(in_root(s, "ping"), "trusted.husk", buf, sizeof(buf)), 4);
	assert_int_equal(getxattr(in_root(s, "ping"), "trusted.overlay.opaque",
	                          buf, sizeof(buf)),
	                 -1);
	assert_int_equal(
	    getxattr(in_root(s, "d"), "trusted.husk", buf, sizeof(buf)), 3);
	assert_int_equal(
	    lgetxattr(in_root(s, "l"), "trusted.husk", buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "link", 4);
}

/* user.* may not go on a symlink (EPERM): an error naming the entry, or a
 * skip with HUSK_LAYER_IGNORE_XATTR_ERRORS. */
static void test_refused_xattr(void **state)
{
	struct tarw t;
	for (int pass = 0; pass < 2; pass++) {
		tw_open(&t, PLAIN);
		struct archive_entry *e = entry("l", AE_IFLNK, 0777);
		archive_entry_set_symlink(e, "x");
		archive_entry_xattr_add_entry(e, "user.refused", "v", 1);
		tw_add(&t, e, NULL, 0);
		tw_close(&t);
		struct husk_layer_stats st;
		struct husk_error err;
		int rc = apply(&t, pass ? HUSK_LAYER_IGNORE_XATTR_ERRORS : 0,
		               &st, &err);
		tw_free(&t);
		if (pass == 0) {
			assert_int_equal(rc, -EPERM);
			assert_non_null(strstr(err.msg, "'l'"));
			assert_non_null(strstr(err.msg, "user.refused"));
		} else {
			assert_int_equal(rc, 0);
			assert_int_equal(st.skipped, 1);
		}
	}
	(void)state;
}

/* --- whiteouts, opaque directories, replacing ----------------------- */

static void test_whiteouts(void **state)
{
	struct scratch *s = *state;
	struct tarw t;
	tw_open(&t, PLAIN);
	tw_file(&t, "f", "f", 0644);
	tw_dir(&t, "gone/", 0755);
	tw_dir(&t, "gone/sub/", 0755);
	tw_file(&t, "gone/sub/z", "z", 0644);
	tw_dir(&t, "d/", 0755);
	tw_file(&t, "d/x", "x", 0644);
	tw_file(&t, "d/y", "y", 0644);
	tw_close(&t);
	apply_ok(&t);

	tw_open(&t, PLAIN);
	tw_file(&t, ".wh.f", "", 0644);
	tw_file(&t, ".wh.gone", "", 0644);
	tw_file(&t, "d/.wh.x", "", 0644);
	tw_file(&t, ".wh.never-was", "", 0644);
	tw_file(&t, "missing/dir/.wh.x", "", 0644);
	tw_file(&t, ".wh..wh.plnk", "", 0644); /* aufs metadata */
	/* this layer's own file survives its own whiteout */
	tw_file(&t, "mine", "m", 0644);
	tw_file(&t, ".wh.mine", "", 0644);
	tw_close(&t);
	struct husk_layer_stats st;
	struct husk_error err;
	assert_int_equal(apply(&t, 0, &st, &err), 0);
	tw_free(&t);
	assert_int_equal(st.whiteouts, 6);
	assert_int_equal(st.skipped, 1);
	assert_int_equal(st.entries, 1);

	assert_false(exists(s, "f"));
	assert_false(exists(s, "gone"));
	assert_false(exists(s, "d/x"));
	assert_content(s, "d/y", "y");
	assert_content(s, "mine", "m");
	assert_false(exists(s, ".wh.f"));
	assert_false(exists(s, "d/.wh.x"));
	assert_false(exists(s, "missing"));
	assert_int_equal(count_entries(at(s, "root")), 2); /* d mine */
	assert_outside_intact(s);
}

static void lower_for_opaque(void)
{
	struct tarw t;
	tw_open(&t, PLAIN);
	tw_dir(&t, "o/", 0755);
	tw_file(&t, "o/old", "old", 0644);
	tw_dir(&t, "o/olddir/", 0755);
	tw_file(&t, "o/olddir/deep", "deep", 0644);
	tw_dir(&t, "o/keepdir/", 0755);
	tw_file(&t, "o/keepdir/lower", "lower", 0644);
	tw_file(&t, "sibling", "s", 0644);
	tw_close(&t);
	apply_ok(&t);
}

/* The opaque marker first, or after this layer's entries: either way
 * only this layer's entries remain in o/. */
static void check_opaque(struct scratch *s, bool marker_first)
{
	lower_for_opaque();
	struct tarw t;
	tw_open(&t, PLAIN);
	tw_dir(&t, "o/", 0700);
	if (marker_first)
		tw_file(&t, "o/.wh..wh..opq", "", 0644);
	tw_file(&t, "o/new", "new", 0644);
	tw_dir(&t, "o/newdir/", 0755);
	tw_file(&t, "o/newdir/f", "f", 0644);
	tw_dir(&t, "o/keepdir/", 0755);
	tw_file(&t, "o/keepdir/upper", "upper", 0644);
	/* no entry for o/implicit/: its parent is made */
	tw_file(&t, "o/implicit/child", "c", 0644);
	if (!marker_first)
		tw_file(&t, "o/.wh..wh..opq", "", 0644);
	tw_close(&t);
	apply_ok(&t);

	assert_false(exists(s, "o/old"));
	assert_false(exists(s, "o/olddir"));
	assert_false(exists(s, "o/keepdir/lower"));
	assert_false(exists(s, "o/.wh..wh..opq"));
	assert_content(s, "o/new", "new");
	assert_content(s, "o/newdir/f", "f");
	assert_content(s, "o/keepdir/upper", "upper");
	assert_content(s, "o/implicit/child", "c");
	assert_int_equal(count_entries(in_root(s, "o")), 4);
	assert_int_equal(lstat_of(s, "o").st_mode & 07777, 0700);
	assert_content(s, "sibling", "s");
}

static void test_opaque_marker_first(void **state)
{
	check_opaque(*state, true);
}

static void test_opaque_marker_last(void **state)
{
	check_opaque(*state, false);
}

static void test_replace_dir_and_file(void **state)
{
	struct scratch *s = *state;
	struct tarw t;
	tw_open(&t, PLAIN);
	tw_dir(&t, "r/", 0755);
	tw_dir(&t, "r/a/", 0755);
	tw_file(&t, "r/a/b", "b", 0644);
	tw_file(&t, "q", "q", 0644);
	tw_symlink(&t, "s", "/etc");
	tw_symlink(&t, "lnk", "../outside");
	tw_dir(&t, "m/", 0700);
	tw_file(&t, "m/keep", "k", 0644);
	tw_close(&t);
	apply_ok(&t);

	tw_open(&t, PLAIN);
	tw_file(&t, "r", "now a file", 0600);
	tw_dir(&t, "q/", 0755);
	tw_file(&t, "q/inner", "i", 0644);
	tw_file(&t, "s", "was a symlink", 0644);
	tw_dir(&t, "lnk/", 0755); /* a directory replaces the symlink */
	tw_file(&t, "lnk/in", "in", 0644);
	struct archive_entry *e = entry("m/", AE_IFDIR, 0755);
	archive_entry_set_uid(e, 42);
	tw_add(&t, e, NULL, 0);
	tw_close(&t);
	apply_ok(&t);

	assert_content(s, "r", "now a file");
	assert_true(S_ISDIR(lstat_of(s, "q").st_mode));
	assert_content(s, "q/inner", "i");
	assert_content(s, "s", "was a symlink");
	assert_true(S_ISDIR(lstat_of(s, "lnk").st_mode));
	assert_content(s, "lnk/in", "in");
	/* directory over directory merges and takes the new owner, mode */
	struct stat m = lstat_of(s, "m");
	assert_int_equal(m.st_uid, 42);
	assert_int_equal(m.st_mode & 07777, 0755);
	assert_content(s, "m/keep", "k");
	assert_outside_intact(s);
}

/* A symlink inside the root is followed for the directories above an
 * entry, as Docker does. */
static void test_symlinked_parent_inside_root(void **state)
{
	struct scratch *s = *state;
	struct tarw t;
	tw_open(&t, PLAIN);
	tw_dir(&t, "usr/lib/", 0755);
	tw_symlink(&t, "lib", "usr/lib");
	tw_file(&t, "lib/libc.so", "libc", 0644);
	tw_close(&t);
	apply_ok(&t);
	assert_content(s, "usr/lib/libc.so", "libc");
	assert_true(S_ISLNK(lstat_of(s, "lib").st_mode));
}

/* --- hostile layers ------------------------------------------------ */

static void test_dotdot_escapes(void **state)
{
	struct scratch *s = *state;
	const char *names[] = {"../escape", "a/../../escape", "./../victim",
	                       "../outside/canary", "/../escape"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct tarw t;
		tw_open(&t, PLAIN);
		tw_file(&t, names[i], "pwned", 0644);
		tw_close(&t);
		apply_fails(&t, EINVAL, "escapes the root");
		assert_outside_intact(s);
	}
}

/* A symlink out of the root, planted in this or an earlier layer, is
 * never written, linked, whited out or emptied through. */
static void check_symlink_escape(struct scratch *s, const char *target,
                                 bool earlier_layer)
{
	const char *names[] = {"evil/pwned", "evil/canary", "evil/sub/pwned"};
	for (int kind = 0; kind < 6; kind++) {
		struct tarw t;
		tw_open(&t, PLAIN);
		tw_symlink(&t, "evil", target);
		if (earlier_layer) {
			tw_close(&t);
			apply_ok(&t);
			tw_open(&t, PLAIN);
		}
		if (kind < 3)
			tw_file(&t, names[kind], "pwned", 0644);
		else if (kind == 3)
			tw_dir(&t, "evil/newdir", 0755);
		else if (kind == 4)
			tw_file(&t, "evil/.wh.canary", "", 0644);
		else
			tw_file(&t, "evil/.wh..wh..opq", "", 0644);
		tw_close(&t);
		struct husk_error err;
		int rc = apply(&t, 0, NULL, &err);
		tw_free(&t);
		if (rc != -EXDEV && rc != -ELOOP)
			fail_msg("%s via %s: want EXDEV, got %d %s",
			         names[kind % 3], target, rc, err.msg);
		assert_non_null(strstr(err.msg, "evil"));
		assert_outside_intact(s);
	}
}

static void test_symlink_escape_same_layer(void **state)
{
	struct scratch *s = *state;
	check_symlink_escape(s, "/", false);
	check_symlink_escape(s, "../outside", false);
	check_symlink_escape(s, "../../../../../../..", false);
	check_symlink_escape(s, at(s, "outside"), false);
}

static void test_symlink_escape_earlier_layer(void **state)
{
	struct scratch *s = *state;
	check_symlink_escape(s, "../outside", true);
	check_symlink_escape(s, "/", true);
	/* a chain: inner hop stays inside, the last one leaves */
	struct tarw t;
	tw_open(&t, PLAIN);
	tw_symlink(&t, "hop", "up");
	tw_symlink(&t, "up", "..");
	tw_file(&t, "hop/outside/pwned", "pwned", 0644);
	tw_close(&t);
	apply_fails(&t, EXDEV, "leads out of the root");
	assert_outside_intact(s);
}

static void test_hard_link_escapes(void **state)
{
	struct scratch *s = *state;
	struct tarw t;

	tw_open(&t, PLAIN);
	tw_hardlink(&t, "h", "../victim");
	tw_close(&t);
	apply_fails(&t, EINVAL, "escapes the root");

	tw_open(&t, PLAIN);
	tw_hardlink(&t, "h", "a/../../outside/canary");
	tw_close(&t);
	apply_fails(&t, EINVAL, "escapes the root");

	/* absolute: root/etc/passwd, which is not there */
	tw_open(&t, PLAIN);
	tw_hardlink(&t, "h", "/etc/passwd");
	tw_close(&t);
	apply_fails(&t, ENOENT, "/etc/passwd");

	/* through a symlinked directory */
	tw_open(&t, PLAIN);
	tw_symlink(&t, "evil", "..");
	tw_hardlink(&t, "h", "evil/victim");
	tw_close(&t);
	apply_fails(&t, EXDEV, "leads out of the root");

	/* to a symlink that leads out */
	tw_open(&t, PLAIN);
	tw_symlink(&t, "sl", "/etc/passwd");
	tw_symlink(&t, "sl2", "../victim");
	tw_hardlink(&t, "h", "sl");
	tw_close(&t);
	apply_fails(&t, EXDEV, "symlink leading out");
	tw_open(&t, PLAIN);
	tw_hardlink(&t, "h", "sl2");
	tw_close(&t);
	apply_fails(&t, EXDEV, "symlink leading out");

	/* to a directory, to the root */
	tw_open(&t, PLAIN);
	tw_dir(&t, "dir", 0755);
	tw_hardlink(&t, "h", "dir");
	tw_close(&t);
	apply_fails(&t, EPERM, "is a directory");
	tw_open(&t, PLAIN);
	tw_hardlink(&t, "h", "./");
	tw_close(&t);
	apply_fails(&t, EPERM, "is the root");

	assert_false(exists(s, "h"));
	assert_outside_intact(s);
}

/* A hard link to a symlink that stays inside is the symlink itself. */
static void test_hard_link_to_inner_symlink(void **state)
{
	struct scratch *s = *state;
	struct tarw t;
	tw_open(&t, PLAIN);
	tw_file(&t, "target", "t", 0644);
	tw_symlink(&t, "sl", "target");
	tw_hardlink(&t, "h", "sl");
	tw_close(&t);
	apply_ok(&t);
	assert_true(S_ISLNK(lstat_of(s, "h").st_mode));
	assert_int_equal(lstat_of(s, "h").st_ino, lstat_of(s, "sl").st_ino);
}

static void test_whiteout_traversal(void **state)
{
	struct scratch *s = *state;
	const char *names[] = {".wh...", "a/.wh..", ".wh.", "sub/.wh..."};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct tarw t;
		tw_open(&t, PLAIN);
		tw_dir(&t, "sub", 0755);
		tw_file(&t, names[i], "", 0644);
		tw_close(&t);
		apply_fails(&t, EINVAL, "refused");
		assert_true(exists(s, "sub"));
	}
	struct tarw t;
	tw_open(&t, PLAIN);
	tw_file(&t, "../.wh.outside", "", 0644);
	tw_close(&t);
	apply_fails(&t, EINVAL, "escapes the root");
	tw_open(&t, PLAIN);
	tw_file(&t, "/../.wh..wh..opq", "", 0644);
	tw_close(&t);
	apply_fails(&t, EINVAL, "escapes the root");
	assert_outside_intact(s);
}

static void test_root_replaced_by_file(void **state)
{
	struct scratch *s = *state;
	struct tarw t;
	tw_open(&t, PLAIN);
	tw_file(&t, ".", "x", 0644);
	tw_close(&t);
	apply_fails(&t, EINVAL, "would replace the root");
	tw_open(&t, PLAIN);
	tw_symlink(&t, "/", "elsewhere");
	tw_close(&t);
	apply_fails(&t, EINVAL, "would replace the root");
	assert_true(S_ISDIR(lstat_of(s, "").st_mode));
}

static void test_truncated_archive(void **state)
{
	struct scratch *s = *state;
	for (int filter = PLAIN; filter <= ZSTD; filter++) {
		struct tarw t;
		tw_open(&t, filter);
		/* incompressible and larger than libarchive's read-ahead, so
		 * that a cut lands inside its data */
		enum { BIG = 300000 };
		char *big = malloc(BIG);
		assert_non_null(big);
		uint32_t x = 2463534242u;
		for (size_t i = 0; i < BIG; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			big[i] = (char)x;
		}
		tw_add(&t, entry("big", AE_IFREG, 0644), big, BIG);
		free(big);
		tw_file(&t, "after", "a", 0644);
		tw_close(&t);
		t.len = t.len * 2 / 3;
		struct husk_error err;
		int rc = apply(&t, 0, NULL, &err);
		tw_free(&t);
		if (rc != -EBADMSG || !strstr(err.msg, "'big'"))
			fail_msg("filter %d: %d %s", filter, rc, err.msg);
		assert_false(exists(s, "after"));
	}
	assert_outside_intact(s);
}

static void test_garbage(void **state)
{
	struct scratch *s = *state;
	char junk[4096];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 31 + 7);
	struct husk_error err;
	assert_int_equal(
	    husk_layer_apply_memory(root_fd, junk, sizeof(junk), 0, NULL, &err),
	    -EBADMSG);
	assert_true(strlen(err.msg) > 10);
	/* gzip magic, then garbage */
	junk[0] = 0x1f;
	junk[1] = (char)0x8b;
	assert_int_equal(
	    husk_layer_apply_memory(root_fd, junk, sizeof(junk), 0, NULL, &err),
	    -EBADMSG);
	assert_int_equal(count_entries(at(s, "root")), 0);
	assert_outside_intact(s);
}

static void test_media_types(void **state)
{
	struct husk_error err;
	const struct {
		const char *type;
		int want;
	} ok[] = {
	    {"application/vnd.oci.image.layer.v1.tar", HUSK_LAYER_TAR},
	    {"application/vnd.oci.image.layer.v1.tar+gzip", HUSK_LAYER_GZIP},
	    {"application/vnd.oci.image.layer.v1.tar+zstd", HUSK_LAYER_ZSTD},
	    {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
	     HUSK_LAYER_GZIP},
	    {"application/vnd.docker.image.rootfs.diff.tar.gzip",
	     HUSK_LAYER_GZIP},
	    {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
	     HUSK_LAYER_GZIP},
	    {"application/vnd.docker.image.rootfs.diff.tar", HUSK_LAYER_TAR},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_int_equal(husk_layer_check_media_type(ok[i].type, &err),
		                 ok[i].want);
	const char *bad[] = {
	    "application/vnd.oci.image.layer.v1.tar+bzip2",
	    "application/vnd.oci.image.layer.v1.tar.gzip",
	    "application/vnd.oci.image.layer.v1.targzip",
	    "application/vnd.docker.image.rootfs.diff.tar+gzip",
	    "application/vnd.oci.image.config.v1+json",
	    "application/vnd.oci.image.layer.v2.tar",
	    "",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(husk_layer_check_media_type(bad[i], &err),
		                 -EPROTONOSUPPORT);
		assert_non_null(strstr(err.msg, "unknown layer media type"));
	}
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	    T(test_files_dirs_modes_owners_times),
	    T(test_gzip_layer),
	    T(test_zstd_layer),
	    T(test_missing_parents_are_made),
	    T(test_names),
	    T(test_hard_links),
	    T(test_symlinks_stored_verbatim),
	    T(test_device_and_fifo),
	    T(test_devices_without_privilege),
	    T(test_xattrs),
	    T(test_refused_xattr),
	    T(test_whiteouts),
	    T(test_opaque_marker_first),
	    T(test_opaque_marker_last),
	    T(test_replace_dir_and_file),
	    T(test_symlinked_parent_inside_root),
	    T(test_dotdot_escapes),
	    T(test_symlink_escape_same_layer),
	    T(test_symlink_escape_earlier_layer),
	    T(test_hard_link_escapes),
	    T(test_hard_link_to_inner_symlink),
	    T(test_whiteout_traversal),
	    T(test_root_replaced_by_file),
	    T(test_truncated_archive),
	    T(test_garbage),
	    T(test_media_types),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
