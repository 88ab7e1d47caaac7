#include "husk/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int record(struct husk_error *err, int code, int with_errno,
                  const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static int record(struct husk_error *err, int code, int with_errno,
                  const char *fmt, va_list ap)
{
	/* A caller that passes 0 or a negative value still gets a failure. */
	if (code <= 0)
		code = EIO;
	if (err) {
		int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		if (with_errno && n >= 0 && (size_t)n < sizeof(err->msg))
			snprintf(err->msg + n, sizeof(err->msg) - (size_t)n,
			         ": %s", strerror(code));
		err->code = code;
	}
	return -code;
}

int husk_err(struct husk_error *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = record(err, code, 0, fmt, ap);
	va_end(ap);
	return rc;
}

int husk_err_errno(struct husk_error *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = record(err, code, 1, fmt, ap);
	va_end(ap);
	return rc;
}
