/* rootfs.c and rootfs_enter.c for real, as root: each case forks a child
 * with a mount namespace of its own (the "agent"), which prepares a
 * container from a small directory image and clones the container's first
 * process into new mount, PID, UTS and IPC namespaces, as process.c does.
 * Both report failed checks as text through a pipe; the test asserts that
 * the text is empty. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/loop.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/magic.h>

#include "../../src/agent/rootfs.h"
#include "../../src/agent/share.h"
#include "../../src/agent/volume.h"

struct world {
	char tmp[64];
	char src[96];   /* the image: tmp/src */
	char state[96]; /* env->state_dir: tmp/state */
	char root[PATH_MAX];
	char hostname[65];    /* what the container should see */
	const char *lower_fs; /* the filesystem type lower/ should have */
	struct agent_env env;
	struct agent_container_cfg cfg;
	struct agent_mount mounts[4]; /* cfg.mounts, added by add_mount */
	/* What run() does in its child, and, for the usual flow, what the
	 * container's first process checks and what the agent checks after
	 * it ended. */
	void (*body)(struct world *);
	void (*container)(struct world *);
	void (*after)(struct world *);
};

/* ---- reporting from the child processes ---------------------------------- */

static int report_fd = -1;
static int failures;

static void complain(int line, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void complain(int line, const char *fmt, ...)
{
	char msg[768];
	int n = snprintf(msg, sizeof(msg), "[pid %d] line %d: ", (int)getpid(),
	                 line);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	dprintf(report_fd, "%s\n", msg);
	failures++;
}

/* Checks in child processes: cmocka's asserts belong to the parent. */
#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			complain(__LINE__, __VA_ARGS__);                       \
	} while (0)

/* ---- fixtures ------------------------------------------------------------ */

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* The file's contents, in a static buffer; "<errno N>" when unreadable. */
static const char *read_text(const char *path)
{
	static char buf[1024];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(buf, sizeof(buf), "<errno %d>", errno);
		return buf;
	}
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n < 0 ? 0 : n] = '\0';
	return buf;
}

static void sub(char *out, size_t cap, const char *dir, const char *rel)
{
	int n = snprintf(out, cap, "%s/%s", dir, rel);
	assert_true(n > 0 && (size_t)n < cap);
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	assert_non_null(w);
	snprintf(w->tmp, sizeof(w->tmp), "/tmp/husk-rootfs-XXXXXX");
	assert_non_null(mkdtemp(w->tmp));
	sub(w->src, sizeof(w->src), w->tmp, "src");
	sub(w->state, sizeof(w->state), w->tmp, "state");
	assert_int_equal(mkdir(w->src, 0755), 0);
	static const char *const dirs[] = {"etc", "proc", "dev", "sys", "tmp"};
	char path[PATH_MAX];
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		sub(path, sizeof(path), w->src, dirs[i]);
		assert_int_equal(mkdir(path, 0755), 0);
	}
	sub(path, sizeof(path), w->src, "marker");
	write_text(path, "image\n");
	w->env = (struct agent_env){.host_mode = true, .state_dir = w->state};
	snprintf(w->cfg.id, sizeof(w->cfg.id), "c1");
	snprintf(w->cfg.root_device, sizeof(w->cfg.root_device), "%s", w->src);
	snprintf(w->cfg.hostname, sizeof(w->cfg.hostname), "box");
	snprintf(w->hostname, sizeof(w->hostname), "box");
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	char cmd[128];
	/* Never across a mount, should one have leaked. */
	snprintf(cmd, sizeof(cmd), "rm -rf --one-file-system '%s'", w->tmp);
	assert_int_equal(system(cmd), 0);
	free(w);
	return 0;
}

/* ---- the container's side ------------------------------------------------ */

static void check_file_is(const char *path, const char *want)
{
	const char *got = read_text(path);
	CHECK(strcmp(got, want) == 0, "%s holds '%s', want '%s'", path, got,
	      want);
}

static void check_masked(const char *path, bool existed)
{
	if (!existed)
		return;
	const char *got = read_text(path);
	CHECK(got[0] == '\0', "%s is not masked: read '%.20s'", path, got);
}

static void check_proc_and_sys(void)
{
	char self[16] = "";
	ssize_t n = readlink("/proc/self", self, sizeof(self) - 1);
	CHECK(n == 1 && self[0] == '1',
	      "/proc/self is '%s' (n %zd), want 1: not PID 1 of a new proc",
	      self, n);
	int fd = open("/proc/sys/kernel/hostname", O_WRONLY | O_CLOEXEC);
	CHECK(fd < 0 && errno == EROFS,
	      "writing /proc/sys/kernel/hostname: fd %d errno %d, want EROFS",
	      fd, errno);
	if (fd >= 0)
		close(fd);
	struct statvfs sv;
	CHECK(statvfs("/sys", &sv) == 0 && (sv.f_flag & ST_RDONLY),
	      "/sys is not read-only");
	CHECK(statvfs("/proc/sysrq-trigger", &sv) != 0 ||
	          (sv.f_flag & ST_RDONLY),
	      "/proc/sysrq-trigger is not read-only");
}

static void check_dev(void)
{
	struct stat st;
	CHECK(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode) &&
	          (st.st_mode & 0777) == 0666,
	      "/dev/null is not a 0666 char device");
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	CHECK(fd >= 0 && write(fd, "abc", 3) == 3, "cannot write /dev/null");
	if (fd >= 0)
		close(fd);
	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	char b[4];
	CHECK(fd >= 0 && read(fd, b, 4) == 4, "cannot read /dev/urandom");
	if (fd >= 0)
		close(fd);
	CHECK(stat("/dev/pts", &st) == 0 && S_ISDIR(st.st_mode), "no /dev/pts");
	fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	CHECK(fd >= 0, "cannot open /dev/ptmx: errno %d", errno);
	if (fd >= 0)
		close(fd);
	CHECK(stat("/dev/shm", &st) == 0 && (st.st_mode & 07777) == 01777,
	      "/dev/shm is not a 1777 directory");
	CHECK(stat("/dev/mqueue", &st) == 0, "no /dev/mqueue");
	char target[64] = "";
	CHECK(readlink("/dev/fd", target, sizeof(target) - 1) > 0 &&
	          strcmp(target, "/proc/self/fd") == 0,
	      "/dev/fd -> '%s'", target);
	CHECK(access("/dev/stdin", F_OK) == 0, "/dev/stdin does not resolve");
}

static void check_names(const struct world *w)
{
	char name[128] = "";
	CHECK(gethostname(name, sizeof(name)) == 0 &&
	          strcmp(name, w->hostname) == 0,
	      "hostname is '%s', want '%s'", name, w->hostname);
	char line[80];
	snprintf(line, sizeof(line), "%s\n", w->hostname);
	check_file_is("/etc/hostname", line);
	const char *hosts = read_text("/etc/hosts");
	snprintf(line, sizeof(line), "127.0.0.1\t%s\n", w->hostname);
	CHECK(strncmp(hosts, "127.0.0.1\tlocalhost\n", 20) == 0 &&
	          strstr(hosts, line),
	      "/etc/hosts is '%s'", hosts);
	check_file_is("/etc/resolv.conf", "");
}

/* Everything both kinds of root share, right after rootfs_enter. */
static void check_container(const struct world *w, const bool masked[3])
{
	check_proc_and_sys();
	check_dev();
	check_masked("/proc/kcore", masked[0]);
	check_masked("/proc/keys", masked[1]);
	check_masked("/proc/timer_list", masked[2]);
	check_file_is("/marker", "image\n");
	/* The old root is gone: the test's directory is nowhere. */
	CHECK(access(w->tmp, F_OK) != 0, "%s is visible in the container",
	      w->tmp);
	char cwd[64] = "";
	CHECK(getcwd(cwd, sizeof(cwd)) && strcmp(cwd, "/") == 0, "cwd is '%s'",
	      cwd);
}

static void agent_proc_files(bool masked[3])
{
	masked[0] = access("/proc/kcore", F_OK) == 0;
	masked[1] = access("/proc/keys", F_OK) == 0;
	masked[2] = access("/proc/timer_list", F_OK) == 0;
}

static int enter(struct world *w)
{
	struct husk_error e = {0};
	int r = rootfs_enter(&w->env, &w->cfg, w->root, &e);
	CHECK(r == 0, "rootfs_enter: %d %s", r, e.msg);
	return r;
}

static void in_overlay_container(struct world *w)
{
	bool masked[3];
	agent_proc_files(masked);
	if (enter(w) != 0)
		return;
	check_container(w, masked);
	check_names(w);
	int fd = open("/newfile", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	CHECK(fd >= 0 && write(fd, "new\n", 4) == 4,
	      "cannot write /newfile: errno %d", errno);
	if (fd >= 0)
		close(fd);
	struct statvfs sv;
	CHECK(statvfs("/", &sv) == 0 && !(sv.f_flag & ST_RDONLY),
	      "/ is read-only");
}

static void in_readonly_container(struct world *w)
{
	bool masked[3];
	agent_proc_files(masked);
	if (enter(w) != 0)
		return;
	check_container(w, masked);
	char name[128] = "";
	CHECK(gethostname(name, sizeof(name)) == 0 &&
	          strcmp(name, w->hostname) == 0,
	      "hostname is '%s', want '%s'", name, w->hostname);
	/* The image has no /etc/hostname, and a read-only root cannot get
	 * one. */
	CHECK(access("/etc/hostname", F_OK) != 0, "/etc/hostname appeared");
	int fd = open("/newfile", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	CHECK(fd < 0 && errno == EROFS, "creating /newfile: fd %d errno %d", fd,
	      errno);
	if (fd >= 0)
		close(fd);
	struct statvfs sv;
	CHECK(statvfs("/", &sv) == 0 && (sv.f_flag & ST_RDONLY),
	      "/ is not read-only");
}

static void in_empty_readonly_container(struct world *w)
{
	struct husk_error e = {0};
	int r = rootfs_enter(&w->env, &w->cfg, w->root, &e);
	CHECK(r == -EROFS && strstr(e.msg, "/proc"),
	      "rootfs_enter on an empty read-only root: %d '%s'", r, e.msg);
}

static void in_container_without_proc_dir(struct world *w)
{
	struct husk_error e = {0};
	int r = rootfs_enter(&w->env, &w->cfg, w->root, &e);
	CHECK(r == -ELOOP && strstr(e.msg, "/proc"),
	      "rootfs_enter with /proc a symlink: %d '%s'", r, e.msg);
}

static void in_hostile_container(struct world *w)
{
	if (enter(w) != 0)
		return;
	check_names(w);
	struct stat st;
	CHECK(lstat("/etc/hosts", &st) == 0 && S_ISREG(st.st_mode),
	      "/etc/hosts is not a plain file");
}

/* rootfs_pivot's way out of an initramfs, forced. */
static void in_rebound_container(struct world *w)
{
	struct husk_error e = {0};
	char spare[PATH_MAX];
	sub(spare, sizeof(spare), w->state, "c1/host");
	int r = mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	CHECK(r == 0, "make / private: errno %d", errno);
	r = rootfs_pivot(w->root, spare, true, &e);
	CHECK(r == 0, "rootfs_pivot: %d %s", r, e.msg);
	if (r)
		return;
	check_file_is("/marker", "image\n");
	CHECK(access(w->tmp, F_OK) != 0, "%s is visible in the container",
	      w->tmp);
}

/* ---- the agent's side ---------------------------------------------------- */

static bool mounted_under(const char *prefix)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return true;
	char line[4096];
	bool found = false;
	size_t n = strlen(prefix);
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *mp = strtok_r(line, " ", &save);
		for (int i = 0; mp && i < 4; i++)
			mp = strtok_r(NULL, " ", &save);
		if (mp && strncmp(mp, prefix, n) == 0)
			found = true;
	}
	fclose(f);
	return found;
}

/* The container's first process, cloned as process.c clones it. */
static void run_container(struct world *w, void (*container)(struct world *))
{
	pid_t pid = (pid_t)syscall(SYS_clone,
	                           CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS |
	                               CLONE_NEWIPC | SIGCHLD,
	                           NULL, NULL, NULL, 0);
	CHECK(pid >= 0, "clone: errno %d", errno);
	if (pid == 0) {
		failures = 0; /* the agent's count so far is not ours */
		container(w);
		_exit(failures ? 1 : 0);
	}
	int status = 0;
	CHECK(pid < 0 || waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "container process ended with status %#x", status);
}

static void check_released(struct world *w)
{
	struct husk_error e = {0};
	char base[PATH_MAX];
	sub(base, sizeof(base), w->state, w->cfg.id);
	int r = rootfs_release(&w->env, w->cfg.id, &e);
	CHECK(r == 0, "rootfs_release: %d %s", r, e.msg);
	CHECK(!mounted_under(w->state), "something is still mounted under %s",
	      w->state);
	CHECK(access(base, F_OK) != 0, "%s is still there", base);
	r = rootfs_release(&w->env, w->cfg.id, &e);
	CHECK(r == 0, "second rootfs_release: %d %s", r, e.msg);
}

static void check_prepared(struct world *w)
{
	char base[PATH_MAX], want[PATH_MAX], path[PATH_MAX], line[80];
	sub(base, sizeof(base), w->state, w->cfg.id);
	sub(want, sizeof(want), base, "rootfs");
	CHECK(strcmp(w->root, want) == 0, "root is %s, want %s", w->root, want);
	struct stat st;
	CHECK(stat(w->state, &st) == 0 && (st.st_mode & 0777) == 0700,
	      "%s is not a 0700 directory", w->state);
	sub(path, sizeof(path), base, "etc/hostname");
	snprintf(line, sizeof(line), "%s\n", w->hostname);
	check_file_is(path, line);
}

/* prepare, run the container, release. */
static void usual_flow(struct world *w)
{
	struct husk_error e = {0};
	int r = rootfs_prepare(&w->env, &w->cfg, w->root, sizeof(w->root), &e);
	CHECK(r == 0, "rootfs_prepare: %d %s", r, e.msg);
	if (r)
		return;
	check_prepared(w);
	r = rootfs_prepare(&w->env, &w->cfg, w->root, sizeof(w->root), &e);
	CHECK(r == -EEXIST, "second rootfs_prepare: %d %s", r, e.msg);
	run_container(w, w->container);
	if (w->after)
		w->after(w);
	check_released(w);
}

/* Runs w->body (usual_flow unless set) in a child with a private mount
 * namespace, so nothing it mounts can reach the test's namespace, and
 * asserts it reported no failure. */
static void run(struct world *w, void (*container)(struct world *),
                void (*after)(struct world *))
{
	w->container = container;
	w->after = after;
	if (!w->body)
		w->body = usual_flow;
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		report_fd = p[1];
		if (unshare(CLONE_NEWNS) != 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
			complain(__LINE__, "private mount namespace: errno %d",
			         errno);
			_exit(1);
		}
		w->body(w);
		_exit(failures ? 1 : 0);
	}
	close(p[1]);
	char out[8192];
	size_t len = 0;
	ssize_t n;
	while (len < sizeof(out) - 1 &&
	       (n = read(p[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(p[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (len || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("status %#x\n%s", status, out);
	char base[PATH_MAX];
	sub(base, sizeof(base), w->state, w->cfg.id);
	assert_int_equal(access(base, F_OK), -1);
}

/* ---- the cases ----------------------------------------------------------- */

static void upper_got_the_write(struct world *w)
{
	char path[PATH_MAX];
	sub(path, sizeof(path), w->state, "c1/rw/upper/newfile");
	check_file_is(path, "new\n");
	sub(path, sizeof(path), w->src, "newfile");
	CHECK(access(path, F_OK) != 0, "the write reached the image: %s", path);
}

/* The filesystem type mounted at path, from mountinfo ("" if none). */
static void mount_type_at(const char *path, char *type, size_t cap)
{
	type[0] = '\0';
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return;
	char line[4096];
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *mp = strtok_r(line, " ", &save);
		for (int i = 0; mp && i < 4; i++)
			mp = strtok_r(NULL, " ", &save);
		if (!mp || strcmp(mp, path) != 0)
			continue;
		char *sep = strstr(mp + strlen(mp) + 1, " - ");
		char *t = sep ? strtok_r(sep + 3, " ", &save) : NULL;
		if (t)
			snprintf(type, cap, "%s", t);
	}
	fclose(f);
}

static void lower_has_the_disk(struct world *w)
{
	char lower[PATH_MAX], type[32];
	sub(lower, sizeof(lower), w->state, "c1/lower");
	mount_type_at(lower, type, sizeof(type));
	CHECK(strcmp(type, w->lower_fs) == 0, "%s is '%s', want %s", lower,
	      type, w->lower_fs);
	upper_got_the_write(w);
}

/* A read-only loop device over path, its node's name in dev; -1 when the
 * host has no loop devices. Detaches itself once closed and unmounted. */
static int attach_loop(const char *path, char *dev, size_t cap)
{
	for (int tries = 0; tries < 10; tries++) {
		int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
		if (ctl < 0)
			return -1;
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		close(ctl);
		if (n < 0)
			return -1;
		snprintf(dev, cap, "/dev/loop%d", n);
		int file = open(path, O_RDONLY | O_CLOEXEC);
		int loop = open(dev, O_RDONLY | O_CLOEXEC);
		struct loop_config cfg = {
		    .fd = (unsigned)file,
		    .info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR,
		};
		int r = file >= 0 && loop >= 0
		            ? ioctl(loop, LOOP_CONFIGURE, &cfg)
		            : -1;
		int e = errno;
		if (file >= 0)
			close(file);
		if (r == 0)
			return loop;
		if (loop >= 0)
			close(loop);
		if (e != EBUSY) /* EBUSY: someone took it first */
			return -1;
	}
	return -1;
}

/* The image as a disk of type fs made by mkfs_cmd into w->tmp/disk.img
 * (skipped when the host lacks mkfs.FS or loop devices). */
static void disk_root(struct world *w, const char *fs, const char *mkfs_cmd)
{
	char cmd[512], img[PATH_MAX];
	snprintf(cmd, sizeof(cmd), "command -v mkfs.%s >/dev/null", fs);
	if (system(cmd) != 0)
		skip();
	assert_int_equal(system(mkfs_cmd), 0);
	sub(img, sizeof(img), w->tmp, "disk.img");
	int loop =
	    attach_loop(img, w->cfg.root_device, sizeof(w->cfg.root_device));
	if (loop < 0)
		skip();
	w->lower_fs = fs;
	run(w, in_overlay_container, lower_has_the_disk);
	close(loop);
}

static void erofs_disk_root(void **state)
{
	struct world *w = *state;
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "mkfs.erofs --quiet %s/disk.img %s", w->tmp,
	         w->src);
	disk_root(w, "erofs", cmd);
}

static void ext4_disk_root(void **state)
{
	struct world *w = *state;
	char cmd[512];
	snprintf(cmd, sizeof(cmd),
	         "mkfs.ext4 -q -d %s %s/disk.img 8M >/dev/null", w->src,
	         w->tmp);
	disk_root(w, "ext4", cmd);
}

static void overlay_root(void **state)
{
	struct world *w = *state;
	run(w, in_overlay_container, upper_got_the_write);
}

static void readonly_root(void **state)
{
	struct world *w = *state;
	w->cfg.readonly_root = true;
	w->cfg.hostname[0] = '\0';
	snprintf(w->cfg.id, sizeof(w->cfg.id), "0123456789abcdef");
	snprintf(w->hostname, sizeof(w->hostname), "0123456789ab");
	run(w, in_readonly_container, NULL);
}

static void empty_image(struct world *w)
{
	sub(w->cfg.root_device, sizeof(w->cfg.root_device), w->tmp, "empty");
	assert_int_equal(mkdir(w->cfg.root_device, 0755), 0);
}

static void in_empty_overlay_container(struct world *w)
{
	bool masked[3];
	agent_proc_files(masked);
	if (enter(w) != 0)
		return;
	check_proc_and_sys();
	check_dev();
	check_names(w);
}

static void empty_overlay_root_gets_mount_points(void **state)
{
	struct world *w = *state;
	empty_image(w);
	run(w, in_empty_overlay_container, NULL);
}

static void empty_readonly_root_fails_clearly(void **state)
{
	struct world *w = *state;
	empty_image(w);
	w->cfg.readonly_root = true;
	run(w, in_empty_readonly_container, NULL);
}

static void symlinked_proc_is_refused(void **state)
{
	struct world *w = *state;
	char path[PATH_MAX];
	sub(path, sizeof(path), w->src, "proc");
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(symlink("/tmp", path), 0);
	run(w, in_container_without_proc_dir, NULL);
}

static void nothing_written_outside(struct world *w)
{
	char path[PATH_MAX];
	sub(path, sizeof(path), w->tmp, "outside");
	CHECK(access(path, F_OK) != 0, "%s was created through a symlink",
	      path);
	sub(path, sizeof(path), w->tmp, "victim");
	check_file_is(path, "victim\n");
}

/* Symlinks in the image that point at the agent's files, by absolute path
 * and by "..", must stay inside the container's root. */
static void hostile_etc_symlinks_stay_inside(void **state)
{
	struct world *w = *state;
	char path[PATH_MAX], target[PATH_MAX];
	sub(path, sizeof(path), w->tmp, "victim");
	write_text(path, "victim\n");
	sub(path, sizeof(path), w->src, "etc/hosts");
	snprintf(target, sizeof(target), "../../../../../..%s/victim", w->tmp);
	assert_int_equal(symlink(target, path), 0);
	sub(path, sizeof(path), w->src, "etc/resolv.conf");
	sub(target, sizeof(target), w->tmp, "outside");
	assert_int_equal(symlink(target, path), 0);
	sub(path, sizeof(path), w->src, "etc/hostname");
	sub(target, sizeof(target), w->tmp, "victim");
	assert_int_equal(symlink(target, path), 0);
	run(w, in_hostile_container, nothing_written_outside);
}

static void pivot_through_rebind(void **state)
{
	struct world *w = *state;
	run(w, in_rebound_container, NULL);
}

/* A root buffer too small for the path fails at the very end: everything
 * mounted by then must be undone. */
static void fail_after_mounting(struct world *w)
{
	struct husk_error e = {0};
	char small[8];
	int r = rootfs_prepare(&w->env, &w->cfg, small, sizeof(small), &e);
	CHECK(r == -ENAMETOOLONG, "rootfs_prepare: %d %s", r, e.msg);
	CHECK(!mounted_under(w->state), "something is still mounted under %s",
	      w->state);
}

static void prepare_failure_leaves_nothing(void **state)
{
	struct world *w = *state;
	struct husk_error e = {0};
	char base[PATH_MAX];
	sub(base, sizeof(base), w->state, "c1");
	snprintf(w->cfg.root_device, sizeof(w->cfg.root_device),
	         "/nonexistent/disk");
	assert_int_equal(
	    rootfs_prepare(&w->env, &w->cfg, w->root, sizeof(w->root), &e),
	    -ENOENT);
	assert_non_null(strstr(e.msg, "/nonexistent/disk"));
	assert_int_equal(access(base, F_OK), -1);
	/* Neither a directory nor a block device. */
	sub(w->cfg.root_device, sizeof(w->cfg.root_device), w->src, "marker");
	assert_int_equal(
	    rootfs_prepare(&w->env, &w->cfg, w->root, sizeof(w->root), &e),
	    -EINVAL);
	assert_int_equal(access(base, F_OK), -1);
	/* A hostname that would break /etc/hosts. */
	snprintf(w->cfg.root_device, sizeof(w->cfg.root_device), "%s", w->src);
	snprintf(w->cfg.hostname, sizeof(w->cfg.hostname), "a\nb");
	assert_int_equal(
	    rootfs_prepare(&w->env, &w->cfg, w->root, sizeof(w->root), &e),
	    -EINVAL);
	assert_int_equal(access(base, F_OK), -1);
	snprintf(w->cfg.hostname, sizeof(w->cfg.hostname), "box");
	w->body = fail_after_mounting;
	run(w, NULL, NULL);
}

static void bad_ids_are_refused(void **state)
{
	struct world *w = *state;
	struct husk_error e = {0};
	static const char *const bad[] = {"", ".", "..", "a/b", "../x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(w->cfg.id, sizeof(w->cfg.id), "%s", bad[i]);
		assert_int_equal(rootfs_prepare(&w->env, &w->cfg, w->root,
		                                sizeof(w->root), &e),
		                 -EINVAL);
		assert_int_equal(rootfs_release(&w->env, bad[i], &e), -EINVAL);
	}
	assert_int_equal(access(w->state, F_OK), -1);
}

static void release_of_unknown_is_fine(void **state)
{
	struct world *w = *state;
	struct husk_error e = {0};
	assert_int_equal(rootfs_release(&w->env, "never", &e), 0);
}

/* ---- volumes ------------------------------------------------------------- */

/* Appends a MOUNT entry, as the session would parse it on a host agent. */
static void add_mount(struct world *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add_mount(struct world *w, const char *fmt, ...)
{
	char spec[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(spec, sizeof(spec), fmt, ap);
	va_end(ap);
	assert_true(w->cfg.nmounts < sizeof(w->mounts) / sizeof(w->mounts[0]));
	struct husk_error e = {0};
	int r = agent_mount_parse(spec, strlen(spec), true,
	                          &w->mounts[w->cfg.nmounts], &e);
	if (r)
		fail_msg("agent_mount_parse '%s': %d %s", spec, r, e.msg);
	w->cfg.mounts = w->mounts;
	w->cfg.nmounts++;
}

/* A host directory tmp/NAME holding one file, FILE, with text. */
static void host_dir(struct world *w, const char *name, const char *file,
                     const char *text)
{
	char path[PATH_MAX];
	sub(path, sizeof(path), w->tmp, name);
	assert_int_equal(mkdir(path, 0755), 0);
	sub(path, sizeof(path), w->tmp, name);
	strncat(path, "/", sizeof(path) - strlen(path) - 1);
	strncat(path, file, sizeof(path) - strlen(path) - 1);
	write_text(path, text);
}

static void check_write(const char *path, int want_errno)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	int e = errno;
	bool wrote = fd >= 0 && write(fd, "written\n", 8) == 8;
	if (fd >= 0)
		close(fd);
	if (want_errno)
		CHECK(fd < 0 && e == want_errno,
		      "writing %s: fd %d errno %d, want errno %d", path, fd, e,
		      want_errno);
	else
		CHECK(wrote, "cannot write %s: errno %d", path, e);
}

static void in_bind_rw_container(struct world *w)
{
	if (enter(w) != 0)
		return;
	check_file_is("/data/deep/in", "host\n");
	check_write("/data/deep/out", 0);
	check_file_is("/marker", "image\n");
}

static void host_sees_the_write(struct world *w)
{
	char path[PATH_MAX];
	sub(path, sizeof(path), w->tmp, "vol/out");
	check_file_is(path, "written\n");
	/* The mount point was made in the writable layer, not the image. */
	sub(path, sizeof(path), w->state, "c1/rw/upper/data/deep");
	struct stat st;
	CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode),
	      "no mount point %s in the upper layer", path);
	sub(path, sizeof(path), w->src, "data");
	CHECK(access(path, F_OK) != 0, "the image got %s", path);
}

static void bind_rw_volume(void **state)
{
	struct world *w = *state;
	host_dir(w, "vol", "in", "host\n");
	add_mount(w, "bind:%s/vol:rw:/data//deep/", w->tmp);
	run(w, in_bind_rw_container, host_sees_the_write);
}

static void in_bind_ro_container(struct world *w)
{
	if (enter(w) != 0)
		return;
	check_file_is("/data/in", "host\n");
	check_write("/data/out", EROFS);
	struct statvfs sv;
	CHECK(statvfs("/data", &sv) == 0 && (sv.f_flag & ST_RDONLY),
	      "/data is not read-only");
	/* The read-only remount hit the volume, not the root under it. */
	check_write("/newfile", 0);
	check_file_is("/etc/app.conf", "key=value\n");
	check_write("/etc/app.conf", EROFS);
}

static void host_dir_untouched(struct world *w)
{
	char path[PATH_MAX];
	sub(path, sizeof(path), w->tmp, "vol/out");
	CHECK(access(path, F_OK) != 0, "%s was written", path);
	sub(path, sizeof(path), w->tmp, "app.conf");
	check_file_is(path, "key=value\n");
}

static void bind_ro_volume_and_file(void **state)
{
	struct world *w = *state;
	char path[PATH_MAX];
	host_dir(w, "vol", "in", "host\n");
	sub(path, sizeof(path), w->tmp, "app.conf");
	write_text(path, "key=value\n");
	add_mount(w, "bind:%s/vol:ro:/data", w->tmp);
	/* A file: the mount point is made as an empty file. */
	add_mount(w, "bind:%s:ro:/etc/app.conf", path);
	run(w, in_bind_ro_container, host_dir_untouched);
}

static void check_tmpfs(const char *dir)
{
	struct statfs fs;
	struct stat st;
	CHECK(statfs(dir, &fs) == 0 && fs.f_type == TMPFS_MAGIC,
	      "%s is not a tmpfs", dir);
	CHECK(stat(dir, &st) == 0 && (st.st_mode & 07777) == 01777,
	      "%s is not 1777 (%o)", dir, (unsigned)st.st_mode);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/file", dir);
	check_write(path, 0);
}

static void in_tmpfs_container(struct world *w)
{
	if (enter(w) != 0)
		return;
	check_tmpfs("/tmp");
	check_tmpfs("/scratch/a:b");
}

static void tmpfs_took_the_writes(struct world *w)
{
	char path[PATH_MAX];
	sub(path, sizeof(path), w->state, "c1/rw/upper/scratch/a:b");
	struct stat st;
	CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode),
	      "no mount point %s in the upper layer", path);
	sub(path, sizeof(path), w->state, "c1/rw/upper/scratch/a:b/file");
	CHECK(access(path, F_OK) != 0, "%s reached the upper layer", path);
}

static void tmpfs_volumes(void **state)
{
	struct world *w = *state;
	add_mount(w, "tmpfs::rw:/tmp"); /* in the image */
	/* Made; and ':' belongs to the destination. */
	add_mount(w, "tmpfs::rw:/scratch/./a:b");
	run(w, in_tmpfs_container, tmpfs_took_the_writes);
}

static void in_readonly_volume_container(struct world *w)
{
	if (enter(w) != 0)
		return;
	check_tmpfs("/tmp");
	check_write("/newfile", EROFS);
}

static void in_readonly_missing_point_container(struct world *w)
{
	struct husk_error e = {0};
	int r = rootfs_enter(&w->env, &w->cfg, w->root, &e);
	CHECK(r == -EROFS && strstr(e.msg, "mount tmpfs at /nope"),
	      "a volume on a missing dir of a read-only root: %d '%s'", r,
	      e.msg);
}

static void volumes_on_a_readonly_root(void **state)
{
	struct world *w = *state;
	w->cfg.readonly_root = true;
	add_mount(w, "tmpfs::rw:/tmp");
	run(w, in_readonly_volume_container, NULL);
	add_mount(w, "tmpfs::rw:/nope");
	run(w, in_readonly_missing_point_container, NULL);
}

static void in_symlinked_dest_container(struct world *w)
{
	if (enter(w) != 0)
		return;
	/* /data -> /etc: the volume is on the container's /etc... */
	check_file_is("/etc/mark", "one\n");
	/* ...and ../../../../tmp stops at the root: the container's /tmp. */
	check_file_is("/tmp/mark", "two\n");
	struct stat st;
	CHECK(lstat("/data", &st) == 0 && S_ISLNK(st.st_mode),
	      "/data is no longer a symlink");
	CHECK(lstat("/up", &st) == 0 && S_ISLNK(st.st_mode),
	      "/up is no longer a symlink");
	/* The rest of /etc is covered, the files husk binds included. */
	CHECK(access("/etc/hostname", F_OK) != 0, "/etc is not covered");
}

/* The image's symlinks at a destination resolve inside its root; a naive
 * mount(2) on ROOT/data would follow them onto the agent's /etc and /tmp,
 * where the container would not see the volumes. */
static void symlinked_destinations_stay_inside(void **state)
{
	struct world *w = *state;
	char path[PATH_MAX];
	host_dir(w, "vol1", "mark", "one\n");
	host_dir(w, "vol2", "mark", "two\n");
	sub(path, sizeof(path), w->src, "data");
	assert_int_equal(symlink("/etc", path), 0);
	sub(path, sizeof(path), w->src, "up");
	assert_int_equal(symlink("../../../../tmp", path), 0);
	add_mount(w, "bind:%s/vol1:ro:/data", w->tmp);
	add_mount(w, "bind:%s/vol2:rw:/up", w->tmp);
	run(w, in_symlinked_dest_container, NULL);
}

static void in_dangling_dest_container(struct world *w)
{
	struct husk_error e = {0};
	int r = rootfs_enter(&w->env, &w->cfg, w->root, &e);
	CHECK(r == -ENOENT && strstr(e.msg, "mount tmpfs at /away"),
	      "a volume on a link to a host directory: %d '%s'", r, e.msg);
}

static void victim_dir_untouched(struct world *w)
{
	char path[PATH_MAX];
	sub(path, sizeof(path), w->tmp, "victim/mark");
	check_file_is(path, "victim\n");
}

/* A link to a host directory that does not exist inside the root is
 * dangling there: refused, never followed out and never created. */
static void dangling_symlinked_destination_is_refused(void **state)
{
	struct world *w = *state;
	char path[PATH_MAX], target[PATH_MAX];
	host_dir(w, "victim", "mark", "victim\n");
	sub(path, sizeof(path), w->src, "away");
	sub(target, sizeof(target), w->tmp, "victim");
	assert_int_equal(symlink(target, path), 0);
	add_mount(w, "tmpfs::rw:/away");
	run(w, in_dangling_dest_container, victim_dir_untouched);
}

static void in_9p_container(struct world *w)
{
	struct husk_error e = {0};
	int r = rootfs_enter(&w->env, &w->cfg, w->root, &e);
	/* No virtio-9p share here: ENOENT, or ENODEV without 9p. */
	CHECK(r < 0 && strncmp(e.msg, "mount 9p:husk-none at /data: ", 29) == 0,
	      "a missing 9p share: %d '%s'", r, e.msg);
}

static void missing_9p_share_is_named(void **state)
{
	struct world *w = *state;
	add_mount(w, "9p:husk-none:ro:/data");
	run(w, in_9p_container, NULL);
}

/* ---- directories of 9p shares (share.h) ---------------------------------- */

/* tmp/state/shares/vol0 stands in for a mounted share: what the container
 * does with it (open SUBDIR beneath it, bind) needs no 9p. */
static void fake_share(struct world *w)
{
	char path[PATH_MAX];
	assert_int_equal(mkdir(w->state, 0700), 0);
	sub(path, sizeof(path), w->state, "shares");
	assert_int_equal(mkdir(path, 0700), 0);
	sub(path, sizeof(path), w->state, "shares/vol0");
	assert_int_equal(mkdir(path, 0755), 0);
	static const char *const dirs[] = {"data", "data/sub", "rw", "out"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "shares/vol0/%s", dirs[i]);
		sub(path, sizeof(path), w->state, rel);
		assert_int_equal(mkdir(path, 0755), 0);
	}
	sub(path, sizeof(path), w->state, "shares/vol0/data/sub/in");
	write_text(path, "shared\n");
	sub(path, sizeof(path), w->state, "shares/vol0/out/secret");
	write_text(path, "outside\n");
	/* Whoever writes the share may plant links: to a directory in it,
	 * and out of it. */
	sub(path, sizeof(path), w->state, "shares/vol0/link");
	assert_int_equal(symlink("data", path), 0);
	sub(path, sizeof(path), w->state, "shares/vol0/data/up");
	assert_int_equal(symlink("../out", path), 0);
}

static void check_nosuid(const char *dir)
{
	struct statvfs sv;
	CHECK(statvfs(dir, &sv) == 0 && (sv.f_flag & ST_NOSUID) &&
	          (sv.f_flag & ST_NODEV),
	      "%s is not nosuid and nodev", dir);
}

static void in_share_volume_container(struct world *w)
{
	if (enter(w) != 0)
		return;
	check_file_is("/data/in", "shared\n");
	check_write("/data/out", EROFS);
	check_nosuid("/data");
	check_write("/rw/out", 0);
	check_nosuid("/rw");
	/* The rest of the share is not there. */
	CHECK(access("/data/sub", F_OK) != 0, "/data is not data/sub");
}

static void share_got_the_write(struct world *w)
{
	char path[PATH_MAX];
	sub(path, sizeof(path), w->state, "shares/vol0/rw/out");
	check_file_is(path, "written\n");
	sub(path, sizeof(path), w->state, "shares/vol0/data/sub/out");
	CHECK(access(path, F_OK) != 0, "%s was written", path);
}

/* "9p:TAG/SUBDIR" volumes: a bind of SUBDIR of the share the agent
 * mounted, read-only or not, nosuid and nodev either way. */
static void share_dir_volumes(void **state)
{
	struct world *w = *state;
	fake_share(w);
	add_mount(w, "9p:vol0/data/sub:ro:/data");
	add_mount(w, "9p:vol0/rw:rw:/rw");
	run(w, in_share_volume_container, share_got_the_write);
}

static void in_linked_share_container(struct world *w)
{
	struct husk_error e = {0};
	int r = rootfs_enter(&w->env, &w->cfg, w->root, &e);
	CHECK(r == -ELOOP && strstr(e.msg, "mount 9p:vol0/data/up at /x: "
	                                   "directory data/up of the share"),
	      "a volume through a symlink in the share: %d '%s'", r, e.msg);
}

static void share_dir_volume_through_a_link_is_refused(void **state)
{
	struct world *w = *state;
	fake_share(w);
	add_mount(w, "9p:vol0/data/up:ro:/x");
	run(w, in_linked_share_container, NULL);
}

/* The step a share's directory as a root takes, on a plain directory
 * standing in for the share. */
static void bind_share_dirs(struct world *w)
{
	struct husk_error e = {0};
	char share[PATH_MAX], target[PATH_MAX], path[PATH_MAX];
	sub(share, sizeof(share), w->state, "shares/vol0");
	sub(target, sizeof(target), w->tmp, "target");
	CHECK(mkdir(target, 0755) == 0, "mkdir %s", target);
	int fd = open(share, O_PATH | O_DIRECTORY | O_CLOEXEC);
	CHECK(fd >= 0, "open %s", share);
	int r = agent_share_bind_ro(fd, "data/sub", target, &e);
	CHECK(r == 0, "bind data/sub: %d %s", r, e.msg);
	sub(path, sizeof(path), target, "in");
	check_file_is(path, "shared\n");
	sub(path, sizeof(path), target, "new");
	check_write(path, EROFS);
	/* Read-only is the bind's; the share stays writable. */
	sub(path, sizeof(path), share, "data/sub/new");
	check_write(path, 0);
	CHECK(umount2(target, 0) == 0, "unmount %s", target);
	/* A link anywhere on the way, the last component included. */
	static const char *const links[] = {"link", "link/sub", "data/up",
	                                    "data/up/secret/.."};
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		r = agent_share_bind_ro(fd, links[i], target, &e);
		CHECK(r == -ELOOP && strstr(e.msg, "a symlink is in the way"),
		      "bind %s: %d '%s'", links[i], r, e.msg);
	}
	/* Ways out, which the spec check refuses first anyway. */
	static const char *const out[] = {"..", "data/../../shares", "/etc"};
	for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
		r = agent_share_bind_ro(fd, out[i], target, &e);
		CHECK(r == -EXDEV, "bind %s: %d '%s'", out[i], r, e.msg);
	}
	r = agent_share_bind_ro(fd, "data/nope", target, &e);
	CHECK(r == -ENOENT, "bind data/nope: %d '%s'", r, e.msg);
	CHECK(!mounted_under(target), "something is mounted on %s", target);
	close(fd);
}

static void share_dir_binds_read_only_and_beneath(void **state)
{
	struct world *w = *state;
	fake_share(w);
	w->body = bind_share_dirs;
	run(w, NULL, NULL);
}

/* A host agent has no virtio-9p device: a share's directory as the root is
 * refused before anything is made. */
static void share_root_is_refused_on_the_host(void **state)
{
	struct world *w = *state;
	struct husk_error e = {0};
	char base[PATH_MAX];
	snprintf(w->cfg.root_device, sizeof(w->cfg.root_device), "9p:pod/c1");
	assert_int_equal(
	    rootfs_prepare(&w->env, &w->cfg, w->root, sizeof(w->root), &e),
	    -EINVAL);
	assert_non_null(strstr(e.msg, "9p shares exist only in a VM"));
	sub(base, sizeof(base), w->state, w->cfg.id);
	assert_int_equal(access(base, F_OK), -1);
	/* And "shares" is no container's name: STATE/shares is the
	 * agent's. */
	snprintf(w->cfg.root_device, sizeof(w->cfg.root_device), "%s", w->src);
	snprintf(w->cfg.id, sizeof(w->cfg.id), "shares");
	assert_int_equal(
	    rootfs_prepare(&w->env, &w->cfg, w->root, sizeof(w->root), &e),
	    -EINVAL);
	assert_non_null(strstr(e.msg, "reserved"));
	assert_int_equal(rootfs_release(&w->env, "shares", &e), -EINVAL);
}

static void share_split(const char *src, const char *tag, const char *subdir)
{
	char t[AGENT_SHARE_TAG_MAX + 1], d[AGENT_SHARE_SPEC_MAX + 1];
	const char *why = agent_share_split(src, t, d);
	if (why)
		fail_msg("'%s': %s", src, why);
	assert_string_equal(t, tag);
	assert_string_equal(d, subdir);
}

static void share_specs_are_checked(void **state)
{
	assert_true(agent_share_is_spec("9p:pod/c1"));
	assert_false(agent_share_is_spec("serial:9p"));
	assert_false(agent_share_is_spec("/dev/9p:x"));
	share_split("pod/c1", "pod", "c1");
	share_split("a-B_9/x.y/..z/z..", "a-B_9", "x.y/..z/z..");
	share_split("1234567890123456789012345678901/-",
	            "1234567890123456789012345678901", "-");
	static const struct {
		const char *src, *why;
	} bad[] = {
	    {"", "want 9p:TAG/SUBDIR"},
	    {"pod", "want 9p:TAG/SUBDIR"},
	    {"/c1", "9p tag"},
	    {"p.d/c1", "9p tag"},
	    {"12345678901234567890123456789012/c1", "9p tag"},
	    {"pod/", "empty component"},
	    {"pod//c1", "empty component"},
	    {"pod/c1/", "empty component"},
	    {"pod/.", "'.' or '..'"},
	    {"pod/..", "'.' or '..'"},
	    {"pod/c1/../c2", "'.' or '..'"},
	    {"pod/c1:ro", "only letters"},
	    {"pod/c\n1", "only letters"},
	    {"pod/c\xc3\xa9", "only letters"},
	};
	char t[AGENT_SHARE_TAG_MAX + 1], d[AGENT_SHARE_SPEC_MAX + 1];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = agent_share_split(bad[i].src, t, d);
		if (!why || !strstr(why, bad[i].why))
			fail_msg("'%s': %s, want '%s'", bad[i].src,
			         why ? why : "accepted", bad[i].why);
	}
	/* "9p:" and 252 more: the most; one more is too long. */
	char src[300];
	memset(src, 'a', sizeof(src));
	memcpy(src, "pod/", 4);
	src[252] = '\0';
	assert_null(agent_share_split(src, t, d));
	assert_int_equal(strlen(d), 248);
	src[252] = 'a';
	src[253] = '\0';
	const char *why = agent_share_split(src, t, d);
	assert_non_null(why);
	assert_non_null(strstr(why, "longer than 255"));
}

/* ---- rootfs_find_device -------------------------------------------------- */

static void find_device_by_path(void **state)
{
	struct husk_error e = {0};
	char out[64];
	assert_int_equal(rootfs_find_device("/dev/null", out, sizeof(out), &e),
	                 0);
	assert_string_equal(out, "/dev/null");
	assert_int_equal(
	    rootfs_find_device("/dev/husk-none", out, sizeof(out), &e),
	    -ENOENT);
	assert_non_null(strstr(e.msg, "/dev/husk-none"));
	assert_int_equal(rootfs_find_device("/dev/null", out, 5, &e),
	                 -ENAMETOOLONG);
	assert_int_equal(rootfs_find_device("vda", out, sizeof(out), &e),
	                 -EINVAL);
	assert_int_equal(rootfs_find_device("serial:", out, sizeof(out), &e),
	                 -EINVAL);
	assert_int_equal(rootfs_find_device("serial:123456789012345678901", out,
	                                    sizeof(out), &e),
	                 -EINVAL);
	assert_int_equal(
	    rootfs_find_device("serial:husk-no-such", out, sizeof(out), &e),
	    -ENOENT);
	assert_non_null(strstr(e.msg, "husk-no-such"));
}

static void fake_disk(const struct world *w, const char *disk,
                      const char *serial)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/sys/%s", w->tmp, disk);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/sys/%s/serial", w->tmp, disk);
	write_text(path, serial);
}

static void find_device_by_serial(void **state)
{
	struct world *w = *state;
	struct husk_error e = {0};
	char sys[PATH_MAX], dev[PATH_MAX], path[PATH_MAX], out[PATH_MAX];
	sub(sys, sizeof(sys), w->tmp, "sys");
	sub(dev, sizeof(dev), w->tmp, "dev");
	assert_int_equal(mkdir(sys, 0755), 0);
	assert_int_equal(mkdir(dev, 0755), 0);
	fake_disk(w, "vda", "other");
	fake_disk(w, "vdb", "image-1\n");
	fake_disk(w, "loop0", "image-2");
	fake_disk(w, "vdc", "image-2");
	fake_disk(w, "vdd", "12345678901234567890");
	sub(path, sizeof(path), dev, "vdb");
	write_text(path, "");
	sub(path, sizeof(path), dev, "vdd");
	write_text(path, "");
	assert_int_equal(rootfs_find_device_in(sys, dev, "serial:image-1", out,
	                                       sizeof(out), &e),
	                 0);
	sub(path, sizeof(path), dev, "vdb");
	assert_string_equal(out, path);
	assert_int_equal(rootfs_find_device_in(sys, dev,
	                                       "serial:12345678901234567890",
	                                       out, sizeof(out), &e),
	                 0);
	sub(path, sizeof(path), dev, "vdd");
	assert_string_equal(out, path);
	/* Found in sysfs, but no node under /dev. */
	assert_int_equal(rootfs_find_device_in(sys, dev, "serial:image-2", out,
	                                       sizeof(out), &e),
	                 -ENOENT);
	assert_non_null(strstr(e.msg, "devtmpfs"));
	assert_int_equal(rootfs_find_device_in(sys, dev, "serial:image", out,
	                                       sizeof(out), &e),
	                 -ENOENT);
	assert_non_null(strstr(e.msg, "no virtio disk"));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(overlay_root),
	    T(readonly_root),
	    T(erofs_disk_root),
	    T(ext4_disk_root),
	    T(empty_overlay_root_gets_mount_points),
	    T(empty_readonly_root_fails_clearly),
	    T(symlinked_proc_is_refused),
	    T(hostile_etc_symlinks_stay_inside),
	    T(pivot_through_rebind),
	    T(prepare_failure_leaves_nothing),
	    T(bad_ids_are_refused),
	    T(release_of_unknown_is_fine),
	    T(bind_rw_volume),
	    T(bind_ro_volume_and_file),
	    T(tmpfs_volumes),
	    T(volumes_on_a_readonly_root),
	    T(symlinked_destinations_stay_inside),
	    T(dangling_symlinked_destination_is_refused),
	    T(missing_9p_share_is_named),
	    T(share_dir_volumes),
	    T(share_dir_volume_through_a_link_is_refused),
	    T(share_dir_binds_read_only_and_beneath),
	    T(share_root_is_refused_on_the_host),
	    cmocka_unit_test(share_specs_are_checked),
	    cmocka_unit_test(find_device_by_path),
	    T(find_device_by_serial),
	};
#undef T
	if (geteuid() != 0) {
		printf("1..0 # skip test_agent_rootfs needs root (mounts)\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
