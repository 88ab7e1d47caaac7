/* The host's side of a container run; see husk/agent_client.h. One run
 * is one process on an agent_mux session (the same engine husk-runtime's
 * supervisor drives), plus what a person at a terminal expects: signals
 * forwarded, a stuck VM noticed, Ctrl-C during the boot honoured. */
#include "husk/agent_client.h"
#include "husk/agent_mux.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "husk/proto.h"

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
	if (create && r->pid_ns_of)
		husk_proto_enc_str(e, HUSK_TAG_PID_NS_OF, r->pid_ns_of, err);
	return -e->error;
}

/* The mux closes what it is given; the caller keeps its own. */
static int dup_or_none(int fd)
{
	return fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : -1;
}

/* Signals from sig_fd: resize, forward, or (before the start) cancel. */
static int on_signal(struct husk_mux *m, uint32_t id,
                     const struct husk_run_request *req,
                     const struct husk_run_io *io, struct husk_error *err)
{
	struct signalfd_siginfo si;
	while (read(io->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		struct husk_mux_stream *s = husk_mux_stream(m, id);
		if (!s || s->exited)
			continue;
		int rc = 0;
		if (si.ssi_signo == SIGWINCH) {
			struct winsize ws;
			if (req->tty && io->tty_fd >= 0 &&
			    ioctl(io->tty_fd, TIOCGWINSZ, &ws) == 0)
				rc = husk_mux_resize(m, id, ws.ws_row,
				                     ws.ws_col, err);
		} else {
			rc = husk_mux_signal(m, id, (int)si.ssi_signo, err);
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int run_loop(struct husk_mux *m, uint32_t id,
                    const struct husk_run_request *req,
                    const struct husk_run_io *io, struct husk_error *err)
{
	for (;;) {
		struct husk_mux_stream *s = husk_mux_stream(m, id);
		if (s->exited)
			return 0;
		struct pollfd p[3];
		int n = husk_mux_pollfds(m, p, 2);
		if (!n)
			return husk_err(
			    err, ECONNRESET,
			    "the microVM ended before the container "
			    "did");
		int sig_at = n;
		if (io->sig_fd >= 0)
			p[n++] = (struct pollfd){io->sig_fd, POLLIN, 0};
		int timeout = -1;
		if (m->signal_deadline) {
			int64_t left = m->signal_deadline - husk_mux_now_ms();
			if (left <= 0)
				return husk_err(
				    err, ETIMEDOUT,
				    "the agent did not acknowledge a signal in "
				    "%d s: the microVM looks stuck",
				    HUSK_MUX_SIGNAL_ACK_MS / 1000);
			timeout = (int)left;
		}
		int rc = poll(p, (nfds_t)n, timeout);
		if (rc < 0 && errno != EINTR)
			return husk_err_errno(err, errno, "poll");
		if (rc <= 0)
			continue;
		if (sig_at < n && p[sig_at].revents &&
		    (rc = on_signal(m, id, req, io, err)) < 0)
			return rc;
		if (husk_mux_dispatch(m, p, sig_at, err) < 0)
			return m->closed && !m->reader.failed
			           ? husk_err(err, ECONNRESET,
			                      "the microVM ended before the "
			                      "container did")
			           : -err->code;
	}
}

int husk_agent_run(int chan, const struct husk_run_request *req,
                   const struct husk_run_io *io, int timeout_ms,
                   struct husk_run_result *res, struct husk_error *err)
{
	memset(res, 0, sizeof(*res));
	struct husk_mux m;
	int mchan = fcntl(chan, F_DUPFD_CLOEXEC, 3);
	if (mchan < 0)
		return husk_err_errno(err, errno, "dup");
	int rc = husk_mux_init(&m, mchan, timeout_ms, err);
	/* Before the container runs there is nobody to forward a signal
	 * to: the user means husk. */
	m.cancel_fd = io->sig_fd;
	int id = rc;
	if (rc >= 0)
		id = rc = husk_mux_create(
		    &m, req, req->open_stdin ? dup_or_none(io->in_fd) : -1,
		    dup_or_none(io->out_fd), dup_or_none(io->err_fd), err);
	bool created = rc >= 0;
	if (rc < 0 && m.failed == 0 && !m.closed && err->code != ECANCELED) {
		/* CREATE refused: end the session cleanly, then report */
		struct husk_error ignored;
		husk_mux_shutdown(&m, &ignored);
	}
	if (created)
		rc = husk_mux_start(&m, (uint32_t)id, NULL, err);
	m.cancel_fd = -1;
	if (created && rc >= 0)
		rc = run_loop(&m, (uint32_t)id, req, io, err);
	snprintf(res->agent_name, sizeof(res->agent_name), "%s", m.agent_name);
	struct husk_mux_stream *s =
	    created ? husk_mux_stream(&m, (uint32_t)id) : NULL;
	if (rc >= 0 && s && s->exited) {
		res->exit_code = s->exit.exit_code;
		res->exit_signal = s->exit.exit_signal;
		res->oom_killed = s->exit.oom_killed;
		snprintf(res->start_error, sizeof(res->start_error), "%s",
		         s->exit.start_error);
		struct husk_error ignored;
		husk_mux_shutdown(&m, &ignored);
	} else if (rc < 0 && !m.failed && !m.closed) {
		husk_mux_abort(&m, -rc, "the host gives up");
	}
	if (rc < 0 && created && m.closed && err->code == ECONNRESET)
		husk_err(err, ECONNRESET,
		         "the microVM ended before the container did");
	husk_mux_free(&m);
	return rc < 0 ? rc : 0;
}
