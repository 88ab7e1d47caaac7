/* See exec_tty.h. */
#include "exec_tty.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "container_store.h"
#include "husk/io.h"

int exec_tty_listen(struct exec_tty *t)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(t->dir, sizeof(t->dir), "%s/husk-tty-XXXXXX",
	         tmp && tmp[0] ? tmp : "/tmp");
	if (!mkdtemp(t->dir)) {
		fprintf(stderr, "husk exec: %s: %s\n", t->dir, strerror(errno));
		return -1;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(t->sock, sizeof(t->sock), "%s/console.sock", t->dir);
	if (strlen(t->sock) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "husk exec: TMPDIR is too long a path\n");
		rmdir(t->dir);
		return -1;
	}
	strcpy(sa.sun_path, t->sock);
	t->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (t->listen_fd < 0 ||
	    bind(t->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(t->listen_fd, 1) < 0) {
		fprintf(stderr, "husk exec: console socket: %s\n",
		        strerror(errno));
		if (t->listen_fd >= 0)
			close(t->listen_fd);
		unlink(t->sock);
		rmdir(t->dir);
		return -1;
	}
	return 0;
}

/* The master, as husk-runtime sends it: one message carrying the fd. */
static int receive_master(int listen_fd, pid_t child)
{
	for (;;) {
		struct pollfd p = {listen_fd, POLLIN, 0};
		if (poll(&p, 1, 100) > 0)
			break;
		if (waitpid(child, NULL, WNOHANG | WNOWAIT) == child)
			return -1; /* it failed before sending one */
	}
	int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0)
		return -1;
	char name[256];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = {name, sizeof(name)};
	struct msghdr m = {.msg_iov = &iov,
	                   .msg_iovlen = 1,
	                   .msg_control = u.buf,
	                   .msg_controllen = sizeof(u.buf)};
	ssize_t n = recvmsg(conn, &m, MSG_CMSG_CLOEXEC);
	close(conn);
	struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&m) : NULL;
	if (!c || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof(fd));
	return fd;
}

static void copy_size(int master)
{
	struct winsize ws;
	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 ||
	    ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
		ioctl(master, TIOCSWINSZ, &ws);
}

/* Until the master ends (the process and its terminal are gone). */
static void relay(int master, bool interactive)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGWINCH);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	bool in_open = interactive;
	char buf[16384];
	for (;;) {
		struct pollfd p[3] = {{master, POLLIN, 0},
		                      {in_open ? STDIN_FILENO : -1, POLLIN, 0},
		                      {sfd, POLLIN, 0}};
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[2].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si))
				;
			copy_size(master);
		}
		if (p[1].revents) {
			ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n <= 0 ||
			    husk_write_all(master, buf, (size_t)n) < 0)
				in_open = false;
		}
		if (p[0].revents) {
			ssize_t n = read(master, buf, sizeof(buf));
			if (n <= 0) /* EIO: the last slave closed */
				break;
			if (husk_write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
				break;
		}
	}
	if (sfd >= 0)
		close(sfd);
}

int exec_tty_run(struct exec_tty *t, const char *const *args, bool interactive)
{
	struct husk_error err = {0};
	/* a session of its own: the runtime makes the terminal its
	 * controlling one, so our resizes reach it as SIGWINCH */
	pid_t pid = ctr_runtime_spawn(args, -1, -1, -1, true, &err);
	int master = pid < 0 ? -1 : receive_master(t->listen_fd, pid);
	close(t->listen_fd);
	unlink(t->sock);
	rmdir(t->dir);
	if (pid < 0) {
		fprintf(stderr, "husk exec: %s\n", err.msg);
		return HUSK_EXIT_USAGE;
	}
	struct termios saved;
	bool raw = false;
	if (master >= 0) {
		copy_size(master);
		if (interactive && isatty(STDIN_FILENO) &&
		    tcgetattr(STDIN_FILENO, &saved) == 0) {
			struct termios r = saved;
			cfmakeraw(&r);
			raw = tcsetattr(STDIN_FILENO, TCSANOW, &r) == 0;
		}
		relay(master, interactive);
		close(master);
	}
	if (raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	int status = ctr_runtime_wait(pid, &err);
	return status == 255 ? 126 : status < 0 ? HUSK_EXIT_USAGE : status;
}
