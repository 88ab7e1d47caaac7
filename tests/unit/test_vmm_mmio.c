/* The virtio-mmio transport (version 2) driven as a driver drives it:
 * 4-byte register reads and writes through the bus device, against a tiny
 * fake device over a wrapped fake guest memory. The fake device counts
 * what the transport asks of it, and its notify walks the queue for real
 * (pop, complete) so interrupts come from the normal path. */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "husk/error.h"
#include "../../src/vmm/bus.h"
#include "../../src/vmm/guest_mem.h"
#include "../../src/vmm/log.h"
#include "../../src/vmm/virtio/device.h"
#include "../../src/vmm/virtio/mmio.h"
#include "../../src/vmm/virtio/virtq.h"
#include "fake_driver.h"

#define MEM_SIZE 0x10000ULL
#define DESC     0x1000ULL
#define AVAIL    0x2000ULL
#define USED     0x3000ULL
#define DATA     0x4000ULL
#define QNUM     16

#define NQUEUES     2
#define FAKE_ID     0x1f
#define FAKE_FEAT_A 0 /* device-specific bits the fake device offers */
#define FAKE_FEAT_B 5
#define CONFIG_SIZE 12
#define OFFERED     ((1ULL << FAKE_FEAT_A) | (1ULL << FAKE_FEAT_B))
#define V1          (1ULL << VIRTIO_F_VERSION_1)

#define S_ACK  VIRTIO_STATUS_ACKNOWLEDGE
#define S_DRV  VIRTIO_STATUS_DRIVER
#define S_FOK  VIRTIO_STATUS_FEATURES_OK
#define S_DOK  VIRTIO_STATUS_DRIVER_OK
#define S_NR   VIRTIO_STATUS_NEEDS_RESET
#define S_LIVE (S_ACK | S_DRV | S_FOK | S_DOK)

struct fx {
	uint8_t *buf;
	struct guest_mem m;
	struct virtio_dev d;
	struct virtio_mmio t;
	struct bus_device bd;
	struct virtq_chain c;
	uint8_t config[CONFIG_SIZE];
	/* what the fake device was asked to do */
	unsigned notifies[NQUEUES];
	unsigned activates, resets, config_writes;
	uint32_t last_config_write_off, last_config_write_len;
	unsigned chains; /* chains the device's notify popped */
	unsigned raised; /* interrupts raised through t->raise */
	uint16_t avail_idx;
};

/* ---- the fake device ---- */

static void fake_config_read(struct virtio_dev *d, uint32_t offset,
                             uint8_t *data, uint32_t len)
{
	struct fx *f = d->priv;
	assert_true(offset + len <= CONFIG_SIZE);
	memcpy(data, f->config + offset, len);
}

static void fake_config_write(struct virtio_dev *d, uint32_t offset,
                              const uint8_t *data, uint32_t len)
{
	struct fx *f = d->priv;
	assert_true(offset + len <= CONFIG_SIZE);
	memcpy(f->config + offset, data, len);
	f->config_writes++;
	f->last_config_write_off = offset;
	f->last_config_write_len = len;
}

static void fake_notify(struct virtio_dev *d, uint16_t q)
{
	struct fx *f = d->priv;
	struct husk_error e = {0};
	assert_true(q < NQUEUES);
	assert_true(d->queues[q].ready);
	assert_true(virtio_dev_live(d));
	f->notifies[q]++;
	while (virtq_pop(d->mem, &d->queues[q], &f->c, &e) == 1) {
		f->chains++;
		virtio_dev_complete(d, q, f->c.head, 0);
	}
}

static void fake_activate(struct virtio_dev *d)
{
	struct fx *f = d->priv;
	f->activates++;
}

static void fake_reset(struct virtio_dev *d)
{
	struct fx *f = d->priv;
	f->resets++;
}

static const struct virtio_dev_ops fake_ops = {
    .name = "fake",
    .device_id = FAKE_ID,
    .config_read = fake_config_read,
    .config_write = fake_config_write,
    .notify = fake_notify,
    .activate = fake_activate,
    .reset = fake_reset,
};

static void count_raise(void *opaque)
{
	struct fx *f = opaque;
	f->raised++;
}

/* ---- the fake driver ---- */

static uint32_t rd(struct fx *f, uint64_t off)
{
	uint8_t b[4];
	memset(b, 0xa5, sizeof(b));
	f->bd.read(f->bd.opaque, off, b, 4);
	uint32_t v;
	memcpy(&v, b, 4);
	return le32toh(v);
}

static void wr(struct fx *f, uint64_t off, uint32_t v)
{
	v = htole32(v);
	f->bd.write(f->bd.opaque, off, (const uint8_t *)&v, 4);
}

/* Writes 64 feature bits through the two selector halves. */
static void write_features(struct fx *f, uint64_t feat)
{
	wr(f, VMMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VMMIO_DRIVER_FEATURES, (uint32_t)feat);
	wr(f, VMMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VMMIO_DRIVER_FEATURES, (uint32_t)(feat >> 32));
}

static void negotiate(struct fx *f, uint64_t feat)
{
	wr(f, VMMIO_STATUS, S_ACK);
	wr(f, VMMIO_STATUS, S_ACK | S_DRV);
	write_features(f, feat);
	wr(f, VMMIO_STATUS, S_ACK | S_DRV | S_FOK);
}

static void set_addr(struct fx *f, uint64_t low_reg, uint64_t gpa)
{
	wr(f, low_reg, (uint32_t)gpa);
	wr(f, low_reg + 4, (uint32_t)(gpa >> 32));
}

/* Sets queue q's layout (not QueueReady). */
static void setup_queue(struct fx *f, uint32_t q, uint32_t num, uint64_t desc,
                        uint64_t avail, uint64_t used)
{
	wr(f, VMMIO_QUEUE_SEL, q);
	wr(f, VMMIO_QUEUE_NUM, num);
	set_addr(f, VMMIO_QUEUE_DESC_LOW, desc);
	set_addr(f, VMMIO_QUEUE_DRIVER_LOW, avail);
	set_addr(f, VMMIO_QUEUE_DEVICE_LOW, used);
}

/* The whole bring-up: features, queue 0 ready, DRIVER_OK. */
static void bring_up(struct fx *f)
{
	negotiate(f, V1 | OFFERED);
	assert_int_equal(rd(f, VMMIO_STATUS), S_ACK | S_DRV | S_FOK);
	setup_queue(f, 0, QNUM, DESC, AVAIL, USED);
	wr(f, VMMIO_QUEUE_READY, 1);
	assert_int_equal(rd(f, VMMIO_QUEUE_READY), 1);
	wr(f, VMMIO_STATUS, S_LIVE);
	assert_int_equal(rd(f, VMMIO_STATUS), S_LIVE);
	assert_true(virtio_dev_live(&f->d));
}

/* Offers a one-descriptor chain on queue 0 (set up at DESC/AVAIL/USED). */
static void offer_one(struct fx *f)
{
	drv_set_desc(&f->m, DESC, 0, DATA, 64, VIRTQ_DESC_F_WRITE, 0);
	drv_offer(&f->m, AVAIL, QNUM, &f->avail_idx, 0);
}

static void assert_needs_reset(struct fx *f)
{
	assert_true(rd(f, VMMIO_STATUS) & S_NR);
	assert_false(virtio_dev_live(&f->d));
}

static void reset(struct fx *f)
{
	wr(f, VMMIO_STATUS, 0);
	assert_int_equal(rd(f, VMMIO_STATUS), 0);
}

/* Binds the transport to f->d, raising through count_raise. */
static void attach(struct fx *f)
{
	virtio_mmio_init(&f->t, &f->d, VIRTIO_MMIO_BASE, VIRTIO_MMIO_IRQ0, -1);
	f->t.raise = count_raise;
	f->t.raise_opaque = f;
	f->bd = virtio_mmio_bus_device(&f->t);
}

/* Replaces the device with another of the given kind. */
static void remake(struct fx *f, const struct virtio_dev_ops *ops,
                   uint64_t features, uint32_t config_size)
{
	pthread_mutex_destroy(&f->d.lock);
	virtio_dev_init(&f->d, ops, f, &f->m, NQUEUES, features, config_size);
	attach(f);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || drv_mem_new(&f->m, &f->buf, MEM_SIZE) != 0)
		return -1;
	for (unsigned i = 0; i < CONFIG_SIZE; i++)
		f->config[i] = (uint8_t)(0x10 + i);
	virtio_dev_init(&f->d, &fake_ops, f, &f->m, NQUEUES, OFFERED,
	                CONFIG_SIZE);
	attach(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	vmm_log_set_quiet(false);
	pthread_mutex_destroy(&f->d.lock);
	guest_mem_destroy(&f->m);
	free(f->buf);
	free(f);
	return 0;
}

/* ---- identity ---- */

static void identity(void **state)
{
	struct fx *f = *state;
	assert_int_equal(rd(f, VMMIO_MAGIC), 0x74726976);
	uint8_t b[4];
	f->bd.read(f->bd.opaque, VMMIO_MAGIC, b, 4);
	assert_memory_equal(b, "virt", 4);
	assert_int_equal(rd(f, VMMIO_VERSION), 2);
	assert_int_equal(rd(f, VMMIO_DEVICE_ID), FAKE_ID);
	assert_int_equal(rd(f, VMMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	assert_int_equal(rd(f, VMMIO_STATUS), 0);
	assert_int_equal(rd(f, VMMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(rd(f, VMMIO_CONFIG_GENERATION), 0);
	/* The identity registers are read-only. */
	wr(f, VMMIO_MAGIC, 0);
	wr(f, VMMIO_VERSION, 1);
	wr(f, VMMIO_DEVICE_ID, 7);
	wr(f, VMMIO_VENDOR_ID, 0);
	assert_int_equal(rd(f, VMMIO_MAGIC), 0x74726976);
	assert_int_equal(rd(f, VMMIO_VERSION), 2);
	assert_int_equal(rd(f, VMMIO_DEVICE_ID), FAKE_ID);
	assert_int_equal(rd(f, VMMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	/* The bus device carries the device's name. */
	assert_string_equal(f->bd.name, "fake");
	assert_ptr_equal(f->bd.opaque, &f->t);
	assert_ptr_equal(f->d.transport, &f->t);
	assert_non_null(f->d.raise_irq);
}

/* ---- features ---- */

static void device_features(void **state)
{
	struct fx *f = *state;
	wr(f, VMMIO_DEVICE_FEATURES_SEL, 0);
	assert_int_equal(rd(f, VMMIO_DEVICE_FEATURES), (uint32_t)OFFERED);
	wr(f, VMMIO_DEVICE_FEATURES_SEL, 1);
	/* VERSION_1 is bit 32: bit 0 of the high half. */
	assert_int_equal(rd(f, VMMIO_DEVICE_FEATURES), 1);
	wr(f, VMMIO_DEVICE_FEATURES_SEL, 2);
	assert_int_equal(rd(f, VMMIO_DEVICE_FEATURES), 0);
	wr(f, VMMIO_DEVICE_FEATURES_SEL, UINT32_MAX);
	assert_int_equal(rd(f, VMMIO_DEVICE_FEATURES), 0);
	/* The offered features are read-only. */
	wr(f, VMMIO_DEVICE_FEATURES_SEL, 0);
	wr(f, VMMIO_DEVICE_FEATURES, UINT32_MAX);
	assert_int_equal(rd(f, VMMIO_DEVICE_FEATURES), (uint32_t)OFFERED);
	assert_int_equal(f->d.device_features, OFFERED | V1);
}

static void features_accepted(void **state)
{
	struct fx *f = *state;
	negotiate(f, V1 | (1ULL << FAKE_FEAT_B));
	assert_int_equal(rd(f, VMMIO_STATUS), S_ACK | S_DRV | S_FOK);
	assert_int_equal(f->d.driver_features, V1 | (1ULL << FAKE_FEAT_B));
	assert_true(virtio_dev_has_feature(&f->d, VIRTIO_F_VERSION_1));
	assert_true(virtio_dev_has_feature(&f->d, FAKE_FEAT_B));
	assert_false(virtio_dev_has_feature(&f->d, FAKE_FEAT_A));

	/* From FEATURES_OK on the features are fixed. */
	write_features(f, V1 | OFFERED);
	assert_int_equal(f->d.driver_features, V1 | (1ULL << FAKE_FEAT_B));
	write_features(f, 0);
	assert_int_equal(f->d.driver_features, V1 | (1ULL << FAKE_FEAT_B));
}

static void features_selector_halves(void **state)
{
	struct fx *f = *state;
	/* Each half is written alone; a selector above 1 is ignored. */
	wr(f, VMMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VMMIO_DRIVER_FEATURES, 1);
	assert_int_equal(f->d.driver_features, V1);
	wr(f, VMMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VMMIO_DRIVER_FEATURES, 1u << FAKE_FEAT_A);
	assert_int_equal(f->d.driver_features, V1 | (1ULL << FAKE_FEAT_A));
	wr(f, VMMIO_DRIVER_FEATURES_SEL, 2);
	wr(f, VMMIO_DRIVER_FEATURES, UINT32_MAX);
	wr(f, VMMIO_DRIVER_FEATURES_SEL, UINT32_MAX);
	wr(f, VMMIO_DRIVER_FEATURES, UINT32_MAX);
	assert_int_equal(f->d.driver_features, V1 | (1ULL << FAKE_FEAT_A));
	/* Rewriting a half replaces it. */
	wr(f, VMMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VMMIO_DRIVER_FEATURES, 1u << FAKE_FEAT_B);
	assert_int_equal(f->d.driver_features, V1 | (1ULL << FAKE_FEAT_B));
}

static void features_without_version_1(void **state)
{
	struct fx *f = *state;
	/* A legacy driver: FEATURES_OK does not stick, and it reads that. */
	negotiate(f, OFFERED);
	assert_int_equal(rd(f, VMMIO_STATUS), S_ACK | S_DRV);
	/* Not a protocol break by itself: the device is not NEEDS_RESET,
	 * and the driver may try again with VERSION_1. */
	write_features(f, V1 | OFFERED);
	wr(f, VMMIO_STATUS, S_ACK | S_DRV | S_FOK);
	assert_int_equal(rd(f, VMMIO_STATUS), S_ACK | S_DRV | S_FOK);
	assert_int_equal(f->d.driver_features, V1 | OFFERED);
}

static void features_not_offered(void **state)
{
	struct fx *f = *state;
	const uint64_t extra[] = {1ULL << 1, 1ULL << VIRTIO_RING_F_EVENT_IDX,
	                          1ULL << VIRTIO_RING_F_INDIRECT_DESC,
	                          1ULL << 33, 1ULL << 63};
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		reset(f);
		negotiate(f, V1 | OFFERED | extra[i]);
		assert_int_equal(rd(f, VMMIO_STATUS), S_ACK | S_DRV);
		/* DRIVER_OK now would come before FEATURES_OK. */
	}
	/* FEATURES_OK and DRIVER_OK in one write with bad features: neither
	 * is kept, and the device wants a reset. */
	vmm_log_set_quiet(true);
	reset(f);
	wr(f, VMMIO_STATUS, S_ACK | S_DRV);
	write_features(f, OFFERED);
	wr(f, VMMIO_STATUS, S_LIVE);
	assert_false(rd(f, VMMIO_STATUS) & (S_FOK | S_DOK));
	assert_needs_reset(f);
	assert_int_equal(f->activates, 0);
}

/* ---- normal bring-up ---- */

static void bring_up_and_notify(void **state)
{
	struct fx *f = *state;
	negotiate(f, V1 | OFFERED);

	wr(f, VMMIO_QUEUE_SEL, 0);
	assert_int_equal(rd(f, VMMIO_QUEUE_NUM_MAX), 256);
	assert_int_equal(rd(f, VMMIO_QUEUE_READY), 0);
	wr(f, VMMIO_QUEUE_SEL, 1);
	assert_int_equal(rd(f, VMMIO_QUEUE_NUM_MAX), 256);

	/* Addresses above 4 GiB are put together from the two halves. */
	setup_queue(f, 1, 8, 0x123456789a0ULL, 0xfedcba9876ULL, 0x100000004ULL);
	assert_int_equal(f->d.queues[1].num, 8);
	assert_int_equal(f->d.queues[1].desc, 0x123456789a0ULL);
	assert_int_equal(f->d.queues[1].avail, 0xfedcba9876ULL);
	assert_int_equal(f->d.queues[1].used, 0x100000004ULL);
	/* Halves written in either order, and rewritten. */
	wr(f, VMMIO_QUEUE_DESC_HIGH, 0);
	wr(f, VMMIO_QUEUE_DRIVER_HIGH, 0);
	wr(f, VMMIO_QUEUE_DEVICE_HIGH, 0);
	wr(f, VMMIO_QUEUE_DESC_LOW, 0x5000);
	wr(f, VMMIO_QUEUE_DRIVER_LOW, 0x5100);
	wr(f, VMMIO_QUEUE_DEVICE_LOW, 0x5200);
	assert_int_equal(f->d.queues[1].desc, 0x5000);
	assert_int_equal(f->d.queues[1].avail, 0x5100);
	assert_int_equal(f->d.queues[1].used, 0x5200);
	/* Queue 0 was not touched. */
	assert_int_equal(f->d.queues[0].num, 0);
	assert_int_equal(f->d.queues[0].desc, 0);

	setup_queue(f, 0, QNUM, DESC, AVAIL, USED);
	assert_int_equal(f->d.queues[0].num, QNUM);
	assert_int_equal(f->d.queues[0].desc, DESC);
	assert_int_equal(f->d.queues[0].avail, AVAIL);
	assert_int_equal(f->d.queues[0].used, USED);
	wr(f, VMMIO_QUEUE_READY, 1);
	assert_int_equal(rd(f, VMMIO_QUEUE_READY), 1);
	assert_true(f->d.queues[0].ready);
	/* Ring features follow what was negotiated (none here). */
	assert_false(f->d.queues[0].indirect);
	assert_false(f->d.queues[0].event_idx);
	wr(f, VMMIO_QUEUE_SEL, 1);
	assert_int_equal(rd(f, VMMIO_QUEUE_READY), 0);

	/* Ready but the device is not live yet: no notify. */
	offer_one(f);
	wr(f, VMMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(f->notifies[0], 0);
	assert_int_equal(f->activates, 0);

	wr(f, VMMIO_STATUS, S_LIVE);
	assert_int_equal(rd(f, VMMIO_STATUS), S_LIVE);
	assert_int_equal(f->activates, 1);
	/* Writing the same status again activates nothing new. */
	wr(f, VMMIO_STATUS, S_LIVE);
	assert_int_equal(f->activates, 1);
	assert_int_equal(rd(f, VMMIO_STATUS), S_LIVE);

	wr(f, VMMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(f->notifies[0], 1);
	assert_int_equal(f->chains, 1);
	assert_int_equal(drv_get16(&f->m, USED + 2), 1);
	/* The completion interrupted the driver through t->raise. */
	assert_int_equal(f->raised, 1);
	assert_int_equal(rd(f, VMMIO_INTERRUPT_STATUS), VIRTIO_INT_USED_BUFFER);

	/* Queue 1 is not ready: its notify does not reach the device. */
	wr(f, VMMIO_QUEUE_NOTIFY, 1);
	assert_int_equal(f->notifies[1], 0);
	assert_int_equal(f->notifies[0], 1);
	assert_false(rd(f, VMMIO_STATUS) & S_NR);
}

static void ring_features_follow_negotiation(void **state)
{
	struct fx *f = *state;
	/* A device offering the ring features. */
	remake(f, &fake_ops,
	       OFFERED | (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |
	           (1ULL << VIRTIO_RING_F_EVENT_IDX),
	       CONFIG_SIZE);
	negotiate(f, V1 | (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |
	                 (1ULL << VIRTIO_RING_F_EVENT_IDX));
	assert_int_equal(rd(f, VMMIO_STATUS), S_ACK | S_DRV | S_FOK);
	setup_queue(f, 0, QNUM, DESC, AVAIL, USED);
	wr(f, VMMIO_QUEUE_READY, 1);
	assert_true(f->d.queues[0].ready);
	assert_true(f->d.queues[0].indirect);
	assert_true(f->d.queues[0].event_idx);
}

static void queue_ready_off_before_driver_ok(void **state)
{
	struct fx *f = *state;
	negotiate(f, V1);
	setup_queue(f, 0, QNUM, DESC, AVAIL, USED);
	wr(f, VMMIO_QUEUE_READY, 1);
	assert_int_equal(rd(f, VMMIO_QUEUE_READY), 1);
	/* Disabling a queue before DRIVER_OK is allowed; then its layout
	 * may change again. */
	wr(f, VMMIO_QUEUE_READY, 0);
	assert_int_equal(rd(f, VMMIO_QUEUE_READY), 0);
	wr(f, VMMIO_QUEUE_NUM, 32);
	assert_int_equal(f->d.queues[0].num, 32);
	wr(f, VMMIO_QUEUE_READY, 1);
	assert_int_equal(rd(f, VMMIO_QUEUE_READY), 1);
	assert_false(rd(f, VMMIO_STATUS) & S_NR);
}

/* ---- hostile drivers ---- */

static void bad_queue_sizes(void **state)
{
	struct fx *f = *state;
	const uint32_t sizes[] = {0,   3,    100,   255,       257,
	                          512, 1024, 65536, UINT32_MAX};
	vmm_log_set_quiet(true);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		reset(f);
		negotiate(f, V1 | OFFERED);
		setup_queue(f, 0, sizes[i], DESC, AVAIL, USED);
		/* Above the maximum: not taken at all. */
		if (sizes[i] > 256)
			assert_int_equal(f->d.queues[0].num, 0);
		wr(f, VMMIO_QUEUE_READY, 1);
		assert_int_equal(rd(f, VMMIO_QUEUE_READY), 0);
		assert_false(f->d.queues[0].ready);
		assert_needs_reset(f);
		/* Before DRIVER_OK there is no interrupt to send. */
		assert_int_equal(f->raised, 0);
		/* DRIVER_OK does not get through now, with or without the
		 * NEEDS_RESET bit written back. */
		wr(f, VMMIO_STATUS, S_LIVE);
		assert_false(rd(f, VMMIO_STATUS) & S_DOK);
		wr(f, VMMIO_STATUS, S_LIVE | S_NR);
		assert_false(rd(f, VMMIO_STATUS) & S_DOK);
		assert_int_equal(f->activates, 0);
	}
	/* Every power of two up to the maximum is fine. */
	for (uint32_t n = 1; n <= 256; n *= 2) {
		reset(f);
		negotiate(f, V1 | OFFERED);
		setup_queue(f, 0, n, DESC, AVAIL, USED);
		wr(f, VMMIO_QUEUE_READY, 1);
		assert_int_equal(rd(f, VMMIO_QUEUE_READY), 1);
		assert_false(rd(f, VMMIO_STATUS) & S_NR);
	}
}

static void unaligned_rings(void **state)
{
	struct fx *f = *state;
	const struct {
		uint64_t desc, avail, used;
	} cases[] = {
	    {DESC + 8, AVAIL, USED}, {DESC + 1, AVAIL, USED},
	    {DESC, AVAIL + 1, USED}, {DESC, AVAIL, USED + 2},
	    {DESC, AVAIL, USED + 1},
	};
	vmm_log_set_quiet(true);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		reset(f);
		negotiate(f, V1);
		setup_queue(f, 0, QNUM, cases[i].desc, cases[i].avail,
		            cases[i].used);
		wr(f, VMMIO_QUEUE_READY, 1);
		assert_int_equal(rd(f, VMMIO_QUEUE_READY), 0);
		assert_needs_reset(f);
	}
}

static void rings_outside_ram(void **state)
{
	struct fx *f = *state;
	const struct {
		uint64_t desc, avail, used;
	} cases[] = {
	    /* Runs off the end of RAM. */
	    {MEM_SIZE - 16 * QNUM + 16, AVAIL, USED},
	    {DESC, MEM_SIZE - 6 - 2 * QNUM + 2, USED},
	    {DESC, AVAIL, MEM_SIZE - 6 - 8 * QNUM + 2},
	    /* Wholly outside; high halves set. */
	    {MEM_SIZE, AVAIL, USED},
	    {DESC | (1ULL << 32), AVAIL, USED},
	    {DESC, AVAIL | (1ULL << 40), USED},
	    {DESC, AVAIL, USED | 0xffffffff00000000ULL},
	    {0xfffffffffffffff0ULL, AVAIL, USED},
	};
	vmm_log_set_quiet(true);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		reset(f);
		negotiate(f, V1);
		setup_queue(f, 0, QNUM, cases[i].desc, cases[i].avail,
		            cases[i].used);
		wr(f, VMMIO_QUEUE_READY, 1);
		assert_int_equal(rd(f, VMMIO_QUEUE_READY), 0);
		assert_needs_reset(f);
	}
	/* Each ring right at the end of RAM is fine (the used ring's
	 * 4-byte alignment leaves it 2 bytes short of the end). */
	const struct {
		uint64_t desc, avail, used;
	} edge[] = {
	    {MEM_SIZE - 16 * QNUM, AVAIL, USED},
	    {DESC, MEM_SIZE - 6 - 2 * QNUM, USED},
	    {DESC, AVAIL, MEM_SIZE - 6 - 8 * QNUM - 2},
	};
	for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++) {
		reset(f);
		negotiate(f, V1);
		setup_queue(f, 0, QNUM, edge[i].desc, edge[i].avail,
		            edge[i].used);
		wr(f, VMMIO_QUEUE_READY, 1);
		assert_false(rd(f, VMMIO_STATUS) & S_NR);
		assert_int_equal(rd(f, VMMIO_QUEUE_READY), 1);
	}
}

static void queue_regs_after_driver_ok(void **state)
{
	struct fx *f = *state;
	const uint64_t regs[] = {
	    VMMIO_QUEUE_NUM,         VMMIO_QUEUE_DESC_LOW,
	    VMMIO_QUEUE_DESC_HIGH,   VMMIO_QUEUE_DRIVER_LOW,
	    VMMIO_QUEUE_DRIVER_HIGH, VMMIO_QUEUE_DEVICE_LOW,
	    VMMIO_QUEUE_DEVICE_HIGH, VMMIO_QUEUE_READY,
	};
	vmm_log_set_quiet(true);
	for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
		reset(f);
		f->raised = 0;
		bring_up(f);
		struct virtq before = f->d.queues[0];
		wr(f, VMMIO_QUEUE_SEL, 0);
		wr(f, regs[i], regs[i] == VMMIO_QUEUE_READY ? 0 : 0x40);
		/* The write is ignored... */
		assert_memory_equal(&f->d.queues[0], &before, sizeof(before));
		assert_int_equal(rd(f, VMMIO_QUEUE_READY), 1);
		/* ...and the device wants a reset, and says so once. */
		assert_needs_reset(f);
		assert_int_equal(f->raised, 1);
		assert_int_equal(rd(f, VMMIO_INTERRUPT_STATUS),
		                 VIRTIO_INT_CONFIG);
		/* No more notifies reach the device. */
		offer_one(f);
		wr(f, VMMIO_QUEUE_NOTIFY, 0);
		assert_int_equal(f->notifies[0], 0);
	}
	/* A queue that is not ready is fixed too once DRIVER_OK is set. */
	reset(f);
	f->raised = 0;
	bring_up(f);
	wr(f, VMMIO_QUEUE_SEL, 1);
	wr(f, VMMIO_QUEUE_NUM, 8);
	assert_int_equal(f->d.queues[1].num, 0);
	assert_needs_reset(f);
}

static void queue_layout_while_ready(void **state)
{
	struct fx *f = *state;
	vmm_log_set_quiet(true);
	/* Before DRIVER_OK, but the queue is already enabled. */
	negotiate(f, V1);
	setup_queue(f, 0, QNUM, DESC, AVAIL, USED);
	wr(f, VMMIO_QUEUE_READY, 1);
	wr(f, VMMIO_QUEUE_DESC_LOW, 0x8000);
	assert_int_equal(f->d.queues[0].desc, DESC);
	assert_needs_reset(f);
	assert_int_equal(f->raised, 0);
}

static void driver_ok_before_features_ok(void **state)
{
	struct fx *f = *state;
	vmm_log_set_quiet(true);
	wr(f, VMMIO_STATUS, S_ACK);
	wr(f, VMMIO_STATUS, S_ACK | S_DRV);
	write_features(f, V1);
	wr(f, VMMIO_STATUS, S_ACK | S_DRV | S_DOK);
	assert_false(rd(f, VMMIO_STATUS) & S_DOK);
	assert_needs_reset(f);
	assert_int_equal(f->activates, 0);
	/* Not live, so no interrupt. */
	assert_int_equal(f->raised, 0);
	/* Nothing gets through until a reset: not FEATURES_OK... */
	wr(f, VMMIO_STATUS, S_ACK | S_DRV | S_FOK);
	assert_false(rd(f, VMMIO_STATUS) & S_FOK);
	/* A driver that writes back the NEEDS_RESET bit with DRIVER_OK
	 * does not bring the device to life either: notifies stay
	 * dropped. */
	wr(f, VMMIO_STATUS, S_LIVE | S_NR);
	assert_int_equal(rd(f, VMMIO_STATUS), S_ACK | S_DRV | S_NR);
	assert_int_equal(f->activates, 0);
	offer_one(f);
	wr(f, VMMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(f->notifies[0], 0);
	assert_int_equal(f->chains, 0);

	/* After a reset the same driver can do it right. */
	reset(f);
	assert_int_equal(f->resets, 1);
	bring_up(f);
	assert_int_equal(f->activates, 1);
}

static void status_bits_cleared(void **state)
{
	struct fx *f = *state;
	vmm_log_set_quiet(true);
	bring_up(f);
	/* Dropping DRIVER_OK without a reset. */
	wr(f, VMMIO_STATUS, S_ACK | S_DRV | S_FOK);
	assert_int_equal(rd(f, VMMIO_STATUS), S_LIVE | S_NR);
	assert_int_equal(f->raised, 1);
	assert_int_equal(rd(f, VMMIO_INTERRUPT_STATUS), VIRTIO_INT_CONFIG);

	/* Before DRIVER_OK: dropping ACKNOWLEDGE. */
	reset(f);
	f->raised = 0;
	wr(f, VMMIO_STATUS, S_ACK | S_DRV);
	wr(f, VMMIO_STATUS, S_DRV);
	assert_int_equal(rd(f, VMMIO_STATUS), S_ACK | S_DRV | S_NR);
	assert_int_equal(f->raised, 0);
	assert_int_equal(f->resets, 1);

	/* Adding FAILED is allowed: it only adds a bit. */
	reset(f);
	wr(f, VMMIO_STATUS, S_ACK | S_DRV);
	wr(f, VMMIO_STATUS, S_ACK | S_DRV | VIRTIO_STATUS_FAILED);
	assert_int_equal(rd(f, VMMIO_STATUS),
	                 S_ACK | S_DRV | VIRTIO_STATUS_FAILED);
}

static void notify_out_of_range(void **state)
{
	struct fx *f = *state;
	const uint32_t idx[] = {NQUEUES,           VIRTIO_MAX_QUEUES - 1,
	                        VIRTIO_MAX_QUEUES, 0xffff,
	                        0x10000,           UINT32_MAX};
	vmm_log_set_quiet(true);
	bring_up(f);
	/* A ready-looking queue beyond num_queues must not be reachable. */
	f->d.queues[NQUEUES] = f->d.queues[0];
	for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++)
		wr(f, VMMIO_QUEUE_NOTIFY, idx[i]);
	assert_int_equal(f->notifies[0] + f->notifies[1], 0);
	assert_int_equal(f->chains, 0);
	/* Ignored, not fatal: the device is still live. */
	assert_true(virtio_dev_live(&f->d));
	wr(f, VMMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(f->notifies[0], 1);
}

static void queue_sel_out_of_range(void **state)
{
	struct fx *f = *state;
	const uint32_t sel[] = {NQUEUES, VIRTIO_MAX_QUEUES, 0xffff, UINT32_MAX};
	negotiate(f, V1);
	for (size_t i = 0; i < sizeof(sel) / sizeof(sel[0]); i++) {
		wr(f, VMMIO_QUEUE_SEL, sel[i]);
		assert_int_equal(rd(f, VMMIO_QUEUE_NUM_MAX), 0);
		assert_int_equal(rd(f, VMMIO_QUEUE_READY), 0);
		setup_queue(f, sel[i], QNUM, DESC, AVAIL, USED);
		wr(f, VMMIO_QUEUE_READY, 1);
		assert_int_equal(rd(f, VMMIO_QUEUE_READY), 0);
	}
	/* Nothing changed anywhere, and the device is not in trouble. */
	struct virtq zero;
	memset(&zero, 0, sizeof(zero));
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		assert_memory_equal(&f->d.queues[q], &zero, sizeof(zero));
	assert_int_equal(rd(f, VMMIO_STATUS), S_ACK | S_DRV | S_FOK);
	/* The selector itself still works afterwards. */
	wr(f, VMMIO_QUEUE_SEL, 1);
	assert_int_equal(rd(f, VMMIO_QUEUE_NUM_MAX), 256);
}

static void odd_sized_accesses(void **state)
{
	struct fx *f = *state;
	uint8_t b[8];
	negotiate(f, V1);
	/* Reads of 1, 2 and 8 bytes, and unaligned 4-byte reads, of the
	 * register space give zeros. */
	const uint32_t lens[] = {1, 2, 8};
	for (size_t i = 0; i < 3; i++) {
		memset(b, 0xa5, sizeof(b));
		f->bd.read(f->bd.opaque, VMMIO_MAGIC, b, lens[i]);
		for (uint32_t j = 0; j < lens[i]; j++)
			assert_int_equal(b[j], 0);
		memset(b, 0xa5, sizeof(b));
		f->bd.read(f->bd.opaque, VMMIO_STATUS, b, lens[i]);
		for (uint32_t j = 0; j < lens[i]; j++)
			assert_int_equal(b[j], 0);
	}
	memset(b, 0xa5, sizeof(b));
	f->bd.read(f->bd.opaque, VMMIO_MAGIC + 1, b, 4);
	assert_memory_equal(b, "\0\0\0\0", 4);
	memset(b, 0xa5, sizeof(b));
	f->bd.read(f->bd.opaque, VMMIO_VERSION + 2, b, 4);
	assert_memory_equal(b, "\0\0\0\0", 4);

	/* Writes of other sizes, or unaligned, are ignored. */
	const uint8_t zero[8] = {0};
	uint8_t sel[8] = {1, 0, 0, 0, 0, 0, 0, 0};
	for (size_t i = 0; i < 3; i++) {
		f->bd.write(f->bd.opaque, VMMIO_STATUS, zero, lens[i]);
		f->bd.write(f->bd.opaque, VMMIO_QUEUE_SEL, sel, lens[i]);
	}
	f->bd.write(f->bd.opaque, VMMIO_STATUS + 1, zero, 4);
	f->bd.write(f->bd.opaque, VMMIO_QUEUE_SEL + 2, sel, 4);
	assert_int_equal(rd(f, VMMIO_STATUS), S_ACK | S_DRV | S_FOK);
	assert_int_equal(f->resets, 0);
	assert_int_equal(f->t.queue_sel, 0);
}

static void config_space(void **state)
{
	struct fx *f = *state;
	uint8_t b[8];

	/* Inside: any size at any offset. */
	for (uint32_t off = 0; off < CONFIG_SIZE; off++) {
		memset(b, 0xa5, sizeof(b));
		f->bd.read(f->bd.opaque, VMMIO_CONFIG + off, b, 1);
		assert_int_equal(b[0], 0x10 + off);
	}
	memset(b, 0xa5, sizeof(b));
	f->bd.read(f->bd.opaque, VMMIO_CONFIG + 4, b, 8);
	assert_memory_equal(b, f->config + 4, 8);
	assert_int_equal(rd(f, VMMIO_CONFIG + 8),
	                 0x1b1a1918); /* the last 4 bytes */

	/* Beyond config_size, or straddling its end: zeros. */
	const struct {
		uint64_t off;
		uint32_t len;
	} out[] = {
	    {VMMIO_CONFIG + CONFIG_SIZE - 2, 4},
	    {VMMIO_CONFIG + CONFIG_SIZE - 1, 2},
	    {VMMIO_CONFIG + CONFIG_SIZE - 4, 8},
	    {VMMIO_CONFIG + CONFIG_SIZE, 1},
	    {VMMIO_CONFIG + CONFIG_SIZE, 4},
	    {VMMIO_CONFIG + 0x100, 4},
	    {VIRTIO_MMIO_SIZE - 8, 8},
	    {VIRTIO_MMIO_SIZE - 1, 1},
	};
	for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
		memset(b, 0xa5, sizeof(b));
		f->bd.read(f->bd.opaque, out[i].off, b, out[i].len);
		for (uint32_t j = 0; j < out[i].len; j++)
			assert_int_equal(b[j], 0);
	}

	/* Writes: inside reach the device, outside do not. */
	const uint8_t w[8] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4};
	f->bd.write(f->bd.opaque, VMMIO_CONFIG + 2, w, 2);
	assert_int_equal(f->config_writes, 1);
	assert_int_equal(f->last_config_write_off, 2);
	assert_int_equal(f->last_config_write_len, 2);
	assert_int_equal(f->config[2], 0xde);
	assert_int_equal(f->config[3], 0xad);
	for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
		f->bd.write(f->bd.opaque, out[i].off, w, out[i].len);
	assert_int_equal(f->config_writes, 1);
}

static void config_read_only_and_empty(void **state)
{
	struct fx *f = *state;
	/* A device without config_write, and one without config space. */
	static const struct virtio_dev_ops ro_ops = {
	    .name = "ro",
	    .device_id = FAKE_ID,
	    .config_read = fake_config_read,
	    .notify = fake_notify,
	};
	uint8_t b[4];
	remake(f, &ro_ops, 0, CONFIG_SIZE);
	f->bd.write(f->bd.opaque, VMMIO_CONFIG, (const uint8_t *)"abcd", 4);
	assert_int_equal(f->config_writes, 0);
	assert_int_equal(rd(f, VMMIO_CONFIG), 0x13121110);

	remake(f, &ro_ops, 0, 0);
	memset(b, 0xa5, sizeof(b));
	f->bd.read(f->bd.opaque, VMMIO_CONFIG, b, 1);
	assert_int_equal(b[0], 0);
	assert_int_equal(rd(f, VMMIO_CONFIG), 0);
	/* Reset with no ops->reset is fine. */
	wr(f, VMMIO_STATUS, S_ACK);
	reset(f);
}

static void reset_clears_everything(void **state)
{
	struct fx *f = *state;
	vmm_log_set_quiet(true);
	bring_up(f);
	offer_one(f);
	wr(f, VMMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(rd(f, VMMIO_INTERRUPT_STATUS), VIRTIO_INT_USED_BUFFER);
	/* Break it too, so NEEDS_RESET and the config interrupt are set. */
	wr(f, VMMIO_QUEUE_NUM, 4);
	assert_int_equal(rd(f, VMMIO_INTERRUPT_STATUS),
	                 VIRTIO_INT_USED_BUFFER | VIRTIO_INT_CONFIG);

	wr(f, VMMIO_STATUS, 0);
	assert_int_equal(f->resets, 1);
	assert_int_equal(rd(f, VMMIO_STATUS), 0);
	assert_int_equal(rd(f, VMMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(f->d.driver_features, 0);
	struct virtq zero;
	memset(&zero, 0, sizeof(zero));
	for (unsigned q = 0; q < NQUEUES; q++) {
		assert_memory_equal(&f->d.queues[q], &zero, sizeof(zero));
		wr(f, VMMIO_QUEUE_SEL, q);
		assert_int_equal(rd(f, VMMIO_QUEUE_READY), 0);
	}
	/* The offer is unchanged. */
	wr(f, VMMIO_DEVICE_FEATURES_SEL, 1);
	assert_int_equal(rd(f, VMMIO_DEVICE_FEATURES), 1);
	/* A second reset is harmless. */
	wr(f, VMMIO_STATUS, 0);
	assert_int_equal(f->resets, 2);

	/* And the device comes up again, its ring indices from 0. */
	f->avail_idx = 0;
	memset(f->buf + AVAIL, 0, 0x2000);
	bring_up(f);
	assert_int_equal(f->activates, 2);
	offer_one(f);
	wr(f, VMMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(f->chains, 2);
	assert_int_equal(drv_get16(&f->m, USED + 2), 1);
}

static void interrupt_ack(void **state)
{
	struct fx *f = *state;
	vmm_log_set_quiet(true);
	bring_up(f);
	offer_one(f);
	wr(f, VMMIO_QUEUE_NOTIFY, 0);
	virtio_dev_set_needs_reset(&f->d, "test");
	assert_int_equal(rd(f, VMMIO_INTERRUPT_STATUS),
	                 VIRTIO_INT_USED_BUFFER | VIRTIO_INT_CONFIG);
	/* Acknowledging one bit leaves the other. */
	wr(f, VMMIO_INTERRUPT_ACK, VIRTIO_INT_USED_BUFFER);
	assert_int_equal(rd(f, VMMIO_INTERRUPT_STATUS), VIRTIO_INT_CONFIG);
	/* Acknowledging what is not set changes nothing. */
	wr(f, VMMIO_INTERRUPT_ACK, VIRTIO_INT_USED_BUFFER);
	assert_int_equal(rd(f, VMMIO_INTERRUPT_STATUS), VIRTIO_INT_CONFIG);
	wr(f, VMMIO_INTERRUPT_ACK, UINT32_MAX);
	assert_int_equal(rd(f, VMMIO_INTERRUPT_STATUS), 0);
	/* InterruptStatus is read-only. */
	wr(f, VMMIO_INTERRUPT_STATUS, 3);
	assert_int_equal(rd(f, VMMIO_INTERRUPT_STATUS), 0);
	/* InterruptACK reads as 0. */
	assert_int_equal(rd(f, VMMIO_INTERRUPT_ACK), 0);
}

static void needs_reset_interrupts_once(void **state)
{
	struct fx *f = *state;
	vmm_log_set_quiet(true);
	bring_up(f);
	assert_int_equal(f->raised, 0);
	/* Several violations in a row: one configuration interrupt. */
	wr(f, VMMIO_QUEUE_NUM, 4);
	wr(f, VMMIO_QUEUE_DESC_LOW, 0x8000);
	wr(f, VMMIO_STATUS, S_ACK);
	wr(f, VMMIO_QUEUE_READY, 0);
	assert_needs_reset(f);
	assert_int_equal(f->raised, 1);
	assert_int_equal(rd(f, VMMIO_INTERRUPT_STATUS), VIRTIO_INT_CONFIG);
	/* Acknowledged, and broken again: still just the one. */
	wr(f, VMMIO_INTERRUPT_ACK, VIRTIO_INT_CONFIG);
	wr(f, VMMIO_QUEUE_NUM, 4);
	assert_int_equal(f->raised, 1);
	assert_int_equal(rd(f, VMMIO_INTERRUPT_STATUS), 0);
	/* Notifies are dropped, so nothing else interrupts either. */
	offer_one(f);
	wr(f, VMMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(f->notifies[0], 0);
	assert_int_equal(f->raised, 1);
}

static void irqfd_signalled(void **state)
{
	struct fx *f = *state;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(efd >= 0);
	virtio_mmio_init(&f->t, &f->d, VIRTIO_MMIO_BASE, VIRTIO_MMIO_IRQ0, efd);
	/* With an irqfd, t->raise is not used. */
	f->t.raise = count_raise;
	f->t.raise_opaque = f;
	bring_up(f);
	offer_one(f);
	wr(f, VMMIO_QUEUE_NOTIFY, 0);
	offer_one(f);
	wr(f, VMMIO_QUEUE_NOTIFY, 0);
	uint64_t n = 0;
	assert_int_equal(read(efd, &n, sizeof(n)), sizeof(n));
	assert_int_equal(n, 2);
	assert_int_equal(f->raised, 0);
	close(efd);
}

static void through_the_bus(void **state)
{
	struct fx *f = *state;
	struct bus b;
	struct husk_error e = {0};
	bus_init(&b, "mmio");
	assert_int_equal(
	    bus_register(&b, f->t.base, VIRTIO_MMIO_SIZE, &f->bd, &e), 0);
	uint32_t v = 0;
	assert_true(
	    bus_read(&b, VIRTIO_MMIO_BASE + VMMIO_MAGIC, (uint8_t *)&v, 4));
	assert_int_equal(v, 0x74726976);
	v = S_ACK;
	assert_true(bus_write(&b, VIRTIO_MMIO_BASE + VMMIO_STATUS,
	                      (const uint8_t *)&v, 4));
	assert_int_equal(f->d.status, S_ACK);
	v = 0;
	assert_true(
	    bus_read(&b, VIRTIO_MMIO_BASE + VMMIO_DEVICE_ID, (uint8_t *)&v, 4));
	assert_int_equal(v, FAKE_ID);
	/* The next window up is somebody else's (nobody's). */
	assert_false(bus_read(&b, VIRTIO_MMIO_BASE + VIRTIO_MMIO_SIZE,
	                      (uint8_t *)&v, 4));
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(identity),
	    T(device_features),
	    T(features_accepted),
	    T(features_selector_halves),
	    T(features_without_version_1),
	    T(features_not_offered),
	    T(bring_up_and_notify),
	    T(ring_features_follow_negotiation),
	    T(queue_ready_off_before_driver_ok),
	    T(bad_queue_sizes),
	    T(unaligned_rings),
	    T(rings_outside_ram),
	    T(queue_regs_after_driver_ok),
	    T(queue_layout_while_ready),
	    T(driver_ok_before_features_ok),
	    T(status_bits_cleared),
	    T(notify_out_of_range),
	    T(queue_sel_out_of_range),
	    T(odd_sized_accesses),
	    T(config_space),
	    T(config_read_only_and_empty),
	    T(reset_clears_everything),
	    T(interrupt_ack),
	    T(needs_reset_interrupts_once),
	    T(irqfd_signalled),
	    T(through_the_bus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
