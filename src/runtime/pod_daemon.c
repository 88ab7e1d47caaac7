/* The pod daemon: owns a pod's microVM (or host agent) and routes its
 * members' agent sessions (pod_router.c). It lives from the pod's first
 * container to its last: once no member is connected it takes the pod's
 * lock, so that no one can be joining, and powers the VM off. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pod.h"
#include "pod_router.h"
#include "sup.h"
#include "vm.h"

/* A daemon nobody joined (its first member died first) does not wait for
 * ever. */
#define POD_IDLE_MS 60000

struct podd {
	const char *pod;
	const char *dir;
	struct husk_vm vm;
	struct pod_router r;
	int listen_fd, sig_fd;
};

static int boot(struct podd *d, struct husk_error *err)
{
	const char *agent = rt_host_agent();
	if (agent)
		return rt_spawn_host_agent(agent, d->dir, &d->vm, err);
	char share[PATH_MAX];
	snprintf(share, sizeof(share), "%s/share", d->dir);
	struct husk_vm_share sh = {.tag = RT_POD_SHARE_TAG, .path = share};
	struct rt_vm_plan plan = {
	    .shares = &sh,
	    .nshares = 1,
	    .memory_mib = RT_POD_VM_MIB,
	    .cpus = RT_POD_VM_CPUS,
	    .run_dir = d->dir,
	};
	return rt_vm_boot(&plan, &d->vm, err);
}

/* Pumps the agent until its HELLO came: the VM is up. */
static int await_agent(struct podd *d, struct husk_error *err)
{
	int64_t deadline = sup_now_ms() + RT_AGENT_TIMEOUT_MS;
	while (!pod_router_ready(&d->r) && !d->r.agent_gone) {
		int64_t left = deadline - sup_now_ms();
		if (left <= 0)
			return husk_err(err, ETIMEDOUT,
			                "the pod's VM did not start in %d s",
			                RT_AGENT_TIMEOUT_MS / 1000);
		struct pollfd p[1];
		int n = pod_router_pollfds(&d->r, p, 1);
		if (poll(p, (nfds_t)n, (int)(left > 1000 ? 1000 : left)) > 0)
			pod_router_dispatch(&d->r, p, n);
	}
	if (d->r.agent_gone) {
		char why[1024];
		husk_vm_describe_end(&d->vm, d->dir, 2000, why, sizeof(why));
		return husk_err(err, ECONNRESET,
		                "the pod's microVM did not start: %s", why);
	}
	return 0;
}

static void accept_members(struct podd *d)
{
	for (;;) {
		int fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct husk_error e = {0};
		if (pod_router_add(&d->r, fd, &e) < 0)
			close(fd);
	}
}

/* Under the pod's lock: true when no one is joining, and then no one
 * can (the socket is gone). */
static bool may_end(struct podd *d)
{
	struct pollfd p = {.fd = d->listen_fd, .events = POLLIN};
	if (poll(&p, 1, 0) > 0) {
		accept_members(d);
		if (d->r.nmembers)
			return false;
	}
	unlink("pod.sock");
	return true;
}

/* Powers the VM off (SHUTDOWN, a grace, SIGKILL). */
static void stop_vm(struct podd *d)
{
	struct husk_error e = {0};
	if (!d->r.agent_gone && pod_router_shutdown(&d->r, &e) == 0) {
		int64_t deadline = sup_now_ms() + 3000;
		while (!d->r.agent_gone && !d->r.shutdown_acked &&
		       sup_now_ms() < deadline) {
			struct pollfd p[1];
			int n = pod_router_pollfds(&d->r, p, 1);
			if (poll(p, (nfds_t)n, 100) > 0)
				pod_router_dispatch(&d->r, p, n);
		}
	}
	husk_vm_end(&d->vm, RT_VM_GRACE_MS);
}

/* Returns the pod's lock when the last member has gone and no one is
 * joining, or -1 when the agent went or we were told to end. */
static int serve(struct podd *d)
{
	int64_t idle_since = sup_now_ms();
	bool ever = false;
	for (;;) {
		struct pollfd p[POD_MAX_MEMBERS + 3];
		p[0] = (struct pollfd){.fd = d->listen_fd, .events = POLLIN};
		p[1] = (struct pollfd){.fd = d->sig_fd, .events = POLLIN};
		int n = pod_router_pollfds(&d->r, p + 2, POD_MAX_MEMBERS + 1);
		int rc = poll(p, (nfds_t)n + 2, 1000);
		if (rc < 0 && errno != EINTR)
			return -1;
		if (rc > 0) {
			if (p[0].revents)
				accept_members(d);
			if (p[1].revents) {
				struct signalfd_siginfo si;
				if (read(d->sig_fd, &si, sizeof(si)) ==
				        (ssize_t)sizeof(si) &&
				    si.ssi_signo != SIGCHLD)
					return -1; /* told to end */
			}
			pod_router_dispatch(&d->r, p + 2, n);
		}
		if (d->r.agent_gone)
			return -1;
		if (d->r.nmembers) {
			ever = true;
			idle_since = sup_now_ms();
			continue;
		}
		if (!ever && sup_now_ms() - idle_since < POD_IDLE_MS)
			continue;
		struct husk_error e = {0};
		int lock = rt_pod_lock(d->pod, &e);
		if (lock >= 0 && may_end(d))
			return lock;
		if (lock >= 0)
			rt_pod_unlock(d->pod, lock, false);
		idle_since = sup_now_ms();
	}
}

int rt_pod_daemon_main(const char *pod, const char *dir, int ready)
{
	struct husk_error err = {0};
	struct podd d = {.pod = pod, .dir = dir, .listen_fd = -1, .sig_fd = -1};
	d.vm.pid = -1;
	d.vm.agent_fd = -1;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	d.sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	int rc = boot(&d, &err);
	if (rc >= 0)
		rc = pod_router_init(&d.r, d.vm.agent_fd, &err);
	if (rc >= 0)
		rc = await_agent(&d, &err);
	if (rc >= 0)
		rc = d.listen_fd =
		    rt_listen_in(dir, "pod.sock", SOCK_STREAM, 64, &err);
	rt_report_ready(ready, rc < 0 ? &err : NULL);
	if (rc < 0) {
		stop_vm(&d);
		pod_router_free(&d.r);
		rt_pod_remove_dir(dir);
		return 1;
	}
	/* Its stdio is /dev/null and daemon.log already (start_daemon).
	 * The lock keeps joiners out while the VM goes and the directory is
	 * removed; one that comes next starts a new daemon. */
	int lock = serve(&d);
	if (lock < 0)
		lock = rt_pod_lock(pod, &err);
	unlink("pod.sock");
	close(d.listen_fd);
	stop_vm(&d);
	pod_router_free(&d.r);
	rt_pod_remove_dir(dir);
	if (lock >= 0)
		rt_pod_unlock(pod, lock, true);
	return 0;
}
