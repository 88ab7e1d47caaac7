/* Pods on disk and their members; see pod_store.h. */
#include "pod_store.h"

#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static void pod_path(char *buf, size_t cap, const char *id, const char *file)
{
	snprintf(buf, cap, "%s/pods%s%s%s%s", ctr_root(), id ? "/" : "",
	         id ? id : "", file ? "/" : "", file ? file : "");
}

int pod_lock(struct husk_error *err)
{
	return ctr_lock("pods", err);
}

static int64_t rec_int(json_object *o, const char *key)
{
	json_object *v;
	return o && json_object_object_get_ex(o, key, &v) &&
	               json_object_is_type(v, json_type_int)
	           ? json_object_get_int64(v)
	           : 0;
}

const char *pod_name(const struct pod *p)
{
	json_object *v;
	if (p->record && json_object_object_get_ex(p->record, "name", &v) &&
	    json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return "";
}

bool pod_shares_pid(const struct pod *p)
{
	json_object *v;
	return p->record &&
	       json_object_object_get_ex(p->record, "share_pid", &v) &&
	       json_object_get_boolean(v);
}

int pod_load(const char *id, struct pod *p, struct husk_error *err)
{
	memset(p, 0, sizeof(*p));
	if (!ctr_is_id(id))
		return husk_err(err, ENOENT, "no such pod: %s", id);
	char path[PATH_MAX];
	pod_path(path, sizeof(path), id, "pod.json");
	p->record = json_object_from_file(path);
	if (!p->record || !json_object_is_type(p->record, json_type_object)) {
		json_object_put(p->record);
		p->record = NULL;
		return husk_err(err, ENOENT, "no such pod: %s", id);
	}
	snprintf(p->id, sizeof(p->id), "%s", id);
	return 0;
}

void pod_free(struct pod *p)
{
	json_object_put(p->record);
	p->record = NULL;
}

void pod_list_free(struct pod *pods, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pod_free(&pods[i]);
	free(pods);
}

int pod_list(struct pod **out, size_t *n, struct husk_error *err)
{
	*out = NULL;
	*n = 0;
	char dir[PATH_MAX];
	pod_path(dir, sizeof(dir), NULL, NULL);
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT
		           ? 0
		           : husk_err_errno(err, errno, "open %s", dir);
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d))) {
		struct pod p;
		struct husk_error e2 = {0};
		if (!ctr_is_id(e->d_name) || pod_load(e->d_name, &p, &e2) < 0)
			continue; /* not a pod, or one being created or removed
			           */
		struct pod *grown = realloc(*out, (*n + 1) * sizeof(**out));
		if (!grown) {
			pod_free(&p);
			rc = husk_err(err, ENOMEM, "out of memory");
			break;
		}
		*out = grown;
		(*out)[(*n)++] = p;
	}
	closedir(d);
	/* oldest first, as containers are listed; a host has few pods */
	struct pod *v = *out;
	for (size_t i = 1; i < *n; i++)
		for (size_t j = i;
		     j > 0 && rec_int(v[j].record, "created_ns") <
		                  rec_int(v[j - 1].record, "created_ns");
		     j--) {
			struct pod t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return rc;
}

int pod_find(const char *ref, struct pod *p, struct husk_error *err)
{
	memset(p, 0, sizeof(*p));
	if (!ref[0])
		return husk_err(err, EINVAL, "a pod name or id is empty");
	if (ctr_is_id(ref) && pod_load(ref, p, err) == 0)
		return 0;
	struct pod *pods;
	size_t n;
	int rc = pod_list(&pods, &n, err);
	if (rc < 0)
		return rc;
	size_t match = n, nprefix = 0;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(pod_name(&pods[i]), ref)) {
			match = i;
			nprefix = 1;
			break;
		}
		if (!strncmp(pods[i].id, ref, strlen(ref))) {
			match = i;
			nprefix++;
		}
	}
	if (nprefix > 1)
		rc = husk_err(err, EINVAL,
		              "multiple pods found with provided prefix: %s",
		              ref);
	else if (nprefix == 1) {
		*p = pods[match];
		pods[match].record = NULL;
	} else
		rc = husk_err(err, ENOENT, "no such pod: %s", ref);
	pod_list_free(pods, n);
	return rc;
}

struct counting {
	const struct pod *pods;
	size_t n;
	struct pod_usage *use;
};

static int count_one(struct ctr *c, void *arg)
{
	struct counting *k = arg;
	const char *pod = ctr_str(c, "pod");
	for (size_t i = 0; pod[0] && i < k->n; i++)
		if (!strcmp(k->pods[i].id, pod)) {
			k->use[i].containers++;
			if (c->status == CTR_RUNNING || c->status == CTR_PAUSED)
				k->use[i].running++;
		}
	return 0;
}

int pod_count(const struct pod *pods, size_t n, struct pod_usage *use,
              struct husk_error *err)
{
	memset(use, 0, n * sizeof(*use));
	struct counting k = {pods, n, use};
	return ctr_each(count_one, &k, err);
}

struct members {
	const char *pod;
	char (*ids)[CTR_ID_LEN + 1];
	size_t n;
	bool oom;
};

static int member_one(struct ctr *c, void *arg)
{
	struct members *m = arg;
	if (strcmp(ctr_str(c, "pod"), m->pod))
		return 0;
	void *grown = realloc(m->ids, (m->n + 1) * sizeof(*m->ids));
	if (!grown) {
		m->oom = true;
		return 1;
	}
	m->ids = grown;
	memcpy(m->ids[m->n++], c->id, sizeof(c->id));
	return 0;
}

int pod_member_ids(const char *pod_id, char (**ids)[CTR_ID_LEN + 1], size_t *n,
                   struct husk_error *err)
{
	struct members m = {.pod = pod_id};
	int rc = ctr_each(member_one, &m, err);
	if (m.oom)
		rc = husk_err(err, ENOMEM, "out of memory");
	if (rc < 0) {
		free(m.ids);
		m.ids = NULL;
		m.n = 0;
	}
	*ids = m.ids;
	*n = m.n;
	return rc;
}

static bool name_taken(const char *name)
{
	struct pod *pods;
	size_t n;
	struct husk_error err = {0};
	bool taken = false;
	if (pod_list(&pods, &n, &err) < 0)
		return false;
	for (size_t i = 0; i < n && !taken; i++)
		taken = !strcmp(pod_name(&pods[i]), name);
	pod_list_free(pods, n);
	return taken;
}

int pod_create(const char *name, bool share_pid, struct pod *p,
               struct husk_error *err)
{
	memset(p, 0, sizeof(*p));
	if (name && !ctr_name_valid(name))
		return husk_err(err, EINVAL,
		                "Invalid pod name (%s), only "
		                "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
		                name);
	ctr_random_id(p->id);
	char made_up[32];
	/* as containers' made-up names: the id's start is unique enough */
	snprintf(made_up, sizeof(made_up), "husk_%.12s", p->id);
	if (!name)
		name = made_up;
	if (name_taken(name))
		return husk_err(err, EEXIST,
		                "Conflict. The pod name \"%s\" is already in "
		                "use. Remove it or use another name",
		                name);
	char dir[PATH_MAX], path[PATH_MAX];
	pod_path(dir, sizeof(dir), p->id, NULL);
	if (mkdir(dir, 0700) < 0)
		return husk_err_errno(err, errno, "create %s", dir);
	/* nanoseconds too, so that pods made in one second still list in
	 * the order they were made */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	time_t now = ts.tv_sec;
	struct tm tm;
	char created[40];
	gmtime_r(&now, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	p->record = json_object_new_object();
	json_object_object_add(p->record, "id", json_object_new_string(p->id));
	json_object_object_add(p->record, "name", json_object_new_string(name));
	json_object_object_add(p->record, "created",
	                       json_object_new_string(created));
	json_object_object_add(p->record, "created_unix",
	                       json_object_new_int64(now));
	json_object_object_add(
	    p->record, "created_ns",
	    json_object_new_int64((int64_t)ts.tv_sec * 1000000000 +
	                          ts.tv_nsec));
	json_object_object_add(p->record, "share_pid",
	                       json_object_new_boolean(share_pid));
	pod_path(path, sizeof(path), p->id, "pod.json");
	int rc = ctr_write_json(path, p->record, err);
	if (rc < 0) {
		pod_remove_record(p);
		pod_free(p);
	}
	return rc;
}

void pod_remove_record(const struct pod *p)
{
	char dir[PATH_MAX];
	pod_path(dir, sizeof(dir), p->id, NULL);
	ctr_remove_tree(dir);
}

/* husk-runtime keeps a pod in ROOT/.pods/POD and ROOT/.pods/POD.lock
 * (src/runtime/pod.h) while its daemon lives. */
bool pod_runtime_gone(const char *id, int timeout_ms)
{
	char rt[PATH_MAX], dir[PATH_MAX + 80], lock[PATH_MAX + 90];
	ctr_runtime_root(rt, sizeof(rt));
	snprintf(dir, sizeof(dir), "%s/.pods/%s", rt, id);
	snprintf(lock, sizeof(lock), "%s.lock", dir);
	for (int waited = 0;; waited += 50) {
		if (access(dir, F_OK) < 0 && access(lock, F_OK) < 0)
			return true;
		if (waited >= timeout_ms)
			return false;
		usleep(50000);
	}
}

struct founder {
	const char *pod, *self;
	pid_t pid;
	int64_t started;
};

/* The member that runs longest most likely founded the PID namespace
 * the others joined; ctr_each goes oldest first, so ties keep the one
 * created first. */
static int founder_one(struct ctr *c, void *arg)
{
	struct founder *f = arg;
	if (strcmp(ctr_str(c, "pod"), f->pod) || !strcmp(c->id, f->self) ||
	    c->status != CTR_RUNNING || c->pid <= 0)
		return 0;
	json_object *v;
	int64_t started =
	    json_object_object_get_ex(c->record, "started_unix", &v)
	        ? json_object_get_int64(v)
	        : 0;
	if (!f->pid || started < f->started) {
		f->pid = c->pid;
		f->started = started;
	}
	return 0;
}

/* Sets config.json's linux.namespaces pid entry: the path of the
 * runtime pid to join, or none for a namespace of its own. Other
 * namespace entries stay as they are. */
static int set_pid_namespace(const struct ctr *c, pid_t join,
                             struct husk_error *err)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/config.json", c->dir);
	json_object *cfg = json_object_from_file(path), *lin, *old;
	if (!cfg || !json_object_is_type(cfg, json_type_object)) {
		json_object_put(cfg);
		return husk_err(err, EINVAL, "%s: not a JSON object", path);
	}
	if (!json_object_object_get_ex(cfg, "linux", &lin) ||
	    !json_object_is_type(lin, json_type_object)) {
		lin = json_object_new_object();
		json_object_object_add(cfg, "linux", lin);
	}
	json_object *ns = json_object_new_array();
	if (json_object_object_get_ex(lin, "namespaces", &old) &&
	    json_object_is_type(old, json_type_array))
		for (size_t i = 0; i < json_object_array_length(old); i++) {
			json_object *e = json_object_array_get_idx(old, i), *t;
			if (json_object_object_get_ex(e, "type", &t) &&
			    !strcmp(json_object_get_string(t), "pid"))
				continue;
			json_object_array_add(ns, json_object_get(e));
		}
	json_object *pid = json_object_new_object();
	json_object_object_add(pid, "type", json_object_new_string("pid"));
	if (join > 0) {
		char p[64];
		snprintf(p, sizeof(p), "/proc/%d/ns/pid", (int)join);
		json_object_object_add(pid, "path", json_object_new_string(p));
	}
	json_object_array_add(ns, pid);
	json_object_object_add(lin, "namespaces", ns);
	int rc = ctr_write_json(path, cfg, err);
	json_object_put(cfg);
	return rc;
}

int pod_before_start(struct ctr *c, int *lock, struct husk_error *err)
{
	*lock = -1;
	const char *pod_id = ctr_str(c, "pod");
	if (!pod_id[0])
		return 0;
	struct pod p;
	int rc = pod_load(pod_id, &p, err);
	bool share = rc == 0 && pod_shares_pid(&p);
	pod_free(&p);
	if (rc < 0 || !share)
		return rc;
	char path[PATH_MAX];
	pod_path(path, sizeof(path), pod_id, "start.lock");
	*lock = cli_lock_file(path, err);
	if (*lock < 0)
		return *lock;
	struct founder f = {.pod = pod_id, .self = c->id};
	rc = ctr_each(founder_one, &f, err);
	if (rc == 0)
		rc = set_pid_namespace(c, f.pid, err);
	if (rc < 0) {
		close(*lock);
		*lock = -1;
	}
	return rc;
}
