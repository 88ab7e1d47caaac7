/* vCPU set-up for a 64-bit Linux entry, and the vCPU thread's run loop. */
#ifndef HUSK_VMM_CPU_H
#define HUSK_VMM_CPU_H

#include "boot.h"
#include "vm.h"

/* CPUID (KVM's supported set adjusted for a guest: hypervisor bit,
 * topology, APIC ids), MSRs, FPU and LAPIC LINT pins for every vCPU; the
 * boot vCPU also gets long mode and the entry point. The others wait for
 * the guest's INIT/SIPI in the in-kernel LAPIC. */
int cpu_configure_all(struct vm *vm, const struct boot_entry *entry,
                      struct husk_error *err);

/* Creates one thread per vCPU; each waits until cpu_release_all(), so
 * that the sandbox (which needs the threads to exist: it is applied to all
 * of them at once) goes up before the first guest instruction. */
int cpu_start_all(struct vm *vm, struct husk_error *err);
void cpu_release_all(struct vm *vm);

/* Kicks every vCPU out of KVM_RUN (after vm_request_exit) and joins the
 * threads. */
void cpu_stop_all(struct vm *vm);

#endif
