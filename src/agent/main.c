/* husk-agent: PID 1 of a husk microVM, or (for tests) an ordinary host
 * process serving one connection on a unix socket.
 *
 *   husk-agent                      as /init of the guest initramfs
 *   husk-agent --listen PATH [--state-dir DIR] [--cgroup DIR]
 *   husk-agent --fd N        [--state-dir DIR] [--cgroup DIR]
 *
 * On the host the agent first moves into a mount namespace of its own,
 * so the containers' mounts never show on the host. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "net.h"
#include "process.h"
#include "session.h"

#define AGENT_PORT_NAME "husk.agent"
#define PORT_WAIT_MS    10000

static void say(const char *msg, const struct husk_error *e)
{
	fprintf(stderr, "husk-agent: %s%s%s\n", msg, e ? ": " : "",
	        e ? e->msg : "");
}

/* ---- guest mode ---- */

static void mount_one(const char *src, const char *dst, const char *type,
                      unsigned long flags, const char *data)
{
	mkdir(dst, 0755);
	if (mount(src, dst, type, flags, data) < 0 && errno != EBUSY)
		fprintf(stderr, "husk-agent: mount %s on %s: %s\n", type, dst,
		        strerror(errno));
}

static void guest_mounts(void)
{
	mount_one("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	          NULL);
	mount_one("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	          NULL);
	mount_one("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	mount_one("cgroup2", "/sys/fs/cgroup", "cgroup2",
	          MS_NOSUID | MS_NODEV | MS_NOEXEC, "nsdelegate");
	mount_one("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	mount_one("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
}

/* The virtio-console port the host named AGENT_PORT_NAME: its sysfs
 * entry says the name; devtmpfs made the node under the same name. */
static int find_port(char *dev, size_t cap)
{
	glob_t g;
	if (glob("/sys/class/virtio-ports/*/name", 0, NULL, &g) != 0)
		return -1;
	int found = -1;
	for (size_t i = 0; i < g.gl_pathc && found < 0; i++) {
		char name[128] = "";
		FILE *f = fopen(g.gl_pathv[i], "re");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f))
			name[strcspn(name, "\n")] = '\0';
		fclose(f);
		if (strcmp(name, AGENT_PORT_NAME))
			continue;
		const char *p =
		    g.gl_pathv[i] + strlen("/sys/class/virtio-ports/");
		const char *slash = strchr(p, '/');
		if (slash && snprintf(dev, cap, "/dev/%.*s", (int)(slash - p),
		                      p) < (int)cap)
			found = 0;
	}
	globfree(&g);
	return found;
}

static int open_port(void)
{
	char dev[256];
	for (int waited = 0; waited < PORT_WAIT_MS; waited += 10) {
		if (find_port(dev, sizeof(dev)) == 0) {
			int fd = open(dev, O_RDWR | O_CLOEXEC | O_NOCTTY);
			if (fd >= 0)
				return fd;
		}
		usleep(10000);
	}
	fprintf(stderr, "husk-agent: no virtio-console port named %s\n",
	        AGENT_PORT_NAME);
	return -1;
}

static void protect_self(void)
{
	/* The containers' memory limits must kill their processes, never
	 * the agent. */
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		(void)!write(fd, "-1000", 5);
		close(fd);
	}
}

/* The kernel starts us on the initramfs, which is the initial root
 * mount: pivot_root cannot leave it, so containers would sit in a chroot
 * on top of it, and a container keeping CAP_SYS_CHROOT could climb out
 * into the agent's view of the VM. Like switch_root, the agent therefore
 * moves itself onto a tmpfs that is an ordinary mount, frees the
 * initramfs and starts again from there. */
#define SWITCHED_ARG "--switched-root"

static int copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	int rc = in >= 0 && out >= 0 ? 0 : -1;
	char buf[65536];
	ssize_t n;
	while (rc == 0 && (n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0 || write(out, buf, (size_t)n) != n)
			rc = -1;
	}
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0)
		rc = -1;
	return rc;
}

static void leave_initramfs(void)
{
	if (mkdir("/newroot", 0755) < 0 && errno != EEXIST)
		return;
	if (mount("tmpfs", "/newroot", "tmpfs", 0, "mode=0755") < 0) {
		perror("husk-agent: mount the new root");
		return;
	}
	if (copy_file("/init", "/newroot/init") < 0 || unlink("/init") < 0 ||
	    chdir("/newroot") < 0 ||
	    mount("/newroot", "/", NULL, MS_MOVE, NULL) < 0 ||
	    chroot(".") < 0 || chdir("/") < 0) {
		perror("husk-agent: switch to the new root");
		return;
	}
	execl("/init", "init", SWITCHED_ARG, (char *)NULL);
	perror("husk-agent: exec the new root's init");
}

static __attribute__((noreturn)) int run_guest(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], SWITCHED_ARG) != 0) {
		leave_initramfs();
		/* still here: carry on from the initramfs */
	}
	guest_mounts();
	agent_net_setup();
	protect_self();
	struct husk_error e = {0};
	if (agent_spawn_init_self(&e) < 0)
		say("start", &e);
	struct agent_env env = {.host_mode = false,
	                        .state_dir = "/run/husk",
	                        .cgroup = "/sys/fs/cgroup/husk"};
	int chan = open_port();
	if (chan >= 0 && agent_serve(&env, chan, &e) < 0)
		say("session ended", &e);
	sync();
	/* reboot=k on the kernel command line: husk-vmm ends on the reset
	 * and QEMU's -no-reboot turns it into an exit. */
	reboot(RB_AUTOBOOT);
	for (;;)
		pause();
}

/* ---- host mode ---- */

static int listen_once(const char *path, struct husk_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return husk_err(err, ENAMETOOLONG, "socket path too long");
	strcpy(sa.sun_path, path);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return husk_err_errno(err, errno, "socket");
	unlink(path);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 1) < 0) {
		int e = errno;
		close(lfd);
		return husk_err_errno(err, e, "listen on %s", path);
	}
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	int e = errno;
	close(lfd);
	unlink(path);
	if (fd < 0)
		return husk_err_errno(err, e, "accept on %s", path);
	return fd;
}

static int private_mounts(struct husk_error *err)
{
	if (unshare(CLONE_NEWNS) < 0)
		return husk_err_errno(err, errno,
		                      "unshare the mount namespace");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return husk_err_errno(err, errno, "make mounts private");
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: husk-agent                 (as PID 1 of a husk "
	             "microVM)\n"
	             "       husk-agent --listen PATH | --fd N [--state-dir "
	             "DIR] [--cgroup DIR]\n");
}

static int run_host(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"fd", required_argument, NULL, 'f'},
	    {"state-dir", required_argument, NULL, 's'},
	    {"cgroup", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {0}};
	const char *listen_path = NULL;
	int fd = -1, c;
	struct agent_env env = {.host_mode = true,
	                        .state_dir = "/run/husk-agent"};
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'l': listen_path = optarg; break;
		case 'f':
			errno = 0;
			long v = strtol(optarg, &end, 10);
			if (errno || *end || v < 0 || v > 65535) {
				fprintf(stderr, "husk-agent: bad --fd '%s'\n",
				        optarg);
				return 2;
			}
			fd = (int)v;
			break;
		case 's': env.state_dir = optarg; break;
		case 'c': env.cgroup = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || (fd < 0) == !listen_path) {
		usage(stderr);
		return 2;
	}
	struct husk_error e = {0};
	if (private_mounts(&e) < 0 || agent_spawn_init_self(&e) < 0) {
		say("start", &e);
		return 1;
	}
	if (listen_path && (fd = listen_once(listen_path, &e)) < 0) {
		say("start", &e);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	int rc = agent_serve(&env, fd, &e);
	if (rc < 0) {
		say("session ended", &e);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (getpid() == 1)
		return run_guest(argc, argv);
	return run_host(argc, argv);
}
