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

#endif
