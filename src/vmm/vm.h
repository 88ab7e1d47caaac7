/* One microVM: the KVM handles, guest memory, the device bus and the
 * vCPUs. Everything a snapshot will need is plain data reachable from here;
 * the host-only parts (fds, threads, pointers) can be rebuilt. */
#ifndef HUSK_VMM_VM_H
#define HUSK_VMM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "guest_mem.h"
#include "husk/error.h"

#define VM_MAX_CPUS 32

/* Why the VM stopped; also husk-vmm's exit status (docs/vmm.md). */
enum vm_exit {
	VM_EXIT_RUNNING = -1,
	VM_EXIT_POWEROFF = 0,     /* the guest wrote the husk power port */
	VM_EXIT_ERROR = 1,        /* husk-vmm's own failure */
	VM_EXIT_REBOOT = 2,       /* i8042 reset (Linux reboot=k, panic) */
	VM_EXIT_TRIPLE_FAULT = 3, /* KVM_EXIT_SHUTDOWN (reboot=t, or a crash) */
	VM_EXIT_CRASH = 4,        /* KVM could not go on: internal error etc. */
	VM_EXIT_NO_KVM = 5,       /* this host's /dev/kvm cannot run a guest */
	VM_EXIT_STOPPED = 6, /* stopped on request (control socket, signal) */
};

struct vcpu {
	struct vm *vm;
	int index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
};

struct vm {
	int kvm_fd;
	int vm_fd;
	long run_size;
	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	int ncpus;
	struct vcpu cpus[VM_MAX_CPUS];
	/* First reason to stop wins; the main thread waits for it. */
	_Atomic int exit_reason;
	/* vCPU threads wait until released (after the sandbox is up). */
	pthread_mutex_t start_lock;
	pthread_cond_t start_cond;
	bool released;
	int stop_eventfd; /* written when exit_reason is set */
};

/* Opens KVM, creates the VM with its memory, in-kernel irqchip and PIT,
 * and creates ncpus vCPUs (not yet configured). */
int vm_create(struct vm *vm, uint64_t mem_size, int ncpus,
              struct husk_error *err);
void vm_destroy(struct vm *vm);

/* Records why the VM stops (the first call wins) and wakes the main
 * thread; vCPU threads notice at their next exit. */
void vm_request_exit(struct vm *vm, enum vm_exit why);

/* Pulses an interrupt line of the in-kernel PIC/IOAPIC (edge). */
int vm_irq_pulse(struct vm *vm, unsigned gsi);

#endif
