/* husk exec, top, stats: processes in a running container, through
 * `husk-runtime exec`, which hands our stdio to the container's
 * supervisor and exits with the process's status. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../agent/confine.h"
#include "cli.h"
#include "container_store.h"
#include "exec_tty.h"

#define MAX_EXEC_ARGS 512

static int find_running(const char *ref, struct ctr *c)
{
	struct husk_error err = {0};
	if (ctr_find(ref, c, &err) < 0) {
		fprintf(stderr, "Error response from daemon: %s\n", err.msg);
		return -1;
	}
	if (c->status != CTR_RUNNING) {
		fprintf(stderr,
		        "Error response from daemon: container %s is not "
		        "running\n",
		        c->id);
		return -1;
	}
	return 0;
}

/* -u NAME against the container's root, as the runtime takes numbers */
static int exec_user(const struct ctr *c, const char *spec, char *out,
                     size_t cap)
{
	struct agent_user_cfg u = {0};
	struct husk_error err = {0};
	snprintf(u.user, sizeof(u.user), "%s", spec);
	if (confine_resolve_user(ctr_str(c, "rootfs"), &u, NULL, 0, &err) < 0) {
		fprintf(stderr, "husk exec: %s\n", err.msg);
		return -1;
	}
	snprintf(out, cap, "%u:%u", (unsigned)u.uid, (unsigned)u.gid);
	return 0;
}

int cmd_exec(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"interactive", no_argument, NULL, 'i'},
	    {"tty", no_argument, NULL, 't'},
	    {"env", required_argument, NULL, 'e'},
	    {"workdir", required_argument, NULL, 'w'},
	    {"user", required_argument, NULL, 'u'},
	    {0, 0, 0, 0}};
	const char *args[MAX_EXEC_ARGS + 16];
	size_t n = 0;
	bool interactive = false, tty = false;
	const char *user = NULL;
	int c;
	args[n++] = "exec";
	optind = 0;
	while ((c = getopt_long(argc, argv, "+ite:w:u:", opts, NULL)) != -1) {
		switch (c) {
		case 'i': interactive = true; break;
		case 't': tty = true; break;
		case 'e':
		case 'w':
			if (n + 2 > 64) {
				fprintf(stderr,
				        "husk exec: too many options\n");
				return HUSK_EXIT_USAGE;
			}
			args[n++] = c == 'e' ? "--env" : "--cwd";
			args[n++] = optarg;
			break;
		case 'u': user = optarg; break;
		default:
			fprintf(stderr, "usage: husk exec [-i] [-t] [-e K=V] "
			                "[-w DIR] [-u USER] CONTAINER COMMAND "
			                "[ARG...]\n");
			return HUSK_EXIT_USAGE;
		}
	}
	if (argc - optind < 2 || argc - optind > MAX_EXEC_ARGS) {
		fprintf(stderr, "husk exec: requires a container and a "
		                "command\n");
		return HUSK_EXIT_USAGE;
	}
	struct ctr ct;
	int status = 126;
	char ids[40];
	if (find_running(argv[optind], &ct) < 0) {
		ctr_free(&ct);
		return 1;
	}
	if (user && exec_user(&ct, user, ids, sizeof(ids)) < 0)
		goto out;
	if (user) {
		args[n++] = "--user";
		args[n++] = ids;
	}
	struct exec_tty t = {.listen_fd = -1};
	if (tty && exec_tty_listen(&t) < 0)
		goto out;
	if (tty) {
		args[n++] = "--tty";
		args[n++] = "--console-socket";
		args[n++] = t.sock;
	}
	args[n++] = ct.id;
	for (int i = optind + 1; i < argc; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	if (tty) {
		status = exec_tty_run(&t, args, interactive);
		goto out;
	}
	/* Docker's exec without -i gives the process no stdin */
	int in = interactive ? -1 : open("/dev/null", O_RDONLY | O_CLOEXEC);
	struct husk_error err = {0};
	status = ctr_runtime(args, in, -1, -1, &err);
	if (in >= 0)
		close(in);
	if (status < 0) {
		fprintf(stderr, "husk exec: %s\n", err.msg);
		status = HUSK_EXIT_USAGE;
	} else if (status == 255) {
		status = 126; /* the runtime could not run it */
	}
out:
	ctr_free(&ct);
	return status;
}

/* Runs argv in c with its stdout into a pipe-backed buffer. */
static int capture(const struct ctr *c, const char *const *cmd, char *buf,
                   size_t cap)
{
	const char *args[16] = {"exec", c->id};
	size_t n = 2;
	for (size_t i = 0; cmd[i] && n < 15; i++)
		args[n++] = cmd[i];
	args[n] = NULL;
	char tmpl[] = "/tmp/husk-exec-XXXXXX";
	int fd = mkstemp(tmpl);
	if (fd < 0)
		return -1;
	unlink(tmpl);
	int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
	struct husk_error err = {0};
	int rc = ctr_runtime(args, nul, fd, -1, &err);
	close(nul);
	ssize_t got = pread(fd, buf, cap - 1, 0);
	close(fd);
	buf[got > 0 ? got : 0] = '\0';
	if (rc < 0)
		fprintf(stderr, "husk: %s\n", err.msg);
	return rc;
}

int cmd_top(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: husk top CONTAINER\n");
		return HUSK_EXIT_USAGE;
	}
	struct ctr c;
	if (find_running(argv[1], &c) < 0) {
		ctr_free(&c);
		return 1;
	}
	static char buf[1 << 20];
	const char *ps[] = {"ps", NULL};
	int rc = capture(&c, ps, buf, sizeof(buf));
	fputs(buf, stdout);
	ctr_free(&c);
	return rc == 0 ? 0 : 1;
}

static unsigned long long after(const char *buf, const char *key)
{
	const char *p = strstr(buf, key);
	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

/* One line per container: the cgroup's memory, CPU time and pids, read
 * inside the container (its cgroup is the VM's own). */
static int stats_line(const struct ctr *c)
{
	char buf[8192];
	const char *sh[] = {"sh", "-c",
	                    "echo mem $(cat /sys/fs/cgroup/memory.current); "
	                    "echo max $(cat /sys/fs/cgroup/memory.max); "
	                    "echo pids $(cat /sys/fs/cgroup/pids.current); "
	                    "cat /sys/fs/cgroup/cpu.stat",
	                    NULL};
	if (capture(c, sh, buf, sizeof(buf)) != 0)
		return -1;
	unsigned long long mem = after(buf, "mem "), pids = after(buf, "pids ");
	unsigned long long usec = after(buf, "usage_usec ");
	const char *max = strstr(buf, "max ");
	char limit[32] = "max";
	if (max && max[4] >= '0' && max[4] <= '9')
		snprintf(limit, sizeof(limit), "%.1fMiB",
		         (double)strtoull(max + 4, NULL, 10) / (1 << 20));
	printf("%-12.12s   %-20s   %10.2fs   %9.1fMiB / %-10s   %llu\n", c->id,
	       ctr_str(c, "name"), (double)usec / 1e6, (double)mem / (1 << 20),
	       limit, pids);
	return 0;
}

int cmd_stats(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"no-stream", no_argument, NULL, 'n'}, {0, 0, 0, 0}};
	bool stream = true;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		if (c != 'n') {
			fprintf(
			    stderr,
			    "usage: husk stats [--no-stream] CONTAINER...\n");
			return HUSK_EXIT_USAGE;
		}
		stream = false;
	}
	if (optind >= argc) {
		fprintf(stderr, "husk stats: requires a container\n");
		return HUSK_EXIT_USAGE;
	}
	for (;;) {
		printf("%-12s   %-20s   %11s   %-26s   %s\n", "CONTAINER ID",
		       "NAME", "CPU TIME", "MEM USAGE / LIMIT", "PIDS");
		int status = 0;
		for (int i = optind; i < argc; i++) {
			struct ctr ct;
			if (find_running(argv[i], &ct) < 0 ||
			    stats_line(&ct) < 0)
				status = 1;
			ctr_free(&ct);
		}
		fflush(stdout);
		if (!stream || status)
			return status;
		sleep(1);
	}
}
