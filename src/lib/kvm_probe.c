/* The KVM probe: facts from sysfs plus a tiny 64-bit guest that takes one
 * exception (int3) and one external interrupt (an MSI through the in-kernel
 * LAPIC), the two things a stock Linux guest does within its first
 * milliseconds and the two things PVM cannot deliver to a guest that was not
 * built for it. */
#include "husk/kvm_probe.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Guest-physical layout of the probe guest (one 2 MiB identity page). */
enum {
	PROBE_MEM_SIZE = 0x200000,
	PROBE_GDT = 0x0500,
	PROBE_IDT = 0x0600,
	PROBE_CODE = 0x1000,
	PROBE_BP_HANDLER = 0x2000,
	PROBE_IRQ_HANDLER = 0x2100,
	PROBE_STACK_TOP = 0x8000,
	PROBE_PML4 = 0x9000,
	PROBE_PDPT = 0xa000,
	PROBE_PD = 0xb000,
	PROBE_VECTOR = 0x30,
	PORT_BP_TAKEN = 0x11,
	PORT_RETURNED = 0x10,
	PORT_IRQ_TAKEN = 0x12,
	PROBE_TIME_LIMIT_S = 20, /* generous: emulated hosts are slow */
};

/* int3; out 0x10,al; sti; hlt; jmp back to hlt */
static const uint8_t probe_main[] = {0xcc, 0xe6, PORT_RETURNED, 0xfb,
                                     0xf4, 0xeb, 0xfd};
/* out 0x11,al; iretq */
static const uint8_t probe_bp_handler[] = {0xe6, PORT_BP_TAKEN, 0x48, 0xcf};
/* out 0x12,al; hlt; jmp back to hlt */
static const uint8_t probe_irq_handler[] = {0xe6, PORT_IRQ_TAKEN, 0xf4, 0xeb,
                                            0xfd};

struct probe_result {
	enum husk_probe_guest guest;
	char detail[200];
};

enum husk_kvm_kind husk_kvm_classify(enum husk_probe_guest guest,
                                     bool pvm_module)
{
	if (guest == HUSK_PROBE_GUEST_NOT_RUN)
		return HUSK_KVM_NONE;
	/* Whatever modules are loaded, this device is not theirs. */
	if (guest == HUSK_PROBE_GUEST_NOT_KVM)
		return HUSK_KVM_UNUSABLE;
	/* kvm_pvm is never hardware KVM, even if this small guest got through:
	 * it is known to fail later on paths the probe does not cover. */
	if (pvm_module || guest == HUSK_PROBE_GUEST_INTERNAL_ERROR)
		return HUSK_KVM_PVM;
	if (guest == HUSK_PROBE_GUEST_OK)
		return HUSK_KVM_HARDWARE;
	return HUSK_KVM_UNUSABLE;
}

const char *husk_kvm_kind_name(enum husk_kvm_kind kind)
{
	switch (kind) {
	case HUSK_KVM_HARDWARE: return "hardware";
	case HUSK_KVM_PVM: return "pvm";
	case HUSK_KVM_UNUSABLE: return "unusable";
	case HUSK_KVM_NONE: return "none";
	}
	return "unknown";
}

const char *husk_kvm_consequence(enum husk_kvm_kind kind)
{
	switch (kind) {
	case HUSK_KVM_HARDWARE: return "husk-vmm runs microVMs on this KVM";
	case HUSK_KVM_PVM:
		return "a standard Linux guest cannot run on this /dev/kvm; "
		       "husk refuses husk-vmm here and uses the qemu backend "
		       "with TCG emulation (slow)";
	case HUSK_KVM_UNUSABLE:
		return "/dev/kvm cannot run the probe guest; husk uses the "
		       "qemu backend with TCG emulation (slow)";
	case HUSK_KVM_NONE:
		return "no usable /dev/kvm; husk uses the qemu backend with "
		       "TCG emulation (slow)";
	}
	return "";
}

static void put(uint8_t *mem, uint64_t gpa, const void *bytes, size_t len)
{
	/* Offsets are our own constants, all far inside the 2 MiB page. */
	memcpy(mem + gpa, bytes, len);
}

static void put_u64(uint8_t *mem, uint64_t gpa, uint64_t v)
{
	put(mem, gpa, &v, sizeof(v));
}

static void put_idt_gate(uint8_t *mem, unsigned vector, uint64_t handler)
{
	/* 64-bit interrupt gate: selector 8, present, DPL 0, type 0xe. */
	uint64_t lo = (handler & 0xffff) | (8ULL << 16) | (0x8eULL << 40) |
	              (((handler >> 16) & 0xffff) << 48);
	put_u64(mem, PROBE_IDT + vector * 16, lo);
	put_u64(mem, PROBE_IDT + vector * 16 + 8, handler >> 32);
}

static void build_guest_image(uint8_t *mem)
{
	put_u64(mem, PROBE_PML4, PROBE_PDPT | 3);
	put_u64(mem, PROBE_PDPT, PROBE_PD | 3);
	put_u64(mem, PROBE_PD, 0x83); /* 2 MiB page at 0, present, writable */
	put_u64(mem, PROBE_GDT + 8, 0x00af9a000000ffffULL);  /* 64-bit code */
	put_u64(mem, PROBE_GDT + 16, 0x00cf92000000ffffULL); /* data */
	put_idt_gate(mem, 3, PROBE_BP_HANDLER);
	put_idt_gate(mem, PROBE_VECTOR, PROBE_IRQ_HANDLER);
	put(mem, PROBE_CODE, probe_main, sizeof(probe_main));
	put(mem, PROBE_BP_HANDLER, probe_bp_handler, sizeof(probe_bp_handler));
	put(mem, PROBE_IRQ_HANDLER, probe_irq_handler,
	    sizeof(probe_irq_handler));
}

static int set_long_mode(int vcpu)
{
	struct kvm_sregs s;
	if (ioctl(vcpu, KVM_GET_SREGS, &s) < 0)
		return -1;
	struct kvm_segment code = {.limit = 0xffffffff,
	                           .selector = 8,
	                           .type = 11,
	                           .present = 1,
	                           .s = 1,
	                           .l = 1,
	                           .g = 1};
	struct kvm_segment data = {.limit = 0xffffffff,
	                           .selector = 16,
	                           .type = 3,
	                           .present = 1,
	                           .s = 1,
	                           .db = 1,
	                           .g = 1};
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.gdt.base = PROBE_GDT;
	s.gdt.limit = 3 * 8 - 1;
	s.idt.base = PROBE_IDT;
	s.idt.limit = 256 * 16 - 1;
	s.cr3 = PROBE_PML4;
	s.cr4 = 1u << 5;                     /* PAE */
	s.cr0 = (1u << 31) | (1u << 4) | 1u; /* PG | ET | PE */
	s.efer = (1u << 8) | (1u << 10);     /* LME | LMA */
	if (ioctl(vcpu, KVM_SET_SREGS, &s) < 0)
		return -1;
	struct kvm_regs r = {
	    .rip = PROBE_CODE, .rsp = PROBE_STACK_TOP, .rflags = 2};
	return ioctl(vcpu, KVM_SET_REGS, &r);
}

static int set_supported_cpuid(int kvm, int vcpu)
{
	enum { MAX_ENTRIES = 256 };
	size_t size = sizeof(struct kvm_cpuid2) +
	              MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *cpuid = calloc(1, size);
	if (!cpuid)
		return -1;
	cpuid->nent = MAX_ENTRIES;
	int rc = ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid);
	if (rc == 0)
		rc = ioctl(vcpu, KVM_SET_CPUID2, cpuid);
	free(cpuid);
	return rc;
}

/* Software-enables the LAPIC and queues an MSI for the probe vector; it is
 * delivered once the guest executes sti. */
static int queue_interrupt(int vm, int vcpu)
{
	struct kvm_lapic_state lapic;
	if (ioctl(vcpu, KVM_GET_LAPIC, &lapic) < 0)
		return -1;
	uint32_t svr = 0x100 | 0xff; /* APIC software enable, spurious 0xff */
	memcpy(&lapic.regs[0xf0], &svr, sizeof(svr));
	if (ioctl(vcpu, KVM_SET_LAPIC, &lapic) < 0)
		return -1;
	struct kvm_msi msi = {.address_lo = 0xfee00000, .data = PROBE_VECTOR};
	return ioctl(vm, KVM_SIGNAL_MSI, &msi) < 0 ? -1 : 0;
}

static void fail(struct probe_result *res, enum husk_probe_guest g,
                 const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(struct probe_result *res, enum husk_probe_guest g,
                 const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
	va_end(ap);
	res->guest = g;
}

/* Runs the guest until it has reported all three ports in order. */
static void run_guest(int vcpu, struct kvm_run *run, struct probe_result *res)
{
	static const uint16_t expected[] = {PORT_BP_TAKEN, PORT_RETURNED,
	                                    PORT_IRQ_TAKEN};
	static const char *const step[] = {"int3 delivery", "iretq",
	                                   "interrupt delivery"};
	for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			fail(res, HUSK_PROBE_GUEST_FAILED, "KVM_RUN: %s",
			     strerror(errno));
			return;
		}
		if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR) {
			fail(res, HUSK_PROBE_GUEST_INTERNAL_ERROR,
			     "probe guest: %s ended in KVM_EXIT_INTERNAL_ERROR "
			     "(suberror %u)",
			     step[i], run->internal.suberror);
			return;
		}
		if (run->exit_reason != KVM_EXIT_IO ||
		    run->io.port != expected[i]) {
			fail(res, HUSK_PROBE_GUEST_FAILED,
			     "probe guest: %s: unexpected exit %u (port 0x%x)",
			     step[i], run->exit_reason,
			     run->exit_reason == KVM_EXIT_IO ? run->io.port
			                                     : 0);
			return;
		}
	}
	fail(res, HUSK_PROBE_GUEST_OK,
	     "probe guest took an exception and an interrupt");
}

static void probe_guest(int kvm, struct probe_result *res)
{
	int vm = -1, vcpu = -1;
	uint8_t *mem = MAP_FAILED;
	struct kvm_run *run = MAP_FAILED;
	long run_size = 0;

	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		fail(res, HUSK_PROBE_GUEST_FAILED, "KVM_CREATE_VM: %s",
		     strerror(errno));
		goto out;
	}
	mem = mmap(NULL, PROBE_MEM_SIZE, PROT_READ | PROT_WRITE,
	           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		fail(res, HUSK_PROBE_GUEST_FAILED, "mmap: %s", strerror(errno));
		goto out;
	}
	build_guest_image(mem);
	struct kvm_userspace_memory_region region = {
	    .slot = 0,
	    .memory_size = PROBE_MEM_SIZE,
	    .userspace_addr = (uintptr_t)mem};
	/* The TSS address matters only to Intel's real-mode emulation; it must
	 * not overlap guest RAM. */
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0 ||
	    ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0 ||
	    ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) {
		fail(res, HUSK_PROBE_GUEST_FAILED, "VM set-up: %s",
		     strerror(errno));
		goto out;
	}
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vcpu < 0 || run_size <= 0) {
		fail(res, HUSK_PROBE_GUEST_FAILED, "vCPU creation: %s",
		     strerror(errno));
		goto out;
	}
	run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
	           vcpu, 0);
	if (run == MAP_FAILED) {
		fail(res, HUSK_PROBE_GUEST_FAILED, "mmap kvm_run: %s",
		     strerror(errno));
		goto out;
	}
	if (set_supported_cpuid(kvm, vcpu) < 0 || set_long_mode(vcpu) < 0 ||
	    queue_interrupt(vm, vcpu) < 0) {
		fail(res, HUSK_PROBE_GUEST_FAILED, "vCPU set-up: %s",
		     strerror(errno));
		goto out;
	}
	run_guest(vcpu, run, res);
out:
	if (run != MAP_FAILED)
		munmap(run, (size_t)run_size);
	if (mem != MAP_FAILED)
		munmap(mem, PROBE_MEM_SIZE);
	if (vcpu >= 0)
		close(vcpu);
	if (vm >= 0)
		close(vm);
}

/* Runs probe_guest in a child: the alarm bounds a guest that hangs inside
 * KVM_RUN, and nothing the hypervisor does to the child reaches us. */
static int probe_in_child(int kvm, struct probe_result *res,
                          struct husk_error *err)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return husk_err_errno(err, errno, "kvm probe: pipe");
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(fds[0]);
		close(fds[1]);
		return husk_err_errno(err, e, "kvm probe: fork");
	}
	if (pid == 0) {
		close(fds[0]);
		signal(SIGALRM, SIG_DFL);
		alarm(PROBE_TIME_LIMIT_S);
		struct probe_result r = {.guest = HUSK_PROBE_GUEST_FAILED};
		probe_guest(kvm, &r);
		ssize_t n = write(fds[1], &r, sizeof(r));
		_exit(n == (ssize_t)sizeof(r) ? 0 : 1);
	}
	close(fds[1]);
	struct probe_result r;
	ssize_t n;
	do
		n = read(fds[0], &r, sizeof(r));
	while (n < 0 && errno == EINTR);
	close(fds[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (n == (ssize_t)sizeof(r)) {
		r.detail[sizeof(r.detail) - 1] = '\0';
		*res = r;
	} else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
		fail(res, HUSK_PROBE_GUEST_FAILED,
		     "probe guest did not finish within %d s",
		     PROBE_TIME_LIMIT_S);
	} else {
		fail(res, HUSK_PROBE_GUEST_FAILED,
		     "probe process ended without a result (status 0x%x)",
		     status);
	}
	return 0;
}

static bool module_loaded(const char *sys_module_dir, const char *name)
{
	char path[512];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", sys_module_dir, name);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool husk_kvm_pvm_loaded(const char *sys_module_dir)
{
	return module_loaded(sys_module_dir, "kvm_pvm");
}

int husk_kvm_probe(const char *dev, const char *sys_module_dir,
                   struct husk_kvm_report *report, struct husk_error *err)
{
	static const char *const vendors[] = {"kvm_pvm", "kvm_intel",
	                                      "kvm_amd"};
	memset(report, 0, sizeof(*report));
	for (size_t i = 0; i < sizeof(vendors) / sizeof(vendors[0]); i++) {
		if (module_loaded(sys_module_dir, vendors[i])) {
			snprintf(report->vendor_module,
			         sizeof(report->vendor_module), "%s",
			         vendors[i]);
			break;
		}
	}
	report->pvm_module = husk_kvm_pvm_loaded(sys_module_dir);

	struct probe_result res = {.guest = HUSK_PROBE_GUEST_NOT_RUN};
	int kvm = open(dev, O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		snprintf(res.detail, sizeof(res.detail), "%s: %s", dev,
		         strerror(errno));
	} else {
		report->api_version = ioctl(kvm, KVM_GET_API_VERSION, 0);
		if (report->api_version != KVM_API_VERSION) {
			fail(&res, HUSK_PROBE_GUEST_NOT_KVM,
			     "%s: KVM API version %d, expected %d", dev,
			     report->api_version, KVM_API_VERSION);
		} else {
			int rc = probe_in_child(kvm, &res, err);
			if (rc < 0) {
				close(kvm);
				return rc;
			}
		}
		close(kvm);
	}
	report->guest = res.guest;
	report->kind = husk_kvm_classify(res.guest, report->pvm_module);
	snprintf(report->detail, sizeof(report->detail), "%s", res.detail);
	return 0;
}
