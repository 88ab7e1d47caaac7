/* Containers on disk and the runtime under them; see container_store.h. */
#include "container_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "husk/io.h"
#include "husk/proc.h"
#include "husk/program.h"
#include "husk/store.h"

const char *ctr_root(void)
{
	const char *r = getenv("HUSK_ROOT");
	return r && r[0] ? r : HUSK_STORE_DEFAULT_ROOT;
}

void ctr_path(char *buf, size_t cap, const char *id, const char *file)
{
	snprintf(buf, cap, "%s/containers%s%s%s%s", ctr_root(), id ? "/" : "",
	         id ? id : "", file ? "/" : "", file ? file : "");
}

void ctr_runtime_root(char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/runtime", ctr_root());
}

const char *ctr_str(const struct ctr *c, const char *key)
{
	json_object *v;
	if (c->record && json_object_object_get_ex(c->record, key, &v) &&
	    json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return "";
}

static int64_t rec_int(json_object *o, const char *key, int64_t dflt)
{
	json_object *v;
	return o && json_object_object_get_ex(o, key, &v) &&
	               json_object_is_type(v, json_type_int)
	           ? json_object_get_int64(v)
	           : dflt;
}

/* The runtime's state.json, read directly: `husk-runtime state` does not
 * print the exit code, and one file read per container keeps `ps` fast. */
void ctr_refresh(struct ctr *c)
{
	char rt[PATH_MAX], path[PATH_MAX + 200];
	ctr_runtime_root(rt, sizeof(rt));
	snprintf(path, sizeof(path), "%s/%s/state.json", rt, c->id);
	c->pid = 0;
	c->finished = 0;
	struct stat sb;
	json_object *st = json_object_from_file(path);
	if (!st) {
		/* no runtime state: never started, or a start that failed */
		bool started = rec_int(c->record, "started_count", 0) > 0;
		c->status = started ? CTR_EXITED : CTR_CREATED;
		c->exit_code = started ? 255 : 0;
		return;
	}
	json_object *v;
	const char *status = json_object_object_get_ex(st, "status", &v) && v
	                         ? json_object_get_string(v)
	                         : "stopped";
	pid_t pid = (pid_t)rec_int(st, "pid", 0);
	uint64_t start = 0;
	if (json_object_object_get_ex(st, "pid_start", &v))
		start = json_object_get_uint64(v);
	c->exit_code = (int)rec_int(st, "exit_code", 0);
	if (!strcmp(status, "running"))
		c->status = CTR_RUNNING;
	else if (!strcmp(status, "paused"))
		c->status = CTR_PAUSED;
	else if (!strcmp(status, "created") || !strcmp(status, "creating"))
		c->status = CTR_CREATED;
	else
		c->status = CTR_EXITED;
	if (c->status != CTR_EXITED && !husk_pid_alive(pid, start)) {
		/* the supervisor is gone without saying how it ended, as
		 * husk-runtime reads it: SIGKILL's status */
		c->status = CTR_EXITED;
		if (!c->exit_code)
			c->exit_code = 137;
	}
	if (c->status != CTR_EXITED)
		c->pid = pid;
	else if (stat(path, &sb) == 0)
		c->finished = sb.st_mtime;
	json_object_put(st);
}

int ctr_load(const char *id, struct ctr *c, struct husk_error *err)
{
	memset(c, 0, sizeof(*c));
	if (strlen(id) != CTR_ID_LEN)
		return husk_err(err, ENOENT, "No such container: %s", id);
	snprintf(c->id, sizeof(c->id), "%s", id);
	ctr_path(c->dir, sizeof(c->dir), id, NULL);
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/container.json", c->dir);
	c->record = json_object_from_file(path);
	if (!c->record || !json_object_is_type(c->record, json_type_object)) {
		json_object_put(c->record);
		c->record = NULL;
		return husk_err(err, ENOENT, "No such container: %s", id);
	}
	ctr_refresh(c);
	return 0;
}

void ctr_free(struct ctr *c)
{
	json_object_put(c->record);
	c->record = NULL;
}

void ctr_random_id(char *id)
{
	unsigned char b[CTR_ID_LEN / 2];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, b, sizeof(b)) != (ssize_t)sizeof(b)) {
		/* time and pid still make a unique enough id on one host */
		unsigned long long t = (unsigned long long)time(NULL) ^
		                       ((unsigned long long)getpid() << 32);
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (unsigned char)(t >> (8 * (i % 8))) ^
			       (unsigned char)(i * 37);
	}
	if (fd >= 0)
		close(fd);
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(id + 2 * i, 3, "%02x", b[i]);
}

/* Docker's rule for names: [a-zA-Z0-9][a-zA-Z0-9_.-]+ */
bool ctr_name_valid(const char *n)
{
	size_t len = strlen(n);
	if (len < 2 || len > 128)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = n[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		             (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
			return false;
	}
	return true;
}

bool ctr_is_id(const char *s)
{
	if (strlen(s) != CTR_ID_LEN)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

struct listing {
	char (*ids)[CTR_ID_LEN + 1];
	time_t *when;
	size_t n;
};

/* The container ids, oldest first (by their directory's birth, which
 * is close enough to Docker's created order). */
static int list_ids(struct listing *l, struct husk_error *err)
{
	memset(l, 0, sizeof(*l));
	char dir[PATH_MAX];
	ctr_path(dir, sizeof(dir), NULL, NULL);
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT
		           ? 0
		           : husk_err_errno(err, errno, "open %s", dir);
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d))) {
		if (!ctr_is_id(e->d_name))
			continue;
		struct stat sb;
		if (fstatat(dirfd(d), e->d_name, &sb, 0) < 0)
			continue;
		void *ids = realloc(l->ids, (l->n + 1) * sizeof(*l->ids));
		if (ids)
			l->ids = ids;
		void *when = realloc(l->when, (l->n + 1) * sizeof(*l->when));
		if (when)
			l->when = when;
		if (!ids || !when) {
			rc = husk_err(err, ENOMEM, "out of memory");
			break;
		}
		/* is_id: exactly CTR_ID_LEN characters */
		memcpy(l->ids[l->n], e->d_name, CTR_ID_LEN + 1);
		l->when[l->n++] = sb.st_ctime;
	}
	closedir(d);
	/* insertion sort: a host has tens of containers, not millions */
	for (size_t i = 1; i < l->n; i++)
		for (size_t j = i; j > 0 && l->when[j] < l->when[j - 1]; j--) {
			char t[CTR_ID_LEN + 1];
			memcpy(t, l->ids[j], sizeof(t));
			memcpy(l->ids[j], l->ids[j - 1], sizeof(t));
			memcpy(l->ids[j - 1], t, sizeof(t));
			time_t w = l->when[j];
			l->when[j] = l->when[j - 1];
			l->when[j - 1] = w;
		}
	return rc;
}

static void listing_free(struct listing *l)
{
	free(l->ids);
	free(l->when);
}

int ctr_each(int (*fn)(struct ctr *c, void *arg), void *arg,
             struct husk_error *err)
{
	struct listing l;
	int rc = list_ids(&l, err);
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		struct ctr c;
		struct husk_error e2 = {0};
		if (ctr_load(l.ids[i], &c, &e2) < 0)
			continue; /* removed meanwhile, or half-created */
		rc = fn(&c, arg);
		ctr_free(&c);
	}
	listing_free(&l);
	return rc;
}

bool ctr_name_taken(const char *name, const char *except_id)
{
	struct listing l;
	struct husk_error err = {0};
	bool taken = false;
	if (list_ids(&l, &err) < 0)
		return false;
	for (size_t i = 0; !taken && i < l.n; i++) {
		struct ctr c;
		if (strcmp(l.ids[i], except_id ? except_id : "") &&
		    ctr_load(l.ids[i], &c, &err) == 0) {
			taken = !strcmp(ctr_str(&c, "name"), name);
			ctr_free(&c);
		}
	}
	listing_free(&l);
	return taken;
}

int ctr_find(const char *ref, struct ctr *c, struct husk_error *err)
{
	memset(c, 0, sizeof(*c));
	if (!ref[0])
		return husk_err(err, EINVAL, "a container name or id is empty");
	if (ctr_is_id(ref) && ctr_load(ref, c, err) == 0)
		return 0;
	struct listing l;
	int rc = list_ids(&l, err);
	if (rc < 0)
		return rc;
	/* a name wins over an id prefix, as in Docker */
	const char *name = ref[0] == '/' ? ref + 1 : ref;
	const char *match = NULL;
	size_t nprefix = 0;
	for (size_t i = 0; i < l.n && rc == 0; i++) {
		struct ctr t;
		if (ctr_load(l.ids[i], &t, err) < 0)
			continue;
		if (!strcmp(ctr_str(&t, "name"), name)) {
			*c = t;
			listing_free(&l);
			return 0;
		}
		ctr_free(&t);
		if (!strncmp(l.ids[i], ref, strlen(ref))) {
			match = l.ids[i];
			nprefix++;
		}
	}
	if (nprefix > 1)
		rc = husk_err(err, EINVAL,
		              "multiple IDs found with provided prefix: %s",
		              ref);
	else if (nprefix == 1)
		rc = ctr_load(match, c, err);
	else
		rc = husk_err(err, ENOENT, "No such container: %s", ref);
	listing_free(&l);
	return rc;
}

int ctr_write_json(const char *path, json_object *o, struct husk_error *err)
{
	char tmp[PATH_MAX + 64];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	const char *text = json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return husk_err_errno(err, errno, "write %s", tmp);
	int rc = husk_write_all(fd, text, strlen(text));
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		return husk_err_errno(err, -rc, "write %s", path);
	}
	return 0;
}

int ctr_save(const struct ctr *c, struct husk_error *err)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/container.json", c->dir);
	return ctr_write_json(path, c->record, err);
}

int ctr_lock(const char *subdir, struct husk_error *err)
{
	char dir[PATH_MAX], path[PATH_MAX + 16];
	snprintf(dir, sizeof(dir), "%s/%s", ctr_root(), subdir);
	mkdir(ctr_root(), 0711);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return husk_err_errno(err, errno, "create %s", dir);
	snprintf(path, sizeof(path), "%s/.lock", dir);
	return cli_lock_file(path, err);
}

int cli_lock_file(const char *path, struct husk_error *err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return husk_err_errno(err, e, "lock %s", path);
	}
	return fd;
}

void cli_print_json_array(struct json_object *a)
{
	printf("%s\n",
	       json_object_to_json_string_ext(
	           a, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
	                  JSON_C_TO_STRING_NOSLASHESCAPE));
}

const char *ctr_state_name(enum ctr_status s)
{
	static const char *const names[] = {"created", "running", "paused",
	                                    "exited"};
	return names[s];
}

void ctr_ago(time_t t, char *buf, size_t cap)
{
	long d = (long)(time(NULL) - t);
	if (d < 0)
		d = 0;
	if (d < 1)
		snprintf(buf, cap, "Less than a second");
	else if (d < 60)
		snprintf(buf, cap, "%ld second%s", d, d == 1 ? "" : "s");
	else if (d < 3600)
		snprintf(buf, cap, "%ld minute%s", d / 60,
		         d / 60 == 1 ? "" : "s");
	else if (d < 48 * 3600)
		snprintf(buf, cap, "%ld hour%s", d / 3600,
		         d / 3600 == 1 ? "" : "s");
	else
		snprintf(buf, cap, "%ld days", d / 86400);
}

void ctr_status_text(const struct ctr *c, char *buf, size_t cap)
{
	char ago[64];
	switch (c->status) {
	case CTR_CREATED: snprintf(buf, cap, "Created"); return;
	case CTR_RUNNING:
	case CTR_PAUSED:
		ctr_ago((time_t)rec_int(c->record, "started_unix", 0), ago,
		        sizeof(ago));
		snprintf(buf, cap, "Up %s%s", ago,
		         c->status == CTR_PAUSED ? " (Paused)" : "");
		return;
	case CTR_EXITED:
		if (c->finished) {
			ctr_ago(c->finished, ago, sizeof(ago));
			snprintf(buf, cap, "Exited (%d) %s ago", c->exit_code,
			         ago);
		} else {
			snprintf(buf, cap, "Exited (%d)", c->exit_code);
		}
		return;
	}
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* Without FTW_MOUNT: on overlayfs (the test machine's root) files report
 * another st_dev than their directory and would be skipped. Nothing is
 * mounted under a container's directory: the runtime mounts in its own. */
void ctr_remove_tree(const char *dir)
{
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* HUSK_RUNTIME, else husk-runtime beside this husk binary, else $PATH. */
static int find_runtime(char *out, size_t cap, struct husk_error *err)
{
	const char *env = getenv("HUSK_RUNTIME");
	if (env && env[0]) {
		snprintf(out, cap, "%s", env);
		return 0;
	}
	char self[PATH_MAX - 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(out, cap, "%s/husk-runtime", self);
			if (access(out, X_OK) == 0)
				return 0;
		}
	}
	if (husk_find_program("husk-runtime", NULL, out, cap))
		return 0;
	return husk_err(err, ENOENT,
	                "husk-runtime is missing (looked beside husk and in "
	                "$PATH; set HUSK_RUNTIME)");
}

pid_t ctr_runtime_spawn(const char *const *args, int in, int out, int errfd,
                        bool new_session, struct husk_error *err)
{
	char bin[PATH_MAX], root[PATH_MAX];
	if (find_runtime(bin, sizeof(bin), err) < 0)
		return -1;
	ctr_runtime_root(root, sizeof(root));
	size_t n = 0;
	while (args[n])
		n++;
	const char **argv = calloc(n + 4, sizeof(*argv));
	if (!argv) {
		husk_err(err, ENOMEM, "out of memory");
		return -1;
	}
	argv[0] = bin;
	argv[1] = "--root";
	argv[2] = root;
	memcpy(argv + 3, args, n * sizeof(*argv));
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		free(argv);
		husk_err_errno(err, errno, "fork");
		return -1;
	}
	if (pid == 0) {
		int fds[3] = {in, out, errfd};
		for (int i = 0; i < 3; i++)
			if (fds[i] >= 0 && fds[i] != i)
				dup2(fds[i], i);
		if (new_session)
			setsid();
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execv(bin, (char *const *)argv);
		fprintf(stderr, "husk: %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	free(argv);
	return pid;
}

int ctr_runtime_wait(pid_t pid, struct husk_error *err)
{
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			husk_err_errno(err, errno, "wait for husk-runtime");
			return -1;
		}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int ctr_runtime(const char *const *args, int in, int out, int errfd,
                struct husk_error *err)
{
	pid_t pid = ctr_runtime_spawn(args, in, out, errfd, false, err);
	return pid < 0 ? -1 : ctr_runtime_wait(pid, err);
}

bool ctr_wait_stopped(struct ctr *c, int timeout_ms)
{
	for (int waited = 0;; waited += 50) {
		ctr_refresh(c);
		if (c->status == CTR_EXITED)
			return true;
		if (timeout_ms >= 0 && waited >= timeout_ms)
			return false;
		usleep(50000);
	}
}
