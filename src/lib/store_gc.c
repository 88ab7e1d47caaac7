/* Garbage collection of blobs, under the global lock: a blob stays when a
 * record references it or a live handle holds it (store_lease.c). */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int add_image_roots(struct husk_store *s, const char *id,
                           struct dset *roots, struct husk_error *err)
{
	struct husk_image img;
	struct husk_error e = {0};
	/* A record that cannot be read might reference any blob: stop
	 * rather than delete what it needs. */
	int rc = record_load(s, id, &img, &e);
	if (rc < 0)
		return husk_err(err, -rc, "not collecting garbage: %s", e.msg);
	rc = dset_add(roots, img.config_digest);
	if (rc == 0 && *img.manifest_digest)
		rc = dset_add(roots, img.manifest_digest);
	for (size_t i = 0; rc == 0 && i < img.n_layers; i++)
		rc = dset_add(roots, img.layers[i].digest);
	husk_image_free(&img);
	return rc < 0 ? husk_err(err, ENOMEM, "out of memory") : 0;
}

static int collect_roots(struct husk_store *s, struct dset *roots,
                         struct husk_error *err)
{
	struct dset ids = {0};
	int rc = record_ids(s, &ids, err);
	for (size_t i = 0; rc == 0 && i < ids.n; i++)
		rc = add_image_roots(s, ids.v[i], roots, err);
	dset_free(&ids);
	if (rc == 0)
		rc = store_leases_collect(s, roots, err);
	return rc;
}

static void sweep(struct husk_store *s, struct dset *roots,
                  struct husk_prune_result *res)
{
	int dup_fd = dup(s->blobs_fd);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		return;
	}
	rewinddir(d);
	struct dirent *e;
	while ((e = readdir(d))) {
		char digest[HUSK_DIGEST_MAX];
		/* Only blobs by their names; anything else is for check. */
		if (!store_digest_of_name(e->d_name, digest) ||
		    dset_has(roots, digest))
			continue;
		struct stat st;
		if (fstatat(s->blobs_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) <
		        0 ||
		    unlinkat(s->blobs_fd, e->d_name, 0) < 0)
			continue;
		res->blobs_deleted++;
		res->bytes_freed += (uint64_t)st.st_size;
	}
	closedir(d);
	fsync(s->blobs_fd);
}

int store_gc(struct husk_store *s, struct husk_prune_result *res,
             struct husk_error *err)
{
	struct dset roots = {0};
	int rc = collect_roots(s, &roots, err);
	if (rc == 0)
		sweep(s, &roots, res);
	dset_free(&roots);
	return rc;
}
