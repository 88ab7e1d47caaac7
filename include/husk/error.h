/* The one error convention of libhusk.
 *
 * Library functions never print and never exit. A function that can fail
 * returns 0 (or a non-negative result) on success and a negative errno on
 * failure, and fills a caller-provided struct husk_error with a message
 * meant for a person. Only the front ends (husk, husk-runtime) print it.
 */
#ifndef HUSK_ERROR_H
#define HUSK_ERROR_H

#include <stddef.h>

struct husk_error {
	int code;      /* positive errno, 0 when no error was recorded */
	char msg[512]; /* "what failed: why" */
};

/* Records the error (if err is not NULL) and returns -code, so a caller can
 * write `return husk_err(err, EINVAL, "bad --cpus '%s'", s);`. */
int husk_err(struct husk_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like husk_err, and appends ": strerror(code)". */
int husk_err_errno(struct husk_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
