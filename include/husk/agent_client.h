/* The host's side of one container run over the agent protocol: create
 * the container, start its process, relay stdio and signals, collect the
 * exit status, shut the agent down. The agent is not trusted: every frame
 * goes through the checked decoder, and a broken one ends the run with an
 * error instead of a crash. */
#ifndef HUSK_AGENT_CLIENT_H
#define HUSK_AGENT_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "husk/error.h"

struct husk_run_request {
	const char *container_id; /* [A-Za-z0-9_.-]{1,128} */
	const char *root_device;  /* "serial:NAME", "/dev/vdX",
	                             "9p:TAG/SUBDIR", or on a host agent a
	                             directory */
	bool readonly_root;
	const char *hostname; /* NULL: the agent's default (id prefix) */
	const char *const *argv;
	const char *const *env; /* may be NULL */
	const char *cwd;        /* NULL: "/" */
	const char *user;       /* Docker's -u, NULL: root */
	bool tty, open_stdin;
	unsigned rows, cols; /* the terminal's size with tty */
	uint64_t memory_limit;
	uint32_t cpu_millis;
	uint64_t pids_limit;
	/* Volumes, "TYPE:SOURCE:MODE:/dest" (HUSK_TAG_MOUNT), CREATE only;
	 * NULL-terminated, may be NULL. */
	const char *const *mounts;
	/* CREATE only: the id of a container of the same agent whose PID
	 * namespace this one joins (HUSK_TAG_PID_NS_OF, a pod's shared
	 * namespace); NULL: a namespace of its own. */
	const char *pid_ns_of;
};

/* Where the process's stdio goes on the host. sig_fd is a signalfd (or
 * -1): SIGWINCH becomes RESIZE (from tty_fd's window size), any other
 * signal is forwarded with SIGNAL. */
struct husk_run_io {
	int in_fd; /* read only with open_stdin */
	int out_fd, err_fd;
	int sig_fd;
	int tty_fd; /* the host terminal, for window sizes; -1 */
};

struct husk_run_result {
	int exit_code; /* Docker's: the status, or 128+N after signal N */
	int exit_signal;
	bool oom_killed;
	/* Why the process could not be started (exec failed), for the
	 * caller to print; empty otherwise. */
	char start_error[1024];
	int start_errno;
	char agent_name[65];
};

/* Runs req over chan (a connected stream to the agent). Returns 0 with
 * *res filled once the process exited, or a negative errno when the
 * container could not be created or the session broke. timeout_ms bounds
 * the wait for the agent's HELLO and each reply (0:
 * HUSK_MUX_DEFAULT_TIMEOUT_MS, 3 minutes). */
int husk_agent_run(int chan, const struct husk_run_request *req,
                   const struct husk_run_io *io, int timeout_ms,
                   struct husk_run_result *res, struct husk_error *err);

/* Begins a CREATE or EXEC frame on stream and adds req's TLVs (EXEC
 * leaves out what only a container's creation sets: root, hostname,
 * limits); the caller ends the frame, which reports any error kept. */
struct husk_proto_enc;
int husk_agent_encode(struct husk_proto_enc *e, unsigned type, uint32_t stream,
                      const struct husk_run_request *req,
                      struct husk_error *err);

#endif
