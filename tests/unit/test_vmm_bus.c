/* The I/O and MMIO address map: a sorted table that rejects overlaps at
 * registration and hands each access to the one region that wholly holds
 * it, with the offset relative to that region's base. Fake devices record
 * what they were given. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "husk/error.h"
#include "../../src/vmm/bus.h"

/* What one fake device saw last. */
struct rec {
	unsigned reads, writes;
	uint64_t offset;
	uint32_t len;
	uint8_t data[8];
	uint8_t fill; /* the byte a read returns */
};

static void rec_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct rec *r = opaque;
	r->reads++;
	r->offset = offset;
	r->len = len;
	memset(data, r->fill, len);
}

static void rec_write(void *opaque, uint64_t offset, const uint8_t *data,
                      uint32_t len)
{
	struct rec *r = opaque;
	r->writes++;
	r->offset = offset;
	r->len = len;
	memcpy(r->data, data, len);
}

static struct bus_device dev(const char *name, struct rec *r)
{
	return (struct bus_device){name, r, rec_read, rec_write};
}

static int reg(struct bus *b, uint64_t base, uint64_t len, const char *name,
               struct rec *r)
{
	struct husk_error e = {0};
	struct bus_device d = dev(name, r);
	int rc = bus_register(b, base, len, &d, &e);
	if (rc < 0) {
		assert_int_equal(e.code, -rc);
		assert_true(e.msg[0] != '\0');
	}
	return rc;
}

static void assert_sorted(const struct bus *b)
{
	for (unsigned i = 1; i < b->n; i++) {
		assert_true(b->regions[i - 1].base < b->regions[i].base);
		assert_true(b->regions[i - 1].base + b->regions[i - 1].len <=
		            b->regions[i].base);
	}
}

static void init_empty(void **state)
{
	(void)state;
	struct bus b;
	memset(&b, 0xa5, sizeof(b));
	bus_init(&b, "pio");
	assert_int_equal(b.n, 0);
	assert_string_equal(b.name, "pio");

	uint8_t d[4] = {0};
	assert_false(bus_read(&b, 0x3f8, d, 4));
	assert_memory_equal(d, "\xff\xff\xff\xff", 4);
	assert_false(bus_write(&b, 0x3f8, d, 4));
}

static void registration_sorted(void **state)
{
	(void)state;
	struct bus b;
	struct rec r[5] = {{0}};
	bus_init(&b, "pio");
	/* Out of order on purpose: middle, end, start, between. */
	assert_int_equal(reg(&b, 0x3f8, 8, "com1", &r[0]), 0);
	assert_int_equal(reg(&b, 0xcf8, 8, "pci", &r[1]), 0);
	assert_int_equal(reg(&b, 0x20, 2, "pic", &r[2]), 0);
	assert_int_equal(reg(&b, 0x60, 1, "kbd", &r[3]), 0);
	/* Exactly adjacent on both sides is not an overlap. */
	assert_int_equal(reg(&b, 0x400, 0x8f8, "gap", &r[4]), 0);
	assert_int_equal(b.n, 5);
	assert_sorted(&b);
	assert_int_equal(b.regions[0].base, 0x20);
	assert_int_equal(b.regions[1].base, 0x60);
	assert_int_equal(b.regions[2].base, 0x3f8);
	assert_int_equal(b.regions[3].base, 0x400);
	assert_int_equal(b.regions[4].base, 0xcf8);
	assert_string_equal(b.regions[2].dev.name, "com1");
	assert_ptr_equal(b.regions[2].dev.opaque, &r[0]);
	assert_string_equal(b.regions[4].dev.name, "pci");
	assert_ptr_equal(b.regions[4].dev.opaque, &r[1]);
}

static void overlaps_rejected(void **state)
{
	(void)state;
	struct bus b;
	struct rec r = {0}, x = {0};
	bus_init(&b, "mmio");
	assert_int_equal(reg(&b, 0x1000, 0x1000, "a", &r), 0);
	assert_int_equal(reg(&b, 0x3000, 0x1000, "b", &r), 0);

	/* Same base. */
	assert_int_equal(reg(&b, 0x1000, 1, "x", &x), -EEXIST);
	/* Starts inside a region (the one before it in the table). */
	assert_int_equal(reg(&b, 0x1fff, 0x10, "x", &x), -EEXIST);
	assert_int_equal(reg(&b, 0x1800, 0x100, "x", &x), -EEXIST);
	/* Ends inside a region (the one after it). */
	assert_int_equal(reg(&b, 0x2f00, 0x101, "x", &x), -EEXIST);
	assert_int_equal(reg(&b, 0x0800, 0x801, "x", &x), -EEXIST);
	/* Swallows a region whole. */
	assert_int_equal(reg(&b, 0x0, 0x10000, "x", &x), -EEXIST);
	assert_int_equal(reg(&b, 0x2000, 0x2000, "x", &x), -EEXIST);
	/* Wholly inside a region. */
	assert_int_equal(reg(&b, 0x3100, 0x10, "x", &x), -EEXIST);
	/* Nothing was added; exact fits still go in. */
	assert_int_equal(b.n, 2);
	assert_int_equal(reg(&b, 0x2000, 0x1000, "c", &r), 0);
	assert_int_equal(reg(&b, 0x0, 0x1000, "d", &r), 0);
	assert_int_equal(reg(&b, 0x4000, 1, "e", &r), 0);
	assert_int_equal(b.n, 5);
	assert_sorted(&b);
	/* Now the map is full from 0 to 0x4001: anything there collides. */
	for (uint64_t a = 0; a <= 0x4000; a += 0x3ff)
		assert_int_equal(reg(&b, a, 1, "x", &x), -EEXIST);
	assert_int_equal(b.n, 5);
}

static void bad_ranges(void **state)
{
	(void)state;
	struct bus b;
	struct rec r = {0};
	bus_init(&b, "mmio");
	assert_int_equal(reg(&b, 0x1000, 0, "empty", &r), -EINVAL);
	assert_int_equal(reg(&b, UINT64_MAX, 2, "wraps", &r), -EINVAL);
	assert_int_equal(reg(&b, 0x10, UINT64_MAX, "wraps", &r), -EINVAL);
	assert_int_equal(reg(&b, UINT64_MAX - 0xf, 0x20, "wraps", &r), -EINVAL);
	assert_int_equal(b.n, 0);
	/* Up to the last byte below 2^64 is fine. */
	assert_int_equal(reg(&b, UINT64_MAX - 0xf, 0xf, "top", &r), 0);
	uint8_t d = 0;
	r.fill = 0x42;
	assert_true(bus_read(&b, UINT64_MAX - 1, &d, 1));
	assert_int_equal(d, 0x42);
	assert_int_equal(r.offset, 0xe);
	/* A read past the top of the address space is not claimed. */
	uint8_t w[4];
	assert_false(bus_read(&b, UINT64_MAX - 1, w, 4));
	assert_memory_equal(w, "\xff\xff\xff\xff", 4);
}

static void table_full(void **state)
{
	(void)state;
	struct bus b;
	struct rec r = {0};
	bus_init(&b, "pio");
	/* Fill from the top down so every insertion moves the table. */
	for (unsigned i = 0; i < BUS_MAX_DEVICES; i++)
		assert_int_equal(
		    reg(&b, 0x100 * (BUS_MAX_DEVICES - i), 0x10, "d", &r), 0);
	assert_int_equal(b.n, BUS_MAX_DEVICES);
	assert_sorted(&b);
	assert_int_equal(reg(&b, 0x10000, 1, "one-more", &r), -ENOSPC);
	assert_int_equal(reg(&b, 0, 1, "one-more", &r), -ENOSPC);
	assert_int_equal(b.n, BUS_MAX_DEVICES);
	/* Every region still dispatches. */
	for (unsigned i = 1; i <= BUS_MAX_DEVICES; i++) {
		uint8_t d;
		r.reads = 0;
		assert_true(bus_read(&b, 0x100 * i + 0xf, &d, 1));
		assert_int_equal(r.reads, 1);
		assert_int_equal(r.offset, 0xf);
	}
}

static void dispatch(void **state)
{
	(void)state;
	struct bus b;
	struct rec a = {.fill = 0x11}, c = {.fill = 0x22}, e = {.fill = 0x33};
	bus_init(&b, "mmio");
	assert_int_equal(reg(&b, 0xd0000000, 0x1000, "a", &a), 0);
	assert_int_equal(reg(&b, 0xd0001000, 0x1000, "c", &c), 0);
	assert_int_equal(reg(&b, 0xfee00000, 0x1000, "e", &e), 0);

	uint8_t d[8];
	assert_true(bus_read(&b, 0xd0000070, d, 4));
	assert_int_equal(a.reads, 1);
	assert_int_equal(a.offset, 0x70);
	assert_int_equal(a.len, 4);
	assert_memory_equal(d, "\x11\x11\x11\x11", 4);

	/* The first byte of the next region belongs to it, at offset 0. */
	assert_true(bus_read(&b, 0xd0001000, d, 8));
	assert_int_equal(c.reads, 1);
	assert_int_equal(c.offset, 0);
	assert_int_equal(c.len, 8);
	assert_int_equal(a.reads, 1);

	/* The last byte of a region. */
	assert_true(bus_read(&b, 0xd0000fff, d, 1));
	assert_int_equal(a.reads, 2);
	assert_int_equal(a.offset, 0xfff);

	const uint8_t out[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	assert_true(bus_write(&b, 0xfee00ff8, out, 8));
	assert_int_equal(e.writes, 1);
	assert_int_equal(e.offset, 0xff8);
	assert_int_equal(e.len, 8);
	assert_memory_equal(e.data, out, 8);
	assert_true(bus_write(&b, 0xd0001004, out, 2));
	assert_int_equal(c.writes, 1);
	assert_int_equal(c.offset, 4);
	assert_int_equal(c.len, 2);
	assert_memory_equal(c.data, out, 2);
	assert_int_equal(a.writes, 0);
}

static void unclaimed(void **state)
{
	(void)state;
	struct bus b;
	struct rec a = {.fill = 0x11}, c = {.fill = 0x22};
	bus_init(&b, "pio");
	assert_int_equal(reg(&b, 0x40, 4, "pit", &a), 0);
	assert_int_equal(reg(&b, 0x60, 8, "kbd", &c), 0);

	const uint64_t holes[] = {0,    0x3f, 0x44,   0x50,
	                          0x5f, 0x68, 0xffff, UINT64_MAX};
	for (size_t i = 0; i < sizeof(holes) / sizeof(holes[0]); i++) {
		uint8_t d[8] = {0};
		assert_false(bus_read(&b, holes[i], d, 1));
		assert_int_equal(d[0], 0xff);
		memset(d, 0, sizeof(d));
		assert_false(bus_read(&b, holes[i], d, 8));
		assert_memory_equal(d, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
		assert_false(bus_write(&b, holes[i], d, 1));
	}
	assert_int_equal(a.reads + a.writes + c.reads + c.writes, 0);
}

static void straddle_not_claimed(void **state)
{
	(void)state;
	struct bus b;
	struct rec a = {.fill = 0x11}, c = {.fill = 0x22};
	bus_init(&b, "pio");
	assert_int_equal(reg(&b, 0x3f8, 8, "com1", &a), 0);
	assert_int_equal(reg(&b, 0x400, 4, "next", &c), 0);

	uint8_t d[4] = {0};
	/* Starts in com1, runs into the next region. */
	assert_false(bus_read(&b, 0x3fe, d, 4));
	assert_memory_equal(d, "\xff\xff\xff\xff", 4);
	assert_false(bus_write(&b, 0x3ff, d, 2));
	/* Starts in the last region, runs off its end into nothing. */
	assert_false(bus_read(&b, 0x402, d, 4));
	assert_false(bus_write(&b, 0x403, d, 2));
	/* Starts before a region and runs into it. */
	assert_false(bus_read(&b, 0x3f6, d, 4));
	assert_int_equal(a.reads + a.writes + c.reads + c.writes, 0);
	/* Ending exactly at the end is fine. */
	assert_true(bus_read(&b, 0x3fc, d, 4));
	assert_int_equal(a.reads, 1);
	assert_int_equal(a.offset, 4);
}

static void null_callbacks(void **state)
{
	(void)state;
	struct bus b;
	struct husk_error e = {0};
	/* A region with neither callback: claimed, reads as all ones,
	 * writes dropped (a port Linux probes that we just swallow). */
	const struct bus_device sink = {"sink", NULL, NULL, NULL};
	bus_init(&b, "pio");
	assert_int_equal(bus_register(&b, 0x80, 1, &sink, &e), 0);
	uint8_t d[2] = {0, 0};
	assert_true(bus_read(&b, 0x80, d, 1));
	assert_int_equal(d[0], 0xff);
	assert_true(bus_write(&b, 0x80, d, 1));
	/* Still not claimed when it straddles. */
	assert_false(bus_read(&b, 0x80, d, 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(init_empty),
	    cmocka_unit_test(registration_sorted),
	    cmocka_unit_test(overlaps_rejected),
	    cmocka_unit_test(bad_ranges),
	    cmocka_unit_test(table_full),
	    cmocka_unit_test(dispatch),
	    cmocka_unit_test(unclaimed),
	    cmocka_unit_test(straddle_not_claimed),
	    cmocka_unit_test(null_callbacks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
