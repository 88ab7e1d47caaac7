/* husk-vmm's command line. Parsing is pure (no files opened) so that it
 * can be tested alone; main.c acts on the result. */
#ifndef HUSK_VMM_OPTIONS_H
#define HUSK_VMM_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "husk/error.h"
#include "net_options.h"
#include "share_options.h"

#define VMM_MAX_DISKS       8
#define VMM_MAX_PORTS       8
#define VMM_DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=-1"

struct vmm_disk {
	const char *path;
	bool read_only;
	const char *serial; /* NULL: derived from the file name */
};

/* A virtio-console port: a name the guest sees in
 * /sys/class/virtio-ports/vportNpM/name, bound to a host unix socket path
 * (husk-vmm listens there) or to an inherited fd. */
struct vmm_port {
	const char *name;
	const char *socket; /* NULL when fd is used */
	int fd;
};

struct vmm_mmio_slot {
	uint64_t base;
	unsigned irq;
};

struct vmm_options {
	const char *kernel;
	const char *initrd;
	const char *cmdline; /* before the virtio_mmio.device= entries */
	uint64_t memory_mib;
	int cpus;
	int console_fd; /* the serial console's output: stdout or a file */
	const char *console_path;
	const char *control; /* control socket path, or NULL */
	bool debug;
	bool rng;
	bool seccomp;
	unsigned ndisks;
	struct vmm_disk disks[VMM_MAX_DISKS];
	unsigned nports;
	struct vmm_port ports[VMM_MAX_PORTS];
	struct vmm_net net; /* --net; default none: no NIC */
	unsigned nshares;   /* --share: virtio-9p devices */
	struct vmm_share shares[VMM_MAX_SHARES];
};

/* 0 on success, 1 when --help was printed, <0 on a bad command line
 * (err says what). Opens the --serial-log file, nothing else. Strings in
 * opt point into argv. */
int vmm_parse_options(int argc, char **argv, struct vmm_options *opt,
                      struct husk_error *err);

/* The kernel command line: opt->cmdline, then one
 * virtio_mmio.device=4K@BASE:IRQ per slot. */
int vmm_build_cmdline(const struct vmm_options *opt,
                      const struct vmm_mmio_slot *slots, unsigned nslots,
                      char *buf, size_t len, struct husk_error *err);

#endif
