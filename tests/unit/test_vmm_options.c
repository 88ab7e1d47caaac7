/* husk-vmm's command line: vmm_parse_options over argv arrays built here
 * (copies, since getopt_long permutes argv and the parser writes into
 * --disk and --port arguments), and vmm_build_cmdline. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "husk/error.h"
#include "../../src/vmm/options.h"

#define MAX_ARGS  64
#define MAX_ARGVS 128

struct fx {
	struct vmm_options opt;
	struct husk_error e;
	/* every argv handed to the parser, kept until teardown because
	 * opt points into them */
	char **argvs[MAX_ARGVS];
	unsigned nargvs;
	char tmpdir[64];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	const char *dir = getenv("TMPDIR");
	snprintf(f->tmpdir, sizeof(f->tmpdir), "%s/husk-opt-XXXXXX",
	         dir && strlen(dir) < 32 ? dir : "/tmp");
	if (!mkdtemp(f->tmpdir))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	for (unsigned i = 0; i < f->nargvs; i++) {
		for (char **a = f->argvs[i]; *a; a++)
			free(*a);
		free(f->argvs[i]);
	}
	char path[128];
	snprintf(path, sizeof(path), "%s/console.log", f->tmpdir);
	unlink(path);
	rmdir(f->tmpdir);
	free(f);
	return 0;
}

/* Parses "husk-vmm" followed by argc strings from args. */
static int parse_v(struct fx *f, int argc, const char *const *args)
{
	assert_true(f->nargvs < MAX_ARGVS);
	assert_true(argc < MAX_ARGS);
	char **argv = calloc((size_t)argc + 2, sizeof(char *));
	assert_non_null(argv);
	argv[0] = strdup("husk-vmm");
	for (int i = 0; i < argc; i++) {
		argv[i + 1] = strdup(args[i]);
		assert_non_null(argv[i + 1]);
	}
	f->argvs[f->nargvs++] = argv;
	memset(&f->e, 0, sizeof(f->e));
	memset(&f->opt, 0xa5, sizeof(f->opt));
	return vmm_parse_options(argc + 1, argv, &f->opt, &f->e);
}

/* parse(f, "--kernel", "k", NULL) */
static int parse(struct fx *f, ...)
{
	const char *args[MAX_ARGS];
	int n = 0;
	va_list ap;
	va_start(ap, f);
	const char *a;
	while ((a = va_arg(ap, const char *))) {
		assert_true(n < MAX_ARGS);
		args[n++] = a;
	}
	va_end(ap);
	return parse_v(f, n, args);
}

/* The last command line parsed, for failure messages. */
static const char *last_args(struct fx *f)
{
	static char line[1024];
	size_t used = 0;
	line[0] = '\0';
	for (char **a = f->argvs[f->nargvs - 1] + 1; *a && used < sizeof(line);
	     a++)
		used += (size_t)snprintf(line + used, sizeof(line) - used,
		                         "[%s] ", *a);
	return line;
}

/* The parse failed with -code and a message mentioning what. */
static void assert_rejected(struct fx *f, int rc, int code, const char *what)
{
	if (rc != -code)
		fail_msg("%s: rc %d, not %d (message '%s')", last_args(f), rc,
		         -code, f->e.msg);
	assert_int_equal(f->e.code, code);
	if (!strstr(f->e.msg, what))
		fail_msg("message '%s' lacks '%s'", f->e.msg, what);
}

#define REJECTED(f, what, ...)                                                 \
	assert_rejected(f, parse(f, __VA_ARGS__, NULL), EINVAL, what)

static void defaults(void **state)
{
	struct fx *f = *state;
	assert_int_equal(parse(f, "--kernel", "vmlinux", NULL), 0);
	assert_string_equal(f->opt.kernel, "vmlinux");
	assert_null(f->opt.initrd);
	assert_string_equal(f->opt.cmdline, VMM_DEFAULT_CMDLINE);
	assert_int_equal(f->opt.memory_mib, 256);
	assert_int_equal(f->opt.cpus, 1);
	assert_int_equal(f->opt.console_fd, STDOUT_FILENO);
	assert_null(f->opt.console_path);
	assert_null(f->opt.control);
	assert_false(f->opt.debug);
	assert_false(f->opt.rng);
	assert_true(f->opt.seccomp);
	assert_int_equal(f->opt.ndisks, 0);
	assert_int_equal(f->opt.nports, 0);
	assert_int_equal(f->e.code, 0);
}

static void every_option(void **state)
{
	struct fx *f = *state;
	assert_int_equal(
	    parse(f, "--kernel", "/k/bzImage", "--initrd", "/k/initrd.cpio",
	          "--cmdline", "console=hvc0 ro", "--memory", "1024", "--cpus",
	          "4", "--disk", "/d/root.img,ro", "--disk",
	          "/d/data.img,serial=data-1", "--port",
	          "agent=unix:/run/agent.sock", "--port", "log.out_2=fd:3",
	          "--rng", "--control", "/run/ctl.sock", "--no-seccomp",
	          "--debug", NULL),
	    0);
	assert_string_equal(f->opt.kernel, "/k/bzImage");
	assert_string_equal(f->opt.initrd, "/k/initrd.cpio");
	assert_string_equal(f->opt.cmdline, "console=hvc0 ro");
	assert_int_equal(f->opt.memory_mib, 1024);
	assert_int_equal(f->opt.cpus, 4);
	assert_int_equal(f->opt.ndisks, 2);
	assert_string_equal(f->opt.disks[0].path, "/d/root.img");
	assert_true(f->opt.disks[0].read_only);
	assert_null(f->opt.disks[0].serial);
	assert_string_equal(f->opt.disks[1].path, "/d/data.img");
	assert_false(f->opt.disks[1].read_only);
	assert_string_equal(f->opt.disks[1].serial, "data-1");
	assert_int_equal(f->opt.nports, 2);
	assert_string_equal(f->opt.ports[0].name, "agent");
	assert_string_equal(f->opt.ports[0].socket, "/run/agent.sock");
	assert_int_equal(f->opt.ports[0].fd, -1);
	assert_string_equal(f->opt.ports[1].name, "log.out_2");
	assert_null(f->opt.ports[1].socket);
	assert_int_equal(f->opt.ports[1].fd, 3);
	assert_true(f->opt.rng);
	assert_string_equal(f->opt.control, "/run/ctl.sock");
	assert_false(f->opt.seccomp);
	assert_true(f->opt.debug);
	assert_int_equal(f->opt.console_fd, STDOUT_FILENO);
}

static void option_forms(void **state)
{
	struct fx *f = *state;
	/* --opt=value, options after the kernel, repeats: the last wins. */
	assert_int_equal(parse(f, "--cpus=2", "--kernel=a", "--memory=32",
	                       "--kernel", "b", "--cpus", "32", NULL),
	                 0);
	assert_string_equal(f->opt.kernel, "b");
	assert_int_equal(f->opt.cpus, 32);
	assert_int_equal(f->opt.memory_mib, 32);
	/* The limits themselves. */
	assert_int_equal(parse(f, "--kernel", "k", "--memory", "1048576",
	                       "--cpus", "1", NULL),
	                 0);
	assert_int_equal(f->opt.memory_mib, 1048576);
	assert_int_equal(f->opt.cpus, 1);
	/* Leading zeros are still decimal. */
	assert_int_equal(
	    parse(f, "--kernel", "k", "--memory", "0064", "--cpus", "08", NULL),
	    0);
	assert_int_equal(f->opt.memory_mib, 64);
	assert_int_equal(f->opt.cpus, 8);
	/* An empty command line is a command line. */
	assert_int_equal(parse(f, "--kernel", "k", "--cmdline", "", NULL), 0);
	assert_string_equal(f->opt.cmdline, "");
	/* "--" ends the options; nothing may follow. */
	assert_int_equal(parse(f, "--kernel", "k", "--", NULL), 0);
}

static void disk_forms(void **state)
{
	struct fx *f = *state;
	assert_int_equal(parse(f, "--kernel", "k", "--disk",
	                       "a.img,serial=12345678901234567890,ro", "--disk",
	                       "b.img,ro,ro", "--disk", "c.img,", NULL),
	                 0);
	assert_int_equal(f->opt.ndisks, 3);
	/* A serial of exactly 20 bytes: virtio-blk's ID field. */
	assert_string_equal(f->opt.disks[0].serial, "12345678901234567890");
	assert_true(f->opt.disks[0].read_only);
	assert_string_equal(f->opt.disks[1].path, "b.img");
	assert_true(f->opt.disks[1].read_only);
	assert_string_equal(f->opt.disks[2].path, "c.img");
	assert_false(f->opt.disks[2].read_only);
	assert_null(f->opt.disks[2].serial);

	/* As many as allowed. */
	const char *args[2 + 2 * VMM_MAX_DISKS];
	int n = 0;
	args[n++] = "--kernel";
	args[n++] = "k";
	for (int i = 0; i < VMM_MAX_DISKS; i++) {
		args[n++] = "--disk";
		args[n++] = "d.img";
	}
	assert_int_equal(parse_v(f, n, args), 0);
	assert_int_equal(f->opt.ndisks, VMM_MAX_DISKS);
}

static void port_forms(void **state)
{
	struct fx *f = *state;
	char name64[80];
	memset(name64, 'n', 64);
	strcpy(name64 + 64, "=fd:2147483647");
	assert_int_equal(parse(f, "--kernel", "k", "--port", name64, "--port",
	                       "x=unix:a=b:c", "--port", "Z-9=fd:0", NULL),
	                 0);
	assert_int_equal(f->opt.nports, 3);
	assert_int_equal(strlen(f->opt.ports[0].name), 64);
	assert_int_equal(f->opt.ports[0].fd, 2147483647);
	/* Only the first '=' splits name from target. */
	assert_string_equal(f->opt.ports[1].name, "x");
	assert_string_equal(f->opt.ports[1].socket, "a=b:c");
	assert_string_equal(f->opt.ports[2].name, "Z-9");
	assert_int_equal(f->opt.ports[2].fd, 0);
	assert_null(f->opt.ports[2].socket);

	const char *args[2 + 2 * VMM_MAX_PORTS];
	char names[VMM_MAX_PORTS][16];
	int n = 0;
	args[n++] = "--kernel";
	args[n++] = "k";
	for (int i = 0; i < VMM_MAX_PORTS; i++) {
		snprintf(names[i], sizeof(names[i]), "p%d=fd:%d", i, i + 3);
		args[n++] = "--port";
		args[n++] = names[i];
	}
	assert_int_equal(parse_v(f, n, args), 0);
	assert_int_equal(f->opt.nports, VMM_MAX_PORTS);
	assert_int_equal(f->opt.ports[VMM_MAX_PORTS - 1].fd, VMM_MAX_PORTS + 2);
}

static void serial_log(void **state)
{
	struct fx *f = *state;
	char path[128];
	snprintf(path, sizeof(path), "%s/console.log", f->tmpdir);
	assert_int_equal(parse(f, "--kernel", "k", "--serial-log", path, NULL),
	                 0);
	assert_string_equal(f->opt.console_path, path);
	assert_true(f->opt.console_fd > STDERR_FILENO);
	/* Opened for appending, close-on-exec, and created. */
	int fl = fcntl(f->opt.console_fd, F_GETFL);
	assert_true(fl >= 0);
	assert_int_equal(fl & O_ACCMODE, O_WRONLY);
	assert_true(fl & O_APPEND);
	assert_true(fcntl(f->opt.console_fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(write(f->opt.console_fd, "hi", 2), 2);
	close(f->opt.console_fd);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 2);
	/* Appends to what is there. */
	assert_int_equal(parse(f, "--serial-log", path, "--kernel", "k", NULL),
	                 0);
	assert_int_equal(write(f->opt.console_fd, "!", 1), 1);
	close(f->opt.console_fd);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 3);

	/* A path that cannot be opened. */
	snprintf(path, sizeof(path), "%s/no/such/dir/log", f->tmpdir);
	assert_rejected(f,
	                parse(f, "--kernel", "k", "--serial-log", path, NULL),
	                ENOENT, "--serial-log");
	/* A bad command line opens nothing. */
	snprintf(path, sizeof(path), "%s/console.log", f->tmpdir);
	unlink(path);
	REJECTED(f, "--cpus", "--serial-log", path, "--cpus", "0", "--kernel",
	         "k");
	REJECTED(f, "--kernel", "--serial-log", path);
	assert_int_equal(access(path, F_OK), -1);
}

static void help(void **state)
{
	struct fx *f = *state;
	/* The usage goes to stdout: catch it in a file. */
	char path[128];
	snprintf(path, sizeof(path), "%s/console.log", f->tmpdir);
	int out = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(out >= 0);
	fflush(stdout);
	int saved = dup(STDOUT_FILENO);
	assert_true(saved >= 0);
	assert_int_equal(dup2(out, STDOUT_FILENO), STDOUT_FILENO);
	int r1 = parse(f, "--help", NULL);
	int r2 = parse(f, "--kernel", "k", "--help", "--cpus", "0", NULL);
	int r3 = parse(f, "--help", "stray", NULL);
	fflush(stdout);
	assert_int_equal(dup2(saved, STDOUT_FILENO), STDOUT_FILENO);
	close(saved);
	assert_int_equal(r1, 1);
	assert_int_equal(r2, 1);
	assert_int_equal(r3, 1);
	char buf[8192] = {0};
	ssize_t n = pread(out, buf, sizeof(buf) - 1, 0);
	close(out);
	assert_true(n > 0);
	assert_non_null(strstr(buf, "usage: husk-vmm --kernel PATH"));
	assert_non_null(strstr(buf, "--disk PATH"));
	assert_non_null(strstr(buf, VMM_DEFAULT_CMDLINE));
}

static void missing_kernel(void **state)
{
	struct fx *f = *state;
	REJECTED(f, "--kernel is required", "--cpus", "2");
	assert_rejected(f, parse(f, NULL), EINVAL, "--kernel is required");
	/* --kernel without its argument. */
	REJECTED(f, "--kernel", "--kernel");
	REJECTED(f, "--kernel", "--cpus", "2", "--kernel");
}

static void bad_cpus(void **state)
{
	struct fx *f = *state;
	const char *bad[] = {"0",
	                     "33",
	                     "abc",
	                     "-1",
	                     "",
	                     "+1",
	                     "1x",
	                     "x1",
	                     "2 ",
	                     " 2",
	                     "0x4",
	                     "4294967297",
	                     "1e1",
	                     "3.0",
	                     "-0",
	                     "18446744073709551617",
	                     " -18446744073709551615"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		REJECTED(f, "--cpus", "--kernel", "k", "--cpus", bad[i]);
	REJECTED(f, "--cpus", "--cpus");
}

static void bad_memory(void **state)
{
	struct fx *f = *state;
	const char *bad[] = {"31",
	                     "0",
	                     "1048577",
	                     "64M",
	                     "64 ",
	                     " 64",
	                     "\t64",
	                     "",
	                     "-64",
	                     "+64",
	                     "0x40",
	                     "1G",
	                     "18446744073709551616",
	                     "99999999999999999999999",
	                     " -18446744073709551551"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		REJECTED(f, "--memory", "--kernel", "k", "--memory", bad[i]);
}

static void bad_disks(void **state)
{
	struct fx *f = *state;
	REJECTED(f, "--disk needs a path", "--kernel", "k", "--disk", "");
	REJECTED(f, "--disk needs a path", "--kernel", "k", "--disk", ",");
	/* Options but no path: not a file named "ro". */
	REJECTED(f, "--disk", "--kernel", "k", "--disk", ",ro");
	REJECTED(f, "--disk", "--kernel", "k", "--disk", ",serial=x");
	const char *bad[] = {
	    "d.img,rw",
	    "d.img,RO",
	    "d.img,readonly",
	    "d.img,serial",
	    "d.img,ro,cache=none",
	    "d.img,serial=123456789012345678901", /* 21 bytes */
	    "d.img,serial=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "d.img, ro",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		REJECTED(f, "--disk", "--kernel", "k", "--disk", bad[i]);
	/* One too many. */
	const char *args[4 + 2 * VMM_MAX_DISKS];
	int n = 0;
	args[n++] = "--kernel";
	args[n++] = "k";
	for (int i = 0; i <= VMM_MAX_DISKS; i++) {
		args[n++] = "--disk";
		args[n++] = "d.img";
	}
	assert_rejected(f, parse_v(f, n, args), E2BIG, "disks");
}

static void bad_ports(void **state)
{
	struct fx *f = *state;
	char long_name[80];
	memset(long_name, 'n', 65);
	strcpy(long_name + 65, "=fd:3");
	const struct {
		const char *arg, *what;
	} bad[] = {
	    /* no '=' */
	    {"agent", "NAME=unix:PATH"},
	    {"agent:unix:/x", "NAME=unix:PATH"},
	    {"", "NAME=unix:PATH"},
	    /* bad names */
	    {"=unix:/x", "NAME=unix:PATH"},
	    {"a b=unix:/x", "name"},
	    {"a/b=unix:/x", "name"},
	    {"a:b=fd:3", "name"},
	    {"\xc3\xa9=fd:3", "name"},
	    {"a\n=fd:3", "name"},
	    {long_name, "longer than 64"},
	    /* bad targets */
	    {"a=", "bad target"},
	    {"a=unix:", "bad target"},
	    {"a=unix", "bad target"},
	    {"a=UNIX:/x", "bad target"},
	    {"a=tcp:127.0.0.1:1", "bad target"},
	    {"a=/x", "bad target"},
	    {"a=fd:", "bad target"},
	    {"a=fd", "bad target"},
	    {"a=fd:x", "bad target"},
	    {"a=fd:-1", "bad target"},
	    {"a=fd:+3", "bad target"},
	    {"a=fd: 3", "bad target"},
	    {"a=fd:3x", "bad target"},
	    {"a=fd:0x3", "bad target"},
	    {"a=fd:2147483648", "bad target"},
	    {"a=fd:99999999999999999999", "bad target"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		REJECTED(f, bad[i].what, "--kernel", "k", "--port", bad[i].arg);

	/* The same name twice, anywhere in the list. */
	REJECTED(f, "given twice", "--kernel", "k", "--port", "a=fd:3",
	         "--port", "b=fd:4", "--port", "a=unix:/x");
	REJECTED(f, "given twice", "--port", "p=fd:3", "--port", "p=fd:3",
	         "--kernel", "k");
	/* Names differing in case are different names. */
	assert_int_equal(parse(f, "--kernel", "k", "--port", "a=fd:3", "--port",
	                       "A=fd:4", NULL),
	                 0);

	/* One too many. */
	const char *args[4 + 2 * VMM_MAX_PORTS];
	char names[VMM_MAX_PORTS + 1][16];
	int n = 0;
	args[n++] = "--kernel";
	args[n++] = "k";
	for (int i = 0; i <= VMM_MAX_PORTS; i++) {
		snprintf(names[i], sizeof(names[i]), "p%d=fd:3", i);
		args[n++] = "--port";
		args[n++] = names[i];
	}
	assert_rejected(f, parse_v(f, n, args), E2BIG, "ports");
}

static void stray_and_unknown(void **state)
{
	struct fx *f = *state;
	REJECTED(f, "unexpected argument 'stray'", "--kernel", "k", "stray");
	REJECTED(f, "unexpected argument 'stray'", "stray", "--kernel", "k");
	REJECTED(f, "unexpected argument 'after'", "--kernel", "k", "--",
	         "after");
	REJECTED(f, "'--bogus'", "--kernel", "k", "--bogus");
	REJECTED(f, "'--bogus=1'", "--bogus=1", "--kernel", "k");
	REJECTED(f, "'-k'", "-k", "vmlinux");
	REJECTED(f, "'--rng=yes'", "--kernel", "k", "--rng=yes");
	REJECTED(f, "'--memory'", "--kernel", "k", "--memory");
	/* A prefix of one option only is taken as it, as getopt does. */
	assert_int_equal(parse(f, "--kern", "k", "--no-sec", NULL), 0);
	assert_string_equal(f->opt.kernel, "k");
	assert_false(f->opt.seccomp);
	/* An ambiguous prefix is not. */
	REJECTED(f, "'--c'", "--kernel", "k", "--c", "x");
}

static void parses_are_independent(void **state)
{
	struct fx *f = *state;
	/* A parse that stops inside a group of short options must not
	 * leave getopt's state to the next parse. */
	REJECTED(f, "'-x'", "-xy", "--kernel", "k");
	assert_int_equal(parse(f, "--kernel", "k", NULL), 0);
	assert_string_equal(f->opt.kernel, "k");
	/* Nor does a parse that stopped half way. */
	REJECTED(f, "--cpus", "a", "--cpus", "0", "--kernel", "k", "b");
	assert_int_equal(parse(f, "--kernel", "k2", NULL), 0);
	assert_string_equal(f->opt.kernel, "k2");
	assert_int_equal(f->opt.cpus, 1);
}

/* ---- vmm_build_cmdline ---- */

static void build_cmdline(void **state)
{
	struct fx *f = *state;
	struct vmm_options opt = {.cmdline = "console=ttyS0 quiet"};
	const struct vmm_mmio_slot slots[] = {
	    {0xd0000000ULL, 5}, {0xd0001000ULL, 6}, {0xd0002000ULL, 10}};
	const char want[] = "console=ttyS0 quiet"
	                    " virtio_mmio.device=4K@0xd0000000:5"
	                    " virtio_mmio.device=4K@0xd0001000:6"
	                    " virtio_mmio.device=4K@0xd0002000:10";
	char buf[512];
	memset(buf, 'z', sizeof(buf));
	assert_int_equal(
	    vmm_build_cmdline(&opt, slots, 3, buf, sizeof(buf), &f->e), 0);
	assert_string_equal(buf, want);

	/* No devices: the command line alone. */
	assert_int_equal(
	    vmm_build_cmdline(&opt, slots, 0, buf, sizeof(buf), &f->e), 0);
	assert_string_equal(buf, "console=ttyS0 quiet");

	/* An address above 4 GiB is written whole. */
	const struct vmm_mmio_slot high = {0x1000000000ULL, 33};
	assert_int_equal(
	    vmm_build_cmdline(&opt, &high, 1, buf, sizeof(buf), &f->e), 0);
	assert_string_equal(
	    buf, "console=ttyS0 quiet virtio_mmio.device=4K@0x1000000000:33");

	/* Exactly fits (with its NUL), one byte short. */
	assert_int_equal(
	    vmm_build_cmdline(&opt, slots, 3, buf, sizeof(want), &f->e), 0);
	assert_string_equal(buf, want);
	memset(&f->e, 0, sizeof(f->e));
	assert_int_equal(
	    vmm_build_cmdline(&opt, slots, 3, buf, sizeof(want) - 1, &f->e),
	    -E2BIG);
	assert_int_equal(f->e.code, E2BIG);
	assert_non_null(strstr(f->e.msg, "longer than"));
	/* Whatever is in buf then is still a terminated string. */
	assert_true(strlen(buf) < sizeof(want) - 1);

	/* Too long already before the devices, or because of many. */
	memset(&f->e, 0, sizeof(f->e));
	assert_int_equal(vmm_build_cmdline(&opt, slots, 0, buf, 10, &f->e),
	                 -E2BIG);
	char big[4096];
	memset(big, 'c', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	opt.cmdline = big;
	char out[4096];
	assert_int_equal(
	    vmm_build_cmdline(&opt, slots, 0, out, sizeof(out), &f->e), 0);
	assert_int_equal(
	    vmm_build_cmdline(&opt, slots, 1, out, sizeof(out), &f->e), -E2BIG);
	struct vmm_mmio_slot many[200];
	for (unsigned i = 0; i < 200; i++)
		many[i] =
		    (struct vmm_mmio_slot){0xd0000000ULL + 0x1000 * i, 5 + i};
	opt.cmdline = "console=ttyS0";
	assert_int_equal(
	    vmm_build_cmdline(&opt, many, 200, out, sizeof(out), &f->e),
	    -E2BIG);
	assert_int_equal(
	    vmm_build_cmdline(&opt, many, 100, out, sizeof(out), &f->e), 0);
	assert_non_null(strstr(out, " virtio_mmio.device=4K@0xd0063000:104"));
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(defaults),
	    T(every_option),
	    T(option_forms),
	    T(disk_forms),
	    T(port_forms),
	    T(serial_log),
	    T(help),
	    T(missing_kernel),
	    T(bad_cpus),
	    T(bad_memory),
	    T(bad_disks),
	    T(bad_ports),
	    T(stray_and_unknown),
	    T(parses_are_independent),
	    T(build_cmdline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
