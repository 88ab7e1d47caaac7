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

struct husk_store;
struct husk_image;
struct husk_error;
/* Opens the image store ($HUSK_ROOT or /var/lib/husk); prints why not. */
int cli_open_store(struct husk_store **s);
/* Pulls name into s with progress on stderr, as `docker pull` shows it. */
int cli_pull(struct husk_store *s, const char *name, struct husk_image *out,
             struct husk_error *err);

#endif
