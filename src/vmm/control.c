#include "control.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A client gets this long to send its command; the main loop must not
 * wait on a silent client for longer. */
#define CONTROL_READ_TIMEOUT_MS 1000

static void reply(int fd, const char *line)
{
	size_t len = strlen(line), done = 0;
	while (done < len) {
		ssize_t n = write(fd, line + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		done += (size_t)n;
	}
}

/* Reads one command line (at most 63 bytes) with a time limit. */
static int read_command(int fd, char *buf, size_t len)
{
	size_t got = 0;
	while (got < len - 1) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, CONTROL_READ_TIMEOUT_MS) <= 0)
			return -1;
		ssize_t n = read(fd, buf + got, len - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(buf, '\n', got))
			break;
	}
	buf[got] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

static void on_client(void *opaque, uint32_t events)
{
	struct control *c = opaque;
	(void)events;
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	char cmd[64];
	if (read_command(fd, cmd, sizeof(cmd)) == 0) {
		if (!strcmp(cmd, "state")) {
			char line[160];
			int running =
			    atomic_load(&c->vm->exit_reason) == VM_EXIT_RUNNING;
			snprintf(line, sizeof(line),
			         "{\"state\":\"%s\",\"cpus\":%d,"
			         "\"memory_mib\":%llu,\"devices\":%u}\n",
			         running ? "running" : "stopping", c->vm->ncpus,
			         (unsigned long long)c->memory_mib,
			         c->ndevices);
			reply(fd, line);
		} else if (!strcmp(cmd, "stop")) {
			reply(fd, "{\"ok\":true}\n");
			vm_request_exit(c->vm, VM_EXIT_STOPPED);
		} else {
			reply(fd, "{\"error\":\"unknown command\"}\n");
		}
	}
	close(fd);
}

int control_open(struct control *c, const char *path, struct vm *vm,
                 struct evloop *loop, struct husk_error *err)
{
	memset(c, 0, sizeof(*c));
	c->listen_fd = -1;
	c->vm = vm;
	c->loop = loop;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return husk_err(err, ENAMETOOLONG, "--control: path too long");
	strcpy(sa.sun_path, path);
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->listen_fd < 0)
		return husk_err_errno(err, errno, "--control: socket");
	unlink(path);
	if (bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(c->listen_fd, 4) < 0)
		return husk_err_errno(err, errno, "--control %s", path);
	c->path = strdup(path);
	if (evloop_watch(loop, c->listen_fd, EPOLLIN, on_client, c) < 0)
		return husk_err(err, ENOSPC, "--control: event loop full");
	return 0;
}

void control_close(struct control *c)
{
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	if (c->path) {
		unlink(c->path);
		free(c->path);
	}
	c->listen_fd = -1;
	c->path = NULL;
}
