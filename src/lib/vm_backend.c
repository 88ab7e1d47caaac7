/* husk-vmm or QEMU as the VMM of one guest; see vm_backend.h. */
#include "husk/vm_backend.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "husk/program.h"
#include "husk/tap.h"

#define DEFAULT_QEMU  "qemu-system-x86_64"
#define MAX_CPUS      32 /* husk-vmm's limit; QEMU gets the same */
#define MAX_SERIAL    20 /* virtio-blk's serial field */
#define MAX_SHARE_TAG 31 /* husk-vmm's --share tag */
#define AGENT_FD      3  /* the agent socket's number in the VMM */
#define TAP_FD        4  /* the tap's number in the VMM (HUSK_VM_NET_TAP) */
#define FIRST_HIGH_FD 10 /* ours live above what the child dup2s onto */

int husk_vmm_parse(const char *name, enum husk_vmm *out, struct husk_error *err)
{
	static const enum husk_vmm all[] = {HUSK_VMM_AUTO, HUSK_VMM_HUSK,
	                                    HUSK_VMM_QEMU};
	for (size_t i = 0; name && i < sizeof(all) / sizeof(all[0]); i++) {
		if (!strcmp(name, husk_vmm_name(all[i]))) {
			*out = all[i];
			return 0;
		}
	}
	return husk_err(err, EINVAL, "unknown VMM '%s': use husk, qemu or auto",
	                name ? name : "");
}

const char *husk_vmm_name(enum husk_vmm vmm)
{
	switch (vmm) {
	case HUSK_VMM_AUTO: return "auto";
	case HUSK_VMM_HUSK: return "husk";
	case HUSK_VMM_QEMU: return "qemu";
	}
	return "?";
}

/* "/dev/kvm is pvm (module kvm_pvm)" and the like, for messages. */
static void describe_kvm(const struct husk_kvm_report *r, char *out, size_t cap)
{
	if (r->kind == HUSK_KVM_NONE)
		snprintf(out, cap, "no usable /dev/kvm (%s)", r->detail);
	else if (r->kind == HUSK_KVM_PVM && r->vendor_module[0])
		snprintf(out, cap, "/dev/kvm is pvm (module %s)",
		         r->vendor_module);
	else
		snprintf(out, cap, "/dev/kvm is %s (%s)",
		         husk_kvm_kind_name(r->kind), r->detail);
}

int husk_vm_choose_for(enum husk_vmm want, const struct husk_kvm_report *r,
                       enum husk_vmm *got, bool *qemu_kvm, char *notice,
                       size_t notice_cap, struct husk_error *err)
{
	bool hardware = r->kind == HUSK_KVM_HARDWARE;
	char why[400];
	describe_kvm(r, why, sizeof(why));
	if (notice && notice_cap)
		notice[0] = '\0';
	switch (want) {
	case HUSK_VMM_HUSK:
		if (!hardware)
			return husk_err(err, ENODEV,
			                "husk-vmm needs hardware KVM, and here "
			                "%s; use the qemu backend (TCG "
			                "emulation, slow)",
			                why);
		*got = HUSK_VMM_HUSK;
		*qemu_kvm = false;
		return 0;
	case HUSK_VMM_AUTO:
	case HUSK_VMM_QEMU:
		*got = hardware && want == HUSK_VMM_AUTO ? HUSK_VMM_HUSK
		                                         : HUSK_VMM_QEMU;
		*qemu_kvm = *got == HUSK_VMM_QEMU && hardware;
		if (!hardware && notice && notice_cap)
			snprintf(notice, notice_cap,
			         "husk: %s: using qemu with TCG emulation "
			         "(slow)",
			         why);
		return 0;
	}
	return husk_err(err, EINVAL, "unknown VMM %d", (int)want);
}

int husk_vm_choose(enum husk_vmm want, enum husk_vmm *got, bool *qemu_kvm,
                   char *notice, size_t notice_cap, struct husk_error *err)
{
	/* Asked for husk-vmm by name: no probe guest (it costs a VM start,
	 * and under heavy emulation its time limit can misfire). PVM is
	 * told from the module alone; any other host husk-vmm cannot run
	 * on is refused by husk-vmm itself, with its own exit status. */
	if (want == HUSK_VMM_HUSK) {
		if (husk_kvm_pvm_loaded("/sys/module"))
			return husk_err(
			    err, ENODEV,
			    "husk-vmm needs hardware KVM, and here "
			    "/dev/kvm is pvm (module kvm_pvm); use the "
			    "qemu backend (TCG emulation, slow)");
		if (access("/dev/kvm", R_OK | W_OK) < 0)
			return husk_err_errno(err, errno,
			                      "husk-vmm needs /dev/kvm");
		*got = HUSK_VMM_HUSK;
		*qemu_kvm = false;
		if (notice_cap)
			notice[0] = '\0';
		return 0;
	}
	struct husk_kvm_report r;
	int rc = husk_kvm_probe("/dev/kvm", "/sys/module", &r, err);
	if (rc < 0)
		return rc;
	return husk_vm_choose_for(want, &r, got, qemu_kvm, notice, notice_cap,
	                          err);
}

/* A growing, NULL-terminated argv; the first allocation failure sticks
 * and is reported once at the end. */
struct args {
	char **v;
	size_t n, cap;
	bool nomem;
};

static void add(struct args *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add(struct args *a, const char *fmt, ...)
{
	if (a->nomem)
		return;
	if (a->n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 32;
		char **v = realloc(a->v, cap * sizeof(*v));
		if (!v) {
			a->nomem = true;
			return;
		}
		a->v = v;
		a->cap = cap;
	}
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0) {
		a->nomem = true;
		s = NULL;
	}
	va_end(ap);
	a->v[a->n] = s;
	if (s)
		a->v[++a->n] = NULL;
}

void husk_vm_argv_free(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

static bool serial_ok(const char *s)
{
	if (strlen(s) > MAX_SERIAL)
		return false;
	for (; *s; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return false;
	}
	return true;
}

/* Published ports: only on a user network, ports 1..65535, an IPv4
 * host address (the VMMs' hostfwd syntax has no room for IPv6). */
static int check_ports(const struct husk_vm_config *c, struct husk_error *err)
{
	if (c->nports && c->net != HUSK_VM_NET_USER)
		return husk_err(err, EINVAL,
		                "published ports need the user network");
	for (size_t i = 0; i < c->nports; i++) {
		const struct husk_vm_portfwd *p = &c->ports[i];
		struct in_addr a;
		if (p->host_port < 1 || p->host_port > 65535 ||
		    p->guest_port < 1 || p->guest_port > 65535)
			return husk_err(err, EINVAL,
			                "published port %u:%u: ports are 1 to "
			                "65535",
			                p->host_port, p->guest_port);
		if (p->host_ip && p->host_ip[0] &&
		    inet_pton(AF_INET, p->host_ip, &a) != 1)
			return husk_err(err, EINVAL,
			                "published port: '%s' is not an IPv4 "
			                "address",
			                p->host_ip);
	}
	return 0;
}

/* Shared directories: tags both VMMs and the guest's mount accept, each
 * once; paths without a comma (husk-vmm's --share has no escape, and
 * QEMU's -fsdev path= would need one). */
static int check_shares(const struct husk_vm_config *c, struct husk_error *err)
{
	if (c->nshares > HUSK_VM_MAX_SHARES)
		return husk_err(err, EINVAL,
		                "%zu shared directories: at most %d",
		                c->nshares, HUSK_VM_MAX_SHARES);
	for (size_t i = 0; i < c->nshares; i++) {
		const struct husk_vm_share *sh = &c->shares[i];
		const char *t = sh->tag ? sh->tag : "";
		size_t n = strlen(t);
		bool ok = n >= 1 && n <= MAX_SHARE_TAG;
		for (const char *p = t; ok && *p; p++)
			ok = (*p >= 'a' && *p <= 'z') ||
			     (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || *p == '_' || *p == '-';
		if (!ok)
			return husk_err(
			    err, EINVAL,
			    "share tag '%s': 1 to %d of A-Z a-z 0-9 _ -", t,
			    MAX_SHARE_TAG);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(c->shares[j].tag, t))
				return husk_err(err, EINVAL,
				                "share tag '%s' given twice",
				                t);
		if (!sh->path || !sh->path[0])
			return husk_err(err, EINVAL, "share %s has no path", t);
		if (strchr(sh->path, ','))
			return husk_err(
			    err, EINVAL,
			    "share path '%s': a VMM cannot take a comma "
			    "in a shared path",
			    sh->path);
	}
	return 0;
}

/* A tap network: a bridge, the guest's address, a gateway inside its
 * subnet (else the agent's default route would fail), IPv4 DNS. */
static int check_tap(const struct husk_vm_config *c, struct husk_error *err)
{
	if (c->net != HUSK_VM_NET_TAP)
		return 0;
	if (!c->tap_bridge || !c->tap_bridge[0])
		return husk_err(err, EINVAL, "a tap network needs a bridge");
	if (!c->tap_guest_ip)
		return husk_err(err, EINVAL,
		                "a tap network needs the guest's address "
		                "(--ip)");
	struct in_addr ip, gw;
	unsigned prefix;
	if (husk_parse_cidr("guest address", c->tap_guest_ip, &ip, &prefix,
	                    err) < 0)
		return -err->code;
	if (c->tap_gateway && c->tap_gateway[0]) {
		uint32_t mask = htonl(~0u << (32 - prefix));
		if (inet_pton(AF_INET, c->tap_gateway, &gw) != 1)
			return husk_err(err, EINVAL,
			                "gateway %s is not an IPv4 address",
			                c->tap_gateway);
		if ((gw.s_addr & mask) != (ip.s_addr & mask) ||
		    gw.s_addr == ip.s_addr)
			return husk_err(err, EINVAL,
			                "gateway %s is not another address in "
			                "%s's subnet",
			                c->tap_gateway, c->tap_guest_ip);
	}
	if (c->tap_dns && c->tap_dns[0] &&
	    inet_pton(AF_INET, c->tap_dns, &gw) != 1)
		return husk_err(err, EINVAL,
		                "DNS server %s is not an IPv4 "
		                "address",
		                c->tap_dns);
	return 0;
}

static int check_config(const struct husk_vm_config *c, struct husk_error *err)
{
	if (c->vmm != HUSK_VMM_HUSK && c->vmm != HUSK_VMM_QEMU)
		return husk_err(err, EINVAL,
		                "VMM not chosen: resolve auto first");
	if (!c->kernel || !c->initrd || !c->run_dir)
		return husk_err(err, EINVAL,
		                "a VM needs a kernel, an initrd and a run "
		                "directory");
	if (c->vmm == HUSK_VMM_HUSK && !c->husk_vmm_path)
		return husk_err(err, EINVAL, "where is husk-vmm?");
	if (c->cpus < 1 || c->cpus > MAX_CPUS)
		return husk_err(err, EINVAL, "%u CPUs: use 1 to %d", c->cpus,
		                MAX_CPUS);
	if (c->memory_mib < 16 || c->memory_mib > 1024 * 1024)
		return husk_err(err, EINVAL, "%u MiB of memory: use 16 or more",
		                c->memory_mib);
	if (check_ports(c, err) < 0)
		return -err->code;
	if (check_shares(c, err) < 0)
		return -err->code;
	if (check_tap(c, err) < 0)
		return -err->code;
	for (size_t i = 0; i < c->ndisks; i++) {
		const struct husk_vm_disk *d = &c->disks[i];
		if (!d->path || !d->path[0])
			return husk_err(err, EINVAL, "disk %zu has no path", i);
		if (d->serial && !serial_ok(d->serial))
			return husk_err(err, EINVAL,
			                "disk serial '%s': up to %d of A-Z a-z "
			                "0-9 _ -",
			                d->serial, MAX_SERIAL);
		/* husk-vmm's --disk is comma-separated and has no escape. */
		if (c->vmm == HUSK_VMM_HUSK && strchr(d->path, ','))
			return husk_err(
			    err, EINVAL,
			    "disk path '%s': husk-vmm cannot take a "
			    "comma in a path",
			    d->path);
	}
	return 0;
}

static void add_cmdline(struct args *a, const struct husk_vm_config *c)
{
	const char *base = HUSK_VM_CMDLINE;
	size_t len = strlen(base);
	/* A debug boot shows the kernel's messages in console.log. */
	if (c->debug && len > 6 && !strcmp(base + len - 6, " quiet"))
		len -= 6;
	const char *extra = c->cmdline_extra ? c->cmdline_extra : "";
	/* The agent configures the guest's NIC from it (src/agent/net.c);
	 * on a tap an empty gateway or DNS means none. */
	if (c->net == HUSK_VM_NET_TAP)
		add(a, "%.*s%s%s husk.net=%s,%s,%s", (int)len, base,
		    extra[0] ? " " : "", extra, c->tap_guest_ip,
		    c->tap_gateway ? c->tap_gateway : "",
		    c->tap_dns ? c->tap_dns : "");
	else
		add(a, "%.*s%s%s%s", (int)len, base, extra[0] ? " " : "", extra,
		    c->net == HUSK_VM_NET_USER ? " " HUSK_VM_NET_CMDLINE : "");
}

/* The guest's MAC on a tap, from its address (check_tap passed). */
static void tap_mac(const struct husk_vm_config *c, char out[18])
{
	struct in_addr ip = {0};
	unsigned prefix;
	uint8_t m[6];
	husk_parse_cidr("", c->tap_guest_ip, &ip, &prefix, NULL);
	husk_tap_mac_for(ip, m);
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2],
	         m[3], m[4], m[5]);
}

/* "PREFIX,hostfwd=tcp:IP:HOSTPORT-:GUESTPORT,..." in QEMU's syntax, which
 * husk-vmm's --net shares. */
static void add_net(struct args *a, const struct husk_vm_config *c,
                    const char *prefix)
{
	size_t cap = strlen(prefix) + 1 + c->nports * 64;
	char *buf = malloc(cap);
	if (!buf) {
		a->nomem = true;
		return;
	}
	size_t used = (size_t)snprintf(buf, cap, "%s", prefix);
	for (size_t i = 0; i < c->nports && used < cap; i++) {
		const struct husk_vm_portfwd *p = &c->ports[i];
		used += (size_t)snprintf(
		    buf + used, cap - used, ",hostfwd=%s:%s:%u-:%u",
		    p->udp ? "udp" : "tcp", p->host_ip ? p->host_ip : "",
		    p->host_port, p->guest_port);
	}
	add(a, "%s", buf);
	free(buf);
}

static void argv_husk(struct args *a, const struct husk_vm_config *c,
                      int agent_fd)
{
	add(a, "%s", c->husk_vmm_path);
	add(a, "--kernel");
	add(a, "%s", c->kernel);
	add(a, "--initrd");
	add(a, "%s", c->initrd);
	add(a, "--cmdline");
	add_cmdline(a, c);
	add(a, "--memory");
	add(a, "%u", c->memory_mib);
	add(a, "--cpus");
	add(a, "%u", c->cpus);
	for (size_t i = 0; i < c->ndisks; i++) {
		const struct husk_vm_disk *d = &c->disks[i];
		add(a, "--disk");
		add(a, "%s%s%s%s", d->path, d->readonly ? ",ro" : "",
		    d->serial ? ",serial=" : "", d->serial ? d->serial : "");
	}
	if (agent_fd >= 0) {
		add(a, "--port");
		add(a, "%s=fd:%d", HUSK_VM_AGENT_PORT, agent_fd);
	}
	if (c->net == HUSK_VM_NET_USER) {
		add(a, "--net");
		add_net(a, c, "user");
	} else if (c->net == HUSK_VM_NET_TAP) {
		char mac[18];
		tap_mac(c, mac);
		add(a, "--net");
		add(a, "tap,fd=%d,mac=%s", TAP_FD, mac);
	}
	for (size_t i = 0; i < c->nshares; i++) {
		add(a, "--share");
		add(a, "%s=%s%s", c->shares[i].tag, c->shares[i].path,
		    c->shares[i].readonly ? ",ro" : "");
	}
	add(a, "--rng");
	add(a, "--serial-log");
	add(a, "%s/%s", c->run_dir, HUSK_VM_CONSOLE_LOG);
	if (c->debug)
		add(a, "--debug");
}

/* QEMU's option syntax doubles a comma inside a value. */
static char *qemu_escape(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(2 * n + 1), *p = out;
	if (!out)
		return NULL;
	for (; *s; s++) {
		*p++ = *s;
		if (*s == ',')
			*p++ = ',';
	}
	*p = '\0';
	return out;
}

static void argv_qemu_disk(struct args *a, const struct husk_vm_disk *d,
                           size_t i)
{
	char *file = qemu_escape(d->path);
	if (!file) {
		a->nomem = true;
		return;
	}
	add(a, "-drive");
	add(a, "id=d%zu,file=%s,format=raw,if=none%s", i, file,
	    d->readonly ? ",readonly=on" : "");
	free(file);
	add(a, "-device");
	add(a, "virtio-blk-device,drive=d%zu%s%s", i,
	    d->serial ? ",serial=" : "", d->serial ? d->serial : "");
}

/* Devices appear in the guest in the order they are given, as with
 * husk-vmm: disks first, so that they are /dev/vda, /dev/vdb, ... */
static void argv_qemu(struct args *a, const struct husk_vm_config *c,
                      int agent_fd)
{
	add(a, "%s", c->qemu_path ? c->qemu_path : DEFAULT_QEMU);
	/* No firmware, no PCI, no ACPI: the closest QEMU has to husk-vmm,
	 * and what bench/boot compares against. Guest RAM in a memfd, as
	 * husk-vmm keeps it. */
	add(a, "-M");
	add(a, "microvm,x-option-roms=off,isa-serial=on,rtc=off,acpi=off,"
	       "memory-backend=mem");
	add(a, "-object");
	add(a, "memory-backend-memfd,id=mem,size=%uM", c->memory_mib);
	add(a, "-m");
	add(a, "%u", c->memory_mib);
	if (c->qemu_kvm) {
		add(a, "-enable-kvm");
		add(a, "-cpu");
		add(a, "host");
	} else {
		add(a, "-accel");
		add(a, "tcg");
		add(a, "-cpu");
		add(a, "max");
	}
	add(a, "-smp");
	add(a, "%u", c->cpus);
	add(a, "-nodefaults");
	add(a, "-no-user-config");
	add(a, "-display");
	add(a, "none");
	/* A guest reboot (also a panic, with panic=-1) ends the VM. */
	add(a, "-no-reboot");
	add(a, "-serial");
	add(a, "file:%s/%s", c->run_dir, HUSK_VM_CONSOLE_LOG);
	add(a, "-kernel");
	add(a, "%s", c->kernel);
	add(a, "-initrd");
	add(a, "%s", c->initrd);
	add(a, "-append");
	add_cmdline(a, c);
	for (size_t i = 0; i < c->ndisks; i++)
		argv_qemu_disk(a, &c->disks[i], i);
	add(a, "-object");
	add(a, "rng-random,id=rng,filename=/dev/urandom");
	add(a, "-device");
	add(a, "virtio-rng-device,rng=rng");
	if (c->net == HUSK_VM_NET_USER) {
		add(a, "-netdev");
		add_net(a, c, "user,id=n0");
		add(a, "-device");
		add(a, "virtio-net-device,netdev=n0");
	} else if (c->net == HUSK_VM_NET_TAP) {
		/* husk made the tap (with a vnet header, QEMU's own default
		 * for the offloads it negotiates) and attached it; QEMU only
		 * uses the descriptor, so it needs no privilege and no
		 * qemu-bridge-helper. */
		char mac[18];
		tap_mac(c, mac);
		add(a, "-netdev");
		add(a, "tap,id=n0,fd=%d", TAP_FD);
		add(a, "-device");
		add(a, "virtio-net-device,netdev=n0,mac=%s", mac);
	}
	/* security_model=none: files keep the guest's owner where QEMU may
	 * set it, as husk-vmm's --share does. */
	for (size_t i = 0; i < c->nshares; i++) {
		add(a, "-fsdev");
		add(a, "local,id=fs%zu,path=%s,security_model=none%s", i,
		    c->shares[i].path,
		    c->shares[i].readonly ? ",readonly=on" : "");
		add(a, "-device");
		add(a, "virtio-9p-device,fsdev=fs%zu,mount_tag=%s", i,
		    c->shares[i].tag);
	}
	if (agent_fd >= 0) {
		add(a, "-device");
		add(a, "virtio-serial-device");
		/* QEMU takes the inherited, already connected socket. */
		add(a, "-chardev");
		add(a, "socket,id=agent,fd=%d", agent_fd);
		add(a, "-device");
		add(a, "virtserialport,chardev=agent,name=%s",
		    HUSK_VM_AGENT_PORT);
	}
}

int husk_vm_argv(const struct husk_vm_config *c, int agent_fd_child,
                 char ***argv, struct husk_error *err)
{
	*argv = NULL;
	int rc = check_config(c, err);
	if (rc < 0)
		return rc;
	struct args a = {0};
	if (c->vmm == HUSK_VMM_HUSK)
		argv_husk(&a, c, agent_fd_child);
	else
		argv_qemu(&a, c, agent_fd_child);
	if (a.nomem) {
		husk_vm_argv_free(a.v);
		return husk_err(err, ENOMEM, "VMM command line");
	}
	*argv = a.v;
	return 0;
}

/* Moves fd to a number >= FIRST_HIGH_FD (close-on-exec), so that the
 * child's dup2 onto 0..3 can never clobber a descriptor it still needs,
 * whatever the caller had open. */
static int high_fd(int fd)
{
	if (fd < 0 || fd >= FIRST_HIGH_FD)
		return fd;
	int h = fcntl(fd, F_DUPFD_CLOEXEC, FIRST_HIGH_FD);
	int e = errno;
	close(fd);
	errno = e;
	return h;
}

/* The program's full path: a missing VMM is an error with a name before
 * anything is forked. */
static int find_program(const char *name, char *out, size_t cap,
                        struct husk_error *err)
{
	if (strchr(name, '/')) {
		snprintf(out, cap, "%s", name);
		if (access(out, X_OK) < 0)
			return husk_err_errno(err, errno, "VMM %s", name);
		return 0;
	}
	if (husk_find_program(name, NULL, out, cap))
		return 0;
	return husk_err(
	    err, ENOENT, "%s not found in PATH%s", name,
	    strcmp(name, DEFAULT_QEMU) ? "" : " (install qemu-system-x86)");
}

/* Everything the child needs, prepared before fork: after it, only
 * async-signal-safe calls. */
struct spawn {
	char prog[PATH_MAX];
	char **argv;
	int agent;   /* the VMM's end of the socketpair */
	int tap;     /* HUSK_VM_NET_TAP: the tap, else -1 */
	int log;     /* vmm.log */
	int null;    /* /dev/null */
	int errpipe; /* write end: errno when exec fails */
	pid_t parent;
};

static void mark_cloexec_from(int first)
{
	/* Descriptors the caller opened without O_CLOEXEC (another VM's
	 * agent socket, say) must not leak into the VMM, where they would
	 * keep connections alive. The error pipe stays open until exec. */
	if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	long max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (int fd = first; fd < max; fd++)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static _Noreturn void child(const struct spawn *s)
{
	/* Die with the thread that started us; and if that already
	 * happened, do not run at all. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != s->parent)
		_exit(127);
	/* A process group of its own: the terminal's ^C and a SIGTERM sent
	 * to husk's group are for the container, which husk forwards them
	 * to, not for the VMM under it. */
	setpgid(0, 0);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL); /* ignored signals survive exec */
	int e = 0;
	if (dup2(s->null, 0) < 0 || dup2(s->log, 1) < 0 ||
	    dup2(s->log, 2) < 0 || dup2(s->agent, AGENT_FD) < 0 ||
	    (s->tap >= 0 && dup2(s->tap, TAP_FD) < 0))
		e = errno;
	if (!e) {
		mark_cloexec_from(s->tap >= 0 ? TAP_FD + 1 : AGENT_FD + 1);
		execv(s->prog, s->argv);
		e = errno;
	}
	ssize_t unused = write(s->errpipe, &e, sizeof(e));
	(void)unused;
	_exit(127);
}

static void close_spawn(struct spawn *s)
{
	int *fds[] = {&s->agent, &s->tap, &s->log, &s->null, &s->errpipe};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	husk_vm_argv_free(s->argv);
	s->argv = NULL;
}

static int open_logs(const struct husk_vm_config *c, struct husk_vm *vm,
                     struct spawn *s, struct husk_error *err)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", c->run_dir,
	             HUSK_VM_VMM_LOG) >= (int)sizeof(path) ||
	    snprintf(vm->console_log, sizeof(vm->console_log), "%s/%s",
	             c->run_dir,
	             HUSK_VM_CONSOLE_LOG) >= (int)sizeof(vm->console_log))
		return husk_err(err, ENAMETOOLONG, "run directory %s",
		                c->run_dir);
	s->log =
	    high_fd(open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
	if (s->log < 0)
		return husk_err_errno(err, errno, "create %s", path);
	s->null = high_fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
	if (s->null < 0)
		return husk_err_errno(err, errno, "open /dev/null");
	return 0;
}

/* The tap, made here for either VMM (husk/tap.h) so that its errors come
 * before anything starts; without a gateway, the bridge's own address
 * when it is in the guest's subnet (gw: storage for it). */
static int open_tap(struct husk_vm_config *c, struct husk_vm *vm,
                    struct spawn *s, char gw[INET_ADDRSTRLEN],
                    struct husk_error *err)
{
	if (c->net != HUSK_VM_NET_TAP)
		return 0;
	int rc = check_config(c, err);
	if (rc < 0)
		return rc;
	struct in_addr ip, br;
	unsigned prefix;
	husk_parse_cidr("", c->tap_guest_ip, &ip, &prefix, NULL);
	uint32_t mask = htonl(~0u << (32 - prefix));
	if ((!c->tap_gateway || !c->tap_gateway[0]) &&
	    husk_tap_bridge_addr(c->tap_bridge, &br) == 0 &&
	    (br.s_addr & mask) == (ip.s_addr & mask) && br.s_addr != ip.s_addr)
		c->tap_gateway = inet_ntop(AF_INET, &br, gw, INET_ADDRSTRLEN);
	/* QEMU negotiates offloads through the vnet header; husk-vmm
	 * takes plain frames (src/vmm/net_tap.h). */
	struct husk_tap_request r = {c->tap_ifname, c->tap_bridge,
	                             c->vmm == HUSK_VMM_QEMU};
	s->tap = high_fd(husk_tap_open(&r, vm->tap, err));
	return s->tap < 0 ? -err->code : 0;
}

/* Everything but the fork: descriptors, argv, the program's path. The
 * read end of the exec error pipe goes to *rfd. */
static int prepare(const struct husk_vm_config *cfg, struct husk_vm *vm,
                   struct spawn *s, int *rfd, struct husk_error *err)
{
	struct husk_vm_config copy = *cfg, *c = &copy;
	char gw[INET_ADDRSTRLEN];
	int rc = open_tap(c, vm, s, gw, err);
	if (rc == 0)
		rc = husk_vm_argv(c, AGENT_FD, &s->argv, err);
	if (rc == 0)
		rc = find_program(s->argv[0], s->prog, sizeof(s->prog), err);
	if (rc == 0)
		rc = open_logs(c, vm, s, err);
	if (rc < 0)
		return rc;
	int sv[2], pp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return husk_err_errno(err, errno, "agent socketpair");
	vm->agent_fd = high_fd(sv[0]);
	s->agent = high_fd(sv[1]);
	if (vm->agent_fd < 0 || s->agent < 0)
		return husk_err_errno(err, errno, "agent socketpair");
	if (pipe2(pp, O_CLOEXEC) < 0)
		return husk_err_errno(err, errno, "pipe");
	s->errpipe = high_fd(pp[1]);
	*rfd = high_fd(pp[0]);
	if (s->errpipe < 0 || *rfd < 0)
		return husk_err_errno(err, errno, "pipe");
	s->parent = getpid();
	return 0;
}

/* The error pipe closes at a successful exec; an errno on it means the
 * VMM never ran. */
static int await_exec(pid_t pid, int rfd, const char *prog,
                      struct husk_error *err)
{
	int child_errno = 0;
	ssize_t n;
	while ((n = read(rfd, &child_errno, sizeof(child_errno))) < 0 &&
	       errno == EINTR)
		;
	if (n <= 0)
		return 0;
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return husk_err_errno(err, child_errno, "cannot run %s", prog);
}

int husk_vm_start(const struct husk_vm_config *c, struct husk_vm *vm,
                  struct husk_error *err)
{
	vm->pid = -1;
	vm->agent_fd = -1;
	vm->console_log[0] = '\0';
	vm->tap[0] = '\0';
	struct spawn s = {
	    .agent = -1, .tap = -1, .log = -1, .null = -1, .errpipe = -1};
	int rfd = -1;
	pid_t pid = -1;
	int rc = prepare(c, vm, &s, &rfd, err);
	if (rc == 0) {
		pid = fork();
		if (pid == 0)
			child(&s);
		if (pid < 0)
			rc = husk_err_errno(err, errno, "fork");
	}
	/* Only the VMM holds its end now: EOF on ours means it is gone. */
	close_spawn(&s);
	if (rc == 0)
		rc = await_exec(pid, rfd, s.prog, err);
	if (rfd >= 0)
		close(rfd);
	if (rc < 0) {
		if (vm->agent_fd >= 0)
			close(vm->agent_fd);
		vm->agent_fd = -1;
		return rc;
	}
	vm->pid = pid;
	return 0;
}

int husk_vm_wait(struct husk_vm *vm, bool kill_first, int *status,
                 struct husk_error *err)
{
	if (vm->pid <= 0) {
		/* Reaped elsewhere: still, the socket is ours to close. */
		if (vm->agent_fd >= 0)
			close(vm->agent_fd);
		vm->agent_fd = -1;
		return husk_err(err, ECHILD, "no VMM to wait for");
	}
	if (kill_first)
		kill(vm->pid, SIGKILL);
	int st = 0, rc = 0;
	while (waitpid(vm->pid, &st, 0) < 0) {
		if (errno != EINTR) {
			rc = husk_err_errno(err, errno, "wait for VMM %d",
			                    (int)vm->pid);
			break;
		}
	}
	if (rc == 0 && status)
		*status = st;
	vm->pid = -1;
	if (vm->agent_fd >= 0)
		close(vm->agent_fd);
	vm->agent_fd = -1;
	return rc;
}

/* The directory of the running program, for assets installed beside it. */
static int exe_dir(char *out, size_t cap, struct husk_error *err)
{
	ssize_t n = readlink("/proc/self/exe", out, cap - 1);
	if (n < 0)
		return husk_err_errno(err, errno, "readlink /proc/self/exe");
	if ((size_t)n >= cap - 1)
		return husk_err(err, ENAMETOOLONG, "/proc/self/exe");
	out[n] = '\0';
	char *slash = strrchr(out, '/');
	if (slash)
		*slash = '\0';
	return 0;
}

/* One asset: from env when set, else DIR/rel; must exist unless hint is
 * NULL. */
static int find_asset(char *out, size_t cap, const char *env, const char *dir,
                      const char *rel, const char *hint, struct husk_error *err)
{
	const char *set = getenv(env);
	int n = set && *set ? snprintf(out, cap, "%s", set)
	                    : snprintf(out, cap, "%s/%s", dir, rel);
	if (n < 0 || (size_t)n >= cap)
		return husk_err(err, ENAMETOOLONG, "path of %s", rel);
	if (!hint || access(out, R_OK) == 0)
		return 0;
	int e = errno;
	if (set && *set)
		return husk_err_errno(err, e, "%s=%s", env, out);
	return husk_err(err, e, "%s: %s: %s (or set %s)", out, strerror(e),
	                hint, env);
}

int husk_vm_find_assets(char *kernel, char *initrd, char *husk_vmm, size_t cap,
                        struct husk_error *err)
{
	char dir[PATH_MAX];
	int rc = exe_dir(dir, sizeof(dir), err);
	if (rc == 0 && kernel)
		rc = find_asset(
		    kernel, cap, "HUSK_KERNEL", dir, "../share/husk/vmlinux",
		    "the guest kernel is missing: run `make kernels`", err);
	if (rc == 0 && initrd)
		rc = find_asset(
		    initrd, cap, "HUSK_INITRD", dir, "../share/husk/agent.cpio",
		    "the agent initramfs is missing: run `make`", err);
	if (rc == 0 && husk_vmm)
		rc = find_asset(husk_vmm, cap, "HUSK_VMM", dir, "husk-vmm",
		                NULL, err);
	return rc;
}
