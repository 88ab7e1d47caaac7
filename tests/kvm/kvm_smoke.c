/* kvm_smoke: does /dev/kvm execute guest code? Creates a VM with 32 KiB
 * of RAM, runs a few real-mode instructions and checks every exit and the
 * final registers. The test suite runs it inside the KVM-capable test
 * machine (tests/bats/testvm.bats); it needs nothing of husk. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

enum { RAM_SIZE = 0x8000, CODE = 0x1000, MMIO_ADDR = 0x9000 };

static const uint8_t code[] = {
    0xb8, 0x34, 0x12, /* mov ax, 0x1234 */
    0xbb, 0x02, 0x01, /* mov bx, 0x0102 */
    0x01, 0xd8,       /* add ax, bx       -> 0x1336 */
    0xe6, 0x10,       /* out 0x10, al     -> PIO exit */
    0xa3, 0x00, 0x90, /* mov [0x9000], ax -> MMIO exit (no RAM there) */
    0x40,             /* inc ax           -> 0x1337 */
    0xf4,             /* hlt              -> HLT exit */
};

static int failures;

static void check(int ok, const char *what)
{
	printf("%s %s\n", ok ? "ok:  " : "FAIL:", what);
	if (!ok)
		failures++;
}

static int xioctl(int fd, unsigned long req, void *arg, const char *name)
{
	int rc = ioctl(fd, req, arg);
	if (rc < 0) {
		fprintf(stderr, "kvm_smoke: %s: %s\n", name, strerror(errno));
		exit(2);
	}
	return rc;
}

int main(int argc, char **argv)
{
	const char *dev = argc > 1 ? argv[1] : "/dev/kvm";
	int kvm = open(dev, O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		fprintf(stderr, "kvm_smoke: %s: %s\n", dev, strerror(errno));
		return 2;
	}
	check(xioctl(kvm, KVM_GET_API_VERSION, NULL, "API") == KVM_API_VERSION,
	      "KVM API version 12");
	int vm = xioctl(kvm, KVM_CREATE_VM, 0, "KVM_CREATE_VM");
	uint8_t *ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
	                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ram == MAP_FAILED)
		return 2;
	memcpy(ram + CODE, code, sizeof(code));
	struct kvm_userspace_memory_region region = {
	    .memory_size = RAM_SIZE, .userspace_addr = (uintptr_t)ram};
	xioctl(vm, KVM_SET_USER_MEMORY_REGION, &region, "set memory");
	int vcpu = xioctl(vm, KVM_CREATE_VCPU, 0, "KVM_CREATE_VCPU");
	int run_size = xioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, NULL, "mmap size");
	struct kvm_run *run = mmap(NULL, (size_t)run_size,
	                           PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		return 2;

	struct kvm_sregs sregs;
	xioctl(vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	sregs.ds.base = 0;
	sregs.ds.selector = 0;
	xioctl(vcpu, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
	struct kvm_regs regs = {.rip = CODE, .rflags = 2};
	xioctl(vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS");

	xioctl(vcpu, KVM_RUN, NULL, "KVM_RUN");
	check(run->exit_reason == KVM_EXIT_IO &&
	          run->io.direction == KVM_EXIT_IO_OUT &&
	          run->io.port == 0x10 && run->io.size == 1 &&
	          ((uint8_t *)run)[run->io.data_offset] == 0x36,
	      "exit 1: out 0x10 with al=0x36");

	xioctl(vcpu, KVM_RUN, NULL, "KVM_RUN");
	check(run->exit_reason == KVM_EXIT_MMIO && run->mmio.is_write &&
	          run->mmio.phys_addr == MMIO_ADDR && run->mmio.len == 2 &&
	          run->mmio.data[0] == 0x36 && run->mmio.data[1] == 0x13,
	      "exit 2: 2-byte MMIO write of 0x1336 at 0x9000");

	xioctl(vcpu, KVM_RUN, NULL, "KVM_RUN");
	check(run->exit_reason == KVM_EXIT_HLT, "exit 3: hlt");

	xioctl(vcpu, KVM_GET_REGS, &regs, "KVM_GET_REGS");
	check((regs.rax & 0xffff) == 0x1337, "ax = 0x1337");
	check((regs.rbx & 0xffff) == 0x0102, "bx = 0x0102");
	check(regs.rip == CODE + sizeof(code), "rip just past hlt");

	printf("kvm_smoke: %s\n", failures ? "FAILED" : "passed");
	return failures ? 1 : 0;
}
