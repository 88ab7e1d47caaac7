/* Finding a program by name, before fork, so that a missing tool is an
 * error with a name rather than a child's exit status 127. */
#ifndef HUSK_PROGRAM_H
#define HUSK_PROGRAM_H

#include <stdbool.h>
#include <stddef.h>

/* Searches $PATH ("/usr/local/bin:/usr/bin:/bin" when unset or empty),
 * then extra_dirs (NULL, or ":"-separated directories searched after
 * $PATH), for an executable name; writes "DIR/name" of the first one found
 * into out. name is taken as a plain name: no '/' handling. */
bool husk_find_program(const char *name, const char *extra_dirs, char *out,
                       size_t cap);

#endif
