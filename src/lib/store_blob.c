/* Blob writers: data streams into tmp/<random> (or, resumable, into
 * partial/<hex>), flocked by the writer; commit checks size and sha256,
 * fsyncs and renames into blobs/sha256/<hex>, so a blob is visible only
 * complete and verified. The rename and the lease entry that protects the
 * new blob from GC are done together under the global lock. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct husk_blob_writer {
	struct husk_store *s;
	int fd;
	int dirfd; /* tmp_fd or partial_fd */
	bool resumable;
	bool failed;
	char name[STORE_NAME_MAX];    /* in dirfd */
	char digest[HUSK_DIGEST_MAX]; /* expected; "" when not given */
	int64_t size;                 /* expected; HUSK_SIZE_UNKNOWN */
	uint64_t offset;
	struct husk_sha256 *hash;
};

static int hash_existing(struct husk_blob_writer *w, struct husk_error *err)
{
	if (lseek(w->fd, 0, SEEK_SET) < 0)
		return husk_err_errno(err, errno, "seek partial %s", w->digest);
	int rc = 0;
	char buf[64 * 1024];
	for (;;) {
		ssize_t r = read(w->fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			rc = husk_err_errno(err, errno, "read partial %s",
			                    w->digest);
		if (r <= 0)
			break;
		if (husk_sha256_update(w->hash, buf, (size_t)r) < 0)
			return husk_err(err, EIO, "sha256 failed");
		w->offset += (uint64_t)r;
	}
	return rc;
}

/* Opens partial/<hex>, taking its flock, and rehashes what it holds. */
static int open_partial(struct husk_blob_writer *w, struct husk_error *err)
{
	struct husk_store *s = w->s;
	w->dirfd = s->partial_fd;
	snprintf(w->name, sizeof(w->name), "%s", husk_digest_hex(w->digest));
	for (int tries = 0; tries < 100; tries++) {
		w->fd = openat(w->dirfd, w->name, O_RDWR | O_CREAT | O_CLOEXEC,
		               0600);
		if (w->fd < 0)
			return husk_err_errno(err, errno, "open partial %s",
			                      w->digest);
		if (flock(w->fd, LOCK_EX | LOCK_NB) < 0) {
			int e = errno;
			close(w->fd);
			w->fd = -1;
			if (e == EWOULDBLOCK)
				return husk_err(err, EBUSY,
				                "blob %s is being written by "
				                "another process",
				                w->digest);
			return husk_err_errno(err, e, "lock partial %s",
			                      w->digest);
		}
		/* A commit or prune may have taken the file meanwhile. */
		if (store_still_linked(w->dirfd, w->name, w->fd))
			break;
		close(w->fd);
		w->fd = -1;
	}
	if (w->fd < 0)
		return husk_err(err, EAGAIN, "cannot open partial %s",
		                w->digest);
	int rc = hash_existing(w, err);
	if (rc == 0 && w->size >= 0 && w->offset > (uint64_t)w->size) {
		/* More than the blob can hold: not a prefix of it. */
		if (ftruncate(w->fd, 0) < 0)
			return husk_err_errno(err, errno, "truncate partial");
		husk_sha256_free(w->hash);
		w->hash = husk_sha256_new();
		w->offset = 0;
		if (!w->hash)
			return husk_err(err, ENOMEM, "out of memory");
	}
	return rc;
}

static void writer_free(struct husk_blob_writer *w, bool remove_data)
{
	if (remove_data && w->fd >= 0)
		unlinkat(w->dirfd, w->name, 0);
	if (w->fd >= 0)
		close(w->fd); /* releases the flock */
	husk_sha256_free(w->hash);
	free(w);
}

int husk_store_blob_begin(struct husk_store *s, const char *digest,
                          int64_t size, unsigned flags,
                          struct husk_blob_writer **out, struct husk_error *err)
{
	*out = NULL;
	if (digest && !husk_digest_valid(digest))
		return husk_err(err, EINVAL, "invalid blob digest '%s'",
		                digest);
	if ((flags & HUSK_BLOB_RESUMABLE) && !digest)
		return husk_err(err, EINVAL,
		                "a resumable blob needs its digest");
	if (size < HUSK_SIZE_UNKNOWN)
		return husk_err(err, EINVAL, "invalid blob size %" PRId64,
		                size);
	struct husk_blob_writer *w = calloc(1, sizeof(*w));
	if (!w || !(w->hash = husk_sha256_new())) {
		free(w);
		return husk_err(err, ENOMEM, "blob writer: out of memory");
	}
	w->s = s;
	w->fd = -1;
	w->size = size;
	w->resumable = flags & HUSK_BLOB_RESUMABLE;
	snprintf(w->digest, sizeof(w->digest), "%s", digest ? digest : "");
	int rc;
	if (w->resumable) {
		rc = open_partial(w, err);
	} else {
		w->dirfd = s->tmp_fd;
		rc = store_tmp_create(s, w->name, &w->fd, err);
	}
	if (rc < 0) {
		writer_free(w, false);
		return rc;
	}
	*out = w;
	return 0;
}

uint64_t husk_blob_writer_offset(const struct husk_blob_writer *w)
{
	return w->offset;
}

int husk_blob_writer_write(struct husk_blob_writer *w, const void *p, size_t n,
                           struct husk_error *err)
{
	if (w->failed)
		return husk_err(err, EIO, "blob %s: writer failed earlier",
		                w->digest);
	if (w->size >= 0 && (n > (uint64_t)w->size - w->offset))
		return husk_err(err, EFBIG,
		                "blob %s: more data than the expected %" PRId64
		                " bytes",
		                *w->digest ? w->digest : "(new)", w->size);
	int rc = store_write_all(w->fd, p, n);
	if (rc == 0 && husk_sha256_update(w->hash, p, n) < 0)
		rc = -EIO;
	if (rc < 0) {
		/* Keep the file a prefix of the blob, so a resume can work. */
		w->failed = true;
		if (ftruncate(w->fd, (off_t)w->offset) == 0)
			lseek(w->fd, (off_t)w->offset, SEEK_SET);
		return husk_err_errno(err, -rc, "write blob %s", w->digest);
	}
	w->offset += n;
	return 0;
}

/* Checks size and digest; on success got holds the digest. */
static int writer_verify(struct husk_blob_writer *w, char *got, bool *keep,
                         struct husk_error *err)
{
	*keep = false;
	if (w->failed)
		return husk_err(err, EIO, "blob %s: writer failed earlier",
		                w->digest);
	if (w->size >= 0 && w->offset != (uint64_t)w->size) {
		*keep = w->resumable; /* a valid prefix, to resume */
		return husk_err(err, EBADMSG,
		                "blob %s is incomplete: %" PRIu64 " of %" PRId64
		                " bytes",
		                w->digest, w->offset, w->size);
	}
	if (husk_sha256_final(w->hash, got) < 0)
		return husk_err(err, EIO, "sha256 failed");
	if (*w->digest && strcmp(got, w->digest) != 0)
		return husk_err(err, EBADMSG,
		                "digest mismatch: expected %s, got %s",
		                w->digest, got);
	return 0;
}

static int publish(struct husk_blob_writer *w, const char *digest,
                   struct husk_error *err)
{
	struct husk_store *s = w->s;
	if (fchmod(w->fd, 0444) < 0 || fsync(w->fd) < 0)
		return husk_err_errno(err, errno, "sync blob %s", digest);
	int rc = store_lock(s, err);
	if (rc < 0)
		return rc;
	/* The lease first: once renamed, GC must already see it held. */
	rc = store_lease_add(s, digest, err);
	if (rc == 0 && renameat(w->dirfd, w->name, s->blobs_fd,
	                        husk_digest_hex(digest)) < 0)
		rc = husk_err_errno(err, errno, "publish blob %s", digest);
	store_unlock(s);
	if (rc == 0)
		fsync(s->blobs_fd);
	return rc;
}

int husk_blob_writer_commit(struct husk_blob_writer *w,
                            char digest_out[HUSK_DIGEST_MAX],
                            struct husk_error *err)
{
	char got[HUSK_DIGEST_MAX];
	bool keep;
	int rc = writer_verify(w, got, &keep, err);
	if (rc == 0)
		rc = publish(w, got, err);
	if (rc == 0 && digest_out)
		memcpy(digest_out, got, sizeof(got));
	/* A failure removes the data unless it is a resumable prefix. */
	writer_free(w, rc < 0 && !keep);
	return rc;
}

void husk_blob_writer_abort(struct husk_blob_writer *w)
{
	if (w)
		writer_free(w, !w->resumable);
}
