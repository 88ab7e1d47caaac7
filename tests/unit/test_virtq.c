/* The virtqueue walker against a fake guest: guest_mem_wrap over a 64 KiB
 * buffer, with rings the tests write byte for byte as a driver would. */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "husk/error.h"
#include "../../src/vmm/guest_mem.h"
#include "../../src/vmm/virtio/virtq.h"
#include "fake_driver.h"

#define MEM_SIZE 0x10000ULL
#define DESC     0x0000ULL /* room for 1024 descriptors */
#define AVAIL    0x4000ULL
#define USED     0x5000ULL /* 6 + 8 * 1024 bytes: up to 0x7006 */
#define DATA     0x8000ULL
#define INDIRECT 0xC000ULL

#define NEXT  VIRTQ_DESC_F_NEXT
#define WRITE VIRTQ_DESC_F_WRITE
#define INDIR VIRTQ_DESC_F_INDIRECT

struct fx {
	uint8_t *buf;
	struct guest_mem m;
	struct virtq q;
	struct virtq_chain c;
	struct husk_error e;
	uint16_t avail_idx; /* the fake driver's next avail index */
};

/* Offers chain head: fills the next avail slot, then publishes the index. */
static void offer(struct fx *f, uint16_t head)
{
	drv_offer(&f->m, AVAIL, f->q.num, &f->avail_idx, head);
}

static void set_avail_idx(struct fx *f, uint16_t idx)
{
	f->avail_idx = idx;
	drv_put16(&f->m, AVAIL + 2, idx);
}

/* Sets up a ready queue of num entries whose indices both start at idx. */
static void start_queue(struct fx *f, uint16_t num, uint16_t idx)
{
	drv_queue_layout(&f->q, num, DESC, AVAIL, USED);
	f->q.last_avail = idx;
	f->q.used_idx = idx;
	set_avail_idx(f, idx);
	drv_queue_ready(&f->m, &f->q);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || drv_mem_new(&f->m, &f->buf, MEM_SIZE) != 0)
		return -1;
	start_queue(f, 8, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	guest_mem_destroy(&f->m);
	free(f->buf);
	free(f);
	return 0;
}

/* Pops expecting a violation whose message contains what. */
static void pop_fails(struct fx *f, int code, const char *what)
{
	uint16_t last = f->q.last_avail;
	memset(&f->e, 0, sizeof(f->e));
	int rc = virtq_pop(&f->m, &f->q, &f->c, &f->e);
	assert_int_equal(rc, -code);
	assert_true(f->q.broken);
	assert_int_equal(f->q.last_avail, last);
	if (!strstr(f->e.msg, what))
		fail_msg("message '%s' lacks '%s'", f->e.msg, what);
}

/* ---- virtq_validate ---- */

static void validate_accepts_every_power_of_two(void **state)
{
	struct fx *f = *state;
	for (uint32_t n = 1; n <= VIRTQ_MAX_SIZE; n *= 2) {
		f->q.num = (uint16_t)n;
		assert_int_equal(virtq_validate(&f->m, &f->q, &f->e), 0);
	}
}

static void validate_rejects_bad_sizes(void **state)
{
	struct fx *f = *state;
	const uint16_t bad[] = {0, 3, 6, 1000, 1025, 2048, 65535};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f->q.num = bad[i];
		assert_int_equal(virtq_validate(&f->m, &f->q, &f->e), -EINVAL);
		assert_non_null(strstr(f->e.msg, "power of two"));
	}
}

static void validate_rejects_unaligned_rings(void **state)
{
	struct fx *f = *state;
	f->q.desc = DESC + 8;
	assert_int_equal(virtq_validate(&f->m, &f->q, &f->e), -EINVAL);
	assert_non_null(strstr(f->e.msg, "descriptor table"));
	f->q.desc = DESC;
	f->q.avail = AVAIL + 1;
	assert_int_equal(virtq_validate(&f->m, &f->q, &f->e), -EINVAL);
	assert_non_null(strstr(f->e.msg, "avail ring"));
	f->q.avail = AVAIL;
	f->q.used = USED + 2;
	assert_int_equal(virtq_validate(&f->m, &f->q, &f->e), -EINVAL);
	assert_non_null(strstr(f->e.msg, "used ring"));
	f->q.used = USED + 4;
	assert_int_equal(virtq_validate(&f->m, &f->q, &f->e), 0);
}

static void validate_rejects_rings_outside_ram(void **state)
{
	struct fx *f = *state;
	/* Each ring just fits at the end of RAM, then one step further. */
	f->q.desc = MEM_SIZE - 16 * 8;
	assert_int_equal(virtq_validate(&f->m, &f->q, &f->e), 0);
	f->q.desc = MEM_SIZE - 16 * 8 + 16;
	assert_int_equal(virtq_validate(&f->m, &f->q, &f->e), -EFAULT);
	f->q.desc = UINT64_MAX - 15; /* 16-aligned, + 128 wraps */
	assert_int_equal(virtq_validate(&f->m, &f->q, &f->e), -EFAULT);
	f->q.desc = DESC;

	f->q.avail = MEM_SIZE - (6 + 2 * 8);
	assert_int_equal(virtq_validate(&f->m, &f->q, &f->e), 0);
	f->q.avail += 2;
	assert_int_equal(virtq_validate(&f->m, &f->q, &f->e), -EFAULT);
	assert_non_null(strstr(f->e.msg, "avail ring"));
	f->q.avail = AVAIL;

	f->q.used = MEM_SIZE - 56; /* 6 + 8 * 8 = 70 > 56 */
	assert_int_equal(virtq_validate(&f->m, &f->q, &f->e), -EFAULT);
	assert_non_null(strstr(f->e.msg, "used ring"));
	f->q.used = 1ULL << 62;
	assert_int_equal(virtq_validate(&f->m, &f->q, &f->e), -EFAULT);
}

/* ---- virtq_pop: good chains ---- */

static void pop_empty_returns_zero(void **state)
{
	struct fx *f = *state;
	assert_int_equal(virtq_pop(&f->m, &f->q, &f->c, &f->e), 0);
	assert_int_equal(f->q.last_avail, 0);
	assert_false(f->q.broken);
}

static void pop_three_descriptor_chain(void **state)
{
	struct fx *f = *state;
	/* Out of order on purpose: 3 -> 5 -> 1. */
	drv_set_desc(&f->m, DESC, 3, DATA, 10, NEXT, 5);
	drv_set_desc(&f->m, DESC, 5, DATA + 0x100, 6, NEXT, 1);
	drv_set_desc(&f->m, DESC, 1, DATA + 0x200, 20, WRITE, 0);
	memcpy(f->buf + DATA, "0123456789", 10);
	memcpy(f->buf + DATA + 0x100, "abcdef", 6);
	offer(f, 3);

	assert_int_equal(virtq_pop(&f->m, &f->q, &f->c, &f->e), 1);
	assert_int_equal(f->q.last_avail, 1);
	assert_int_equal(f->c.head, 3);
	assert_int_equal(f->c.n, 3);
	assert_int_equal(f->c.readable, 16);
	assert_int_equal(f->c.writable, 20);
	assert_int_equal(f->c.buf[0].addr, DATA);
	assert_int_equal(f->c.buf[1].len, 6);
	assert_false(f->c.buf[1].device_writable);
	assert_true(f->c.buf[2].device_writable);

	char in[32] = {0};
	assert_int_equal(virtq_chain_read(&f->m, &f->c, 0, in, sizeof(in)), 16);
	assert_memory_equal(in, "0123456789abcdef", 16);
	memset(in, 0, sizeof(in));
	/* From the middle of the first buffer across into the second. */
	assert_int_equal(virtq_chain_read(&f->m, &f->c, 8, in, 4), 4);
	assert_memory_equal(in, "89ab", 4);
	assert_int_equal(virtq_chain_read(&f->m, &f->c, 16, in, 1), 0);

	const char out[] = "written by the device";
	assert_int_equal(virtq_chain_write(&f->m, &f->c, 0, out, 20), 20);
	assert_memory_equal(f->buf + DATA + 0x200, out, 20);
	assert_int_equal(virtq_chain_write(&f->m, &f->c, 15, "XYZWV+", 6), 5);
	assert_memory_equal(f->buf + DATA + 0x200 + 15, "XYZWV", 5);
	/* Nothing outside the writable buffer was touched. */
	assert_int_equal(f->buf[DATA + 0x200 + 20], 0);
	assert_memory_equal(f->buf + DATA, "0123456789", 10);

	assert_int_equal(virtq_pop(&f->m, &f->q, &f->c, &f->e), 0);
}

static void pop_takes_chains_in_ring_order(void **state)
{
	struct fx *f = *state;
	drv_set_desc(&f->m, DESC, 0, DATA, 1, 0, 0);
	drv_set_desc(&f->m, DESC, 7, DATA, 2, WRITE, 0);
	offer(f, 7);
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->m, &f->q, &f->c, &f->e), 1);
	assert_int_equal(f->c.head, 7);
	assert_int_equal(f->c.writable, 2);
	assert_int_equal(virtq_pop(&f->m, &f->q, &f->c, &f->e), 1);
	assert_int_equal(f->c.head, 0);
	assert_int_equal(f->c.readable, 1);
	assert_int_equal(virtq_pop(&f->m, &f->q, &f->c, &f->e), 0);
}

static void pop_full_queue_is_not_a_jump(void **state)
{
	struct fx *f = *state;
	for (uint16_t i = 0; i < 8; i++) {
		drv_set_desc(&f->m, DESC, i, DATA + i, 1, 0, 0);
		offer(f, i);
	}
	for (uint16_t i = 0; i < 8; i++) {
		assert_int_equal(virtq_pop(&f->m, &f->q, &f->c, &f->e), 1);
		assert_int_equal(f->c.head, i);
	}
	assert_int_equal(virtq_pop(&f->m, &f->q, &f->c, &f->e), 0);
}

static void pop_avail_index_wraps(void **state)
{
	struct fx *f = *state;
	start_queue(f, 8, 65535);
	drv_set_desc(&f->m, DESC, 2, DATA, 4, 0, 0);
	offer(f, 2); /* slot 65535 & 7 = 7, index becomes 0 */
	assert_int_equal(drv_get16(&f->m, AVAIL + 2), 0);
	assert_int_equal(virtq_pop(&f->m, &f->q, &f->c, &f->e), 1);
	assert_int_equal(f->c.head, 2);
	assert_int_equal(f->q.last_avail, 0);
	assert_int_equal(virtq_pop(&f->m, &f->q, &f->c, &f->e), 0);
}

static void pop_chain_of_max_length(void **state)
{
	struct fx *f = *state;
	start_queue(f, VIRTQ_MAX_SIZE, 0);
	for (uint16_t i = 0; i < VIRTQ_MAX_CHAIN; i++)
		drv_set_desc(&f->m, DESC, i, DATA, 1,
		             i + 1 < VIRTQ_MAX_CHAIN ? NEXT : 0, i + 1);
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->m, &f->q, &f->c, &f->e), 1);
	assert_int_equal(f->c.n, VIRTQ_MAX_CHAIN);
	assert_int_equal(f->c.readable, VIRTQ_MAX_CHAIN);
}

static void pop_chain_using_every_descriptor(void **state)
{
	struct fx *f = *state;
	/* num descriptors in one chain is the most a table can hold: legal. */
	for (uint16_t i = 0; i < 8; i++)
		drv_set_desc(&f->m, DESC, 7 - i, DATA + i, 1, i < 7 ? NEXT : 0,
		             6 - i);
	offer(f, 7);
	assert_int_equal(virtq_pop(&f->m, &f->q, &f->c, &f->e), 1);
	assert_int_equal(f->c.n, 8);
	assert_int_equal(f->c.buf[7].addr, DATA + 7);
}

/* ---- virtq_pop: violations ---- */

static void pop_rejects_descriptor_loop(void **state)
{
	struct fx *f = *state;
	drv_set_desc(&f->m, DESC, 0, DATA, 8, NEXT, 1);
	drv_set_desc(&f->m, DESC, 1, DATA, 8, NEXT, 0);
	offer(f, 0);
	pop_fails(f, EPROTO, "loop");
}

static void pop_rejects_chain_longer_than_queue(void **state)
{
	struct fx *f = *state;
	/* Every descriptor once, then back to the head: num + 1 hops. */
	for (uint16_t i = 0; i < 8; i++)
		drv_set_desc(&f->m, DESC, i, DATA, 1, NEXT, (i + 1) % 8);
	offer(f, 0);
	pop_fails(f, EPROTO, "more than 8 descriptors");
}

static void pop_rejects_chain_over_max_chain(void **state)
{
	struct fx *f = *state;
	start_queue(f, VIRTQ_MAX_SIZE, 0);
	for (uint16_t i = 0; i <= VIRTQ_MAX_CHAIN; i++)
		drv_set_desc(&f->m, DESC, i, DATA, 1,
		             i < VIRTQ_MAX_CHAIN ? NEXT : 0, i + 1);
	offer(f, 0);
	pop_fails(f, EPROTO, "more than 256 buffers");
}

static void pop_rejects_buffer_outside_ram(void **state)
{
	struct fx *f = *state;
	drv_set_desc(&f->m, DESC, 0, MEM_SIZE - 16, 32, 0,
	             0); /* crosses the end */
	offer(f, 0);
	pop_fails(f, EFAULT, "not inside guest RAM");
}

static void pop_rejects_buffer_wrapping_address_space(void **state)
{
	struct fx *f = *state;
	/* addr + len wraps around to 8, inside RAM. */
	drv_set_desc(&f->m, DESC, 0, UINT64_MAX - 7, 16, 0, 0);
	offer(f, 0);
	pop_fails(f, EFAULT, "not inside guest RAM");
}

static void pop_rejects_buffer_far_past_ram(void **state)
{
	struct fx *f = *state;
	drv_set_desc(&f->m, DESC, 0, DATA, 8, NEXT, 1);
	drv_set_desc(&f->m, DESC, 1, 1ULL << 40, 0xffffffffu, WRITE, 0);
	offer(f, 0);
	pop_fails(f, EFAULT, "descriptor 1 buffer");
}

static void pop_rejects_zero_length_buffer(void **state)
{
	struct fx *f = *state;
	drv_set_desc(&f->m, DESC, 0, DATA, 0, 0, 0);
	offer(f, 0);
	pop_fails(f, EPROTO, "length 0");
}

static void pop_rejects_avail_index_jump(void **state)
{
	struct fx *f = *state;
	drv_set_desc(&f->m, DESC, 0, DATA, 1, 0, 0);
	set_avail_idx(f, 9); /* 9 chains offered in a queue of 8 */
	pop_fails(f, EPROTO, "avail index jump");
}

static void pop_rejects_avail_index_going_back(void **state)
{
	struct fx *f = *state;
	start_queue(f, 8, 100);
	set_avail_idx(f, 99);
	pop_fails(f, EPROTO, "avail index jump");
}

static void pop_rejects_head_out_of_range(void **state)
{
	struct fx *f = *state;
	offer(f, 8);
	pop_fails(f, EPROTO, "head 8");
}

static void pop_rejects_next_out_of_range(void **state)
{
	struct fx *f = *state;
	drv_set_desc(&f->m, DESC, 0, DATA, 1, NEXT, 8);
	offer(f, 0);
	pop_fails(f, EPROTO, "next 8");
}

static void pop_rejects_readable_after_writable(void **state)
{
	struct fx *f = *state;
	drv_set_desc(&f->m, DESC, 0, DATA, 4, NEXT, 1);
	drv_set_desc(&f->m, DESC, 1, DATA + 4, 4, WRITE | NEXT, 2);
	drv_set_desc(&f->m, DESC, 2, DATA + 8, 4, 0, 0);
	offer(f, 0);
	pop_fails(f, EPROTO, "device-readable descriptor 2 after");
}

static void pop_rejects_indirect_not_negotiated(void **state)
{
	struct fx *f = *state;
	drv_set_desc(&f->m, INDIRECT, 0, DATA, 4, 0, 0);
	drv_set_desc(&f->m, DESC, 0, INDIRECT, 16, INDIR, 0);
	offer(f, 0);
	pop_fails(f, EPROTO, "not negotiated");
}

static void pop_rejects_indirect_with_next(void **state)
{
	struct fx *f = *state;
	f->q.indirect = true;
	drv_set_desc(&f->m, INDIRECT, 0, DATA, 4, 0, 0);
	drv_set_desc(&f->m, DESC, 0, INDIRECT, 16, INDIR | NEXT, 1);
	drv_set_desc(&f->m, DESC, 1, DATA, 4, 0, 0);
	offer(f, 0);
	pop_fails(f, EPROTO, "both INDIRECT and NEXT");
}

static void pop_rejects_nested_indirect(void **state)
{
	struct fx *f = *state;
	f->q.indirect = true;
	drv_set_desc(&f->m, DESC, 0, INDIRECT, 32, INDIR, 0);
	drv_set_desc(&f->m, INDIRECT, 0, DATA, 4, NEXT, 1);
	drv_set_desc(&f->m, INDIRECT, 1, INDIRECT + 0x100, 16, INDIR, 0);
	drv_set_desc(&f->m, INDIRECT + 0x100, 0, DATA, 4, 0, 0);
	offer(f, 0);
	pop_fails(f, EPROTO, "nested indirect");
}

static void pop_rejects_bad_indirect_table(void **state)
{
	struct fx *f = *state;
	const struct {
		uint64_t addr;
		uint32_t len;
		int code;
	} bad[] = {
	    {INDIRECT, 0, EPROTO},
	    {INDIRECT, 17, EPROTO},
	    {INDIRECT, 8, EPROTO},
	    {INDIRECT, 16 * (VIRTQ_MAX_CHAIN + 1), EPROTO},
	    {MEM_SIZE - 16, 32, EFAULT},
	    {UINT64_MAX - 15, 32, EFAULT},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		start_queue(f, 8, 0);
		f->q.indirect = true;
		drv_set_desc(&f->m, DESC, 0, bad[i].addr, bad[i].len, INDIR, 0);
		offer(f, 0);
		pop_fails(f, bad[i].code, "indirect table");
	}
}

static void pop_rejects_indirect_next_out_of_table(void **state)
{
	struct fx *f = *state;
	f->q.indirect = true;
	drv_set_desc(&f->m, DESC, 0, INDIRECT, 48, INDIR, 0);
	drv_set_desc(&f->m, INDIRECT, 0, DATA, 4, NEXT,
	             3); /* table has 3 entries */
	offer(f, 0);
	pop_fails(f, EPROTO, "indirect descriptor 0 has next 3");
}

static void pop_rejects_indirect_loop(void **state)
{
	struct fx *f = *state;
	f->q.indirect = true;
	drv_set_desc(&f->m, DESC, 0, INDIRECT, 32, INDIR, 0);
	drv_set_desc(&f->m, INDIRECT, 0, DATA, 4, NEXT, 1);
	drv_set_desc(&f->m, INDIRECT, 1, DATA, 4, NEXT, 0);
	offer(f, 0);
	pop_fails(f, EPROTO, "loop");
}

static void pop_indirect_chain(void **state)
{
	struct fx *f = *state;
	f->q.indirect = true;
	/* A direct header, then an indirect table 0 -> 2 (1 unused). The
	 * WRITE flag on the table's own descriptor means nothing. */
	drv_set_desc(&f->m, DESC, 4, DATA, 3, NEXT, 6);
	drv_set_desc(&f->m, DESC, 6, INDIRECT, 48, INDIR | WRITE, 0);
	drv_set_desc(&f->m, INDIRECT, 0, DATA + 3, 5, NEXT, 2);
	drv_set_desc(&f->m, INDIRECT, 1, 0xdead0000, 0, INDIR, 0);
	drv_set_desc(&f->m, INDIRECT, 2, DATA + 0x100, 64, WRITE, 0);
	memcpy(f->buf + DATA, "hdrbody!", 8);
	offer(f, 4);
	assert_int_equal(virtq_pop(&f->m, &f->q, &f->c, &f->e), 1);
	assert_int_equal(f->c.head, 4);
	assert_int_equal(f->c.n, 3);
	assert_int_equal(f->c.readable, 8);
	assert_int_equal(f->c.writable, 64);
	char in[8];
	assert_int_equal(virtq_chain_read(&f->m, &f->c, 0, in, 8), 8);
	assert_memory_equal(in, "hdrbody!", 8);
}

static void pop_counts_indirect_buffers_toward_max_chain(void **state)
{
	struct fx *f = *state;
	f->q.indirect = true;
	drv_set_desc(&f->m, DESC, 0, DATA, 1, NEXT, 1);
	drv_set_desc(&f->m, DESC, 1, INDIRECT, 16 * VIRTQ_MAX_CHAIN, INDIR, 0);
	for (uint16_t i = 0; i < VIRTQ_MAX_CHAIN; i++)
		drv_set_desc(&f->m, INDIRECT, i, DATA, 1,
		             i + 1 < VIRTQ_MAX_CHAIN ? NEXT : 0, i + 1);
	offer(f, 0);
	pop_fails(f, EPROTO, "more than 256 buffers");
}

static void pop_rejects_totals_over_4g(void **state)
{
	struct fx *f = *state;
	struct guest_mem big;
	struct husk_error e = {0};
	/* Sparse memfd: only the pages written below are allocated. */
	assert_int_equal(guest_mem_create(&big, 3ULL << 30, &e), 0);
	struct guest_mem small = f->m;
	f->m = big;
	start_queue(f, 8, 0);
	drv_set_desc(&f->m, DESC, 0, 0x10000000, 0x80000000u, NEXT, 1);
	drv_set_desc(&f->m, DESC, 1, 0x10000000, 0x7fffffffu, 0, 2);
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->m, &f->q, &f->c, &f->e), 1);
	assert_int_equal(f->c.readable, UINT32_MAX);

	drv_set_desc(&f->m, DESC, 1, 0x10000000, 0x7fffffffu, NEXT, 2);
	drv_set_desc(&f->m, DESC, 2, DATA, 1, 0, 0);
	offer(f, 0);
	pop_fails(f, EPROTO, "readable bytes exceed 4 GiB");

	f->m = small;
	guest_mem_destroy(&big);
}

static void broken_queue_stays_broken(void **state)
{
	struct fx *f = *state;
	offer(f, 9);
	pop_fails(f, EPROTO, "head 9");
	/* The guest fixes the ring: too late. */
	drv_set_desc(&f->m, DESC, 0, DATA, 4, 0, 0);
	drv_put16(&f->m, AVAIL + 4, 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(virtq_pop(&f->m, &f->q, &f->c, &f->e), -EIO);
		assert_non_null(strstr(f->e.msg, "broken"));
	}
	assert_int_equal(virtq_push(&f->m, &f->q, 0, 0, &f->e), -EIO);
	assert_int_equal(virtq_set_used_notify(&f->m, &f->q, true, &f->e),
	                 -EIO);
	/* A reset (the driver's, after DEVICE_NEEDS_RESET) recovers. */
	start_queue(f, 8, 0);
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->m, &f->q, &f->c, &f->e), 1);
}

static void pop_on_queue_not_ready(void **state)
{
	struct fx *f = *state;
	f->q.ready = false;
	pop_fails(f, EPROTO, "not ready");
}

static void pop_rechecks_layout(void **state)
{
	struct fx *f = *state;
	/* A queue changed after validation (or restored from a bad
	 * snapshot) is still checked. */
	f->q.num = 12;
	pop_fails(f, EINVAL, "power of two");
}

/* ---- virtq_push ---- */

static void push_fills_used_ring(void **state)
{
	struct fx *f = *state;
	drv_set_desc(&f->m, DESC, 5, DATA, 4, WRITE, 0);
	offer(f, 5);
	assert_int_equal(virtq_pop(&f->m, &f->q, &f->c, &f->e), 1);
	assert_int_equal(virtq_push(&f->m, &f->q, 5, 3, &f->e), 0);
	assert_int_equal(f->q.used_idx, 1);
	assert_int_equal(drv_get16(&f->m, USED + 2), 1);
	assert_int_equal(drv_get32(&f->m, USED + 4), 5);
	assert_int_equal(drv_get32(&f->m, USED + 8), 3);
}

static void push_wraps_used_index(void **state)
{
	struct fx *f = *state;
	start_queue(f, 8, 65535);
	drv_set_desc(&f->m, DESC, 1, DATA, 4, WRITE, 0);
	offer(f, 1);
	assert_int_equal(virtq_pop(&f->m, &f->q, &f->c, &f->e), 1);
	assert_int_equal(virtq_push(&f->m, &f->q, 1, 4, &f->e), 0);
	assert_int_equal(f->q.used_idx, 0);
	assert_int_equal(drv_get16(&f->m, USED + 2), 0);
	/* Slot 65535 & 7 = 7. */
	assert_int_equal(drv_get32(&f->m, USED + 4 + 8 * 7), 1);
	assert_int_equal(drv_get32(&f->m, USED + 4 + 8 * 7 + 4), 4);
}

static void push_rejects_device_bugs(void **state)
{
	struct fx *f = *state;
	/* Nothing popped: nothing to hand back. */
	assert_int_equal(virtq_push(&f->m, &f->q, 0, 0, &f->e), -EINVAL);
	drv_set_desc(&f->m, DESC, 0, DATA, 4, 0, 0);
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->m, &f->q, &f->c, &f->e), 1);
	assert_int_equal(virtq_push(&f->m, &f->q, 8, 0, &f->e), -EINVAL);
	/* Device bugs leave the queue usable. */
	assert_false(f->q.broken);
	assert_int_equal(f->q.used_idx, 0);
	assert_int_equal(virtq_push(&f->m, &f->q, 0, 0, &f->e), 0);
}

/* ---- interrupt and notification suppression ---- */

static void should_interrupt_honours_no_interrupt(void **state)
{
	struct fx *f = *state;
	f->q.used_idx = 1;
	assert_true(virtq_should_interrupt(&f->m, &f->q, 0));
	drv_put16(&f->m, AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
	assert_false(virtq_should_interrupt(&f->m, &f->q, 0));
	drv_put16(&f->m, AVAIL, 0);
	/* Nothing pushed: nothing to tell. */
	assert_false(virtq_should_interrupt(&f->m, &f->q, 1));
}

static void should_interrupt_honours_used_event(void **state)
{
	struct fx *f = *state;
	const uint64_t used_event = AVAIL + 4 + 2 * 8;
	f->q.event_idx = true;
	/* The flag means nothing with EVENT_IDX. */
	drv_put16(&f->m, AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);

	drv_put16(&f->m, used_event, 0);
	f->q.used_idx = 1;
	assert_true(virtq_should_interrupt(&f->m, &f->q, 0));

	drv_put16(&f->m, used_event, 5);
	f->q.used_idx = 2;
	assert_false(virtq_should_interrupt(&f->m, &f->q, 1));
	f->q.used_idx = 5;
	assert_false(virtq_should_interrupt(&f->m, &f->q, 3)); /* 3, 4 */
	f->q.used_idx = 7;
	assert_true(virtq_should_interrupt(&f->m, &f->q, 3)); /* 3..6 */
	f->q.used_idx = 6;
	assert_true(virtq_should_interrupt(&f->m, &f->q, 5)); /* just 5 */

	/* Across the 16-bit wrap. */
	drv_put16(&f->m, used_event, 0);
	f->q.used_idx = 1;
	assert_true(virtq_should_interrupt(&f->m, &f->q, 65535));
	drv_put16(&f->m, used_event, 65534);
	assert_false(virtq_should_interrupt(&f->m, &f->q, 65535));
}

static void set_used_notify_flags(void **state)
{
	struct fx *f = *state;
	assert_int_equal(virtq_set_used_notify(&f->m, &f->q, false, &f->e), 0);
	assert_int_equal(drv_get16(&f->m, USED), VIRTQ_USED_F_NO_NOTIFY);
	assert_int_equal(virtq_set_used_notify(&f->m, &f->q, true, &f->e), 0);
	assert_int_equal(drv_get16(&f->m, USED), 0);
	/* Offered while notifications were off: re-enabling reports it. */
	drv_set_desc(&f->m, DESC, 0, DATA, 4, 0, 0);
	offer(f, 0);
	assert_int_equal(virtq_set_used_notify(&f->m, &f->q, true, &f->e), 1);
}

static void set_used_notify_avail_event(void **state)
{
	struct fx *f = *state;
	const uint64_t avail_event = USED + 4 + 8 * 8;
	f->q.event_idx = true;
	drv_set_desc(&f->m, DESC, 0, DATA, 4, 0, 0);
	offer(f, 0);
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->m, &f->q, &f->c, &f->e), 1);
	assert_int_equal(virtq_set_used_notify(&f->m, &f->q, true, &f->e), 1);
	assert_int_equal(drv_get16(&f->m, avail_event), 1);
	assert_int_equal(virtq_pop(&f->m, &f->q, &f->c, &f->e), 1);
	assert_int_equal(virtq_set_used_notify(&f->m, &f->q, true, &f->e), 0);
	assert_int_equal(drv_get16(&f->m, avail_event), 2);
	/* Disabling leaves avail_event where it was. */
	assert_int_equal(virtq_set_used_notify(&f->m, &f->q, false, &f->e), 0);
	assert_int_equal(drv_get16(&f->m, avail_event), 2);
	assert_int_equal(drv_get16(&f->m, USED), 0);
}

static void reset_clears_everything(void **state)
{
	struct fx *f = *state;
	f->q.broken = true;
	f->q.indirect = true;
	f->q.last_avail = 7;
	virtq_reset(&f->q);
	assert_false(f->q.ready);
	assert_false(f->q.broken);
	assert_false(f->q.indirect);
	assert_int_equal(f->q.num, 0);
	assert_int_equal(f->q.last_avail, 0);
	assert_int_equal(f->q.used_idx, 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(validate_accepts_every_power_of_two),
	    T(validate_rejects_bad_sizes),
	    T(validate_rejects_unaligned_rings),
	    T(validate_rejects_rings_outside_ram),
	    T(pop_empty_returns_zero),
	    T(pop_three_descriptor_chain),
	    T(pop_takes_chains_in_ring_order),
	    T(pop_full_queue_is_not_a_jump),
	    T(pop_avail_index_wraps),
	    T(pop_chain_of_max_length),
	    T(pop_chain_using_every_descriptor),
	    T(pop_rejects_descriptor_loop),
	    T(pop_rejects_chain_longer_than_queue),
	    T(pop_rejects_chain_over_max_chain),
	    T(pop_rejects_buffer_outside_ram),
	    T(pop_rejects_buffer_wrapping_address_space),
	    T(pop_rejects_buffer_far_past_ram),
	    T(pop_rejects_zero_length_buffer),
	    T(pop_rejects_avail_index_jump),
	    T(pop_rejects_avail_index_going_back),
	    T(pop_rejects_head_out_of_range),
	    T(pop_rejects_next_out_of_range),
	    T(pop_rejects_readable_after_writable),
	    T(pop_rejects_indirect_not_negotiated),
	    T(pop_rejects_indirect_with_next),
	    T(pop_rejects_nested_indirect),
	    T(pop_rejects_bad_indirect_table),
	    T(pop_rejects_indirect_next_out_of_table),
	    T(pop_rejects_indirect_loop),
	    T(pop_indirect_chain),
	    T(pop_counts_indirect_buffers_toward_max_chain),
	    T(pop_rejects_totals_over_4g),
	    T(broken_queue_stays_broken),
	    T(pop_on_queue_not_ready),
	    T(pop_rechecks_layout),
	    T(push_fills_used_ring),
	    T(push_wraps_used_index),
	    T(push_rejects_device_bugs),
	    T(should_interrupt_honours_no_interrupt),
	    T(should_interrupt_honours_used_event),
	    T(set_used_notify_flags),
	    T(set_used_notify_avail_event),
	    T(reset_clears_everything),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
