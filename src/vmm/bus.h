/* The I/O port and MMIO address maps: one sorted table each, overlaps
 * rejected at registration, one lookup per exit. Accesses that hit no
 * device read as all ones and writes are dropped, as on real hardware;
 * Linux probes many legacy ports at boot. */
#ifndef HUSK_VMM_BUS_H
#define HUSK_VMM_BUS_H

#include <stdbool.h>
#include <stdint.h>

#include "husk/error.h"

#define BUS_MAX_DEVICES 32

struct bus_device {
	const char *name;
	void *opaque;
	/* offset is relative to the region's base; len is 1, 2, 4 or 8. */
	void (*read)(void *opaque, uint64_t offset, uint8_t *data,
	             uint32_t len);
	void (*write)(void *opaque, uint64_t offset, const uint8_t *data,
	              uint32_t len);
};

struct bus_region {
	uint64_t base;
	uint64_t len;
	struct bus_device dev;
};

struct bus {
	const char *name; /* "pio" or "mmio", for messages */
	unsigned n;
	struct bus_region regions[BUS_MAX_DEVICES];
};

void bus_init(struct bus *bus, const char *name);

/* 0, or -EEXIST when [base, base+len) overlaps a registered region,
 * -EINVAL for an empty or wrapping range, -ENOSPC when the table is full. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len,
                 const struct bus_device *dev, struct husk_error *err);

/* Dispatch one access; returns false when no device claims it (reads
 * then see 0xff bytes). An access that straddles a region's end is not
 * claimed. */
bool bus_read(const struct bus *bus, uint64_t addr, uint8_t *data,
              uint32_t len);
bool bus_write(const struct bus *bus, uint64_t addr, const uint8_t *data,
               uint32_t len);

#endif
