/* The fake virtio driver the unit tests share: what a guest driver does to
 * a split virtqueue, done byte for byte on a guest_mem_wrap'ed buffer (the
 * fake guest), plus the bits of the transport a driver sets off (DRIVER_OK,
 * a kick, an interrupt). Every guest access asserts that it succeeded.
 *
 * Header-only, because the Makefile builds each tests/unit/test_*.c alone:
 * everything here is static inline, so a test pays only for what it uses.
 * The helpers take the guest memory, ring addresses and counters as plain
 * values, never a test's fixture. */
#ifndef HUSK_TESTS_UNIT_FAKE_DRIVER_H
#define HUSK_TESTS_UNIT_FAKE_DRIVER_H

#include <endian.h>
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
#include "../../src/vmm/virtio/device.h"
#include "../../src/vmm/virtio/virtq.h"

/* The status a driver writes once it is done setting the device up. */
#define DRV_LIVE                                                               \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |                    \
	 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK)

/* One buffer of a chain drv_offer_chain() writes. */
struct drv_seg {
	uint64_t addr;
	uint32_t len;
	uint16_t flags; /* 0: device-readable, VIRTQ_DESC_F_WRITE: writable */
};

/* ---- the fake guest's memory ---- */

/* Allocates size bytes (64-byte aligned, zeroed) into *buf and wraps them
 * as m. 0, or -1 on failure (for a cmocka setup function). */
static inline int drv_mem_new(struct guest_mem *m, uint8_t **buf, uint64_t size)
{
	if (posix_memalign((void **)buf, 64, size) != 0)
		return -1;
	memset(*buf, 0, size);
	return guest_mem_wrap(m, *buf, size) == 0 ? 0 : -1;
}

static inline void drv_put(const struct guest_mem *m, uint64_t gpa,
                           const void *p, uint64_t len)
{
	assert_int_equal(guest_mem_write(m, gpa, p, len), 0);
}

static inline void drv_get(const struct guest_mem *m, uint64_t gpa, void *p,
                           uint64_t len)
{
	assert_int_equal(guest_mem_read(m, gpa, p, len), 0);
}

static inline void drv_put16(const struct guest_mem *m, uint64_t gpa,
                             uint16_t v)
{
	v = htole16(v);
	drv_put(m, gpa, &v, 2);
}

static inline uint8_t drv_get8(const struct guest_mem *m, uint64_t gpa)
{
	uint8_t v;
	drv_get(m, gpa, &v, 1);
	return v;
}

static inline uint16_t drv_get16(const struct guest_mem *m, uint64_t gpa)
{
	uint16_t v;
	drv_get(m, gpa, &v, 2);
	return le16toh(v);
}

static inline uint32_t drv_get32(const struct guest_mem *m, uint64_t gpa)
{
	uint32_t v;
	drv_get(m, gpa, &v, 4);
	return le32toh(v);
}

/* ---- the rings ---- */

/* Writes descriptor i of the table at table (16 little-endian bytes). */
static inline void drv_set_desc(const struct guest_mem *m, uint64_t table,
                                uint16_t i, uint64_t addr, uint32_t len,
                                uint16_t flags, uint16_t next)
{
	uint8_t raw[16];
	uint64_t a = htole64(addr);
	uint32_t l = htole32(len);
	uint16_t fl = htole16(flags), n = htole16(next);
	memcpy(raw, &a, 8);
	memcpy(raw + 8, &l, 4);
	memcpy(raw + 12, &fl, 2);
	memcpy(raw + 14, &n, 2);
	drv_put(m, table + 16ULL * i, raw, 16);
}

/* Offers chain head on the avail ring at avail of a queue of num entries:
 * fills the next slot, then publishes the index. *avail_idx is the
 * driver's next avail index. */
static inline void drv_offer(const struct guest_mem *m, uint64_t avail,
                             uint16_t num, uint16_t *avail_idx, uint16_t head)
{
	drv_put16(m, avail + 4 + 2ULL * (*avail_idx % num), head);
	(*avail_idx)++;
	drv_put16(m, avail + 2, *avail_idx);
}

/* Writes the n segments as one chain in the descriptor table at desc,
 * from descriptor *next_desc on (wrapping at num), offers it on the avail
 * ring at avail and returns its head. */
static inline uint16_t drv_offer_chain(const struct guest_mem *m, uint64_t desc,
                                       uint64_t avail, uint16_t num,
                                       uint16_t *avail_idx, uint16_t *next_desc,
                                       const struct drv_seg *s, unsigned n)
{
	uint16_t head = *next_desc;
	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % num);
		bool more = i + 1 < n;
		drv_set_desc(
		    m, desc, idx, s[i].addr, s[i].len,
		    (uint16_t)(s[i].flags | (more ? VIRTQ_DESC_F_NEXT : 0)),
		    more ? (uint16_t)((idx + 1) % num) : 0);
	}
	*next_desc = (uint16_t)((head + n) % num);
	drv_offer(m, avail, num, avail_idx, head);
	return head;
}

/* The used ring at used of a queue of num entries: its index, and entry
 * i's id and length. */
static inline uint16_t drv_used_idx(const struct guest_mem *m, uint64_t used)
{
	return drv_get16(m, used + 2);
}

static inline uint32_t drv_used_id(const struct guest_mem *m, uint64_t used,
                                   uint16_t num, uint16_t i)
{
	return drv_get32(m, used + 4 + 8ULL * (i % num));
}

static inline uint32_t drv_used_len(const struct guest_mem *m, uint64_t used,
                                    uint16_t num, uint16_t i)
{
	return drv_get32(m, used + 4 + 8ULL * (i % num) + 4);
}

/* ---- queue set-up, as the transport records it ---- */

/* What the driver writes before QueueReady: the size and the rings. */
static inline void drv_queue_layout(struct virtq *q, uint16_t num,
                                    uint64_t desc, uint64_t avail,
                                    uint64_t used)
{
	virtq_reset(q);
	q->num = num;
	q->desc = desc;
	q->avail = avail;
	q->used = used;
}

/* QueueReady: the transport checks the layout, then marks it ready. */
static inline void drv_queue_ready(const struct guest_mem *m, struct virtq *q)
{
	struct husk_error e = {0};
	assert_int_equal(virtq_validate(m, q, &e), 0);
	q->ready = true;
}

/* DRIVER_OK with every offered feature taken, interrupts going to
 * raise_irq (which finds the test through d->transport). */
static inline void drv_go_live(struct virtio_dev *d, void *transport,
                               void (*raise_irq)(struct virtio_dev *, uint32_t))
{
	d->transport = transport;
	d->raise_irq = raise_irq;
	d->status = DRV_LIVE;
	d->interrupt_status = 0;
	d->driver_features = d->device_features;
}

/* The driver's interrupt handler: counts each reason, fails on others. */
static inline void drv_count_irq(uint32_t reason, unsigned *used_irqs,
                                 unsigned *config_irqs)
{
	if (reason == VIRTIO_INT_USED_BUFFER)
		(*used_irqs)++;
	else if (reason == VIRTIO_INT_CONFIG)
		(*config_irqs)++;
	else
		fail_msg("interrupt reason %u", reason);
}

/* A kick of queue q: the transport calls notify under the device lock. */
static inline void drv_kick(struct virtio_dev *d, uint16_t q)
{
	pthread_mutex_lock(&d->lock);
	d->ops->notify(d, q);
	pthread_mutex_unlock(&d->lock);
}

#endif
