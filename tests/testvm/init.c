/* PID 1 of the KVM-capable test machine (see docs/testing.md).
 *
 * The host's root arrives read-only over virtio-9p (tag "hostroot") and the
 * job directory read-write (tag "job"). We put a tmpfs overlay over the
 * host root so tests may write anywhere without touching the host, chroot
 * into it, run the job script the host wrapper wrote, record its exit
 * status in the job directory and power off by triple fault (the kernel is
 * booted with reboot=t and QEMU with -no-reboot, so QEMU exits).
 *
 * The kernel command line carries husk.job=<host path of the job dir>.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define NEWROOT "/newroot"
#define P9_OPTS "trans=virtio,version=9p2000.L,msize=262144"

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "testvm-init: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static void power_off(void)
{
	sync();
	reboot(RB_AUTOBOOT);
	for (;;)
		pause();
}

static void die(const char *what)
{
	say("%s: %s", what, strerror(errno));
	power_off();
}

static void must_mount(const char *src, const char *dst, const char *type,
                       unsigned long flags, const char *data)
{
	mkdir(dst, 0755);
	if (mount(src, dst, type, flags, data) < 0) {
		say("mount %s on %s (%s)", src, dst, type);
		die("mount");
	}
}

static void console_setup(void)
{
	int fd = open("/dev/console", O_RDWR);
	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
	/* The host reads our output as a byte stream: no \n -> \r\n. */
	struct termios t;
	if (tcgetattr(1, &t) == 0) {
		t.c_oflag &= ~(tcflag_t)OPOST;
		tcsetattr(1, TCSANOW, &t);
	}
}

/* Reads husk.job=PATH from /proc/cmdline into buf. */
static int job_dir(char *buf, size_t len)
{
	char cmdline[4096];
	int fd = open("/proc/cmdline", O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, cmdline, sizeof(cmdline) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	cmdline[n] = '\0';
	for (char *tok = strtok(cmdline, " \n"); tok;
	     tok = strtok(NULL, " \n")) {
		if (!strncmp(tok, "husk.job=", 9) && tok[9] == '/') {
			snprintf(buf, len, "%s", tok + 9);
			return 0;
		}
	}
	return -1;
}

static void loopback_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		die("lo");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		die("lo up");
	close(s);
}

static void enter_overlay_root(const char *job)
{
	must_mount("hostroot", "/lower", "9p", MS_RDONLY,
	           P9_OPTS ",cache=loose");
	must_mount("tmpfs", "/rw", "tmpfs", 0, "mode=0755");
	mkdir("/rw/upper", 0755);
	mkdir("/rw/work", 0755);
	must_mount("overlay", NEWROOT, "overlay", 0,
	           "lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work");
	char jobmnt[4200];
	snprintf(jobmnt, sizeof(jobmnt), NEWROOT "%s", job);
	/* The job dir exists on the host, hence in the lower layer. */
	if (mount("job", jobmnt, "9p", 0, P9_OPTS) < 0)
		die("mount job dir");
	if (chdir(NEWROOT) < 0 || chroot(".") < 0 || chdir("/") < 0)
		die("chroot");
	must_mount("proc", "/proc", "proc", 0, NULL);
	must_mount("sysfs", "/sys", "sysfs", 0, NULL);
	must_mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, NULL);
	must_mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	must_mount("devpts", "/dev/pts", "devpts", 0,
	           "newinstance,ptmxmode=0666,mode=0620");
	must_mount("shm", "/dev/shm", "tmpfs", 0, "mode=1777");
	must_mount("tmpfs", "/run", "tmpfs", 0, "mode=0755");
	symlink("/proc/self/fd", "/dev/fd");
	unlink("/dev/ptmx");
	symlink("pts/ptmx", "/dev/ptmx");
}

static void write_status(const char *job, int code)
{
	char tmp[4200], final[4200];
	snprintf(tmp, sizeof(tmp), "%s/status.tmp", job);
	snprintf(final, sizeof(final), "%s/status", job);
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, "%d\n", code) < 0 || fclose(f) != 0 ||
	    rename(tmp, final) < 0)
		say("cannot record the exit status: %s", strerror(errno));
}

/* Every HEARTBEAT_S seconds, as long as this machine's clock runs, the
 * file job/heartbeat is rewritten. The emulated nested SVM now and then
 * freezes the whole machine (docs/testing.md); scripts/testvm tells that
 * from a slow test by the heartbeat stopping. Killed with everything
 * else at the end. */
#define HEARTBEAT_S 5
static void start_heartbeat(const char *job)
{
	if (fork() != 0)
		return;
	prctl(PR_SET_NAME, "heartbeat"); /* for tests to find */
	char path[4200];
	snprintf(path, sizeof(path), "%s/heartbeat", job);
	for (unsigned n = 0;; n++) {
		int fd =
		    open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dprintf(fd, "%u\n", n);
			close(fd);
		}
		sleep(HEARTBEAT_S);
	}
}

/* Runs the job and reaps every orphan that is reparented to us meanwhile;
 * returns the job's status in shell form (128+N for signal N). */
static int run_job(const char *job)
{
	char script[4200];
	snprintf(script, sizeof(script), "%s/job.sh", job);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		setsid();
		ioctl(0, TIOCSCTTY, 0);
		execl("/bin/bash", "bash", script, (char *)NULL);
		say("exec /bin/bash %s: %s", script, strerror(errno));
		_exit(127);
	}
	for (;;) {
		int status;
		pid_t got = wait(&status);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			die("wait");
		if (got != pid)
			continue;
		if (WIFEXITED(status))
			return WEXITSTATUS(status);
		return 128 + WTERMSIG(status);
	}
}

int main(void)
{
	mkdir("/dev", 0755);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	console_setup();
	must_mount("proc", "/proc", "proc", 0, NULL);
	char job[4096];
	if (job_dir(job, sizeof(job)) < 0) {
		say("no husk.job=/PATH on the kernel command line");
		power_off();
	}
	umount("/proc");
	enter_overlay_root(job);
	loopback_up();
	sethostname("husk-testvm", 11);

	start_heartbeat(job);
	int code = run_job(job);
	write_status(job, code);
	/* Stop stragglers (daemons a test started) before the job share goes.
	 */
	kill(-1, SIGKILL);
	while (wait(NULL) > 0 || errno == EINTR)
		;
	umount2(job, MNT_DETACH);
	power_off();
	return 0;
}
