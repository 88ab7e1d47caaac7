/* The supervisor's control socket: SOCK_SEQPACKET, so that each request
 * and reply is one message and descriptors (an exec's stdio) travel with
 * the request they belong to. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "husk/io.h"
#include "rt.h"

#define MAX_FDS 3

int rt_ctl_connect(const char *id, struct husk_error *err)
{
	char dir[PATH_MAX];
	if (rt_state_dir(id, dir, sizeof(dir), err) < 0)
		return -err->code;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	/* The path may be longer than sun_path: connect through the
	 * directory instead. */
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return husk_err(err, ENOENT, "container %s does not exist", id);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dfd,
	         RT_CTL_SOCKET);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		close(dfd);
		return husk_err_errno(err, errno, "socket");
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		close(dfd);
		return husk_err(err, ESRCH,
		                "container %s is not running (its supervisor "
		                "does not answer: %s)",
		                id, strerror(e));
	}
	close(dfd);
	return fd;
}

int rt_ctl_send(int fd, const char *json, const int *fds, int nfds)
{
	struct iovec iov = {.iov_base = (void *)json, .iov_len = strlen(json)};
	union {
		char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	if (nfds > 0 && nfds <= MAX_FDS) {
		msg.msg_control = u.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	ssize_t n;
	do
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : 0;
}

ssize_t rt_ctl_recv(int fd, char *buf, size_t cap, int *fds, int *nfds)
{
	struct iovec iov = {.iov_base = buf, .iov_len = cap - 1};
	union {
		char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov,
	                     .msg_iovlen = 1,
	                     .msg_control = u.buf,
	                     .msg_controllen = sizeof(u.buf)};
	int want = nfds ? *nfds : 0;
	if (nfds)
		*nfds = 0;
	ssize_t n;
	do
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c;
	     c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int got = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		int *in = (int *)CMSG_DATA(c);
		for (int i = 0; i < got; i++) {
			if (nfds && *nfds < want)
				fds[(*nfds)++] = in[i];
			else
				close(in[i]); /* more than asked for */
		}
	}
	if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		return -EMSGSIZE;
	return n;
}

int rt_ctl_call(const char *id, const char *json, char *reply, size_t cap,
                struct husk_error *err)
{
	int fd = rt_ctl_connect(id, err);
	if (fd < 0)
		return fd;
	int rc = rt_ctl_send(fd, json, NULL, 0);
	ssize_t n = rc < 0 ? rc : rt_ctl_recv(fd, reply, cap, NULL, NULL);
	close(fd);
	if (n <= 0)
		return husk_err(err, ESRCH,
		                "container %s is not running (no answer from "
		                "its supervisor)",
		                id);
	json_object *o = json_tokener_parse(reply);
	json_object *e;
	if (o && json_object_object_get_ex(o, "error", &e)) {
		json_object *code;
		int c = json_object_object_get_ex(o, "errno", &code)
		            ? json_object_get_int(code)
		            : EINVAL;
		rc = husk_err(err, c > 0 ? c : EINVAL, "%s",
		              json_object_get_string(e));
	}
	json_object_put(o);
	return rc < 0 ? rc : 0;
}

bool rt_read_ready(int fd, char *msg, size_t cap)
{
	ssize_t n;
	size_t got = 0;
	while (got + 1 < cap && (n = read(fd, msg + got, cap - 1 - got)) > 0)
		got += (size_t)n;
	msg[got] = '\0';
	return !strcmp(msg, "OK");
}

void rt_report_ready(int fd, const struct husk_error *err)
{
	const char *msg = err ? err->msg : "OK";
	(void)husk_write_all(fd, msg, strlen(msg));
	close(fd);
}

int rt_listen_in(const char *dir, const char *name, int type, int backlog,
                 struct husk_error *err)
{
	/* bind by a relative name: the state path may be longer than
	 * sun_path allows */
	if (chdir(dir) < 0)
		return husk_err_errno(err, errno, "%s", dir);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", name);
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, backlog) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return husk_err_errno(err, e, "socket %s in %s", name, dir);
	}
	return fd;
}
