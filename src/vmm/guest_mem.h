/* Guest RAM: one memfd, mapped once, split around the 32-bit MMIO hole.
 *
 * All of guest RAM is one memfd so that a snapshot can save it as one file
 * and a clone can map it MAP_PRIVATE (copy-on-write) later. RAM starts at
 * guest-physical 0; when it is larger than GUEST_MEM_HOLE_START the rest is
 * placed at GUEST_MEM_HIGH_START, leaving [3 GiB, 4 GiB) for devices. In the
 * host mapping the two regions are contiguous: the high region starts at
 * offset GUEST_MEM_HOLE_START.
 *
 * guest_ptr() is the only way from a guest-physical address to a host
 * pointer; `base + gpa` anywhere else is a bug (gpa is guest-controlled and
 * the regions do not start where their offsets do).
 */
#ifndef HUSK_VMM_GUEST_MEM_H
#define HUSK_VMM_GUEST_MEM_H

#include <stdint.h>

#include "husk/error.h"

#define GUEST_MEM_HOLE_START 0xC0000000ULL
#define GUEST_MEM_HIGH_START 0x100000000ULL
#define GUEST_MEM_MIN_SIZE   0x100000ULL /* 1 MiB */
/* 1 TiB: far above any microVM, and low enough that the high region's end
 * (GUEST_MEM_HIGH_START + size - GUEST_MEM_HOLE_START) cannot overflow and
 * fits every x86-64 guest physical address width KVM supports. */
#define GUEST_MEM_MAX_SIZE 0x10000000000ULL

struct guest_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t offset; /* offset into the mapping (and into the memfd) */
};

struct guest_mem {
	uint8_t *base;  /* host mapping of all RAM, total bytes */
	uint64_t total; /* RAM size in bytes, the sum of the region sizes */
	int fd;         /* the memfd, or -1 for guest_mem_wrap */
	unsigned nregions;
	struct guest_mem_region regions[2];
};

/* Creates size bytes of guest RAM: a sealed-size memfd mapped MAP_SHARED.
 * size must be a multiple of 4 KiB, at least GUEST_MEM_MIN_SIZE and at most
 * GUEST_MEM_MAX_SIZE. Pages are allocated on first touch. On failure m is
 * left with base NULL and fd -1, so guest_mem_destroy() on it is harmless. */
int guest_mem_create(struct guest_mem *m, uint64_t size,
                     struct husk_error *err);

/* The same layout over a caller's buffer (unit tests and fuzzers): fd is -1
 * and guest_mem_destroy() frees nothing. buf must be 16-byte aligned (so an
 * aligned guest address is an aligned host address, which the virtqueue's
 * atomic index accesses rely on) and size non-zero. 0 or -EINVAL. */
int guest_mem_wrap(struct guest_mem *m, void *buf, uint64_t size);

/* Unmaps and closes what guest_mem_create() made; leaves m zeroed with fd
 * -1. Safe on a wrapped, a failed, an all-zero or an already destroyed m. */
void guest_mem_destroy(struct guest_mem *m);

/* A host pointer to [gpa, gpa + len) when that range lies wholly inside
 * one RAM region, else NULL. Safe for any gpa and len (no overflow); len 0
 * gives NULL. */
void *guest_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* Copy between guest RAM and host memory: 0, or -EFAULT when
 * [gpa, gpa + len) is not wholly inside one region. len 0 is a no-op. */
int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *dst,
                   uint64_t len);
int guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *src,
                    uint64_t len);

#endif
