/* Can /dev/kvm run a standard Linux guest?
 *
 * Some hosts expose a /dev/kvm that is not hardware virtualization: PVM
 * (module kvm_pvm, a shadow-paging hypervisor for nested clouds) runs small
 * payloads but kills a stock Linux guest with KVM_EXIT_INTERNAL_ERROR at its
 * first exception or interrupt. husk must tell such a host from a good one
 * before it boots anything, and say what it will do instead.
 */
#ifndef HUSK_KVM_PROBE_H
#define HUSK_KVM_PROBE_H

#include <stdbool.h>

#include "husk/error.h"

enum husk_kvm_kind {
	HUSK_KVM_HARDWARE, /* hardware-assisted KVM: husk-vmm can run here */
	HUSK_KVM_PVM,      /* PVM, or a KVM that fails the same way */
	HUSK_KVM_UNUSABLE, /* /dev/kvm opens but the probe guest fails */
	HUSK_KVM_NONE,     /* no /dev/kvm, or no permission to open it */
};

/* What the probe guest did; see kvm_probe.c for the guest itself. */
enum husk_probe_guest {
	HUSK_PROBE_GUEST_NOT_RUN, /* /dev/kvm could not be opened */
	HUSK_PROBE_GUEST_NOT_KVM, /* it opened, but is not a KVM device */
	HUSK_PROBE_GUEST_OK,      /* took an exception and an interrupt */
	HUSK_PROBE_GUEST_INTERNAL_ERROR, /* KVM_EXIT_INTERNAL_ERROR on the way
	                                  */
	HUSK_PROBE_GUEST_FAILED,         /* anything else went wrong */
};

struct husk_kvm_report {
	enum husk_kvm_kind kind;
	enum husk_probe_guest guest;
	int api_version;        /* KVM_GET_API_VERSION, 0 when not opened */
	bool pvm_module;        /* /sys/module/kvm_pvm exists */
	char vendor_module[16]; /* kvm_intel, kvm_amd, kvm_pvm or "" */
	char detail[256];       /* what the probe saw, for a person */
};

/* Probes `dev` (normally "/dev/kvm"); module information is read from
 * `sys_module_dir` (normally "/sys/module"). The probe guest runs in a
 * child process with a time limit, so a hypervisor that hangs it cannot
 * hang the caller. Fails only when the probe itself cannot be carried out
 * (fork, pipe); an unusable KVM is a successful probe with that verdict. */
int husk_kvm_probe(const char *dev, const char *sys_module_dir,
                   struct husk_kvm_report *report, struct husk_error *err);

/* The fast check for a VMM's start path: whether kvm_pvm is loaded (no
 * probe guest, no fork). husk-vmm refuses such a host at once; the full
 * probe is for `husk check` and backend selection. */
bool husk_kvm_pvm_loaded(const char *sys_module_dir);

/* The verdict from the facts; pure, so that it can be tested alone. */
enum husk_kvm_kind husk_kvm_classify(enum husk_probe_guest guest,
                                     bool pvm_module);

/* "hardware", "pvm", "unusable", "none". */
const char *husk_kvm_kind_name(enum husk_kvm_kind kind);

/* One sentence: what husk does on such a host. */
const char *husk_kvm_consequence(enum husk_kvm_kind kind);

#endif
