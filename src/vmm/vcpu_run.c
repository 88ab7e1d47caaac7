/* The vCPU threads: KVM_RUN in a loop, exits dispatched through a table.
 * A vCPU thread never exits the process; it records why the VM must stop
 * (vm_request_exit) and returns. */
#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>

#include "cpu.h"
#include "log.h"

#define VCPU_KICK_SIGNAL SIGUSR1

typedef int (*exit_handler)(struct vcpu *c);

static void dump_registers(struct vcpu *c)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	if (ioctl(c->fd, KVM_GET_REGS, &r) < 0 ||
	    ioctl(c->fd, KVM_GET_SREGS, &s) < 0)
		return;
	vmm_log("vcpu%d: rip=%016llx rsp=%016llx rflags=%08llx", c->index,
	        r.rip, r.rsp, r.rflags);
	vmm_log("vcpu%d: rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx",
	        c->index, r.rax, r.rbx, r.rcx, r.rdx);
	vmm_log("vcpu%d: rsi=%016llx rdi=%016llx rbp=%016llx", c->index, r.rsi,
	        r.rdi, r.rbp);
	vmm_log("vcpu%d: cr0=%llx cr2=%llx cr3=%llx cr4=%llx efer=%llx "
	        "cs=%04x",
	        c->index, s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.cs.selector);
}

static int on_io(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	uint32_t size = run->io.size;
	/* KVM guarantees data_offset and count stay inside the run page;
	 * size is 1, 2 or 4. */
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	for (uint32_t i = 0; i < run->io.count; i++, data += size) {
		if (run->io.direction == KVM_EXIT_IO_OUT)
			bus_write(&c->vm->pio, run->io.port, data, size);
		else
			bus_read(&c->vm->pio, run->io.port, data, size);
	}
	return 0;
}

static int on_mmio(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	uint32_t len = run->mmio.len;
	if (len == 0 || len > sizeof(run->mmio.data))
		return 0;
	bool claimed = run->mmio.is_write
	                   ? bus_write(&c->vm->mmio, run->mmio.phys_addr,
	                               run->mmio.data, len)
	                   : bus_read(&c->vm->mmio, run->mmio.phys_addr,
	                              run->mmio.data, len);
	if (!claimed)
		vmm_debug("vcpu%d: unclaimed MMIO %s at 0x%llx", c->index,
		          run->mmio.is_write ? "write" : "read",
		          (unsigned long long)run->mmio.phys_addr);
	return 0;
}

static int on_shutdown(struct vcpu *c)
{
	vmm_debug("vcpu%d: triple fault", c->index);
	vm_request_exit(c->vm, VM_EXIT_TRIPLE_FAULT);
	return -1;
}

static int on_system_event(struct vcpu *c)
{
	switch (c->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_exit(c->vm, VM_EXIT_POWEROFF);
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_exit(c->vm, VM_EXIT_REBOOT);
		break;
	default:
		vmm_log("vcpu%d: system event %u", c->index,
		        c->run->system_event.type);
		vm_request_exit(c->vm, VM_EXIT_CRASH);
	}
	return -1;
}

static int on_internal_error(struct vcpu *c)
{
	vmm_log("vcpu%d: KVM_EXIT_INTERNAL_ERROR, suberror %u", c->index,
	        c->run->internal.suberror);
	dump_registers(c);
	vm_request_exit(c->vm, VM_EXIT_CRASH);
	return -1;
}

static int on_fail_entry(struct vcpu *c)
{
	vmm_log("vcpu%d: KVM_EXIT_FAIL_ENTRY, reason 0x%llx", c->index,
	        (unsigned long long)
	            c->run->fail_entry.hardware_entry_failure_reason);
	dump_registers(c);
	vm_request_exit(c->vm, VM_EXIT_CRASH);
	return -1;
}

static const exit_handler handlers[] = {
    [KVM_EXIT_IO] = on_io,
    [KVM_EXIT_MMIO] = on_mmio,
    [KVM_EXIT_SHUTDOWN] = on_shutdown,
    [KVM_EXIT_SYSTEM_EVENT] = on_system_event,
    [KVM_EXIT_INTERNAL_ERROR] = on_internal_error,
    [KVM_EXIT_FAIL_ENTRY] = on_fail_entry,
};

static void *vcpu_thread(void *arg)
{
	struct vcpu *c = arg;
	struct vm *vm = c->vm;
	pthread_mutex_lock(&vm->start_lock);
	while (!vm->released)
		pthread_cond_wait(&vm->start_cond, &vm->start_lock);
	pthread_mutex_unlock(&vm->start_lock);
	while (atomic_load(&vm->exit_reason) == VM_EXIT_RUNNING) {
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			vmm_log("vcpu%d: KVM_RUN: %s", c->index,
			        strerror(errno));
			vm_request_exit(vm, VM_EXIT_CRASH);
			break;
		}
		uint32_t reason = c->run->exit_reason;
		exit_handler h = reason < sizeof(handlers) / sizeof(handlers[0])
		                     ? handlers[reason]
		                     : NULL;
		if (!h) {
			vmm_log("vcpu%d: unexpected exit %u", c->index, reason);
			dump_registers(c);
			vm_request_exit(vm, VM_EXIT_CRASH);
			break;
		}
		if (h(c) < 0)
			break;
	}
	return NULL;
}

static void ignore_signal(int sig)
{
	(void)sig;
}

int cpu_start_all(struct vm *vm, struct husk_error *err)
{
	/* The kick signal only interrupts KVM_RUN; no SA_RESTART. */
	struct sigaction sa = {.sa_handler = ignore_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
	pthread_mutex_init(&vm->start_lock, NULL);
	pthread_cond_init(&vm->start_cond, NULL);
	for (int i = 0; i < vm->ncpus; i++) {
		struct vcpu *c = &vm->cpus[i];
		int rc = pthread_create(&c->thread, NULL, vcpu_thread, c);
		if (rc != 0) {
			/* The caller releases the ones already waiting; they
			 * see the exit and end. */
			vm_request_exit(vm, VM_EXIT_ERROR);
			return husk_err(err, rc, "vCPU %d thread: %s", i,
			                strerror(rc));
		}
		c->started = true;
	}
	return 0;
}

void cpu_release_all(struct vm *vm)
{
	pthread_mutex_lock(&vm->start_lock);
	vm->released = true;
	pthread_cond_broadcast(&vm->start_cond);
	pthread_mutex_unlock(&vm->start_lock);
}

void cpu_stop_all(struct vm *vm)
{
	for (int i = 0; i < vm->ncpus; i++) {
		struct vcpu *c = &vm->cpus[i];
		if (!c->started)
			continue;
		/* immediate_exit closes the race with a vCPU about to enter
		 * KVM_RUN; the signal gets one already inside out. */
		__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		pthread_kill(c->thread, VCPU_KICK_SIGNAL);
	}
	for (int i = 0; i < vm->ncpus; i++) {
		if (vm->cpus[i].started) {
			pthread_join(vm->cpus[i].thread, NULL);
			vm->cpus[i].started = false;
		}
	}
}
