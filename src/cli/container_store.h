/* Containers of `husk run -d`, on disk, and the husk-runtime that runs
 * them. Layout under $HUSK_ROOT (default /var/lib/husk; docs/lifecycle.md):
 *
 *   containers/ID/config.json     the OCI bundle husk-runtime runs
 *   containers/ID/container.json  husk's own record: name, image, command
 *   containers/ID/log             the container's stdout and stderr
 *   runtime/ID/state.json         husk-runtime's state (its --root)
 *   rootfs/chain-<hex>/           an image's layers, unpacked once
 *
 * The runtime's state is the truth about whether a container runs: its
 * supervisor exits with the container, and a supervisor that vanished
 * (kill -9, a host crash) reads as exited. */
#ifndef HUSK_CLI_CONTAINER_STORE_H
#define HUSK_CLI_CONTAINER_STORE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <json-c/json.h>

#include "husk/error.h"

#define CTR_ID_LEN 64

enum ctr_status { CTR_CREATED, CTR_RUNNING, CTR_PAUSED, CTR_EXITED };

struct ctr {
	char id[CTR_ID_LEN + 1];
	char dir[PATH_MAX];  /* containers/ID */
	json_object *record; /* container.json, owned */
	enum ctr_status status;
	int exit_code;   /* with CTR_EXITED */
	pid_t pid;       /* the supervisor, while it lives */
	time_t finished; /* with CTR_EXITED: when the state last changed */
	/* ctr_start: the container reads husk's own stdin (a foreground
	 * run, whose stdin ends when the user's does) */
	bool stdin_inherit;
};

/* $HUSK_ROOT or /var/lib/husk, and the paths under it. */
const char *ctr_root(void);
void ctr_path(char *buf, size_t cap, const char *id, const char *file);
void ctr_runtime_root(char *buf, size_t cap);

/* A fresh id: CTR_ID_LEN random hex digits and a NUL. */
void ctr_random_id(char *id);
/* Docker's rule for names, [a-zA-Z0-9][a-zA-Z0-9_.-]+ (containers, pods) */
bool ctr_name_valid(const char *n);
/* Whether s is a full id: CTR_ID_LEN lower-case hex digits. */
bool ctr_is_id(const char *s);
/* Locks $HUSK_ROOT/SUBDIR/.lock (creating the directories): the fd to
 * close to unlock, or negative errno with err set. */
int ctr_lock(const char *subdir, struct husk_error *err);

/* Writes o to path atomically (temp file, fsync, rename). */
int ctr_write_json(const char *path, json_object *o, struct husk_error *err);

/* A string member of the record, or "" */
const char *ctr_str(const struct ctr *c, const char *key);

/* Finds a container by full id, name, or unique id prefix, as Docker
 * does, and loads it with its state. ENOENT "No such container: X",
 * EINVAL for an ambiguous prefix. */
int ctr_find(const char *ref, struct ctr *c, struct husk_error *err);
/* Loads the container ID (a directory under containers/). */
int ctr_load(const char *id, struct ctr *c, struct husk_error *err);
/* Re-reads the runtime's state of c. */
void ctr_refresh(struct ctr *c);
void ctr_free(struct ctr *c);
/* Calls fn for each container, oldest first; stops at fn's non-zero. */
int ctr_each(int (*fn)(struct ctr *c, void *arg), void *arg,
             struct husk_error *err);
/* Whether a container (other than except_id) has this name. */
bool ctr_name_taken(const char *name, const char *except_id);
/* Writes c->record to container.json (temp file and rename). */
int ctr_save(const struct ctr *c, struct husk_error *err);
/* "Up 3 seconds", "Exited (0) 2 minutes ago", "Created" */
void ctr_status_text(const struct ctr *c, char *buf, size_t cap);
const char *ctr_state_name(enum ctr_status s);
/* "3 seconds", "2 minutes" since t */
void ctr_ago(time_t t, char *buf, size_t cap);
/* Removes the directory dir and everything in it (no symlinks followed). */
void ctr_remove_tree(const char *dir);

/* Runs husk-runtime --root $HUSK_ROOT/runtime ARGS with fds 0,1,2 set to
 * in, out, errfd (-1: ours); returns its exit status (128+N for a signal)
 * or -1 with err set when it could not run. */
int ctr_runtime(const char *const *args, int in, int out, int errfd,
                struct husk_error *err);
/* The same in steps: the child's pid (new_session: in a session of its
 * own, so that a terminal it opens becomes its controlling one), and its
 * status. */
pid_t ctr_runtime_spawn(const char *const *args, int in, int out, int errfd,
                        bool new_session, struct husk_error *err);
int ctr_runtime_wait(pid_t pid, struct husk_error *err);
/* (Re)starts c: whatever the runtime holds of it is deleted, then
 * create and start with stdout and stderr appended to its log. */
int ctr_start(struct ctr *c, struct husk_error *err);
/* Removes c as `husk rm -f` does: the runtime stops and deletes it, its
 * image is no longer in use, containers/ID goes. (containers.c) */
int ctr_remove(struct ctr *c, struct husk_error *err);
/* Follows c, started in the foreground, as `docker run` does: its log
 * to stdout until it stops, the signals husk gets passed to it; returns
 * its exit code. (container_attach.c) */
int ctr_attach(struct ctr *c);
/* Waits until c stops, up to timeout_ms (-1: forever); true once stopped. */
bool ctr_wait_stopped(struct ctr *c, int timeout_ms);

/* Runs fn on each container named in argv[optind..], Docker style: each
 * success prints the argument (with echo), each failure an error; returns
 * 1 if any failed, HUSK_EXIT_USAGE without a name. (containers.c) */
int ctr_for_each_ref(int argc, char **argv, const char *cmd,
                     int (*fn)(struct ctr *c, void *arg,
                               struct husk_error *err),
                     void *arg, bool echo);

#endif
