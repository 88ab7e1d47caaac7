/* The bundle's config.json (OCI runtime spec 1.x), read into what the
 * microVM and the agent need. Every field is type-checked: a config that
 * says something we cannot honour is refused with the field named, never
 * half-applied. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "rt.h"

#define MAX_CONFIG (4u << 20)

/* The JSON files read here are named in messages by their callers'
 * prefixes: CFG "linux." for config.json, "FILE: " for exec --process. */
#define CFG "config.json: "

static json_object *field(json_object *o, const char *name, json_type want,
                          const char *path, struct husk_error *err, int *rc)
{
	json_object *v;
	if (*rc < 0 || !o || !json_object_object_get_ex(o, name, &v) || !v)
		return NULL;
	if (!json_object_is_type(v, want)) {
		*rc = husk_err(err, EINVAL, "%s%s has the wrong type", path,
		               name);
		return NULL;
	}
	return v;
}

static char *dup_str(json_object *v)
{
	return v ? strdup(json_object_get_string(v)) : NULL;
}

static char **str_array(json_object *a, const char *what,
                        struct husk_error *err, int *rc)
{
	if (!a || *rc < 0)
		return NULL;
	size_t n = json_object_array_length(a);
	if (n > RT_MAX_ARGS) {
		*rc = husk_err(err, E2BIG, "%s has %zu entries", what, n);
		return NULL;
	}
	char **v = calloc(n + 1, sizeof(*v));
	for (size_t i = 0; v && i < n; i++) {
		json_object *e = json_object_array_get_idx(a, i);
		if (!json_object_is_type(e, json_type_string)) {
			*rc = husk_err(err, EINVAL, "%s[%zu] is not a string",
			               what, i);
			break;
		}
		v[i] = strdup(json_object_get_string(e));
	}
	return v;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* where: the messages' prefix for the process object's fields. */
static int read_process(json_object *p, struct rt_process *out,
                        const char *where, struct husk_error *err)
{
	int rc = 0;
	memset(out, 0, sizeof(*out));
	char args[320], env[320], user[320], console[320];
	snprintf(args, sizeof(args), "%sargs", where);
	snprintf(env, sizeof(env), "%senv", where);
	snprintf(user, sizeof(user), "%suser.", where);
	snprintf(console, sizeof(console), "%sconsoleSize.", where);
	out->args = str_array(
	    field(p, "args", json_type_array, where, err, &rc), args, err, &rc);
	out->env = str_array(field(p, "env", json_type_array, where, err, &rc),
	                     env, err, &rc);
	out->cwd = dup_str(field(p, "cwd", json_type_string, where, err, &rc));
	json_object *t =
	    field(p, "terminal", json_type_boolean, where, err, &rc);
	out->terminal = t && json_object_get_boolean(t);
	json_object *u = field(p, "user", json_type_object, where, err, &rc);
	json_object *uid = field(u, "uid", json_type_int, user, err, &rc);
	json_object *gid = field(u, "gid", json_type_int, user, err, &rc);
	int64_t iu = uid ? json_object_get_int64(uid) : 0;
	int64_t ig = gid ? json_object_get_int64(gid) : 0;
	if (rc >= 0 && (iu < 0 || iu > UINT32_MAX || ig < 0 || ig > UINT32_MAX))
		rc = husk_err(err, EINVAL, "%suser out of range", where);
	out->uid = (uint32_t)iu;
	out->gid = (uint32_t)ig;
	json_object *cs =
	    field(p, "consoleSize", json_type_object, where, err, &rc);
	json_object *h = field(cs, "height", json_type_int, console, err, &rc);
	json_object *w = field(cs, "width", json_type_int, console, err, &rc);
	out->rows = h ? (unsigned)json_object_get_int(h) & 0xffff : 0;
	out->cols = w ? (unsigned)json_object_get_int(w) & 0xffff : 0;
	if (rc >= 0 && (!out->args || !out->args[0]))
		rc = husk_err(err, EINVAL, "%sargs is empty", where);
	if (rc >= 0 && out->cwd && out->cwd[0] != '/')
		rc = husk_err(err, EINVAL, "%scwd '%s' is not absolute", where,
		              out->cwd);
	return rc;
}

void rt_process_free(struct rt_process *p)
{
	free_strv(p->args);
	free_strv(p->env);
	free(p->cwd);
	memset(p, 0, sizeof(*p));
}

static json_object *parse_file(const char *path, struct husk_error *err)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		husk_err_errno(err, errno, "%s", path);
		return NULL;
	}
	char *buf = malloc(MAX_CONFIG + 1);
	size_t n = buf ? fread(buf, 1, MAX_CONFIG + 1, f) : 0;
	fclose(f);
	if (!buf || n > MAX_CONFIG) {
		free(buf);
		husk_err(err, EFBIG, "%s: larger than %u bytes", path,
		         MAX_CONFIG);
		return NULL;
	}
	json_tokener *tok = json_tokener_new();
	json_object *o = json_tokener_parse_ex(tok, buf, (int)n);
	enum json_tokener_error je = json_tokener_get_error(tok);
	if (!o || je != json_tokener_success || tok->char_offset != (int)n) {
		husk_err(err, EINVAL, "%s: not valid JSON (%s)", path,
		         o ? "trailing data" : json_tokener_error_desc(je));
		json_object_put(o);
		o = NULL;
	} else if (!json_object_is_type(o, json_type_object)) {
		husk_err(err, EINVAL, "%s: not a JSON object", path);
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	free(buf);
	return o;
}

int rt_process_load(const char *path, struct rt_process *p,
                    struct husk_error *err)
{
	json_object *o = parse_file(path, err);
	if (!o)
		return -err->code;
	/* the file is the process object itself */
	char where[256];
	snprintf(where, sizeof(where), "%.200s: ", path);
	int rc = read_process(o, p, where, err);
	json_object_put(o);
	if (rc < 0)
		rt_process_free(p);
	return rc;
}

static void read_resources(json_object *r, struct rt_spec *s,
                           struct husk_error *err, int *rc)
{
	const char *p = CFG "linux.resources.";
	json_object *mem = field(r, "memory", json_type_object, p, err, rc);
	json_object *lim = field(mem, "limit", json_type_int,
	                         CFG "linux.resources.memory.", err, rc);
	if (lim && json_object_get_int64(lim) > 0)
		s->memory_limit = (uint64_t)json_object_get_int64(lim);
	json_object *cpu = field(r, "cpu", json_type_object, p, err, rc);
	json_object *quota = field(cpu, "quota", json_type_int,
	                           CFG "linux.resources.cpu.", err, rc);
	json_object *period = field(cpu, "period", json_type_int,
	                            CFG "linux.resources.cpu.", err, rc);
	int64_t q = quota ? json_object_get_int64(quota) : 0;
	int64_t pe = period ? json_object_get_int64(period) : 100000;
	if (q > 0 && pe > 0) {
		int64_t m = q * 1000 / pe;
		s->cpu_millis = m < 1           ? 1
		                : m > (1 << 20) ? 1 << 20
		                                : (uint32_t)m;
	}
	json_object *pids = field(r, "pids", json_type_object, p, err, rc);
	json_object *pl = field(pids, "limit", json_type_int,
	                        CFG "linux.resources.pids.", err, rc);
	if (pl && json_object_get_int64(pl) > 0)
		s->pids_limit = (uint64_t)json_object_get_int64(pl);
}

static void read_mounts(json_object *a, struct rt_spec *s,
                        struct husk_error *err, int *rc)
{
	if (!a || *rc < 0)
		return;
	size_t n = json_object_array_length(a);
	s->mounts = calloc(n + 1, sizeof(*s->mounts));
	for (size_t i = 0; s->mounts && i < n && *rc >= 0; i++) {
		json_object *m = json_object_array_get_idx(a, i);
		if (!json_object_is_type(m, json_type_object)) {
			*rc = husk_err(err, EINVAL,
			               "config.json: mounts[%zu] is not an "
			               "object",
			               i);
			return;
		}
		struct rt_mount *o = &s->mounts[s->nmounts++];
		o->dest = dup_str(field(m, "destination", json_type_string,
		                        CFG "mounts[].", err, rc));
		o->type = dup_str(field(m, "type", json_type_string,
		                        CFG "mounts[].", err, rc));
		o->source = dup_str(field(m, "source", json_type_string,
		                          CFG "mounts[].", err, rc));
		json_object *opts = field(m, "options", json_type_array,
		                          CFG "mounts[].", err, rc);
		for (size_t k = 0; opts && k < json_object_array_length(opts);
		     k++) {
			const char *opt = json_object_get_string(
			    json_object_array_get_idx(opts, k));
			if (!opt)
				continue;
			if (!strcmp(opt, "ro"))
				o->readonly = true;
			if (!strcmp(opt, "bind") || !strcmp(opt, "rbind"))
				o->bind = true;
		}
		if (*rc >= 0 && (!o->dest || o->dest[0] != '/'))
			*rc = husk_err(err, EINVAL,
			               "config.json: mounts[%zu].destination "
			               "must be an absolute path",
			               i);
	}
}

/* linux.namespaces: only a PID namespace to join matters to a VM (see
 * rt_spec.pid_ns_path); the rest the VM gives every container anyway. */
static void read_pid_ns(json_object *a, struct rt_spec *s,
                        struct husk_error *err, int *rc)
{
	for (size_t i = 0; a && *rc >= 0 && i < json_object_array_length(a);
	     i++) {
		json_object *ns = json_object_array_get_idx(a, i);
		if (!json_object_is_type(ns, json_type_object)) {
			*rc = husk_err(err, EINVAL,
			               "config.json: linux.namespaces[%zu] is "
			               "not an object",
			               i);
			return;
		}
		json_object *t = field(ns, "type", json_type_string,
		                       CFG "linux.namespaces[].", err, rc);
		json_object *p = field(ns, "path", json_type_string,
		                       CFG "linux.namespaces[].", err, rc);
		if (t && p && !strcmp(json_object_get_string(t), "pid") &&
		    json_object_get_string(p)[0]) {
			free(s->pid_ns_path);
			s->pid_ns_path = dup_str(p);
		}
	}
}

int rt_spec_load(const char *bundle, struct rt_spec *s, struct husk_error *err)
{
	memset(s, 0, sizeof(*s));
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/config.json", bundle);
	json_object *o = parse_file(path, err);
	if (!o)
		return -err->code;
	int rc = 0;
	json_object *p =
	    field(o, "process", json_type_object, CFG "", err, &rc);
	if (rc >= 0 && !p)
		rc = husk_err(err, EINVAL, "config.json: no process");
	if (rc >= 0)
		rc = read_process(p, &s->proc, CFG "process.", err);
	json_object *root =
	    field(o, "root", json_type_object, CFG "", err, &rc);
	json_object *rp =
	    field(root, "path", json_type_string, CFG "root.", err, &rc);
	json_object *ro =
	    field(root, "readonly", json_type_boolean, CFG "root.", err, &rc);
	s->root_readonly = ro && json_object_get_boolean(ro);
	if (rc >= 0 && !rp)
		rc = husk_err(err, EINVAL, "config.json: no root.path");
	if (rc >= 0) {
		const char *r = json_object_get_string(rp);
		char joined[PATH_MAX * 2];
		snprintf(joined, sizeof(joined), "%s%s%s",
		         r[0] == '/' ? "" : bundle, r[0] == '/' ? "" : "/", r);
		char real[PATH_MAX];
		struct stat st;
		if (!realpath(joined, real) || stat(real, &st) < 0)
			rc = husk_err_errno(err, errno, "root file system %s",
			                    joined);
		else if (!S_ISDIR(st.st_mode))
			rc = husk_err(err, ENOTDIR,
			              "root file system %s is not a directory",
			              joined);
		else
			s->root = strdup(real);
	}
	s->hostname =
	    dup_str(field(o, "hostname", json_type_string, CFG "", err, &rc));
	json_object *linux_ =
	    field(o, "linux", json_type_object, CFG "", err, &rc);
	read_resources(field(linux_, "resources", json_type_object,
	                     CFG "linux.", err, &rc),
	               s, err, &rc);
	read_mounts(field(o, "mounts", json_type_array, CFG "", err, &rc), s,
	            err, &rc);
	read_pid_ns(field(linux_, "namespaces", json_type_array, CFG "linux.",
	                  err, &rc),
	            s, err, &rc);
	json_object *ann =
	    field(o, "annotations", json_type_object, CFG "", err, &rc);
	json_object *sb = field(ann, "io.kubernetes.cri.sandbox-id",
	                        json_type_string, CFG "annotations.", err, &rc);
	if (!sb)
		sb = field(ann, "io.husk.pod", json_type_string,
		           CFG "annotations.", err, &rc);
	s->sandbox_id = dup_str(sb);
	/* it names a directory of ours */
	if (rc >= 0 && s->sandbox_id && !rt_id_valid(s->sandbox_id))
		rc = husk_err(err, EINVAL,
		              "config.json: pod id '%s' is not a valid id",
		              s->sandbox_id);
	json_object_put(o);
	if (rc < 0)
		rt_spec_free(s);
	return rc;
}

void rt_spec_free(struct rt_spec *s)
{
	rt_process_free(&s->proc);
	free(s->root);
	free(s->hostname);
	free(s->sandbox_id);
	free(s->pid_ns_path);
	for (size_t i = 0; i < s->nmounts; i++) {
		free(s->mounts[i].dest);
		free(s->mounts[i].type);
		free(s->mounts[i].source);
	}
	free(s->mounts);
	memset(s, 0, sizeof(*s));
}

const char *rt_spec_default(void)
{
	return "{\n"
	       "  \"ociVersion\": \"1.0.2\",\n"
	       "  \"process\": {\n"
	       "    \"terminal\": true,\n"
	       "    \"user\": {\"uid\": 0, \"gid\": 0},\n"
	       "    \"args\": [\"sh\"],\n"
	       "    \"env\": [\"PATH=/usr/local/sbin:/usr/local/bin:"
	       "/usr/sbin:/usr/bin:/sbin:/bin\", \"TERM=xterm\"],\n"
	       "    \"cwd\": \"/\",\n"
	       "    \"noNewPrivileges\": true\n"
	       "  },\n"
	       "  \"root\": {\"path\": \"rootfs\", \"readonly\": true},\n"
	       "  \"hostname\": \"husk\",\n"
	       "  \"mounts\": [\n"
	       "    {\"destination\": \"/proc\", \"type\": \"proc\", "
	       "\"source\": \"proc\"},\n"
	       "    {\"destination\": \"/dev\", \"type\": \"tmpfs\", "
	       "\"source\": \"tmpfs\"}\n"
	       "  ],\n"
	       "  \"linux\": {\n"
	       "    \"namespaces\": [{\"type\": \"pid\"}, {\"type\": "
	       "\"network\"}, {\"type\": \"ipc\"}, {\"type\": \"uts\"}, "
	       "{\"type\": \"mount\"}]\n"
	       "  }\n"
	       "}\n";
}
