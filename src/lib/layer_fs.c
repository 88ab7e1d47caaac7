/* Resolving and changing paths beneath a layer's root.
 *
 * The kernel does the confining: openat2 with RESOLVE_BENEATH refuses any
 * resolution that would leave the root (an absolute symlink, `..` above
 * it), checked on every step, symlinks included. Everything else works on
 * descriptors so obtained, one name at a time and without following the
 * last component, so no string path under the root is ever handed to a
 * system call that could be steered elsewhere. */
#include "layer_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int layer_open_beneath(int rootfd, const char *rel, int flags)
{
	struct open_how how = {
	    .flags = (unsigned)flags | O_CLOEXEC,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	/* EAGAIN: a rename raced a `..` in a symlink; nothing else renames
	 * in the root, so a few tries settle it. */
	for (int tries = 0; tries < 8; tries++) {
		long fd = syscall(SYS_openat2, rootfd, rel[0] ? rel : ".", &how,
		                  sizeof(how));
		if (fd >= 0)
			return (int)fd;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	}
	return -EAGAIN;
}

/* Makes directory name in dirfd with exactly mode 0755 (not the umask's
 * idea of it): 1 when made, 0 when something was already there. */
static int make_parent(int dirfd, const char *name)
{
	if (mkdirat(dirfd, name, 0700) < 0)
		return errno == EEXIST ? 0 : -errno;
	int fd = openat(dirfd, name,
	                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fchmod(fd, 0755) < 0 ? -errno : 1;
	close(fd);
	return rc;
}

/* The next directory down from cur, prefix naming it from the root.
 * *fresh: cur was made just now, so nothing below it exists yet. */
static int step_down(int rootfd, int cur, const char *prefix, const char *name,
                     bool *fresh)
{
	const int flags = O_PATH | O_DIRECTORY;
	int fd = *fresh ? -ENOENT : layer_open_beneath(rootfd, prefix, flags);
	if (fd != -ENOENT)
		return fd;
	int made = make_parent(cur, name);
	if (made < 0)
		return made;
	*fresh = made;
	/* A directory made here is no symlink and can be opened directly;
	 * anything found in its place is resolved from the root again. */
	if (made)
		fd = openat(cur, name, flags | O_NOFOLLOW | O_CLOEXEC);
	else
		return layer_open_beneath(rootfd, prefix, flags);
	return fd < 0 ? -errno : fd;
}

int layer_open_dir(int rootfd, const char *rel, bool create)
{
	int fd = layer_open_beneath(rootfd, rel, O_PATH | O_DIRECTORY);
	if (fd != -ENOENT || !create)
		return fd;

	/* Some parent is missing: walk down from the root, making each
	 * missing one inside the one before, which was itself resolved
	 * beneath the root. */
	char prefix[LAYER_PATH_MAX];
	size_t len = strlen(rel);
	if (len >= sizeof(prefix))
		return -ENAMETOOLONG;
	bool fresh = false;
	int cur = layer_open_beneath(rootfd, "", O_PATH | O_DIRECTORY);
	for (size_t i = 0; cur >= 0 && i < len;) {
		size_t end = i;
		while (end < len && rel[end] != '/')
			end++;
		memcpy(prefix, rel, end);
		prefix[end] = '\0';
		int next = step_down(rootfd, cur, prefix, prefix + i, &fresh);
		close(cur);
		cur = next;
		i = end + 1;
	}
	return cur;
}

/* The names in directory fd (any descriptor of it), "." and ".." left
 * out, read in full before the caller changes the directory. */
static int list_dir(int fd, char ***names, size_t *count)
{
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	DIR *d = fdopendir(dfd);
	if (!d) {
		int rc = -errno;
		close(dfd);
		return rc;
	}
	char **v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			char **bigger = realloc(v, cap * sizeof(*v));
			if (!bigger) {
				rc = -ENOMEM;
				break;
			}
			v = bigger;
		}
		if (!(v[n] = strdup(de->d_name))) {
			rc = -ENOMEM;
			break;
		}
		n++;
	}
	if (rc == 0 && errno)
		rc = -errno;
	closedir(d);
	*names = v;
	*count = n;
	return rc;
}

static void free_names(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

/* Removes everything in directory fd. */
static int empty_dir(int fd)
{
	char **names;
	size_t count;
	int rc = list_dir(fd, &names, &count);
	for (size_t i = 0; rc == 0 && i < count; i++)
		rc = layer_remove_tree(fd, names[i]);
	free_names(names, count);
	return rc;
}

int layer_remove_tree(int dirfd, const char *name)
{
	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR)
		return -errno;
	/* O_NOFOLLOW: if name became a symlink, the open fails instead of
	 * emptying whatever it points to. */
	int fd = openat(dirfd, name,
	                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = empty_dir(fd);
	close(fd);
	if (rc == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
		rc = -errno;
	return rc;
}

/* "rel/name" (or "name" at the root) in buf. */
static int child_path(char *buf, size_t cap, const char *rel, const char *name)
{
	size_t a = strlen(rel), b = strlen(name);
	if (a + 1 + b + 1 > cap)
		return -ENAMETOOLONG;
	if (a)
		memcpy(buf, rel, a);
	size_t off = a;
	if (a)
		buf[off++] = '/';
	memcpy(buf + off, name, b + 1);
	return 0;
}

/* Prunes one kept child: only a directory has anything below to prune. */
static int prune_kept(int dirfd, const char *name, const char *path,
                      const struct layer_set *keep)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return 0;
	int fd = openat(dirfd, name,
	                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = layer_prune(fd, path, keep);
	close(fd);
	return rc;
}

int layer_prune(int dirfd, const char *rel, const struct layer_set *keep)
{
	char **names;
	size_t count;
	int rc = list_dir(dirfd, &names, &count);
	char *path = rc == 0 ? malloc(LAYER_PATH_MAX) : NULL;
	if (rc == 0 && !path)
		rc = -ENOMEM;
	for (size_t i = 0; rc == 0 && i < count; i++) {
		/* A path too long to be in keep was not written by this
		 * layer either. */
		if (child_path(path, LAYER_PATH_MAX, rel, names[i]) == 0 &&
		    layer_set_has(keep, path))
			rc = prune_kept(dirfd, names[i], path, keep);
		else
			rc = layer_remove_tree(dirfd, names[i]);
	}
	free(path);
	free_names(names, count);
	return rc;
}
