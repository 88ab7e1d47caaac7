/* A directory tree as a cached, read-only filesystem image.
 *
 * The cache key is a SHA-256 over everything that ends up in the image
 * except modification times, so that copying a tree (which changes its
 * mtimes unless done with care) still finds the image built before. The
 * image itself is made by mkfs.erofs (compact, read-only by design, what
 * the guest kernel mounts first) or, where that is missing or fails, by
 * mkfs.ext4 -d.
 */
#include "husk/rootfs_disk.h"

#include <dirent.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <search.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "husk/program.h"

/* Bumped whenever the record format below changes, so that images built
 * under an older key scheme are never mistaken for current ones. */
#define HASH_FORMAT "husk-rootfs-v1"

#define READ_CHUNK (128 * 1024)

/* A non-directory with more than one link: the first path seen inside
 * the tree, so that later links hash as "the same file as PATH". */
struct link {
	dev_t dev;
	ino_t ino;
	char *rel;
};

struct walk {
	EVP_MD_CTX *md;
	char path[PATH_MAX]; /* dir/relative path, for messages and xattrs */
	size_t root_len;     /* where the relative part starts (after '/') */
	void *links;         /* tsearch tree of struct link */
	unsigned char *buf;  /* READ_CHUNK bytes for file contents */
	uint64_t bytes;      /* data an ext4 image of the tree needs */
	uint64_t entries;    /* inodes */
	struct husk_error *err;
};

static int link_cmp(const void *a, const void *b)
{
	const struct link *x = a, *y = b;
	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return 0;
}

static void link_free(void *p)
{
	struct link *l = p;
	free(l->rel);
	free(l);
}

static void put(struct walk *w, const void *p, size_t n)
{
	EVP_DigestUpdate(w->md, p, n);
}

/* Fixed width and byte order, so that the key is the same on every host. */
static void put_u64(struct walk *w, uint64_t v)
{
	unsigned char b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	put(w, b, sizeof(b));
}

/* With its NUL: paths and targets cannot contain one, so the record
 * stays unambiguous. */
static void put_str(struct walk *w, const char *s)
{
	put(w, s, strlen(s) + 1);
}

/* The path relative to the root, "." for the root itself. */
static const char *rel_path(const struct walk *w)
{
	if (strlen(w->path) < w->root_len)
		return ".";
	return w->path + w->root_len;
}

static uint64_t round_block(uint64_t n)
{
	return (n + 4095) & ~(uint64_t)4095;
}

static char type_char(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return 'f';
	case S_IFDIR: return 'd';
	case S_IFLNK: return 'l';
	case S_IFCHR: return 'c';
	case S_IFBLK: return 'b';
	case S_IFIFO: return 'p';
	case S_IFSOCK: return 's';
	}
	return '?';
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int hash_xattrs(struct walk *w)
{
	ssize_t len = llistxattr(w->path, NULL, 0);
	if (len < 0 && (errno == ENOTSUP || errno == ENODATA))
		len = 0;
	if (len < 0)
		return husk_err_errno(w->err, errno, "list xattrs of %s",
		                      w->path);
	if (len == 0) {
		put_u64(w, 0);
		return 0;
	}
	int rc = 0;
	char *names = malloc((size_t)len);
	char **sorted = calloc((size_t)len, sizeof(char *));
	char *value = malloc(XATTR_SIZE_MAX);
	if (!names || !sorted || !value) {
		rc = husk_err(w->err, ENOMEM, "xattrs of %s", w->path);
		goto out;
	}
	len = llistxattr(w->path, names, (size_t)len);
	if (len < 0) {
		rc =
		    husk_err_errno(w->err, errno, "list xattrs of %s", w->path);
		goto out;
	}
	size_t n = 0;
	for (char *p = names; p < names + len; p += strlen(p) + 1)
		sorted[n++] = p;
	qsort(sorted, n, sizeof(*sorted), name_cmp);
	put_u64(w, n);
	for (size_t i = 0; i < n; i++) {
		ssize_t v =
		    lgetxattr(w->path, sorted[i], value, XATTR_SIZE_MAX);
		if (v < 0) {
			rc =
			    husk_err_errno(w->err, errno, "read xattr %s of %s",
			                   sorted[i], w->path);
			goto out;
		}
		put_str(w, sorted[i]);
		put_u64(w, (uint64_t)v);
		put(w, value, (size_t)v);
	}
out:
	free(names);
	free(sorted);
	free(value);
	return rc;
}

static int hash_contents(struct walk *w, int dfd, const char *name,
                         const struct stat *st)
{
	int fd =
	    openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return husk_err_errno(w->err, errno, "cannot read %s", w->path);
	uint64_t total = 0;
	ssize_t n;
	while ((n = read(fd, w->buf, READ_CHUNK)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			return husk_err_errno(w->err, e, "cannot read %s",
			                      w->path);
		}
		put(w, w->buf, (size_t)n);
		total += (uint64_t)n;
	}
	close(fd);
	/* The size went into the record before the bytes; a file that
	 * grew or shrank meanwhile would make the key lie. */
	if (total != (uint64_t)st->st_size)
		return husk_err(w->err, EAGAIN,
		                "%s changed while it was being hashed",
		                w->path);
	return 0;
}

/* Sets *seen when this inode was already hashed under another path of
 * the tree; the record then names that path instead of repeating the
 * file, so that a hard link and a copy differ as their images do. */
static int hash_hard_link(struct walk *w, const struct stat *st, bool *seen)
{
	*seen = false;
	if (S_ISDIR(st->st_mode) || st->st_nlink < 2)
		return 0;
	struct link key = {.dev = st->st_dev, .ino = st->st_ino};
	struct link **found = tfind(&key, &w->links, link_cmp);
	if (found) {
		put(w, "L", 1);
		put_str(w, (*found)->rel);
		*seen = true;
		return 0;
	}
	struct link *l = malloc(sizeof(*l));
	if (l) {
		*l = key;
		l->rel = strdup(rel_path(w));
	}
	if (!l || !l->rel || !tsearch(l, &w->links, link_cmp)) {
		if (l)
			free(l->rel);
		free(l);
		return husk_err(w->err, ENOMEM, "hashing %s", w->path);
	}
	return 0;
}

static int hash_dir(struct walk *w, int fd);

/* One entry: dfd/name, whose full path is already in w->path. */
static int hash_entry(struct walk *w, int dfd, const char *name)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return husk_err_errno(w->err, errno, "stat %s", w->path);
	bool dev = S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode);
	bool sized = S_ISREG(st.st_mode) || S_ISLNK(st.st_mode);
	put_str(w, rel_path(w));
	put(w, (char[]){type_char(st.st_mode)}, 1);
	put_u64(w, st.st_mode & 07777);
	put_u64(w, st.st_uid);
	put_u64(w, st.st_gid);
	/* A directory's size depends on the filesystem it sits on, not on
	 * what it holds: a copy elsewhere must not change the key. */
	put_u64(w, sized ? (uint64_t)st.st_size : 0);
	put_u64(w, dev ? major(st.st_rdev) : 0);
	put_u64(w, dev ? minor(st.st_rdev) : 0);
	w->entries++;

	int rc = hash_xattrs(w);
	bool seen = false;
	if (rc == 0)
		rc = hash_hard_link(w, &st, &seen);
	if (rc < 0 || seen)
		return rc;

	if (S_ISREG(st.st_mode)) {
		w->bytes += round_block((uint64_t)st.st_size);
		return hash_contents(w, dfd, name, &st);
	}
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX + 1];
		ssize_t n = readlinkat(dfd, name, target, PATH_MAX);
		if (n < 0)
			return husk_err_errno(w->err, errno, "readlink %s",
			                      w->path);
		target[n] = '\0';
		put_str(w, target);
		w->bytes += n > 60 ? 4096 : 0; /* ext4 inlines short ones */
		return 0;
	}
	if (S_ISDIR(st.st_mode)) {
		int sub = openat(
		    dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return husk_err_errno(w->err, errno, "cannot open %s",
			                      w->path);
		return hash_dir(w, sub);
	}
	return 0;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* The names in a directory, sorted bytewise: readdir order differs
 * between filesystems and copies, and strcoll between locales. */
static int list_dir(struct walk *w, DIR *d, char ***out, size_t *count)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	errno = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			char **grown = realloc(names, cap * sizeof(*names));
			if (!grown)
				goto nomem;
			names = grown;
		}
		if (!(names[n] = strdup(e->d_name)))
			goto nomem;
		n++;
		errno = 0;
	}
	if (errno) {
		int e2 = errno;
		free_names(names, n);
		return husk_err_errno(w->err, e2, "read directory %s", w->path);
	}
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	*out = names;
	*count = n;
	return 0;
nomem:
	free_names(names, n);
	return husk_err(w->err, ENOMEM, "read directory %s", w->path);
}

/* Takes ownership of fd, a directory whose path is in w->path. */
static int hash_dir(struct walk *w, int fd)
{
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return husk_err_errno(w->err, e, "cannot open %s", w->path);
	}
	char **names = NULL;
	size_t n = 0;
	int rc = list_dir(w, d, &names, &n);
	size_t len = strlen(w->path);
	w->bytes += 4096;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		int k = snprintf(w->path + len, sizeof(w->path) - len, "/%s",
		                 names[i]);
		if (k < 0 || (size_t)k >= sizeof(w->path) - len) {
			w->path[len] = '\0';
			rc = husk_err(w->err, ENAMETOOLONG,
			              "path too long under %s", w->path);
			break;
		}
		w->bytes += 32 + strlen(names[i]);
		rc = hash_entry(w, dirfd(d), names[i]);
		w->path[len] = '\0';
	}
	free_names(names, n);
	closedir(d);
	return rc;
}

static void to_hex(const unsigned char *md, unsigned len, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	for (unsigned i = 0; i < len; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[2 * len] = '\0';
}

/* The walk behind husk_rootfs_hash; also returns the size estimate and
 * the root's owner that an ext4 build needs. */
static int hash_tree(const char *dir, char *hex, struct walk *w,
                     struct stat *root, struct husk_error *err)
{
	memset(w, 0, sizeof(*w));
	w->err = err;
	/* The root may be a symlink (--rootfs ./current); resolving it
	 * once lets the walk treat every path below without following. */
	char *real = realpath(dir, NULL);
	if (!real)
		return husk_err_errno(err, errno, "rootfs %s", dir);
	int rc = 0;
	if (stat(real, root) < 0)
		rc = husk_err_errno(err, errno, "rootfs %s", dir);
	else if (!S_ISDIR(root->st_mode))
		rc =
		    husk_err(err, ENOTDIR, "rootfs %s is not a directory", dir);
	else if (strlen(real) + 1 >= sizeof(w->path))
		rc = husk_err(err, ENAMETOOLONG, "rootfs path too long");
	if (rc < 0) {
		free(real);
		return rc;
	}
	strcpy(w->path, real);
	w->root_len = strlen(real) + 1;
	free(real);
	w->md = EVP_MD_CTX_new();
	w->buf = malloc(READ_CHUNK);
	if (!w->md || !w->buf ||
	    EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1) {
		rc = husk_err(err, ENOMEM, "sha256 for rootfs %s", dir);
		goto out;
	}
	put_str(w, HASH_FORMAT);
	rc = hash_entry(w, AT_FDCWD, w->path);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (rc == 0 && EVP_DigestFinal_ex(w->md, md, &mdlen) != 1)
		rc = husk_err(err, EIO, "sha256 for rootfs %s", dir);
	if (rc == 0)
		to_hex(md, mdlen, hex);
out:
	EVP_MD_CTX_free(w->md);
	free(w->buf);
	tdestroy(w->links, link_free);
	w->md = NULL;
	w->buf = NULL;
	w->links = NULL;
	return rc;
}

int husk_rootfs_hash(const char *dir, char *hex, struct husk_error *err)
{
	struct walk *w = malloc(sizeof(*w));
	if (!w)
		return husk_err(err, ENOMEM, "hashing rootfs %s", dir);
	struct stat root;
	int rc = hash_tree(dir, hex, w, &root, err);
	free(w);
	return rc;
}

/* mkdir -p with mode 0700 for what it creates: the cache holds images of
 * private trees. */
static int make_dirs(const char *dir, struct husk_error *err)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path))
		return husk_err(err, ENAMETOOLONG, "cache directory too long");
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return husk_err_errno(err, errno, "create %s", path);
		*p = c;
		if (!c)
			break;
	}
	struct stat st;
	if (stat(dir, &st) < 0)
		return husk_err_errno(err, errno, "cache directory %s", dir);
	if (!S_ISDIR(st.st_mode))
		return husk_err(err, ENOTDIR, "cache %s is not a directory",
		                dir);
	return 0;
}

#define STDERR_KEEP 8192

/* Keeps the last bytes of a tool's stderr. */
static void keep_tail(char *tail, size_t cap, size_t *len, const char *p,
                      size_t n)
{
	if (n >= cap - 1) {
		p += n - (cap - 1);
		n = cap - 1;
	}
	if (*len + n > cap - 1) {
		size_t drop = *len + n - (cap - 1);
		memmove(tail, tail + drop, *len - drop);
		*len -= drop;
	}
	memcpy(tail + *len, p, n);
	*len += n;
	tail[*len] = '\0';
}

/* The part of a tool's stderr worth a message, on one line, cut from the
 * front to fit: its error lines when it marks them ("<E>" in mkfs.erofs,
 * which prints its whole usage after them), else its last bytes. */
static void summarize(const char *text, char *out, size_t cap)
{
	char *errors = malloc(STDERR_KEEP);
	size_t elen = 0;
	for (const char *line = text; errors && *line;) {
		const char *nl = strchrnul(line, '\n');
		if (memmem(line, (size_t)(nl - line), "<E>", 3)) {
			memcpy(errors + elen, line, (size_t)(nl - line));
			elen += (size_t)(nl - line);
			errors[elen++] = '\n';
		}
		line = *nl ? nl + 1 : nl;
	}
	if (errors)
		errors[elen] = '\0';
	const char *src = elen ? errors : text;
	size_t n = strlen(src);
	while (n && strchr("\n\r\t ", src[n - 1]))
		n--;
	size_t from = n > cap - 1 ? n - (cap - 1) : 0;
	size_t i = 0;
	for (size_t k = from; k < n; k++)
		out[i++] = strchr("\n\r\t", src[k]) ? ' ' : src[k];
	out[i] = '\0';
	free(errors);
}

/* Runs prog with argv (no shell), stdin and stdout on /dev/null and the
 * gist of its stderr in why. Returns the wait status. */
static int run_tool(const char *prog, char *const argv[], char *why, size_t cap,
                    struct husk_error *err)
{
	int pipefd[2];
	why[0] = '\0';
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return husk_err_errno(err, errno, "pipe for %s", argv[0]);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	pid_t pid = null < 0 ? -1 : fork();
	if (pid == 0) {
		/* dup2 clears close-on-exec on the copies; everything of
		 * ours stays closed in the tool. */
		if (dup2(null, 0) < 0 || dup2(null, 1) < 0 ||
		    dup2(pipefd[1], 2) < 0)
			_exit(127);
		execv(prog, argv);
		_exit(127);
	}
	int e = errno;
	close(pipefd[1]);
	if (null >= 0)
		close(null);
	char *tail = pid < 0 ? NULL : malloc(STDERR_KEEP);
	if (!tail) {
		close(pipefd[0]);
		if (pid > 0)
			waitpid(pid, NULL, 0);
		return husk_err_errno(err, pid < 0 ? e : ENOMEM, "start %s",
		                      argv[0]);
	}
	char buf[1024];
	size_t len = 0;
	ssize_t n;
	tail[0] = '\0';
	while ((n = read(pipefd[0], buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		keep_tail(tail, STDERR_KEEP, &len, buf, (size_t)n);
	}
	close(pipefd[0]);
	summarize(tail, why, cap);
	free(tail);
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return husk_err_errno(err, errno, "wait for %s",
			                      argv[0]);
	}
	return status;
}

/* "exit status N" or "killed by signal N", for messages. */
static void describe_status(int status, char *out, size_t cap)
{
	if (WIFEXITED(status))
		snprintf(out, cap, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, cap, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(out, cap, "wait status %#x", status);
}

/* snprintf whose truncation is intended: reasons are cut to fit. */
static void say(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
}

/* Runs a mkfs; a failure (missing tool included) leaves its reason in
 * why and returns a negative errno, without touching err. */
static int run_mkfs(const char *name, char *const argv[], char *why, size_t cap)
{
	char prog[PATH_MAX];
	/* mkfs.ext4 lives in sbin, which an ordinary user's PATH often
	 * lacks. */
	if (!husk_find_program(name, "/usr/sbin:/sbin", prog, sizeof(prog))) {
		say(why, cap, "%s is not installed", name);
		return -ENOENT;
	}
	struct husk_error e = {0};
	char tail[200];
	int status = run_tool(prog, argv, tail, sizeof(tail), &e);
	if (status < 0) {
		say(why, cap, "%s", e.msg);
		return status;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char how[48];
	describe_status(status, how, sizeof(how));
	say(why, cap, "%s failed (%s)%s%s", name, how, tail[0] ? ": " : "",
	    tail);
	return -EIO;
}

static int build_erofs(const char *dir, const char *tmp, char *why, size_t cap)
{
	/* Defaults keep owners, modes, hard links, xattrs and mtimes;
	 * uncompressed, so that the guest maps file data straight from
	 * the page cache. */
	char *argv[] = {"mkfs.erofs", "--quiet", (char *)tmp, (char *)dir,
	                NULL};
	return run_mkfs("mkfs.erofs", argv, why, cap);
}

static int build_ext4(const char *dir, const char *tmp, const struct walk *w,
                      const struct stat *root, char *why, size_t cap)
{
	/* Room for the data and metadata ext4 adds, with slack. */
	uint64_t size = w->bytes + w->bytes * 3 / 10 + (16 << 20);
	size = round_block(size);
	/* From zero: what a failed mkfs.erofs left must not linger. */
	if (truncate(tmp, 0) < 0 || truncate(tmp, (off_t)size) < 0) {
		int e = errno;
		say(why, cap, "size %s: %s", tmp, strerror(e));
		return -e;
	}
	char inodes[32], owner[64];
	snprintf(inodes, sizeof(inodes), "%" PRIu64,
	         w->entries + w->entries / 4 + 64);
	/* mkfs.ext4 -d copies every owner but the root's, which it would
	 * make ours. */
	snprintf(owner, sizeof(owner), "root_owner=%u:%u",
	         (unsigned)root->st_uid, (unsigned)root->st_gid);
	char *argv[] = {"mkfs.ext4", "-q", "-F",  "-O",   "^has_journal",
	                "-m",        "0",  "-b",  "4096", "-N",
	                inodes,      "-E", owner, "-d",   (char *)dir,
	                (char *)tmp, NULL};
	return run_mkfs("mkfs.ext4", argv, why, cap);
}

/* Makes tmp durable and gives it its final name in one step: readers
 * see either no image or a whole one. A concurrent builder of the same
 * image just replaces an equivalent file. tmp is opened anew in case
 * the mkfs replaced the file rather than writing into it. */
static int publish(const char *tmp, const char *final, const char *cache_dir,
                   struct husk_error *err)
{
	int fd = open(tmp, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return husk_err_errno(err, errno, "open %s", tmp);
	int rc = 0;
	if (fsync(fd) < 0)
		rc = husk_err_errno(err, errno, "sync %s", tmp);
	else if (fchmod(fd, 0644) < 0)
		rc = husk_err_errno(err, errno, "chmod %s", tmp);
	close(fd);
	if (rc == 0 && rename(tmp, final) < 0)
		rc = husk_err_errno(err, errno, "rename %s to %s", tmp, final);
	if (rc < 0)
		return rc;
	int dfd = open(cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd); /* the rename itself, for a crash right after */
		close(dfd);
	}
	return 0;
}

static bool usable_image(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

/* CACHE/STEM.EXT into out. */
static int image_path(char *out, size_t cap, const char *cache_dir,
                      const char *stem, const char *ext, struct husk_error *err)
{
	int n = snprintf(out, cap, "%s/%s.%s", cache_dir, stem, ext);
	if (n < 0 || (size_t)n >= cap)
		return husk_err(err, ENAMETOOLONG, "image path under %s",
		                cache_dir);
	return 0;
}

static int build_image(const char *dir, const char *cache_dir, const char *stem,
                       const struct walk *w, const struct stat *root, char *out,
                       size_t cap, struct husk_error *err)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s/.tmp-%s-XXXXXX", cache_dir, stem) >=
	    (int)sizeof(tmp))
		return husk_err(err, ENAMETOOLONG, "image path under %s",
		                cache_dir);
	/* A name of our own: two builders never write the same file. */
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return husk_err_errno(err, errno, "create an image in %s",
		                      cache_dir);
	close(fd); /* the mkfs writes it by name */
	char why_erofs[240] = "", why_ext4[240] = "";
	const char *ext = "erofs";
	int rc = build_erofs(dir, tmp, why_erofs, sizeof(why_erofs));
	if (rc < 0) {
		ext = "ext4";
		rc = build_ext4(dir, tmp, w, root, why_ext4, sizeof(why_ext4));
	}
	if (rc < 0)
		rc = husk_err(err, -rc, "cannot make an image of %s: %s; %s",
		              dir, why_erofs, why_ext4);
	if (rc == 0)
		rc = image_path(out, cap, cache_dir, stem, ext, err);
	if (rc == 0)
		rc = publish(tmp, out, cache_dir, err);
	if (rc < 0)
		unlink(tmp);
	return rc;
}

/* Finds CACHE/STEM.erofs (or .ext4) or builds it from dir. */
int husk_disk_cached(const char *cache_dir, const char *stem, char *out,
                     size_t cap, struct husk_error *err)
{
	/* Either kind of image from an earlier run will do. */
	static const char *const exts[] = {"erofs", "ext4"};
	for (size_t i = 0; i < 2; i++) {
		int rc = image_path(out, cap, cache_dir, stem, exts[i], err);
		if (rc < 0)
			return rc;
		if (usable_image(out))
			return 1;
	}
	return 0;
}

static int disk_for(const char *dir, const char *cache_dir, const char *stem,
                    struct walk *w, const struct stat *root, char *out,
                    size_t cap, struct husk_error *err)
{
	int rc = make_dirs(cache_dir, err);
	if (rc == 0)
		rc = husk_disk_cached(cache_dir, stem, out, cap, err);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	rc = build_image(dir, cache_dir, stem, w, root, out, cap, err);
	return rc;
}

int husk_rootfs_disk(const char *dir, const char *cache_dir, char *out,
                     size_t cap, struct husk_error *err)
{
	struct walk *w = malloc(sizeof(*w));
	if (!w)
		return husk_err(err, ENOMEM, "rootfs %s", dir);
	char hex[HUSK_ROOTFS_HASH_HEX + 1], stem[HUSK_ROOTFS_HASH_HEX + 8];
	struct stat root;
	int rc = hash_tree(dir, hex, w, &root, err);
	snprintf(stem, sizeof(stem), "rootfs-%s", hex);
	if (rc == 0)
		rc = disk_for(dir, cache_dir, stem, w, &root, out, cap, err);
	free(w);
	return rc;
}

int husk_disk_named(const char *dir, const char *cache_dir, const char *name,
                    char *out, size_t cap, struct husk_error *err)
{
	for (const char *p = name; *p; p++) {
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return husk_err(err, EINVAL, "bad disk name '%s'",
			                name);
	}
	/* A cached disk needs no walk at all. */
	int found = husk_disk_cached(cache_dir, name, out, cap, err);
	if (found != 0)
		return found < 0 ? found : 0;
	struct walk *w = malloc(sizeof(*w));
	if (!w)
		return husk_err(err, ENOMEM, "disk %s", name);
	/* The walk measures the tree for an ext4 fallback; its hash is
	 * not the key here. */
	char hex[HUSK_ROOTFS_HASH_HEX + 1];
	struct stat root;
	int rc = hash_tree(dir, hex, w, &root, err);
	if (rc == 0)
		rc = disk_for(dir, cache_dir, name, w, &root, out, cap, err);
	free(w);
	return rc;
}
