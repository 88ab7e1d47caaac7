/* husk pod create|ls|rm|inspect, and `husk run --pod`'s option: pods of
 * containers that share one microVM (pod_store.h, docs/lifecycle.md). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "pod_store.h"

#define RUNTIME_GONE_MS 10000

/* `husk run`'s options that take a value (src/lib/run_options.c), so that
 * --pod is looked for among the options only, never in the command. One
 * added there and missing here stops the scan early: --pod after it then
 * reaches husk_run_parse and fails as an unknown option, loudly. */
static const char run_short_values[] = "ewuhmpv";
static const char *const run_long_values[] = {
    "volume",     "env",      "env-file", "workdir", "user",
    "entrypoint", "hostname", "memory",   "cpus",    "pids-limit",
    "name",       "rootfs",   "publish",  "network", "net",
    "ip",         "gateway",  "dns",      "vmm",     "connect"};

/* How many argv entries the option at a uses: 2 when its value is the
 * next one. */
static int option_width(const char *a)
{
	if (a[1] == '-') {
		if (strchr(a, '='))
			return 1;
		for (size_t i = 0;
		     i < sizeof(run_long_values) / sizeof(run_long_values[0]);
		     i++)
			if (!strcmp(a + 2, run_long_values[i]))
				return 2;
		return 1;
	}
	/* a cluster (-it, -ie VALUE, -eKEY=V): the first letter that takes
	 * a value takes the rest, or the next entry when nothing is left */
	for (const char *p = a + 1; *p; p++)
		if (strchr(run_short_values, *p))
			return p[1] ? 1 : 2;
	return 1;
}

int cli_take_pod_option(int *argc, char **argv, const char **pod)
{
	*pod = NULL;
	int i = 1;
	/* options end at the image or the command, or at "--" */
	while (i < *argc && argv[i][0] == '-' && argv[i][1] &&
	       strcmp(argv[i], "--")) {
		const char *a = argv[i];
		if (strcmp(a, "--pod") && strncmp(a, "--pod=", 6)) {
			i += option_width(a);
			continue;
		}
		int take = a[5] ? 1 : 2;
		const char *v = take == 1       ? a + 6
		                : i + 1 < *argc ? argv[i + 1]
		                                : "";
		if (!v[0]) {
			fprintf(stderr, "husk run: --pod needs a pod's name or "
			                "id\n");
			return -1;
		}
		*pod = v;
		/* argv[*argc] is NULL, which moves along */
		memmove(argv + i, argv + i + take,
		        (size_t)(*argc - i - take + 1) * sizeof(*argv));
		*argc -= take;
	}
	return 0;
}

static int pod_create_cmd(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"share-pid", no_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {0, 0, 0, 0}};
	const char *name = NULL;
	bool share_pid = false;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'n': name = optarg; break;
		case 's': share_pid = true; break;
		case 'h':
			printf("usage: husk pod create [--name NAME] "
			       "[--share-pid]\n");
			return 0;
		default:
			fprintf(stderr, "usage: husk pod create [--name NAME] "
			                "[--share-pid]\n");
			return HUSK_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "husk pod create: takes no arguments\n");
		return HUSK_EXIT_USAGE;
	}
	struct husk_error err = {0};
	struct pod p = {0};
	int lock = pod_lock(&err);
	int rc = lock < 0 ? lock : pod_create(name, share_pid, &p, &err);
	if (lock >= 0)
		close(lock);
	if (rc < 0) {
		fprintf(stderr, "husk pod create: %s\n", err.msg);
		return HUSK_EXIT_USAGE;
	}
	printf("%s\n", p.id);
	pod_free(&p);
	return 0;
}

static const char *pod_status(const struct pod_usage *u)
{
	return u->running ? "Running" : u->containers ? "Exited" : "Created";
}

static json_object *jstr(const char *s)
{
	return json_object_new_string(s);
}

static const char *rec_str(const struct pod *p, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(p->record, key, &v) &&
	               json_object_is_type(v, json_type_string)
	           ? json_object_get_string(v)
	           : "";
}

static void ls_json(const struct pod *p, const struct pod_usage *u)
{
	json_object *j = json_object_new_object();
	json_object_object_add(j, "ID", jstr(p->id));
	json_object_object_add(j, "Name", jstr(pod_name(p)));
	json_object_object_add(j, "Status", jstr(pod_status(u)));
	json_object_object_add(j, "Containers",
	                       json_object_new_int64((int64_t)u->containers));
	json_object_object_add(j, "Running",
	                       json_object_new_int64((int64_t)u->running));
	json_object_object_add(j, "CreatedAt", jstr(rec_str(p, "created")));
	json_object_object_add(j, "SharePid",
	                       json_object_new_boolean(pod_shares_pid(p)));
	printf("%s\n",
	       json_object_to_json_string_ext(
	           j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(j);
}

static int pod_ls_cmd(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"quiet", no_argument, NULL, 'q'},
	    {"format", required_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {0, 0, 0, 0}};
	const char *usage = "usage: husk pod ls [-q] [--format json]\n";
	bool quiet = false, json = false;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+qf:", opts, NULL)) != -1) {
		if (c == 'q')
			quiet = true;
		else if (c == 'f' && (!strcmp(optarg, "json") ||
		                      !strcmp(optarg, "{{json .}}")))
			json = true;
		else if (c == 'h') {
			fputs(usage, stdout);
			return 0;
		} else {
			fputs(usage, stderr);
			return HUSK_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "husk pod ls: takes no arguments\n");
		return HUSK_EXIT_USAGE;
	}
	struct husk_error err = {0};
	struct pod *pods;
	size_t n;
	if (pod_list(&pods, &n, &err) < 0) {
		fprintf(stderr, "husk pod ls: %s\n", err.msg);
		return 1;
	}
	struct pod_usage *use = calloc(n ? n : 1, sizeof(*use));
	if (!use || pod_count(pods, n, use, &err) < 0) {
		fprintf(stderr, "husk pod ls: %s\n",
		        use ? err.msg : "out of memory");
		free(use);
		pod_list_free(pods, n);
		return 1;
	}
	int width = 4;
	for (size_t i = 0; i < n; i++)
		if ((int)strlen(pod_name(&pods[i])) > width)
			width = (int)strlen(pod_name(&pods[i]));
	if (!quiet && !json)
		printf("%-*s   %-12s   %-8s   %-10s   %s\n", width, "NAME",
		       "ID", "STATUS", "CONTAINERS", "CREATED");
	for (size_t i = 0; i < n; i++) {
		const struct pod *p = &pods[i];
		if (quiet) {
			printf("%.12s\n", p->id);
			continue;
		}
		if (json) {
			ls_json(p, &use[i]);
			continue;
		}
		json_object *v;
		time_t when =
		    json_object_object_get_ex(p->record, "created_unix", &v)
		        ? (time_t)json_object_get_int64(v)
		        : 0;
		char ago[64];
		ctr_ago(when, ago, sizeof(ago));
		printf("%-*s   %-12.12s   %-8s   %-10zu   %s ago\n", width,
		       pod_name(p), p->id, pod_status(&use[i]),
		       use[i].containers, ago);
	}
	free(use);
	pod_list_free(pods, n);
	return 0;
}

/* Removes the pod's containers, newest first (a --share-pid pod's
 * namespace founder last), as `husk rm -f` does each; the runtime ends
 * the pod's VM, and drops its own state of the pod, with the last. */
static int remove_members(char (*ids)[CTR_ID_LEN + 1], size_t n,
                          struct husk_error *err)
{
	for (size_t i = n; i-- > 0;) {
		struct ctr c;
		struct husk_error e2 = {0};
		if (ctr_load(ids[i], &c, &e2) < 0)
			continue; /* removed meanwhile */
		int rc = ctr_remove(&c, err);
		ctr_free(&c);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int rm_one(const char *ref, bool force, struct husk_error *err)
{
	/* under the lock no container joins the pod while it goes */
	int lock = pod_lock(err);
	if (lock < 0)
		return lock;
	struct pod p;
	char(*ids)[CTR_ID_LEN + 1] = NULL;
	size_t n = 0;
	int rc = pod_find(ref, &p, err);
	if (rc == 0)
		rc = pod_member_ids(p.id, &ids, &n, err);
	if (rc == 0 && n && !force)
		rc = husk_err(err, EBUSY,
		              "pod %s has %zu container%s: remove %s first or "
		              "use -f",
		              pod_name(&p), n, n == 1 ? "" : "s",
		              n == 1 ? "it" : "them");
	if (rc == 0)
		rc = remove_members(ids, n, err);
	/* so that what follows `husk pod rm` finds the pod's VM gone */
	if (rc == 0 && n && !pod_runtime_gone(p.id, RUNTIME_GONE_MS))
		fprintf(stderr,
		        "husk pod rm: %s: husk-runtime still holds the pod "
		        "(its VM is still stopping)\n",
		        pod_name(&p));
	if (rc == 0) {
		pod_remove_record(&p);
		printf("%s\n", p.id);
		fflush(stdout);
	}
	free(ids);
	pod_free(&p);
	close(lock);
	return rc;
}

static int pod_rm_cmd(int argc, char **argv)
{
	static const struct option opts[] = {{"force", no_argument, NULL, 'f'},
	                                     {0, 0, 0, 0}};
	bool force = false;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+f", opts, NULL)) != -1) {
		if (c != 'f') {
			fprintf(stderr, "usage: husk pod rm [-f] POD...\n");
			return HUSK_EXIT_USAGE;
		}
		force = true;
	}
	if (optind >= argc) {
		fprintf(stderr, "husk pod rm: requires at least 1 pod name or "
		                "id\n");
		return HUSK_EXIT_USAGE;
	}
	int status = 0;
	for (int i = optind; i < argc; i++) {
		struct husk_error err = {0};
		if (rm_one(argv[i], force, &err) < 0) {
			fprintf(stderr, "Error: %s\n", err.msg);
			status = 1;
		}
	}
	return status;
}

static json_object *inspect_json(const struct pod *p, struct husk_error *err)
{
	char(*ids)[CTR_ID_LEN + 1];
	size_t n;
	if (pod_member_ids(p->id, &ids, &n, err) < 0)
		return NULL;
	json_object *members = json_object_new_array();
	struct pod_usage u = {0};
	for (size_t i = 0; i < n; i++) {
		struct ctr c;
		struct husk_error e2 = {0};
		if (ctr_load(ids[i], &c, &e2) < 0)
			continue;
		bool runs = c.status == CTR_RUNNING || c.status == CTR_PAUSED;
		u.containers++;
		u.running += runs;
		json_object *m = json_object_new_object();
		json_object_object_add(m, "Id", jstr(c.id));
		json_object_object_add(m, "Name", jstr(ctr_str(&c, "name")));
		json_object_object_add(m, "State",
		                       jstr(ctr_state_name(c.status)));
		json_object_object_add(m, "Pid", json_object_new_int(c.pid));
		json_object_array_add(members, m);
		ctr_free(&c);
	}
	free(ids);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "Id", jstr(p->id));
	json_object_object_add(o, "Name", jstr(pod_name(p)));
	json_object_object_add(o, "Created", jstr(rec_str(p, "created")));
	json_object_object_add(o, "State", jstr(pod_status(&u)));
	json_object_object_add(o, "SharePid",
	                       json_object_new_boolean(pod_shares_pid(p)));
	json_object_object_add(o, "NumContainers",
	                       json_object_new_int64((int64_t)u.containers));
	json_object_object_add(o, "Containers", members);
	return o;
}

static int pod_inspect_cmd(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		printf("usage: husk pod inspect POD...\n");
		return argc < 2 ? HUSK_EXIT_USAGE : 0;
	}
	json_object *all = json_object_new_array();
	int status = 0;
	for (int i = 1; i < argc; i++) {
		struct husk_error err = {0};
		struct pod p;
		json_object *o = NULL;
		if (pod_find(argv[i], &p, &err) == 0)
			o = inspect_json(&p, &err);
		pod_free(&p);
		if (!o) {
			fprintf(stderr, "Error: %s\n", err.msg);
			status = 1;
			continue;
		}
		json_object_array_add(all, o);
	}
	cli_print_json_array(all);
	json_object_put(all);
	return status;
}

static const struct husk_command pod_commands[] = {
    {"create", "create a pod (--name NAME, --share-pid)", pod_create_cmd},
    {"ls", "list pods (-q: ids; --format json)", pod_ls_cmd},
    {"ps", "the same as ls", pod_ls_cmd},
    {"list", "the same as ls", pod_ls_cmd},
    {"rm", "remove pods (-f: with their containers)", pod_rm_cmd},
    {"inspect", "show pods and their containers as JSON", pod_inspect_cmd},
};

static void pod_usage(FILE *out)
{
	fprintf(out, "usage: husk pod COMMAND [OPTIONS]\n\n"
	             "Pods: containers that share one microVM (husk run "
	             "--pod POD ...).\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(pod_commands) / sizeof(pod_commands[0]);
	     i++)
		fprintf(out, "  %-8s %s\n", pod_commands[i].name,
		        pod_commands[i].summary);
}

int cmd_pod(int argc, char **argv)
{
	if (argc < 2) {
		pod_usage(stderr);
		return HUSK_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		pod_usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(pod_commands) / sizeof(pod_commands[0]);
	     i++)
		if (!strcmp(pod_commands[i].name, argv[1]))
			return pod_commands[i].run(argc - 1, argv + 1);
	fprintf(stderr,
	        "husk pod: unknown command '%s' (see 'husk pod help')\n",
	        argv[1]);
	return HUSK_EXIT_USAGE;
}
