/* husk-runtime: a runc-compatible OCI runtime whose containers run in
 * microVMs. containerd's runc shim, dockerd and podman drive it with runc's
 * command line; see docs/runtime.md.
 *
 * Each container has a state directory ROOT/ID holding state.json, the
 * supervisor's control socket and the VM's logs. The supervisor is the
 * process whose pid goes into --pid-file: it owns the microVM and the
 * agent session, relays the container's stdio, and exits with the
 * container's exit status, as runc's container init would. */
#ifndef HUSK_RUNTIME_RT_H
#define HUSK_RUNTIME_RT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "husk/error.h"

#define RT_DEFAULT_ROOT "/run/husk-runtime"
#define RT_STATE_FILE   "state.json"
#define RT_CTL_SOCKET   "ctl.sock"
#define RT_MAX_ARGS     4096

/* Global options, as runc's. */
struct rt_global {
	const char *root;
	const char *log; /* NULL: stderr */
	bool log_json;   /* --log-format json */
	bool debug;
	bool systemd_cgroup; /* accepted; the VM has its own cgroups */
};
extern struct rt_global rt_g;

/* Prints an error as runc does: a JSON line in --log with
 * --log-format json (containerd reads it back), and a line on stderr. */
void rt_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void rt_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- the bundle's config.json (spec.c) ---- */
struct rt_mount {
	char *dest, *type, *source;
	bool readonly, bind;
};

struct rt_process {
	char **args, **env; /* NULL-terminated */
	char *cwd;
	uint32_t uid, gid;
	bool terminal;
	unsigned rows, cols;
};

struct rt_spec {
	char *root; /* absolute path of the root file system */
	bool root_readonly;
	char *hostname;
	struct rt_process proc;
	uint64_t memory_limit; /* bytes, 0: none */
	uint32_t cpu_millis;   /* 0: none */
	uint64_t pids_limit;   /* 0: none */
	struct rt_mount *mounts;
	size_t nmounts;
	char *sandbox_id; /* a pod's id from the annotations, or NULL */
	/* linux.namespaces' pid path, "/proc/PID/ns/pid": join the PID
	 * namespace of the pod member whose pid that is; NULL: a new one */
	char *pid_ns_path;
};

/* Reads BUNDLE/config.json. EINVAL with the field named for a malformed
 * or unsupported config; ENOENT when the root file system is missing. */
int rt_spec_load(const char *bundle, struct rt_spec *s, struct husk_error *err);
/* A process JSON object (exec --process). */
int rt_process_load(const char *path, struct rt_process *p,
                    struct husk_error *err);
void rt_process_free(struct rt_process *p);
void rt_spec_free(struct rt_spec *s);
/* runc spec's default config.json text. */
const char *rt_spec_default(void);

/* ---- state (state.c) ---- */
enum rt_status { RT_CREATING, RT_CREATED, RT_RUNNING, RT_PAUSED, RT_STOPPED };

struct rt_state {
	char id[129];
	pid_t pid;          /* the supervisor */
	uint64_t pid_start; /* its start time, against pid reuse */
	pid_t vmm_pid;
	enum rt_status status;
	char bundle[4096];
	char rootfs[4096];
	char created[40]; /* RFC 3339 */
	int exit_code;    /* with RT_STOPPED */
	char sandbox[129];
};

const char *rt_status_name(enum rt_status s);
bool rt_id_valid(const char *id);
/* ROOT/ID into buf. */
int rt_state_dir(const char *id, char *buf, size_t cap, struct husk_error *err);
int rt_state_write(const struct rt_state *st, struct husk_error *err);
/* ENOENT: "container ID does not exist". The status is corrected to
 * stopped when the supervisor is gone. */
int rt_state_read(const char *id, struct rt_state *st, struct husk_error *err);
void rt_now_rfc3339(char *buf, size_t cap);
/* runc's state object (without annotations); the caller puts it. */
struct json_object;
struct json_object *rt_state_json(const struct rt_state *st);
/* rt_state_read for a command: prints the error itself, and with
 * live refuses a stopped container ("container not running"). */
int rt_state_get(const char *id, struct rt_state *st, bool live);
/* Calls fn with the state of each container under ROOT, until it
 * returns false. */
void rt_state_for_each(bool (*fn)(const struct rt_state *st, void *arg),
                       void *arg);
/* Removes ROOT/ID and what is in it. */
void rt_state_remove(const char *id);
/* Removes dir and what is in it on its own file system: it never
 * descends into a mount (a pod member's bind-mounted root). */
void rt_remove_tree(const char *dir);

/* ---- the control socket (ctl.c) ---- */
/* One request, one reply, each a JSON object in one SOCK_SEQPACKET
 * message; a request may carry descriptors. */
int rt_ctl_connect(const char *id, struct husk_error *err);
int rt_ctl_send(int fd, const char *json, const int *fds, int nfds);
/* Receives one message into buf (NUL-terminated); up to *nfds descriptors
 * into fds (*nfds set to how many came). 0 at EOF, >0 bytes, or -errno. */
ssize_t rt_ctl_recv(int fd, char *buf, size_t cap, int *fds, int *nfds);
/* Sends a request without descriptors and waits for the reply; the reply
 * {"error":"..."} becomes err. */
int rt_ctl_call(const char *id, const char *json, char *reply, size_t cap,
                struct husk_error *err);

/* A listening unix socket DIR/NAME (type SOCK_STREAM or SOCK_SEQPACKET,
 * non-blocking); chdirs to DIR, so that a long DIR still fits. */
int rt_listen_in(const char *dir, const char *name, int type, int backlog,
                 struct husk_error *err);

/* A child's report to rt_read_ready: "OK", or err's message when err is
 * not NULL; closes fd. */
void rt_report_ready(int fd, const struct husk_error *err);
/* Reads a child's report from fd to EOF into msg (NUL-terminated); true
 * when it is "OK". */
bool rt_read_ready(int fd, char *msg, size_t cap);

/* ---- the supervisor (supervisor.c) ---- */
struct rt_create {
	const char *id, *bundle, *pid_file, *console_socket;
	struct rt_spec spec;
};
/* Forks the supervisor, which boots the VM and creates the container;
 * returns its pid once the container exists (or the error that stopped
 * it). */
int rt_supervise(struct rt_create *c, pid_t *pid, struct husk_error *err);

/* A host terminal whose master goes to the console socket (with its name,
 * as runc sends it); *slave is ours, raw, and with ctty our controlling
 * terminal so that resizes arrive as SIGWINCH. */
int rt_open_console(const char *sock_path, unsigned rows, unsigned cols,
                    bool ctty, int *slave, struct husk_error *err);

/* ---- commands ---- */
int rt_cmd_create(int argc, char **argv);
int rt_cmd_run(int argc, char **argv);
int rt_cmd_start(int argc, char **argv);
int rt_cmd_state(int argc, char **argv);
int rt_cmd_kill(int argc, char **argv);
int rt_cmd_delete(int argc, char **argv);
int rt_cmd_exec(int argc, char **argv);
int rt_cmd_list(int argc, char **argv);
int rt_cmd_ps(int argc, char **argv);
int rt_cmd_pause(int argc, char **argv);
int rt_cmd_resume(int argc, char **argv);
int rt_cmd_features(int argc, char **argv);
int rt_cmd_spec(int argc, char **argv);

/* A signal by name ("TERM", "SIGKILL") or number; -1 when unknown. */
int rt_parse_signal(const char *s);
/* Writes pid to path as runc does (temp file and rename). */
int rt_write_pid_file(const char *path, pid_t pid, struct husk_error *err);

#endif
