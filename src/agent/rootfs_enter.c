/* husk-agent: the container's first process makes the prepared root its
 * "/" (what runc's rootfs_linux.go does, for the one layout husk uses).
 *
 * The image is not trusted: its /proc, /dev or /etc/hosts may be symlinks
 * aimed at the agent's files. Every path inside it is opened with
 * openat2(RESOLVE_IN_ROOT), which resolves ".." and absolute symlinks
 * against the root, and mounts go onto the opened file through
 * /proc/self/fd/N, never onto a path string the image could redirect. */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "rootfs.h"
#include "volume.h"

struct enter {
	int rootfd; /* the container's root, after binding it on itself */
	const struct agent_env *env;
	const struct agent_container_cfg *c;
	struct husk_error *err;
};

struct fd_path {
	char s[40];
};

static struct fd_path fd_path(int fd, const char *rel)
{
	struct fd_path p;
	snprintf(p.s, sizeof(p.s), "/proc/self/fd/%d%s%s", fd, rel ? "/" : "",
	         rel ? rel : "");
	return p;
}

/* Opens rel as if the container's root were "/"; magic links (such as
 * /proc/self/root) never count. Returns the fd or -errno. */
static int open_in_root(int rootfd, const char *rel, int flags,
                        uint64_t resolve)
{
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_CLOEXEC),
	    .resolve = resolve | RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

/* A top-level directory of the root to mount a kernel filesystem on:
 * created when missing, and never a symlink (a symlinked /proc would put
 * proc wherever the image likes). */
static int open_top_dir(struct enter *e, const char *name)
{
	if (mkdirat(e->rootfd, name, 0755) != 0 && errno != EEXIST) {
		if (errno == EROFS)
			return husk_err(e->err, EROFS,
			                "the read-only root has no /%s", name);
		return husk_err_errno(e->err, errno, "mkdir /%s in the root",
		                      name);
	}
	int fd = open_in_root(e->rootfd, name, O_PATH | O_DIRECTORY,
	                      RESOLVE_NO_SYMLINKS);
	if (fd < 0)
		return husk_err_errno(
		    e->err, -fd, "/%s in the root must be a directory", name);
	return fd;
}

static int mount_on_fd(struct enter *e, int fd, const char *what,
                       const char *src, const char *type, unsigned long flags,
                       const char *data)
{
	if (mount(src, fd_path(fd, NULL).s, type, flags, data) != 0)
		return husk_err_errno(e->err, errno, "mount %s on %s",
		                      type ? type : src, what);
	return 0;
}

static int mount_top(struct enter *e, const char *name, const char *type,
                     unsigned long flags, const char *data)
{
	int fd = open_top_dir(e, name);
	if (fd < 0)
		return fd;
	int r = mount_on_fd(e, fd, name, type, type, flags, data);
	close(fd);
	return r;
}

static int mount_proc(struct enter *e)
{
	return mount_top(e, "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	                 NULL);
}

static int mount_sys(struct enter *e)
{
	int r = mount_top(e, "sys", "sysfs",
	                  MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	if (r)
		return r;
	/* Only a cgroup2 agent can give the container one; a v1 or absent
	 * hierarchy is not an error. */
	struct statfs fs;
	if (statfs("/sys/fs/cgroup", &fs) != 0 ||
	    fs.f_type != CGROUP2_SUPER_MAGIC)
		return 0;
	int fd = open_in_root(e->rootfd, "sys/fs/cgroup", O_PATH | O_DIRECTORY,
	                      RESOLVE_NO_SYMLINKS);
	if (fd < 0)
		return 0;
	r = mount_on_fd(e, fd, "/sys/fs/cgroup", "cgroup2", "cgroup2",
	                MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	close(fd);
	return r;
}

/* ---- /dev ---------------------------------------------------------------- */

static int make_device(struct enter *e, int devfd, const char *name,
                       unsigned maj, unsigned min)
{
	if (mknodat(devfd, name, S_IFCHR | 0666, makedev(maj, min)) == 0) {
		/* mknod honours the umask. */
		if (fchmodat(devfd, name, 0666, 0) != 0)
			return husk_err_errno(e->err, errno, "chmod /dev/%s",
			                      name);
		return 0;
	}
	if (errno != EPERM)
		return husk_err_errno(e->err, errno, "mknod /dev/%s", name);
	/* Without CAP_MKNOD (a user namespace, say), the agent's own node
	 * bound on an empty file serves the same. */
	char src[64];
	snprintf(src, sizeof(src), "/dev/%s", name);
	int fd =
	    openat(devfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd < 0)
		return husk_err_errno(e->err, errno, "create /dev/%s", name);
	close(fd);
	if (mount(src, fd_path(devfd, name).s, NULL, MS_BIND, NULL) != 0)
		return husk_err_errno(e->err, errno, "bind %s", src);
	return 0;
}

static int make_devices(struct enter *e, int devfd)
{
	static const struct {
		const char *name;
		unsigned maj, min;
	} nodes[] = {
	    {"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
	    {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
	};
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		int r = make_device(e, devfd, nodes[i].name, nodes[i].maj,
		                    nodes[i].min);
		if (r)
			return r;
	}
	return 0;
}

static int make_links(struct enter *e, int devfd)
{
	static const char *const links[][2] = {
	    {"ptmx", "pts/ptmx"},          {"fd", "/proc/self/fd"},
	    {"stdin", "/proc/self/fd/0"},  {"stdout", "/proc/self/fd/1"},
	    {"stderr", "/proc/self/fd/2"}, {"core", "/proc/kcore"},
	};
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
		if (symlinkat(links[i][1], devfd, links[i][0]) != 0)
			return husk_err_errno(e->err, errno, "symlink /dev/%s",
			                      links[i][0]);
	return 0;
}

/* A directory in the fresh /dev tmpfs and a filesystem on it. */
static int mount_in_dev(struct enter *e, int devfd, const char *name,
                        const char *type, unsigned long flags, const char *data)
{
	if (mkdirat(devfd, name, 0755) != 0)
		return husk_err_errno(e->err, errno, "mkdir /dev/%s", name);
	if (mount(type, fd_path(devfd, name).s, type, flags, data) != 0)
		return husk_err_errno(e->err, errno, "mount %s on /dev/%s",
		                      type, name);
	return 0;
}

static int fill_dev(struct enter *e, int devfd)
{
	int r = make_devices(e, devfd);
	if (r)
		return r;
	/* A devpts of its own: the container sees only its own ptys. */
	r = mount_in_dev(e, devfd, "pts", "devpts", MS_NOSUID | MS_NOEXEC,
	                 "newinstance,ptmxmode=0666,mode=0620,gid=5");
	if (!r)
		r = mount_in_dev(e, devfd, "shm", "tmpfs",
		                 MS_NOSUID | MS_NODEV | MS_NOEXEC,
		                 "mode=1777,size=65536k");
	/* mqueue shows the IPC namespace of whoever mounts it: ours. */
	if (!r)
		r = mount_in_dev(e, devfd, "mqueue", "mqueue",
		                 MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	return r ? r : make_links(e, devfd);
}

static int mount_dev(struct enter *e)
{
	int r = mount_top(e, "dev", "tmpfs", MS_NOSUID | MS_STRICTATIME,
	                  "mode=755,size=65536k");
	if (r)
		return r;
	/* Reopen: the fd must name the new tmpfs, not what it covers. */
	int devfd = open_in_root(e->rootfd, "dev", O_PATH | O_DIRECTORY,
	                         RESOLVE_NO_SYMLINKS);
	if (devfd < 0)
		return husk_err_errno(e->err, -devfd, "open /dev in the root");
	r = fill_dev(e, devfd);
	close(devfd);
	return r;
}

/* ---- /etc/hostname, /etc/hosts, /etc/resolv.conf ------------------------ */

/* Makes etc/NAME a regular file in a writable root. A dangling symlink
 * there (resolv.conf -> ../run/systemd/...) is replaced: creating through
 * it could write outside the root. */
static int create_etc_file(struct enter *e, const char *name)
{
	if (mkdirat(e->rootfd, "etc", 0755) != 0 && errno != EEXIST)
		return husk_err_errno(e->err, errno, "mkdir /etc");
	int etcfd = open_in_root(e->rootfd, "etc", O_PATH | O_DIRECTORY, 0);
	if (etcfd < 0)
		return husk_err_errno(e->err, -etcfd, "open /etc in the root");
	struct stat st;
	int r = 0;
	if (fstatat(etcfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode) && unlinkat(etcfd, name, 0) != 0)
		r = husk_err_errno(e->err, errno, "remove /etc/%s", name);
	int fd =
	    r ? -1
	      : openat(etcfd, name,
	               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	               0644);
	if (!r && fd < 0)
		r = husk_err_errno(e->err, errno, "create /etc/%s", name);
	if (fd >= 0)
		close(fd);
	close(etcfd);
	return r;
}

static int bind_etc_file(struct enter *e, const char *name)
{
	char rel[32], src[4096];
	snprintf(rel, sizeof(rel), "etc/%s", name);
	int r =
	    rootfs_state_path(src, sizeof(src), e->env, e->c->id, rel, e->err);
	if (r)
		return r;
	int fd = open_in_root(e->rootfd, rel, O_PATH, 0);
	if (fd == -ENOENT) {
		/* A read-only root without the file simply goes without. */
		if (e->c->readonly_root)
			return 0;
		if ((r = create_etc_file(e, name)))
			return r;
		fd = open_in_root(e->rootfd, rel, O_PATH, 0);
	}
	if (fd < 0)
		return husk_err_errno(e->err, -fd, "open /%s in the root", rel);
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		r = husk_err(e->err, EINVAL, "/%s in the root is not a file",
		             rel);
	else if (mount(src, fd_path(fd, NULL).s, NULL, MS_BIND, NULL) != 0)
		r = husk_err_errno(e->err, errno, "bind %s on /%s", src, rel);
	close(fd);
	return r;
}

static int bind_etc(struct enter *e)
{
	static const char *const names[] = {"hostname", "hosts", "resolv.conf"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int r = bind_etc_file(e, names[i]);
		if (r)
			return r;
	}
	return 0;
}

/* ---- Docker's masked and read-only paths --------------------------------- */

static int mask_path(struct enter *e, const char *rel)
{
	int fd = open_in_root(e->rootfd, rel, O_PATH, RESOLVE_NO_SYMLINKS);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return husk_err_errno(e->err, -fd, "open /%s", rel);
	struct stat st;
	int r = 0;
	if (fstat(fd, &st) != 0)
		r = husk_err_errno(e->err, errno, "stat /%s", rel);
	else if (S_ISDIR(st.st_mode))
		r = mount_on_fd(e, fd, rel, "tmpfs", "tmpfs",
		                MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		                NULL);
	else {
		int nullfd = open_in_root(e->rootfd, "dev/null", O_PATH,
		                          RESOLVE_NO_SYMLINKS);
		if (nullfd < 0)
			r = husk_err_errno(e->err, -nullfd, "open /dev/null");
		else
			r = mount_on_fd(e, fd, rel, fd_path(nullfd, NULL).s,
			                NULL, MS_BIND, NULL);
		if (nullfd >= 0)
			close(nullfd);
	}
	close(fd);
	return r;
}

static int readonly_path(struct enter *e, const char *rel)
{
	int fd = open_in_root(e->rootfd, rel, O_PATH, RESOLVE_NO_SYMLINKS);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return husk_err_errno(e->err, -fd, "open /%s", rel);
	struct fd_path p = fd_path(fd, NULL);
	int r = mount_on_fd(e, fd, rel, p.s, NULL, MS_BIND | MS_REC, NULL);
	close(fd);
	if (r)
		return r;
	/* The old fd names what the bind now covers; reopen to reach the
	 * bind itself. */
	fd = open_in_root(e->rootfd, rel, O_PATH, RESOLVE_NO_SYMLINKS);
	if (fd < 0)
		return husk_err_errno(e->err, -fd, "reopen /%s", rel);
	r = rootfs_remount_ro(fd_path(fd, NULL).s, e->err);
	close(fd);
	return r;
}

static int protect_paths(struct enter *e)
{
	static const char *const masked[] = {
	    "proc/asound",
	    "proc/acpi",
	    "proc/kcore",
	    "proc/keys",
	    "proc/latency_stats",
	    "proc/timer_list",
	    "proc/timer_stats",
	    "proc/sched_debug",
	    "proc/scsi",
	    "sys/firmware",
	    "sys/devices/virtual/powercap",
	};
	static const char *const readonly[] = {
	    "proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger",
	};
	int r = 0;
	for (size_t i = 0; !r && i < sizeof(masked) / sizeof(masked[0]); i++)
		r = mask_path(e, masked[i]);
	for (size_t i = 0; !r && i < sizeof(readonly) / sizeof(readonly[0]);
	     i++)
		r = readonly_path(e, readonly[i]);
	return r;
}

/* ---- pivot_root ---------------------------------------------------------- */

/* Gives "/" a parent mount: binds it on spare, moves that over "/" and
 * chroots into it. Paths look the same afterwards. */
static int leave_initramfs(const char *spare, struct husk_error *err)
{
	if (mkdir(spare, 0700) != 0 && errno != EEXIST)
		return husk_err_errno(err, errno, "mkdir %s", spare);
	if (mount("/", spare, NULL, MS_BIND | MS_REC, NULL) != 0)
		return husk_err_errno(err, errno, "bind / on %s", spare);
	if (chdir(spare) != 0)
		return husk_err_errno(err, errno, "chdir %s", spare);
	if (mount(".", "/", NULL, MS_MOVE, NULL) != 0)
		return husk_err_errno(err, errno, "move %s over /", spare);
	if (chroot(".") != 0 || chdir("/") != 0)
		return husk_err_errno(err, errno, "chroot %s", spare);
	return 0;
}

int rootfs_pivot(const char *root, const char *spare, bool rebind_first,
                 struct husk_error *err)
{
	if (rebind_first) {
		int r = leave_initramfs(spare, err);
		if (r)
			return r;
	}
	if (chdir(root) != 0)
		return husk_err_errno(err, errno, "chdir %s", root);
	/* With new root and put_old both ".", the old root ends up stacked
	 * on the new one, where a lazy unmount of "." takes it away. */
	if (syscall(SYS_pivot_root, ".", ".") != 0) {
		int e = errno;
		if (e == EINVAL && !rebind_first && spare)
			return rootfs_pivot(root, spare, true, err);
		return husk_err_errno(err, e, "pivot_root to %s", root);
	}
	if (umount2(".", MNT_DETACH) != 0)
		return husk_err_errno(err, errno, "detach the old root");
	if (chdir("/") != 0)
		return husk_err_errno(err, errno, "chdir /");
	return 0;
}

/* ---- rootfs_enter -------------------------------------------------------- */

static int mount_volumes(struct enter *e)
{
	return agent_mount_volumes(e->env, e->rootfd, e->c, e->err);
}

/* Volumes come after /etc's files, so the agent never writes into one (a
 * volume on /etc hides them, as it hides the image's), and before the
 * masks, which stay on top of anything a volume could bring. */
static int set_up_root(struct enter *e)
{
	static int (*const steps[])(struct enter *) = {
	    mount_proc, mount_dev,     mount_sys,
	    bind_etc,   mount_volumes, protect_paths,
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		int r = steps[i](e);
		if (r)
			return r;
	}
	return 0;
}

int rootfs_enter(const struct agent_env *env,
                 const struct agent_container_cfg *c, const char *root,
                 struct husk_error *err)
{
	char hostname[65], spare[4096];
	int r = agent_check_id(c->id, err);
	if (r || (r = rootfs_hostname(c, hostname, err)) ||
	    (r = rootfs_state_path(spare, sizeof(spare), env, c->id, "host",
	                           err)))
		return r;
	/* Nothing done from here on may reach the agent's namespace. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		return husk_err_errno(err, errno, "make mounts private");
	if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) != 0)
		return husk_err_errno(err, errno, "bind %s on itself", root);
	struct enter e = {.env = env, .c = c, .err = err};
	e.rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (e.rootfd < 0)
		return husk_err_errno(err, errno, "open %s", root);
	r = set_up_root(&e);
	close(e.rootfd);
	if (r || (r = rootfs_pivot(root, spare, false, err)))
		return r;
	if (sethostname(hostname, strlen(hostname)) != 0)
		return husk_err_errno(err, errno, "sethostname %s", hostname);
	if (c->readonly_root)
		return rootfs_remount_ro("/", err);
	return 0;
}
