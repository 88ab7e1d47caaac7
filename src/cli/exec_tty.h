/* husk exec -t: the terminal husk-runtime allocates comes to us over a
 * console socket (runc's contract), and we relay it to the user's
 * terminal, set raw meanwhile, as docker exec -t does. */
#ifndef HUSK_CLI_EXEC_TTY_H
#define HUSK_CLI_EXEC_TTY_H

#include <limits.h>
#include <stdbool.h>

struct exec_tty {
	char dir[PATH_MAX];       /* a private temporary directory */
	char sock[PATH_MAX + 16]; /* dir/console.sock, listening */
	int listen_fd;
};

/* Creates and listens on the socket; prints why not. */
int exec_tty_listen(struct exec_tty *t);
/* Runs husk-runtime with args (which name t->sock), relays the terminal
 * until the process ends, and returns its exit status; removes t's
 * socket and directory. */
int exec_tty_run(struct exec_tty *t, const char *const *args, bool interactive);

#endif
