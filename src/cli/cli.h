/* The husk front end: a table of subcommands over libhusk. Only code under
 * src/cli prints to the user or chooses an exit status. */
#ifndef HUSK_CLI_H
#define HUSK_CLI_H

/* Exit statuses of husk's own failures follow Docker's: 125 when husk
 * itself fails (bad command line, internal error). */
enum { HUSK_EXIT_USAGE = 125 };

struct husk_command {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
};

int cmd_check(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_images(int argc, char **argv);
int cmd_rmi(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_login(int argc, char **argv);
int cmd_logout(int argc, char **argv);
/* the container lifecycle over husk-runtime (containers.c, container_ctl.c,
 * container_exec.c) */
int cmd_ps(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_kill(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_restart(int argc, char **argv);
int cmd_wait(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_stats(int argc, char **argv);

struct husk_run_options;
/* husk run -d, and husk run --pod (pod: its name or id, else NULL),
 * through husk-runtime (container_run.c): with -d prints the id, without
 * follows the container to its end; returns the exit status. */
int cli_run_via_runtime(struct husk_run_options *o, const char *pod);
/* Takes --pod NAME (--pod=NAME) out of `husk run`'s options in argv
 * (pods.c): *pod the value or NULL; -1 after printing why it cannot. */
int cli_take_pod_option(int *argc, char **argv, const char **pod);
/* husk pod create|ls|rm|inspect (pods.c) */
int cmd_pod(int argc, char **argv);

struct json_object;
/* The container ref (name, id, id prefix) as `husk inspect` shows it:
 * 0 with *out set, or -ENOENT when there is no such container. */
int cli_container_inspect(const char *ref, struct json_object **out);

struct husk_store;
struct husk_image;
struct husk_error;
/* Opens the image store ($HUSK_ROOT or /var/lib/husk); prints why not. */
int cli_open_store(struct husk_store **s);
/* Pulls name into s with progress on stderr, as `docker pull` shows it. */
int cli_pull(struct husk_store *s, const char *name, struct husk_image *out,
             struct husk_error *err);

/* An exclusive flock on path (made if missing); the descriptor to close.
 * (container_store.c) */
struct husk_error;
int cli_lock_file(const char *path, struct husk_error *err);
/* docker inspect's layout: an indented JSON array on stdout. */
struct json_object;
void cli_print_json_array(struct json_object *a);

#endif
