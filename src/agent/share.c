/* husk-agent: directories of virtio-9p shares (see share.h). */
#include "share.h"

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

bool agent_share_valid_tag(const char *tag)
{
	size_t n = strlen(tag);
	if (n == 0 || n > AGENT_SHARE_TAG_MAX)
		return false;
	for (; *tag; tag++) {
		char c = *tag;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

bool agent_share_is_spec(const char *spec)
{
	return strncmp(spec, "9p:", 3) == 0;
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

const char *agent_share_split(const char *src, char *tag, char *subdir)
{
	const char *slash = strchr(src, '/');
	if (!slash)
		return "want 9p:TAG/SUBDIR";
	size_t tlen = (size_t)(slash - src);
	if (tlen == 0 || tlen > AGENT_SHARE_TAG_MAX)
		return "the 9p tag must be 1 to 31 letters, digits, _ or -";
	memcpy(tag, src, tlen);
	tag[tlen] = '\0';
	if (!agent_share_valid_tag(tag))
		return "the 9p tag must be 1 to 31 letters, digits, _ or -";
	const char *dir = slash + 1;
	if (strlen("9p:") + strlen(src) > AGENT_SHARE_SPEC_MAX)
		return "longer than 255 bytes";
	/* Checked here, not left to the kernel: the host asks for exactly
	 * one directory, and a '..' or an empty component is a mistake (or
	 * worse) to refuse with a message, not to resolve. */
	for (const char *p = dir;;) {
		size_t n = strcspn(p, "/");
		if (n == 0)
			return "the directory has an empty component";
		for (size_t i = 0; i < n; i++)
			if (!name_char(p[i]))
				return "the directory may hold only letters, "
				       "digits, _ . - and /";
		if ((n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return "the directory holds '.' or '..'";
		if (!p[n])
			break;
		p += n + 1;
	}
	strcpy(subdir, dir);
	return NULL;
}

int agent_share_path(const struct agent_env *env, const char *tag, char *buf,
                     size_t cap, struct husk_error *err)
{
	return agent_pathf(buf, cap, err, "%s/%s/%s", env->state_dir,
	                   AGENT_SHARES_DIR, tag);
}

/* The tags this agent has mounted; only the agent process itself mounts
 * shares, so no lock. */
static char mounted[AGENT_SHARES_MAX][AGENT_SHARE_TAG_MAX + 1];
static size_t nmounted;

static int make_dir(const char *path, mode_t mode, struct husk_error *err)
{
	if (mkdir(path, mode) != 0 && errno != EEXIST)
		return husk_err_errno(err, errno, "mkdir %s", path);
	return 0;
}

int agent_share_mount(const struct agent_env *env, const char *tag,
                      struct husk_error *err)
{
	if (!agent_share_valid_tag(tag))
		return husk_err(err, EINVAL, "9p tag '%s' is not valid", tag);
	for (size_t i = 0; i < nmounted; i++) {
		if (!strcmp(mounted[i], tag))
			return 0;
	}
	if (nmounted == AGENT_SHARES_MAX)
		return husk_err(err, EAGAIN, "too many 9p shares (%d)",
		                AGENT_SHARES_MAX);
	char dir[PATH_MAX], path[PATH_MAX];
	int r = agent_pathf(dir, sizeof(dir), err, "%s/%s", env->state_dir,
	                    AGENT_SHARES_DIR);
	if (r || (r = agent_share_path(env, tag, path, sizeof(path), err)))
		return r;
	/* STATE is the containers' state, 0700 (rootfs_prepare makes it the
	 * same way); shares/ is only the agent's. */
	if ((r = make_dir(env->state_dir, 0700, err)) ||
	    (r = make_dir(dir, 0700, err)) || (r = make_dir(path, 0755, err)))
		return r;
	if (mount(tag, path, "9p", 0, AGENT_P9_OPTIONS) != 0) {
		int e = errno;
		rmdir(path);
		return husk_err_errno(err, e, "mount 9p share %s on %s", tag,
		                      path);
	}
	strcpy(mounted[nmounted++], tag);
	return 0;
}

int agent_share_open_beneath(int sharefd, const char *subdir,
                             struct husk_error *err)
{
	struct open_how how = {
	    .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
	    .resolve =
	        RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, sharefd, subdir, &how, sizeof(how));
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP)
			return husk_err(err, e,
			                "directory %s of the share: a symlink "
			                "is in the way",
			                subdir);
		return husk_err_errno(err, e, "directory %s of the share",
		                      subdir);
	}
	return (int)fd;
}

int agent_share_bind_ro(int sharefd, const char *subdir, const char *target,
                        struct husk_error *err)
{
	int fd = agent_share_open_beneath(sharefd, subdir, err);
	if (fd < 0)
		return fd;
	char src[40];
	snprintf(src, sizeof(src), "/proc/self/fd/%d", fd);
	int r = 0;
	/* Not MS_REC: nothing is mounted inside a share, and a submount
	 * would escape the read-only remount. */
	if (mount(src, target, NULL, MS_BIND, NULL) != 0)
		r = husk_err_errno(err, errno,
		                   "bind directory %s of the share "
		                   "on %s",
		                   subdir, target);
	close(fd);
	return r ? r : rootfs_remount_ro(target, err);
}
