/* A many-process agent session; see husk/agent_mux.h.
 *
 * Output is written to the stream's descriptors with blocking writes
 * before its credit is returned, so a reader that stops reading stalls
 * only the agent's sending of that stream (the agent never blocks on us);
 * our own loop waits while such a write is pending, which is what the
 * descriptors' owner (containerd's FIFOs, a terminal) expects. */
#include "husk/agent_mux.h"
#include "husk/io.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#ifndef HUSK_VERSION
#define HUSK_VERSION "unknown"
#endif

int64_t husk_mux_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fail(struct husk_mux *m, struct husk_error *err)
{
	if (!m->failed) {
		m->failed = err->code ? err->code : EIO;
		m->fail = *err;
	}
	return -m->failed;
}

static int send_frame(struct husk_mux *m, struct husk_error *err)
{
	if (m->failed) {
		*err = m->fail;
		return -m->failed;
	}
	int rc = husk_proto_enc_end(&m->enc, err);
	if (rc < 0) {
		husk_proto_enc_reset(&m->enc);
		return rc; /* a request we would not send; the session is fine
		            */
	}
	rc = husk_write_all(m->chan, m->enc.buf, m->enc.len);
	husk_proto_enc_reset(&m->enc);
	if (rc < 0) {
		husk_err_errno(err, -rc, "write to the agent");
		return fail(m, err);
	}
	return 0;
}

struct husk_mux_stream *husk_mux_stream(struct husk_mux *m, uint32_t id)
{
	for (int i = 0; id && i < HUSK_MUX_MAX_STREAMS; i++)
		if (m->streams[i].id == id)
			return &m->streams[i];
	return NULL;
}

static void close_fds(struct husk_mux_stream *s)
{
	int fds[3] = {s->in_fd, s->out_fd, s->err_fd};
	for (int i = 0; i < 3; i++) {
		bool dup = false;
		for (int j = 0; j < i; j++)
			dup |= fds[j] == fds[i];
		if (fds[i] >= 0 && !dup)
			close(fds[i]);
	}
	s->in_fd = s->out_fd = s->err_fd = -1;
}

void husk_mux_release(struct husk_mux *m, uint32_t id)
{
	struct husk_mux_stream *s = husk_mux_stream(m, id);
	if (!s)
		return;
	close_fds(s);
	memset(s, 0, sizeof(*s));
	s->in_fd = s->out_fd = s->err_fd = -1;
}

int husk_mux_init(struct husk_mux *m, int chan, int timeout_ms,
                  struct husk_error *err)
{
	memset(m, 0, sizeof(*m));
	m->chan = chan;
	m->timeout_ms =
	    timeout_ms > 0 ? timeout_ms : HUSK_MUX_DEFAULT_TIMEOUT_MS;
	m->next_id = 1;
	m->cancel_fd = -1;
	for (int i = 0; i < HUSK_MUX_MAX_STREAMS; i++)
		m->streams[i].in_fd = m->streams[i].out_fd =
		    m->streams[i].err_fd = -1;
	husk_proto_reader_init(&m->reader, HUSK_SIDE_HOST);
	husk_proto_enc_init_alloc(&m->enc, HUSK_SIDE_HOST);
	int rc = husk_proto_enc_hello(&m->enc, "husk " HUSK_VERSION, err);
	if (rc < 0)
		return rc;
	rc = husk_write_all(chan, m->enc.buf, m->enc.len);
	husk_proto_enc_reset(&m->enc);
	if (rc < 0)
		return husk_err_errno(err, -rc, "write to the agent");
	return 0;
}

void husk_mux_free(struct husk_mux *m)
{
	for (int i = 0; i < HUSK_MUX_MAX_STREAMS; i++)
		close_fds(&m->streams[i]);
	if (m->chan >= 0)
		close(m->chan);
	m->chan = -1;
	husk_proto_reader_free(&m->reader);
	husk_proto_enc_free(&m->enc);
}

uint32_t husk_mux_new_stream(struct husk_mux *m)
{
	for (int i = 0; i < HUSK_MUX_MAX_STREAMS; i++) {
		struct husk_mux_stream *s = &m->streams[i];
		if (s->id)
			continue;
		/* Ids are not reused soon: a late frame for an old process
		 * must not land on a new one. */
		uint32_t id = m->next_id++;
		if (!m->next_id)
			m->next_id = 1;
		memset(s, 0, sizeof(*s));
		s->id = id;
		s->in_fd = s->out_fd = s->err_fd = -1;
		s->in_credit = HUSK_PROTO_INITIAL_CREDIT;
		s->out_given[1] = s->out_given[2] = HUSK_PROTO_INITIAL_CREDIT;
		return id;
	}
	return 0;
}

/* ---- frames from the agent ---- */

static int send_credit(struct husk_mux *m, uint32_t stream, unsigned fd,
                       uint32_t n, struct husk_error *err)
{
	husk_proto_enc_begin(&m->enc, HUSK_FRAME_CREDIT, 0, stream, err);
	husk_proto_enc_u32(&m->enc, HUSK_TAG_FD, fd, err);
	husk_proto_enc_u32(&m->enc, HUSK_TAG_CREDIT, n, err);
	return send_frame(m, err);
}

static int on_output(struct husk_mux *m, const struct husk_frame *f,
                     unsigned fd, struct husk_error *err)
{
	struct husk_mux_stream *s = husk_mux_stream(m, f->stream);
	if (!s || s->exited)
		return husk_err(err, EPROTO, "output on unknown stream %u",
		                f->stream);
	if (f->len > s->out_given[fd])
		return husk_err(err, EPROTO,
		                "the agent sent %u bytes beyond its credit",
		                f->len);
	s->out_given[fd] -= f->len;
	int dst = fd == HUSK_FD_STDOUT ? s->out_fd : s->err_fd;
	/* A reader that went away (EPIPE) costs the output, not the run. */
	if (dst >= 0)
		(void)husk_write_all(dst, f->payload, f->len);
	if (!f->len)
		return 0;
	s->out_given[fd] += f->len;
	return send_credit(m, f->stream, fd, f->len, err);
}

static int on_credit(struct husk_mux *m, const struct husk_frame *f,
                     struct husk_error *err)
{
	uint32_t fd, credit;
	if (husk_frame_u32(f, HUSK_TAG_FD, &fd, err) < 0 ||
	    husk_frame_u32(f, HUSK_TAG_CREDIT, &credit, err) < 0)
		return -err->code;
	struct husk_mux_stream *s = husk_mux_stream(m, f->stream);
	if (!s)
		return 0; /* for a stream we already let go */
	if (fd != HUSK_FD_STDIN)
		return husk_err(err, EPROTO, "credit for fd %u from the agent",
		                fd);
	if ((uint64_t)s->in_credit + credit > HUSK_PROTO_MAX_WINDOW)
		return husk_err(err, EPROTO, "stdin credit above the window");
	s->in_credit += credit;
	return 0;
}

static int on_exit_frame(struct husk_mux *m, const struct husk_frame *f,
                         struct husk_error *err)
{
	struct husk_mux_stream *s = husk_mux_stream(m, f->stream);
	if (!s || s->exited)
		return husk_err(err, EPROTO, "unexpected EXIT on stream %u",
		                f->stream);
	uint32_t code = 0, sig = 0;
	bool oom = false;
	if (husk_frame_u32(f, HUSK_TAG_EXIT_CODE, &code, err) < 0 ||
	    husk_frame_u32(f, HUSK_TAG_EXIT_SIGNAL, &sig, err) < 0 ||
	    husk_frame_bool(f, HUSK_TAG_OOM_KILLED, &oom, err) < 0)
		return -err->code;
	s->exit.exit_code = (int)code;
	s->exit.exit_signal = (int)sig;
	s->exit.oom_killed = oom;
	s->exited = true;
	/* Nothing more goes in; output is complete (CLOSE came first). */
	if (s->in_fd >= 0 && s->in_fd != s->out_fd && s->in_fd != s->err_fd)
		close(s->in_fd);
	s->in_fd = -1;
	return 0;
}

static int on_error(struct husk_mux *m, const struct husk_frame *f,
                    struct husk_error *err)
{
	uint32_t code = EIO, request = 0;
	char msg[1025] = "";
	husk_frame_u32(f, HUSK_TAG_ERRNO, &code, err);
	husk_frame_u32(f, HUSK_TAG_REQUEST, &request, err);
	husk_frame_str_buf(f, HUSK_TAG_MESSAGE, msg, sizeof(msg), err);
	if (request == 0)
		return husk_err(err, (int)code, "the agent: %s", msg);
	if (request == HUSK_FRAME_SIGNAL)
		m->signal_deadline = 0; /* the process had ended: answered */
	bool follows = false;
	husk_frame_bool(f, HUSK_TAG_EXIT_FOLLOWS, &follows, err);
	struct husk_mux_stream *s = husk_mux_stream(m, f->stream);
	if (follows && s && s->started && !s->exited) {
		/* exec failed: the process exists and its EXIT (126/127)
		 * follows, so the request counts as done. */
		snprintf(s->exit.start_error, sizeof(s->exit.start_error), "%s",
		         msg);
		if (request == m->want_type && f->stream == m->want_stream)
			m->got_reply = true, m->reply_rc = 0, m->reply_pid = 0;
		return 0;
	}
	if (request == m->want_type && f->stream == m->want_stream &&
	    !m->got_reply) {
		m->got_reply = true;
		m->reply_rc = husk_err(&m->reply_err, (int)code, "%s", msg);
		return 0;
	}
	/* SIGNAL or RESIZE after the process ended: nothing to do. */
	return 0;
}

static int on_reply(struct husk_mux *m, const struct husk_frame *f,
                    struct husk_error *err)
{
	if (f->type == HUSK_FRAME_SIGNAL)
		m->signal_deadline = 0;
	if (f->type == HUSK_FRAME_SHUTDOWN && f->stream == 0 &&
	    !(m->want_type == HUSK_FRAME_SHUTDOWN && !m->got_reply)) {
		m->shutdown_acked = true;
		return 0;
	}
	if (f->type == HUSK_FRAME_SIGNAL || f->type == HUSK_FRAME_RESIZE)
		return 0;
	if (f->type != m->want_type || f->stream != m->want_stream ||
	    m->got_reply)
		return husk_err(err, EPROTO, "unexpected %s reply",
		                husk_proto_type_name(f->type));
	m->got_reply = true;
	m->reply_rc = 0;
	m->reply_pid = 0;
	if (f->type == HUSK_FRAME_START || f->type == HUSK_FRAME_EXEC)
		if (husk_frame_u32(f, HUSK_TAG_PID, &m->reply_pid, err) < 0)
			return -err->code;
	return 0;
}

static int on_frame(struct husk_mux *m, const struct husk_frame *f,
                    struct husk_error *err)
{
	if (f->flags & HUSK_FRAME_REPLY)
		return on_reply(m, f, err);
	switch (f->type) {
	case HUSK_FRAME_HELLO:
		husk_frame_str_buf(f, HUSK_TAG_PEER_NAME, m->agent_name,
		                   sizeof(m->agent_name), err);
		return 0;
	case HUSK_FRAME_ERROR: return on_error(m, f, err);
	case HUSK_FRAME_STDOUT: return on_output(m, f, HUSK_FD_STDOUT, err);
	case HUSK_FRAME_STDERR: return on_output(m, f, HUSK_FD_STDERR, err);
	case HUSK_FRAME_CREDIT: return on_credit(m, f, err);
	case HUSK_FRAME_CLOSE: return 0;
	case HUSK_FRAME_EXIT: return on_exit_frame(m, f, err);
	}
	return husk_err(err, EPROTO, "unexpected %s frame from the agent",
	                husk_proto_type_name(f->type));
}

static int on_chan(struct husk_mux *m, struct husk_error *err)
{
	uint8_t buf[65536];
	ssize_t n = read(m->chan, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n < 0)
		return husk_err_errno(err, errno, "read from the agent");
	if (n == 0) {
		m->closed = true;
		int rc = husk_proto_reader_eof(&m->reader, err);
		return rc < 0 ? rc
		              : husk_err(err, ECONNRESET,
		                         "the microVM's agent went away");
	}
	size_t off = 0;
	while (off < (size_t)n) {
		size_t used;
		struct husk_frame f;
		int rc = husk_proto_reader_feed(
		    &m->reader, buf + off, (size_t)n - off, &used, &f, err);
		if (rc < 0)
			return rc;
		off += used;
		if (rc == 1 && (rc = on_frame(m, &f, err)) < 0)
			return rc;
	}
	return 0;
}

/* ---- stdin ---- */

static int on_stdin(struct husk_mux *m, struct husk_mux_stream *s,
                    struct husk_error *err)
{
	static uint8_t buf[65536];
	size_t want = s->in_credit < sizeof(buf) ? s->in_credit : sizeof(buf);
	ssize_t n = read(s->in_fd, buf, want);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		s->in_open = false;
		husk_proto_enc_begin(&m->enc, HUSK_FRAME_CLOSE, 0, s->id, err);
		husk_proto_enc_u32(&m->enc, HUSK_TAG_FD, HUSK_FD_STDIN, err);
		return send_frame(m, err);
	}
	s->in_credit -= (uint32_t)n;
	husk_proto_enc_begin(&m->enc, HUSK_FRAME_STDIN, 0, s->id, err);
	husk_proto_enc_data(&m->enc, buf, (size_t)n, err);
	return send_frame(m, err);
}

int husk_mux_pollfds(struct husk_mux *m, struct pollfd *p, int cap)
{
	int n = 0;
	if (m->failed || m->closed || cap <= 0)
		return 0;
	p[n++] = (struct pollfd){m->chan, POLLIN, 0};
	for (int i = 0; i < HUSK_MUX_MAX_STREAMS && n < cap; i++) {
		struct husk_mux_stream *s = &m->streams[i];
		if (s->id && s->started && !s->exited && s->in_open &&
		    s->in_fd >= 0 && s->in_credit > 0)
			p[n++] = (struct pollfd){s->in_fd, POLLIN, 0};
	}
	return n;
}

int husk_mux_dispatch(struct husk_mux *m, const struct pollfd *p, int n,
                      struct husk_error *err)
{
	if (m->failed) {
		*err = m->fail;
		return -m->failed;
	}
	for (int k = 1; k < n; k++) {
		if (!p[k].revents)
			continue;
		for (int i = 0; i < HUSK_MUX_MAX_STREAMS; i++) {
			struct husk_mux_stream *s = &m->streams[i];
			if (s->id && s->in_open && s->in_fd == p[k].fd) {
				if (on_stdin(m, s, err) < 0)
					return fail(m, err);
				break;
			}
		}
	}
	if (n > 0 && p[0].revents && on_chan(m, err) < 0)
		return fail(m, err);
	return 0;
}

/* A stop signal on cancel_fd while waiting; others are dropped (no
 * process runs yet to take them). */
static bool cancelled(struct husk_mux *m, struct husk_error *err)
{
	struct signalfd_siginfo si;
	while (read(m->cancel_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM ||
		    si.ssi_signo == SIGHUP) {
			husk_err(
			    err, ECANCELED,
			    "interrupted by signal %u before the container "
			    "started",
			    si.ssi_signo);
			return true;
		}
	}
	return false;
}

/* Sends the open frame and pumps the channel until its reply. */
static int request(struct husk_mux *m, uint32_t stream, unsigned type,
                   struct husk_error *err)
{
	m->want_stream = stream;
	m->want_type = type;
	m->got_reply = false;
	m->reply_rc = 0;
	m->reply_pid = 0;
	int rc = send_frame(m, err);
	if (rc < 0)
		return rc;
	int64_t deadline = husk_mux_now_ms() + m->timeout_ms;
	while (!m->got_reply) {
		/* A process that already exited was started, whatever
		 * became of the reply. */
		struct husk_mux_stream *s = husk_mux_stream(m, stream);
		if ((type == HUSK_FRAME_START || type == HUSK_FRAME_EXEC) &&
		    s && s->exited)
			break;
		int64_t left = deadline - husk_mux_now_ms();
		if (left <= 0) {
			husk_err(err, ETIMEDOUT,
			         "the agent did not answer %s in %d ms",
			         husk_proto_type_name(type), m->timeout_ms);
			return fail(m, err);
		}
		struct pollfd p[HUSK_MUX_MAX_STREAMS + 2];
		int np = husk_mux_pollfds(m, p, HUSK_MUX_MAX_STREAMS + 1);
		if (!np) {
			if (!m->failed)
				husk_err(err, ECONNRESET,
				         "the microVM's agent went away");
			return m->failed ? (*err = m->fail, -m->failed)
			                 : fail(m, err);
		}
		int nc = np;
		if (m->cancel_fd >= 0)
			p[nc++] = (struct pollfd){m->cancel_fd, POLLIN, 0};
		int r = poll(p, (nfds_t)nc, (int)left);
		if (r < 0 && errno != EINTR)
			return husk_err_errno(err, errno, "poll");
		if (r > 0 && nc > np && p[np].revents && cancelled(m, err))
			return -ECANCELED;
		if (r > 0 && husk_mux_dispatch(m, p, np, err) < 0)
			return -err->code;
	}
	m->want_type = 0;
	if (m->reply_rc < 0) {
		*err = m->reply_err;
		return m->reply_rc;
	}
	return 0;
}

static void attach(struct husk_mux_stream *s, int in_fd, int out_fd, int err_fd,
                   bool open_stdin)
{
	s->in_fd = in_fd;
	s->out_fd = out_fd;
	s->err_fd = err_fd;
	/* Left blocking: the descriptor may be the user's terminal, shared
	 * with their shell, and a read after POLLIN does not block. */
	s->in_open = open_stdin && in_fd >= 0;
}

int husk_mux_create(struct husk_mux *m, const struct husk_run_request *req,
                    int in_fd, int out_fd, int err_fd, struct husk_error *err)
{
	uint32_t id = husk_mux_new_stream(m);
	if (!id)
		return husk_err(err, EMFILE, "too many processes in one VM");
	attach(husk_mux_stream(m, id), in_fd, out_fd, err_fd, req->open_stdin);
	husk_agent_encode(&m->enc, HUSK_FRAME_CREATE, id, req, err);
	int rc = request(m, id, HUSK_FRAME_CREATE, err);
	if (rc < 0) {
		husk_mux_release(m, id);
		return rc;
	}
	return (int)id;
}

static int start_and_wait(struct husk_mux *m, uint32_t id, unsigned type,
                          uint32_t *pid, struct husk_error *err)
{
	struct husk_mux_stream *s = husk_mux_stream(m, id);
	s->started = true;
	int rc = request(m, id, type, err);
	if (rc < 0) {
		s->started = false;
		return rc;
	}
	if (pid)
		*pid = m->reply_pid;
	husk_proto_enc_begin(&m->enc, HUSK_FRAME_WAIT, 0, id, err);
	return send_frame(m, err);
}

int husk_mux_start(struct husk_mux *m, uint32_t stream, uint32_t *pid,
                   struct husk_error *err)
{
	struct husk_mux_stream *s = husk_mux_stream(m, stream);
	if (!s || s->started)
		return husk_err(err, EINVAL, "stream %u: nothing to start",
		                stream);
	husk_proto_enc_begin(&m->enc, HUSK_FRAME_START, 0, stream, err);
	return start_and_wait(m, stream, HUSK_FRAME_START, pid, err);
}

int husk_mux_exec(struct husk_mux *m, const struct husk_run_request *req,
                  int in_fd, int out_fd, int err_fd, uint32_t *pid,
                  struct husk_error *err)
{
	uint32_t id = husk_mux_new_stream(m);
	if (!id)
		return husk_err(err, EMFILE, "too many processes in one VM");
	attach(husk_mux_stream(m, id), in_fd, out_fd, err_fd, req->open_stdin);
	husk_agent_encode(&m->enc, HUSK_FRAME_EXEC, id, req, err);
	int rc = start_and_wait(m, id, HUSK_FRAME_EXEC, pid, err);
	if (rc < 0) {
		/* the caller keeps its descriptors when EXEC fails */
		struct husk_mux_stream *s = husk_mux_stream(m, id);
		s->in_fd = s->out_fd = s->err_fd = -1;
		husk_mux_release(m, id);
		return rc;
	}
	return (int)id;
}

int husk_mux_signal(struct husk_mux *m, uint32_t stream, int sig,
                    struct husk_error *err)
{
	husk_proto_enc_begin(&m->enc, HUSK_FRAME_SIGNAL, 0, stream, err);
	husk_proto_enc_u32(&m->enc, HUSK_TAG_SIGNAL, (uint32_t)sig, err);
	if (!m->signal_deadline)
		m->signal_deadline = husk_mux_now_ms() + HUSK_MUX_SIGNAL_ACK_MS;
	return send_frame(m, err);
}

void husk_mux_abort(struct husk_mux *m, int code, const char *why)
{
	struct husk_error ignored;
	husk_proto_enc_reset(&m->enc);
	husk_proto_enc_begin(&m->enc, HUSK_FRAME_ERROR, 0, 0, &ignored);
	husk_proto_enc_u32(&m->enc, HUSK_TAG_ERRNO,
	                   code > 0 && code < 4096 ? (uint32_t)code : EIO,
	                   &ignored);
	husk_proto_enc_str(&m->enc, HUSK_TAG_MESSAGE, why, &ignored);
	send_frame(m, &ignored);
}

int husk_mux_resize(struct husk_mux *m, uint32_t stream, unsigned rows,
                    unsigned cols, struct husk_error *err)
{
	husk_proto_enc_begin(&m->enc, HUSK_FRAME_RESIZE, 0, stream, err);
	husk_proto_enc_u32(&m->enc, HUSK_TAG_ROWS, rows, err);
	husk_proto_enc_u32(&m->enc, HUSK_TAG_COLS, cols, err);
	return send_frame(m, err);
}

int husk_mux_shutdown(struct husk_mux *m, struct husk_error *err)
{
	if (m->shutdown_acked)
		return 0;
	husk_proto_enc_begin(&m->enc, HUSK_FRAME_SHUTDOWN, 0, 0, err);
	husk_proto_enc_u32(&m->enc, HUSK_TAG_TIMEOUT_MS, 2000, err);
	int rc = request(m, 0, HUSK_FRAME_SHUTDOWN, err);
	/* The agent may power off before its reply gets out. */
	if (rc < 0 && m->closed)
		return 0;
	return rc;
}
