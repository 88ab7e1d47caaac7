/* Container state on disk: ROOT/ID/state.json, written temp + rename so a
 * reader never sees half a file. The supervisor's pid and start time tell
 * whether the container still lives: after a kill -9 of the supervisor (or
 * a host crash) the state file still says "running", and the truth is
 * "stopped". */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "husk/io.h"
#include "husk/proc.h"
#include "rt.h"

static const char *const status_names[] = {"creating", "created", "running",
                                           "paused", "stopped"};

const char *rt_status_name(enum rt_status s)
{
	return (unsigned)s < 5 ? status_names[s] : "unknown";
}

bool rt_id_valid(const char *id)
{
	size_t n = strlen(id);
	if (!n || n > 128 || !strcmp(id, ".") || !strcmp(id, ".."))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		      c == '.' || c == '+'))
			return false;
	}
	return true;
}

int rt_state_dir(const char *id, char *buf, size_t cap, struct husk_error *err)
{
	if (!rt_id_valid(id))
		return husk_err(err, EINVAL,
		                "invalid container id '%s': use up to 128 of "
		                "A-Z a-z 0-9 _ - . +",
		                id);
	if ((size_t)snprintf(buf, cap, "%s/%s", rt_g.root, id) >= cap)
		return husk_err(err, ENAMETOOLONG, "state path too long");
	return 0;
}

void rt_now_rfc3339(char *buf, size_t cap)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char base[32];
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, cap, "%s.%09ldZ", base, ts.tv_nsec);
}

int rt_state_write(const struct rt_state *st, struct husk_error *err)
{
	char dir[PATH_MAX], path[PATH_MAX + 32], tmp[PATH_MAX + 48];
	if (rt_state_dir(st->id, dir, sizeof(dir), err) < 0)
		return -err->code;
	snprintf(path, sizeof(path), "%s/%s", dir, RT_STATE_FILE);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(st->id));
	json_object_object_add(o, "pid", json_object_new_int(st->pid));
	json_object_object_add(o, "pid_start",
	                       json_object_new_uint64(st->pid_start));
	json_object_object_add(o, "vmm_pid", json_object_new_int(st->vmm_pid));
	json_object_object_add(
	    o, "status", json_object_new_string(rt_status_name(st->status)));
	json_object_object_add(o, "bundle", json_object_new_string(st->bundle));
	json_object_object_add(o, "rootfs", json_object_new_string(st->rootfs));
	json_object_object_add(o, "created",
	                       json_object_new_string(st->created));
	json_object_object_add(o, "exit_code",
	                       json_object_new_int(st->exit_code));
	json_object_object_add(o, "sandbox",
	                       json_object_new_string(st->sandbox));
	const char *text = json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	int rc = 0;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		rc = husk_err_errno(err, errno, "write %s", path);
	else if ((rc = husk_write_all(fd, text, strlen(text))) < 0)
		rc = husk_err_errno(err, -rc, "write %s", path);
	if (fd >= 0)
		close(fd);
	if (rc >= 0 && rename(tmp, path) < 0)
		rc = husk_err_errno(err, errno, "write %s", path);
	if (rc < 0)
		unlink(tmp);
	json_object_put(o);
	return rc;
}

static void copy_field(json_object *o, const char *name, char *buf, size_t cap)
{
	json_object *v;
	if (json_object_object_get_ex(o, name, &v) &&
	    json_object_is_type(v, json_type_string))
		snprintf(buf, cap, "%s", json_object_get_string(v));
}

static int int_field(json_object *o, const char *name)
{
	json_object *v;
	return json_object_object_get_ex(o, name, &v) ? json_object_get_int(v)
	                                              : 0;
}

int rt_state_read(const char *id, struct rt_state *st, struct husk_error *err)
{
	memset(st, 0, sizeof(*st));
	char dir[PATH_MAX], path[PATH_MAX + 32];
	if (rt_state_dir(id, dir, sizeof(dir), err) < 0)
		return -err->code;
	snprintf(path, sizeof(path), "%s/%s", dir, RT_STATE_FILE);
	json_object *o = json_object_from_file(path);
	if (!o) {
		struct stat sb;
		/* the words containerd matches */
		if (stat(dir, &sb) < 0)
			return husk_err(err, ENOENT,
			                "container %s does not exist", id);
		/* a create that died before its first write */
		snprintf(st->id, sizeof(st->id), "%s", id);
		st->status = RT_STOPPED;
		st->exit_code = 255;
		return 0;
	}
	snprintf(st->id, sizeof(st->id), "%s", id);
	st->pid = int_field(o, "pid");
	json_object *v;
	if (json_object_object_get_ex(o, "pid_start", &v))
		st->pid_start = json_object_get_uint64(v);
	st->vmm_pid = int_field(o, "vmm_pid");
	st->exit_code = int_field(o, "exit_code");
	char status[16] = "";
	copy_field(o, "status", status, sizeof(status));
	st->status = RT_STOPPED;
	for (int i = 0; i < 5; i++)
		if (!strcmp(status, status_names[i]))
			st->status = (enum rt_status)i;
	copy_field(o, "bundle", st->bundle, sizeof(st->bundle));
	copy_field(o, "rootfs", st->rootfs, sizeof(st->rootfs));
	copy_field(o, "created", st->created, sizeof(st->created));
	copy_field(o, "sandbox", st->sandbox, sizeof(st->sandbox));
	json_object_put(o);
	if (st->status != RT_STOPPED &&
	    !husk_pid_alive(st->pid, st->pid_start)) {
		/* the supervisor is gone without saying how it ended */
		st->status = RT_STOPPED;
		if (!st->exit_code)
			st->exit_code = 137;
	}
	return 0;
}

/* Removes what is under dfd, never following a symlink and never
 * crossing into another file system (a mount left behind must not lose
 * its files to a delete). */
static void remove_under(int dfd, dev_t dev, int depth)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (st.st_dev != dev || depth > 32)
				continue;
			int sub = openat(dirfd(d), e->d_name,
			                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			                     O_CLOEXEC);
			if (sub >= 0)
				remove_under(sub, dev, depth + 1);
			unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
		} else {
			unlinkat(dirfd(d), e->d_name, 0);
		}
	}
	closedir(d);
}

json_object *rt_state_json(const struct rt_state *st)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ociVersion",
	                       json_object_new_string("1.0.2"));
	json_object_object_add(o, "id", json_object_new_string(st->id));
	json_object_object_add(
	    o, "pid",
	    json_object_new_int(st->status == RT_STOPPED ? 0 : st->pid));
	json_object_object_add(
	    o, "status", json_object_new_string(rt_status_name(st->status)));
	json_object_object_add(o, "bundle", json_object_new_string(st->bundle));
	json_object_object_add(o, "rootfs", json_object_new_string(st->rootfs));
	json_object_object_add(o, "created",
	                       json_object_new_string(st->created));
	json_object_object_add(o, "owner", json_object_new_string(""));
	return o;
}

int rt_state_get(const char *id, struct rt_state *st, bool live)
{
	struct husk_error err = {0};
	if (rt_state_read(id, st, &err) < 0) {
		rt_error("%s", err.msg);
		return -1;
	}
	if (live && st->status == RT_STOPPED) {
		rt_error("container not running");
		return -1;
	}
	return 0;
}

void rt_state_for_each(bool (*fn)(const struct rt_state *st, void *arg),
                       void *arg)
{
	DIR *d = opendir(rt_g.root);
	const struct dirent *e;
	while (d && (e = readdir(d))) {
		struct rt_state st;
		struct husk_error err = {0};
		/* dot entries are the runtime's own (.pods) */
		if (e->d_name[0] == '.' || !rt_id_valid(e->d_name) ||
		    rt_state_read(e->d_name, &st, &err) < 0)
			continue;
		if (!fn(&st, arg))
			break;
	}
	if (d)
		closedir(d);
}

void rt_remove_tree(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (dfd < 0)
		return;
	if (fstat(dfd, &st) < 0) {
		close(dfd);
		return;
	}
	remove_under(dfd, st.st_dev, 0);
	rmdir(dir);
}

void rt_state_remove(const char *id)
{
	char dir[PATH_MAX];
	if (rt_state_dir(id, dir, sizeof(dir), NULL) < 0)
		return;
	rt_remove_tree(dir);
}
