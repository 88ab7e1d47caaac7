/* husk run: a container in a fresh microVM, with the user's stdio,
 * terminal, signals and exit status. Exit statuses as Docker's: 125 when
 * husk fails, 126/127 when the command cannot run, else the container's. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "husk/agent_client.h"
#include "husk/run_options.h"
#include "husk/vm_backend.h"
#include "husk/volumes.h"
#include "run_plan.h"

#define ROOT_SERIAL     "husk-root"
#define DEFAULT_VM_MIB  256
#define VM_MIB_HEADROOM 96 /* the guest kernel and agent beside a limit */
#define VM_EXIT_WAIT_MS 5000

static void random_id(char *id, size_t cap)
{
	unsigned char b[32];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, b, sizeof(b)) != (ssize_t)sizeof(b)) {
		/* time and pid still make a unique enough name for one host */
		unsigned long long t = (unsigned long long)time(NULL) ^
		                       ((unsigned long long)getpid() << 32);
		memcpy(b, &t, sizeof(t));
		memset(b + sizeof(t), 0x5a, sizeof(b) - sizeof(t));
	}
	if (fd >= 0)
		close(fd);
	for (size_t i = 0; i < sizeof(b) && 2 * i + 2 < cap; i++)
		snprintf(id + 2 * i, 3, "%02x", b[i]);
}

struct terminal {
	int fd;
	bool raw;
	struct termios saved;
};

static void terminal_raw(struct terminal *t)
{
	if (t->fd < 0 || tcgetattr(t->fd, &t->saved) < 0)
		return;
	struct termios raw = t->saved;
	cfmakeraw(&raw);
	if (tcsetattr(t->fd, TCSANOW, &raw) == 0)
		t->raw = true;
}

static void terminal_restore(struct terminal *t)
{
	if (t->raw)
		tcsetattr(t->fd, TCSANOW, &t->saved);
	t->raw = false;
}

/* The signals a user sends to `husk run` go to the container, as
 * `docker run`'s --sig-proxy does; SIGWINCH resizes its terminal. */
static int proxy_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	int sigs[] = {SIGWINCH, SIGINT,  SIGTERM, SIGHUP,
	              SIGQUIT,  SIGUSR1, SIGUSR2};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&set, sigs[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

static int connect_unix(const char *path, struct husk_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return husk_err(err, ENAMETOOLONG, "--connect path too long");
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return husk_err_errno(err, errno, "socket");
	/* The agent may still be starting up. */
	for (int i = 0; i < 200; i++) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		if (errno != ENOENT && errno != ECONNREFUSED)
			break;
		usleep(25000);
	}
	int e = errno;
	close(fd);
	return husk_err_errno(err, e, "connect to the agent at %s", path);
}

/* -v: the container's volumes (husk/volumes.h); a host agent (--connect)
 * bind-mounts the directories itself. */
static int map_volumes(const struct husk_run_options *o, struct husk_volumes *v,
                       struct husk_error *err)
{
	for (size_t i = 0; i < o->nvolumes; i++) {
		const struct husk_run_volume *vol = &o->volumes[i];
		int rc = husk_volumes_add_dir(v, vol->host, vol->container,
		                              vol->readonly, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

struct vm_run {
	char run_dir[PATH_MAX];
	struct husk_vm vm;
	bool started;
};

static unsigned vm_memory_mib(const struct husk_run_options *o)
{
	unsigned mib = DEFAULT_VM_MIB;
	uint64_t want = o->memory / (1u << 20) + VM_MIB_HEADROOM;
	if (o->memory && want > mib)
		mib = want > 65536 ? 65536 : (unsigned)want;
	return mib;
}

/* Whether each published host port can be bound now, so that a port in
 * use fails here with a clear message, before a VM boots. SO_REUSEADDR as
 * the VMMs' listeners use it: a port left in TIME_WAIT is free. */
static int check_ports_free(const struct husk_run_options *o,
                            struct husk_error *err)
{
	for (size_t i = 0; i < o->nports; i++) {
		const struct husk_run_port *p = &o->ports[i];
		struct sockaddr_in sa = {.sin_family = AF_INET,
		                         .sin_port = htons(p->host_port)};
		if (p->host_ip[0])
			inet_pton(AF_INET, p->host_ip, &sa.sin_addr);
		int fd = socket(
		    AF_INET, (p->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC,
		    0);
		if (fd < 0)
			return husk_err_errno(err, errno, "socket");
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		int e = errno;
		close(fd);
		const char *ip = p->host_ip[0] ? p->host_ip : "0.0.0.0";
		const char *proto = p->udp ? "/udp" : "";
		if (rc < 0 && e == EADDRINUSE)
			return husk_err(err, e,
			                "port %s:%u%s is already in use", ip,
			                p->host_port, proto);
		if (rc < 0)
			return husk_err_errno(err, e,
			                      "cannot publish port %s:%u%s", ip,
			                      p->host_port, proto);
	}
	return 0;
}

static int start_vm(const struct husk_run_options *o, const char *disk_path,
                    const struct husk_volumes *vols, struct vm_run *r,
                    struct husk_error *err)
{
	enum husk_vmm want = HUSK_VMM_AUTO, got;
	bool qemu_kvm = false;
	char notice[512] = "";
	if (o->vmm && husk_vmm_parse(o->vmm, &want, err) < 0)
		return -err->code;
	if (husk_vm_choose(want, &got, &qemu_kvm, notice, sizeof(notice), err) <
	    0)
		return -err->code;
	if (notice[0])
		fprintf(stderr, "%s\n", notice);
	char kernel[PATH_MAX], initrd[PATH_MAX], vmm[PATH_MAX];
	if (husk_vm_find_assets(kernel, initrd, vmm, PATH_MAX, err) < 0)
		return -err->code;
	const char *tmp = getenv("TMPDIR");
	snprintf(r->run_dir, sizeof(r->run_dir), "%s/husk-run-XXXXXX",
	         tmp && tmp[0] ? tmp : "/tmp");
	if (!mkdtemp(r->run_dir))
		return husk_err_errno(err, errno, "create a run directory");
	struct husk_vm_disk disk = {
	    .path = disk_path, .readonly = true, .serial = ROOT_SERIAL};
	struct husk_vm_portfwd fwd[o->nports ? o->nports : 1];
	for (size_t i = 0; i < o->nports; i++)
		fwd[i] = (struct husk_vm_portfwd){
		    .udp = o->ports[i].udp,
		    .host_ip = o->ports[i].host_ip,
		    .host_port = o->ports[i].host_port,
		    .guest_port = o->ports[i].container_port};
	unsigned cpus = o->cpu_millis ? (o->cpu_millis + 999) / 1000 : 1;
	struct husk_vm_config c = {
	    .vmm = got,
	    .qemu_kvm = qemu_kvm,
	    .kernel = kernel,
	    .initrd = initrd,
	    .memory_mib = vm_memory_mib(o),
	    .cpus = cpus > 32 ? 32 : cpus,
	    .disks = &disk,
	    .ndisks = 1,
	    .run_dir = r->run_dir,
	    .husk_vmm_path = vmm,
	    .debug = o->debug,
	    .net = o->network_none  ? HUSK_VM_NET_NONE
	           : o->network_tap ? HUSK_VM_NET_TAP
	                            : HUSK_VM_NET_USER,
	    .ports = fwd,
	    .nports = o->nports,
	    .tap_bridge = o->tap_bridge,
	    .tap_ifname = o->tap_ifname,
	    .tap_guest_ip = o->ip,
	    .tap_gateway = o->gateway,
	    .tap_dns = o->dns,
	    .shares = vols->shares,
	    .nshares = vols->nshares,
	};
	if (husk_vm_start(&c, &r->vm, err) < 0)
		return -err->code;
	r->started = true;
	return 0;
}

/* The last lines of the guest's console, for an error message. */
static void print_console_tail(const char *path)
{
	char tail[8 * 260];
	if (husk_log_tail(path, 8, "\n  ", tail, sizeof(tail)))
		fprintf(stderr,
		        "husk: the guest's last console lines (%s):\n  %s\n",
		        path, tail);
}

static void remove_tree(const char *dir)
{
	char path[PATH_MAX + 32];
	const char *names[] = {HUSK_VM_CONSOLE_LOG, HUSK_VM_VMM_LOG,
	                       "agent.sock"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

static void stop_vm(struct vm_run *r, bool failed, bool debug)
{
	if (!r->started)
		return;
	int status = 0;
	struct husk_error e = {0};
	/* The agent powers the VM off after SHUTDOWN; do not wait forever. */
	for (int waited = 0; waited < VM_EXIT_WAIT_MS; waited += 20) {
		if (waitpid(r->vm.pid, &status, WNOHANG) == r->vm.pid) {
			r->vm.pid = -1;
			break;
		}
		usleep(20000);
	}
	husk_vm_wait(&r->vm, true, &status, &e);
	if (failed)
		print_console_tail(r->vm.console_log);
	if (debug || failed)
		fprintf(stderr, "husk: the VM's logs are in %s\n", r->run_dir);
	else
		remove_tree(r->run_dir);
}

static int exit_code(const struct husk_run_result *res)
{
	if (res->start_error[0])
		fprintf(stderr, "husk: %s\n", res->start_error);
	return res->exit_code;
}

int cmd_run(int argc, char **argv)
{
	struct husk_run_options o;
	struct husk_error err = {0};
	/* --pod is the CLI's own (the pod store is the CLI's), not libhusk's */
	const char *pod;
	if (cli_take_pod_option(&argc, argv, &pod) < 0)
		return HUSK_EXIT_USAGE;
	if (husk_run_parse(argc, argv, &o, &err) < 0) {
		husk_run_options_free(&o);
		if (err.code == EAGAIN) {
			fputs(husk_run_usage, stdout);
			fputs("      --pod POD           run in the pod's "
			      "microVM "
			      "(husk pod create)\n",
			      stdout);
			return 0;
		}
		fprintf(stderr, "husk run: %s\n", err.msg);
		return HUSK_EXIT_USAGE;
	}
	if (o.detach || pod) {
		int rc = cli_run_via_runtime(&o, pod);
		husk_run_options_free(&o);
		return rc;
	}
	if (o.image && o.connect) {
		fprintf(stderr, "husk run: --connect takes --rootfs, not an "
		                "image\n");
		husk_run_options_free(&o);
		return HUSK_EXIT_USAGE;
	}
	if (!o.connect && check_ports_free(&o, &err) < 0) {
		fprintf(stderr, "husk run: %s\n", err.msg);
		husk_run_options_free(&o);
		return HUSK_EXIT_USAGE;
	}
	char id[65] = "";
	if (o.name)
		snprintf(id, sizeof(id), "%s", o.name);
	else
		random_id(id, sizeof(id));
	struct run_plan plan;
	int prc = o.image ? run_plan_image(&o, id, true, &plan, &err)
	                  : run_plan_rootfs(&o, !o.connect, &plan, &err);
	if (prc < 0) {
		fprintf(stderr, "husk run: %s\n", err.msg);
		run_plan_done(&plan, id);
		husk_run_options_free(&o);
		return HUSK_EXIT_USAGE;
	}
	struct terminal term = {.fd = -1};
	if (o.tty && isatty(STDIN_FILENO))
		term.fd = STDIN_FILENO;
	else if (o.tty && isatty(STDOUT_FILENO))
		term.fd = STDOUT_FILENO;
	struct winsize ws = {0};
	if (term.fd >= 0)
		ioctl(term.fd, TIOCGWINSZ, &ws);
	/* A host agent (--connect) takes the directory itself. */
	char rootdir[PATH_MAX] = "";
	if (o.connect && o.rootfs && !realpath(o.rootfs, rootdir)) {
		fprintf(stderr, "husk run: --rootfs %s: %s\n", o.rootfs,
		        strerror(errno));
		run_plan_done(&plan, id);
		husk_run_options_free(&o);
		return HUSK_EXIT_USAGE;
	}
	struct husk_volumes vols = {.host_agent = o.connect != NULL};
	if (map_volumes(&o, &vols, &err) < 0) {
		fprintf(stderr, "husk run: %s\n", err.msg);
		husk_volumes_free(&vols);
		run_plan_done(&plan, id);
		husk_run_options_free(&o);
		return HUSK_EXIT_USAGE;
	}
	struct husk_run_request req = {
	    .container_id = id,
	    .mounts = (const char *const *)vols.mounts,
	    .root_device = o.connect ? rootdir : "serial:" ROOT_SERIAL,
	    .readonly_root = o.read_only,
	    .hostname = o.hostname,
	    .argv = (const char *const *)plan.argv,
	    .env = (const char *const *)plan.env,
	    .cwd = plan.cwd,
	    .user = plan.user,
	    .tty = o.tty,
	    .open_stdin = o.interactive,
	    .rows = ws.ws_row,
	    .cols = ws.ws_col,
	    .memory_limit = o.memory,
	    .cpu_millis = o.cpu_millis,
	    .pids_limit = o.pids_limit,
	};
	int sig_fd = proxy_signals();
	struct husk_run_io io = {.in_fd = STDIN_FILENO,
	                         .out_fd = STDOUT_FILENO,
	                         .err_fd = STDERR_FILENO,
	                         .sig_fd = sig_fd,
	                         .tty_fd = term.fd};
	signal(SIGPIPE, SIG_IGN);
	struct vm_run vr = {0};
	int chan = -1, rc;
	if (o.connect)
		rc = chan = connect_unix(o.connect, &err);
	else if ((rc = start_vm(&o, plan.disk, &vols, &vr, &err)) >= 0)
		chan = vr.vm.agent_fd;
	struct husk_run_result res = {0};
	if (rc >= 0) {
		if (o.tty && o.interactive)
			terminal_raw(&term);
		rc = husk_agent_run(chan, &req, &io, 0, &res, &err);
		terminal_restore(&term);
	}
	if (o.connect && chan >= 0)
		close(chan);
	stop_vm(&vr, rc < 0, o.debug);
	husk_volumes_free(&vols);
	run_plan_done(&plan, id);
	husk_run_options_free(&o);
	if (sig_fd >= 0)
		close(sig_fd);
	if (rc < 0) {
		fprintf(stderr, "husk run: %s\n", err.msg);
		return HUSK_EXIT_USAGE;
	}
	return exit_code(&res);
}
