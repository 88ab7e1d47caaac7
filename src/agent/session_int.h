/* The agent session's state, shared by session.c (the loop and the
 * channel), session_requests.c (what each request does) and
 * session_stdio.c (relaying the processes' stdio). */
#ifndef HUSK_AGENT_SESSION_INT_H
#define HUSK_AGENT_SESSION_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent.h"
#include "husk/proto.h"
#include "process.h"

#define SESSION_MAX_CONTAINERS 64
#define SESSION_MAX_PROCS      256

struct container;

/* One direction of stdio from a process to the host. */
struct out_stream {
	int fd;          /* -1 once closed */
	uint32_t credit; /* bytes the host lets us send */
	bool eof;        /* the process side ended; CLOSE sent */
};

struct proc {
	bool used;
	uint32_t stream;
	struct container *ct;
	bool is_init;
	bool started; /* exec'd (START or EXEC answered) */
	pid_t pid;
	int start_fd;
	int report_fd; /* the child's reports until it has exec'd */
	bool tty;
	struct out_stream out[3]; /* [1] stdout, [2] stderr; [0] unused */
	/* stdin from the host: buffered up to the credit we granted */
	int stdin_fd;
	uint8_t *in_buf;
	size_t in_len, in_off;
	uint32_t in_credit; /* bytes the host may still send */
	bool in_closing;    /* CLOSE arrived: close once drained */
	bool exited;
	int status; /* wait status */
	bool wait_requested;
};

struct container {
	bool used;
	struct agent_container_cfg cfg;
	char root[4096];
	struct proc *init;
};

struct session {
	const struct agent_env *env;
	int chan;
	struct husk_proto_reader reader;
	struct husk_proto_enc out; /* frames waiting to be written */
	size_t out_sent;           /* bytes of out already written */
	bool chan_broken;          /* a write failed: nothing more goes out */
	int sigfd;
	bool shutting_down;
	int64_t shutdown_deadline_ms;
	bool shutdown_killed;
	bool done; /* SHUTDOWN answered */
	struct container containers[SESSION_MAX_CONTAINERS];
	struct proc procs[SESSION_MAX_PROCS];
};

/* session.c */
int64_t session_now_ms(void);
/* Queues a frame the session builds itself; a failure to encode one is a
 * bug or memory exhaustion and ends the session (returns negative). */
int session_send_empty(struct session *s, unsigned type, unsigned flags,
                       uint32_t stream);
int session_send_error(struct session *s, uint32_t stream, unsigned request,
                       int code, const char *msg);
/* The same for a process that could not exec: its EXIT follows. */
int session_send_error_exit_follows(struct session *s, uint32_t stream,
                                    unsigned request, int code,
                                    const char *msg);
int session_send_fd_u32(struct session *s, unsigned type, uint32_t stream,
                        unsigned fd, unsigned tag2, uint32_t v2);
struct proc *session_proc(struct session *s, uint32_t stream);
struct container *session_container(struct session *s, const char *id);
void session_release_container(struct session *s, struct container *ct);

/* session_requests.c: handles one validated frame from the host;
 * negative ends the session (err says why). */
int session_dispatch(struct session *s, const struct husk_frame *f,
                     struct husk_error *err);
/* After SIGCHLD: reaps every child that has exited. */
void session_reap(struct session *s);
/* Sends EXIT for p when the host waits and everything else is done. */
int session_maybe_exit(struct session *s, struct proc *p);
/* The SHUTDOWN steps that run from the loop (SIGKILL after the
 * deadline, the reply once nothing is left). */
int session_shutdown_step(struct session *s);

/* session_stdio.c */
int session_stdin_data(struct session *s, struct proc *p, const uint8_t *data,
                       size_t n, struct husk_error *err);
int session_stdin_close(struct session *s, struct proc *p);
int session_stdin_flush(struct session *s, struct proc *p);
int session_credit(struct session *s, struct proc *p, unsigned fd,
                   uint32_t credit, struct husk_error *err);
/* Reads what the process wrote to fd (1 or 2), within credit. */
int session_output(struct session *s, struct proc *p, unsigned fd);
void session_proc_free(struct session *s, struct proc *p);

#endif
