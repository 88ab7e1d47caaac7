/* husk-runtime's command line: runc's global options and commands. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "husk/io.h"
#include "rt.h"

#ifndef HUSK_VERSION
#define HUSK_VERSION "unknown"
#endif

struct rt_global rt_g = {.root = RT_DEFAULT_ROOT};

static void log_line(const char *level, const char *msg)
{
	if (!rt_g.log)
		return;
	int fd =
	    open(rt_g.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	char ts[40];
	rt_now_rfc3339(ts, sizeof(ts));
	char *line;
	int n;
	if (rt_g.log_json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "level",
		                       json_object_new_string(level));
		json_object_object_add(o, "msg", json_object_new_string(msg));
		json_object_object_add(o, "time", json_object_new_string(ts));
		n = asprintf(&line, "%s\n",
		             json_object_to_json_string_ext(
		                 o, JSON_C_TO_STRING_PLAIN |
		                        JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		n = asprintf(&line, "time=\"%s\" level=%s msg=\"%s\"\n", ts,
		             level, msg);
	}
	if (n > 0) {
		(void)husk_write_all(fd, line, (size_t)n);
		free(line);
	}
	close(fd);
}

void rt_error(const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_line("error", msg);
	fprintf(stderr, "husk-runtime: %s\n", msg);
}

void rt_debug(const char *fmt, ...)
{
	if (!rt_g.debug)
		return;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_line("debug", msg);
}

int rt_parse_signal(const char *s)
{
	if (!s || !s[0])
		return -1;
	char *end;
	long n = strtol(s, &end, 10);
	if (!*end)
		return n >= 1 && n <= 64 ? (int)n : -1;
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (int i = 1; i < 32; i++) {
		const char *name = sigabbrev_np(i);
		if (name && !strcasecmp(name, s))
			return i;
	}
	return -1;
}

int rt_write_pid_file(const char *path, pid_t pid, struct husk_error *err)
{
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return husk_err_errno(err, errno, "pid file %s", path);
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d", (int)pid);
	int rc = husk_write_all(fd, buf, (size_t)n);
	close(fd);
	if (rc < 0 || rename(tmp, path) < 0) {
		int e = rc < 0 ? -rc : errno;
		unlink(tmp);
		return husk_err_errno(err, e, "pid file %s", path);
	}
	return 0;
}

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
    {"create", rt_cmd_create, "create a container (its microVM boots)"},
    {"start", rt_cmd_start, "run the user process of a created container"},
    {"run", rt_cmd_run, "create and start a container"},
    {"state", rt_cmd_state, "a container's state as JSON"},
    {"kill", rt_cmd_kill, "send a signal to a container's process"},
    {"delete", rt_cmd_delete, "delete a container and its microVM"},
    {"exec", rt_cmd_exec, "run another process in a container"},
    {"list", rt_cmd_list, "list containers"},
    {"ps", rt_cmd_ps, "processes of a container"},
    {"pause", rt_cmd_pause, "freeze a container's microVM"},
    {"resume", rt_cmd_resume, "thaw a paused container"},
    {"features", rt_cmd_features, "what this runtime supports, as JSON"},
    {"spec", rt_cmd_spec, "write a default config.json"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: husk-runtime [--root DIR] [--log FILE] "
	           "[--log-format text|json] [--debug] [--systemd-cgroup] "
	           "COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name,
		        commands[i].summary);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"root", required_argument, NULL, 'r'},
	    {"log", required_argument, NULL, 'l'},
	    {"log-format", required_argument, NULL, 'f'},
	    {"debug", no_argument, NULL, 'd'},
	    {"systemd-cgroup", no_argument, NULL, 's'},
	    {"rootless", required_argument, NULL, 'R'},
	    {"criu", required_argument, NULL, 'C'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'v'},
	    {0, 0, 0, 0}};
	int c;
	/* "+": global options end at the command, as in runc. */
	while ((c = getopt_long(argc, argv, "+hv", opts, NULL)) != -1) {
		switch (c) {
		case 'r': rt_g.root = optarg; break;
		case 'l': rt_g.log = optarg; break;
		case 'f':
			if (strcmp(optarg, "json") && strcmp(optarg, "text")) {
				rt_error("--log-format '%s': use text or json",
				         optarg);
				return 1;
			}
			rt_g.log_json = !strcmp(optarg, "json");
			break;
		case 'd': rt_g.debug = true; break;
		case 's': rt_g.systemd_cgroup = true; break;
		case 'R':
		case 'C': break; /* accepted, as runc's: nothing to do */
		case 'h': usage(stdout); return 0;
		case 'v':
			printf("husk-runtime version %s\nspec: 1.1.0\n",
			       HUSK_VERSION);
			return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	const char *name = argv[optind];
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (!strcmp(commands[i].name, name)) {
			int at = optind;
			optind = 0; /* each command parses its own options */
			return commands[i].run(argc - at, argv + at);
		}
	}
	rt_error("unknown command '%s'", name);
	usage(stderr);
	return 1;
}
