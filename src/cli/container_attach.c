/* A foreground `husk run --pod`: the container runs under husk-runtime
 * (its pod's VM is the runtime's), and husk stands in for it as `docker
 * run` does: the container's output (its log) is copied to stdout while
 * it runs, the signals a user sends husk go to the container, and husk
 * exits with its code. If husk itself is killed, the container runs on,
 * as a detached one. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "container_store.h"

#define FOLLOW_INTERVAL_US 100000

/* As `docker run`'s --sig-proxy; SIGKILL and SIGSTOP cannot be caught. */
static const int proxied[] = {SIGINT,  SIGTERM, SIGHUP,
                              SIGQUIT, SIGUSR1, SIGUSR2};
#define NPROXIED (sizeof(proxied) / sizeof(proxied[0]))
static volatile sig_atomic_t pending[NPROXIED];

static void note_signal(int sig)
{
	for (size_t i = 0; i < NPROXIED; i++)
		if (proxied[i] == sig)
			pending[i] = 1;
}

static void forward_pending(struct ctr *c)
{
	for (size_t i = 0; i < NPROXIED; i++) {
		if (!pending[i])
			continue;
		pending[i] = 0;
		char sig[16];
		snprintf(sig, sizeof(sig), "%d", proxied[i]);
		const char *args[] = {"kill", c->id, sig, NULL};
		struct husk_error err = {0};
		/* a container that just ended makes the runtime complain */
		int nul = open("/dev/null", O_WRONLY | O_CLOEXEC);
		(void)ctr_runtime(args, -1, -1, nul, &err);
		if (nul >= 0)
			close(nul);
	}
}

/* Copies what fd holds from its offset on to stdout; false once stdout
 * is gone (a closed pipe), after which there is nobody to copy to. */
static bool copy_out(int fd)
{
	char buf[65536];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return false;
	return fflush(stdout) == 0;
}

int ctr_attach(struct ctr *c)
{
	struct sigaction sa = {.sa_handler = note_signal};
	sigemptyset(&sa.sa_mask);
	struct sigaction old[NPROXIED];
	for (size_t i = 0; i < NPROXIED; i++)
		sigaction(proxied[i], &sa, &old[i]);
	/* a reader that goes away must not kill husk before it reaps the
	 * container's status */
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
	sigaction(SIGPIPE, &ign, &old_pipe);
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/log", c->dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fprintf(stderr,
		        "husk run: %s: %s (following the container "
		        "without its output)\n",
		        path, strerror(errno));
	bool out_ok = true;
	for (;;) {
		forward_pending(c);
		ctr_refresh(c);
		bool stopped = c->status == CTR_EXITED;
		/* after it stopped, one more read takes what it wrote last */
		if (fd >= 0 && out_ok)
			out_ok = copy_out(fd);
		if (stopped)
			break;
		usleep(FOLLOW_INTERVAL_US);
	}
	if (fd >= 0)
		close(fd);
	for (size_t i = 0; i < NPROXIED; i++)
		sigaction(proxied[i], &old[i], NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	return c->exit_code;
}
