/* Starting a container's processes: the first one in fresh namespaces
 * (held before exec until START), later ones inside the namespaces of a
 * running container (EXEC). The child reports over a seqpacket socket:
 * READY (with the PTY master, when it has a terminal), or why set-up or
 * exec failed; the socket closes on a successful exec (close-on-exec). */
#ifndef HUSK_AGENT_PROCESS_H
#define HUSK_AGENT_PROCESS_H

#include <stdbool.h>
#include <sys/types.h>

#include "agent.h"

struct agent_proc_cfg {
	char **argv; /* NULL-terminated, at least one element */
	char **env;  /* NULL-terminated "KEY=VALUE" */
	char cwd[4096];
	struct agent_user_cfg user;
	bool tty;
	unsigned rows, cols;
};

/* What the agent holds of a started child. With a terminal, stdin_fd and
 * stdout_fd are both the PTY master (distinct descriptors) and stderr_fd
 * is -1. */
struct agent_spawn {
	pid_t pid;
	int start_fd;  /* write one byte to let it exec; -1 for exec'd ones */
	int report_fd; /* the child's reports; EOF once it has exec'd */
	int stdin_fd, stdout_fd, stderr_fd;
};

/* Exit status a child uses when it failed before exec (Docker's codes). */
#define AGENT_EXIT_SETUP    125 /* the container could not be set up */
#define AGENT_EXIT_NOEXEC   126 /* found, but not executable */
#define AGENT_EXIT_NOTFOUND 127 /* no such command */

/* Clones the container's first process into new mount, PID, UTS and IPC
 * namespaces; it enters root (rootfs_enter) and waits for the start byte.
 * With pidns_of > 0 (c->pid_ns_of's first process) the child joins that
 * process's PID namespace instead of getting a new one, so it is not PID 1
 * there. Returns once the child reported READY, or fails with the child's
 * message (the child is then reaped). */
int agent_spawn_init(const struct agent_env *env,
                     const struct agent_container_cfg *c, const char *root,
                     pid_t pidns_of, const struct agent_proc_cfg *p,
                     struct agent_spawn *out, struct husk_error *err);

/* Forks a process into the namespaces and cgroup of the container whose
 * first process is init_pid and lets it exec at once. Returns once it
 * reported READY (it may still fail to exec: see agent_spawn_wait_exec). */
int agent_spawn_exec(const struct agent_env *env, const char *container_id,
                     pid_t init_pid, const struct agent_proc_cfg *p,
                     struct agent_spawn *out, struct husk_error *err);

/* After the start byte: waits until the child has exec'd (0) or reports
 * why it could not (negative errno with its message). Closes report_fd. */
int agent_spawn_wait_exec(struct agent_spawn *s, int timeout_ms,
                          struct husk_error *err);

/* Closes every descriptor of s that is still open. */
void agent_spawn_close(struct agent_spawn *s);

/* The agent's own PID namespace, kept open so that EXEC (and a CREATE that
 * joins another container's PID namespace) can switch back after forking
 * into a container's. Call once at start-up. */
int agent_spawn_init_self(struct husk_error *err);

#endif
