/* Starting container processes; see process.h. */
#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cgroup.h"
#include "confine.h"
#include "rootfs.h"

extern char **environ;

enum report_kind {
	REPORT_READY = 1, /* set up; a PTY master may ride along */
	REPORT_SETUP = 2, /* set-up failed: code is a positive errno */
	REPORT_EXEC = 3,  /* execve failed: code is its errno */
};

struct report {
	int32_t kind;
	int32_t code;
	char msg[480];
};

static int self_pidns = -1;

int agent_spawn_init_self(struct husk_error *err)
{
	self_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	if (self_pidns < 0)
		return husk_err_errno(err, errno, "open /proc/self/ns/pid");
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void agent_spawn_close(struct agent_spawn *s)
{
	close_fd(&s->start_fd);
	close_fd(&s->report_fd);
	close_fd(&s->stdin_fd);
	close_fd(&s->stdout_fd);
	close_fd(&s->stderr_fd);
}

/* ---- in the child ---- */

/* The child's end of the report socket; everything the child says goes
 * through here, so a failure is never silent. */
static int child_report_fd = -1;

static void send_report(int kind, int code, int fd, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void send_report(int kind, int code, int fd, const char *fmt, ...)
{
	struct report r = {.kind = kind, .code = code};
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r.msg, sizeof(r.msg), fmt, ap);
	va_end(ap);
	struct iovec iov = {.iov_base = &r, .iov_len = sizeof(r)};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		m.msg_control = ctl.buf;
		m.msg_controllen = sizeof(ctl.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	while (sendmsg(child_report_fd, &m, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

static __attribute__((noreturn)) void child_fail(const struct husk_error *e)
{
	send_report(REPORT_SETUP, e->code ? e->code : EIO, -1, "%s", e->msg);
	_exit(AGENT_EXIT_SETUP);
}

/* mkdir -p, as Docker creates a missing working directory. */
static int make_dirs(const char *path, struct husk_error *err)
{
	char buf[4096];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return husk_err(err, ENAMETOOLONG,
		                "working directory too long");
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(buf, 0755) < 0 && errno != EEXIST)
				return husk_err_errno(
				    err, errno, "create working directory %s",
				    buf);
			*p = c;
			if (c == '\0')
				break;
		}
	}
	return 0;
}

/* Opens a PTY in the container's own devpts (so `tty` names a
 * /dev/pts device the container sees), makes it the controlling terminal
 * of a new session and stdio; returns the master for the agent. */
static int child_pty(const struct agent_proc_cfg *p, struct husk_error *err)
{
	int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return husk_err_errno(err, errno, "open /dev/ptmx");
	int unlock = 0;
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		return husk_err_errno(err, errno, "unlock the PTY");
	int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
	if (slave < 0)
		return husk_err_errno(err, errno, "open the PTY's terminal");
	if (p->rows && p->cols) {
		struct winsize ws = {.ws_row = (unsigned short)p->rows,
		                     .ws_col = (unsigned short)p->cols};
		ioctl(slave, TIOCSWINSZ, &ws);
	}
	if (setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) < 0)
		return husk_err_errno(err, errno, "make the PTY the terminal");
	for (int fd = 0; fd < 3; fd++) {
		if (dup2(slave, fd) < 0)
			return husk_err_errno(err, errno, "dup2 the PTY");
	}
	if (slave > 2)
		close(slave);
	return master;
}

static void child_pipes(const int in[2], const int out[2], const int errp[2])
{
	setsid();
	dup2(in[0], 0);
	dup2(out[1], 1);
	dup2(errp[1], 2);
}

static void set_env_default(char ***envp, const char *key, const char *value)
{
	size_t klen = strlen(key), n = 0;
	for (char **e = *envp; e && *e; e++, n++) {
		if (!strncmp(*e, key, klen) && (*e)[klen] == '=')
			return;
	}
	char **grown = realloc(*envp, (n + 2) * sizeof(char *));
	char *kv = malloc(klen + strlen(value) + 2);
	if (!grown || !kv) {
		free(kv);
		if (grown)
			*envp = grown;
		return;
	}
	sprintf(kv, "%s=%s", key, value);
	grown[n] = kv;
	grown[n + 1] = NULL;
	*envp = grown;
}

static __attribute__((noreturn)) void child_exec(const struct agent_proc_cfg *p,
                                                 const char *home)
{
	/* execvp searches the PATH of environ, which must be the
	 * container's, not the agent's. */
	size_t n = 0;
	while (p->env && p->env[n])
		n++;
	char **env = calloc(n + 1, sizeof(char *));
	if (!env) {
		send_report(REPORT_SETUP, ENOMEM, -1, "out of memory");
		_exit(AGENT_EXIT_SETUP);
	}
	for (size_t i = 0; i < n; i++)
		env[i] = p->env[i];
	set_env_default(&env, "PATH",
	                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
	                "/sbin:/bin");
	char host[65] = "";
	gethostname(host, sizeof(host) - 1);
	set_env_default(&env, "HOSTNAME", host);
	set_env_default(&env, "HOME", home[0] ? home : "/");
	if (p->tty)
		set_env_default(&env, "TERM", "xterm");
	environ = env;
	execvp(p->argv[0], p->argv);
	int e = errno;
	if (e == ENOENT && !strchr(p->argv[0], '/'))
		send_report(REPORT_EXEC, e, -1,
		            "exec: \"%s\": executable file not found in $PATH",
		            p->argv[0]);
	else
		send_report(REPORT_EXEC, e, -1, "exec: \"%s\": %s", p->argv[0],
		            strerror(e));
	_exit(e == ENOENT ? AGENT_EXIT_NOTFOUND : AGENT_EXIT_NOEXEC);
}

/* The part both kinds of process share, once inside the container's
 * mount namespace: stdio, user, working directory; then READY. */
static void child_setup(const struct agent_proc_cfg *p, const int in[2],
                        const int out[2], const int errp[2],
                        struct agent_user_cfg *user, char *home,
                        size_t home_cap)
{
	struct husk_error e = {0};
	int master = -1;
	if (p->tty) {
		master = child_pty(p, &e);
		if (master < 0)
			child_fail(&e);
	} else {
		child_pipes(in, out, errp);
	}
	*user = p->user;
	if (confine_resolve_user("/", user, home, home_cap, &e) < 0)
		child_fail(&e);
	const char *cwd = p->cwd[0] ? p->cwd : "/";
	if (chdir(cwd) < 0) {
		if (errno != ENOENT || make_dirs(cwd, &e) < 0 ||
		    chdir(cwd) < 0) {
			if (!e.code)
				husk_err_errno(&e, errno, "chdir to %s", cwd);
			child_fail(&e);
		}
	}
	send_report(REPORT_READY, 0, master, "ready");
	if (master >= 0)
		close(master);
}

static void child_confine_and_exec(const struct agent_proc_cfg *p,
                                   const struct agent_user_cfg *user,
                                   const char *home)
{
	struct husk_error e = {0};
	if (confine_apply(user, false, &e) < 0)
		child_fail(&e);
	child_exec(p, home);
}

/* ---- in the agent ---- */

struct pipes {
	int in[2], out[2], err[2], report[2], start[2];
};

static void close_pair(int p[2])
{
	close_fd(&p[0]);
	close_fd(&p[1]);
}

static void pipes_close(struct pipes *pp)
{
	close_pair(pp->in);
	close_pair(pp->out);
	close_pair(pp->err);
	close_pair(pp->report);
	close_pair(pp->start);
}

static int pipes_open(struct pipes *pp, bool tty, bool start,
                      struct husk_error *err)
{
	for (int *p = &pp->in[0]; p <= &pp->start[1]; p++)
		*p = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pp->report) <
	    0)
		goto fail;
	if (start && pipe2(pp->start, O_CLOEXEC) < 0)
		goto fail;
	if (!tty &&
	    (pipe2(pp->in, O_CLOEXEC) < 0 || pipe2(pp->out, O_CLOEXEC) < 0 ||
	     pipe2(pp->err, O_CLOEXEC) < 0))
		goto fail;
	return 0;
fail:;
	int e = errno;
	pipes_close(pp);
	return husk_err_errno(err, e, "create the process's pipes");
}

/* Reads the child's first report: READY (and its PTY master) or a
 * failure message. */
static int read_report(int fd, int timeout_ms, struct report *r, int *pty,
                       struct husk_error *err)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	int rc;
	do
		rc = poll(&pfd, 1, timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc == 0)
		return husk_err(err, ETIMEDOUT,
		                "the container process did not report in %d ms",
		                timeout_ms);
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = r, .iov_len = sizeof(*r)};
	struct msghdr m = {.msg_iov = &iov,
	                   .msg_iovlen = 1,
	                   .msg_control = ctl.buf,
	                   .msg_controllen = sizeof(ctl.buf)};
	ssize_t n;
	do
		n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return husk_err_errno(err, errno, "read the process's report");
	if (n == 0)
		return 0; /* EOF: exec'd */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int))) {
			int fd_in;
			memcpy(&fd_in, CMSG_DATA(c), sizeof(int));
			if (pty && *pty < 0)
				*pty = fd_in;
			else
				close(fd_in);
		}
	}
	if (n != (ssize_t)sizeof(*r) || (m.msg_flags & MSG_TRUNC))
		return husk_err(err, EPROTO,
		                "malformed report from the process");
	r->msg[sizeof(r->msg) - 1] = '\0';
	return 1;
}

/* Waits for READY; on failure reaps the child and returns its message. */
static int await_ready(struct agent_spawn *s, bool tty, struct husk_error *err)
{
	struct report r;
	int pty = -1;
	int rc = read_report(s->report_fd, 30000, &r, &pty, err);
	if (rc == 1 && r.kind == REPORT_READY) {
		if (tty) {
			if (pty < 0) {
				rc = husk_err(err, EPROTO,
				              "no PTY from the process");
				goto fail;
			}
			s->stdout_fd = pty;
			s->stdin_fd = fcntl(pty, F_DUPFD_CLOEXEC, 3);
			if (s->stdin_fd < 0) {
				rc = husk_err_errno(err, errno, "dup the PTY");
				goto fail;
			}
		}
		return 0;
	}
	if (pty >= 0)
		close(pty);
	if (rc == 1)
		rc = husk_err(err, r.code > 0 && r.code < 4096 ? r.code : EIO,
		              "%s", r.msg);
	else if (rc == 0)
		rc = husk_err(err, EIO,
		              "the container process ended during set-up");
fail:
	kill(s->pid, SIGKILL);
	while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
		;
	s->pid = -1;
	agent_spawn_close(s);
	return rc;
}

int agent_spawn_wait_exec(struct agent_spawn *s, int timeout_ms,
                          struct husk_error *err)
{
	struct report r;
	int rc = read_report(s->report_fd, timeout_ms, &r, NULL, err);
	close_fd(&s->report_fd);
	if (rc <= 0)
		return rc;
	return husk_err(err, r.code > 0 && r.code < 4096 ? r.code : EIO, "%s",
	                r.msg);
}

static void keep_parent_ends(struct agent_spawn *s, struct pipes *pp)
{
	s->report_fd = pp->report[0];
	pp->report[0] = -1;
	s->start_fd = pp->start[1];
	pp->start[1] = -1;
	s->stdin_fd = pp->in[1];
	pp->in[1] = -1;
	s->stdout_fd = pp->out[0];
	pp->out[0] = -1;
	s->stderr_fd = pp->err[0];
	pp->err[0] = -1;
	pipes_close(pp);
}

/* The agent shields itself from the OOM killer; its containers must not
 * inherit that, or a container over its memory limit could not be
 * killed at all. */
static void child_oom_score(void)
{
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		(void)!write(fd, "0", 1);
		close(fd);
	}
}

static void child_common_start(struct pipes *pp)
{
	child_oom_score();
	/* The agent's death must not leave a container half set up. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	child_report_fd = pp->report[1];
	signal(SIGPIPE, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static int open_ns(pid_t pid, const char *name, struct husk_error *err);

/* A raw clone: fork's semantics plus the new namespaces. Without
 * pidns_fd the child is PID 1 of a new PID namespace. With it, the child
 * is born in that namespace (a pod's shared one): setns(CLONE_NEWPID)
 * moves only the caller's future children, so the agent switches, clones
 * and switches back, and the child stays the agent's own to reap, as
 * agent_spawn_exec does. */
static pid_t clone_init(int pidns_fd, const char *pidns_of,
                        struct husk_error *err)
{
	unsigned long flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC;
	if (pidns_fd < 0) {
		pid_t pid =
		    (pid_t)syscall(SYS_clone, flags | CLONE_NEWPID | SIGCHLD,
		                   NULL, NULL, NULL, 0);
		if (pid < 0)
			return husk_err_errno(err, errno,
			                      "clone the container's process");
		return pid;
	}
	if (self_pidns < 0)
		return husk_err(err, EINVAL,
		                "agent_spawn_init_self was not called");
	if (setns(pidns_fd, CLONE_NEWPID) < 0)
		return husk_err_errno(err, errno,
		                      "enter the PID namespace of container %s",
		                      pidns_of);
	pid_t pid =
	    (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);
	int e = errno;
	if (pid != 0 && setns(self_pidns, CLONE_NEWPID) < 0) {
		/* Cannot happen short of a kernel bug; every later child
		 * would be born in the wrong namespace. */
		e = errno;
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		return husk_err_errno(err, e,
		                      "return to the agent's namespace");
	}
	/* A namespace whose first process has ended takes no new ones. */
	if (pid < 0 && e == ENOMEM)
		return husk_err(err, ESRCH, "container %s is not running",
		                pidns_of);
	if (pid < 0)
		return husk_err_errno(err, e, "clone the container's process");
	return pid;
}

int agent_spawn_init(const struct agent_env *env,
                     const struct agent_container_cfg *c, const char *root,
                     pid_t pidns_of, const struct agent_proc_cfg *p,
                     struct agent_spawn *out, struct husk_error *err)
{
	struct pipes pp;
	*out = (struct agent_spawn){.pid = -1,
	                            .start_fd = -1,
	                            .report_fd = -1,
	                            .stdin_fd = -1,
	                            .stdout_fd = -1,
	                            .stderr_fd = -1};
	int pidns_fd = -1;
	if (pidns_of > 0 && (pidns_fd = open_ns(pidns_of, "pid", err)) < 0)
		return pidns_fd;
	int rc = pipes_open(&pp, p->tty, true, err);
	if (rc < 0) {
		if (pidns_fd >= 0)
			close(pidns_fd);
		return rc;
	}
	pid_t pid = clone_init(pidns_fd, c->pid_ns_of, err);
	if (pidns_fd >= 0)
		close(pidns_fd);
	if (pid < 0) {
		pipes_close(&pp);
		return pid;
	}
	if (pid == 0) {
		child_common_start(&pp);
		struct husk_error e = {0};
		/* Join the container's cgroup, then make it the root of a
		 * cgroup namespace of its own (Docker's cgroupns=private), so
		 * the container's /sys/fs/cgroup shows its own limits. */
		if (cgroup_attach(env, c->id, 0, &e) < 0)
			child_fail(&e);
		if (unshare(CLONE_NEWCGROUP) < 0) {
			husk_err_errno(&e, errno,
			               "unshare the cgroup namespace");
			child_fail(&e);
		}
		if (rootfs_enter(env, c, root, &e) < 0)
			child_fail(&e);
		struct agent_user_cfg user;
		char home[4096] = "";
		child_setup(p, pp.in, pp.out, pp.err, &user, home,
		            sizeof(home));
		char go;
		if (read(pp.start[0], &go, 1) != 1)
			_exit(AGENT_EXIT_SETUP); /* the agent gave up on it */
		child_confine_and_exec(p, &user, home);
	}
	out->pid = pid;
	keep_parent_ends(out, &pp);
	return await_ready(out, p->tty, err);
}

static int open_ns(pid_t pid, const char *name, struct husk_error *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return husk_err_errno(err, errno, "open %s", path);
	return fd;
}

int agent_spawn_exec(const struct agent_env *env, const char *container_id,
                     pid_t init_pid, const struct agent_proc_cfg *p,
                     struct agent_spawn *out, struct husk_error *err)
{
	*out = (struct agent_spawn){.pid = -1,
	                            .start_fd = -1,
	                            .report_fd = -1,
	                            .stdin_fd = -1,
	                            .stdout_fd = -1,
	                            .stderr_fd = -1};
	if (self_pidns < 0)
		return husk_err(err, EINVAL,
		                "agent_spawn_init_self was not called");
	int ns[5] = {-1, -1, -1, -1, -1};
	static const char *const names[5] = {"pid", "ipc", "uts", "cgroup",
	                                     "mnt"};
	int rc = 0;
	for (int i = 0; i < 5 && rc >= 0; i++)
		rc = ns[i] = open_ns(init_pid, names[i], err);
	struct pipes pp;
	if (rc >= 0)
		rc = pipes_open(&pp, p->tty, false, err);
	if (rc < 0) {
		for (int i = 0; i < 5; i++)
			if (ns[i] >= 0)
				close(ns[i]);
		return rc;
	}
	/* setns(CLONE_NEWPID) only moves our future children, so the agent
	 * switches, forks, and switches back: the process is the agent's
	 * own child (it reaps it) and PID n of the container. */
	pid_t pid = -1;
	int e = 0;
	if (setns(ns[0], CLONE_NEWPID) < 0) {
		e = errno;
	} else {
		pid = fork();
		if (pid < 0)
			e = errno;
		if (pid != 0 && setns(self_pidns, CLONE_NEWPID) < 0 && pid > 0)
			e = errno; /* cannot happen short of a kernel bug */
	}
	if (pid == 0) {
		child_common_start(&pp);
		struct husk_error ce = {0};
		/* Join the cgroup while the agent's /sys/fs/cgroup is still
		 * in view, and before anything runs in the container. */
		if (cgroup_attach(env, container_id, 0, &ce) < 0)
			child_fail(&ce);
		for (int i = 1; i < 5; i++) {
			if (setns(ns[i], 0) < 0) {
				husk_err_errno(&ce, errno,
				               "enter the %s namespace",
				               names[i]);
				child_fail(&ce);
			}
		}
		struct agent_user_cfg user;
		char home[4096] = "";
		child_setup(p, pp.in, pp.out, pp.err, &user, home,
		            sizeof(home));
		child_confine_and_exec(p, &user, home);
	}
	for (int i = 0; i < 5; i++)
		close(ns[i]);
	if (pid < 0 || e) {
		pipes_close(&pp);
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		return husk_err_errno(err, e, "fork into the container");
	}
	out->pid = pid;
	keep_parent_ends(out, &pp);
	return await_ready(out, p->tty, err);
}
