/* Program lookup along $PATH; see husk/program.h. */
#include "husk/program.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool husk_find_program(const char *name, const char *extra_dirs, char *out,
                       size_t cap)
{
	const char *env = getenv("PATH");
	char dirs[4096];
	snprintf(dirs, sizeof(dirs), "%s%s%s",
	         env && *env ? env : "/usr/local/bin:/usr/bin:/bin",
	         extra_dirs ? ":" : "", extra_dirs ? extra_dirs : "");
	char *save = NULL;
	for (char *d = strtok_r(dirs, ":", &save); d;
	     d = strtok_r(NULL, ":", &save)) {
		int n = snprintf(out, cap, "%s/%s", d, name);
		if (n > 0 && (size_t)n < cap && access(out, X_OK) == 0)
			return true;
	}
	return false;
}
