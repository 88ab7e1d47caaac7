/* husk-agent: small helpers shared by the container's pieces (cgroup.c,
 * rootfs.c, rootfs_enter.c). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "share.h"

int agent_pathf(char *buf, size_t cap, struct husk_error *err, const char *fmt,
                ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap)
		return husk_err(err, ENAMETOOLONG, "path too long");
	return 0;
}

int agent_check_id(const char *id, struct husk_error *err)
{
	size_t n = id ? strnlen(id, 130) : 0;
	if (n == 0 || n > 128 || strchr(id, '/') || !strcmp(id, ".") ||
	    !strcmp(id, ".."))
		return husk_err(err, EINVAL, "bad container id '%.*s'",
		                (int)(n > 40 ? 40 : n), id ? id : "");
	/* STATE/shares holds the 9p shares (share.h), beside the
	 * containers' STATE/ID: releasing a container of that name would
	 * unmount them. */
	if (!strcmp(id, "shares"))
		return husk_err(err, EINVAL,
		                "container id 'shares' is reserved by the "
		                "agent");
	return 0;
}
