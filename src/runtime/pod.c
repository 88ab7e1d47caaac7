/* Joining a pod (see pod.h): finding or starting its daemon, and the
 * member's root file system in the pod's share. */
#include "pod.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rt.h"

static int pods_path(const char *pod, const char *suffix, char *buf, size_t cap,
                     struct husk_error *err)
{
	if (!rt_id_valid(pod))
		return husk_err(err, EINVAL, "pod id '%s' is not valid", pod);
	int n = snprintf(buf, cap, "%s/.pods/%s%s", rt_g.root, pod, suffix);
	if (n < 0 || (size_t)n >= cap)
		return husk_err(err, ENAMETOOLONG, "--root %s is too long",
		                rt_g.root);
	return 0;
}

int rt_pod_dir(const char *pod, char *buf, size_t cap, struct husk_error *err)
{
	return pods_path(pod, "", buf, cap, err);
}

int rt_pod_lock(const char *pod, struct husk_error *err)
{
	char path[PATH_MAX], pods[PATH_MAX];
	if (pods_path(pod, ".lock", path, sizeof(path), err) < 0)
		return -1;
	snprintf(pods, sizeof(pods), "%s/.pods", rt_g.root);
	if (mkdir(pods, 0700) < 0 && errno != EEXIST)
		return husk_err_errno(err, errno, "%s", pods);
	/* The daemon removes the file as it ends, holding the lock: one
	 * who locked the removed file tries again with the new one. */
	for (;;) {
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return husk_err_errno(err, errno, "%s", path);
		int rc;
		while ((rc = flock(fd, LOCK_EX)) < 0 && errno == EINTR)
			;
		if (rc < 0) {
			int e = errno;
			close(fd);
			return husk_err_errno(err, e, "lock %s", path);
		}
		struct stat held, now;
		if (fstat(fd, &held) == 0 && stat(path, &now) == 0 &&
		    held.st_ino == now.st_ino && held.st_dev == now.st_dev)
			return fd;
		close(fd);
	}
}

void rt_pod_unlock(const char *pod, int lock, bool remove)
{
	char path[PATH_MAX];
	if (remove && pods_path(pod, ".lock", path, sizeof(path), NULL) == 0)
		unlink(path);
	close(lock);
}

static void unshare_one(const char *at)
{
	umount2(at, MNT_DETACH | UMOUNT_NOFOLLOW);
	rmdir(at);
}

void rt_pod_remove_dir(const char *dir)
{
	char share[PATH_MAX], entry[PATH_MAX * 2];
	snprintf(share, sizeof(share), "%s/share", dir);
	DIR *d = opendir(share);
	const struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(entry, sizeof(entry), "%s/%s", share, e->d_name);
		unshare_one(entry);
	}
	if (d)
		closedir(d);
	rt_remove_tree(dir);
}

/* Connects to DIR/pod.sock, whatever DIR's length. */
static int connect_pod(const char *dir)
{
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/pod.sock",
	         dfd);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = fd < 0 ? -errno : 0;
	if (!rc && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		rc = -errno;
	close(dfd);
	if (rc) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	return fd;
}

/* Forks the daemon twice removed (it is nobody's child that waits for
 * it: it outlives the member that started it) and waits for its word. */
static int start_daemon(const char *pod, const char *dir,
                        struct husk_error *err)
{
	rt_pod_remove_dir(dir); /* what a killed daemon left */
	char share[PATH_MAX + 8];
	snprintf(share, sizeof(share), "%s/share", dir);
	if (mkdir(dir, 0700) < 0 || mkdir(share, 0755) < 0)
		return husk_err_errno(err, errno, "%s", dir);
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return husk_err_errno(err, errno, "pipe");
	pid_t child = fork();
	if (child < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return husk_err_errno(err, e, "fork");
	}
	if (child == 0) {
		setsid();
		if (fork() != 0)
			_exit(0);
		/* nothing of the member's (its container's stdio above
		 * all) stays open in the daemon */
		char log[PATH_MAX + 16];
		snprintf(log, sizeof(log), "%s/daemon.log", dir);
		int nul = open("/dev/null", O_RDWR);
		int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(lfd >= 0 ? lfd : nul, 2);
		dup2(p[1], 3);
		syscall(SYS_close_range, 4, ~0U, 0);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL);
		_exit(rt_pod_daemon_main(pod, dir, 3));
	}
	close(p[1]);
	waitpid(child, NULL, 0);
	char msg[1024];
	bool ok = rt_read_ready(p[0], msg, sizeof(msg));
	close(p[0]);
	if (!ok)
		return husk_err(err, EIO, "%s",
		                msg[0] ? msg : "the pod daemon died starting");
	return 0;
}

int rt_pod_join(const char *pod, int *chan, struct husk_error *err)
{
	char dir[PATH_MAX];
	if (rt_pod_dir(pod, dir, sizeof(dir), err) < 0)
		return -err->code;
	int lock = rt_pod_lock(pod, err);
	if (lock < 0)
		return -err->code;
	int fd = connect_pod(dir);
	int rc = 0;
	if (fd < 0 && (rc = start_daemon(pod, dir, err)) >= 0 &&
	    (fd = connect_pod(dir)) < 0)
		rc = husk_err_errno(err, -fd, "connect to pod %s", pod);
	/* a pod that did not start has nothing left to lock */
	rt_pod_unlock(pod, lock, rc < 0);
	if (rc < 0)
		return rc;
	*chan = fd;
	return 0;
}

void rt_pod_member_name(pid_t sup_pid, uint64_t start, char *buf, size_t cap)
{
	snprintf(buf, cap, "c%d-%llu", (int)sup_pid, (unsigned long long)start);
}

int rt_pod_share(const char *pod, const char *name, const char *src,
                 bool readonly, char *device, size_t cap,
                 struct husk_error *err)
{
	char dir[PATH_MAX], at[PATH_MAX + 64];
	if (rt_pod_dir(pod, dir, sizeof(dir), err) < 0)
		return -err->code;
	snprintf(at, sizeof(at), "%s/share/%s", dir, name);
	unshare_one(at); /* a dead namesake's */
	if (mkdir(at, 0755) < 0)
		return husk_err_errno(err, errno, "%s", at);
	/* a read-only one is read-only on the host too: what the guest
	 * sends through the share cannot write to it */
	if (mount(src, at, NULL, MS_BIND, NULL) < 0 ||
	    (readonly && mount(NULL, at, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY,
	                       NULL) < 0)) {
		int e = errno;
		unshare_one(at);
		return husk_err_errno(err, e, "bind %s into pod %s", src, pod);
	}
	snprintf(device, cap, "%s/%s", RT_POD_SHARE_TAG, name);
	return 0;
}

void rt_pod_unshare_member(const char *pod, const char *name)
{
	char dir[PATH_MAX], share[PATH_MAX + 8], at[PATH_MAX * 2];
	if (rt_pod_dir(pod, dir, sizeof(dir), NULL) < 0)
		return;
	snprintf(share, sizeof(share), "%s/share", dir);
	size_t len = strlen(name);
	DIR *d = opendir(share);
	const struct dirent *e;
	while (d && (e = readdir(d))) {
		/* NAME itself (its root) and NAME-vN (its volumes) */
		if (strncmp(e->d_name, name, len) ||
		    (e->d_name[len] && strncmp(e->d_name + len, "-v", 2)))
			continue;
		snprintf(at, sizeof(at), "%s/%s", share, e->d_name);
		unshare_one(at);
	}
	if (d)
		closedir(d);
}

struct pidns_search {
	const char *pod;
	pid_t pid;
	char *id;
	bool found;
};

static bool is_pidns_member(const struct rt_state *st, void *arg)
{
	struct pidns_search *q = arg;
	if (st->pid != q->pid || strcmp(st->sandbox, q->pod) ||
	    (st->status != RT_RUNNING && st->status != RT_CREATED))
		return true;
	snprintf(q->id, 129, "%s", st->id);
	q->found = true;
	return false;
}

int rt_pod_pidns_member(const char *pod, const char *path, char *id,
                        struct husk_error *err)
{
	int pid = 0, end = 0;
	if (sscanf(path, "/proc/%d/ns/pid%n", &pid, &end) != 1 || pid <= 0 ||
	    path[end])
		return husk_err(err, EINVAL,
		                "PID namespace path %s: a VM can join only "
		                "/proc/PID/ns/pid of a container of its pod",
		                path);
	struct pidns_search q = {.pod = pod, .pid = pid, .id = id};
	rt_state_for_each(is_pidns_member, &q);
	if (!q.found)
		return husk_err(err, EINVAL,
		                "PID namespace path %s: process %d is not a "
		                "running container of pod %s",
		                path, pid, pod);
	return 0;
}
