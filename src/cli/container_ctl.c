/* husk stop, kill, start, restart, logs, top, stats: acting on a
 * container of `husk run -d` through husk-runtime. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "container_store.h"

#define STOP_DEFAULT_S 10
#define KILL_WAIT_MS   10000

static bool running(const struct ctr *c)
{
	return c->status == CTR_RUNNING || c->status == CTR_PAUSED;
}

/* husk-runtime kill; its complaints (a container that just ended) are
 * not the user's business when we stop. */
static int send_signal(struct ctr *c, const char *sig, bool quiet,
                       struct husk_error *err)
{
	const char *args[] = {"kill", c->id, sig, NULL};
	int nul = quiet ? open("/dev/null", O_WRONLY | O_CLOEXEC) : -1;
	int rc = ctr_runtime(args, -1, -1, nul, err);
	if (nul >= 0)
		close(nul);
	if (rc < 0)
		return -err->code;
	return rc == 0 ? 0 : husk_err(err, EIO, "husk-runtime kill failed");
}

/* Docker's stop: SIGTERM, up to timeout seconds, then SIGKILL. */
static int stop_one(struct ctr *c, void *arg, struct husk_error *err)
{
	int timeout = *(int *)arg;
	if (!running(c))
		return 0;
	(void)send_signal(c, "TERM", true, err);
	if (ctr_wait_stopped(c, timeout * 1000))
		return 0;
	(void)send_signal(c, "KILL", true, err);
	if (ctr_wait_stopped(c, KILL_WAIT_MS))
		return 0;
	return husk_err(err, ETIMEDOUT, "container %s did not stop", c->id);
}

static int parse_time(int argc, char **argv, const char *cmd, int *secs)
{
	static const struct option opts[] = {
	    {"time", required_argument, NULL, 't'},
	    {"timeout", required_argument, NULL, 't'},
	    {0, 0, 0, 0}};
	int c;
	*secs = STOP_DEFAULT_S;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+t:", opts, NULL)) != -1) {
		char *end;
		long v = c == 't' ? strtol(optarg, &end, 10) : -1;
		if (c != 't' || *end || end == optarg || v < -1 ||
		    v > 1000000) {
			fprintf(stderr,
			        "usage: husk %s [-t SECONDS] CONTAINER...\n",
			        cmd);
			return -1;
		}
		*secs = v < 0 ? 1000000 : (int)v; /* -1: wait for ever */
	}
	return 0;
}

int cmd_stop(int argc, char **argv)
{
	int secs;
	if (parse_time(argc, argv, "stop", &secs) < 0)
		return HUSK_EXIT_USAGE;
	return ctr_for_each_ref(argc, argv, "stop", stop_one, &secs, true);
}

static int kill_one(struct ctr *c, void *arg, struct husk_error *err)
{
	if (!running(c))
		return husk_err(err, EINVAL,
		                "Cannot kill container: %s: Container %s is "
		                "not running",
		                c->id, c->id);
	return send_signal(c, arg, false, err);
}

int cmd_kill(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"signal", required_argument, NULL, 's'}, {0, 0, 0, 0}};
	const char *sig = "KILL";
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+s:", opts, NULL)) != -1) {
		if (c != 's') {
			fprintf(stderr,
			        "usage: husk kill [-s SIGNAL] CONTAINER...\n");
			return HUSK_EXIT_USAGE;
		}
		sig = optarg;
	}
	return ctr_for_each_ref(argc, argv, "kill", kill_one, (void *)sig,
	                        true);
}

static int start_one(struct ctr *c, void *arg, struct husk_error *err)
{
	(void)arg;
	return running(c) ? 0 : ctr_start(c, err);
}

int cmd_start(int argc, char **argv)
{
	optind = 0;
	int c;
	while ((c = getopt(argc, argv, "+")) != -1) {
		fprintf(stderr, "usage: husk start CONTAINER...\n");
		return HUSK_EXIT_USAGE;
	}
	return ctr_for_each_ref(argc, argv, "start", start_one, NULL, true);
}

static int restart_one(struct ctr *c, void *arg, struct husk_error *err)
{
	int rc = stop_one(c, arg, err);
	return rc < 0 ? rc : ctr_start(c, err);
}

int cmd_restart(int argc, char **argv)
{
	int secs;
	if (parse_time(argc, argv, "restart", &secs) < 0)
		return HUSK_EXIT_USAGE;
	return ctr_for_each_ref(argc, argv, "restart", restart_one, &secs,
	                        true);
}

/* Copies what fd holds from its current offset to stdout. */
static void drain(int fd)
{
	char buf[65536];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			break;
	fflush(stdout);
}

int cmd_logs(int argc, char **argv)
{
	static const struct option opts[] = {{"follow", no_argument, NULL, 'f'},
	                                     {0, 0, 0, 0}};
	bool follow = false;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+f", opts, NULL)) != -1) {
		if (c != 'f') {
			fprintf(stderr, "usage: husk logs [-f] CONTAINER\n");
			return HUSK_EXIT_USAGE;
		}
		follow = true;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "husk logs: requires exactly 1 container\n");
		return HUSK_EXIT_USAGE;
	}
	struct ctr ct;
	struct husk_error err = {0};
	if (ctr_find(argv[optind], &ct, &err) < 0) {
		fprintf(stderr, "Error response from daemon: %s\n", err.msg);
		ctr_free(&ct);
		return 1;
	}
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/log", ct.dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		fprintf(stderr, "husk logs: %s: %s\n", path, strerror(errno));
		ctr_free(&ct);
		return 1;
	}
	if (fd >= 0)
		drain(fd);
	/* -f: until the container stops; one more read after it stopped
	 * takes what it wrote last */
	while (follow && fd >= 0) {
		ctr_refresh(&ct);
		bool stopped = ct.status == CTR_EXITED;
		drain(fd);
		if (stopped)
			break;
		usleep(100000);
	}
	if (fd >= 0)
		close(fd);
	ctr_free(&ct);
	return 0;
}
