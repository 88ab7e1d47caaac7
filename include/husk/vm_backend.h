/* Starting a microVM for `husk run`: husk-vmm or QEMU, one guest.
 *
 * Both backends boot the same ELF vmlinux with the same agent initramfs
 * and the same disks, and both carry the host<->agent protocol over a
 * virtio-console port named "husk.agent" whose host end is one side of a
 * socketpair: the VMM inherits the other side (husk-vmm `--port
 * husk.agent=fd:3`, QEMU `-chardev socket,id=agent,fd=3`). The connection
 * therefore exists before the VMM starts, and reads on it see EOF once the
 * VMM is gone, whichever way it ended.
 */
#ifndef HUSK_VM_BACKEND_H
#define HUSK_VM_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "husk/error.h"
#include "husk/kvm_probe.h"

/* The guest agent's console port. */
#define HUSK_VM_AGENT_PORT "husk.agent"
/* The kernel command line every VM starts from (cmdline_extra follows);
 * debug drops "quiet". */
#define HUSK_VM_CMDLINE "console=ttyS0 reboot=k panic=-1 quiet"
/* What a VM's serial output file and its VMM's own log are called. */
#define HUSK_VM_CONSOLE_LOG "console.log"
#define HUSK_VM_VMM_LOG     "vmm.log"

enum husk_vmm {
	HUSK_VMM_AUTO = 0, /* husk-vmm on hardware KVM, else QEMU with TCG */
	HUSK_VMM_HUSK,
	HUSK_VMM_QEMU,
};

struct husk_vm_disk {
	const char *path;
	bool readonly;
	const char *serial; /* NULL, or <= 20 of [A-Za-z0-9_-] */
};

/* The guest's network (docs/networking.md). USER: a virtio-net NIC on a
 * user-mode NAT (libslirp in husk-vmm, -netdev user in QEMU), the guest at
 * 10.0.2.15/24 behind 10.0.2.2 with DNS at 10.0.2.3, which the kernel
 * command line tells the agent (HUSK_VM_NET_CMDLINE). */
enum husk_vm_net {
	HUSK_VM_NET_NONE = 0, /* no NIC: only loopback */
	HUSK_VM_NET_USER,
	/* A tap on a host bridge (husk/tap.h): husk_vm_start creates it,
	 * brings it up and bridges it before the VMM starts, and the VMM
	 * inherits the descriptor (husk-vmm --net tap,fd=4, QEMU -netdev
	 * tap,fd=4); it disappears when the VMM ends. The guest's address
	 * is the user's (tap_guest_ip), its MAC derived from it. */
	HUSK_VM_NET_TAP,
};
#define HUSK_VM_NET_CMDLINE "husk.net=10.0.2.15/24,10.0.2.2,10.0.2.3"

/* A published port: host_ip:host_port on the host to guest_port in the
 * guest. */
struct husk_vm_portfwd {
	bool udp;
	const char *host_ip; /* dotted IPv4; NULL or "": every address */
	unsigned host_port;  /* 1..65535 */
	unsigned guest_port; /* 1..65535 */
};

/* A host directory shared with the guest over virtio-9p (container
 * volumes, bundle bind mounts); the guest mounts it by tag:
 * `mount -t 9p -o trans=virtio,version=9p2000.L TAG DIR`. husk-vmm serves
 * it itself (--share, confined to the directory; docs/vmm.md); QEMU with
 * -fsdev local,security_model=none. */
#define HUSK_VM_MAX_SHARES 8
struct husk_vm_share {
	const char *tag;  /* 1..31 of [A-Za-z0-9_-], unique in a VM */
	const char *path; /* a directory; no ',' (neither VMM escapes it) */
	bool readonly;
};

struct husk_vm_config {
	enum husk_vmm vmm; /* HUSK or QEMU (resolve AUTO with husk_vm_choose) */
	bool qemu_kvm;     /* QEMU: -enable-kvm -cpu host, else TCG -cpu max */
	const char *kernel; /* ELF vmlinux (QEMU boots it by PVH) */
	const char *initrd; /* the agent initramfs */
	/* Appended to HUSK_VM_CMDLINE; may be NULL. */
	const char *cmdline_extra;
	unsigned memory_mib;
	unsigned cpus; /* 1..32 */
	/* In order: /dev/vda, /dev/vdb, ... */
	const struct husk_vm_disk *disks;
	size_t ndisks;
	const char *run_dir;       /* per-VM directory (exists): logs go here */
	const char *husk_vmm_path; /* the husk-vmm binary */
	const char *qemu_path;     /* NULL: "qemu-system-x86_64" from PATH */
	bool debug;                /* husk-vmm --debug, kernel without quiet */
	enum husk_vm_net net;
	const struct husk_vm_portfwd *ports; /* only with HUSK_VM_NET_USER */
	size_t nports;
	/* HUSK_VM_NET_TAP: the bridge (required), the tap's name (NULL: the
	 * kernel picks husk0, husk1, ...), the guest's "A.B.C.D/PREFIX", its
	 * gateway (NULL: the bridge's own address when it is in the guest's
	 * subnet, else no default route) and DNS server (NULL: none). */
	const char *tap_bridge;
	const char *tap_ifname;
	const char *tap_guest_ip;
	const char *tap_gateway;
	const char *tap_dns;
	const struct husk_vm_share *shares; /* at most HUSK_VM_MAX_SHARES */
	size_t nshares;
};

struct husk_vm {
	pid_t pid;    /* the VMM, a child of the caller; -1 when none */
	int agent_fd; /* stream socket to the guest's "husk.agent" port */
	char console_log[4096]; /* the guest's serial output file */
	char tap[16];           /* HUSK_VM_NET_TAP: the tap's name */
};

/* "husk", "qemu" or "auto". */
int husk_vmm_parse(const char *name, enum husk_vmm *out,
                   struct husk_error *err);

/* "husk", "qemu" or "auto". */
const char *husk_vmm_name(enum husk_vmm vmm);

/* Resolves a wanted backend against this host's /dev/kvm (probed with
 * husk_kvm_probe). AUTO: husk-vmm on hardware KVM, otherwise QEMU with
 * TCG, with a one-line reason in notice for the CLI to print. QEMU: KVM
 * acceleration on hardware KVM, TCG otherwise (with a notice). HUSK on a
 * host without hardware KVM: ENODEV, the message says why. notice is ""
 * when there is nothing to say. */
int husk_vm_choose(enum husk_vmm want, enum husk_vmm *got, bool *qemu_kvm,
                   char *notice, size_t notice_cap, struct husk_error *err);

/* The same decision from a given probe report (pure; for tests). */
int husk_vm_choose_for(enum husk_vmm want, const struct husk_kvm_report *r,
                       enum husk_vmm *got, bool *qemu_kvm, char *notice,
                       size_t notice_cap, struct husk_error *err);

/* Builds the VMM's argv (NULL-terminated; free with husk_vm_argv_free).
 * agent_fd_child is the descriptor number under which the VMM inherits
 * its end of the agent socket; negative: no agent port. EINVAL for a
 * config the VMM would refuse (no kernel, bad serial, 0 CPUs, ...). */
int husk_vm_argv(const struct husk_vm_config *c, int agent_fd_child,
                 char ***argv, struct husk_error *err);
void husk_vm_argv_free(char **argv);

/* Starts the VMM as a child: stdin /dev/null, stdout and stderr to
 * RUN_DIR/vmm.log, the guest's serial console in RUN_DIR/console.log, no
 * other descriptor of ours, default signal mask. It gets SIGKILL when the
 * calling thread ends (PR_SET_PDEATHSIG), so a VM never outlives the husk
 * that started it. On return vm->agent_fd is connected to the VMM's agent
 * port; the VMM may still fail later (read vmm.log after husk_vm_wait). */
int husk_vm_start(const struct husk_vm_config *c, struct husk_vm *vm,
                  struct husk_error *err);

/* Waits for the VMM to end (SIGKILLs it first when kill_first) and stores
 * its wait status in *status (may be NULL). Closes vm->agent_fd, even when
 * there is no VMM left to wait for (ECHILD). husk-vmm exits 0 on the husk
 * power port and 2 on a guest reboot; QEMU (run with -no-reboot) exits 0
 * on a guest reboot and knows no power port. */
int husk_vm_wait(struct husk_vm *vm, bool kill_first, int *status,
                 struct husk_error *err);

/* The last nlines non-empty lines of a log file, joined by sep, into out
 * (cap bytes, truncated; "" when the file is missing or empty). Returns
 * how many lines it wrote. */
int husk_log_tail(const char *path, int nlines, const char *sep, char *out,
                  size_t cap);

/* Reaps the VMM if it ends within wait_ms (vm->pid is then -1); status
 * may be NULL. */
bool husk_vm_reap_within(struct husk_vm *vm, int wait_ms, int *status);
/* Gives a VMM told to power off grace_ms to end, then SIGKILLs it;
 * reaped either way (vm->pid -1). Nothing when vm->pid is not a VMM. */
void husk_vm_end(struct husk_vm *vm, int grace_ms);

/* For an error message once the agent went away: how the VMM ended (it
 * is reaped if it ends within wait_ms; vm->pid is then -1) and the last
 * lines of RUN_DIR's vmm.log and console.log, in one line. */
void husk_vm_describe_end(struct husk_vm *vm, const char *run_dir, int wait_ms,
                          char *out, size_t cap);

/* Where the guest kernel, the agent initramfs and husk-vmm are, each into
 * a buffer of cap bytes (any may be NULL): $HUSK_KERNEL, $HUSK_INITRD and
 * $HUSK_VMM when set, otherwise DIR/../share/husk/vmlinux,
 * DIR/../share/husk/agent.cpio and DIR/husk-vmm with DIR the directory of
 * the running program. ENOENT when the kernel or the initramfs is missing
 * (the message says how to get it); husk-vmm is not checked, since a QEMU
 * host does not need it. */
int husk_vm_find_assets(char *kernel, char *initrd, char *husk_vmm, size_t cap,
                        struct husk_error *err);

#endif
