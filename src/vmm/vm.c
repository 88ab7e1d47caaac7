/* VM creation: KVM handles, memory slots, in-kernel irqchip and PIT. */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* Addresses KVM needs for Intel's real-mode emulation: three pages for
 * the TSS and one for the identity map, just below the 4 GiB BIOS area and
 * inside the MMIO hole, never RAM. */
#define KVM_TSS_ADDR          0xfffbd000UL
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ULL

static int check_extensions(int kvm, struct husk_error *err)
{
	static const struct {
		int cap;
		const char *name;
	} needed[] = {
	    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
	    {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
	    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
	    {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
	    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
	    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
	    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
	};
	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		if (ioctl(kvm, KVM_CHECK_EXTENSION, needed[i].cap) <= 0)
			return husk_err(err, ENOTSUP, "KVM lacks %s",
			                needed[i].name);
	}
	return 0;
}

static int add_memory_slots(struct vm *vm, struct husk_error *err)
{
	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		const struct guest_mem_region *r = &vm->mem.regions[i];
		struct kvm_userspace_memory_region slot = {
		    .slot = i,
		    .guest_phys_addr = r->gpa,
		    .memory_size = r->size,
		    .userspace_addr = (uintptr_t)(vm->mem.base + r->offset),
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
			return husk_err_errno(
			    err, errno, "KVM_SET_USER_MEMORY_REGION %u", i);
	}
	return 0;
}

int vm_create(struct vm *vm, uint64_t mem_size, int ncpus,
              struct husk_error *err)
{
	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = vm->stop_eventfd = -1;
	vm->mem.fd = -1;
	atomic_store(&vm->exit_reason, VM_EXIT_RUNNING);
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	if (ncpus < 1 || ncpus > VM_MAX_CPUS)
		return husk_err(err, EINVAL, "--cpus must be 1..%d",
		                VM_MAX_CPUS);

	int rc;
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return husk_err_errno(err, errno, "/dev/kvm");
	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		return husk_err(err, ENOTSUP,
		                "/dev/kvm: unexpected API version");
	if ((rc = check_extensions(vm->kvm_fd, err)) < 0)
		return rc;
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (long)sizeof(struct kvm_run))
		return husk_err_errno(err, errno, "KVM_GET_VCPU_MMAP_SIZE");
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return husk_err_errno(err, errno, "KVM_CREATE_VM");
	vm->stop_eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_eventfd < 0)
		return husk_err_errno(err, errno, "eventfd");

	if ((rc = guest_mem_create(&vm->mem, mem_size, err)) < 0)
		return rc;
	if ((rc = add_memory_slots(vm, err)) < 0)
		return rc;

	uint64_t identity = KVM_IDENTITY_MAP_ADDR;
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0 ||
	    ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0)
		return husk_err_errno(err, errno, "KVM TSS/identity map");
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return husk_err_errno(err, errno, "KVM_CREATE_IRQCHIP");
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return husk_err_errno(err, errno, "KVM_CREATE_PIT2");

	for (int i = 0; i < ncpus; i++) {
		struct vcpu *c = &vm->cpus[i];
		c->vm = vm;
		c->index = i;
		c->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, i);
		if (c->fd < 0)
			return husk_err_errno(err, errno, "KVM_CREATE_VCPU %d",
			                      i);
		vm->ncpus = i + 1;
		c->run = mmap(NULL, (size_t)vm->run_size,
		              PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
		if (c->run == MAP_FAILED) {
			c->run = NULL;
			return husk_err_errno(err, errno, "mmap vCPU %d", i);
		}
	}
	return 0;
}

void vm_destroy(struct vm *vm)
{
	for (int i = 0; i < vm->ncpus; i++) {
		if (vm->cpus[i].run)
			munmap(vm->cpus[i].run, (size_t)vm->run_size);
		if (vm->cpus[i].fd >= 0)
			close(vm->cpus[i].fd);
	}
	guest_mem_destroy(&vm->mem);
	if (vm->stop_eventfd >= 0)
		close(vm->stop_eventfd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->ncpus = 0;
	vm->kvm_fd = vm->vm_fd = vm->stop_eventfd = -1;
}

void vm_request_exit(struct vm *vm, enum vm_exit why)
{
	int running = VM_EXIT_RUNNING;
	if (atomic_compare_exchange_strong(&vm->exit_reason, &running,
	                                   (int)why)) {
		uint64_t one = 1;
		ssize_t n = write(vm->stop_eventfd, &one, sizeof(one));
		(void)n; /* a full eventfd has already woken the main thread */
	}
}

int vm_irq_pulse(struct vm *vm, unsigned gsi)
{
	struct kvm_irq_level level = {.irq = gsi, .level = 1};
	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &level) < 0)
		return -errno;
	level.level = 0;
	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &level) < 0)
		return -errno;
	return 0;
}
