/* The image store's handle, its global lock and the file helpers every
 * other store_*.c file writes through. */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const subdirs[] = {
    "blobs", "blobs/sha256", "tmp", "partial", "images", "refs", "leases",
};

static int mkdir_p(const char *path, struct husk_error *err)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return husk_err(err, ENAMETOOLONG, "store root too long");
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return husk_err_errno(err, errno, "mkdir %s", buf);
		*p = '/';
	}
	/* The root itself is private: it holds what every image contains. */
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return husk_err_errno(err, errno, "mkdir %s", buf);
	return 0;
}

static int open_dir(struct husk_store *s, const char *name, int *fd,
                    struct husk_error *err)
{
	if (mkdirat(s->root_fd, name, 0755) < 0 && errno != EEXIST)
		return husk_err_errno(err, errno, "mkdir %s/%s", s->root, name);
	*fd = openat(s->root_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0)
		return husk_err_errno(err, errno, "open %s/%s", s->root, name);
	return 0;
}

static int open_layout(struct husk_store *s, struct husk_error *err)
{
	int rc = mkdir_p(s->root, err);
	if (rc < 0)
		return rc;
	s->root_fd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->root_fd < 0)
		return husk_err_errno(err, errno, "open store %s", s->root);
	int *fds[] = {NULL,          &s->blobs_fd, &s->tmp_fd,   &s->partial_fd,
	              &s->images_fd, &s->refs_fd,  &s->leases_fd};
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		int scratch = -1;
		rc = open_dir(s, subdirs[i], fds[i] ? fds[i] : &scratch, err);
		if (scratch >= 0)
			close(scratch);
		if (rc < 0)
			return rc;
	}
	s->lock_fd =
	    openat(s->root_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0)
		return husk_err_errno(err, errno, "open %s/lock", s->root);
	return 0;
}

int husk_store_open(const char *root, struct husk_store **out,
                    struct husk_error *err)
{
	*out = NULL;
	if (!root || !*root)
		root = getenv("HUSK_ROOT");
	if (!root || !*root)
		root = HUSK_STORE_DEFAULT_ROOT;
	struct husk_store *s = calloc(1, sizeof(*s));
	if (!s)
		return husk_err(err, ENOMEM, "store: out of memory");
	s->root_fd = s->lock_fd = s->blobs_fd = s->tmp_fd = -1;
	s->partial_fd = s->images_fd = s->refs_fd = s->leases_fd = -1;
	s->lease_fd = -1;
	if (snprintf(s->root, sizeof(s->root), "%s", root) >=
	    (int)sizeof(s->root)) {
		free(s);
		return husk_err(err, ENAMETOOLONG, "store root too long");
	}
	int rc = open_layout(s, err);
	if (rc < 0) {
		husk_store_close(s);
		return rc;
	}
	/* Leftovers of writers that died; live writers hold their flock. */
	store_clean_unlocked(s->tmp_fd, NULL);
	*out = s;
	return 0;
}

void husk_store_close(struct husk_store *s)
{
	if (!s)
		return;
	store_lease_close(s);
	int fds[] = {s->root_fd,    s->lock_fd,   s->blobs_fd, s->tmp_fd,
	             s->partial_fd, s->images_fd, s->refs_fd,  s->leases_fd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(s);
}

const char *husk_store_root(const struct husk_store *s)
{
	return s->root;
}

int store_lock(struct husk_store *s, struct husk_error *err)
{
	if (s->lock_depth++ > 0)
		return 0;
	while (flock(s->lock_fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			s->lock_depth--;
			return husk_err_errno(err, errno, "lock %s/lock",
			                      s->root);
		}
	}
	return 0;
}

void store_unlock(struct husk_store *s)
{
	if (--s->lock_depth == 0)
		flock(s->lock_fd, LOCK_UN);
}

void store_random_name(const char *prefix, char out[STORE_NAME_MAX])
{
	/* O_EXCL makes a clash harmless (the caller retries); randomness
	 * only makes clashes rare. Without entropy the clock stands in. */
	static unsigned counter;
	unsigned long long r = 0;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		r = (unsigned long long)ts.tv_nsec ^
		    ((unsigned long long)ts.tv_sec << 30);
	}
	snprintf(out, STORE_NAME_MAX, "%s%d-%016llx-%u", prefix, getpid(), r,
	         counter++);
}

bool store_still_linked(int dirfd, const char *name, int fd)
{
	struct stat a, b;
	return fstat(fd, &a) == 0 && a.st_nlink > 0 &&
	       fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int store_tmp_create(struct husk_store *s, char name[STORE_NAME_MAX], int *fd,
                     struct husk_error *err)
{
	for (int tries = 0; tries < 100; tries++) {
		store_random_name("", name);
		*fd = openat(s->tmp_fd, name,
		             O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (*fd < 0 && errno == EEXIST)
			continue;
		if (*fd < 0)
			return husk_err_errno(err, errno, "create %s/tmp/%s",
			                      s->root, name);
		/* Between open and flock a cleanup may have taken it. */
		if (flock(*fd, LOCK_EX | LOCK_NB) == 0 &&
		    store_still_linked(s->tmp_fd, name, *fd))
			return 0;
		close(*fd);
	}
	*fd = -1;
	return husk_err(err, EAGAIN, "cannot create a file in %s/tmp", s->root);
}

int store_write_atomic(struct husk_store *s, int dirfd, const char *name,
                       const char *data, size_t len, struct husk_error *err)
{
	char tmp[STORE_NAME_MAX];
	int fd;
	int rc = store_tmp_create(s, tmp, &fd, err);
	if (rc < 0)
		return rc;
	rc = store_write_all(fd, data, len);
	if (rc == 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
		rc = -errno;
	if (rc == 0 && renameat(s->tmp_fd, tmp, dirfd, name) < 0)
		rc = -errno;
	if (rc < 0) {
		unlinkat(s->tmp_fd, tmp, 0);
		close(fd);
		return husk_err_errno(err, -rc, "write %s in %s", name,
		                      s->root);
	}
	close(fd);
	/* The rename is durable only once the directory is synced. */
	fsync(dirfd);
	return 0;
}

int store_read_file(int dirfd, const char *name, char **data, size_t *len,
                    struct husk_error *err)
{
	*data = NULL;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT)
		return -ENOENT;
	if (fd < 0)
		return husk_err_errno(err, errno, "open %s", name);
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) < 0)
		rc = husk_err_errno(err, errno, "stat %s", name);
	else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > STORE_META_MAX)
		rc = husk_err(err, EFBIG, "%s: not a file of sane size", name);
	char *buf = rc == 0 ? malloc((size_t)st.st_size + 1) : NULL;
	if (rc == 0 && !buf)
		rc = husk_err(err, ENOMEM, "read %s: out of memory", name);
	size_t got = 0;
	while (rc == 0 && got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			rc = husk_err_errno(err, r < 0 ? errno : EIO, "read %s",
			                    name);
		else
			got += (size_t)r;
	}
	close(fd);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[got] = '\0';
	*data = buf;
	*len = got;
	return 0;
}

bool store_digest_of_name(const char *name, char out[HUSK_DIGEST_MAX])
{
	if (strlen(name) != HUSK_DIGEST_HEX)
		return false;
	memcpy(out, "sha256:", 7);
	memcpy(out + 7, name, HUSK_DIGEST_HEX + 1);
	return husk_digest_valid(out);
}

/* A file someone holds a flock on is in use; any other is a leftover. */
void store_clean_unlocked(int dirfd, size_t *removed)
{
	int dup_fd = dup(dirfd);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		return;
	}
	rewinddir(d);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		int fd = openat(dirfd, e->d_name,
		                O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0 &&
		    store_still_linked(dirfd, e->d_name, fd) &&
		    unlinkat(dirfd, e->d_name, 0) == 0 && removed)
			(*removed)++;
		close(fd);
	}
	closedir(d);
}

static int dset_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

int dset_add(struct dset *d, const char *digest)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		void *v = realloc(d->v, cap * sizeof(d->v[0]));
		if (!v)
			return -ENOMEM;
		d->v = v;
		d->cap = cap;
	}
	snprintf(d->v[d->n++], HUSK_DIGEST_MAX, "%s", digest);
	d->sorted = false;
	return 0;
}

bool dset_has(struct dset *d, const char *digest)
{
	if (!d->sorted) {
		if (d->n)
			qsort(d->v, d->n, sizeof(d->v[0]), dset_cmp);
		d->sorted = true;
	}
	return d->n && bsearch(digest, d->v, d->n, sizeof(d->v[0]), dset_cmp);
}

void dset_free(struct dset *d)
{
	free(d->v);
	memset(d, 0, sizeof(*d));
}
