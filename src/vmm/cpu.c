#include "cpu.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

enum {
	CPUID_MAX_ENTRIES = 256,
	MSR_IA32_TSC = 0x10,
	MSR_IA32_SYSENTER_CS = 0x174,
	MSR_IA32_SYSENTER_ESP = 0x175,
	MSR_IA32_SYSENTER_EIP = 0x176,
	MSR_IA32_MISC_ENABLE = 0x1a0,
	MSR_MTRR_DEF_TYPE = 0x2ff,
	MSR_STAR = 0xc0000081,
	MSR_LSTAR = 0xc0000082,
	MSR_CSTAR = 0xc0000083,
	MSR_SYSCALL_MASK = 0xc0000084,
	MSR_KERNEL_GS_BASE = 0xc0000102,
	APIC_LVT0 = 0x350,
	APIC_LVT1 = 0x360,
	APIC_MODE_NMI = 4,
	APIC_MODE_EXTINT = 7,
};

static struct kvm_cpuid2 *supported_cpuid(int kvm, struct husk_error *err)
{
	size_t size = sizeof(struct kvm_cpuid2) +
	              CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *cpuid = calloc(1, size);
	if (!cpuid) {
		husk_err(err, ENOMEM, "CPUID table");
		return NULL;
	}
	cpuid->nent = CPUID_MAX_ENTRIES;
	if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
		husk_err_errno(err, errno, "KVM_GET_SUPPORTED_CPUID");
		free(cpuid);
		return NULL;
	}
	return cpuid;
}

/* What this vCPU should see: its APIC id, the CPU count, and that it runs
 * under a hypervisor (so Linux uses kvmclock and paravirt features). */
static void adjust_cpuid(struct kvm_cpuid2 *cpuid, int index, int ncpus)
{
	for (uint32_t i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffff) |
			         ((uint32_t)index << 24) |
			         ((uint32_t)ncpus << 16);
			e->ecx |= 1u << 31; /* hypervisor */
			if (ncpus > 1)
				e->edx |= 1u << 28; /* HTT: ebx[23:16] valid */
			break;
		case 0xb:
		case 0x1f:
			e->edx = (uint32_t)index; /* x2APIC id */
			break;
		case 6:
			e->ecx &= ~(1u << 3); /* no energy-perf-bias MSR */
			break;
		}
	}
}

static int set_msrs(int fd, struct husk_error *err)
{
	static const uint32_t zeroed[] = {
	    MSR_IA32_SYSENTER_CS,
	    MSR_IA32_SYSENTER_ESP,
	    MSR_IA32_SYSENTER_EIP,
	    MSR_STAR,
	    MSR_LSTAR,
	    MSR_CSTAR,
	    MSR_SYSCALL_MASK,
	    MSR_KERNEL_GS_BASE,
	    MSR_IA32_TSC,
	};
	enum { MAX_MSRS = 16 };
	union {
		struct kvm_msrs hdr;
		uint8_t bytes[sizeof(struct kvm_msrs) +
		              MAX_MSRS * sizeof(struct kvm_msr_entry)];
	} msrs;
	memset(&msrs, 0, sizeof(msrs));
	struct kvm_msr_entry *e = msrs.hdr.entries;
	unsigned n = 0;
	for (size_t i = 0; i < sizeof(zeroed) / sizeof(zeroed[0]); i++)
		e[n++].index = zeroed[i];
	/* MTRRs enabled, write-back by default: without it Linux maps all
	 * RAM uncached. */
	e[n].index = MSR_MTRR_DEF_TYPE;
	e[n++].data = (1u << 11) | 6;
	msrs.hdr.nmsrs = n;
	int set = ioctl(fd, KVM_SET_MSRS, &msrs);
	if (set < 0 || (unsigned)set != n)
		return husk_err(err, EINVAL, "KVM_SET_MSRS set %d of %u", set,
		                n);
	return 0;
}

static int set_lapic_lints(int fd, struct husk_error *err)
{
	struct kvm_lapic_state lapic;
	if (ioctl(fd, KVM_GET_LAPIC, &lapic) < 0)
		return husk_err_errno(err, errno, "KVM_GET_LAPIC");
	uint32_t v;
	memcpy(&v, &lapic.regs[APIC_LVT0], 4);
	v = (v & ~0x700u) | (APIC_MODE_EXTINT << 8);
	memcpy(&lapic.regs[APIC_LVT0], &v, 4);
	memcpy(&v, &lapic.regs[APIC_LVT1], 4);
	v = (v & ~0x700u) | (APIC_MODE_NMI << 8);
	memcpy(&lapic.regs[APIC_LVT1], &v, 4);
	if (ioctl(fd, KVM_SET_LAPIC, &lapic) < 0)
		return husk_err_errno(err, errno, "KVM_SET_LAPIC");
	return 0;
}

static int set_long_mode_entry(int fd, const struct boot_entry *entry,
                               struct husk_error *err)
{
	struct kvm_sregs s;
	if (ioctl(fd, KVM_GET_SREGS, &s) < 0)
		return husk_err_errno(err, errno, "KVM_GET_SREGS");
	struct kvm_segment code = {.base = 0,
	                           .limit = 0xffffffff,
	                           .selector = BOOT_CS,
	                           .type = 11,
	                           .present = 1,
	                           .s = 1,
	                           .l = 1,
	                           .g = 1};
	struct kvm_segment data = {.base = 0,
	                           .limit = 0xffffffff,
	                           .selector = BOOT_DS,
	                           .type = 3,
	                           .present = 1,
	                           .s = 1,
	                           .db = 1,
	                           .g = 1};
	struct kvm_segment tss = {.base = 0,
	                          .limit = 0xfffff,
	                          .selector = BOOT_TSS,
	                          .type = 11,
	                          .present = 1,
	                          .g = 1};
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.tr = tss;
	s.gdt.base = BOOT_GDT;
	s.gdt.limit = 5 * 8 - 1;
	s.idt.base = 0;
	s.idt.limit = 0;
	s.cr3 = BOOT_PML4;
	s.cr4 = 1u << 5;                     /* PAE */
	s.cr0 = (1u << 31) | (1u << 4) | 1u; /* PG | ET | PE */
	s.efer = (1u << 8) | (1u << 10);     /* LME | LMA */
	if (ioctl(fd, KVM_SET_SREGS, &s) < 0)
		return husk_err_errno(err, errno, "KVM_SET_SREGS");
	struct kvm_regs r = {
	    .rip = entry->rip,
	    .rsi = entry->boot_params,
	    .rsp = BOOT_STACK,
	    .rbp = BOOT_STACK,
	    .rflags = 2,
	};
	if (ioctl(fd, KVM_SET_REGS, &r) < 0)
		return husk_err_errno(err, errno, "KVM_SET_REGS");
	return 0;
}

int cpu_configure_all(struct vm *vm, const struct boot_entry *entry,
                      struct husk_error *err)
{
	struct kvm_cpuid2 *base = supported_cpuid(vm->kvm_fd, err);
	if (!base)
		return -ENOMEM;
	size_t size = sizeof(struct kvm_cpuid2) +
	              base->nent * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *cpuid = malloc(size);
	int rc = cpuid ? 0 : husk_err(err, ENOMEM, "CPUID table");
	for (int i = 0; rc == 0 && i < vm->ncpus; i++) {
		int fd = vm->cpus[i].fd;
		memcpy(cpuid, base, size);
		adjust_cpuid(cpuid, i, vm->ncpus);
		if (ioctl(fd, KVM_SET_CPUID2, cpuid) < 0) {
			rc = husk_err_errno(err, errno, "KVM_SET_CPUID2");
			break;
		}
		struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
		if (ioctl(fd, KVM_SET_FPU, &fpu) < 0) {
			rc = husk_err_errno(err, errno, "KVM_SET_FPU");
			break;
		}
		if ((rc = set_msrs(fd, err)) < 0 ||
		    (rc = set_lapic_lints(fd, err)) < 0)
			break;
		if (i == 0 && (rc = set_long_mode_entry(fd, entry, err)) < 0)
			break;
	}
	free(cpuid);
	free(base);
	return rc;
}
