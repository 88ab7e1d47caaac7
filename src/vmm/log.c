#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static bool debug_on;
static bool quiet;

void vmm_log_set_debug(bool on)
{
	debug_on = on;
}

void vmm_log_set_quiet(bool on)
{
	quiet = on;
}

static void emit(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));
static void emit(const char *fmt, va_list ap)
{
	char line[1024];
	vsnprintf(line, sizeof(line), fmt, ap);
	/* One write per line, so lines of different threads do not mix. */
	fprintf(stderr, "husk-vmm: %s\n", line);
}

void vmm_log(const char *fmt, ...)
{
	if (quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	emit(fmt, ap);
	va_end(ap);
}

void vmm_debug(const char *fmt, ...)
{
	if (quiet || !debug_on)
		return;
	va_list ap;
	va_start(ap, fmt);
	emit(fmt, ap);
	va_end(ap);
}
