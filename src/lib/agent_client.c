/* The host's side of a container run; see husk/agent_client.h.
 *
 * The agent never blocks on us (its writes are buffered and bounded by
 * the credit we grant), so this side may write to the channel and to the
 * user's stdout with plain blocking writes. */
#include "husk/agent_client.h"
#include "husk/io.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "husk/proto.h"

#ifndef HUSK_VERSION
#define HUSK_VERSION "unknown"
#endif

#define STREAM           1 /* the one process of a run */
#define SHUTDOWN_WAIT_MS 10000
#define SIGNAL_ACK_MS    10000

enum phase {
	PHASE_CREATE,   /* HELLO and CREATE sent, waiting for the reply */
	PHASE_RUN,      /* started; relaying until EXIT */
	PHASE_SHUTDOWN, /* SHUTDOWN sent */
	PHASE_DONE,
};

struct client {
	int chan;
	const struct husk_run_request *req;
	const struct husk_run_io *io;
	struct husk_run_result *res;
	struct husk_proto_reader reader;
	struct husk_proto_enc enc;
	enum phase phase;
	int64_t deadline; /* for the phase, or 0 */
	/* A forwarded signal the agent has not acknowledged yet: an agent
	 * that answers nothing is a stuck VM, and the user who sent the
	 * signal must not wait for ever. */
	int64_t signal_deadline;
	int timeout_ms;
	uint32_t in_credit;    /* stdin bytes the agent lets us send */
	uint32_t out_given[3]; /* output credit we granted, not yet used */
	bool in_eof;
	bool exited;
	/* CREATE failed: the session is shut down cleanly, then this is
	 * what the run returns. */
	int create_rc;
	struct husk_error create_err;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Ends the open frame and writes everything encoded so far. */
static int send_frame(struct client *c, struct husk_error *err)
{
	int rc = husk_proto_enc_end(&c->enc, err);
	if (rc < 0)
		return rc;
	rc = husk_write_all(c->chan, c->enc.buf, c->enc.len);
	husk_proto_enc_reset(&c->enc);
	if (rc < 0)
		return husk_err_errno(err, -rc, "write to the agent");
	return 0;
}

int husk_agent_encode(struct husk_proto_enc *e, unsigned type, uint32_t stream,
                      const struct husk_run_request *r, struct husk_error *err)
{
	bool create = type == HUSK_FRAME_CREATE;
	husk_proto_enc_begin(e, type, 0, stream, err);
	husk_proto_enc_str(e, HUSK_TAG_CONTAINER_ID, r->container_id, err);
	if (create)
		husk_proto_enc_str(e, HUSK_TAG_ROOT_DEVICE, r->root_device,
		                   err);
	husk_proto_enc_strv(e, HUSK_TAG_ARGV, r->argv, err);
	if (r->env)
		husk_proto_enc_strv(e, HUSK_TAG_ENV, r->env, err);
	if (create && r->readonly_root)
		husk_proto_enc_bool(e, HUSK_TAG_READONLY_ROOT, true, err);
	if (create && r->hostname && r->hostname[0])
		husk_proto_enc_str(e, HUSK_TAG_HOSTNAME, r->hostname, err);
	if (r->cwd && r->cwd[0])
		husk_proto_enc_str(e, HUSK_TAG_CWD, r->cwd, err);
	if (r->user && r->user[0])
		husk_proto_enc_str(e, HUSK_TAG_USER, r->user, err);
	if (r->tty) {
		husk_proto_enc_bool(e, HUSK_TAG_TTY, true, err);
		husk_proto_enc_u32(e, HUSK_TAG_ROWS, r->rows, err);
		husk_proto_enc_u32(e, HUSK_TAG_COLS, r->cols, err);
	}
	if (r->open_stdin)
		husk_proto_enc_bool(e, HUSK_TAG_STDIN, true, err);
	if (create && r->memory_limit)
		husk_proto_enc_u64(e, HUSK_TAG_MEMORY_LIMIT, r->memory_limit,
		                   err);
	if (create && r->cpu_millis)
		husk_proto_enc_u32(e, HUSK_TAG_CPU_MILLIS, r->cpu_millis, err);
	if (create && r->pids_limit)
		husk_proto_enc_u64(e, HUSK_TAG_PIDS_LIMIT, r->pids_limit, err);
	if (create && r->mounts)
		husk_proto_enc_strv(e, HUSK_TAG_MOUNT, r->mounts, err);
	return -e->error;
}

static int send_create(struct client *c, struct husk_error *err)
{
	husk_agent_encode(&c->enc, HUSK_FRAME_CREATE, STREAM, c->req, err);
	return send_frame(c, err); /* reports an error the encoder kept */
}

static int send_plain(struct client *c, unsigned type, uint32_t stream,
                      struct husk_error *err)
{
	husk_proto_enc_begin(&c->enc, type, 0, stream, err);
	return send_frame(c, err);
}

static int send_fd_u32(struct client *c, unsigned type, unsigned fd,
                       unsigned tag, uint32_t v, struct husk_error *err)
{
	husk_proto_enc_begin(&c->enc, type, 0, STREAM, err);
	husk_proto_enc_u32(&c->enc, HUSK_TAG_FD, fd, err);
	if (tag)
		husk_proto_enc_u32(&c->enc, tag, v, err);
	return send_frame(c, err);
}

static int start(struct client *c, struct husk_error *err)
{
	int rc = send_plain(c, HUSK_FRAME_START, STREAM, err);
	if (rc >= 0)
		rc = send_plain(c, HUSK_FRAME_WAIT, STREAM, err);
	c->phase = PHASE_RUN;
	c->deadline = 0;
	return rc;
}

static int shutdown_agent(struct client *c, struct husk_error *err)
{
	husk_proto_enc_begin(&c->enc, HUSK_FRAME_SHUTDOWN, 0, 0, err);
	husk_proto_enc_u32(&c->enc, HUSK_TAG_TIMEOUT_MS, 2000, err);
	c->phase = PHASE_SHUTDOWN;
	c->deadline = now_ms() + SHUTDOWN_WAIT_MS;
	return send_frame(c, err);
}

/* ---- frames from the agent ---- */

static int on_error(struct client *c, const struct husk_frame *f,
                    struct husk_error *err)
{
	uint32_t code = EIO, request = 0;
	char msg[1025] = "";
	husk_frame_u32(f, HUSK_TAG_ERRNO, &code, err);
	husk_frame_u32(f, HUSK_TAG_REQUEST, &request, err);
	husk_frame_str_buf(f, HUSK_TAG_MESSAGE, msg, sizeof(msg), err);
	if (request == HUSK_FRAME_START && c->phase == PHASE_RUN) {
		/* exec failed; the process's EXIT (126/127) follows */
		snprintf(c->res->start_error, sizeof(c->res->start_error), "%s",
		         msg);
		c->res->start_errno = (int)code;
		return 0;
	}
	if (request == HUSK_FRAME_SIGNAL || request == HUSK_FRAME_RESIZE) {
		c->signal_deadline = 0;
		return 0; /* the process may just have ended */
	}
	if (request == HUSK_FRAME_SHUTDOWN) {
		c->phase = PHASE_DONE;
		return 0;
	}
	if (request == HUSK_FRAME_CREATE && c->phase == PHASE_CREATE) {
		c->create_rc = husk_err(&c->create_err, (int)code, "%s", msg);
		return shutdown_agent(c, err);
	}
	return husk_err(err, (int)code, "%s", msg);
}

static int on_output(struct client *c, const struct husk_frame *f, unsigned fd,
                     struct husk_error *err)
{
	if (f->stream != STREAM)
		return husk_err(err, EPROTO, "output on unknown stream %u",
		                f->stream);
	if (f->len > c->out_given[fd])
		return husk_err(err, EPROTO,
		                "the agent sent %u bytes beyond its credit",
		                f->len);
	c->out_given[fd] -= f->len;
	int dst = fd == HUSK_FD_STDOUT ? c->io->out_fd : c->io->err_fd;
	/* A reader that went away (EPIPE) does not stop the run; the data
	 * is dropped as it would be by a closed pipe. */
	if (dst >= 0)
		(void)husk_write_all(dst, f->payload, f->len);
	if (!f->len)
		return 0;
	c->out_given[fd] += f->len;
	return send_fd_u32(c, HUSK_FRAME_CREDIT, fd, HUSK_TAG_CREDIT, f->len,
	                   err);
}

static int on_exit_frame(struct client *c, const struct husk_frame *f,
                         struct husk_error *err)
{
	uint32_t code = 0, sig = 0;
	bool oom = false;
	if (husk_frame_u32(f, HUSK_TAG_EXIT_CODE, &code, err) < 0 ||
	    husk_frame_u32(f, HUSK_TAG_EXIT_SIGNAL, &sig, err) < 0 ||
	    husk_frame_bool(f, HUSK_TAG_OOM_KILLED, &oom, err) < 0)
		return -err->code;
	c->res->exit_code = (int)code;
	c->res->exit_signal = (int)sig;
	c->res->oom_killed = oom;
	c->exited = true;
	return shutdown_agent(c, err);
}

static int on_credit(struct client *c, const struct husk_frame *f,
                     struct husk_error *err)
{
	uint32_t fd, credit;
	if (husk_frame_u32(f, HUSK_TAG_FD, &fd, err) < 0 ||
	    husk_frame_u32(f, HUSK_TAG_CREDIT, &credit, err) < 0)
		return -err->code;
	if (fd != HUSK_FD_STDIN)
		return husk_err(err, EPROTO, "credit for fd %u from the agent",
		                fd);
	if ((uint64_t)c->in_credit + credit > HUSK_PROTO_MAX_WINDOW)
		return husk_err(err, EPROTO, "stdin credit above the window");
	c->in_credit += credit;
	return 0;
}

static int on_frame(struct client *c, const struct husk_frame *f,
                    struct husk_error *err)
{
	switch (f->type) {
	case HUSK_FRAME_HELLO:
		husk_frame_str_buf(f, HUSK_TAG_PEER_NAME, c->res->agent_name,
		                   sizeof(c->res->agent_name), err);
		return 0;
	case HUSK_FRAME_ERROR: return on_error(c, f, err);
	case HUSK_FRAME_CREATE:
		if (c->phase != PHASE_CREATE)
			return husk_err(err, EPROTO, "unexpected CREATE reply");
		return start(c, err);
	case HUSK_FRAME_START:
	case HUSK_FRAME_SIGNAL:
	case HUSK_FRAME_RESIZE: return 0;
	case HUSK_FRAME_SHUTDOWN: c->phase = PHASE_DONE; return 0;
	case HUSK_FRAME_STDOUT: return on_output(c, f, HUSK_FD_STDOUT, err);
	case HUSK_FRAME_STDERR: return on_output(c, f, HUSK_FD_STDERR, err);
	case HUSK_FRAME_CREDIT: return on_credit(c, f, err);
	case HUSK_FRAME_CLOSE: return 0;
	case HUSK_FRAME_EXIT:
		if (f->stream != STREAM || c->exited)
			return husk_err(err, EPROTO, "unexpected EXIT");
		return on_exit_frame(c, f, err);
	}
	return husk_err(err, EPROTO, "unexpected %s frame from the agent",
	                husk_proto_type_name(f->type));
}

static int on_chan(struct client *c, struct husk_error *err)
{
	uint8_t buf[65536];
	ssize_t n = read(c->chan, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n < 0)
		return husk_err_errno(err, errno, "read from the agent");
	if (n == 0) {
		if (c->phase == PHASE_SHUTDOWN) {
			c->phase = PHASE_DONE; /* it powered off */
			return 0;
		}
		int rc = husk_proto_reader_eof(&c->reader, err);
		return rc < 0
		           ? rc
		           : husk_err(err, ECONNRESET,
		                      "the microVM ended before the container "
		                      "did");
	}
	size_t off = 0;
	while (off < (size_t)n && c->phase != PHASE_DONE) {
		size_t used;
		struct husk_frame f;
		int rc = husk_proto_reader_feed(
		    &c->reader, buf + off, (size_t)n - off, &used, &f, err);
		if (rc < 0)
			return rc;
		off += used;
		if (rc == 1 && (rc = on_frame(c, &f, err)) < 0)
			return rc;
	}
	return 0;
}

/* ---- the user's side ---- */

static int on_stdin(struct client *c, struct husk_error *err)
{
	static uint8_t buf[65536];
	size_t want = c->in_credit < sizeof(buf) ? c->in_credit : sizeof(buf);
	ssize_t n = read(c->io->in_fd, buf, want);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		c->in_eof = true;
		return send_fd_u32(c, HUSK_FRAME_CLOSE, HUSK_FD_STDIN, 0, 0,
		                   err);
	}
	c->in_credit -= (uint32_t)n;
	husk_proto_enc_begin(&c->enc, HUSK_FRAME_STDIN, 0, STREAM, err);
	husk_proto_enc_data(&c->enc, buf, (size_t)n, err);
	return send_frame(c, err);
}

static int on_signal(struct client *c, struct husk_error *err)
{
	struct signalfd_siginfo si;
	while (read(c->io->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		bool stop = si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM ||
		            si.ssi_signo == SIGHUP;
		/* Before the container runs there is nobody to forward to:
		 * the user means husk. */
		if (c->phase == PHASE_CREATE && stop)
			return husk_err(err, ECANCELED,
			                "interrupted by signal %u before the "
			                "container started",
			                si.ssi_signo);
		if (c->phase != PHASE_RUN || c->exited)
			continue;
		int rc;
		if (si.ssi_signo == SIGWINCH) {
			struct winsize ws;
			if (!c->req->tty || c->io->tty_fd < 0 ||
			    ioctl(c->io->tty_fd, TIOCGWINSZ, &ws) < 0)
				continue;
			husk_proto_enc_begin(&c->enc, HUSK_FRAME_RESIZE, 0,
			                     STREAM, err);
			husk_proto_enc_u32(&c->enc, HUSK_TAG_ROWS, ws.ws_row,
			                   err);
			husk_proto_enc_u32(&c->enc, HUSK_TAG_COLS, ws.ws_col,
			                   err);
		} else {
			husk_proto_enc_begin(&c->enc, HUSK_FRAME_SIGNAL, 0,
			                     STREAM, err);
			husk_proto_enc_u32(&c->enc, HUSK_TAG_SIGNAL,
			                   si.ssi_signo, err);
		}
		if ((rc = send_frame(c, err)) < 0)
			return rc;
	}
	return 0;
}

static int run_loop(struct client *c, struct husk_error *err)
{
	while (c->phase != PHASE_DONE) {
		struct pollfd p[3] = {
		    {c->chan, POLLIN, 0}, {-1, 0, 0}, {-1, 0, 0}};
		if (c->phase == PHASE_RUN && !c->exited && c->req->open_stdin &&
		    !c->in_eof && c->in_credit > 0 && c->io->in_fd >= 0)
			p[1] = (struct pollfd){c->io->in_fd, POLLIN, 0};
		if (c->io->sig_fd >= 0)
			p[2] = (struct pollfd){c->io->sig_fd, POLLIN, 0};
		int timeout = -1;
		if (c->signal_deadline) {
			int64_t left = c->signal_deadline - now_ms();
			if (left <= 0)
				return husk_err(
				    err, ETIMEDOUT,
				    "the agent did not acknowledge a signal in "
				    "%d s: the microVM looks stuck",
				    SIGNAL_ACK_MS / 1000);
			timeout = (int)left;
		}
		if (c->deadline) {
			int64_t left = c->deadline - now_ms();
			if (left <= 0) {
				if (c->phase == PHASE_SHUTDOWN)
					return 0; /* exit status is known */
				return husk_err(
				    err, ETIMEDOUT,
				    "the agent did not answer in %d ms",
				    c->timeout_ms);
			}
			if (timeout < 0 || left < timeout)
				timeout = (int)left;
		}
		int rc = poll(p, 3, timeout);
		if (rc < 0 && errno != EINTR)
			return husk_err_errno(err, errno, "poll");
		if (rc <= 0)
			continue;
		if (p[2].revents && (rc = on_signal(c, err)) < 0)
			return rc;
		if (p[1].revents && (rc = on_stdin(c, err)) < 0)
			return rc;
		if (p[0].revents && (rc = on_chan(c, err)) < 0)
			return rc;
	}
	return 0;
}

int husk_agent_run(int chan, const struct husk_run_request *req,
                   const struct husk_run_io *io, int timeout_ms,
                   struct husk_run_result *res, struct husk_error *err)
{
	struct client c = {.chan = chan, .req = req, .io = io, .res = res};
	memset(res, 0, sizeof(*res));
	c.timeout_ms = timeout_ms > 0 ? timeout_ms : 60000;
	c.deadline = now_ms() + c.timeout_ms;
	c.in_credit = HUSK_PROTO_INITIAL_CREDIT;
	c.out_given[1] = c.out_given[2] = HUSK_PROTO_INITIAL_CREDIT;
	husk_proto_reader_init(&c.reader, HUSK_SIDE_HOST);
	husk_proto_enc_init_alloc(&c.enc, HUSK_SIDE_HOST);
	int rc = husk_proto_enc_hello(&c.enc, "husk " HUSK_VERSION, err);
	if (rc >= 0)
		rc = send_create(&c, err);
	if (rc >= 0)
		rc = run_loop(&c, err);
	if (rc < 0 && c.reader.failed == 0 && c.phase != PHASE_DONE) {
		/* Tell the agent why we stop; it ends its session. */
		struct husk_error ignored;
		husk_proto_enc_reset(&c.enc);
		husk_proto_enc_begin(&c.enc, HUSK_FRAME_ERROR, 0, 0, &ignored);
		husk_proto_enc_u32(&c.enc, HUSK_TAG_ERRNO, (uint32_t)-rc,
		                   &ignored);
		husk_proto_enc_str(&c.enc, HUSK_TAG_MESSAGE,
		                   "the host gives up", &ignored);
		send_frame(&c, &ignored);
	}
	if (rc >= 0 && c.create_rc < 0) {
		*err = c.create_err;
		rc = c.create_rc;
	} else if (rc >= 0 && !c.exited) {
		rc = husk_err(err, EPROTO,
		              "the agent ended without an exit status");
	}
	husk_proto_reader_free(&c.reader);
	husk_proto_enc_free(&c.enc);
	return rc < 0 ? rc : 0;
}
