/* husk-agent: building STATE/ID and taking it down again. rootfs.h draws
 * the layout; rootfs_device.c finds the disk, rootfs_enter.c is the
 * container's side. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "net.h"
#include "rootfs.h"
#include "share.h"

int rootfs_state_path(char *buf, size_t cap, const struct agent_env *env,
                      const char *id, const char *sub, struct husk_error *err)
{
	int n = snprintf(buf, cap, "%s/%s%s%s", env->state_dir, id,
	                 sub ? "/" : "", sub ? sub : "");
	if (n < 0 || (size_t)n >= cap)
		return husk_err(err, ENAMETOOLONG,
		                "state path for %s under %s is too long", id,
		                env->state_dir);
	return 0;
}

int rootfs_hostname(const struct agent_container_cfg *c, char out[65],
                    struct husk_error *err)
{
	const char *src = c->hostname[0] ? c->hostname : c->id;
	size_t max = c->hostname[0] ? 64 : 12;
	size_t n = strnlen(src, max);
	memcpy(out, src, n);
	out[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (!isgraph((unsigned char)out[i]))
			return husk_err(err, EINVAL,
			                "hostname '%s' has a space or control "
			                "character",
			                out);
	return 0;
}

static unsigned long mount_flags_of(const struct statvfs *st)
{
	static const struct {
		unsigned long st, ms;
	} map[] = {
	    {ST_NOSUID, MS_NOSUID},         {ST_NODEV, MS_NODEV},
	    {ST_NOEXEC, MS_NOEXEC},         {ST_NOATIME, MS_NOATIME},
	    {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME},
	};
	unsigned long ms = 0;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (st->f_flag & map[i].st)
			ms |= map[i].ms;
	return ms;
}

int rootfs_remount_bind(const char *path, unsigned long add,
                        struct husk_error *err)
{
	struct statvfs st;
	if (statvfs(path, &st) != 0)
		return husk_err_errno(err, errno, "statvfs %s", path);
	unsigned long flags = MS_REMOUNT | MS_BIND | add | mount_flags_of(&st);
	if (st.f_flag & ST_RDONLY)
		flags |= MS_RDONLY;
	if (mount(NULL, path, NULL, flags, NULL) != 0)
		return husk_err_errno(err, errno, "remount %s%s", path,
		                      add & MS_RDONLY ? " read-only" : "");
	return 0;
}

int rootfs_remount_ro(const char *path, struct husk_error *err)
{
	return rootfs_remount_bind(path, MS_RDONLY, err);
}

/* ---- rootfs_prepare ---------------------------------------------------- */

/* mkdir -p, the last component with mode, its parents 0755. */
static int make_dirs(const char *path, mode_t mode, struct husk_error *err)
{
	if (mkdir(path, mode) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return husk_err_errno(err, errno, "mkdir %s", path);
	char parent[PATH_MAX];
	if (agent_pathf(parent, sizeof(parent), err, "%s", path) != 0)
		return -ENAMETOOLONG;
	char *slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		return husk_err(err, ENOENT, "mkdir %s: no parent", path);
	*slash = '\0';
	int r = make_dirs(parent, 0755, err);
	if (r != 0)
		return r;
	if (mkdir(path, mode) != 0 && errno != EEXIST)
		return husk_err_errno(err, errno, "mkdir %s", path);
	return 0;
}

static int make_dir(const char *path, mode_t mode, struct husk_error *err)
{
	if (mkdir(path, mode) != 0)
		return husk_err_errno(err, errno, "mkdir %s", path);
	return 0;
}

static int bind_ro(const char *src, const char *dst, struct husk_error *err)
{
	if (mount(src, dst, NULL, MS_BIND, NULL) != 0)
		return husk_err_errno(err, errno, "bind %s on %s", src, dst);
	return rootfs_remount_ro(dst, err);
}

/* The filesystem on a disk, by its superblock's magic number (both start
 * 1024 bytes in); NULL when neither. Naming the right one spares the
 * kernel log a complaint about the wrong one. */
static const char *probe_fs(const char *dev)
{
	unsigned char sb[1024 + 64];
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	ssize_t n = pread(fd, sb, sizeof(sb), 0);
	close(fd);
	if (n != (ssize_t)sizeof(sb))
		return NULL;
	const unsigned char *s = sb + 1024;
	uint32_t erofs = (uint32_t)s[0] | (uint32_t)s[1] << 8 |
	                 (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24;
	if (erofs == 0xE0F5E1E2)
		return "erofs";
	if (s[0x38] == 0x53 && s[0x39] == 0xEF) /* s_magic 0xEF53 */
		return "ext4";
	return NULL;
}

/* The image: a disk (EROFS, the format husk builds, or ext4 for images
 * made elsewhere) or, in host mode, a directory. */
static int mount_lower(const char *dev, const char *lower,
                       struct husk_error *err)
{
	struct stat st;
	if (stat(dev, &st) != 0)
		return husk_err_errno(err, errno, "root device %s", dev);
	if (S_ISDIR(st.st_mode))
		return bind_ro(dev, lower, err);
	if (!S_ISBLK(st.st_mode))
		return husk_err(err, EINVAL,
		                "root device %s is neither a block device nor "
		                "a directory",
		                dev);
	const unsigned long flags = MS_RDONLY | MS_NOATIME;
	const char *type = probe_fs(dev);
	if (type) {
		if (mount(dev, lower, type, flags, NULL) != 0)
			return husk_err_errno(err, errno, "mount %s (%s)", dev,
			                      type);
		return 0;
	}
	/* Unrecognised: let the kernel judge, erofs first. */
	if (mount(dev, lower, "erofs", flags, NULL) == 0)
		return 0;
	int erofs_errno = errno;
	/* The disk is shared read-only by every VM of the image; a clean
	 * ext4 (as mkfs.ext4 -d leaves it) needs no journal replay. */
	if (mount(dev, lower, "ext4", flags, NULL) == 0)
		return 0;
	int ext4_errno = errno;
	return husk_err(err, ext4_errno,
	                "mount %s: not erofs (%s) nor ext4 (%s)", dev,
	                strerror(erofs_errno), strerror(ext4_errno));
}

/* overlayfs splits its options at ',' and its lower list at ':', and
 * treats '\' as an escape. */
static int check_overlay_path(const char *p, struct husk_error *err)
{
	if (strpbrk(p, ",:\\"))
		return husk_err(err, EINVAL,
		                "state path %s has ',', ':' or '\\', which "
		                "overlayfs options cannot carry",
		                p);
	return 0;
}

/* The overlay's "/" takes its owner and mode from upper/, so give upper/
 * those of the image's "/". */
static int match_root_attrs(const char *lower, const char *upper,
                            struct husk_error *err)
{
	struct stat st;
	if (stat(lower, &st) != 0)
		return husk_err_errno(err, errno, "stat %s", lower);
	if (chown(upper, st.st_uid, st.st_gid) != 0)
		return husk_err_errno(err, errno, "chown %s", upper);
	if (chmod(upper, st.st_mode & 07777) != 0)
		return husk_err_errno(err, errno, "chmod %s", upper);
	return 0;
}

static int mount_overlay(const char *base, struct husk_error *err)
{
	char lower[PATH_MAX], rw[PATH_MAX], upper[PATH_MAX], work[PATH_MAX],
	    rootfs[PATH_MAX], opts[4 * PATH_MAX];
	int r = agent_pathf(lower, sizeof(lower), err, "%s/lower", base);
	if (!r)
		r = agent_pathf(rw, sizeof(rw), err, "%s/rw", base);
	if (!r)
		r = agent_pathf(upper, sizeof(upper), err, "%s/rw/upper", base);
	if (!r)
		r = agent_pathf(work, sizeof(work), err, "%s/rw/work", base);
	if (!r)
		r = agent_pathf(rootfs, sizeof(rootfs), err, "%s/rootfs", base);
	if (!r)
		r = check_overlay_path(base, err);
	if (r)
		return r;
	/* The writable layer lives in memory (the VM has no other disk for
	 * it); its pages are charged to the cgroup of whoever writes. */
	if ((r = make_dir(rw, 0700, err)))
		return r;
	if (mount("tmpfs", rw, "tmpfs", 0, "mode=0700") != 0)
		return husk_err_errno(err, errno, "mount tmpfs on %s", rw);
	if ((r = make_dir(upper, 0755, err)) ||
	    (r = make_dir(work, 0700, err)) ||
	    (r = match_root_attrs(lower, upper, err)) ||
	    (r = make_dir(rootfs, 0755, err)))
		return r;
	if ((r = agent_pathf(opts, sizeof(opts), err,
	                     "lowerdir=%s,upperdir=%s,workdir=%s", lower, upper,
	                     work)))
		return r;
	if (mount("overlay", rootfs, "overlay", 0, opts) != 0)
		return husk_err_errno(err, errno, "mount overlay on %s",
		                      rootfs);
	return 0;
}

static int mount_readonly_root(const char *base, struct husk_error *err)
{
	char lower[PATH_MAX], rootfs[PATH_MAX];
	int r = agent_pathf(lower, sizeof(lower), err, "%s/lower", base);
	if (!r)
		r = agent_pathf(rootfs, sizeof(rootfs), err, "%s/rootfs", base);
	if (!r)
		r = make_dir(rootfs, 0755, err);
	return r ? r : bind_ro(lower, rootfs, err);
}

static int write_new_file(const char *dir, const char *name, const char *text,
                          struct husk_error *err)
{
	char path[PATH_MAX];
	int r = agent_pathf(path, sizeof(path), err, "%s/%s", dir, name);
	if (r)
		return r;
	int fd = open(
	    path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return husk_err_errno(err, errno, "create %s", path);
	size_t len = strlen(text);
	ssize_t n = write(fd, text, len);
	int saved = errno;
	if (close(fd) != 0 && n >= 0)
		return husk_err_errno(err, errno, "close %s", path);
	if (n < 0 || (size_t)n != len)
		return husk_err_errno(err, n < 0 ? saved : EIO, "write %s",
		                      path);
	return 0;
}

/* The files Docker manages for a container, bound over the image's in
 * rootfs_enter. */
static int write_etc(const char *base, const char *hostname,
                     struct husk_error *err)
{
	char etc[PATH_MAX], line[128], hosts[512];
	int r = agent_pathf(etc, sizeof(etc), err, "%s/etc", base);
	if (r || (r = make_dir(etc, 0755, err)))
		return r;
	snprintf(line, sizeof(line), "%s\n", hostname);
	/* Docker writes the container's address for its name; until the
	 * network is set up, loopback answers for it. */
	snprintf(hosts, sizeof(hosts),
	         "127.0.0.1\tlocalhost\n"
	         "::1\tlocalhost ip6-localhost ip6-loopback\n"
	         "fe00::0\tip6-localnet\n"
	         "ff00::0\tip6-mcastprefix\n"
	         "ff02::1\tip6-allnodes\n"
	         "ff02::2\tip6-allrouters\n"
	         "127.0.0.1\t%s\n",
	         hostname);
	if ((r = write_new_file(etc, "hostname", line, err)) ||
	    (r = write_new_file(etc, "hosts", hosts, err)))
		return r;
	/* The VM's DNS forwarder when it has a network, else empty. */
	return write_new_file(etc, "resolv.conf", agent_net_resolv_conf(), err);
}

/* A directory of a virtio-9p share: the share is mounted once for the
 * agent's life (a tag cannot be mounted twice), each container binds its
 * own directory of it. */
static int bind_share_dir(const struct agent_env *env, const char *spec,
                          const char *lower, struct husk_error *err)
{
	char tag[AGENT_SHARE_TAG_MAX + 1], subdir[AGENT_SHARE_SPEC_MAX + 1],
	    path[PATH_MAX];
	const char *why = agent_share_split(spec + 3, tag, subdir);
	if (why)
		return husk_err(err, EINVAL, "root device '%s': %s", spec, why);
	/* The session refuses it first; a host has no virtio-9p device. */
	if (env->host_mode)
		return husk_err(
		    err, EINVAL,
		    "root device '%s': 9p shares exist only in a VM", spec);
	int r = agent_share_mount(env, tag, err);
	if (r || (r = agent_share_path(env, tag, path, sizeof(path), err)))
		return r;
	int fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return husk_err_errno(err, errno, "open %s", path);
	r = agent_share_bind_ro(fd, subdir, lower, err);
	close(fd);
	return r;
}

static int build(const struct agent_env *env, const char *base,
                 const struct agent_container_cfg *c, const char *hostname,
                 char *root, size_t cap, struct husk_error *err)
{
	char lower[PATH_MAX];
	int r = agent_pathf(lower, sizeof(lower), err, "%s/lower", base);
	if (r || (r = make_dir(lower, 0755, err)))
		return r;
	if (agent_share_is_spec(c->root_device))
		r = bind_share_dir(env, c->root_device, lower, err);
	else
		r = mount_lower(c->root_device, lower, err);
	if (r)
		return r;
	r = c->readonly_root ? mount_readonly_root(base, err)
	                     : mount_overlay(base, err);
	if (r || (r = write_etc(base, hostname, err)))
		return r;
	return agent_pathf(root, cap, err, "%s/rootfs", base);
}

static int release_dir(const char *base, struct husk_error *err);

int rootfs_prepare(const struct agent_env *env,
                   const struct agent_container_cfg *c, char *root, size_t cap,
                   struct husk_error *err)
{
	char base[PATH_MAX], hostname[65];
	int r = agent_check_id(c->id, err);
	if (r || (r = rootfs_hostname(c, hostname, err)) ||
	    (r = rootfs_state_path(base, sizeof(base), env, c->id, NULL, err)))
		return r;
	if ((r = make_dirs(env->state_dir, 0700, err)))
		return r;
	if (mkdir(base, 0700) != 0)
		return husk_err_errno(err, errno, "create container state %s",
		                      base);
	r = build(env, base, c, hostname, root, cap, err);
	if (r) {
		struct husk_error ignored;
		release_dir(base, &ignored);
	}
	return r;
}

/* ---- rootfs_release ---------------------------------------------------- */

/* mountinfo writes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
	char *w = s;
	for (const char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' &&
		    p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
			*w++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 +
			              (p[3] - '0'));
			p += 3;
		} else {
			*w++ = *p;
		}
	}
	*w = '\0';
}

/* The mount point, the fifth field of a mountinfo line, unescaped in
 * place. */
static char *mount_point_of(char *line)
{
	char *save = NULL, *f = strtok_r(line, " ", &save);
	for (int i = 0; f && i < 4; i++)
		f = strtok_r(NULL, " ", &save);
	if (f)
		unescape_octal(f);
	return f;
}

static bool is_under(const char *path, const char *prefix, size_t len)
{
	return strncmp(path, prefix, len) == 0 &&
	       (path[len] == '/' || path[len] == '\0');
}

/* The deepest mount at or below prefix, the last listed among equals
 * (the one on top); "" when none. */
static int deepest_mount(const char *prefix, char *out, size_t cap,
                         struct husk_error *err)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return husk_err_errno(err, errno, "open /proc/self/mountinfo");
	size_t plen = strlen(prefix), best = 0;
	char *line = NULL;
	size_t lcap = 0;
	out[0] = '\0';
	while (getline(&line, &lcap, f) > 0) {
		const char *mp = mount_point_of(line);
		size_t len = mp ? strlen(mp) : 0;
		if (mp && is_under(mp, prefix, plen) && len >= best &&
		    len < cap) {
			memcpy(out, mp, len + 1);
			best = len;
		}
	}
	free(line);
	fclose(f);
	return 0;
}

static int unmount_under(const char *prefix, struct husk_error *err)
{
	char mp[PATH_MAX];
	/* Bounded: a mount that keeps coming back must not hang the
	 * agent. */
	for (int i = 0; i < 4096; i++) {
		int r = deepest_mount(prefix, mp, sizeof(mp), err);
		if (r)
			return r;
		if (!mp[0])
			return 0;
		if (umount2(mp, MNT_DETACH | UMOUNT_NOFOLLOW) != 0)
			return husk_err_errno(err, errno, "unmount %s", mp);
	}
	return husk_err(err, EBUSY, "mounts under %s keep coming back", prefix);
}

static int remove_entry(const char *base, const char *rel, bool dir,
                        struct husk_error *err)
{
	char path[PATH_MAX];
	int r = agent_pathf(path, sizeof(path), err, "%s%s%s", base,
	                    rel ? "/" : "", rel ? rel : "");
	if (r)
		return r;
	if ((dir ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT)
		return husk_err_errno(err, errno, "remove %s", path);
	return 0;
}

/* Only what rootfs_prepare and rootfs_pivot create, one entry at a time:
 * rw/upper and rw/work went with rw's tmpfs. */
static int remove_state(const char *base, struct husk_error *err)
{
	static const struct {
		const char *rel;
		bool dir;
	} entries[] = {
	    {"etc/hostname", false},
	    {"etc/hosts", false},
	    {"etc/resolv.conf", false},
	    {"etc", true},
	    {"rw", true},
	    {"lower", true},
	    {"rootfs", true},
	    {"host", true},
	    {NULL, true},
	};
	for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
		int r = remove_entry(base, entries[i].rel, entries[i].dir, err);
		if (r)
			return r;
	}
	return 0;
}

static int release_dir(const char *base, struct husk_error *err)
{
	char real[PATH_MAX];
	/* mountinfo shows resolved paths. */
	if (!realpath(base, real)) {
		if (errno == ENOENT)
			return 0;
		return husk_err_errno(err, errno, "resolve %s", base);
	}
	int r = unmount_under(real, err);
	return r ? r : remove_state(real, err);
}

int rootfs_release(const struct agent_env *env, const char *id,
                   struct husk_error *err)
{
	char base[PATH_MAX];
	int r = agent_check_id(id, err);
	if (r ||
	    (r = rootfs_state_path(base, sizeof(base), env, id, NULL, err)))
		return r;
	return release_dir(base, err);
}
