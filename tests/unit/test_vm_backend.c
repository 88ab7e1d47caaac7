#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "husk/vm_backend.h"
#include "scratch.h"

static const struct husk_vm_disk two_disks[] = {
    {.path = "/img/root.erofs", .readonly = true, .serial = "rootfs"},
    {.path = "/img/scratch,1.raw", .readonly = false, .serial = NULL},
};

static struct husk_vm_config base_config(enum husk_vmm vmm)
{
	return (struct husk_vm_config){
	    .vmm = vmm,
	    .kernel = "/k/vmlinux",
	    .initrd = "/k/agent.cpio",
	    .cmdline_extra = "husk.x=1",
	    .memory_mib = 256,
	    .cpus = 2,
	    .disks = two_disks,
	    .ndisks = 1,
	    .run_dir = "/run/husk/c1",
	    .husk_vmm_path = "/opt/husk/bin/husk-vmm",
	};
}

static char **argv_of(const struct husk_vm_config *c, int fd)
{
	char **argv = NULL;
	struct husk_error e = {0};
	int rc = husk_vm_argv(c, fd, &argv, &e);
	if (rc != 0)
		fail_msg("husk_vm_argv: %s", e.msg);
	return argv;
}

/* Whether argv has `opt` immediately followed by `value`. */
static bool has_pair(char **argv, const char *opt, const char *value)
{
	for (size_t i = 0; argv[i] && argv[i + 1]; i++)
		if (!strcmp(argv[i], opt) && !strcmp(argv[i + 1], value))
			return true;
	return false;
}

static bool has_arg(char **argv, const char *arg)
{
	for (size_t i = 0; argv[i]; i++)
		if (!strcmp(argv[i], arg))
			return true;
	return false;
}

static void parse_names(void **state)
{
	enum husk_vmm v = HUSK_VMM_QEMU;
	struct husk_error e = {0};
	assert_int_equal(husk_vmm_parse("auto", &v, &e), 0);
	assert_int_equal(v, HUSK_VMM_AUTO);
	assert_int_equal(husk_vmm_parse("husk", &v, &e), 0);
	assert_int_equal(v, HUSK_VMM_HUSK);
	assert_int_equal(husk_vmm_parse("qemu", &v, &e), 0);
	assert_int_equal(v, HUSK_VMM_QEMU);
	assert_string_equal(husk_vmm_name(HUSK_VMM_HUSK), "husk");
	assert_string_equal(husk_vmm_name(HUSK_VMM_QEMU), "qemu");
	assert_string_equal(husk_vmm_name(HUSK_VMM_AUTO), "auto");
}

static void parse_errors(void **state)
{
	enum husk_vmm v = HUSK_VMM_QEMU;
	struct husk_error e = {0};
	const char *bad[] = {"", "QEMU", "kvm", "husk-vmm", "qemu "};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(husk_vmm_parse(bad[i], &v, &e), -EINVAL);
		assert_non_null(strstr(e.msg, "husk, qemu or auto"));
	}
	assert_int_equal(husk_vmm_parse(NULL, &v, &e), -EINVAL);
	assert_int_equal(v, HUSK_VMM_QEMU); /* untouched */
}

static struct husk_kvm_report report(enum husk_kvm_kind kind,
                                     const char *module, const char *detail)
{
	struct husk_kvm_report r = {.kind = kind};
	snprintf(r.vendor_module, sizeof(r.vendor_module), "%s", module);
	snprintf(r.detail, sizeof(r.detail), "%s", detail);
	return r;
}

static void auto_picks_husk_on_hardware(void **state)
{
	struct husk_kvm_report r = report(HUSK_KVM_HARDWARE, "kvm_intel", "");
	enum husk_vmm got = HUSK_VMM_AUTO;
	bool kvm = true;
	char notice[200] = "stale";
	struct husk_error e = {0};
	assert_int_equal(husk_vm_choose_for(HUSK_VMM_AUTO, &r, &got, &kvm,
	                                    notice, sizeof(notice), &e),
	                 0);
	assert_int_equal(got, HUSK_VMM_HUSK);
	assert_false(kvm);
	assert_string_equal(notice, "");
	/* Explicit choices on hardware. */
	assert_int_equal(husk_vm_choose_for(HUSK_VMM_QEMU, &r, &got, &kvm,
	                                    notice, sizeof(notice), &e),
	                 0);
	assert_int_equal(got, HUSK_VMM_QEMU);
	assert_true(kvm);
	assert_string_equal(notice, "");
	assert_int_equal(husk_vm_choose_for(HUSK_VMM_HUSK, &r, &got, &kvm,
	                                    notice, sizeof(notice), &e),
	                 0);
	assert_int_equal(got, HUSK_VMM_HUSK);
}

static void auto_falls_back_to_tcg(void **state)
{
	struct husk_kvm_report r = report(HUSK_KVM_PVM, "kvm_pvm", "int3");
	enum husk_vmm got = HUSK_VMM_AUTO;
	bool kvm = true;
	char notice[200] = "";
	struct husk_error e = {0};
	assert_int_equal(husk_vm_choose_for(HUSK_VMM_AUTO, &r, &got, &kvm,
	                                    notice, sizeof(notice), &e),
	                 0);
	assert_int_equal(got, HUSK_VMM_QEMU);
	assert_false(kvm);
	assert_string_equal(notice, "husk: /dev/kvm is pvm (module kvm_pvm): "
	                            "using qemu with TCG emulation (slow)");

	r = report(HUSK_KVM_NONE, "", "/dev/kvm: No such file or directory");
	kvm = true;
	assert_int_equal(husk_vm_choose_for(HUSK_VMM_QEMU, &r, &got, &kvm,
	                                    notice, sizeof(notice), &e),
	                 0);
	assert_int_equal(got, HUSK_VMM_QEMU);
	assert_false(kvm);
	assert_non_null(strstr(notice, "no usable /dev/kvm"));
	assert_non_null(strstr(notice, "No such file"));
	assert_non_null(strstr(notice, "TCG"));

	r = report(HUSK_KVM_UNUSABLE, "", "API version 11");
	assert_int_equal(husk_vm_choose_for(HUSK_VMM_AUTO, &r, &got, &kvm,
	                                    notice, sizeof(notice), &e),
	                 0);
	assert_int_equal(got, HUSK_VMM_QEMU);
	assert_non_null(strstr(notice, "unusable (API version 11)"));
}

static void husk_refused_without_hardware(void **state)
{
	struct husk_kvm_report r = report(HUSK_KVM_PVM, "kvm_pvm", "int3");
	enum husk_vmm got = HUSK_VMM_AUTO;
	bool kvm = false;
	char notice[200] = "";
	struct husk_error e = {0};
	assert_int_equal(husk_vm_choose_for(HUSK_VMM_HUSK, &r, &got, &kvm,
	                                    notice, sizeof(notice), &e),
	                 -ENODEV);
	assert_int_equal(got, HUSK_VMM_AUTO);
	assert_string_equal(e.msg, "husk-vmm needs hardware KVM, and here "
	                           "/dev/kvm is pvm (module kvm_pvm); use the "
	                           "qemu backend (TCG emulation, slow)");
	assert_non_null(strstr(e.msg, "pvm"));
	assert_non_null(strstr(e.msg, "qemu"));
}

static void choose_probes_this_host(void **state)
{
	/* Whatever this host is, AUTO resolves to a concrete backend. */
	enum husk_vmm got = HUSK_VMM_AUTO;
	bool kvm = false;
	char notice[300];
	struct husk_error e = {0};
	assert_int_equal(husk_vm_choose(HUSK_VMM_AUTO, &got, &kvm, notice,
	                                sizeof(notice), &e),
	                 0);
	assert_true(got == HUSK_VMM_HUSK || got == HUSK_VMM_QEMU);
	if (got == HUSK_VMM_QEMU)
		assert_non_null(strstr(notice, "TCG"));
}

static void husk_vmm_argv_exact(void **state)
{
	struct husk_vm_config c = base_config(HUSK_VMM_HUSK);
	struct husk_vm_disk disks[] = {
	    {.path = "/img/root.erofs", .readonly = true, .serial = "rootfs"},
	    {.path = "/img/data.raw", .readonly = false, .serial = NULL},
	};
	c.disks = disks;
	c.ndisks = 2;
	char **argv = argv_of(&c, 3);
	const char *expect[] = {
	    "/opt/husk/bin/husk-vmm",
	    "--kernel",
	    "/k/vmlinux",
	    "--initrd",
	    "/k/agent.cpio",
	    "--cmdline",
	    "console=ttyS0 reboot=k panic=-1 quiet husk.x=1",
	    "--memory",
	    "256",
	    "--cpus",
	    "2",
	    "--disk",
	    "/img/root.erofs,ro,serial=rootfs",
	    "--disk",
	    "/img/data.raw",
	    "--port",
	    "husk.agent=fd:3",
	    "--rng",
	    "--serial-log",
	    "/run/husk/c1/console.log",
	    NULL,
	};
	for (size_t i = 0; expect[i] || argv[i]; i++) {
		if (!expect[i] || !argv[i])
			fail_msg("argv length differs at %zu", i);
		assert_string_equal(argv[i], expect[i]);
	}
	husk_vm_argv_free(argv);
}

static void husk_vmm_argv_variants(void **state)
{
	struct husk_vm_config c = base_config(HUSK_VMM_HUSK);
	c.cmdline_extra = NULL;
	c.debug = true;
	c.ndisks = 0;
	char **argv = argv_of(&c, 7);
	assert_true(has_pair(argv, "--cmdline",
	                     "console=ttyS0 reboot=k "
	                     "panic=-1"));
	assert_true(has_pair(argv, "--port", "husk.agent=fd:7"));
	assert_true(has_arg(argv, "--debug"));
	assert_false(has_arg(argv, "--disk"));
	husk_vm_argv_free(argv);

	argv = argv_of(&c, -1); /* no agent port */
	assert_false(has_arg(argv, "--port"));
	husk_vm_argv_free(argv);
}

static void net_argv(void **state)
{
	struct husk_vm_config c = base_config(HUSK_VMM_HUSK);
	struct husk_vm_portfwd ports[] = {
	    {.host_ip = "127.0.0.1", .host_port = 18080, .guest_port = 8080},
	    {.udp = true, .host_port = 5353, .guest_port = 53},
	};
	/* No network: no NIC, nothing on the command line. */
	char **argv = argv_of(&c, 3);
	assert_false(has_arg(argv, "--net"));
	husk_vm_argv_free(argv);

	c.net = HUSK_VM_NET_USER;
	c.ports = ports;
	c.nports = 2;
	argv = argv_of(&c, 3);
	assert_true(has_pair(argv, "--net",
	                     "user,hostfwd=tcp:127.0.0.1:18080-:8080,"
	                     "hostfwd=udp::5353-:53"));
	assert_true(has_pair(argv, "--cmdline",
	                     "console=ttyS0 reboot=k panic=-1 quiet husk.x=1 "
	                     "husk.net=10.0.2.15/24,10.0.2.2,10.0.2.3"));
	husk_vm_argv_free(argv);

	c.vmm = HUSK_VMM_QEMU;
	argv = argv_of(&c, 3);
	assert_true(has_pair(argv, "-netdev",
	                     "user,id=n0,hostfwd=tcp:127.0.0.1:18080-:8080,"
	                     "hostfwd=udp::5353-:53"));
	assert_true(has_pair(argv, "-device", "virtio-net-device,netdev=n0"));
	husk_vm_argv_free(argv);

	/* Bad forwards, and forwards without a network, are refused. */
	struct husk_error e = {0};
	ports[0].host_ip = "localhost";
	assert_int_equal(husk_vm_argv(&c, 3, &argv, &e), -EINVAL);
	ports[0].host_ip = NULL;
	ports[1].guest_port = 0;
	assert_int_equal(husk_vm_argv(&c, 3, &argv, &e), -EINVAL);
	ports[1].guest_port = 53;
	c.net = HUSK_VM_NET_NONE;
	assert_int_equal(husk_vm_argv(&c, 3, &argv, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "user network"));
	c.net = HUSK_VM_NET_TAP;
	c.tap_bridge = "br-husk";
	c.tap_guest_ip = "10.88.0.2/24";
	assert_int_equal(husk_vm_argv(&c, 3, &argv, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "user network"));
}

/* A tap: the VMM inherits it as descriptor 4, the MAC comes from the
 * guest's address, the agent learns address, gateway and DNS (empty when
 * not given). */
static void tap_argv(void **state)
{
	struct husk_vm_config c = base_config(HUSK_VMM_HUSK);
	c.cmdline_extra = NULL;
	c.net = HUSK_VM_NET_TAP;
	c.tap_bridge = "br-husk";
	c.tap_guest_ip = "10.88.0.2/24";
	char **argv = argv_of(&c, 3);
	assert_true(has_pair(argv, "--net", "tap,fd=4,mac=52:54:0a:58:00:02"));
	assert_true(has_pair(argv, "--cmdline",
	                     "console=ttyS0 reboot=k panic=-1 quiet "
	                     "husk.net=10.88.0.2/24,,"));
	husk_vm_argv_free(argv);

	c.tap_gateway = "10.88.0.1";
	c.tap_dns = "9.9.9.9";
	c.vmm = HUSK_VMM_QEMU;
	argv = argv_of(&c, 3);
	assert_true(has_pair(argv, "-netdev", "tap,id=n0,fd=4"));
	assert_true(has_pair(argv, "-device",
	                     "virtio-net-device,netdev=n0,mac=52:54:0a:58:00:"
	                     "02"));
	assert_true(has_pair(argv, "-append",
	                     "console=ttyS0 reboot=k panic=-1 quiet "
	                     "husk.net=10.88.0.2/24,10.88.0.1,9.9.9.9"));
	husk_vm_argv_free(argv);

	static const struct {
		const char *bridge, *ip, *gw, *dns, *msg;
	} bad[] = {
	    {NULL, "10.88.0.2/24", NULL, NULL, "bridge"},
	    {"br0", NULL, NULL, NULL, "--ip"},
	    {"br0", "10.88.0.2", NULL, NULL, "prefix"},
	    {"br0", "10.88.0.2/31", NULL, NULL, "prefix"},
	    {"br0", "10.88.0.0/24", NULL, NULL, "network or broadcast"},
	    {"br0", "10.88.0.255/24", NULL, NULL, "network or broadcast"},
	    {"br0", "10.88.0.2/24", "10.89.0.1", NULL, "subnet"},
	    {"br0", "10.88.0.2/24", "10.88.0.2", NULL, "subnet"},
	    {"br0", "10.88.0.2/24", "gw", NULL, "IPv4"},
	    {"br0", "10.88.0.2/24", NULL, "dns.example", "IPv4"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct husk_error e = {0};
		c.tap_bridge = bad[i].bridge;
		c.tap_guest_ip = bad[i].ip;
		c.tap_gateway = bad[i].gw;
		c.tap_dns = bad[i].dns;
		if (husk_vm_argv(&c, 3, &argv, &e) != -EINVAL ||
		    !strstr(e.msg, bad[i].msg))
			fail_msg("case %zu: '%s'", i, e.msg);
	}
}

static void qemu_argv(void **state)
{
	struct husk_vm_config c = base_config(HUSK_VMM_QEMU);
	c.ndisks = 2;
	char **argv = argv_of(&c, 3);
	assert_string_equal(argv[0], "qemu-system-x86_64");
	assert_true(has_pair(argv, "-M",
	                     "microvm,x-option-roms=off,isa-serial=on,rtc=off,"
	                     "acpi=off,memory-backend=mem"));
	assert_true(
	    has_pair(argv, "-object", "memory-backend-memfd,id=mem,size=256M"));
	assert_true(has_pair(argv, "-m", "256"));
	assert_true(has_pair(argv, "-smp", "2"));
	assert_true(has_pair(argv, "-accel", "tcg"));
	assert_true(has_pair(argv, "-cpu", "max"));
	assert_false(has_arg(argv, "-enable-kvm"));
	assert_true(has_arg(argv, "-nodefaults"));
	assert_true(has_arg(argv, "-no-user-config"));
	assert_true(has_arg(argv, "-no-reboot"));
	assert_true(has_pair(argv, "-display", "none"));
	assert_true(has_pair(argv, "-serial", "file:/run/husk/c1/console.log"));
	assert_true(has_pair(argv, "-kernel", "/k/vmlinux"));
	assert_true(has_pair(argv, "-initrd", "/k/agent.cpio"));
	assert_true(has_pair(argv, "-append",
	                     "console=ttyS0 reboot=k "
	                     "panic=-1 quiet husk.x=1"));
	assert_true(has_pair(argv, "-drive",
	                     "id=d0,file=/img/root.erofs,format=raw,if=none,"
	                     "readonly=on"));
	assert_true(has_pair(argv, "-device",
	                     "virtio-blk-device,drive=d0,serial=rootfs"));
	/* A comma in a path is doubled, QEMU's escape. */
	assert_true(has_pair(argv, "-drive",
	                     "id=d1,file=/img/scratch,,1.raw,format=raw,"
	                     "if=none"));
	assert_true(has_pair(argv, "-device", "virtio-blk-device,drive=d1"));
	assert_true(has_pair(argv, "-device", "virtio-rng-device,rng=rng"));
	assert_true(has_pair(argv, "-device", "virtio-serial-device"));
	assert_true(has_pair(argv, "-chardev", "socket,id=agent,fd=3"));
	assert_true(has_pair(argv, "-device",
	                     "virtserialport,chardev=agent,name=husk.agent"));
	husk_vm_argv_free(argv);

	c.qemu_kvm = true;
	c.qemu_path = "/usr/local/bin/qemu";
	argv = argv_of(&c, -1);
	assert_string_equal(argv[0], "/usr/local/bin/qemu");
	assert_true(has_arg(argv, "-enable-kvm"));
	assert_true(has_pair(argv, "-cpu", "host"));
	assert_false(has_arg(argv, "tcg"));
	assert_false(has_arg(argv, "-chardev"));
	husk_vm_argv_free(argv);
}

static void expect_argv_error(const struct husk_vm_config *c,
                              const char *needle)
{
	char **argv = (char **)1;
	struct husk_error e = {0};
	assert_int_equal(husk_vm_argv(c, 3, &argv, &e), -EINVAL);
	assert_null(argv);
	if (!strstr(e.msg, needle))
		fail_msg("'%s' lacks '%s'", e.msg, needle);
}

static void argv_errors(void **state)
{
	struct husk_vm_config c = base_config(HUSK_VMM_AUTO);
	expect_argv_error(&c, "resolve auto");
	c = base_config(HUSK_VMM_QEMU);
	c.cpus = 0;
	expect_argv_error(&c, "0 CPUs");
	c.cpus = 33;
	expect_argv_error(&c, "33 CPUs");
	c = base_config(HUSK_VMM_QEMU);
	c.memory_mib = 0;
	expect_argv_error(&c, "MiB");
	c = base_config(HUSK_VMM_QEMU);
	c.kernel = NULL;
	expect_argv_error(&c, "kernel");
	c = base_config(HUSK_VMM_HUSK);
	c.husk_vmm_path = NULL;
	expect_argv_error(&c, "husk-vmm");

	struct husk_vm_disk d = {.path = "/x",
	                         .serial = "123456789012345678901"};
	c = base_config(HUSK_VMM_QEMU);
	c.disks = &d;
	expect_argv_error(&c, "serial");
	d.serial = "a,b";
	expect_argv_error(&c, "serial");
	d.serial = "a b";
	expect_argv_error(&c, "serial");
	d.serial = "12345678901234567890"; /* 20 is fine */
	char **argv = argv_of(&c, 3);
	husk_vm_argv_free(argv);
	d.serial = NULL;
	d.path = "";
	expect_argv_error(&c, "no path");
	/* husk-vmm's --disk has no escape for a comma. */
	c = base_config(HUSK_VMM_HUSK);
	c.disks = &two_disks[1];
	expect_argv_error(&c, "comma");
}

/* Shared directories: --share for husk-vmm, -fsdev and virtio-9p-device
 * for QEMU; tags and paths checked for both. */
static void share_argv(void **state)
{
	const struct husk_vm_share sh[] = {
	    {.tag = "vol0", .path = "/srv/data", .readonly = false},
	    {.tag = "ro_1", .path = "/srv/conf", .readonly = true},
	};
	struct husk_vm_config c = base_config(HUSK_VMM_HUSK);
	c.shares = sh;
	c.nshares = 2;
	char **argv = argv_of(&c, 3);
	assert_true(has_pair(argv, "--share", "vol0=/srv/data"));
	assert_true(has_pair(argv, "--share", "ro_1=/srv/conf,ro"));
	husk_vm_argv_free(argv);
	c.vmm = HUSK_VMM_QEMU;
	argv = argv_of(&c, 3);
	assert_true(has_pair(
	    argv, "-fsdev", "local,id=fs0,path=/srv/data,security_model=none"));
	assert_true(has_pair(argv, "-device",
	                     "virtio-9p-device,fsdev=fs0,mount_tag=vol0"));
	assert_true(has_pair(argv, "-fsdev",
	                     "local,id=fs1,path=/srv/conf,security_model=none,"
	                     "readonly=on"));
	assert_true(has_pair(argv, "-device",
	                     "virtio-9p-device,fsdev=fs1,mount_tag=ro_1"));
	husk_vm_argv_free(argv);

	for (int vmm = HUSK_VMM_HUSK; vmm <= HUSK_VMM_QEMU; vmm++) {
		struct husk_vm_share bad = {.tag = "a/b", .path = "/srv"};
		c = base_config((enum husk_vmm)vmm);
		c.shares = &bad;
		c.nshares = 1;
		expect_argv_error(&c, "share tag");
		bad.tag = "";
		expect_argv_error(&c, "share tag");
		bad.tag = "abcdefghijklmnopqrstuvwxyz012345"; /* 32 */
		expect_argv_error(&c, "share tag");
		bad.tag = "ok";
		bad.path = "/srv/a,b";
		expect_argv_error(&c, "comma");
		bad.path = "";
		expect_argv_error(&c, "no path");
		c.shares = sh;
		c.nshares = 9;
		expect_argv_error(&c, "at most 8");
		const struct husk_vm_share twice[] = {
		    {.tag = "x", .path = "/a"}, {.tag = "x", .path = "/b"}};
		c.shares = twice;
		c.nshares = 2;
		expect_argv_error(&c, "twice");
	}
}

/* Environment and scratch files for the tests that run processes. */
static int setup(void **state)
{
	return scratch_setup(state, "husk-vm-test");
}

static int teardown(void **state)
{
	scratch_teardown(state);
	unsetenv("HUSK_KERNEL");
	unsetenv("HUSK_INITRD");
	unsetenv("HUSK_VMM");
	return 0;
}

static void assets_from_environment(void **state)
{
	struct scratch *s = *state;
	write_file(at(s, "vmlinux"), "k", 0644);
	write_file(at(s, "agent.cpio"), "i", 0644);
	setenv("HUSK_KERNEL", at(s, "vmlinux"), 1);
	setenv("HUSK_INITRD", at(s, "agent.cpio"), 1);
	setenv("HUSK_VMM", "/somewhere/husk-vmm", 1);
	char k[512], i[512], v[512];
	struct husk_error e = {0};
	assert_int_equal(husk_vm_find_assets(k, i, v, sizeof(k), &e), 0);
	assert_string_equal(k, at(s, "vmlinux"));
	assert_string_equal(i, at(s, "agent.cpio"));
	assert_string_equal(v, "/somewhere/husk-vmm");
	/* A buffer may be left out. */
	assert_int_equal(husk_vm_find_assets(k, NULL, NULL, sizeof(k), &e), 0);

	setenv("HUSK_INITRD", at(s, "nothing"), 1);
	assert_int_equal(husk_vm_find_assets(k, i, v, sizeof(k), &e), -ENOENT);
	assert_non_null(strstr(e.msg, "HUSK_INITRD="));
	assert_int_equal(husk_vm_find_assets(k, i, v, 8, &e), -ENAMETOOLONG);
}

static void assets_beside_the_program(void **state)
{
	unsetenv("HUSK_KERNEL");
	unsetenv("HUSK_INITRD");
	unsetenv("HUSK_VMM");
	char exe[512], dir[512];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	snprintf(dir, sizeof(dir), "%s", exe);
	*strrchr(dir, '/') = '\0';

	/* Not installed beside the test program: the message says how to
	 * get a kernel. */
	char k[512], i[512], v[512], expect[600];
	struct husk_error e = {0};
	assert_int_equal(husk_vm_find_assets(k, i, v, sizeof(k), &e), -ENOENT);
	assert_non_null(strstr(e.msg, "make kernels"));
	assert_non_null(strstr(e.msg, "HUSK_KERNEL"));
	snprintf(expect, sizeof(expect), "%s/../share/husk/vmlinux", dir);
	assert_non_null(strstr(e.msg, expect));

	/* husk-vmm is not required to exist. */
	assert_int_equal(husk_vm_find_assets(NULL, NULL, v, sizeof(v), &e), 0);
	snprintf(expect, sizeof(expect), "%s/husk-vmm", dir);
	assert_string_equal(v, expect);
}

static struct husk_vm_config script_config(const struct scratch *s,
                                           const char *script)
{
	write_file(at(s, "vmm.sh"), script, 0755);
	struct husk_vm_config c = base_config(HUSK_VMM_QEMU);
	static char path[512], run[512];
	snprintf(path, sizeof(path), "%s", at(s, "vmm.sh"));
	snprintf(run, sizeof(run), "%s", s->dir);
	c.qemu_path = path;
	c.run_dir = run;
	return c;
}

/* Reads what the agent socket gets until EOF (bounded by 10 s). */
static size_t read_all(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 10000) <= 0)
			break;
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return len;
}

static void start_gives_the_vmm_a_clean_start(void **state)
{
	struct scratch *s = *state;
	/* A stand-in VMM reports what it inherited on the agent socket. */
	struct husk_vm_config c =
	    script_config(s, "#!/bin/sh\n"
	                     "echo \"args: $*\" >&3\n"
	                     "echo \"stdin: $(readlink /proc/$$/fd/0)\" >&3\n"
	                     "[ -e /proc/$$/fd/50 ] && echo leaked >&3\n"
	                     "grep SigBlk /proc/$$/status >&3\n"
	                     "read line <&3; echo \"got: $line\" >&3\n"
	                     "echo to-the-log; echo err-to-the-log >&2\n"
	                     "exit 7\n");
	/* A descriptor of ours without close-on-exec, and a blocked signal:
	 * neither must reach the VMM. */
	assert_int_equal(dup2(2, 50), 50);
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &old);
	struct husk_vm vm;
	struct husk_error e = {0};
	int rc = husk_vm_start(&c, &vm, &e);
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(50);
	if (rc != 0)
		fail_msg("%s", e.msg);
	assert_true(vm.pid > 0);
	assert_true(vm.agent_fd > 2);
	assert_string_equal(vm.console_log, at(s, "console.log"));
	assert_int_equal(write(vm.agent_fd, "ping\n", 5), 5);

	char buf[4096];
	read_all(vm.agent_fd, buf, sizeof(buf));
	int status = -1;
	assert_int_equal(husk_vm_wait(&vm, false, &status, &e), 0);
	assert_int_equal(vm.agent_fd, -1);
	assert_int_equal(vm.pid, -1);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 7);

	assert_non_null(strstr(buf, "-chardev socket,id=agent,fd=3"));
	assert_non_null(strstr(buf, "stdin: /dev/null"));
	assert_null(strstr(buf, "leaked"));
	assert_non_null(strstr(buf, "SigBlk:\t0000000000000000"));
	assert_non_null(strstr(buf, "got: ping"));

	int fd = open(at(s, "vmm.log"), O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "to-the-log\nerr-to-the-log\n");
}

static void start_errors(void **state)
{
	struct scratch *s = *state;
	struct husk_vm_config c = script_config(s, "#!/bin/sh\n");
	struct husk_vm vm;
	struct husk_error e = {0};

	c.qemu_path = at(s, "no-such-qemu");
	assert_int_equal(husk_vm_start(&c, &vm, &e), -ENOENT);
	assert_non_null(strstr(e.msg, "no-such-qemu"));
	assert_int_equal(vm.agent_fd, -1);
	assert_int_equal(vm.pid, -1);

	c.qemu_path = "no-such-qemu-in-path";
	assert_int_equal(husk_vm_start(&c, &vm, &e), -ENOENT);
	assert_non_null(strstr(e.msg, "not found in PATH"));

	/* Executable but not a program: exec itself fails. */
	write_file(at(s, "garbage"),
	           "\x7f"
	           "ELF junk",
	           0755);
	c.qemu_path = at(s, "garbage");
	assert_int_equal(husk_vm_start(&c, &vm, &e), -ENOEXEC);
	assert_non_null(strstr(e.msg, "cannot run"));

	c = script_config(s, "#!/bin/sh\n");
	c.run_dir = at(s, "no-such-dir");
	assert_int_equal(husk_vm_start(&c, &vm, &e), -ENOENT);
	assert_non_null(strstr(e.msg, "vmm.log"));

	c.vmm = HUSK_VMM_AUTO;
	assert_int_equal(husk_vm_start(&c, &vm, &e), -EINVAL);

	/* A tap on a bridge that is not there: refused before anything
	 * runs (the bridge is looked up before /dev/net/tun is opened, so
	 * this holds with and without privilege). */
	c = script_config(s, "#!/bin/sh\ntouch ran\n");
	c.net = HUSK_VM_NET_TAP;
	c.tap_bridge = "br-husk-nx";
	c.tap_guest_ip = "10.88.0.2/24";
	assert_int_equal(husk_vm_start(&c, &vm, &e), -ENODEV);
	assert_string_equal(e.msg, "bridge br-husk-nx does not exist");
	assert_int_equal(vm.pid, -1);
	assert_int_equal(vm.agent_fd, -1);

	/* Reaped elsewhere: the socket is closed all the same. */
	vm.pid = -1;
	vm.agent_fd = dup(2);
	int fd = vm.agent_fd;
	assert_int_equal(husk_vm_wait(&vm, false, NULL, &e), -ECHILD);
	assert_int_equal(vm.agent_fd, -1);
	assert_int_equal(fcntl(fd, F_GETFD), -1);
}

static void wait_can_kill(void **state)
{
	struct scratch *s = *state;
	struct husk_vm_config c =
	    script_config(s, "#!/bin/sh\nexec sleep 60\n");
	struct husk_vm vm;
	struct husk_error e = {0};
	assert_int_equal(husk_vm_start(&c, &vm, &e), 0);
	int status = 0;
	assert_int_equal(husk_vm_wait(&vm, true, &status, &e), 0);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	assert_int_equal(vm.agent_fd, -1);
}

/* 'Z' or gone: a killed orphan may wait a moment for its reaper. */
static bool dead(pid_t pid)
{
	char path[64], stat[256] = "";
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return true;
	ssize_t n = read(fd, stat, sizeof(stat) - 1);
	close(fd);
	const char *paren = n > 0 ? strrchr(stat, ')') : NULL;
	return !paren || paren[2] == 'Z' || paren[2] == 'X';
}

static void vmm_dies_with_its_parent(void **state)
{
	struct scratch *s = *state;
	struct husk_vm_config c =
	    script_config(s, "#!/bin/sh\nexec sleep 60\n");
	int pipefd[2];
	assert_int_equal(pipe(pipefd), 0);
	pid_t mid = fork();
	assert_true(mid >= 0);
	if (mid == 0) {
		struct husk_vm vm;
		struct husk_error e = {0};
		if (husk_vm_start(&c, &vm, &e) < 0)
			_exit(1);
		assert_int_equal(write(pipefd[1], &vm.pid, sizeof(vm.pid)),
		                 sizeof(vm.pid));
		_exit(0); /* without waiting: the VMM must follow */
	}
	close(pipefd[1]);
	pid_t vmm = 0;
	assert_int_equal(read(pipefd[0], &vmm, sizeof(vmm)), sizeof(vmm));
	close(pipefd[0]);
	waitpid(mid, NULL, 0);
	for (int i = 0; i < 100 && !dead(vmm); i++)
		usleep(50 * 1000);
	assert_true(dead(vmm));
}

/* The newest cached guest kernel, or $HUSK_TEST_KERNEL. */
static bool guest_kernel(char *out, size_t cap)
{
	const char *env = getenv("HUSK_TEST_KERNEL");
	if (env && *env) {
		snprintf(out, cap, "%s", env);
		return access(out, R_OK) == 0;
	}
	glob_t g;
	if (glob("/var/cache/husk/kernel/guest-*/vmlinux", 0, NULL, &g))
		return false;
	time_t newest = 0;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		struct stat st;
		if (stat(g.gl_pathv[i], &st) == 0 && st.st_mtime >= newest) {
			newest = st.st_mtime;
			snprintf(out, cap, "%s", g.gl_pathv[i]);
		}
	}
	globfree(&g);
	return newest != 0;
}

static void make_disk(const char *path, const char *pattern)
{
	write_file(path, pattern, 0644);
	assert_int_equal(truncate(path, 1 << 20), 0);
}

/* A real boot under QEMU/TCG of husk-vmm's test guest (guest_check.c):
 * disks, rng and the agent socket, end to end. The guest looks for a
 * port named "check", so a wrapper renames the agent port on its way to
 * QEMU; everything else is husk_vm_start's own command line. */
static void qemu_tcg_boots_the_check_guest(void **state)
{
	struct scratch *s = *state;
	char kernel[512], initrd[600], exe[512];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(initrd, sizeof(initrd), "%s/../vmm/guest-check.cpio", exe);
	if (!guest_kernel(kernel, sizeof(kernel)) || access(initrd, R_OK) ||
	    system("command -v qemu-system-x86_64 >/dev/null"))
		skip();

	struct husk_vm_config c = script_config(
	    s,
	    "#!/bin/bash\n"
	    "args=()\n"
	    "for a in \"$@\"; do args+=(\"${a/name=husk.agent/name=check}\"); "
	    "done\n"
	    "exec qemu-system-x86_64 \"${args[@]}\"\n");
	char d0[512], d1[512];
	snprintf(d0, sizeof(d0), "%s", at(s, "disk0"));
	snprintf(d1, sizeof(d1), "%s", at(s, "disk1"));
	make_disk(d0, "HUSK-DISK-0");
	make_disk(d1, "HUSK-DISK-1");
	struct husk_vm_disk disks[] = {{.path = d0, .serial = "d0"},
	                               {.path = d1, .readonly = true}};
	c.kernel = kernel;
	c.initrd = initrd;
	c.disks = disks;
	c.ndisks = 2;
	c.memory_mib = 128;
	c.cpus = 2;
	c.cmdline_extra = "husk.cpus=2 husk.mem_mib=128";

	struct husk_vm vm;
	struct husk_error e = {0};
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(husk_vm_start(&c, &vm, &e), 0);
	assert_int_equal(write(vm.agent_fd, "hello-from-host\n", 16), 16);
	char buf[256];
	read_all(vm.agent_fd, buf, sizeof(buf));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	int status = -1;
	assert_int_equal(husk_vm_wait(&vm, false, &status, &e), 0);
	print_message("# QEMU/TCG: boot, checks and exit in %.1f s\n",
	              (double)(t1.tv_sec - t0.tv_sec) +
	                  (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	assert_string_equal(buf, "guest-got:hello-from-host\n");
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0); /* -no-reboot */

	char log[8192] = "";
	int fd = open(vm.console_log, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, log, sizeof(log) - 1);
	close(fd);
	log[n > 0 ? n : 0] = '\0';
	if (!strstr(log, "GUEST-CHECK: PASS"))
		fail_msg("console:\n%s", log);
	fd = open(d0, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, 16, 4096), 16);
	close(fd);
	assert_memory_equal(buf, "GUEST-WROTE-THIS", 16);
}

static void put(const char *dir, const char *name, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* The last non-empty lines, joined; long lines cut; a missing file is
 * nothing to say. */
static void log_tail_lines(void **state)
{
	struct scratch *sc = *state;
	char out[256], path[128];
	put(sc->dir, "a.log", "one\n\ntwo\r\nthree\n\n");
	snprintf(path, sizeof(path), "%s/a.log", sc->dir);
	assert_int_equal(husk_log_tail(path, 2, " | ", out, sizeof(out)), 2);
	assert_string_equal(out, "two | three");
	assert_int_equal(husk_log_tail(path, 9, ",", out, sizeof(out)), 3);
	assert_string_equal(out, "one,two,three");
	assert_int_equal(husk_log_tail(path, 3, ",", out, 6), 2);
	assert_string_equal(out, "one,t");
	char big[1000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	FILE *f = fopen(path, "w");
	fprintf(f, "%s\nlast", big);
	fclose(f);
	assert_int_equal(husk_log_tail(path, 1, ",", out, sizeof(out)), 1);
	assert_string_equal(out, "last");
	snprintf(path, sizeof(path), "%s/none.log", sc->dir);
	assert_int_equal(husk_log_tail(path, 2, ",", out, sizeof(out)), 0);
	assert_string_equal(out, "");
}

static pid_t child_that(int how)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (how < 0)
			raise(-how);
		_exit(how);
	}
	return pid;
}

/* How the VMM ended, reaped, with what it and the guest last said. */
static void describe_end(void **state)
{
	struct scratch *sc = *state;
	char out[1024];
	put(sc->dir, HUSK_VM_VMM_LOG, "husk-vmm: KVM_RUN: bad address\n");
	put(sc->dir, HUSK_VM_CONSOLE_LOG,
	    "boot\nKernel panic - not syncing: Attempted to kill init!\n");
	struct husk_vm vm = {.pid = child_that(3), .agent_fd = -1};
	husk_vm_describe_end(&vm, sc->dir, 5000, out, sizeof(out));
	assert_int_equal(vm.pid, -1);
	assert_string_equal(
	    out, "the VMM exited with status 3; VMM: husk-vmm: KVM_RUN: bad "
	         "address; guest console: boot | Kernel panic - not "
	         "syncing: Attempted to kill init!");
	unlink(strcat(strcpy(out, sc->dir), "/" HUSK_VM_VMM_LOG));
	unlink(strcat(strcpy(out, sc->dir), "/" HUSK_VM_CONSOLE_LOG));
	vm.pid = child_that(-SIGKILL);
	husk_vm_describe_end(&vm, sc->dir, 5000, out, sizeof(out));
	assert_string_equal(out, "the VMM was killed by signal 9 (KILL)");
	husk_vm_describe_end(&vm, sc->dir, 0, out, sizeof(out));
	assert_string_equal(out, "the VMM had ended");
	/* one that runs on is not waited for past wait_ms */
	vm.pid = child_that(-SIGSTOP);
	husk_vm_describe_end(&vm, sc->dir, 40, out, sizeof(out));
	assert_true(strstr(out, "still runs") != NULL);
	kill(vm.pid, SIGKILL);
	waitpid(vm.pid, NULL, 0);
}

/* A VMM that ends in its grace is reaped; one that does not is killed
 * and reaped. */
static void end_with_grace(void **state)
{
	(void)state;
	struct husk_vm vm = {.pid = child_that(0), .agent_fd = -1};
	husk_vm_end(&vm, 5000);
	assert_int_equal(vm.pid, -1);
	pid_t stuck = child_that(-SIGSTOP);
	vm.pid = stuck;
	husk_vm_end(&vm, 40);
	assert_int_equal(vm.pid, -1);
	assert_int_equal(kill(stuck, 0), -1); /* reaped: no zombie left */
	husk_vm_end(&vm, 40);                 /* nothing to do */
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parse_names),
	    cmocka_unit_test(parse_errors),
	    cmocka_unit_test(auto_picks_husk_on_hardware),
	    cmocka_unit_test(auto_falls_back_to_tcg),
	    cmocka_unit_test(husk_refused_without_hardware),
	    cmocka_unit_test(choose_probes_this_host),
	    cmocka_unit_test(husk_vmm_argv_exact),
	    cmocka_unit_test(husk_vmm_argv_variants),
	    cmocka_unit_test(qemu_argv),
	    cmocka_unit_test(net_argv),
	    cmocka_unit_test(tap_argv),
	    cmocka_unit_test(argv_errors),
	    cmocka_unit_test(share_argv),
	    T(assets_from_environment),
	    T(assets_beside_the_program),
	    T(start_gives_the_vmm_a_clean_start),
	    T(start_errors),
	    T(wait_can_kill),
	    T(vmm_dies_with_its_parent),
	    T(qemu_tcg_boots_the_check_guest),
	    T(log_tail_lines),
	    T(describe_end),
	    T(end_with_grace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
