/* PID 1 of husk-vmm's test guest (tests/bats/vmm.bats). It checks what the
 * VM gives it against expectations on the kernel command line, prints one
 * line per check, and then powers off through the husk power port when
 * every check passed, or reboots (a different husk-vmm exit status) when
 * one failed.
 *
 *   husk.cpus=N husk.mem_mib=M
 *   husk.action=check|share|reboot|poweroff|wait|bench
 *
 * The host side puts "HUSK-DISK-0" at the start of the first disk and
 * verifies, after the VM is gone, that "GUEST-WROTE-THIS" landed at offset
 * 4096; the second disk is read-only (and must stay unchanged); a console port
 * named "check" gets a line from the host and answers "guest-got:<line>".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define HUSK_POWER_PORT 0x4f0

static int failures;

/* Prints "CHECK ok:   what detail" or "CHECK FAIL: what detail". */
static void check(int ok, const char *what, const char *detail)
{
	printf("%s %s%s\n", ok ? "CHECK ok:  " : "CHECK FAIL:", what, detail);
	fflush(stdout);
	if (!ok)
		failures++;
}

static long param(const char *cmdline, const char *key, long def)
{
	const char *p = strstr(cmdline, key);
	return p ? strtol(p + strlen(key), NULL, 10) : def;
}

static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return (int)n;
}

static void count_virtio(int *blk, int *console, int *rng)
{
	DIR *d = opendir("/sys/bus/virtio/devices");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char path[300], id[32];
		snprintf(path, sizeof(path),
		         "/sys/bus/virtio/devices/%s/device", e->d_name);
		if (read_file(path, id, sizeof(id)) < 0)
			continue;
		long v = strtol(id, NULL, 16);
		*blk += v == 2;
		*console += v == 3;
		*rng += v == 4;
	}
	if (d)
		closedir(d);
}

static void check_disks(void)
{
	char buf[4096];
	int fd = open("/dev/vda", O_RDWR);
	check(fd >= 0, "open /dev/vda read-write", "");
	if (fd < 0)
		return;
	ssize_t n = pread(fd, buf, sizeof(buf), 0);
	check(n == sizeof(buf) && !memcmp(buf, "HUSK-DISK-0", 11),
	      "/dev/vda starts with the host's pattern", "");
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "GUEST-WROTE-THIS", 16);
	n = pwrite(fd, buf, sizeof(buf), 4096);
	check(n == sizeof(buf) && fsync(fd) == 0,
	      "write and flush 4 KiB at offset 4096 of /dev/vda", "");
	close(fd);

	char ro[8] = "";
	read_file("/sys/block/vdb/ro", ro, sizeof(ro));
	check(ro[0] == '1', "/dev/vdb is read-only in sysfs: ", ro);
	/* Linux may let the open succeed; the write itself must fail. */
	fd = open("/dev/vdb", O_RDWR);
	memset(buf, 'X', 512);
	errno = 0;
	n = fd >= 0 ? pwrite(fd, buf, 512, 0) : -1;
	check(n < 0, "/dev/vdb refuses writes: ", strerror(errno));
	if (fd >= 0)
		close(fd);
	fd = open("/dev/vdb", O_RDONLY);
	n = fd >= 0 ? pread(fd, buf, 512, 0) : -1;
	check(n == 512 && !memcmp(buf, "HUSK-DISK-1", 11),
	      "/dev/vdb is readable", "");
	if (fd >= 0)
		close(fd);
}

static void check_rng(void)
{
	unsigned char buf[64] = {0};
	int fd = open("/dev/hwrng", O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
	int nonzero = 0;
	for (ssize_t i = 0; i < n; i++)
		nonzero |= buf[i];
	check(n > 0 && nonzero, "/dev/hwrng gives entropy", "");
	if (fd >= 0)
		close(fd);
	char cur[64] = "";
	read_file("/sys/class/misc/hw_random/rng_current", cur, sizeof(cur));
	check(strstr(cur, "virtio") != NULL, "hw_random source is ", cur);
}

static void check_port(void)
{
	char dev[300] = "";
	DIR *d = opendir("/sys/class/virtio-ports");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char path[300], name[80];
		snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name",
		         e->d_name);
		if (read_file(path, name, sizeof(name)) > 0 &&
		    !strncmp(name, "check\n", 6))
			snprintf(dev, sizeof(dev), "/dev/%s", e->d_name);
	}
	if (d)
		closedir(d);
	check(dev[0] != '\0', "console port named check: ", dev);
	if (!dev[0])
		return;
	int fd = open(dev, O_RDWR);
	char line[256], reply[300];
	size_t got = 0;
	while (fd >= 0 && got < sizeof(line) - 1) {
		ssize_t n = read(fd, line + got, 1);
		if (n <= 0 || line[got] == '\n')
			break;
		got++;
	}
	line[got] = '\0';
	check(got > 0, "read a line from the host: ", line);
	int len = snprintf(reply, sizeof(reply), "guest-got:%s\n", line);
	check(fd >= 0 && write(fd, reply, (size_t)len) == len,
	      "answered the host", "");
	if (fd >= 0)
		close(fd);
}

/* husk.action=share (tests/vmm/run-share.sh): virtio-9p shares "rw" and
 * "ro" (read-only). The host put from-host.txt in both and a symlink
 * "escape" -> "/" in rw; it checks afterwards that from-guest.txt and
 * big.bin arrived in rw, renamed.txt replaced tmp.txt, and ro is unchanged.
 */
static void check_shares(void)
{
	const char *opts = "trans=virtio,version=9p2000.L";
	char buf[256];
	mkdir("/mnt", 0755);
	mkdir("/mnt/rw", 0755);
	mkdir("/mnt/ro", 0755);
	int rc = mount("rw", "/mnt/rw", "9p", 0, opts);
	check(rc == 0, "mount 9p rw", rc ? strerror(errno) : "");
	rc = mount("ro", "/mnt/ro", "9p", MS_RDONLY, opts);
	check(rc == 0, "mount 9p ro", rc ? strerror(errno) : "");
	int n = read_file("/mnt/rw/from-host.txt", buf, sizeof(buf));
	check(n > 0 && !strncmp(buf, "HOST-WROTE-THIS", 15),
	      "read the host's file: ", n > 0 ? buf : strerror(errno));

	int fd =
	    open("/mnt/rw/from-guest.txt", O_WRONLY | O_CREAT | O_TRUNC, 0640);
	check(fd >= 0 && write(fd, "GUEST-WROTE-THIS\n", 17) == 17 &&
	          fsync(fd) == 0,
	      "write a file into the share", "");
	if (fd >= 0)
		close(fd);
	/* 1 MiB in 64 KiB writes, then read back: many full-msize
	 * requests. */
	static char big[65536], back[65536];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + (i >> 10));
	fd = open("/mnt/rw/big.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
	int ok = fd >= 0;
	for (int i = 0; ok && i < 16; i++)
		ok = write(fd, big, sizeof(big)) == (ssize_t)sizeof(big);
	for (int i = 0; ok && i < 16; i++)
		ok = pread(fd, back, sizeof(back),
		           (off_t)i * (off_t)sizeof(back)) ==
		         (ssize_t)sizeof(back) &&
		     !memcmp(big, back, sizeof(big));
	check(ok, "write and read back 1 MiB", "");
	if (fd >= 0)
		close(fd);

	fd = open("/mnt/rw/tmp.txt", O_WRONLY | O_CREAT, 0644);
	if (fd >= 0)
		close(fd);
	rc =
	    mkdir("/mnt/rw/newdir", 0755) == 0 &&
	            rename("/mnt/rw/tmp.txt", "/mnt/rw/newdir/renamed.txt") == 0
	        ? 0
	        : errno;
	check(rc == 0, "mkdir and rename in the share", rc ? strerror(rc) : "");
	ssize_t l = readlink("/mnt/rw/escape", buf, sizeof(buf) - 1);
	buf[l > 0 ? l : 0] = '\0';
	check(l == 1 && buf[0] == '/', "a symlink reads as itself: ", buf);
	int seen = 0;
	DIR *d = opendir("/mnt/rw");
	struct dirent *e;
	while (d && (e = readdir(d)))
		seen += !strcmp(e->d_name, "from-host.txt") ||
		        !strcmp(e->d_name, "newdir");
	if (d)
		closedir(d);
	check(seen == 2, "readdir lists the share", "");

	n = read_file("/mnt/ro/from-host.txt", buf, sizeof(buf));
	check(n > 0 && !strncmp(buf, "HOST-RO", 7), "read the read-only share",
	      "");
	errno = 0;
	fd = open("/mnt/ro/new.txt", O_WRONLY | O_CREAT, 0644);
	check(fd < 0 && errno == EROFS,
	      "the read-only share refuses a new file: ", strerror(errno));
	/* Past the guest's own MS_RDONLY: remount it writable; the device
	 * must still refuse. */
	mount(NULL, "/mnt/ro", NULL, MS_REMOUNT, opts);
	errno = 0;
	fd = open("/mnt/ro/from-host.txt", O_WRONLY | O_TRUNC);
	int werr = errno;
	if (fd >= 0) {
		werr = write(fd, "X", 1) < 0 ? errno : 0;
		close(fd);
	}
	check(werr != 0,
	      "the device refuses writes on the ro share: ", strerror(werr));
	sync();
	check(umount("/mnt/rw") == 0 && umount("/mnt/ro") == 0,
	      "unmount both shares", "");
}

int main(void)
{
	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mkdir("/dev", 0755);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	int con = open("/dev/console", O_RDWR);
	if (con >= 0) {
		dup2(con, 1);
		dup2(con, 2);
	}
	char cmdline[2048] = "";
	read_file("/proc/cmdline", cmdline, sizeof(cmdline));
	long cpus = param(cmdline, "husk.cpus=", 1);
	long mem = param(cmdline, "husk.mem_mib=", 0);
	const char *action = strstr(cmdline, "husk.action=");
	action = action ? action + 12 : "check";

	if (!strncmp(action, "bench", 5)) {
		/* bench/boot times the VMM from its start to this line. */
		printf("HUSK-BENCH-INIT\n");
		fflush(stdout);
		sleep(1); /* the host samples the VMM's memory meanwhile */
		reboot(RB_AUTOBOOT);
		return 1;
	}
	if (!strncmp(action, "wait", 4)) {
		for (;;)
			pause();
	}
	if (!strncmp(action, "reboot", 6)) {
		reboot(RB_AUTOBOOT);
		return 1;
	}
	if (!strncmp(action, "share", 5)) {
		check_shares();
		printf("GUEST-CHECK: %s\n", failures ? "FAIL" : "PASS");
		fflush(stdout);
		tcdrain(1);
		sync();
		if (failures) {
			reboot(RB_AUTOBOOT);
			return 1;
		}
	}
	if (!strncmp(action, "check", 5)) {
		char v[64];
		snprintf(v, sizeof(v), "%ld", sysconf(_SC_NPROCESSORS_ONLN));
		check(sysconf(_SC_NPROCESSORS_ONLN) == cpus,
		      "CPUs online: ", v);
		long total = sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE);
		snprintf(v, sizeof(v), "%ld MiB", total >> 20);
		check(total > (mem << 20) * 8 / 10 && total <= (mem << 20),
		      "memory: ", v);
		int blk = 0, console = 0, rng = 0;
		count_virtio(&blk, &console, &rng);
		snprintf(v, sizeof(v), "%d blk, %d console, %d rng", blk,
		         console, rng);
		check(blk == 2 && console == 1 && rng == 1,
		      "virtio devices: ", v);
		check_disks();
		check_rng();
		check_port();
		printf("GUEST-CHECK: %s\n", failures ? "FAIL" : "PASS");
		fflush(stdout);
		/* The console driver sends queued bytes later, by interrupt:
		 * wait until they are out, or the power-off cuts them. */
		tcdrain(1);
		sync();
		if (failures) {
			reboot(RB_AUTOBOOT);
			return 1;
		}
	}
	/* poweroff (and a passing check): the husk power port. */
	if (ioperm(HUSK_POWER_PORT, 1, 1) == 0)
		outb(0, HUSK_POWER_PORT);
	printf("GUEST-CHECK: power port failed: %s\n", strerror(errno));
	reboot(RB_AUTOBOOT);
	return 1;
}
