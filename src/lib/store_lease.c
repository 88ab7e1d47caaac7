/* Leases: the blobs a live store handle has written or claimed for an
 * image it has not recorded yet. Each handle has at most one lease file,
 * leases/<random>, one digest a line, flocked for the handle's life; GC
 * (under the global lock) keeps every digest of a lease whose flock is
 * taken, and deletes leases whose owner died. Lease files are created and
 * changed only under the global lock, so GC never sees one half made. */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static int lease_create(struct husk_store *s, struct husk_error *err)
{
	for (int tries = 0; tries < 100; tries++) {
		store_random_name("", s->lease_name);
		int fd = openat(
		    s->leases_fd, s->lease_name,
		    O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
		if (fd < 0 && errno == EEXIST)
			continue;
		if (fd < 0)
			return husk_err_errno(err, errno, "create lease in %s",
			                      s->root);
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int e = errno;
			unlinkat(s->leases_fd, s->lease_name, 0);
			close(fd);
			return husk_err_errno(err, e, "lock lease in %s",
			                      s->root);
		}
		s->lease_fd = fd;
		return 0;
	}
	return husk_err(err, EAGAIN, "cannot create a lease in %s", s->root);
}

int store_lease_add(struct husk_store *s, const char *digest,
                    struct husk_error *err)
{
	if (s->lease_fd < 0) {
		int rc = lease_create(s, err);
		if (rc < 0)
			return rc;
	}
	char line[HUSK_DIGEST_MAX + 1];
	int n = snprintf(line, sizeof(line), "%s\n", digest);
	int rc = store_write_all(s->lease_fd, line, (size_t)n);
	if (rc < 0)
		return husk_err_errno(err, -rc, "write lease in %s", s->root);
	return 0;
}

/* Calls fn for each valid digest line of text. */
static int for_each_line(char *text, int (*fn)(const char *d, void *ctx),
                         void *ctx)
{
	char *save = NULL;
	for (char *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		if (!husk_digest_valid(l))
			continue;
		int rc = fn(l, ctx);
		if (rc < 0)
			return rc;
	}
	return 0;
}

struct keep_ctx {
	const struct dset *done;
	char *out;
	size_t len;
};

static int keep_line(const char *d, void *ctx)
{
	struct keep_ctx *k = ctx;
	if (dset_has((struct dset *)k->done, d))
		return 0;
	k->len += (size_t)sprintf(k->out + k->len, "%s\n", d);
	return 0;
}

int store_lease_drop(struct husk_store *s, const struct dset *done,
                     struct husk_error *err)
{
	if (s->lease_fd < 0)
		return 0;
	char *text;
	size_t len;
	int rc = store_read_file(s->leases_fd, s->lease_name, &text, &len, err);
	if (rc < 0)
		return rc == -ENOENT ? 0 : rc;
	struct keep_ctx k = {.done = done, .out = malloc(len + 1)};
	if (!k.out) {
		free(text);
		return husk_err(err, ENOMEM, "lease: out of memory");
	}
	for_each_line(text, keep_line, &k);
	free(text);
	if (k.len == 0) {
		/* Nothing left to protect: no file to leave behind. */
		free(k.out);
		store_lease_close(s);
		return 0;
	}
	/* O_APPEND: after the truncation the write lands at offset 0. */
	if (ftruncate(s->lease_fd, 0) < 0 ||
	    store_write_all(s->lease_fd, k.out, k.len) < 0)
		rc = husk_err_errno(err, errno, "rewrite lease in %s", s->root);
	free(k.out);
	return rc;
}

static int add_root(const char *d, void *ctx)
{
	return dset_add(ctx, d);
}

int store_leases_collect(struct husk_store *s, struct dset *roots,
                         struct husk_error *err)
{
	int dup_fd = dup(s->leases_fd);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		return husk_err_errno(err, errno, "read %s/leases", s->root);
	}
	rewinddir(d);
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		int fd = openat(s->leases_fd, e->d_name,
		                O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			/* Its owner is gone: nothing it held matters. */
			unlinkat(s->leases_fd, e->d_name, 0);
			close(fd);
			continue;
		}
		close(fd);
		char *text;
		size_t len;
		rc = store_read_file(s->leases_fd, e->d_name, &text, &len, err);
		if (rc == -ENOENT) {
			rc = 0;
			continue;
		}
		if (rc == 0 && for_each_line(text, add_root, roots) < 0)
			rc = husk_err(err, ENOMEM, "leases: out of memory");
		free(text);
	}
	closedir(d);
	return rc;
}

void store_lease_close(struct husk_store *s)
{
	if (s->lease_fd < 0)
		return;
	unlinkat(s->leases_fd, s->lease_name, 0);
	close(s->lease_fd);
	s->lease_fd = -1;
}

int husk_store_release(struct husk_store *s, struct husk_error *err)
{
	int rc = store_lock(s, err);
	if (rc < 0)
		return rc;
	store_lease_close(s);
	store_unlock(s);
	return 0;
}
