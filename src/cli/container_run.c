/* `husk run -d`: a container written as an OCI bundle under
 * $HUSK_ROOT/containers/ID and handed to husk-runtime, which keeps it
 * running after husk exits. Foreground `husk run` stays in run.c: it
 * needs no runtime, and its stdio is the user's; only a foreground
 * member of a pod goes through the runtime too (the pod's VM is the
 * runtime's), and husk follows it (container_attach.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../agent/confine.h"
#include "cli.h"
#include "container_store.h"
#include "pod_store.h"
#include "run_plan.h"

#define DEFAULT_PATH                                                           \
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static json_object *strv(char **v)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; v && v[i]; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

static json_object *str_list(const char *const *v, size_t n)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

static int volume_mounts(const struct husk_run_options *o, json_object *mounts,
                         struct husk_error *err)
{
	for (size_t i = 0; i < o->nvolumes; i++) {
		const struct husk_run_volume *v = &o->volumes[i];
		char real[PATH_MAX];
		struct stat sb;
		if (!realpath(v->host, real) || stat(real, &sb) < 0)
			return husk_err(
			    err, ENOENT,
			    "invalid mount config: bind source path "
			    "does not exist: %s",
			    v->host);
		if (!S_ISDIR(sb.st_mode))
			return husk_err(err, EINVAL,
			                "-v %s: only directories can be shared "
			                "with the microVM",
			                v->host);
		json_object *m = json_object_new_object();
		json_object_object_add(m, "destination",
		                       json_object_new_string(v->container));
		json_object_object_add(m, "type",
		                       json_object_new_string("bind"));
		json_object_object_add(m, "source",
		                       json_object_new_string(real));
		const char *opts[] = {"rbind", v->readonly ? "ro" : "rw"};
		json_object_object_add(m, "options", str_list(opts, 2));
		json_object_array_add(mounts, m);
	}
	return 0;
}

static json_object *resources(const struct husk_run_options *o)
{
	json_object *r = json_object_new_object();
	if (o->memory) {
		json_object *m = json_object_new_object();
		json_object_object_add(
		    m, "limit", json_object_new_int64((int64_t)o->memory));
		json_object_object_add(r, "memory", m);
	}
	if (o->cpu_millis) {
		json_object *c = json_object_new_object();
		json_object_object_add(
		    c, "quota",
		    json_object_new_int64((int64_t)o->cpu_millis * 100));
		json_object_object_add(c, "period",
		                       json_object_new_int64(100000));
		json_object_object_add(r, "cpu", c);
	}
	if (o->pids_limit) {
		json_object *p = json_object_new_object();
		json_object_object_add(
		    p, "limit", json_object_new_int64((int64_t)o->pids_limit));
		json_object_object_add(r, "pids", p);
	}
	return r;
}

/* config.json of the bundle: what husk-runtime's spec.c reads. The user
 * is resolved here, against the root's /etc/passwd, because an OCI
 * process names numbers only. */
static int write_config(const struct husk_run_options *o,
                        const struct run_plan *p, const char *rootfs,
                        const char *dir, const char *id, const char *pod_id,
                        struct husk_error *err)
{
	struct agent_user_cfg u = {0};
	snprintf(u.user, sizeof(u.user), "%s", p->user ? p->user : "");
	if (confine_resolve_user(rootfs, &u, NULL, 0, err) < 0)
		return -err->code;
	json_object *proc = json_object_new_object();
	json_object_object_add(proc, "terminal", json_object_new_boolean(0));
	json_object *user = json_object_new_object();
	json_object_object_add(user, "uid", json_object_new_int64(u.uid));
	json_object_object_add(user, "gid", json_object_new_int64(u.gid));
	json_object_object_add(proc, "user", user);
	json_object_object_add(proc, "args", strv(p->argv));
	json_object *env = strv(p->env);
	bool has_path = false;
	for (size_t i = 0; p->env && p->env[i]; i++)
		has_path |= !strncmp(p->env[i], "PATH=", 5);
	if (!has_path)
		json_object_array_add(env,
		                      json_object_new_string(DEFAULT_PATH));
	json_object_object_add(proc, "env", env);
	json_object_object_add(proc, "cwd",
	                       json_object_new_string(p->cwd ? p->cwd : "/"));
	json_object *root = json_object_new_object();
	json_object_object_add(root, "path", json_object_new_string(rootfs));
	json_object_object_add(root, "readonly",
	                       json_object_new_boolean(o->read_only));
	json_object *cfg = json_object_new_object();
	json_object_object_add(cfg, "ociVersion",
	                       json_object_new_string("1.0.2"));
	json_object_object_add(cfg, "process", proc);
	json_object_object_add(cfg, "root", root);
	/* Docker's default host name: the short id */
	char host[13];
	memcpy(host, id, 12);
	host[12] = '\0';
	json_object_object_add(
	    cfg, "hostname",
	    json_object_new_string(o->hostname ? o->hostname : host));
	json_object *mounts = json_object_new_array();
	json_object_object_add(cfg, "mounts", mounts);
	json_object *lin = json_object_new_object();
	json_object_object_add(lin, "resources", resources(o));
	json_object_object_add(cfg, "linux", lin);
	/* the runtime runs the pod's members in one VM */
	if (pod_id[0]) {
		json_object *ann = json_object_new_object();
		json_object_object_add(ann, POD_ANNOTATION,
		                       json_object_new_string(pod_id));
		json_object_object_add(cfg, "annotations", ann);
	}
	int rc = volume_mounts(o, mounts, err);
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/config.json", dir);
	if (rc == 0 &&
	    json_object_to_file_ext(path, cfg, JSON_C_TO_STRING_PRETTY) < 0)
		rc = husk_err(err, EIO, "write %s", path);
	json_object_put(cfg);
	return rc;
}

static json_object *record_new(const struct husk_run_options *o,
                               const struct run_plan *p, const char *id,
                               const char *name, const char *rootfs,
                               const char *pod_id)
{
	json_object *r = json_object_new_object();
	char created[40];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_object_add(r, "id", json_object_new_string(id));
	json_object_object_add(r, "name", json_object_new_string(name));
	json_object_object_add(
	    r, "image", json_object_new_string(o->image ? o->image : rootfs));
	json_object_object_add(r, "image_id",
	                       json_object_new_string(p->image_id));
	json_object_object_add(r, "rootfs", json_object_new_string(rootfs));
	json_object_object_add(r, "created", json_object_new_string(created));
	json_object_object_add(r, "created_unix", json_object_new_int64(now));
	json_object_object_add(r, "command", strv(p->argv));
	json_object_object_add(r, "interactive",
	                       json_object_new_boolean(o->interactive));
	json_object_object_add(r, "vmm",
	                       json_object_new_string(o->vmm ? o->vmm : ""));
	json_object *vols = json_object_new_array();
	for (size_t i = 0; i < o->nvolumes; i++) {
		char b[PATH_MAX * 2 + 8];
		snprintf(b, sizeof(b), "%s:%s:%s", o->volumes[i].host,
		         o->volumes[i].container,
		         o->volumes[i].readonly ? "ro" : "rw");
		json_object_array_add(vols, json_object_new_string(b));
	}
	json_object_object_add(r, "binds", vols);
	if (pod_id[0])
		json_object_object_add(r, "pod",
		                       json_object_new_string(pod_id));
	return r;
}

/* What a log holds from offset on, to stderr: the runtime's own words
 * when create fails (its stderr is the container's, the log). */
static void print_log_since(const char *path, off_t offset)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char buf[4096];
	ssize_t n;
	lseek(fd, offset, SEEK_SET);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, stderr);
	close(fd);
}

static int create_and_start(struct ctr *c, struct husk_error *err)
{
	char log[PATH_MAX + 16], in_path[PATH_MAX + 16];
	snprintf(log, sizeof(log), "%s/log", c->dir);
	snprintf(in_path, sizeof(in_path), "%s/stdin", c->dir);
	/* whatever the runtime still holds of an earlier run */
	const char *del[] = {"delete", "--force", c->id, NULL};
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	(void)ctr_runtime(del, devnull, devnull, devnull, err);
	int out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (out < 0) {
		close(devnull);
		return husk_err_errno(err, errno, "open %s", log);
	}
	struct stat sb;
	off_t before = fstat(out, &sb) == 0 ? sb.st_size : 0;
	/* -i: a FIFO opened for reading and writing, so that the container
	 * has a stdin that does not end (as `docker run -di` keeps it) */
	int in = devnull;
	json_object *v;
	bool interactive =
	    json_object_object_get_ex(c->record, "interactive", &v) &&
	    json_object_get_boolean(v);
	if (interactive && c->stdin_inherit)
		in = STDIN_FILENO;
	else if (interactive) {
		if (mkfifo(in_path, 0600) < 0 && errno != EEXIST) {
			close(out);
			close(devnull);
			return husk_err_errno(err, errno, "mkfifo %s", in_path);
		}
		in = open(in_path, O_RDWR | O_CLOEXEC);
		if (in < 0)
			in = devnull;
	}
	const char *vmm = ctr_str(c, "vmm");
	if (vmm[0])
		setenv("HUSK_RUNTIME_VMM", vmm, 1);
	const char *create[] = {"create", "--bundle", c->dir, c->id, NULL};
	int rc = ctr_runtime(create, in, out, out, err);
	if (in != devnull && in != STDIN_FILENO)
		close(in);
	close(out);
	close(devnull);
	if (rc < 0)
		return -err->code;
	if (rc != 0) {
		print_log_since(log, before);
		return husk_err(err, EIO, "husk-runtime create failed");
	}
	json_object_object_add(c->record, "started_unix",
	                       json_object_new_int64(time(NULL)));
	int64_t n = json_object_object_get_ex(c->record, "started_count", &v)
	                ? json_object_get_int64(v)
	                : 0;
	json_object_object_add(c->record, "started_count",
	                       json_object_new_int64(n + 1));
	if (ctr_save(c, err) < 0)
		return -err->code;
	const char *start[] = {"start", c->id, NULL};
	rc = ctr_runtime(start, -1, -1, -1, err);
	if (rc < 0)
		return -err->code;
	if (rc != 0)
		return husk_err(err, EIO, "husk-runtime start failed");
	ctr_refresh(c);
	return 0;
}

int ctr_start(struct ctr *c, struct husk_error *err)
{
	int pod_lock = -1;
	int rc = pod_before_start(c, &pod_lock, err);
	if (rc == 0)
		rc = create_and_start(c, err);
	if (pod_lock >= 0)
		close(pod_lock);
	return rc;
}

/* Claims the name (and the pod's membership) under the locks, so that two
 * `run -d --name x` at once do not both win and a pod is not removed
 * while a member joins it. */
static int claim(const char *name, const char *pod_ref, struct ctr *c,
                 char *pod_id, struct husk_error *err)
{
	int plock = pod_ref ? pod_lock(err) : -1;
	if (pod_ref && plock < 0)
		return plock;
	struct pod pod = {0};
	int rc = pod_ref ? pod_find(pod_ref, &pod, err) : 0;
	snprintf(pod_id, CTR_ID_LEN + 1, "%s", pod.id);
	pod_free(&pod);
	int lock = rc < 0 ? -1 : ctr_lock("containers", err);
	if (rc == 0 && lock < 0)
		rc = lock;
	if (rc == 0 && ctr_name_taken(name, NULL))
		rc = husk_err(err, EEXIST,
		              "Conflict. The container name \"/%s\" is already "
		              "in use. Remove it or use another name",
		              name);
	else if (rc == 0 && mkdir(c->dir, 0700) < 0)
		rc = husk_err_errno(err, errno, "create %s", c->dir);
	/* the name is claimed by the record inside the lock */
	if (rc == 0) {
		c->record = json_object_new_object();
		json_object_object_add(c->record, "name",
		                       json_object_new_string(name));
		if (pod_id[0])
			json_object_object_add(c->record, "pod",
			                       json_object_new_string(pod_id));
		rc = ctr_save(c, err);
		if (rc < 0)
			rmdir(c->dir);
	}
	if (lock >= 0)
		close(lock);
	if (plock >= 0)
		close(plock);
	return rc;
}

static int create_bundle(struct husk_run_options *o, const char *pod_ref,
                         struct ctr *c, struct run_plan *plan,
                         struct husk_error *err)
{
	char id[CTR_ID_LEN + 1];
	ctr_random_id(id);
	char name[130];
	if (o->name && !ctr_name_valid(o->name))
		return husk_err(err, EINVAL,
		                "Invalid container name (%s), only "
		                "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
		                o->name);
	/* Docker makes up adjective_name; the id's start is as unique */
	snprintf(name, sizeof(name), "%s", o->name ? o->name : "");
	if (!o->name)
		snprintf(name, sizeof(name), "husk_%.12s", id);
	memset(c, 0, sizeof(*c));
	snprintf(c->id, sizeof(c->id), "%s", id);
	ctr_path(c->dir, sizeof(c->dir), id, NULL);
	char pod_id[CTR_ID_LEN + 1];
	int rc = claim(name, pod_ref, c, pod_id, err);
	if (rc < 0) {
		c->dir[0] = '\0'; /* nothing of it to remove */
		return rc;
	}
	const char *rootfs = o->rootfs;
	char real[PATH_MAX];
	rc = o->image ? run_plan_image(o, id, false, plan, err)
	              : run_plan_rootfs(o, false, plan, err);
	if (rc == 0 && !o->image && !realpath(o->rootfs, real))
		rc = husk_err_errno(err, errno, "--rootfs %s", o->rootfs);
	if (rc == 0)
		rootfs = o->image ? plan->rootfs : real;
	if (rc == 0)
		rc = write_config(o, plan, rootfs, c->dir, id, pod_id, err);
	if (rc == 0) {
		json_object_put(c->record);
		c->record = record_new(o, plan, id, name, rootfs, pod_id);
		rc = ctr_save(c, err);
	}
	return rc;
}

/* What the runtime path cannot do yet, as a message; NULL when fine. */
static const char *unsupported(const struct husk_run_options *o,
                               const char *pod)
{
	if (pod && o->nports)
		return "--pod with -p is not supported yet: the pod's "
		       "microVM publishes no ports of its members";
	if (pod && (o->network_none || o->network_tap))
		return "--pod with --network is not supported: the members "
		       "share the pod's network";
	if (pod && o->tty)
		return "--pod with -t is not supported yet: run it with -d "
		       "and use 'husk exec -it'";
	if (pod && o->connect)
		return "--connect runs its own agent; not with --pod";
	if (o->nports || o->network_none)
		return "-p and --network with -d are not supported yet "
		       "(husk-runtime's VM has the default network)";
	return NULL;
}

int cli_run_via_runtime(struct husk_run_options *o, const char *pod)
{
	struct husk_error err = {0};
	int rc = 0;
	const char *why = unsupported(o, pod);
	if (why)
		rc = husk_err(&err, EINVAL, "%s", why);
	struct ctr c = {0};
	struct run_plan plan = {0};
	if (rc == 0)
		rc = create_bundle(o, pod, &c, &plan, &err);
	/* a foreground run's stdin ends when the user's does */
	c.stdin_inherit = !o->detach;
	if (rc == 0)
		rc = ctr_start(&c, &err);
	if (rc == 0) {
		/* the image stays in use until `husk rm` */
		plan.image_id[0] = '\0';
		if (o->detach)
			printf("%s\n", c.id);
	} else {
		fprintf(stderr, "husk run: %s\n", err.msg);
		if (c.dir[0] && c.id[0]) {
			const char *del[] = {"delete", "--force", c.id, NULL};
			struct husk_error e2 = {0};
			int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
			(void)ctr_runtime(del, nul, nul, nul, &e2);
			if (nul >= 0)
				close(nul);
			ctr_remove_tree(c.dir);
		}
	}
	run_plan_done(&plan, c.id);
	int status = rc == 0 ? 0 : HUSK_EXIT_USAGE;
	if (rc == 0 && !o->detach) {
		status = ctr_attach(&c);
		if (o->rm && ctr_remove(&c, &err) < 0)
			fprintf(stderr, "husk run: --rm: %s\n", err.msg);
	}
	ctr_free(&c);
	return status;
}
