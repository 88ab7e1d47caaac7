/* virtio-rng against a fake guest and a fake transport (see
 * test_virtio_blk.c for the shape): chains of buffers the tests offer as a
 * driver would, filled by the device from getrandom(2). */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "husk/error.h"
#include "../../src/vmm/guest_mem.h"
#include "../../src/vmm/log.h"
#include "../../src/vmm/virtio/device.h"
#include "../../src/vmm/virtio/rng.h"
#include "../../src/vmm/virtio/virtq.h"
#include "fake_driver.h"

#define MEM_SIZE 0x40000ULL
#define QNUM     16
#define DESC     0x0000ULL
#define AVAIL    0x1000ULL
#define USED     0x2000ULL
#define DATA     0x10000ULL /* up to MEM_SIZE: 192 KiB */

#define WR VIRTQ_DESC_F_WRITE

struct fx {
	uint8_t *buf;
	struct guest_mem m;
	struct virtio_dev d;
	unsigned used_irqs, config_irqs;
	uint16_t avail_idx;
	uint16_t next_desc;
};

static void count_irq(struct virtio_dev *d, uint32_t reason)
{
	struct fx *f = d->transport;
	drv_count_irq(reason, &f->used_irqs, &f->config_irqs);
}

static void start_device(struct fx *f)
{
	struct virtq *q = &f->d.queues[0];

	memset(f->buf, 0, MEM_SIZE);
	f->avail_idx = 0;
	f->next_desc = 0;
	drv_go_live(&f->d, f, count_irq);
	drv_queue_layout(q, QNUM, DESC, AVAIL, USED);
	drv_queue_ready(&f->m, q);
}

static void kick(struct fx *f)
{
	drv_kick(&f->d, 0);
}

/* ---- the fake driver (fake_driver.h) on queue 0 ---- */

static uint16_t offer_chain(struct fx *f, const struct drv_seg *s, unsigned n)
{
	return drv_offer_chain(&f->m, DESC, AVAIL, QNUM, &f->avail_idx,
	                       &f->next_desc, s, n);
}

static uint16_t used_idx(struct fx *f)
{
	return drv_used_idx(&f->m, USED);
}

static uint32_t used_id(struct fx *f, uint16_t i)
{
	return drv_used_id(&f->m, USED, QNUM, i);
}

static uint32_t used_len(struct fx *f, uint16_t i)
{
	return drv_used_len(&f->m, USED, QNUM, i);
}

/* Whether [gpa, gpa + len) holds some non-zero byte. For random bytes the
 * chance that a run of 16 or more is all zero is below 2^-128. */
static bool any_nonzero(struct fx *f, uint64_t gpa, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++)
		if (f->buf[gpa + i])
			return true;
	return false;
}

static bool all_zero(struct fx *f, uint64_t gpa, uint64_t len)
{
	return !any_nonzero(f, gpa, len);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct husk_error e = {0};
	if (!f || drv_mem_new(&f->m, &f->buf, MEM_SIZE) != 0)
		return -1;
	if (virtio_rng_init(&f->d, &f->m, &e) != 0)
		return -1;
	vmm_log_set_quiet(false);
	start_device(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	virtio_rng_destroy(&f->d);
	virtio_rng_destroy(&f->d); /* twice is harmless */
	free(f->buf);
	free(f);
	vmm_log_set_quiet(false);
	return 0;
}

static void device_shape(void **state)
{
	struct fx *f = *state;

	assert_int_equal(f->d.ops->device_id, VIRTIO_ID_RNG);
	assert_int_equal(f->d.num_queues, 1);
	assert_int_equal(f->d.config_size, 0);
	assert_null(f->d.ops->config_write);
	/* No device features: only VERSION_1, which device.c adds. */
	assert_int_equal(f->d.device_features, 1ULL << VIRTIO_F_VERSION_1);
}

static void fills_buffers(void **state)
{
	struct fx *f = *state;

	struct drv_seg s[] = {{DATA, 64, WR}, {DATA + 0x1000, 200, WR}};
	uint16_t head = offer_chain(f, s, 2);
	kick(f);
	assert_int_equal(used_idx(f), 1);
	assert_int_equal(used_id(f, 0), head);
	assert_int_equal(used_len(f, 0), 264);
	assert_true(any_nonzero(f, DATA, 64));
	assert_true(any_nonzero(f, DATA + 0x1000, 200));
	/* Nothing past the buffers. */
	assert_true(all_zero(f, DATA + 64, 0x1000 - 64));
	assert_true(all_zero(f, DATA + 0x1000 + 200, 0x1000));
	assert_int_equal(f->used_irqs, 1);
	/* Two fills differ. */
	uint8_t first[64];
	memcpy(first, f->buf + DATA, 64);
	offer_chain(f, s, 1);
	kick(f);
	assert_int_equal(used_len(f, 1), 64);
	assert_memory_not_equal(first, f->buf + DATA, 64);
}

static void several_chains(void **state)
{
	struct fx *f = *state;
	uint16_t heads[5];

	for (unsigned i = 0; i < 5; i++) {
		struct drv_seg s[] = {{DATA + 0x1000ULL * i, 16 + 16 * i, WR}};
		heads[i] = offer_chain(f, s, 1);
	}
	kick(f);
	assert_int_equal(used_idx(f), 5);
	for (unsigned i = 0; i < 5; i++) {
		assert_int_equal(used_id(f, (uint16_t)i), heads[i]);
		assert_int_equal(used_len(f, (uint16_t)i), 16 + 16 * i);
		assert_true(any_nonzero(f, DATA + 0x1000ULL * i, 16 + 16 * i));
	}
	/* Later kicks take later chains. */
	struct drv_seg s[] = {{DATA + 0x8000, 32, WR}};
	uint16_t h = offer_chain(f, s, 1);
	kick(f);
	assert_int_equal(used_idx(f), 6);
	assert_int_equal(used_id(f, 5), h);
}

static void readable_parts_ignored(void **state)
{
	struct fx *f = *state;

	/* Readable then writable: the readable bytes are left alone. */
	memset(f->buf + DATA, 0x5a, 32);
	struct drv_seg s[] = {{DATA, 32, 0}, {DATA + 0x1000, 48, WR}};
	offer_chain(f, s, 2);
	/* Only readable: nothing to fill, completed with 0. */
	struct drv_seg r[] = {{DATA + 0x2000, 64, 0}};
	offer_chain(f, r, 1);
	kick(f);
	assert_int_equal(used_idx(f), 2);
	assert_int_equal(used_len(f, 0), 48);
	assert_int_equal(used_len(f, 1), 0);
	for (unsigned i = 0; i < 32; i++)
		assert_int_equal(f->buf[DATA + i], 0x5a);
	assert_true(all_zero(f, DATA + 0x2000, 64));
	assert_true(any_nonzero(f, DATA + 0x1000, 48));
	assert_true(virtio_dev_live(&f->d));
}

static void caps_one_chain(void **state)
{
	struct fx *f = *state;

	/* 40 KiB + 40 KiB asked: 64 KiB given, the first 64 KiB. */
	struct drv_seg s[] = {{DATA, 40 * 1024, WR},
	                      {DATA + 0x10000, 40 * 1024, WR}};
	offer_chain(f, s, 2);
	kick(f);
	assert_int_equal(used_len(f, 0), VIRTIO_RNG_MAX_PER_CHAIN);
	const uint64_t in_second = VIRTIO_RNG_MAX_PER_CHAIN - 40 * 1024;
	assert_true(any_nonzero(f, DATA + 0x10000 + in_second - 16, 16));
	assert_true(
	    all_zero(f, DATA + 0x10000 + in_second, 40 * 1024 - in_second));
}

static void hostile_chain(void **state)
{
	struct fx *f = *state;

	vmm_log_set_quiet(true);
	/* A loop, then (after a reset) a buffer outside RAM. */
	drv_set_desc(&f->m, DESC, 0, DATA, 16, WR | VIRTQ_DESC_F_NEXT, 1);
	drv_set_desc(&f->m, DESC, 1, DATA, 16, WR | VIRTQ_DESC_F_NEXT, 0);
	drv_offer(&f->m, AVAIL, QNUM, &f->avail_idx, 0);
	kick(f);
	assert_int_equal(used_idx(f), 0);
	assert_true(f->d.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(f->config_irqs, 1);
	assert_true(f->d.interrupt_status & VIRTIO_INT_CONFIG);
	/* Nothing more until a reset, and no second interrupt. */
	struct drv_seg ok[] = {{DATA, 16, WR}};
	offer_chain(f, ok, 1);
	kick(f);
	assert_int_equal(used_idx(f), 0);
	assert_int_equal(f->config_irqs, 1);

	f->d.status = 0;
	start_device(f);
	struct drv_seg far[] = {{MEM_SIZE - 8, 16, WR}};
	offer_chain(f, far, 1);
	kick(f);
	assert_int_equal(used_idx(f), 0);
	assert_true(f->d.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(f->config_irqs, 2);

	f->d.status = 0;
	start_device(f);
	offer_chain(f, ok, 1);
	kick(f);
	assert_int_equal(used_idx(f), 1);
	assert_int_equal(used_len(f, 0), 16);
}

static void notify_needs_driver_ok(void **state)
{
	struct fx *f = *state;

	f->d.status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
	struct drv_seg s[] = {{DATA, 16, WR}};
	offer_chain(f, s, 1);
	kick(f);
	assert_int_equal(used_idx(f), 0);
	assert_true(all_zero(f, DATA, 16));
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(device_shape),           T(fills_buffers),  T(several_chains),
	    T(readable_parts_ignored), T(caps_one_chain), T(hostile_chain),
	    T(notify_needs_driver_ok),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
