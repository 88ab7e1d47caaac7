/* create, start, run, state, kill, delete: runc's lifecycle commands. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "husk/proc.h"
#include "pod.h"
#include "rt.h"

#define DELETE_WAIT_MS 15000

/* The one positional argument every command takes. */
static const char *container_id(int argc, char **argv, const char *cmd)
{
	if (optind == 0)
		optind = 1; /* the command took no options */
	if (optind != argc - 1) {
		rt_error("%s: %s", cmd,
		         optind >= argc ? "requires a container id"
		                        : "too many arguments");
		return NULL;
	}
	return argv[optind];
}

static int do_create(int argc, char **argv, const char *cmd, bool *detach,
                     pid_t *pid_out, char *id_out, size_t id_cap)
{
	static const struct option opts[] = {
	    {"bundle", required_argument, NULL, 'b'},
	    {"pid-file", required_argument, NULL, 'p'},
	    {"console-socket", required_argument, NULL, 'c'},
	    {"no-pivot", no_argument, NULL, 'N'},
	    {"no-new-keyring", no_argument, NULL, 'K'},
	    {"preserve-fds", required_argument, NULL, 'P'},
	    {"detach", no_argument, NULL, 'd'},
	    {"keep", no_argument, NULL, 'k'},
	    {"no-subreaper", no_argument, NULL, 'S'},
	    {0, 0, 0, 0}};
	struct rt_create c = {.bundle = "."};
	int o;
	while ((o = getopt_long(argc, argv, "b:d", opts, NULL)) != -1) {
		switch (o) {
		case 'b': c.bundle = optarg; break;
		case 'p': c.pid_file = optarg; break;
		case 'c': c.console_socket = optarg; break;
		case 'd':
			if (detach)
				*detach = true;
			break;
		case 'P': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || n < 0 || n > 1024) {
				rt_error("--preserve-fds '%s'", optarg);
				return 1;
			}
			break;
		}
		case 'N':
		case 'K':
		case 'k':
		case 'S': break; /* nothing to do in a VM */
		default: rt_error("%s: bad option", cmd); return 1;
		}
	}
	if (!(c.id = container_id(argc, argv, cmd)))
		return 1;
	snprintf(id_out, id_cap, "%s", c.id);
	struct husk_error err = {0};
	char dir[PATH_MAX], bundle[PATH_MAX];
	if (rt_state_dir(c.id, dir, sizeof(dir), &err) < 0) {
		rt_error("%s", err.msg);
		return 1;
	}
	if (!realpath(c.bundle, bundle)) {
		rt_error("bundle %s: %s", c.bundle, strerror(errno));
		return 1;
	}
	c.bundle = bundle;
	if (rt_spec_load(bundle, &c.spec, &err) < 0) {
		rt_error("%s", err.msg);
		return 1;
	}
	pid_t pid;
	int rc = rt_supervise(&c, &pid, &err);
	rt_spec_free(&c.spec);
	if (rc < 0) {
		rt_error("%s", err.msg);
		return 1;
	}
	if (c.pid_file && rt_write_pid_file(c.pid_file, pid, &err) < 0) {
		rt_error("%s", err.msg);
		kill(pid, SIGKILL);
		return 1;
	}
	*pid_out = pid;
	return 0;
}

int rt_cmd_create(int argc, char **argv)
{
	pid_t pid;
	char id[256];
	return do_create(argc, argv, "create", NULL, &pid, id, sizeof(id));
}

static int start_id(const char *id)
{
	struct husk_error err = {0};
	struct rt_state st;
	char reply[4096];
	if (rt_state_get(id, &st, false) < 0)
		return 1;
	if (st.status == RT_STOPPED) {
		rt_error("cannot start a container that has stopped");
		return 1;
	}
	if (st.status != RT_CREATED) {
		rt_error("cannot start an already running container");
		return 1;
	}
	if (rt_ctl_call(id, "{\"op\":\"start\"}", reply, sizeof(reply), &err) <
	    0) {
		rt_error("%s", err.msg);
		return 1;
	}
	return 0;
}

int rt_cmd_start(int argc, char **argv)
{
	const char *id = container_id(argc, argv, "start");
	return id ? start_id(id) : 1;
}

int rt_cmd_run(int argc, char **argv)
{
	bool detach = false;
	pid_t pid;
	char id[256];
	int rc = do_create(argc, argv, "run", &detach, &pid, id, sizeof(id));
	if (rc)
		return rc;
	if (start_id(id)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		rt_state_remove(id);
		return 1;
	}
	if (detach)
		return 0;
	/* In the foreground the supervisor is our child: its status is
	 * the container's, and the container goes once it ended. */
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	rt_state_remove(id);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

int rt_cmd_state(int argc, char **argv)
{
	const char *id = container_id(argc, argv, "state");
	if (!id)
		return 1;
	struct rt_state st;
	if (rt_state_get(id, &st, false) < 0)
		return 1;
	json_object *o = rt_state_json(&st);
	json_object *ann = json_object_new_object();
	if (st.sandbox[0])
		json_object_object_add(ann, "io.husk.pod",
		                       json_object_new_string(st.sandbox));
	json_object_object_add(o, "annotations", ann);
	printf("%s\n", json_object_to_json_string_ext(
	                   o, JSON_C_TO_STRING_PRETTY |
	                          JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return 0;
}

int rt_cmd_kill(int argc, char **argv)
{
	static const struct option opts[] = {{"all", no_argument, NULL, 'a'},
	                                     {0, 0, 0, 0}};
	int o;
	while ((o = getopt_long(argc, argv, "a", opts, NULL)) != -1)
		if (o != 'a') {
			rt_error("kill: bad option");
			return 1;
		}
	if (optind >= argc || argc - optind > 2) {
		rt_error("kill: usage: kill [--all] ID [SIGNAL]");
		return 1;
	}
	const char *id = argv[optind];
	int sig =
	    argc - optind == 2 ? rt_parse_signal(argv[optind + 1]) : SIGTERM;
	if (sig < 0) {
		rt_error("unknown signal \"%s\"", argv[optind + 1]);
		return 1;
	}
	struct husk_error err = {0};
	struct rt_state st;
	if (rt_state_get(id, &st, true) < 0)
		return 1;
	char req[64], reply[4096];
	snprintf(req, sizeof(req), "{\"op\":\"kill\",\"signal\":%d}", sig);
	if (rt_ctl_call(id, req, reply, sizeof(reply), &err) < 0) {
		rt_error("%s",
		         err.code == ESRCH ? "container not running" : err.msg);
		return 1;
	}
	return 0;
}

int rt_cmd_delete(int argc, char **argv)
{
	static const struct option opts[] = {{"force", no_argument, NULL, 'f'},
	                                     {0, 0, 0, 0}};
	bool force = false;
	int o;
	while ((o = getopt_long(argc, argv, "f", opts, NULL)) != -1) {
		if (o != 'f') {
			rt_error("delete: bad option");
			return 1;
		}
		force = true;
	}
	const char *id = container_id(argc, argv, "delete");
	if (!id)
		return 1;
	struct husk_error err = {0};
	struct rt_state st;
	if (rt_state_get(id, &st, false) < 0)
		return 1;
	if ((st.status == RT_RUNNING || st.status == RT_PAUSED) && !force) {
		rt_error("cannot delete container %s that is not stopped: %s",
		         id, rt_status_name(st.status));
		return 1;
	}
	if (st.status != RT_STOPPED) {
		char reply[4096];
		if (rt_ctl_call(id, "{\"op\":\"delete\"}", reply, sizeof(reply),
		                &err) < 0 &&
		    husk_pid_alive(st.pid, st.pid_start))
			kill(st.pid, SIGKILL);
	}
	/* The supervisor takes its VM down on its way out; wait for that so
	 * that nothing of the container outlives delete. */
	for (int waited = 0; waited < DELETE_WAIT_MS; waited += 20) {
		if (!husk_pid_alive(st.pid, st.pid_start))
			break;
		usleep(20000);
	}
	if (husk_pid_alive(st.pid, st.pid_start))
		kill(st.pid, SIGKILL);
	if (st.vmm_pid > 0 && st.status != RT_STOPPED) {
		/* the VMM dies with its supervisor (PDEATHSIG); this is for
		 * a supervisor killed before it could say so */
		for (int waited = 0; waited < 2000; waited += 20) {
			if (!husk_pid_alive(st.vmm_pid, 0))
				break;
			usleep(20000);
		}
	}
	if (st.sandbox[0] && st.pid > 0) {
		/* a killed pod member's root stays bound in the pod's share */
		char entry[64];
		rt_pod_member_name(st.pid, st.pid_start, entry, sizeof(entry));
		rt_pod_unshare_member(st.sandbox, entry);
	}
	rt_state_remove(id);
	return 0;
}
