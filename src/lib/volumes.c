/* A container's volumes for the VM and the agent; see husk/volumes.h. */
#include "husk/volumes.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static int add_mount(struct husk_volumes *v, struct husk_error *err,
                     const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int add_mount(struct husk_volumes *v, struct husk_error *err,
                     const char *fmt, ...)
{
	if (v->nmounts == HUSK_PROTO_MAX_MOUNTS)
		return husk_err(err, E2BIG, "more than %d mounts",
		                HUSK_PROTO_MAX_MOUNTS);
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&v->mounts[v->nmounts], fmt, ap);
	va_end(ap);
	if (n < 0) {
		v->mounts[v->nmounts] = NULL;
		return husk_err(err, ENOMEM, "out of memory");
	}
	v->nmounts++;
	return 0;
}

int husk_volumes_add_dir(struct husk_volumes *v, const char *host,
                         const char *dest, bool readonly,
                         struct husk_error *err)
{
	const char *mode = readonly ? "ro" : "rw";
	struct stat st;
	if (stat(host, &st) < 0)
		return husk_err_errno(err, errno, "volume %s", host);
	/* a host agent binds files too */
	if (!S_ISDIR(st.st_mode) && !v->host_agent)
		return husk_err(err, ENOTDIR,
		                "volume %s: only directories can be shared "
		                "with the VM",
		                host);
	if (v->host_agent)
		return add_mount(v, err, "bind:%s:%s:%s", host, mode, dest);
	if (v->nshares == HUSK_VM_MAX_SHARES)
		return husk_err(err, E2BIG, "more than %d volumes",
		                HUSK_VM_MAX_SHARES);
	size_t k = v->nshares;
	snprintf(v->tags[k], sizeof(v->tags[k]), "vol%zu", k);
	int rc = add_mount(v, err, "9p:%s:%s:%s", v->tags[k], mode, dest);
	if (rc < 0)
		return rc;
	v->shares[k] = (struct husk_vm_share){
	    .tag = v->tags[k], .path = host, .readonly = readonly};
	v->nshares++;
	return 0;
}

int husk_volumes_add_share_dir(struct husk_volumes *v, const char *where,
                               const char *dest, bool readonly,
                               struct husk_error *err)
{
	return add_mount(v, err, "9p:%s:%s:%s", where, readonly ? "ro" : "rw",
	                 dest);
}

int husk_volumes_add_tmpfs(struct husk_volumes *v, const char *dest,
                           struct husk_error *err)
{
	return add_mount(v, err, "tmpfs::rw:%s", dest);
}

void husk_volumes_free(struct husk_volumes *v)
{
	for (size_t i = 0; i < v->nmounts; i++)
		free(v->mounts[i]);
	v->nmounts = 0;
	v->nshares = 0;
}
