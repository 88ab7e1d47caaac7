/* Direct 64-bit Linux boot, no firmware: load an ELF vmlinux or a bzImage,
 * the initrd and the command line; write boot_params with the e820 map,
 * the GDT, identity page tables and the MP table; return where the boot
 * vCPU starts. The Linux x86 boot protocol, version 2.12 or later. */
#ifndef HUSK_VMM_BOOT_H
#define HUSK_VMM_BOOT_H

#include <stdint.h>

#include "guest_mem.h"
#include "husk/error.h"

/* Guest-physical layout of what the loader writes. */
#define BOOT_GDT          0x0500
#define BOOT_PARAMS       0x7000
#define BOOT_STACK        0x8ff0
#define BOOT_PML4         0x9000
#define BOOT_PDPT         0xa000
#define BOOT_PD           0xb000 /* four pages: 4 GiB of 2 MiB pages */
#define BOOT_CMDLINE      0x20000
#define BOOT_CMDLINE_MAX  4096
#define BOOT_EBDA         0x9fc00 /* MP table; reserved in the e820 map */
#define BOOT_HIGH_MEMORY  0x100000
#define BOOT_BZIMAGE_LOAD 0x100000

/* GDT selectors the Linux boot protocol expects. */
#define BOOT_CS  0x10
#define BOOT_DS  0x18
#define BOOT_TSS 0x20

struct boot_entry {
	uint64_t rip;         /* 64-bit entry point */
	uint64_t boot_params; /* goes in rsi */
	uint64_t kernel_end;  /* first byte above the loaded kernel */
};

/* Loads kernel (ELF vmlinux or bzImage, told apart by their magic) and
 * the optional initrd, writes the command line and all boot structures. */
int boot_load_linux(struct guest_mem *mem, const char *kernel_path,
                    const char *initrd_path, const char *cmdline, int ncpus,
                    struct boot_entry *entry, struct husk_error *err);

/* Parts exposed for unit tests: they work on bytes already in memory. */
int boot_load_elf(struct guest_mem *mem, const uint8_t *img, uint64_t size,
                  struct boot_entry *entry, struct husk_error *err);
int boot_load_bzimage(struct guest_mem *mem, const uint8_t *img, uint64_t size,
                      uint8_t *params, struct boot_entry *entry,
                      struct husk_error *err);
int boot_write_mptable(struct guest_mem *mem, int ncpus,
                       struct husk_error *err);

#endif
