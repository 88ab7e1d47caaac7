/* Linux loader. Offsets into boot_params ("the zero page") are those of
 * Documentation/x86/zero-page.rst and boot.rst; we write them by offset
 * into a byte array rather than through a copy of the kernel's struct. */
#include "boot.h"
#include "le_bytes.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
	BP_SIZE = 4096,
	BP_E820_ENTRIES = 0x1e8,
	BP_SETUP_SECTS = 0x1f1,
	BP_BOOT_FLAG = 0x1fe,
	BP_JUMP = 0x200,
	BP_HEADER = 0x202,
	BP_VERSION = 0x206,
	BP_TYPE_OF_LOADER = 0x210,
	BP_LOADFLAGS = 0x211,
	BP_RAMDISK_IMAGE = 0x218,
	BP_RAMDISK_SIZE = 0x21c,
	BP_HEAP_END_PTR = 0x224,
	BP_CMD_LINE_PTR = 0x228,
	BP_INITRD_ADDR_MAX = 0x22c,
	BP_KERNEL_ALIGNMENT = 0x230,
	BP_XLOADFLAGS = 0x236,
	BP_CMDLINE_SIZE = 0x238,
	BP_INIT_SIZE = 0x260,
	BP_E820_TABLE = 0x2d0,
	BP_E820_MAX = 128,
	HDRS_MAGIC = 0x53726448, /* "HdrS" */
	MIN_PROTOCOL = 0x020c,   /* 2.12: XLF_KERNEL_64 and 64-bit entry */
	XLF_KERNEL_64 = 1,
	LOADED_HIGH = 0x01,
	CAN_USE_HEAP = 0x80,
	E820_RAM = 1,
	E820_RESERVED = 2,
};

/* Copies bytes into guest RAM, failing when any part is outside it. */
static int load(struct guest_mem *mem, uint64_t gpa, const void *src,
                uint64_t len, const char *what, struct husk_error *err)
{
	if (len && guest_mem_write(mem, gpa, src, len) < 0)
		return husk_err(
		    err, ENOMEM,
		    "%s (%llu bytes at 0x%llx) does not fit in guest "
		    "RAM",
		    what, (unsigned long long)len, (unsigned long long)gpa);
	return 0;
}

int boot_load_elf(struct guest_mem *mem, const uint8_t *img, uint64_t size,
                  struct boot_entry *entry, struct husk_error *err)
{
	Elf64_Ehdr eh;
	if (size < sizeof(eh))
		return husk_err(err, ENOEXEC, "kernel: truncated ELF header");
	memcpy(&eh, img, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64)
		return husk_err(err, ENOEXEC, "kernel: not an x86-64 ELF");
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 ||
	    eh.e_phoff > size ||
	    (size - eh.e_phoff) / sizeof(Elf64_Phdr) < eh.e_phnum)
		return husk_err(err, ENOEXEC, "kernel: bad program headers");

	uint64_t end = 0;
	int loaded = 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, img + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (ph.p_filesz > ph.p_memsz || ph.p_offset > size ||
		    size - ph.p_offset < ph.p_filesz)
			return husk_err(err, ENOEXEC,
			                "kernel: segment %u lies outside the "
			                "file",
			                i);
		uint8_t *dst = guest_ptr(mem, ph.p_paddr, ph.p_memsz);
		if (!dst)
			return husk_err(err, ENOMEM,
			                "kernel: segment %u (0x%llx+0x%llx) is "
			                "outside guest RAM",
			                i, (unsigned long long)ph.p_paddr,
			                (unsigned long long)ph.p_memsz);
		memcpy(dst, img + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		if (ph.p_paddr + ph.p_memsz > end)
			end = ph.p_paddr + ph.p_memsz;
		loaded++;
	}
	if (!loaded)
		return husk_err(err, ENOEXEC, "kernel: no loadable segment");
	/* vmlinux's entry is the physical address of startup_64. */
	if (!guest_ptr(mem, eh.e_entry, 1))
		return husk_err(err, ENOEXEC, "kernel: entry 0x%llx not in RAM",
		                (unsigned long long)eh.e_entry);
	entry->rip = eh.e_entry;
	entry->kernel_end = end;
	return 0;
}

int boot_load_bzimage(struct guest_mem *mem, const uint8_t *img, uint64_t size,
                      uint8_t *params, struct boot_entry *entry,
                      struct husk_error *err)
{
	if (size < 0x300 || le_get32(img, BP_HEADER) != HDRS_MAGIC)
		return husk_err(err, ENOEXEC, "kernel: not a bzImage");
	if (le_get16(img, BP_VERSION) < MIN_PROTOCOL)
		return husk_err(err, ENOEXEC,
		                "kernel: boot protocol %x.%02x is older than "
		                "2.12",
		                img[BP_VERSION + 1], img[BP_VERSION]);
	if (!(le_get16(img, BP_XLOADFLAGS) & XLF_KERNEL_64))
		return husk_err(err, ENOEXEC,
		                "kernel: bzImage has no 64-bit entry point");
	uint64_t setup_sects = img[BP_SETUP_SECTS] ? img[BP_SETUP_SECTS] : 4;
	uint64_t setup_size = (setup_sects + 1) * 512;
	if (setup_size >= size)
		return husk_err(err, ENOEXEC, "kernel: truncated bzImage");

	/* The setup header runs from 0x1f1 to 0x202 + the byte at 0x201. */
	uint64_t hdr_end = BP_HEADER + img[BP_JUMP + 1];
	if (hdr_end > BP_E820_TABLE)
		hdr_end = BP_E820_TABLE;
	memcpy(params + BP_SETUP_SECTS, img + BP_SETUP_SECTS,
	       hdr_end - BP_SETUP_SECTS);

	uint64_t kernel_size = size - setup_size;
	uint64_t init_size = le_get32(img, BP_INIT_SIZE);
	int rc = load(mem, BOOT_BZIMAGE_LOAD, img + setup_size, kernel_size,
	              "kernel", err);
	if (rc < 0)
		return rc;
	/* The decompressor works in place: init_size bytes from the load
	 * address must be RAM. */
	if (init_size < kernel_size)
		init_size = kernel_size;
	if (!guest_ptr(mem, BOOT_BZIMAGE_LOAD, init_size))
		return husk_err(err, ENOMEM,
		                "kernel: needs %llu MiB of RAM to decompress",
		                (unsigned long long)(init_size >> 20) + 2);
	entry->rip = BOOT_BZIMAGE_LOAD + 0x200; /* startup_64 */
	entry->kernel_end = BOOT_BZIMAGE_LOAD + init_size;
	return 0;
}

static void e820_add(uint8_t *params, uint64_t addr, uint64_t size,
                     uint32_t type)
{
	uint8_t n = params[BP_E820_ENTRIES];
	size_t off = BP_E820_TABLE + (size_t)n * 20;
	le_put64(params, off, addr);
	le_put64(params, off + 8, size);
	le_put32(params, off + 16, type);
	params[BP_E820_ENTRIES] = n + 1;
}

static void fill_e820(const struct guest_mem *mem, uint8_t *params)
{
	params[BP_E820_ENTRIES] = 0;
	e820_add(params, 0, BOOT_EBDA, E820_RAM);
	e820_add(params, BOOT_EBDA, BOOT_HIGH_MEMORY - BOOT_EBDA,
	         E820_RESERVED);
	for (unsigned i = 0; i < mem->nregions; i++) {
		const struct guest_mem_region *r = &mem->regions[i];
		uint64_t start =
		    r->gpa < BOOT_HIGH_MEMORY ? BOOT_HIGH_MEMORY : r->gpa;
		if (r->gpa + r->size > start)
			e820_add(params, start, r->gpa + r->size - start,
			         E820_RAM);
	}
}

static int write_page_tables_and_gdt(struct guest_mem *mem,
                                     struct husk_error *err)
{
	uint64_t pml4[512] = {BOOT_PDPT | 3};
	uint64_t pdpt[512] = {0};
	uint64_t pd[4 * 512];
	for (int i = 0; i < 4; i++)
		pdpt[i] = (BOOT_PD + i * 0x1000) | 3;
	for (int i = 0; i < 4 * 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83; /* present, rw, 2 MiB */
	static const uint64_t gdt[] = {
	    0,
	    0,
	    0x00af9b000000ffffULL, /* BOOT_CS: 64-bit code */
	    0x00cf93000000ffffULL, /* BOOT_DS: data */
	    0x008f8b000000ffffULL, /* BOOT_TSS: busy TSS, for VM entry */
	};
	int rc;
	if ((rc = load(mem, BOOT_PML4, pml4, sizeof(pml4), "PML4", err)) < 0 ||
	    (rc = load(mem, BOOT_PDPT, pdpt, sizeof(pdpt), "PDPT", err)) < 0 ||
	    (rc = load(mem, BOOT_PD, pd, sizeof(pd), "PD", err)) < 0 ||
	    (rc = load(mem, BOOT_GDT, gdt, sizeof(gdt), "GDT", err)) < 0)
		return rc;
	return 0;
}

/* Places the initrd as high as the kernel allows, below the MMIO hole,
 * page aligned, above the kernel. */
static int load_initrd(struct guest_mem *mem, const uint8_t *img, uint64_t size,
                       uint8_t *params, uint64_t kernel_end,
                       struct husk_error *err)
{
	uint64_t max = le_get32(params, BP_INITRD_ADDR_MAX);
	if (max == 0)
		max = 0x37ffffff; /* the boot protocol's default */
	uint64_t top = mem->regions[0].gpa + mem->regions[0].size;
	if (top > max + 1)
		top = max + 1;
	if (size > top || ((top - size) & ~0xfffULL) < kernel_end)
		return husk_err(
		    err, ENOMEM,
		    "initrd (%llu KiB) does not fit above the kernel "
		    "in guest RAM",
		    (unsigned long long)size >> 10);
	uint64_t at = (top - size) & ~0xfffULL;
	int rc = load(mem, at, img, size, "initrd", err);
	if (rc < 0)
		return rc;
	le_put32(params, BP_RAMDISK_IMAGE, (uint32_t)at);
	le_put32(params, BP_RAMDISK_SIZE, (uint32_t)size);
	return 0;
}

static int map_file(const char *path, const char *what, uint8_t **img,
                    uint64_t *size, struct husk_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return husk_err_errno(err, errno, "%s %s", what, path);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		close(fd);
		return husk_err(err, EINVAL, "%s %s: not a non-empty file",
		                what, path);
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return husk_err_errno(err, errno, "%s %s: mmap", what, path);
	*img = p;
	*size = (uint64_t)st.st_size;
	return 0;
}

int boot_load_linux(struct guest_mem *mem, const char *kernel_path,
                    const char *initrd_path, const char *cmdline, int ncpus,
                    struct boot_entry *entry, struct husk_error *err)
{
	uint8_t params[BP_SIZE] = {0};
	uint8_t *img = NULL, *rd = NULL;
	uint64_t size = 0, rd_size = 0;
	size_t cmdlen = strlen(cmdline);
	int rc;

	if (cmdlen >= BOOT_CMDLINE_MAX)
		return husk_err(err, E2BIG,
		                "kernel command line is %zu bytes; at most %d",
		                cmdlen, BOOT_CMDLINE_MAX - 1);
	if ((rc = map_file(kernel_path, "kernel", &img, &size, err)) < 0)
		return rc;
	if (size >= 4 && !memcmp(img, ELFMAG, SELFMAG)) {
		rc = boot_load_elf(mem, img, size, entry, err);
		/* What a bzImage's header would have told the kernel. */
		le_put16(params, BP_BOOT_FLAG, 0xaa55);
		le_put32(params, BP_HEADER, HDRS_MAGIC);
		le_put32(params, BP_KERNEL_ALIGNMENT, 0x01000000);
		le_put32(params, BP_INITRD_ADDR_MAX, 0x7fffffff);
	} else {
		rc = boot_load_bzimage(mem, img, size, params, entry, err);
	}
	munmap(img, size);
	if (rc < 0)
		return rc;
	if (le_get32(params, BP_CMDLINE_SIZE) &&
	    cmdlen > le_get32(params, BP_CMDLINE_SIZE))
		return husk_err(err, E2BIG,
		                "kernel command line is %zu bytes; this kernel "
		                "takes %u",
		                cmdlen, le_get32(params, BP_CMDLINE_SIZE));

	params[BP_TYPE_OF_LOADER] = 0xff;
	params[BP_LOADFLAGS] |= LOADED_HIGH | CAN_USE_HEAP;
	le_put16(params, BP_HEAP_END_PTR, 0xfe00 - 0x200);
	le_put32(params, BP_CMD_LINE_PTR, BOOT_CMDLINE);
	if ((rc = load(mem, BOOT_CMDLINE, cmdline, cmdlen + 1, "command line",
	               err)) < 0)
		return rc;

	if (initrd_path) {
		if ((rc = map_file(initrd_path, "initrd", &rd, &rd_size, err)) <
		    0)
			return rc;
		rc = load_initrd(mem, rd, rd_size, params, entry->kernel_end,
		                 err);
		munmap(rd, rd_size);
		if (rc < 0)
			return rc;
	}
	fill_e820(mem, params);
	if ((rc = load(mem, BOOT_PARAMS, params, sizeof(params), "boot_params",
	               err)) < 0 ||
	    (rc = write_page_tables_and_gdt(mem, err)) < 0 ||
	    (rc = boot_write_mptable(mem, ncpus, err)) < 0)
		return rc;
	entry->boot_params = BOOT_PARAMS;
	return 0;
}
