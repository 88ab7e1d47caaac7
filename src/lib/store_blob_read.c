/* Finding, holding and reading blobs already in the store. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int check_digest(const char *digest, struct husk_error *err)
{
	if (!husk_digest_valid(digest))
		return husk_err(err, EINVAL, "invalid blob digest '%s'",
		                digest ? digest : "(null)");
	return 0;
}

int husk_store_blob_partial(struct husk_store *s, const char *digest,
                            uint64_t *offset, struct husk_error *err)
{
	*offset = 0;
	int rc = check_digest(digest, err);
	if (rc < 0)
		return rc;
	struct stat st;
	if (fstatat(s->partial_fd, husk_digest_hex(digest), &st,
	            AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return husk_err_errno(err, errno, "stat partial %s", digest);
	}
	*offset = (uint64_t)st.st_size;
	return 0;
}

int husk_store_blob_path(const struct husk_store *s, const char *digest,
                         char *out, size_t cap, struct husk_error *err)
{
	int rc = check_digest(digest, err);
	if (rc < 0)
		return rc;
	int n = snprintf(out, cap, "%s/blobs/sha256/%s", s->root,
	                 husk_digest_hex(digest));
	if (n < 0 || (size_t)n >= cap)
		return husk_err(err, ENOSPC, "blob path too long");
	return 0;
}

bool husk_store_blob_has(struct husk_store *s, const char *digest)
{
	struct stat st;
	return husk_digest_valid(digest) &&
	       fstatat(s->blobs_fd, husk_digest_hex(digest), &st,
	               AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISREG(st.st_mode);
}

int husk_store_blob_hold(struct husk_store *s, const char *digest,
                         struct husk_error *err)
{
	int rc = check_digest(digest, err);
	if (rc == 0)
		rc = store_lock(s, err);
	if (rc < 0)
		return rc;
	/* Under the lock, GC cannot remove it between the test and the
	 * lease entry. */
	if (husk_store_blob_has(s, digest)) {
		rc = store_lease_add(s, digest, err);
		if (rc == 0)
			rc = 1;
	}
	store_unlock(s);
	return rc;
}

static int verify_fd(int fd, const char *digest, struct husk_error *err)
{
	char got[HUSK_DIGEST_MAX];
	int rc = husk_sha256_fd(fd, got, NULL, err);
	if (rc == 0 && strcmp(got, digest) != 0)
		rc = husk_err(err, EBADMSG,
		              "blob %s is corrupt: its content has digest %s",
		              digest, got);
	if (rc == 0 && lseek(fd, 0, SEEK_SET) < 0)
		rc = husk_err_errno(err, errno, "seek blob %s", digest);
	return rc;
}

int husk_store_blob_open(struct husk_store *s, const char *digest, int64_t size,
                         bool verify, int *fd, struct husk_error *err)
{
	*fd = -1;
	int rc = check_digest(digest, err);
	if (rc < 0)
		return rc;
	int f = openat(s->blobs_fd, husk_digest_hex(digest),
	               O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (f < 0 && errno == ENOENT)
		return husk_err(err, ENOENT, "blob %s is not in the store",
		                digest);
	if (f < 0)
		return husk_err_errno(err, errno, "open blob %s", digest);
	struct stat st;
	if (fstat(f, &st) < 0)
		rc = husk_err_errno(err, errno, "stat blob %s", digest);
	else if (!S_ISREG(st.st_mode))
		rc = husk_err(err, EBADMSG, "blob %s is not a file", digest);
	else if (size >= 0 && st.st_size != size)
		rc = husk_err(err, EBADMSG,
		              "blob %s has %lld bytes, expected %" PRId64,
		              digest, (long long)st.st_size, size);
	if (rc == 0 && verify)
		rc = verify_fd(f, digest, err);
	if (rc < 0) {
		close(f);
		return rc;
	}
	*fd = f;
	return 0;
}

static int read_all(int fd, char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		got += (size_t)r;
	}
	return 0;
}

int husk_store_blob_read(struct husk_store *s, const char *digest, size_t max,
                         char **data, size_t *len, struct husk_error *err)
{
	*data = NULL;
	int fd;
	int rc =
	    husk_store_blob_open(s, digest, HUSK_SIZE_UNKNOWN, false, &fd, err);
	if (rc < 0)
		return rc;
	struct stat st;
	char *buf = NULL;
	if (fstat(fd, &st) < 0)
		rc = husk_err_errno(err, errno, "stat blob %s", digest);
	else if ((uint64_t)st.st_size > max)
		rc = husk_err(err, EFBIG, "blob %s is larger than %zu bytes",
		              digest, max);
	else if (!(buf = malloc((size_t)st.st_size + 1)))
		rc = husk_err(err, ENOMEM, "read blob: out of memory");
	if (rc == 0 && (rc = read_all(fd, buf, (size_t)st.st_size)) < 0)
		rc = husk_err_errno(err, -rc, "read blob %s", digest);
	close(fd);
	char got[HUSK_DIGEST_MAX];
	if (rc == 0)
		rc = husk_sha256_buf(buf, (size_t)st.st_size, got, err);
	if (rc == 0 && strcmp(got, digest) != 0)
		rc = husk_err(err, EBADMSG,
		              "blob %s is corrupt: its content has digest %s",
		              digest, got);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[st.st_size] = '\0';
	*data = buf;
	*len = (size_t)st.st_size;
	return 0;
}

int husk_store_blob_put(struct husk_store *s, const void *p, size_t n,
                        char digest_out[HUSK_DIGEST_MAX],
                        struct husk_error *err)
{
	struct husk_blob_writer *w;
	int rc = husk_store_blob_begin(s, NULL, (int64_t)n, 0, &w, err);
	if (rc < 0)
		return rc;
	rc = husk_blob_writer_write(w, p, n, err);
	if (rc < 0) {
		husk_blob_writer_abort(w);
		return rc;
	}
	return husk_blob_writer_commit(w, digest_out, err);
}
