/* The supervisor's birth: `create` forks it, and it boots the microVM,
 * creates the container through the agent, hands a terminal to the
 * console socket, and reports back over a pipe before `create` returns.
 * From then on it lives on its own (reparented to containerd's shim,
 * which is a subreaper) and exits with the container's status. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "husk/program.h"
#include "husk/rootfs_disk.h"
#include "husk/volumes.h"
#include "husk/proc.h"
#include "pod.h"
#include "sup.h"
#include "vm.h"

#define ROOT_SERIAL "husk-root"

int64_t sup_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the terminal for --console-socket ---- */

static int send_master(const char *sock_path, int master, const char *name,
                       struct husk_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(sock_path) >= sizeof(sa.sun_path))
		return husk_err(err, ENAMETOOLONG,
		                "--console-socket path too long");
	strcpy(sa.sun_path, sock_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return husk_err_errno(err, e, "--console-socket %s", sock_path);
	}
	/* runc sends the terminal's name with the master, and containerd
	 * reads both. */
	int rc = rt_ctl_send(fd, name, &master, 1);
	close(fd);
	return rc < 0 ? husk_err_errno(err, -rc, "send the terminal to %s",
	                               sock_path)
	              : 0;
}

/* Our end (the slave) is raw: the guest's PTY does the line discipline,
 * and doing it twice would echo twice. */
int rt_open_console(const char *sock_path, unsigned rows, unsigned cols,
                    bool ctty, int *slave_out, struct husk_error *err)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) {
		int e = errno;
		if (master >= 0)
			close(master);
		return husk_err_errno(err, e, "allocate a terminal");
	}
	char name[128];
	if (ptsname_r(master, name, sizeof(name)) != 0) {
		close(master);
		return husk_err_errno(err, errno, "allocate a terminal");
	}
	int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0) {
		int e = errno;
		close(master);
		return husk_err_errno(err, e, "open %s", name);
	}
	struct termios t;
	if (tcgetattr(slave, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(slave, TCSANOW, &t);
	}
	if (rows && cols) {
		struct winsize ws = {.ws_row = (unsigned short)rows,
		                     .ws_col = (unsigned short)cols};
		ioctl(slave, TIOCSWINSZ, &ws);
	}
	if (ctty)
		ioctl(slave, TIOCSCTTY, 0);
	int rc = send_master(sock_path, master, name, err);
	close(master);
	if (rc < 0) {
		close(slave);
		return rc;
	}
	*slave_out = slave;
	return 0;
}

/* ---- volumes: the bundle's bind and tmpfs mounts ---- */

/* What the agent sets up itself in every container (Docker's /proc,
 * /dev, /sys, its /etc files): the bundle's versions of these are not
 * volumes. */
static bool agent_provides(const char *dest)
{
	static const char *const own[] = {"/proc",          "/dev",
	                                  "/dev/pts",       "/dev/shm",
	                                  "/dev/mqueue",    "/sys",
	                                  "/sys/fs/cgroup", "/etc/hostname",
	                                  "/etc/hosts",     "/etc/resolv.conf"};
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (!strcmp(dest, own[i]))
			return true;
	return false;
}

/* A directory for a member of a pod: the pod's VM has its shares from
 * boot, so the directory goes into the pod's share as NAME-vN. */
static int pod_volume(struct sup *s, struct husk_volumes *v,
                      const struct rt_mount *m, size_t n,
                      struct husk_error *err)
{
	char name[64], where[PATH_MAX];
	snprintf(name, sizeof(name), "%s-v%zu", s->pod_entry, n);
	if (rt_pod_share(s->pod, name, m->source, m->readonly, where,
	                 sizeof(where), err) < 0)
		return -err->code;
	return husk_volumes_add_share_dir(v, where, m->dest, m->readonly, err);
}

/* The bundle's bind mounts of directories and its tmpfs mounts become
 * the container's volumes (husk/volumes.h). */
static int map_volumes(struct sup *s, const struct rt_spec *sp,
                       struct husk_volumes *v, struct husk_error *err)
{
	for (size_t i = 0; i < sp->nmounts; i++) {
		const struct rt_mount *m = &sp->mounts[i];
		struct stat st;
		int rc = 0;
		if (!m->dest || agent_provides(m->dest))
			continue;
		if (m->type && !strcmp(m->type, "tmpfs"))
			rc = husk_volumes_add_tmpfs(v, m->dest, err);
		else if (m->bind && m->source && !v->host_agent &&
		         stat(m->source, &st) == 0 && !S_ISDIR(st.st_mode))
			rt_debug("bind mount of file %s skipped: only "
			         "directories can be shared with the VM",
			         m->source);
		else if (m->bind && m->source && s->pod_entry[0])
			rc = pod_volume(s, v, m, i, err);
		else if (m->bind && m->source)
			rc = husk_volumes_add_dir(v, m->source, m->dest,
			                          m->readonly, err);
		else
			rt_debug("mount of type %s at %s skipped",
			         m->type ? m->type : "?", m->dest);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---- the VM ---- */

static const char *cache_dir(void)
{
	const char *d = getenv("HUSK_CACHE_DIR");
	return d && d[0] ? d : "/var/cache/husk/rootfs";
}

static int start_host_agent(struct sup *s, const char *agent,
                            struct husk_error *err)
{
	if (rt_spawn_host_agent(agent, s->dir, &s->vm, err) < 0)
		return -err->code;
	s->vm_started = true;
	s->host_agent = true;
	return 0;
}

/* The container's own VM, its root an image of the bundle's rootfs. */
static int start_vm(struct sup *s, const struct husk_volumes *vols,
                    struct husk_error *err)
{
	char disk[PATH_MAX];
	if (husk_rootfs_disk(s->c->spec.root, cache_dir(), disk, sizeof(disk),
	                     err) < 0)
		return -err->code;
	struct husk_vm_disk d = {
	    .path = disk, .readonly = true, .serial = ROOT_SERIAL};
	const struct rt_spec *sp = &s->c->spec;
	struct rt_vm_plan plan = {
	    .disks = &d,
	    .ndisks = 1,
	    .shares = vols->shares,
	    .nshares = vols->nshares,
	    .memory_mib = rt_vm_memory_mib(sp->memory_limit),
	    .cpus = sp->cpu_millis ? (sp->cpu_millis + 999) / 1000 : 1,
	    .run_dir = s->dir,
	};
	if (rt_vm_boot(&plan, &s->vm, err) < 0)
		return -err->code;
	s->vm_started = true;
	return 0;
}

void sup_stop_vm(struct sup *s)
{
	if (!s->vm_started)
		return;
	struct husk_error e = {0};
	if (s->mux_ready && !s->mux.failed && !s->mux.closed)
		husk_mux_shutdown(&s->mux, &e);
	husk_vm_end(&s->vm, RT_VM_GRACE_MS);
	/* the mux owns the channel */
	s->vm.agent_fd = -1;
	s->vm_started = false;
	if (s->pod_entry[0])
		rt_pod_unshare_member(s->pod, s->pod_entry);
}

/* A pod member: the pod's VM (started by whoever comes first) gets our
 * root through the pod's share (a host agent takes the directory as it
 * is). */
static int join_pod(struct sup *s, bool host, char *root_device, size_t cap,
                    struct husk_error *err)
{
	const struct rt_spec *sp = &s->c->spec;
	snprintf(s->pod, sizeof(s->pod), "%s", sp->sandbox_id);
	if (rt_pod_join(s->pod, &s->vm.agent_fd, err) < 0)
		return -err->code;
	s->vm.pid = -1;
	s->vm_started = true;
	s->host_agent = host;
	if (host)
		return 0;
	rt_pod_member_name(s->st.pid, s->st.pid_start, s->pod_entry,
	                   sizeof(s->pod_entry));
	memcpy(root_device, "9p:", 4);
	return rt_pod_share(s->pod, s->pod_entry, sp->root, true,
	                    root_device + 3, cap - 3, err);
}

/* ---- creating the container ---- */

static int create_container(struct sup *s, int in, int out, int errfd,
                            struct husk_error *err)
{
	const struct rt_spec *sp = &s->c->spec;
	const char *agent = rt_host_agent();
	bool host = agent != NULL;
	/* a host agent takes the root directory itself */
	char root_device[PATH_MAX + 16];
	snprintf(root_device, sizeof(root_device), "%s",
	         host ? sp->root : "serial:" ROOT_SERIAL);
	char pid_ns_of[129] = "";
	struct husk_volumes vols = {.host_agent = host};
	int rc = 0;
	if (sp->pid_ns_path && !sp->sandbox_id)
		rc = husk_err(err, EINVAL,
		              "joining PID namespace %s needs both containers "
		              "in one pod (annotation io.husk.pod or "
		              "io.kubernetes.cri.sandbox-id)",
		              sp->pid_ns_path);
	if (rc >= 0 && sp->pid_ns_path)
		rc = rt_pod_pidns_member(sp->sandbox_id, sp->pid_ns_path,
		                         pid_ns_of, err);
	if (rc >= 0 && sp->sandbox_id)
		rc = join_pod(s, host, root_device, sizeof(root_device), err);
	if (rc >= 0)
		rc = map_volumes(s, sp, &vols, err);
	if (rc >= 0 && !sp->sandbox_id)
		rc = host ? start_host_agent(s, agent, err)
		          : start_vm(s, &vols, err);
	if (rc < 0) {
		husk_volumes_free(&vols);
		return rc;
	}
	s->st.vmm_pid = s->vm.pid;
	if ((rc = husk_mux_init(&s->mux, s->vm.agent_fd, RT_AGENT_TIMEOUT_MS,
	                        err)) < 0)
		return rc;
	s->mux_ready = true;
	char user[32];
	snprintf(user, sizeof(user), "%u:%u", sp->proc.uid, sp->proc.gid);
	struct husk_run_request req = {
	    .container_id = s->c->id,
	    .root_device = root_device,
	    .pid_ns_of = pid_ns_of[0] ? pid_ns_of : NULL,
	    .readonly_root = sp->root_readonly,
	    .hostname = sp->hostname,
	    .argv = (const char *const *)sp->proc.args,
	    .env = (const char *const *)sp->proc.env,
	    .cwd = sp->proc.cwd,
	    .user = user,
	    .tty = sp->proc.terminal,
	    .open_stdin = true,
	    .rows = sp->proc.rows,
	    .cols = sp->proc.cols,
	    .memory_limit = sp->memory_limit,
	    .cpu_millis = sp->cpu_millis,
	    .pids_limit = sp->pids_limit,
	    .mounts = (const char *const *)vols.mounts,
	};
	rc = husk_mux_create(&s->mux, &req, in, out, errfd, err);
	husk_volumes_free(&vols);
	if (rc == -ECONNRESET && !s->host_agent && !s->pod[0]) {
		/* say why: a guest panic, a VMM error, the OOM killer */
		char why[1024];
		husk_vm_describe_end(&s->vm, s->dir, 2000, why, sizeof(why));
		husk_err(err, ECONNRESET, "the microVM's agent went away: %s",
		         why);
	}
	if (rc < 0)
		return rc;
	s->init_stream = (uint32_t)rc;
	return 0;
}

static int listen_ctl(struct sup *s, struct husk_error *err)
{
	int fd = rt_listen_in(s->dir, RT_CTL_SOCKET, SOCK_SEQPACKET, 16, err);
	if (fd < 0)
		return fd;
	s->listen_fd = fd;
	return 0;
}

static int stdio_fds(struct sup *s, int fds[3], struct husk_error *err)
{
	const struct rt_spec *sp = &s->c->spec;
	if (sp->proc.terminal) {
		if (!s->c->console_socket)
			return husk_err(
			    err, EINVAL,
			    "cannot allocate tty if runc will detach "
			    "without setting console socket");
		int slave;
		if (rt_open_console(s->c->console_socket, sp->proc.rows,
		                    sp->proc.cols, true, &slave, err) < 0)
			return -err->code;
		s->tty_fd = slave;
		fds[0] = fcntl(slave, F_DUPFD_CLOEXEC, 3);
		fds[1] = fds[2] = fds[0];
		return 0;
	}
	for (int i = 0; i < 3; i++)
		fds[i] = fcntl(i, F_DUPFD_CLOEXEC, 3);
	return 0;
}

static int supervisor_main(struct sup *s, int ready)
{
	struct husk_error err = {0};
	int fds[3] = {-1, -1, -1};
	sigset_t set;
	sigemptyset(&set);
	int sigs[] = {SIGTERM, SIGINT,  SIGHUP,   SIGQUIT,
	              SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&set, sigs[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	s->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	/* Known from the start, so that a delete while the VM still boots
	 * (its create killed, say) finds us and takes the VM down with us. */
	s->st.pid = getpid();
	s->st.pid_start = husk_proc_start_time(s->st.pid);
	int rc = rt_state_write(&s->st, &err);
	if (rc >= 0)
		rc = stdio_fds(s, fds, &err);
	if (rc >= 0)
		rc = create_container(s, fds[0], fds[1], fds[2], &err);
	else
		for (int i = 0; i < 3; i++)
			if (fds[i] >= 0 && (i == 0 || fds[i] != fds[i - 1]))
				close(fds[i]);
	if (rc >= 0)
		rc = listen_ctl(s, &err);
	if (rc >= 0) {
		s->st.status = RT_CREATED;
		rc = rt_state_write(&s->st, &err);
	}
	rt_report_ready(ready, rc < 0 ? &err : NULL);
	if (rc < 0) {
		sup_stop_vm(s);
		return 1;
	}
	/* Our own stdio must not hold the container's pipes open: their
	 * readers see EOF when the container's streams end. */
	int nul = open("/dev/null", O_RDWR);
	for (int i = 0; i < 3; i++)
		dup2(nul, i);
	if (nul > 2)
		close(nul);
	return sup_loop(s);
}

/* mkdir -p, as runc makes its --root */
static int mkdir_parents(const char *path)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0711) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0711) < 0 && errno != EEXIST ? -1 : 0;
}

int rt_supervise(struct rt_create *c, pid_t *pid, struct husk_error *err)
{
	char dir[PATH_MAX];
	if (rt_state_dir(c->id, dir, sizeof(dir), err) < 0)
		return -err->code;
	if (mkdir_parents(rt_g.root) < 0)
		return husk_err_errno(err, errno, "--root %s", rt_g.root);
	if (mkdir(dir, 0700) < 0)
		return errno == EEXIST
		           ? husk_err(err, EEXIST,
		                      "container with id exists: %s", c->id)
		           : husk_err_errno(err, errno, "%s", dir);
	struct sup s = {.c = c, .listen_fd = -1, .sig_fd = -1, .tty_fd = -1};
	snprintf(s.dir, sizeof(s.dir), "%s", dir);
	snprintf(s.st.id, sizeof(s.st.id), "%s", c->id);
	snprintf(s.st.bundle, sizeof(s.st.bundle), "%s", c->bundle);
	snprintf(s.st.rootfs, sizeof(s.st.rootfs), "%s", c->spec.root);
	snprintf(s.st.sandbox, sizeof(s.st.sandbox), "%s",
	         c->spec.sandbox_id ? c->spec.sandbox_id : "");
	rt_now_rfc3339(s.st.created, sizeof(s.st.created));
	s.st.status = RT_CREATING;
	s.vm.pid = -1;
	s.vm.agent_fd = -1;
	for (int i = 0; i < SUP_MAX_CLIENTS; i++)
		s.clients[i].fd = -1;
	if (rt_state_write(&s.st, err) < 0) {
		rt_state_remove(c->id);
		return -err->code;
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		rt_state_remove(c->id);
		return husk_err_errno(err, errno, "pipe");
	}
	pid_t child = fork();
	if (child < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		rt_state_remove(c->id);
		return husk_err_errno(err, e, "fork");
	}
	if (child == 0) {
		close(p[0]);
		setsid();
		_exit(supervisor_main(&s, p[1]));
	}
	close(p[1]);
	char msg[sizeof(err->msg)];
	bool ready = rt_read_ready(p[0], msg, sizeof(msg));
	close(p[0]);
	if (!ready) {
		waitpid(child, NULL, 0);
		rt_state_remove(c->id);
		return husk_err(err, EIO, "%s",
		                msg[0] ? msg
		                       : "the supervisor died during create");
	}
	*pid = child;
	return 0;
}
