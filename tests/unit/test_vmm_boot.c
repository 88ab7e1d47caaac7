/* The Linux loader against handmade kernels: ELF images and bzImage
 * buffers built byte by byte in memory, loaded into a wrapped fake guest
 * memory; the MP table checked the way Linux's mpparse reads it; and
 * boot_load_linux end to end with temp files, boot_params read back from
 * guest memory by offset (Documentation/x86/zero-page.rst). */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "husk/error.h"
#include "../../src/vmm/boot.h"
#include "../../src/vmm/guest_mem.h"

#define MiB      (1024ULL * 1024)
#define GiB      (1024 * MiB)
#define MEM_SIZE (64 * MiB)

/* ELF images: header at 0, program headers at PHOFF, segment bytes from
 * SEG_DATA. */
#define IMG_MAX  0x4000
#define PHOFF    0x40
#define SEG_DATA 0x1000

/* bzImage: setup_sects 4, so the protected-mode kernel starts at 0xa00. */
#define BZ_SETUP  0xa00
#define BZ_KERNEL 0x1000 /* bytes of "kernel" after the setup */

/* boot_params offsets the tests read back. */
enum {
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
};

struct fx {
	uint8_t *buf;
	struct guest_mem m;
	struct boot_entry entry;
	struct husk_error e;
	uint8_t img[IMG_MAX];
	uint64_t size;
	uint8_t params[4096];
	char tmp[4][64]; /* temp files, removed in teardown */
	unsigned ntmp;
};

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i * 13 + 7);
}

static void put16(uint8_t *p, size_t off, uint16_t v)
{
	memcpy(p + off, &v, 2);
}
static void put32(uint8_t *p, size_t off, uint32_t v)
{
	memcpy(p + off, &v, 4);
}
static uint16_t get16(const uint8_t *p, size_t off)
{
	uint16_t v;
	memcpy(&v, p + off, 2);
	return v;
}
static uint32_t get32(const uint8_t *p, size_t off)
{
	uint32_t v;
	memcpy(&v, p + off, 4);
	return v;
}
static uint64_t get64(const uint8_t *p, size_t off)
{
	uint64_t v;
	memcpy(&v, p + off, 8);
	return v;
}

static uint8_t *gp(struct fx *f, uint64_t gpa, uint64_t len)
{
	uint8_t *p = guest_ptr(&f->m, gpa, len);
	assert_non_null(p);
	return p;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s += *p++;
	return s;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || posix_memalign((void **)&f->buf, 4096, MEM_SIZE) != 0)
		return -1;
	/* Not zero, so that zeroing by the loader shows. */
	memset(f->buf, 0xcc, MEM_SIZE);
	if (guest_mem_wrap(&f->m, f->buf, MEM_SIZE) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	for (unsigned i = 0; i < f->ntmp; i++)
		unlink(f->tmp[i]);
	guest_mem_destroy(&f->m);
	free(f->buf);
	free(f);
	return 0;
}

/* ---- ELF ---- */

static Elf64_Ehdr get_eh(struct fx *f)
{
	Elf64_Ehdr eh;
	memcpy(&eh, f->img, sizeof(eh));
	return eh;
}
static void put_eh(struct fx *f, const Elf64_Ehdr *eh)
{
	memcpy(f->img, eh, sizeof(*eh));
}
static Elf64_Phdr get_ph(struct fx *f, unsigned i)
{
	Elf64_Phdr ph;
	memcpy(&ph, f->img + PHOFF + i * sizeof(ph), sizeof(ph));
	return ph;
}
static void put_ph(struct fx *f, unsigned i, const Elf64_Phdr *ph)
{
	memcpy(f->img + PHOFF + i * sizeof(*ph), ph, sizeof(*ph));
}

/* A vmlinux-like image: a PT_NOTE first, then text+bss at 16 MiB (0x300
 * bytes in the file, 0x2000 in memory), an empty PT_LOAD with a nonsense
 * address (skipped), and data at 20 MiB (0x100 bytes, no bss). */
#define TEXT_PA   (16 * MiB)
#define TEXT_FILE 0x300ULL
#define TEXT_MEM  0x2000ULL
#define DATA_PA   (20 * MiB)
#define DATA_FILE 0x100ULL
#define ENTRY     (TEXT_PA + 0x200)
static void good_elf(struct fx *f)
{
	memset(f->img, 0, sizeof(f->img));
	Elf64_Ehdr eh = {0};
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_EXEC;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_entry = ENTRY;
	eh.e_phoff = PHOFF;
	eh.e_ehsize = sizeof(eh);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = 4;
	put_eh(f, &eh);

	Elf64_Phdr note = {.p_type = PT_NOTE,
	                   .p_offset = SEG_DATA,
	                   .p_paddr = UINT64_MAX - 4,
	                   .p_filesz = 0x10,
	                   .p_memsz = 0x10};
	Elf64_Phdr text = {.p_type = PT_LOAD,
	                   .p_flags = PF_R | PF_X,
	                   .p_offset = SEG_DATA,
	                   .p_vaddr = 0xffffffff81000000ULL,
	                   .p_paddr = TEXT_PA,
	                   .p_filesz = TEXT_FILE,
	                   .p_memsz = TEXT_MEM};
	Elf64_Phdr empty = {.p_type = PT_LOAD,
	                    .p_offset = UINT64_MAX,
	                    .p_paddr = UINT64_MAX - 4,
	                    .p_filesz = 0,
	                    .p_memsz = 0};
	Elf64_Phdr data = {.p_type = PT_LOAD,
	                   .p_flags = PF_R | PF_W,
	                   .p_offset = SEG_DATA + TEXT_FILE,
	                   .p_paddr = DATA_PA,
	                   .p_filesz = DATA_FILE,
	                   .p_memsz = DATA_FILE};
	put_ph(f, 0, &note);
	put_ph(f, 1, &text);
	put_ph(f, 2, &empty);
	put_ph(f, 3, &data);
	for (uint64_t i = 0; i < TEXT_FILE + DATA_FILE; i++)
		f->img[SEG_DATA + i] = pattern(i);
	f->size = SEG_DATA + TEXT_FILE + DATA_FILE;
}

static int load_elf(struct fx *f)
{
	memset(&f->e, 0, sizeof(f->e));
	memset(&f->entry, 0, sizeof(f->entry));
	int rc = boot_load_elf(&f->m, f->img, f->size, &f->entry, &f->e);
	if (rc < 0) {
		assert_int_equal(f->e.code, -rc);
		assert_true(f->e.msg[0] != '\0');
	}
	return rc;
}

static void elf_good(void **state)
{
	struct fx *f = *state;
	good_elf(f);
	assert_int_equal(load_elf(f), 0);
	assert_int_equal(f->entry.rip, ENTRY);
	assert_int_equal(f->entry.kernel_end, DATA_PA + DATA_FILE);
	/* Text copied to p_paddr, its bss zeroed, nothing written past. */
	const uint8_t *t = gp(f, TEXT_PA, TEXT_MEM + 1);
	for (uint64_t i = 0; i < TEXT_FILE; i++)
		assert_int_equal(t[i], pattern(i));
	for (uint64_t i = TEXT_FILE; i < TEXT_MEM; i++)
		assert_int_equal(t[i], 0);
	assert_int_equal(t[TEXT_MEM], 0xcc);
	assert_int_equal(*gp(f, TEXT_PA - 1, 1), 0xcc);
	const uint8_t *d = gp(f, DATA_PA, DATA_FILE + 1);
	for (uint64_t i = 0; i < DATA_FILE; i++)
		assert_int_equal(d[i], pattern(TEXT_FILE + i));
	assert_int_equal(d[DATA_FILE], 0xcc);
}

static void elf_segment_at_ram_end(void **state)
{
	struct fx *f = *state;
	good_elf(f);
	/* The data segment's last byte is RAM's last byte. */
	Elf64_Phdr ph = get_ph(f, 3);
	ph.p_paddr = MEM_SIZE - DATA_FILE;
	put_ph(f, 3, &ph);
	assert_int_equal(load_elf(f), 0);
	assert_int_equal(f->entry.kernel_end, MEM_SIZE);
}

static void elf_not_x86_64(void **state)
{
	struct fx *f = *state;
	Elf64_Ehdr eh;

	good_elf(f);
	eh = get_eh(f);
	eh.e_ident[EI_CLASS] = ELFCLASS32;
	put_eh(f, &eh);
	assert_int_equal(load_elf(f), -ENOEXEC);

	good_elf(f);
	eh = get_eh(f);
	eh.e_ident[EI_DATA] = ELFDATA2MSB;
	put_eh(f, &eh);
	assert_int_equal(load_elf(f), -ENOEXEC);

	const uint16_t machines[] = {EM_386, EM_AARCH64, 0, 0xffff};
	for (size_t i = 0; i < sizeof(machines) / sizeof(machines[0]); i++) {
		good_elf(f);
		eh = get_eh(f);
		eh.e_machine = machines[i];
		put_eh(f, &eh);
		assert_int_equal(load_elf(f), -ENOEXEC);
	}

	/* Shorter than an ELF header. */
	good_elf(f);
	for (uint64_t n = 0; n < sizeof(Elf64_Ehdr); n += 7) {
		f->size = n;
		assert_int_equal(load_elf(f), -ENOEXEC);
	}
	/* Nothing was loaded by any of these. */
	assert_int_equal(*gp(f, TEXT_PA, 1), 0xcc);
}

static void elf_bad_program_headers(void **state)
{
	struct fx *f = *state;
	const struct {
		uint64_t phoff;
		uint16_t phnum, phentsize;
		uint64_t size; /* 0: keep */
	} cases[] = {
	    {PHOFF, 0, sizeof(Elf64_Phdr), 0},
	    {PHOFF, 4, sizeof(Elf64_Phdr) - 1, 0},
	    {PHOFF, 4, sizeof(Elf64_Phdr) + 8, 0},
	    {PHOFF, 4, 32, 0},
	    /* Past the end of the file, or partly. */
	    {IMG_MAX, 1, sizeof(Elf64_Phdr), IMG_MAX},
	    {IMG_MAX + 1, 1, sizeof(Elf64_Phdr), IMG_MAX},
	    {IMG_MAX - sizeof(Elf64_Phdr) + 1, 1, sizeof(Elf64_Phdr), IMG_MAX},
	    {IMG_MAX - 2 * sizeof(Elf64_Phdr), 3, sizeof(Elf64_Phdr), IMG_MAX},
	    {PHOFF, 0xffff, sizeof(Elf64_Phdr), IMG_MAX},
	    /* Values whose sum or product would wrap. */
	    {UINT64_MAX, 1, sizeof(Elf64_Phdr), 0},
	    {UINT64_MAX - 8, 0xffff, sizeof(Elf64_Phdr), 0},
	    {UINT64_MAX - sizeof(Elf64_Phdr) + 1, 1, sizeof(Elf64_Phdr), 0},
	    {0x8000000000000000ULL, 2, sizeof(Elf64_Phdr), 0},
	    {(uint64_t)0 - 0x10 * sizeof(Elf64_Phdr), 0x20, sizeof(Elf64_Phdr),
	     0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		good_elf(f);
		Elf64_Ehdr eh = get_eh(f);
		eh.e_phoff = cases[i].phoff;
		eh.e_phnum = cases[i].phnum;
		eh.e_phentsize = cases[i].phentsize;
		put_eh(f, &eh);
		if (cases[i].size)
			f->size = cases[i].size;
		if (load_elf(f) != -ENOEXEC)
			fail_msg("case %zu loaded", i);
	}
	/* Headers ending exactly at the end of the file are fine. */
	good_elf(f);
	Elf64_Ehdr eh = get_eh(f);
	eh.e_phoff = IMG_MAX - 4 * sizeof(Elf64_Phdr);
	put_eh(f, &eh);
	for (unsigned i = 0; i < 4; i++) {
		Elf64_Phdr ph = get_ph(f, i);
		memcpy(f->img + eh.e_phoff + i * sizeof(ph), &ph, sizeof(ph));
	}
	f->size = IMG_MAX;
	assert_int_equal(load_elf(f), 0);
}

static void elf_bad_segments(void **state)
{
	struct fx *f = *state;
	const struct {
		uint64_t offset, filesz, memsz;
		int rc;
	} cases[] = {
	    /* filesz > memsz */
	    {SEG_DATA, TEXT_MEM + 1, TEXT_MEM, -ENOEXEC},
	    {SEG_DATA, 2, 1, -ENOEXEC},
	    /* offset + filesz beyond the file */
	    {SEG_DATA, SEG_DATA + TEXT_FILE + DATA_FILE - SEG_DATA + 1,
	     TEXT_MEM, -ENOEXEC},
	    {SEG_DATA + TEXT_FILE + DATA_FILE, 1, TEXT_MEM, -ENOEXEC},
	    {SEG_DATA + TEXT_FILE + DATA_FILE + 1, 0, TEXT_MEM, -ENOEXEC},
	    {UINT64_MAX, 2, TEXT_MEM, -ENOEXEC},
	    {UINT64_MAX - 0xf, 0x20, TEXT_MEM, -ENOEXEC},
	    {SEG_DATA, UINT64_MAX, UINT64_MAX, -ENOEXEC},
	    {8, UINT64_MAX - 4, UINT64_MAX, -ENOEXEC},
	    /* memsz runs out of RAM (or wraps) even though filesz fits */
	    {SEG_DATA, TEXT_FILE, MEM_SIZE, -ENOMEM},
	    {SEG_DATA, TEXT_FILE, UINT64_MAX, -ENOMEM},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		good_elf(f);
		Elf64_Phdr ph = get_ph(f, 1);
		ph.p_offset = cases[i].offset;
		ph.p_filesz = cases[i].filesz;
		ph.p_memsz = cases[i].memsz;
		put_ph(f, 1, &ph);
		int rc = load_elf(f);
		if (rc != cases[i].rc)
			fail_msg("case %zu: %d, not %d", i, rc, cases[i].rc);
	}
	/* File bytes up to the last one of the file are fine. */
	good_elf(f);
	Elf64_Phdr ph = get_ph(f, 1);
	ph.p_filesz = f->size - SEG_DATA;
	put_ph(f, 1, &ph);
	assert_int_equal(load_elf(f), 0);
	assert_int_equal(*gp(f, TEXT_PA + ph.p_filesz - 1, 1),
	                 pattern(ph.p_filesz - 1));
	assert_int_equal(*gp(f, TEXT_PA + ph.p_filesz, 1), 0);
}

static void elf_segment_outside_ram(void **state)
{
	struct fx *f = *state;
	const uint64_t paddrs[] = {
	    MEM_SIZE,
	    MEM_SIZE - TEXT_MEM + 1,
	    MEM_SIZE - 1,
	    4 * GiB,
	    GUEST_MEM_HOLE_START,
	    UINT64_MAX - TEXT_MEM + 2,
	    UINT64_MAX - 0xf,
	    UINT64_MAX,
	};
	for (size_t i = 0; i < sizeof(paddrs) / sizeof(paddrs[0]); i++) {
		good_elf(f);
		Elf64_Phdr ph = get_ph(f, 1);
		ph.p_paddr = paddrs[i];
		put_ph(f, 1, &ph);
		if (load_elf(f) != -ENOMEM)
			fail_msg("segment at 0x%llx loaded",
			         (unsigned long long)paddrs[i]);
	}
}

static void elf_entry_outside_ram(void **state)
{
	struct fx *f = *state;
	const uint64_t entries[] = {MEM_SIZE, MEM_SIZE + 0x200,
	                            0xffffffff81000200ULL, UINT64_MAX};
	for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
		good_elf(f);
		Elf64_Ehdr eh = get_eh(f);
		eh.e_entry = entries[i];
		put_eh(f, &eh);
		assert_int_equal(load_elf(f), -ENOEXEC);
	}
	/* The last byte of RAM is still RAM. */
	good_elf(f);
	Elf64_Ehdr eh = get_eh(f);
	eh.e_entry = MEM_SIZE - 1;
	put_eh(f, &eh);
	assert_int_equal(load_elf(f), 0);
	assert_int_equal(f->entry.rip, MEM_SIZE - 1);
}

static void elf_no_load_segment(void **state)
{
	struct fx *f = *state;
	/* Only the note and the empty PT_LOAD. */
	good_elf(f);
	Elf64_Ehdr eh = get_eh(f);
	eh.e_phnum = 3;
	put_eh(f, &eh);
	Elf64_Phdr ph = get_ph(f, 1);
	ph.p_type = PT_DYNAMIC;
	put_ph(f, 1, &ph);
	assert_int_equal(load_elf(f), -ENOEXEC);
	assert_int_equal(*gp(f, TEXT_PA, 1), 0xcc);
	/* PT_LOAD entries all of memsz 0. */
	ph.p_type = PT_LOAD;
	ph.p_filesz = 0;
	ph.p_memsz = 0;
	put_ph(f, 1, &ph);
	assert_int_equal(load_elf(f), -ENOEXEC);
	/* An all-notes header. */
	eh.e_phnum = 1;
	put_eh(f, &eh);
	assert_int_equal(load_elf(f), -ENOEXEC);
}

/* ---- bzImage ---- */

#define BZ_INIT_SIZE (8 * MiB)

static void good_bzimage(struct fx *f)
{
	memset(f->img, 0, sizeof(f->img));
	for (unsigned i = 0; i < BZ_SETUP; i++)
		f->img[i] = (uint8_t)(0x80 + i);
	f->img[BP_SETUP_SECTS] = 4;
	put16(f->img, BP_BOOT_FLAG, 0xaa55);
	f->img[BP_JUMP] = 0xeb;
	f->img[BP_JUMP + 1] = 0x6a; /* header ends at 0x26c */
	memcpy(f->img + BP_HEADER, "HdrS", 4);
	put16(f->img, BP_VERSION, 0x020f);
	f->img[BP_LOADFLAGS] = 0x01;
	put32(f->img, BP_INITRD_ADDR_MAX, 0x7fffffff);
	put32(f->img, BP_KERNEL_ALIGNMENT, 0x200000);
	put16(f->img, BP_XLOADFLAGS, 0x7f);
	put32(f->img, BP_CMDLINE_SIZE, 2047);
	put32(f->img, BP_INIT_SIZE, BZ_INIT_SIZE);
	for (unsigned i = 0; i < BZ_KERNEL; i++)
		f->img[BZ_SETUP + i] = pattern(i);
	f->size = BZ_SETUP + BZ_KERNEL;
}

static int load_bz(struct fx *f)
{
	memset(&f->e, 0, sizeof(f->e));
	memset(&f->entry, 0, sizeof(f->entry));
	memset(f->params, 0x5a, sizeof(f->params));
	int rc = boot_load_bzimage(&f->m, f->img, f->size, f->params, &f->entry,
	                           &f->e);
	if (rc < 0) {
		assert_int_equal(f->e.code, -rc);
		assert_true(f->e.msg[0] != '\0');
	}
	return rc;
}

static void bz_good(void **state)
{
	struct fx *f = *state;
	good_bzimage(f);
	assert_int_equal(load_bz(f), 0);
	assert_int_equal(f->entry.rip, 0x100200);
	assert_int_equal(f->entry.kernel_end, BOOT_BZIMAGE_LOAD + BZ_INIT_SIZE);
	/* The protected-mode kernel at 1 MiB, and nothing after it. */
	const uint8_t *k = gp(f, BOOT_BZIMAGE_LOAD, BZ_KERNEL + 1);
	for (unsigned i = 0; i < BZ_KERNEL; i++)
		assert_int_equal(k[i], pattern(i));
	assert_int_equal(k[BZ_KERNEL], 0xcc);
	/* The setup header, 0x1f1 up to 0x202 + the jump's offset byte, is
	 * copied into boot_params; the bytes around it are not touched. */
	assert_memory_equal(f->params + BP_SETUP_SECTS, f->img + BP_SETUP_SECTS,
	                    0x26c - BP_SETUP_SECTS);
	assert_int_equal(f->params[BP_SETUP_SECTS - 1], 0x5a);
	assert_int_equal(f->params[0x26c], 0x5a);
	assert_int_equal(f->params[0], 0x5a);
	assert_int_equal(get32(f->params, BP_HEADER), 0x53726448);
	assert_int_equal(get16(f->params, BP_VERSION), 0x020f);
	assert_int_equal(get32(f->params, BP_INIT_SIZE), BZ_INIT_SIZE);
}

static void bz_setup_sects_zero_means_four(void **state)
{
	struct fx *f = *state;
	good_bzimage(f);
	f->img[BP_SETUP_SECTS] = 0;
	assert_int_equal(load_bz(f), 0);
	assert_int_equal(*gp(f, BOOT_BZIMAGE_LOAD, 1), pattern(0));

	/* setup_sects 1: the kernel starts at 0x400. */
	good_bzimage(f);
	f->img[BP_SETUP_SECTS] = 1;
	assert_int_equal(load_bz(f), 0);
	assert_int_equal(*gp(f, BOOT_BZIMAGE_LOAD, 1), f->img[0x400]);
	assert_int_equal(*gp(f, BOOT_BZIMAGE_LOAD + f->size - 0x401, 1),
	                 f->img[f->size - 1]);
}

static void bz_header_length(void **state)
{
	struct fx *f = *state;
	/* A jump offset past the end of the setup header: the copy stops
	 * at the e820 table, never beyond. */
	good_bzimage(f);
	f->img[BP_JUMP + 1] = 0xff;
	assert_int_equal(load_bz(f), 0);
	assert_memory_equal(f->params + BP_SETUP_SECTS, f->img + BP_SETUP_SECTS,
	                    BP_E820_TABLE - BP_SETUP_SECTS);
	for (unsigned i = BP_E820_TABLE; i < sizeof(f->params); i++)
		assert_int_equal(f->params[i], 0x5a);
	/* A zero offset: only up to the magic. */
	good_bzimage(f);
	f->img[BP_JUMP + 1] = 0;
	assert_int_equal(load_bz(f), 0);
	assert_memory_equal(f->params + BP_SETUP_SECTS, f->img + BP_SETUP_SECTS,
	                    BP_HEADER - BP_SETUP_SECTS);
	assert_int_equal(f->params[BP_HEADER], 0x5a);
}

static void bz_init_size_small(void **state)
{
	struct fx *f = *state;
	/* init_size below the kernel's size: the kernel's size counts. */
	good_bzimage(f);
	put32(f->img, BP_INIT_SIZE, 0x10);
	assert_int_equal(load_bz(f), 0);
	assert_int_equal(f->entry.kernel_end, BOOT_BZIMAGE_LOAD + BZ_KERNEL);
}

static void bz_rejected(void **state)
{
	struct fx *f = *state;

	/* Not a bzImage. */
	good_bzimage(f);
	memcpy(f->img + BP_HEADER, "HdrT", 4);
	assert_int_equal(load_bz(f), -ENOEXEC);
	good_bzimage(f);
	memcpy(f->img + BP_HEADER,
	       "\x7f"
	       "ELF",
	       4);
	assert_int_equal(load_bz(f), -ENOEXEC);

	/* Boot protocols before 2.12. */
	const uint16_t old[] = {0x0200, 0x0206, 0x020a, 0x020b, 0x0100, 0};
	for (size_t i = 0; i < sizeof(old) / sizeof(old[0]); i++) {
		good_bzimage(f);
		put16(f->img, BP_VERSION, old[i]);
		assert_int_equal(load_bz(f), -ENOEXEC);
	}
	good_bzimage(f);
	put16(f->img, BP_VERSION, 0x020c);
	assert_int_equal(load_bz(f), 0);

	/* No 64-bit entry point. */
	good_bzimage(f);
	put16(f->img, BP_XLOADFLAGS, 0x7e);
	assert_int_equal(load_bz(f), -ENOEXEC);
	good_bzimage(f);
	put16(f->img, BP_XLOADFLAGS, 0);
	assert_int_equal(load_bz(f), -ENOEXEC);

	/* Truncated: shorter than the header, or no kernel after setup. */
	const uint64_t sizes[] = {0, 0x202, 0x2ff, BZ_SETUP - 1, BZ_SETUP};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		good_bzimage(f);
		f->size = sizes[i];
		assert_int_equal(load_bz(f), -ENOEXEC);
	}
	good_bzimage(f);
	f->img[BP_SETUP_SECTS] = 0xff; /* setup would be 128 KiB */
	assert_int_equal(load_bz(f), -ENOEXEC);
	good_bzimage(f);
	f->size = BZ_SETUP + 1; /* one byte of kernel is still a kernel */
	assert_int_equal(load_bz(f), 0);

	/* Needs more RAM than there is to decompress. */
	const uint32_t init[] = {MEM_SIZE - BOOT_BZIMAGE_LOAD + 1, MEM_SIZE,
	                         0x80000000, UINT32_MAX};
	for (size_t i = 0; i < sizeof(init) / sizeof(init[0]); i++) {
		good_bzimage(f);
		put32(f->img, BP_INIT_SIZE, init[i]);
		assert_int_equal(load_bz(f), -ENOMEM);
	}
	good_bzimage(f);
	put32(f->img, BP_INIT_SIZE, MEM_SIZE - BOOT_BZIMAGE_LOAD);
	assert_int_equal(load_bz(f), 0);
	assert_int_equal(f->entry.kernel_end, MEM_SIZE);
}

static void bz_kernel_larger_than_ram(void **state)
{
	struct fx *f = *state;
	/* 1 MiB + a little of RAM: the kernel itself does not fit. */
	struct guest_mem small;
	assert_int_equal(guest_mem_wrap(&small, f->buf, MiB + 0x800), 0);
	good_bzimage(f);
	memset(&f->e, 0, sizeof(f->e));
	assert_int_equal(boot_load_bzimage(&small, f->img, f->size, f->params,
	                                   &f->entry, &f->e),
	                 -ENOMEM);
	assert_int_equal(f->e.code, ENOMEM);
}

/* ---- MP table ---- */

struct mp_counts {
	unsigned cpus, bsp, buses, ioapics, ioints, lints;
	uint8_t ioapic_id;
};

/* Checks the floating pointer and the table as Linux's mpparse does and
 * counts the entries. */
static struct mp_counts check_mptable(struct fx *f, int ncpus)
{
	struct mp_counts c = {0};
	const uint8_t *fp = gp(f, BOOT_EBDA, 16);
	assert_memory_equal(fp, "_MP_", 4);
	assert_int_equal(sum(fp, 16), 0);
	assert_int_equal(fp[8], 1);  /* length in paragraphs */
	assert_int_equal(fp[9], 4);  /* spec 1.4 */
	assert_int_equal(fp[11], 0); /* feature 1: a table, not a default */
	uint32_t pa = get32(fp, 4);
	assert_int_equal(pa, BOOT_EBDA + 16);

	const uint8_t *h = gp(f, pa, 44);
	assert_memory_equal(h, "PCMP", 4);
	uint16_t len = get16(h, 4);
	assert_true(len >= 44);
	/* The whole table stays inside the reserved EBDA. */
	assert_true(pa + len <= 0xa0000);
	h = gp(f, pa, len);
	assert_int_equal(sum(h, len), 0);
	assert_int_equal(h[6], 4);
	assert_int_equal(get32(h, 36), 0xfee00000);
	uint16_t count = get16(h, 34);

	size_t off = 44;
	unsigned seen = 0;
	while (off < len) {
		seen++;
		switch (h[off]) {
		case 0: /* processor */
			assert_true(off + 20 <= len);
			assert_int_equal(h[off + 1], c.cpus); /* APIC id */
			assert_true(h[off + 3] & 1);          /* enabled */
			if (h[off + 3] & 2)
				c.bsp++;
			assert_int_equal(!!(h[off + 3] & 2), c.cpus == 0);
			c.cpus++;
			off += 20;
			break;
		case 1:
			assert_memory_equal(h + off + 2, "ISA   ", 6);
			c.buses++;
			off += 8;
			break;
		case 2:
			c.ioapic_id = h[off + 1];
			assert_true(h[off + 3] & 1);
			assert_int_equal(get32(h, off + 4), 0xfec00000);
			c.ioapics++;
			off += 8;
			break;
		case 3:
			/* ISA IRQ n to IOAPIC pin n */
			assert_int_equal(h[off + 5], c.ioints);
			assert_int_equal(h[off + 7], c.ioints);
			c.ioints++;
			off += 8;
			break;
		case 4:
			c.lints++;
			off += 8;
			break;
		default: fail_msg("entry type %u at %zu", h[off], off);
		}
	}
	assert_int_equal(off, len);
	assert_int_equal(seen, count);
	assert_int_equal(c.cpus, ncpus);
	assert_int_equal(count, ncpus + 1 + 1 + 24 + 2);
	return c;
}

static void mptable_one_cpu(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	assert_int_equal(boot_write_mptable(&f->m, 1, &e), 0);
	struct mp_counts c = check_mptable(f, 1);
	assert_int_equal(c.bsp, 1);
	assert_int_equal(c.buses, 1);
	assert_int_equal(c.ioapics, 1);
	assert_int_equal(c.ioints, 24);
	assert_int_equal(c.lints, 2);
	/* The IOAPIC's id does not collide with a CPU's. */
	assert_int_equal(c.ioapic_id, 1);
}

static void mptable_32_cpus(void **state)
{
	struct fx *f = *state;
	struct husk_error e = {0};
	assert_int_equal(boot_write_mptable(&f->m, 32, &e), 0);
	struct mp_counts c = check_mptable(f, 32);
	assert_int_equal(c.bsp, 1);
	assert_int_equal(c.ioapic_id, 32);
	/* And a smaller table written over it is still consistent. */
	assert_int_equal(boot_write_mptable(&f->m, 2, &e), 0);
	check_mptable(f, 2);
}

static void mptable_rejected(void **state)
{
	struct fx *f = *state;
	const int bad[] = {33, 0, -1, 256, 1 << 30};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct husk_error e = {0};
		assert_int_equal(boot_write_mptable(&f->m, bad[i], &e),
		                 -EINVAL);
		assert_int_equal(e.code, EINVAL);
	}
	assert_int_equal(*gp(f, BOOT_EBDA, 1), 0xcc);
	/* Without base memory up to the EBDA. */
	struct guest_mem small;
	struct husk_error e = {0};
	assert_int_equal(guest_mem_wrap(&small, f->buf, BOOT_EBDA + 0x100), 0);
	assert_int_equal(boot_write_mptable(&small, 4, &e), -ENOMEM);
}

/* ---- boot_load_linux ---- */

static const char *temp_file(struct fx *f, const void *data, size_t len)
{
	assert_true(f->ntmp < 4);
	char *path = f->tmp[f->ntmp];
	const char *dir = getenv("TMPDIR");
	snprintf(path, sizeof(f->tmp[0]), "%s/husk-boot-XXXXXX",
	         dir && strlen(dir) < 32 ? dir : "/tmp");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	f->ntmp++;
	if (len)
		assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

static void e820_entry(const uint8_t *bp, unsigned i, uint64_t *addr,
                       uint64_t *size, uint32_t *type)
{
	*addr = get64(bp, BP_E820_TABLE + 20 * i);
	*size = get64(bp, BP_E820_TABLE + 20 * i + 8);
	*type = get32(bp, BP_E820_TABLE + 20 * i + 16);
}

static void assert_e820(const uint8_t *bp, uint64_t ram)
{
	uint64_t a, s;
	uint32_t t;
	unsigned n = bp[BP_E820_ENTRIES];
	assert_int_equal(n, ram > GUEST_MEM_HOLE_START ? 4 : 3);
	e820_entry(bp, 0, &a, &s, &t);
	assert_int_equal(a, 0);
	assert_int_equal(s, 0x9fc00);
	assert_int_equal(t, 1);
	e820_entry(bp, 1, &a, &s, &t);
	assert_int_equal(a, 0x9fc00);
	assert_int_equal(a + s, MiB);
	assert_int_equal(t, 2);
	e820_entry(bp, 2, &a, &s, &t);
	assert_int_equal(a, MiB);
	assert_int_equal(t, 1);
	if (n == 3) {
		assert_int_equal(a + s, ram);
		return;
	}
	assert_int_equal(a + s, GUEST_MEM_HOLE_START);
	e820_entry(bp, 3, &a, &s, &t);
	assert_int_equal(a, GUEST_MEM_HIGH_START);
	assert_int_equal(s, ram - GUEST_MEM_HOLE_START);
	assert_int_equal(t, 1);
}

static int load_linux(struct fx *f, struct guest_mem *m, const char *kernel,
                      const char *initrd, const char *cmdline, int ncpus)
{
	memset(&f->e, 0, sizeof(f->e));
	memset(&f->entry, 0, sizeof(f->entry));
	int rc = boot_load_linux(m, kernel, initrd, cmdline, ncpus, &f->entry,
	                         &f->e);
	if (rc < 0) {
		assert_int_equal(f->e.code, -rc);
		assert_true(f->e.msg[0] != '\0');
	}
	return rc;
}

static void linux_cmdline_too_long(void **state)
{
	struct fx *f = *state;
	char *cmd = malloc(BOOT_CMDLINE_MAX + 1);
	assert_non_null(cmd);
	memset(cmd, 'a', BOOT_CMDLINE_MAX);
	cmd[BOOT_CMDLINE_MAX] = '\0';
	/* Checked before anything is opened. */
	assert_int_equal(
	    load_linux(f, &f->m, "/nonexistent/kernel", NULL, cmd, 1), -E2BIG);
	/* Longer than the kernel's own cmdline_size. */
	good_bzimage(f);
	put32(f->img, BP_CMDLINE_SIZE, 100);
	const char *k = temp_file(f, f->img, f->size);
	cmd[101] = '\0';
	assert_int_equal(load_linux(f, &f->m, k, NULL, cmd, 1), -E2BIG);
	cmd[100] = '\0';
	assert_int_equal(load_linux(f, &f->m, k, NULL, cmd, 1), 0);
	/* The longest we take at all. */
	good_bzimage(f);
	put32(f->img, BP_CMDLINE_SIZE, 0);
	k = temp_file(f, f->img, f->size);
	memset(cmd, 'b', BOOT_CMDLINE_MAX);
	cmd[BOOT_CMDLINE_MAX - 1] = '\0';
	assert_int_equal(load_linux(f, &f->m, k, NULL, cmd, 1), 0);
	assert_string_equal((const char *)gp(f, BOOT_CMDLINE, BOOT_CMDLINE_MAX),
	                    cmd);
	free(cmd);
}

static void linux_bad_files(void **state)
{
	struct fx *f = *state;
	assert_int_equal(
	    load_linux(f, &f->m, "/nonexistent/kernel", NULL, "x", 1), -ENOENT);
	const char *empty = temp_file(f, NULL, 0);
	assert_int_equal(load_linux(f, &f->m, empty, NULL, "x", 1), -EINVAL);
	/* A directory is not a kernel. */
	assert_int_equal(load_linux(f, &f->m, "/", NULL, "x", 1), -EINVAL);
	/* Neither ELF nor bzImage. */
	const char *junk = temp_file(f, "junk junk junk", 14);
	assert_int_equal(load_linux(f, &f->m, junk, NULL, "x", 1), -ENOEXEC);
	/* A good kernel, a missing initrd. */
	good_bzimage(f);
	const char *k = temp_file(f, f->img, f->size);
	assert_int_equal(load_linux(f, &f->m, k, "/nonexistent/initrd", "x", 1),
	                 -ENOENT);
	/* Too many CPUs for the MP table. */
	assert_int_equal(load_linux(f, &f->m, k, NULL, "x", 33), -EINVAL);
}

static void linux_bzimage_everything(void **state)
{
	struct fx *f = *state;
	const char cmd[] = "console=ttyS0 root=/dev/vda";
	good_bzimage(f);
	put32(f->img, BP_INITRD_ADDR_MAX, 0x01ffffff); /* below 32 MiB */
	const char *k = temp_file(f, f->img, f->size);
	uint8_t rd[0x2345];
	for (size_t i = 0; i < sizeof(rd); i++)
		rd[i] = pattern(i * 3);
	const char *r = temp_file(f, rd, sizeof(rd));

	assert_int_equal(load_linux(f, &f->m, k, r, cmd, 2), 0);
	assert_int_equal(f->entry.rip, 0x100200);
	assert_int_equal(f->entry.boot_params, BOOT_PARAMS);
	assert_int_equal(f->entry.kernel_end, BOOT_BZIMAGE_LOAD + BZ_INIT_SIZE);

	const uint8_t *bp = gp(f, BOOT_PARAMS, 4096);
	/* The setup header as the kernel wrote it, and what we add. */
	assert_int_equal(get32(bp, BP_HEADER), 0x53726448);
	assert_int_equal(get16(bp, BP_VERSION), 0x020f);
	assert_int_equal(bp[BP_TYPE_OF_LOADER], 0xff);
	assert_int_equal(bp[BP_LOADFLAGS] & 0x81, 0x81);
	assert_int_equal(get16(bp, BP_HEAP_END_PTR), 0xfe00 - 0x200);
	assert_int_equal(get32(bp, BP_CMD_LINE_PTR), BOOT_CMDLINE);
	assert_string_equal((const char *)gp(f, BOOT_CMDLINE, sizeof(cmd)),
	                    cmd);

	/* The initrd: page aligned, above the kernel, below the limit. */
	uint32_t at = get32(bp, BP_RAMDISK_IMAGE);
	assert_int_equal(get32(bp, BP_RAMDISK_SIZE), sizeof(rd));
	assert_int_equal(at % 4096, 0);
	assert_true(at >= f->entry.kernel_end);
	assert_true(at + sizeof(rd) <= 0x02000000);
	/* As high as it goes. */
	assert_true(at + sizeof(rd) + 4096 > 0x02000000);
	assert_memory_equal(gp(f, at, sizeof(rd)), rd, sizeof(rd));

	assert_e820(bp, MEM_SIZE);

	/* Page tables: PML4 -> PDPT -> four PDs of 2 MiB pages. */
	assert_int_equal(get64(gp(f, BOOT_PML4, 8), 0), BOOT_PDPT | 3);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(get64(gp(f, BOOT_PDPT + 8 * i, 8), 0),
		                 (BOOT_PD + 0x1000 * i) | 3);
	assert_int_equal(get64(gp(f, BOOT_PD, 8), 0), 0x83);
	assert_int_equal(get64(gp(f, BOOT_PD + 8 * 2047, 8), 0),
	                 (2047ULL << 21) | 0x83);
	/* GDT: the selectors Linux expects. */
	assert_int_equal(get64(gp(f, BOOT_GDT + BOOT_CS, 8), 0),
	                 0x00af9b000000ffffULL);
	assert_int_equal(get64(gp(f, BOOT_GDT + BOOT_DS, 8), 0),
	                 0x00cf93000000ffffULL);
	check_mptable(f, 2);
}

static void linux_initrd_default_limit(void **state)
{
	struct fx *f = *state;
	/* initrd_addr_max 0 means the protocol's 0x37ffffff; RAM above it
	 * is not used for the initrd. */
	struct guest_mem big;
	struct husk_error e = {0};
	assert_int_equal(guest_mem_create(&big, 1 * GiB, &e), 0);
	good_bzimage(f);
	put32(f->img, BP_INITRD_ADDR_MAX, 0);
	const char *k = temp_file(f, f->img, f->size);
	uint8_t rd[5000];
	for (size_t i = 0; i < sizeof(rd); i++)
		rd[i] = pattern(i);
	const char *r = temp_file(f, rd, sizeof(rd));
	int rc = load_linux(f, &big, k, r, "console=ttyS0", 1);
	if (rc == 0) {
		const uint8_t *bp = guest_ptr(&big, BOOT_PARAMS, 4096);
		uint32_t at = get32(bp, BP_RAMDISK_IMAGE);
		assert_int_equal(at % 4096, 0);
		assert_true(at + sizeof(rd) <= 0x38000000);
		assert_true(at + sizeof(rd) + 4096 > 0x38000000);
		assert_true(at >= f->entry.kernel_end);
		uint8_t back[sizeof(rd)];
		assert_int_equal(guest_mem_read(&big, at, back, sizeof(back)),
		                 0);
		assert_memory_equal(back, rd, sizeof(rd));
		assert_e820(bp, 1 * GiB);
	}
	guest_mem_destroy(&big);
	assert_int_equal(rc, 0);
}

static void linux_elf_and_high_ram(void **state)
{
	struct fx *f = *state;
	/* RAM above the hole: the e820 map has the high region too. */
	struct guest_mem big;
	struct husk_error e = {0};
	const uint64_t ram = GUEST_MEM_HOLE_START + 512 * MiB;
	assert_int_equal(guest_mem_create(&big, ram, &e), 0);
	good_elf(f);
	const char *k = temp_file(f, f->img, f->size);
	uint8_t rd[100];
	memset(rd, 0x77, sizeof(rd));
	const char *r = temp_file(f, rd, sizeof(rd));
	int rc = load_linux(f, &big, k, r, "quiet", 1);
	if (rc == 0) {
		const uint8_t *bp = guest_ptr(&big, BOOT_PARAMS, 4096);
		/* What a bzImage's header would have said. */
		assert_int_equal(get16(bp, BP_BOOT_FLAG), 0xaa55);
		assert_int_equal(get32(bp, BP_HEADER), 0x53726448);
		assert_int_equal(get32(bp, BP_INITRD_ADDR_MAX), 0x7fffffff);
		assert_int_equal(f->entry.rip, ENTRY);
		uint32_t at = get32(bp, BP_RAMDISK_IMAGE);
		assert_int_equal(at % 4096, 0);
		assert_true(at + sizeof(rd) <= 0x80000000ULL);
		assert_true(at + sizeof(rd) + 4096 > 0x80000000ULL);
		assert_e820(bp, ram);
	}
	guest_mem_destroy(&big);
	assert_int_equal(rc, 0);
}

static void linux_initrd_does_not_fit(void **state)
{
	struct fx *f = *state;
	good_bzimage(f);
	/* The decompressor wants nearly all of RAM. */
	put32(f->img, BP_INIT_SIZE, MEM_SIZE - BOOT_BZIMAGE_LOAD - 0x1000);
	const char *k = temp_file(f, f->img, f->size);
	uint8_t rd[0x1001];
	memset(rd, 1, sizeof(rd));
	const char *r = temp_file(f, rd, sizeof(rd));
	assert_int_equal(load_linux(f, &f->m, k, r, "x", 1), -ENOMEM);
	/* One page fits exactly. */
	const char *r1 = temp_file(f, rd, 0x1000);
	assert_int_equal(load_linux(f, &f->m, k, r1, "x", 1), 0);
	assert_int_equal(get32(gp(f, BOOT_PARAMS, 4096), BP_RAMDISK_IMAGE),
	                 MEM_SIZE - 0x1000);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(elf_good),
	    T(elf_segment_at_ram_end),
	    T(elf_not_x86_64),
	    T(elf_bad_program_headers),
	    T(elf_bad_segments),
	    T(elf_segment_outside_ram),
	    T(elf_entry_outside_ram),
	    T(elf_no_load_segment),
	    T(bz_good),
	    T(bz_setup_sects_zero_means_four),
	    T(bz_header_length),
	    T(bz_init_size_small),
	    T(bz_rejected),
	    T(bz_kernel_larger_than_ram),
	    T(mptable_one_cpu),
	    T(mptable_32_cpus),
	    T(mptable_rejected),
	    T(linux_cmdline_too_long),
	    T(linux_bad_files),
	    T(linux_bzimage_everything),
	    T(linux_initrd_default_limit),
	    T(linux_elf_and_high_ram),
	    T(linux_initrd_does_not_fit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
