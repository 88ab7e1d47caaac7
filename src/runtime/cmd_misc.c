/* list, ps, pause, resume, features, spec. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "husk/io.h"
#include "rt.h"

static bool want_json(int argc, char **argv, const char *cmd)
{
	static const struct option opts[] = {
	    {"format", required_argument, NULL, 'f'},
	    {"quiet", no_argument, NULL, 'q'},
	    {0, 0, 0, 0}};
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "f:q", opts, NULL)) != -1)
		if (c == 'f')
			json = !strcmp(optarg, "json");
	(void)cmd;
	return json;
}

static bool add_to_list(const struct rt_state *st, void *list)
{
	json_object_array_add(list, rt_state_json(st));
	return true;
}

int rt_cmd_list(int argc, char **argv)
{
	bool json = want_json(argc, argv, "list");
	json_object *a = json_object_new_array();
	rt_state_for_each(add_to_list, a);
	if (json) {
		printf("%s\n", json_object_to_json_string_ext(
		                   a, JSON_C_TO_STRING_PLAIN |
		                          JSON_C_TO_STRING_NOSLASHESCAPE));
	} else {
		printf("%-20s %-8s %-10s %-40s %s\n", "ID", "PID", "STATUS",
		       "BUNDLE", "CREATED");
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			json_object *o = json_object_array_get_idx(a, i), *v;
#define S(k)                                                                   \
	(json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "")
			printf("%-20s %-8s %-10s %-40s %s\n", S("id"), S("pid"),
			       S("status"), S("bundle"), S("created"));
#undef S
		}
	}
	json_object_put(a);
	return 0;
}

static void no_options(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	optind = 1;
}

/* The container's processes run in the guest; on the host they are the
 * microVM's process, which is what `ps` (and so `docker top`) shows. The
 * guest pids come along for those who ask for JSON. */
static bool ps_json;

static void print_ps(const char *reply)
{
	json_object *o = json_tokener_parse(reply), *v;
	int vmm = o && json_object_object_get_ex(o, "vmm_pid", &v)
	              ? json_object_get_int(v)
	              : 0;
	json_object_put(o);
	if (ps_json) {
		printf(vmm > 0 ? "[%d]\n" : "[]\n", vmm);
		return;
	}
	char path[64], cmd[256] = "";
	snprintf(path, sizeof(path), "/proc/%d/comm", vmm);
	FILE *f = fopen(path, "re");
	if (f && fgets(cmd, sizeof(cmd), f))
		cmd[strcspn(cmd, "\n")] = '\0';
	if (f)
		fclose(f);
	printf("PID\tCMD\n");
	if (vmm > 0)
		printf("%d\t%s\n", vmm, cmd);
}

static int simple_op(int argc, char **argv, const char *cmd, const char *op)
{
	if (argc - optind != 1) {
		rt_error("%s: requires exactly one container id", cmd);
		return 1;
	}
	const char *id = argv[optind];
	struct husk_error err = {0};
	struct rt_state st;
	if (rt_state_get(id, &st, true) < 0)
		return 1;
	char req[64], reply[65536];
	snprintf(req, sizeof(req), "{\"op\":\"%s\"}", op);
	if (rt_ctl_call(id, req, reply, sizeof(reply), &err) < 0) {
		rt_error("%s", err.msg);
		return 1;
	}
	if (!strcmp(op, "ps"))
		print_ps(reply);
	return 0;
}

int rt_cmd_ps(int argc, char **argv)
{
	ps_json = want_json(argc, argv, "ps");
	return simple_op(argc, argv, "ps", "ps");
}

int rt_cmd_pause(int argc, char **argv)
{
	no_options(argc, argv);
	return simple_op(argc, argv, "pause", "pause");
}

int rt_cmd_resume(int argc, char **argv)
{
	no_options(argc, argv);
	return simple_op(argc, argv, "resume", "resume");
}

int rt_cmd_features(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("{\"ociVersionMin\":\"1.0.0\",\"ociVersionMax\":\"1.1.0\","
	       "\"hooks\":[],"
	       "\"mountOptions\":[\"ro\",\"rw\",\"bind\",\"rbind\"],"
	       "\"linux\":{\"namespaces\":[\"cgroup\",\"ipc\",\"mount\","
	       "\"network\",\"pid\",\"uts\"],"
	       "\"cgroup\":{\"v1\":false,\"v2\":true,\"systemd\":false},"
	       "\"seccomp\":{\"enabled\":true},"
	       "\"apparmor\":{\"enabled\":false},"
	       "\"selinux\":{\"enabled\":false}},"
	       "\"annotations\":{\"io.husk.vm\":\"microVM per container or "
	       "pod\"}}\n");
	return 0;
}

int rt_cmd_spec(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"bundle", required_argument, NULL, 'b'},
	    {"rootless", no_argument, NULL, 'r'},
	    {0, 0, 0, 0}};
	const char *bundle = ".";
	int c;
	while ((c = getopt_long(argc, argv, "b:", opts, NULL)) != -1)
		if (c == 'b')
			bundle = optarg;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/config.json", bundle);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		rt_error("%s: %s", path,
		         errno == EEXIST ? "File exists" : strerror(errno));
		return 1;
	}
	const char *t = rt_spec_default();
	int rc = husk_write_all(fd, t, strlen(t));
	close(fd);
	if (rc < 0) {
		rt_error("%s: %s", path, strerror(-rc));
		return 1;
	}
	return 0;
}
