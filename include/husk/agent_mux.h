/* The host's side of a long-lived agent session with many processes: the
 * container's first process and any number of exec'd ones, each on its
 * own protocol stream with its own stdio descriptors. A supervisor
 * (husk-runtime's per-container process) owns one of these for the life of
 * a microVM and drives it from its own poll loop.
 *
 * Requests that have a reply (CREATE, START, EXEC, SHUTDOWN) are sent and
 * then waited for by pumping the channel, so that other streams' output
 * keeps flowing meanwhile; SIGNAL and RESIZE are sent without waiting. The
 * agent is not trusted: every frame goes through the checked decoder and
 * the first broken one fails the session (husk_mux_failed). */
#ifndef HUSK_AGENT_MUX_H
#define HUSK_AGENT_MUX_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "husk/agent_client.h"
#include "husk/error.h"
#include "husk/proto.h"

#define HUSK_MUX_MAX_STREAMS 64
/* A forwarded signal the agent has not acknowledged in this long means a
 * stuck VM: whoever sent it must not wait for ever. */
#define HUSK_MUX_SIGNAL_ACK_MS 10000
/* How long a reply may take by default, a VM's boot included (CREATE is
 * answered once the guest is up): generous, since a loaded host or an
 * emulated test machine boots slowly, and a run that gives up early has
 * failed for nothing. A VM that dies is noticed at once (EOF) anyway. */
#define HUSK_MUX_DEFAULT_TIMEOUT_MS 180000

/* A process's end, as the agent reported it. */
struct husk_mux_exit {
	int exit_code; /* the status, or 128+N after signal N */
	int exit_signal;
	bool oom_killed;
	char start_error[512]; /* why exec failed (126/127), or "" */
};

struct husk_mux_stream {
	uint32_t id; /* 0: free slot */
	/* Descriptors the mux owns and closes when the stream ends; -1 for
	 * none. out and err may be the same descriptor. */
	int in_fd, out_fd, err_fd;
	bool in_open;
	uint32_t in_credit;
	uint32_t out_given[3];
	bool started, exited;
	struct husk_mux_exit exit;
};

struct husk_mux {
	int chan;
	struct husk_proto_reader reader;
	struct husk_proto_enc enc;
	int failed; /* positive errno once the session broke */
	struct husk_error fail;
	bool closed; /* the agent's end is gone (EOF) */
	char agent_name[65];
	struct husk_mux_stream streams[HUSK_MUX_MAX_STREAMS];
	/* The request being waited for. */
	uint32_t want_stream;
	unsigned want_type;
	bool got_reply;
	int reply_rc;
	struct husk_error reply_err;
	uint32_t reply_pid;
	uint32_t next_id;
	int timeout_ms; /* per reply */
	/* A signalfd (or -1) watched while a reply is awaited: SIGINT,
	 * SIGTERM or SIGHUP there cancels the wait (ECANCELED). */
	int cancel_fd;
	/* The agent said it is shutting down (its SHUTDOWN reply may come
	 * early, in the same write as the last EXIT). */
	bool shutdown_acked;
	/* When the oldest unacknowledged SIGNAL is overdue, or 0. */
	int64_t signal_deadline;
};

int64_t husk_mux_now_ms(void);

/* Takes chan (a connected stream to the agent; the mux closes it in
 * husk_mux_free) and sends HELLO. */
int husk_mux_init(struct husk_mux *m, int chan, int timeout_ms,
                  struct husk_error *err);
void husk_mux_free(struct husk_mux *m);

/* A new stream id, or 0 when HUSK_MUX_MAX_STREAMS are in use. */
uint32_t husk_mux_new_stream(struct husk_mux *m);

/* CREATE: the container's first process on a new stream, stopped before
 * exec; io's descriptors pass to the mux. Returns the stream id. */
int husk_mux_create(struct husk_mux *m, const struct husk_run_request *req,
                    int in_fd, int out_fd, int err_fd, struct husk_error *err);
/* START and WAIT for a created stream; *pid is the guest pid. */
int husk_mux_start(struct husk_mux *m, uint32_t stream, uint32_t *pid,
                   struct husk_error *err);
/* EXEC: another process in container req->container_id (argv, env, cwd,
 * user, tty, rows, cols, open_stdin are used), started at once and waited
 * for. Returns the stream id; *pid is the guest pid. */
int husk_mux_exec(struct husk_mux *m, const struct husk_run_request *req,
                  int in_fd, int out_fd, int err_fd, uint32_t *pid,
                  struct husk_error *err);
int husk_mux_signal(struct husk_mux *m, uint32_t stream, int sig,
                    struct husk_error *err);
int husk_mux_resize(struct husk_mux *m, uint32_t stream, unsigned rows,
                    unsigned cols, struct husk_error *err);
/* A fatal ERROR to the agent (best effort): we stop, and why. */
void husk_mux_abort(struct husk_mux *m, int code, const char *why);
/* SHUTDOWN: the agent ends every container and powers the VM off. */
int husk_mux_shutdown(struct husk_mux *m, struct husk_error *err);

/* The descriptors to poll: the channel and every stdin with credit.
 * Returns how many entries of p[0, cap) it filled. */
int husk_mux_pollfds(struct husk_mux *m, struct pollfd *p, int cap);
/* Handles what poll reported for the entries husk_mux_pollfds filled. A
 * negative return means the session broke (also husk_mux_failed). */
int husk_mux_dispatch(struct husk_mux *m, const struct pollfd *p, int n,
                      struct husk_error *err);

/* The stream, or NULL when the id is not in use. */
struct husk_mux_stream *husk_mux_stream(struct husk_mux *m, uint32_t id);
/* Frees an exited stream's slot (after the caller took its exit). */
void husk_mux_release(struct husk_mux *m, uint32_t id);

#endif
