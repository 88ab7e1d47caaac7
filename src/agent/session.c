/* The agent session's loop: poll the channel, the processes' stdio and
 * SIGCHLD; feed the decoder; write queued frames without blocking. */
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "rootfs.h"
#include "session_int.h"

#ifndef HUSK_VERSION
#define HUSK_VERSION "unknown"
#endif
#define PEER_NAME "husk-agent " HUSK_VERSION

int64_t session_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct proc *session_proc(struct session *s, uint32_t stream)
{
	if (stream == 0)
		return NULL;
	for (size_t i = 0; i < SESSION_MAX_PROCS; i++) {
		if (s->procs[i].used && s->procs[i].stream == stream)
			return &s->procs[i];
	}
	return NULL;
}

struct container *session_container(struct session *s, const char *id)
{
	for (size_t i = 0; i < SESSION_MAX_CONTAINERS; i++) {
		if (s->containers[i].used &&
		    !strcmp(s->containers[i].cfg.id, id))
			return &s->containers[i];
	}
	return NULL;
}

void session_release_container(struct session *s, struct container *ct)
{
	struct husk_error e = {0};
	/* Exec'd processes die with the PID namespace; make sure. */
	for (size_t i = 0; i < SESSION_MAX_PROCS; i++) {
		struct proc *p = &s->procs[i];
		if (p->used && p->ct == ct && !p->exited && p->pid > 0)
			kill(p->pid, SIGKILL);
	}
	if (cgroup_remove(s->env, ct->cfg.id, &e) < 0)
		fprintf(stderr, "husk-agent: %s\n", e.msg);
	if (rootfs_release(s->env, ct->cfg.id, &e) < 0)
		fprintf(stderr, "husk-agent: %s\n", e.msg);
	for (size_t i = 0; i < SESSION_MAX_PROCS; i++) {
		if (s->procs[i].used && s->procs[i].ct == ct)
			s->procs[i].ct = NULL;
	}
	memset(ct, 0, sizeof(*ct));
}

/* ---- sending ---- */

static int queued(struct session *s, struct husk_error *e, int rc)
{
	if (rc < 0)
		fprintf(stderr, "husk-agent: cannot encode a frame: %s\n",
		        e->msg);
	return rc;
}

int session_send_empty(struct session *s, unsigned type, unsigned flags,
                       uint32_t stream)
{
	struct husk_error e = {0};
	husk_proto_enc_begin(&s->out, type, flags, stream, &e);
	return queued(s, &e, husk_proto_enc_end(&s->out, &e));
}

static int send_error(struct session *s, uint32_t stream, unsigned request,
                      int code, const char *msg, bool exit_follows)
{
	struct husk_error e = {0};
	if (code <= 0 || code > 4095)
		code = EIO;
	husk_proto_enc_begin(&s->out, HUSK_FRAME_ERROR, 0, stream, &e);
	husk_proto_enc_u32(&s->out, HUSK_TAG_ERRNO, (uint32_t)code, &e);
	/* The message is for a person and may come from anywhere; the
	 * protocol caps it, so cut it rather than fail. */
	husk_proto_enc_strn(&s->out, HUSK_TAG_MESSAGE, msg, strnlen(msg, 1024),
	                    &e);
	if (request)
		husk_proto_enc_u32(&s->out, HUSK_TAG_REQUEST, request, &e);
	if (exit_follows)
		husk_proto_enc_bool(&s->out, HUSK_TAG_EXIT_FOLLOWS, true, &e);
	return queued(s, &e, husk_proto_enc_end(&s->out, &e));
}

int session_send_error(struct session *s, uint32_t stream, unsigned request,
                       int code, const char *msg)
{
	return send_error(s, stream, request, code, msg, false);
}

int session_send_error_exit_follows(struct session *s, uint32_t stream,
                                    unsigned request, int code, const char *msg)
{
	return send_error(s, stream, request, code, msg, true);
}

int session_send_fd_u32(struct session *s, unsigned type, uint32_t stream,
                        unsigned fd, unsigned tag2, uint32_t v2)
{
	struct husk_error e = {0};
	husk_proto_enc_begin(&s->out, type, 0, stream, &e);
	husk_proto_enc_u32(&s->out, HUSK_TAG_FD, fd, &e);
	if (tag2)
		husk_proto_enc_u32(&s->out, tag2, v2, &e);
	return queued(s, &e, husk_proto_enc_end(&s->out, &e));
}

/* Writes what is queued without blocking; 0 when all is out or the
 * channel is full, negative when the channel broke. */
static int flush(struct session *s)
{
	while (!s->chan_broken && s->out_sent < s->out.len) {
		ssize_t n = write(s->chan, s->out.buf + s->out_sent,
		                  s->out.len - s->out_sent);
		if (n > 0) {
			s->out_sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		s->chan_broken = true;
		return -EPIPE;
	}
	if (s->out_sent == s->out.len) {
		husk_proto_enc_reset(&s->out);
		s->out_sent = 0;
	}
	return s->chan_broken ? -EPIPE : 0;
}

/* Best effort before the session ends: give queued frames (an ERROR, a
 * SHUTDOWN reply) up to a second to leave. */
static void drain(struct session *s)
{
	int64_t until = session_now_ms() + 1000;
	while (!s->chan_broken && s->out_sent < s->out.len &&
	       session_now_ms() < until) {
		if (flush(s) < 0)
			break;
		struct pollfd p = {.fd = s->chan, .events = POLLOUT};
		poll(&p, 1, 100);
	}
}

/* ---- receiving ---- */

static int on_input(struct session *s, struct husk_error *err)
{
	uint8_t buf[65536];
	ssize_t n = read(s->chan, buf, sizeof(buf));
	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN)
			return 0;
		return husk_err_errno(err, errno, "read from the host");
	}
	if (n == 0) {
		int rc = husk_proto_reader_eof(&s->reader, err);
		return rc < 0 ? rc
		              : husk_err(err, ECONNRESET, "the host went away");
	}
	size_t off = 0;
	while (off < (size_t)n && !s->done) {
		size_t used = 0;
		struct husk_frame f;
		int rc = husk_proto_reader_feed(
		    &s->reader, buf + off, (size_t)n - off, &used, &f, err);
		if (rc < 0) {
			session_send_error(s, 0, 0, -rc, err->msg);
			return rc;
		}
		off += used;
		if (rc == 1) {
			rc = session_dispatch(s, &f, err);
			if (rc < 0) {
				session_send_error(s, 0, 0, -rc, err->msg);
				return rc;
			}
		}
	}
	return 0;
}

static void on_signal(struct session *s)
{
	struct signalfd_siginfo si;
	while (read(s->sigfd, &si, sizeof(si)) == sizeof(si))
		;
	session_reap(s);
}

/* ---- the loop ---- */

enum { SLOT_CHAN, SLOT_SIG, SLOT_FIRST };

struct slot {
	struct proc *p;
	int what; /* 0 stdin, 1 stdout, 2 stderr */
};

static int poll_timeout(const struct session *s)
{
	if (!s->shutting_down)
		return -1;
	int64_t left = s->shutdown_deadline_ms - session_now_ms();
	return left < 0 ? 0 : (left > 100 ? 100 : (int)left);
}

static size_t add_proc_fds(struct session *s, struct pollfd *pfd,
                           struct slot *slot, size_t n)
{
	for (size_t i = 0; i < SESSION_MAX_PROCS; i++) {
		struct proc *p = &s->procs[i];
		if (!p->used)
			continue;
		for (int fd = 1; fd <= 2; fd++) {
			if (p->out[fd].fd >= 0 && !p->out[fd].eof &&
			    p->out[fd].credit > 0 && p->started) {
				pfd[n] =
				    (struct pollfd){p->out[fd].fd, POLLIN, 0};
				slot[n++] = (struct slot){p, fd};
			}
		}
		if (p->stdin_fd >= 0 && p->in_off < p->in_len) {
			pfd[n] = (struct pollfd){p->stdin_fd, POLLOUT, 0};
			slot[n++] = (struct slot){p, 0};
		}
	}
	return n;
}

static int loop_once(struct session *s, struct husk_error *err)
{
	struct pollfd pfd[SLOT_FIRST + 3 * SESSION_MAX_PROCS];
	struct slot slot[SLOT_FIRST + 3 * SESSION_MAX_PROCS];
	short chan_events = POLLIN;
	if (s->out_sent < s->out.len)
		chan_events |= POLLOUT;
	pfd[SLOT_CHAN] = (struct pollfd){s->chan, chan_events, 0};
	pfd[SLOT_SIG] = (struct pollfd){s->sigfd, POLLIN, 0};
	size_t n = add_proc_fds(s, pfd, slot, SLOT_FIRST);
	int rc = poll(pfd, n, poll_timeout(s));
	if (rc < 0 && errno != EINTR)
		return husk_err_errno(err, errno, "poll");
	if (rc <= 0)
		return 0;
	if (pfd[SLOT_SIG].revents)
		on_signal(s);
	for (size_t i = SLOT_FIRST; i < n; i++) {
		if (!pfd[i].revents || !slot[i].p->used)
			continue;
		if (slot[i].what == 0)
			rc = session_stdin_flush(s, slot[i].p);
		else
			rc = session_output(s, slot[i].p,
			                    (unsigned)slot[i].what);
		if (rc < 0)
			return husk_err(err, -rc, "relaying stdio failed");
	}
	if (pfd[SLOT_CHAN].revents & (POLLIN | POLLHUP | POLLERR)) {
		rc = on_input(s, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int sigchld_fd(struct husk_error *err)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGPIPE);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return husk_err_errno(err, errno, "block SIGCHLD");
	sigdelset(&set, SIGPIPE);
	int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return husk_err_errno(err, errno, "signalfd");
	return fd;
}

static void end_all(struct session *s)
{
	for (size_t i = 0; i < SESSION_MAX_PROCS; i++) {
		struct proc *p = &s->procs[i];
		if (p->used && !p->exited && p->pid > 0)
			kill(p->pid, SIGKILL);
	}
	for (size_t i = 0; i < SESSION_MAX_CONTAINERS; i++) {
		if (s->containers[i].used)
			session_release_container(s, &s->containers[i]);
	}
	for (size_t i = 0; i < SESSION_MAX_PROCS; i++) {
		if (s->procs[i].used)
			session_proc_free(s, &s->procs[i]);
	}
	session_reap(s);
}

int agent_serve(const struct agent_env *env, int chan, struct husk_error *err)
{
	struct session *s = calloc(1, sizeof(*s));
	if (!s)
		return husk_err(err, ENOMEM, "out of memory");
	s->env = env;
	s->chan = chan;
	husk_proto_reader_init(&s->reader, HUSK_SIDE_AGENT);
	husk_proto_enc_init_alloc(&s->out, HUSK_SIDE_AGENT);
	int rc = s->sigfd = sigchld_fd(err);
	if (rc >= 0) {
		int fl = fcntl(chan, F_GETFL);
		if (fl < 0 || fcntl(chan, F_SETFL, fl | O_NONBLOCK) < 0)
			rc = husk_err_errno(err, errno,
			                    "make the channel non-blocking");
	}
	if (rc >= 0)
		rc = husk_proto_enc_hello(&s->out, PEER_NAME, err);
	while (rc >= 0 && !s->done) {
		rc = flush(s);
		if (rc < 0) {
			husk_err(err, EPIPE, "the host channel broke");
			break;
		}
		rc = loop_once(s, err);
		if (rc >= 0 && s->shutting_down)
			rc = session_shutdown_step(s);
	}
	if (rc >= 0)
		rc = 0;
	drain(s);
	end_all(s);
	if (s->sigfd >= 0)
		close(s->sigfd);
	husk_proto_reader_free(&s->reader);
	husk_proto_enc_free(&s->out);
	free(s);
	return rc;
}
