/* husk ps, rm, wait and a container's `husk inspect`: reading and
 * removing what `husk run -d` left under $HUSK_ROOT/containers. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "container_store.h"
#include "husk/store.h"

/* Docker's COMMAND column: the command line, quoted and cut */
static void command_text(const struct ctr *c, char *buf, size_t cap, bool cut)
{
	json_object *cmd;
	size_t len = 0;
	buf[0] = '\0';
	if (!json_object_object_get_ex(c->record, "command", &cmd))
		return;
	for (size_t i = 0; i < json_object_array_length(cmd) && len < cap; i++)
		len += (size_t)snprintf(
		    buf + len, cap - len, "%s%s", i ? " " : "",
		    json_object_get_string(json_object_array_get_idx(cmd, i)));
	if (cut && strlen(buf) > 20)
		strcpy(buf + 19, "…");
}

struct ps_opts {
	bool all, quiet, json;
};

static int ps_one(struct ctr *c, void *arg)
{
	const struct ps_opts *o = arg;
	if (!o->all && c->status != CTR_RUNNING && c->status != CTR_PAUSED)
		return 0;
	if (o->quiet) {
		printf("%.12s\n", c->id);
		return 0;
	}
	char status[96], cmd[1024], created[64];
	ctr_status_text(c, status, sizeof(status));
	json_object *v;
	time_t when = json_object_object_get_ex(c->record, "created_unix", &v)
	                  ? (time_t)json_object_get_int64(v)
	                  : 0;
	ctr_ago(when, created, sizeof(created));
	if (o->json) {
		command_text(c, cmd, sizeof(cmd), false);
		json_object *j = json_object_new_object();
		json_object_object_add(j, "ID", json_object_new_string(c->id));
		json_object_object_add(
		    j, "Names", json_object_new_string(ctr_str(c, "name")));
		json_object_object_add(
		    j, "Image", json_object_new_string(ctr_str(c, "image")));
		json_object_object_add(j, "Command",
		                       json_object_new_string(cmd));
		json_object_object_add(
		    j, "CreatedAt",
		    json_object_new_string(ctr_str(c, "created")));
		json_object_object_add(
		    j, "State",
		    json_object_new_string(ctr_state_name(c->status)));
		json_object_object_add(j, "Status",
		                       json_object_new_string(status));
		json_object_object_add(j, "ExitCode",
		                       json_object_new_int(c->exit_code));
		json_object_object_add(
		    j, "Pod", json_object_new_string(ctr_str(c, "pod")));
		printf("%s\n", json_object_to_json_string_ext(
		                   j, JSON_C_TO_STRING_PLAIN |
		                          JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(j);
		return 0;
	}
	command_text(c, cmd, sizeof(cmd), true);
	char quoted[1100], ago[80];
	snprintf(quoted, sizeof(quoted), "\"%s\"", cmd);
	snprintf(ago, sizeof(ago), "%s ago", created);
	printf("%-12.12s   %-20.20s   %-22s   %-15s   %-25s   %-5s   %s\n",
	       c->id, ctr_str(c, "image"), quoted, ago, status, "",
	       ctr_str(c, "name"));
	return 0;
}

int cmd_ps(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"all", no_argument, NULL, 'a'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"format", required_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {0, 0, 0, 0}};
	struct ps_opts o = {0};
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+aqf:", opts, NULL)) != -1) {
		switch (c) {
		case 'a': o.all = true; break;
		case 'q': o.quiet = true; break;
		case 'f':
			if (strcmp(optarg, "json") &&
			    strcmp(optarg, "{{json .}}")) {
				fprintf(stderr,
				        "husk ps: --format takes json\n");
				return HUSK_EXIT_USAGE;
			}
			o.json = true;
			break;
		case 'h':
			printf("usage: husk ps [-a] [-q] [--format json]\n");
			return 0;
		default:
			fprintf(stderr, "usage: husk ps [-a] [-q] [--format "
			                "json]\n");
			return HUSK_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "husk ps: takes no arguments\n");
		return HUSK_EXIT_USAGE;
	}
	if (!o.quiet && !o.json)
		printf("%-12s   %-20s   %-22s   %-15s   %-25s   %-5s   %s\n",
		       "CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
		       "PORTS", "NAMES");
	struct husk_error err = {0};
	if (ctr_each(ps_one, &o, &err) < 0) {
		fprintf(stderr, "husk ps: %s\n", err.msg);
		return 1;
	}
	return 0;
}

/* Removes c: the runtime's state, the bundle, its log, its image ref. */
int ctr_remove(struct ctr *c, struct husk_error *err)
{
	const char *del[] = {"delete", "--force", c->id, NULL};
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	int rc = ctr_runtime(del, nul, nul, nul, err);
	if (nul >= 0)
		close(nul);
	if (rc < 0)
		return -err->code;
	ctr_refresh(c);
	if (c->status != CTR_EXITED && c->status != CTR_CREATED)
		return husk_err(err, EBUSY, "could not stop container %s",
		                c->id);
	const char *image_id = ctr_str(c, "image_id");
	struct husk_store *s;
	if (image_id[0] && husk_store_open(NULL, &s, err) == 0) {
		if (husk_store_image_unref(s, image_id, c->id, err) < 0)
			fprintf(stderr, "husk: %s\n", err->msg);
		husk_store_close(s);
	}
	ctr_remove_tree(c->dir);
	return 0;
}

/* Runs fn on each container named in argv[optind..], Docker style:
 * each success prints the argument, each failure an error; 1 if any
 * failed. */
int ctr_for_each_ref(int argc, char **argv, const char *cmd,
                     int (*fn)(struct ctr *c, void *arg,
                               struct husk_error *err),
                     void *arg, bool echo)
{
	if (optind >= argc) {
		fprintf(stderr,
		        "husk %s: requires at least 1 container name or id\n",
		        cmd);
		return HUSK_EXIT_USAGE;
	}
	int status = 0;
	for (int i = optind; i < argc; i++) {
		struct ctr c;
		struct husk_error err = {0};
		int rc = ctr_find(argv[i], &c, &err);
		if (rc == 0)
			rc = fn(&c, arg, &err);
		ctr_free(&c);
		if (rc < 0) {
			fprintf(stderr, "Error response from daemon: %s\n",
			        err.msg);
			status = 1;
		} else if (echo) {
			printf("%s\n", argv[i]);
			fflush(stdout);
		}
	}
	return status;
}

static int rm_one(struct ctr *c, void *arg, struct husk_error *err)
{
	bool force = *(bool *)arg;
	if ((c->status == CTR_RUNNING || c->status == CTR_PAUSED) && !force)
		return husk_err(err, EBUSY,
		                "You cannot remove a running container %s. "
		                "Stop the container before attempting removal "
		                "or force remove",
		                c->id);
	return ctr_remove(c, err);
}

int cmd_rm(int argc, char **argv)
{
	static const struct option opts[] = {{"force", no_argument, NULL, 'f'},
	                                     {0, 0, 0, 0}};
	bool force = false;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+f", opts, NULL)) != -1) {
		if (c != 'f') {
			fprintf(stderr, "usage: husk rm [-f] CONTAINER...\n");
			return HUSK_EXIT_USAGE;
		}
		force = true;
	}
	return ctr_for_each_ref(argc, argv, "rm", rm_one, &force, true);
}

static int wait_one(struct ctr *c, void *arg, struct husk_error *err)
{
	(void)arg;
	(void)err;
	ctr_wait_stopped(c, -1);
	printf("%d\n", c->exit_code);
	fflush(stdout);
	return 0;
}

int cmd_wait(int argc, char **argv)
{
	optind = 1;
	return ctr_for_each_ref(argc, argv, "wait", wait_one, NULL, false);
}

static json_object *jstr(const char *s)
{
	return json_object_new_string(s);
}

static json_object *copy_of(json_object *o, const char *key)
{
	json_object *v;
	return o && json_object_object_get_ex(o, key, &v) ? json_object_get(v)
	                                                  : NULL;
}

int cli_container_inspect(const char *ref, json_object **out)
{
	struct ctr c;
	struct husk_error err = {0};
	if (ctr_find(ref, &c, &err) < 0) {
		ctr_free(&c);
		return -ENOENT;
	}
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/config.json", c.dir);
	json_object *cfg = json_object_from_file(path), *proc = NULL;
	if (cfg)
		json_object_object_get_ex(cfg, "process", &proc);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "Id", jstr(c.id));
	json_object_object_add(o, "Created", jstr(ctr_str(&c, "created")));
	json_object *cmd = copy_of(c.record, "command");
	json_object *args = json_object_new_array();
	for (size_t i = 1; cmd && i < json_object_array_length(cmd); i++)
		json_object_array_add(
		    args, json_object_get(json_object_array_get_idx(cmd, i)));
	json_object_object_add(
	    o, "Path",
	    jstr(cmd && json_object_array_length(cmd)
	             ? json_object_get_string(json_object_array_get_idx(cmd, 0))
	             : ""));
	json_object_object_add(o, "Args", args);
	json_object *st = json_object_new_object();
	json_object_object_add(st, "Status", jstr(ctr_state_name(c.status)));
	json_object_object_add(
	    st, "Running", json_object_new_boolean(c.status == CTR_RUNNING));
	json_object_object_add(st, "Paused",
	                       json_object_new_boolean(c.status == CTR_PAUSED));
	json_object_object_add(st, "Pid", json_object_new_int(c.pid));
	json_object_object_add(st, "ExitCode",
	                       json_object_new_int(c.exit_code));
	json_object_object_add(o, "State", st);
	json_object_object_add(o, "Image", jstr(ctr_str(&c, "image_id")));
	char name[200];
	snprintf(name, sizeof(name), "/%s", ctr_str(&c, "name"));
	json_object_object_add(o, "Name", jstr(name));
	char log[PATH_MAX + 16];
	snprintf(log, sizeof(log), "%s/log", c.dir);
	json_object_object_add(o, "LogPath", jstr(log));
	/* as podman's: the pod's id, "" outside a pod */
	json_object_object_add(o, "Pod", jstr(ctr_str(&c, "pod")));
	json_object *conf = json_object_new_object();
	json_object_object_add(conf, "Hostname", copy_of(cfg, "hostname"));
	json_object_object_add(conf, "Image", jstr(ctr_str(&c, "image")));
	json_object_object_add(conf, "Cmd", cmd);
	json_object_object_add(conf, "Env", copy_of(proc, "env"));
	json_object_object_add(conf, "WorkingDir", copy_of(proc, "cwd"));
	json_object_object_add(conf, "User", copy_of(proc, "user"));
	json_object_object_add(o, "Config", conf);
	json_object *host = json_object_new_object();
	json_object_object_add(host, "Binds", copy_of(c.record, "binds"));
	json_object *lin = NULL;
	if (cfg && json_object_object_get_ex(cfg, "linux", &lin))
		json_object_object_add(host, "Resources",
		                       copy_of(lin, "resources"));
	json_object_object_add(o, "HostConfig", host);
	json_object_object_add(o, "Mounts", copy_of(cfg, "mounts"));
	json_object_put(cfg);
	ctr_free(&c);
	*out = o;
	return 0;
}
