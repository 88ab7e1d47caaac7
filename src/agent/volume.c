/* husk-agent: volumes (see volume.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rootfs.h"
#include "volume.h"

#define MOUNT_MAX_LEN 4200 /* the protocol's limit for one MOUNT */

/* /tmp-like scratch space; its pages count against the container's memory
 * cgroup, and the cap keeps one volume from taking it all. */
#define TMPFS_OPTIONS "mode=1777,size=64m"

static const struct {
	const char *name;
	enum agent_mount_type type;
} types[] = {
    {"9p", AGENT_MOUNT_9P},
    {"tmpfs", AGENT_MOUNT_TMPFS},
    {"bind", AGENT_MOUNT_BIND},
};

static const char *type_name(enum agent_mount_type t)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (types[i].type == t)
			return types[i].name;
	}
	return "?";
}

/* ---- parsing ------------------------------------------------------------- */

struct entry {
	const char *s; /* the MOUNT value as sent, for messages */
	int len;
	struct husk_error *err;
};

static int bad(const struct entry *e, const char *why)
{
	/* Quote a bounded prefix: the whole value may be 4200 bytes. */
	return husk_err(e->err, EINVAL, "MOUNT '%.*s%s': %s",
	                e->len > 160 ? 160 : e->len, e->s,
	                e->len > 160 ? "..." : "", why);
}

static int parse_source(const struct entry *e, const char *src, bool host_mode,
                        struct agent_mount *m)
{
	char tag[AGENT_SHARE_TAG_MAX + 1];
	switch (m->type) {
	case AGENT_MOUNT_9P:
		if (strchr(src, '/')) {
			const char *why =
			    agent_share_split(src, tag, m->subdir);
			if (why)
				return bad(e, why);
			src = tag;
		} else if (!agent_share_valid_tag(src)) {
			return bad(e, "the 9p tag must be 1 to 31 letters, "
			              "digits, _ or -");
		}
		break;
	case AGENT_MOUNT_TMPFS:
		if (src[0])
			return bad(e, "tmpfs takes no source");
		break;
	case AGENT_MOUNT_BIND:
		/* A host path means nothing inside a VM, and letting the
		 * host name the guest's own files would reach the agent's. */
		if (!host_mode)
			return bad(e, "bind mounts exist only for the agent "
			              "on the host (--listen, --fd)");
		if (src[0] != '/')
			return bad(e, "the bind source is not absolute");
		break;
	}
	if (strlen(src) >= sizeof(m->source))
		return bad(e, "the source is too long");
	strcpy(m->source, src);
	return 0;
}

/* Appends the component [p, p+n) of DEST to out, refusing "..". */
static int add_component(const struct entry *e, const char *p, size_t n,
                         char *out, size_t *len, size_t cap)
{
	if (n == 1 && p[0] == '.')
		return 0;
	if (n == 2 && p[0] == '.' && p[1] == '.')
		return bad(e, "the destination holds '..'");
	if (n > NAME_MAX)
		return bad(e, "a name in the destination is too long");
	if (*len + (*len ? 1 : 0) + n >= cap)
		return bad(e, "the destination is too long");
	if (*len)
		out[(*len)++] = '/';
	memcpy(out + *len, p, n);
	*len += n;
	out[*len] = '\0';
	return 0;
}

/* "/data//x/./y/" becomes "data/x/y": relative, because openat2 resolves
 * it against the root's fd. Only "//", "." and a trailing "/" are
 * normalised away; ".." is refused rather than resolved, so what the host
 * asked for is what it gets. */
static int parse_dest(const struct entry *e, const char *dest,
                      struct agent_mount *m)
{
	if (dest[0] != '/')
		return bad(e, "the destination is not absolute");
	size_t len = 0;
	m->dest[0] = '\0';
	for (const char *p = dest; *p;) {
		size_t n = strcspn(p, "/");
		int r =
		    n ? add_component(e, p, n, m->dest, &len, sizeof(m->dest))
		      : 0;
		if (r)
			return r;
		p += n + (p[n] == '/');
	}
	if (!len)
		return bad(e, "the destination is '/'");
	/* runc's rule: the kernel's own filesystems there are the agent's to
	 * mount (and to mask); a volume over them could undo the masks. */
	size_t first = strcspn(m->dest, "/");
	if ((first == 4 && !strncmp(m->dest, "proc", 4)) ||
	    (first == 3 && !strncmp(m->dest, "sys", 3)))
		return bad(e, "the destination lies under /proc or /sys");
	return 0;
}

static int parse_type(const struct entry *e, const char *type,
                      struct agent_mount *m)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (!strcmp(type, types[i].name)) {
			m->type = types[i].type;
			return 0;
		}
	}
	return bad(e, "unknown type (want 9p, tmpfs or bind)");
}

static int parse_mode(const struct entry *e, const char *mode,
                      struct agent_mount *m)
{
	if (strcmp(mode, "ro") && strcmp(mode, "rw"))
		return bad(e, "the mode must be ro or rw");
	m->readonly = mode[1] == 'o';
	return 0;
}

int agent_mount_parse(const char *s, size_t len, bool host_mode,
                      struct agent_mount *out, struct husk_error *err)
{
	char buf[MOUNT_MAX_LEN + 1];
	struct entry e = {s, len > MOUNT_MAX_LEN ? MOUNT_MAX_LEN : (int)len,
	                  err};
	if (len > MOUNT_MAX_LEN || memchr(s, '\0', len))
		return bad(&e, "too long, or holds a NUL");
	memcpy(buf, s, len);
	buf[len] = '\0';
	/* TYPE:SOURCE:MODE: then DEST, which may hold ':' itself. */
	char *src = strchr(buf, ':');
	char *mode = src ? strchr(src + 1, ':') : NULL;
	char *dest = mode ? strchr(mode + 1, ':') : NULL;
	if (!dest)
		return bad(&e, "want TYPE:SOURCE:MODE:/DEST");
	*src++ = *mode++ = *dest++ = '\0';
	memset(out, 0, sizeof(*out));
	int r = parse_type(&e, buf, out);
	if (!r)
		r = parse_source(&e, src, host_mode, out);
	if (!r)
		r = parse_mode(&e, mode, out);
	return r ? r : parse_dest(&e, dest, out);
}

void agent_mount_describe(const struct agent_mount *m, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s%s%s%s%s at /%s", type_name(m->type),
	         m->source[0] ? ":" : "", m->source, m->subdir[0] ? "/" : "",
	         m->subdir, m->dest);
}

static bool is_share_dir(const struct agent_mount *m)
{
	return m->type == AGENT_MOUNT_9P && m->subdir[0];
}

int agent_mount_shares(const struct agent_env *env,
                       const struct agent_container_cfg *c,
                       struct husk_error *err)
{
	for (size_t i = 0; i < c->nmounts; i++) {
		if (!is_share_dir(&c->mounts[i]))
			continue;
		int r = agent_share_mount(env, c->mounts[i].source, err);
		if (r)
			return r;
	}
	return 0;
}

/* ---- mounting ------------------------------------------------------------ */

/* Opens rel as if the root were "/": ".." and absolute symlinks stop at
 * the root, and magic links (/proc/self/root) do not count. -errno. */
static int open_in_root(int rootfd, const char *rel, int flags)
{
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_CLOEXEC),
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

/* Creates the last component of rel (a directory, or an empty file) in
 * its parent, resolved in the root. mkdirat and O_CREAT|O_EXCL never
 * follow a symlink in that last place, so a dangling link there is left
 * alone (EEXIST), and the caller's reopen judges it. -errno. */
static int create_last(int rootfd, char *rel, bool file)
{
	char *slash = strrchr(rel, '/');
	int parent = rootfd;
	const char *name = rel;
	if (slash) {
		*slash = '\0';
		parent = open_in_root(rootfd, rel, O_PATH | O_DIRECTORY);
		*slash = '/';
		if (parent < 0)
			return parent;
		name = slash + 1;
	}
	int r = 0;
	if (file) {
		int fd = openat(
		    parent, name,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd >= 0)
			close(fd);
		else if (errno != EEXIST)
			r = -errno;
	} else if (mkdirat(parent, name, 0755) != 0 && errno != EEXIST) {
		r = -errno;
	}
	if (parent != rootfd)
		close(parent);
	return r;
}

/* The mount point for dest inside the root, made component by component
 * where missing: an O_PATH fd of a directory, or with file (a bound file)
 * of whatever is there, an empty file if nothing was. -errno. */
static int open_mountpoint(int rootfd, const char *dest, bool file)
{
	char rel[AGENT_MOUNT_PATH_MAX];
	snprintf(rel, sizeof(rel), "%s", dest);
	for (char *p = rel;;) {
		char *slash = strchr(p, '/');
		if (slash)
			*slash = '\0';
		bool want_file = !slash && file;
		int flags = O_PATH | (want_file ? 0 : O_DIRECTORY);
		int fd = open_in_root(rootfd, rel, flags);
		if (fd == -ENOENT) {
			int r = create_last(rootfd, rel, want_file);
			fd = r < 0 ? r : open_in_root(rootfd, rel, flags);
		}
		if (!slash || fd < 0)
			return fd;
		close(fd);
		*slash = '/';
		p = slash + 1;
	}
}

struct fd_path {
	char s[40];
};

static struct fd_path fd_path(int fd)
{
	struct fd_path p;
	snprintf(p.s, sizeof(p.s), "/proc/self/fd/%d", fd);
	return p;
}

/* Why mount(2) onto /proc/self/fd/N rather than the new mount API
 * (open_tree, fsmount, move_mount): the fd was resolved in the root, and
 * the kernel follows that magic link to the very mount and dentry the fd
 * holds, without walking a path the image could redirect; it is what the
 * rest of rootfs_enter.c does, works on every kernel the agent supports,
 * and needs no syscall wrappers the static libc may lack. */
static int attach(int rootfd, const struct agent_mount *m, int srcfd, int dstfd)
{
	unsigned long ro = m->readonly ? MS_RDONLY : 0;
	/* A bind takes its source's flags; a share is mounted without
	 * nosuid and nodev (a root may come from it), its volumes not. */
	unsigned long add = ro | (is_share_dir(m) ? MS_NOSUID | MS_NODEV : 0);
	struct fd_path dst = fd_path(dstfd);
	const char *target = dst.s;
	switch (m->type) {
	case AGENT_MOUNT_9P:
		if (is_share_dir(m))
			break; /* a bind of srcfd, below */
		/* nodev, nosuid: files from the host grant nothing here. */
		return mount(m->source, target, "9p", MS_NOSUID | MS_NODEV | ro,
		             AGENT_P9_OPTIONS)
		           ? -errno
		           : 0;
	case AGENT_MOUNT_TMPFS:
		return mount("tmpfs", target, "tmpfs",
		             MS_NOSUID | MS_NODEV | ro, TMPFS_OPTIONS)
		           ? -errno
		           : 0;
	case AGENT_MOUNT_BIND: break;
	}
	/* Not MS_REC: a read-only remount covers one mount only, and
	 * submounts left writable under a read-only volume would surprise. */
	if (mount(fd_path(srcfd).s, target, NULL, MS_BIND, NULL) != 0)
		return -errno;
	if (!add)
		return 0;
	/* dstfd names what the bind now covers; reopen to reach the bind. */
	int fd = open_in_root(rootfd, m->dest, O_PATH);
	if (fd < 0)
		return fd;
	struct husk_error ignored;
	int r = rootfs_remount_bind(fd_path(fd).s, add, &ignored);
	close(fd);
	return r;
}

/* The directory of a "9p:TAG/SUBDIR" volume, opened beneath the share the
 * agent mounted (agent_mount_shares) in the namespace this process
 * copied. */
static int open_share_dir(const struct agent_env *env,
                          const struct agent_mount *m, const char *what,
                          struct husk_error *err)
{
	char path[PATH_MAX];
	struct husk_error e = {0};
	int fd = agent_share_path(env, m->source, path, sizeof(path), &e);
	if (fd == 0) {
		int share =
		    open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (share < 0) {
			fd = husk_err_errno(&e, errno, "open %s", path);
		} else {
			fd = agent_share_open_beneath(share, m->subdir, &e);
			close(share);
		}
	}
	if (fd < 0)
		return husk_err(err, e.code, "mount %s: %s", what, e.msg);
	return fd;
}

static int mount_one(const struct agent_env *env, int rootfd,
                     const struct agent_mount *m, struct husk_error *err)
{
	char what[512];
	agent_mount_describe(m, what, sizeof(what));
	int srcfd = -1;
	bool file = false;
	if (is_share_dir(m)) {
		srcfd = open_share_dir(env, m, what, err);
		if (srcfd < 0)
			return srcfd;
	} else if (m->type == AGENT_MOUNT_BIND) {
		/* Held open, so the source stat'ed is the source bound. */
		srcfd = open(m->source, O_PATH | O_CLOEXEC);
		struct stat st;
		if (srcfd < 0 || fstat(srcfd, &st) != 0) {
			int e = errno;
			if (srcfd >= 0)
				close(srcfd);
			return husk_err_errno(err, e, "mount %s", what);
		}
		file = !S_ISDIR(st.st_mode);
	}
	int r, dstfd = open_mountpoint(rootfd, m->dest, file);
	if (dstfd < 0)
		r = husk_err_errno(err, -dstfd, "mount %s: the mount point",
		                   what);
	else if ((r = attach(rootfd, m, srcfd, dstfd)) < 0)
		r = husk_err_errno(err, -r, "mount %s", what);
	if (dstfd >= 0)
		close(dstfd);
	if (srcfd >= 0)
		close(srcfd);
	return r;
}

int agent_mount_volumes(const struct agent_env *env, int rootfd,
                        const struct agent_container_cfg *c,
                        struct husk_error *err)
{
	for (size_t i = 0; i < c->nmounts; i++) {
		int r = mount_one(env, rootfd, &c->mounts[i], err);
		if (r)
			return r;
	}
	return 0;
}
