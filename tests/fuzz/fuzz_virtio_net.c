/* libFuzzer target for virtio-net frame handling.
 *
 * The input is a small header and then the contents of a 128 KiB fake
 * guest memory: both queues' rings, descriptors, headers and frames are
 * whatever the fuzzer writes. The header picks each queue's size and ring
 * addresses, the ring features, and a script of steps: kick a queue, take
 * transmit frames as the backend would, or push a frame of some length
 * into the receive queue. The target traps if a frame taken is shorter
 * than an Ethernet header or longer than VIRTIO_NET_MAX_FRAME, if the
 * device returns more chains than it took, or if it keeps working after
 * NEEDS_RESET.
 *
 *   make build-fuzz/fuzz_virtio_net
 *   build-fuzz/fuzz_virtio_net -max_total_time=600 corpus/
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "husk/error.h"
#include "../../src/vmm/guest_mem.h"
#include "../../src/vmm/log.h"
#include "../../src/vmm/virtio/device.h"
#include "../../src/vmm/virtio/net.h"
#include "../../src/vmm/virtio/virtq.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM_SIZE  0x20000u
#define HEADER    32u
#define MAX_STEPS 16

#define H_INDIRECT  0x01
#define H_EVENT_IDX 0x02

#define LIVE                                                                   \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |                    \
	 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK)

static uint8_t mem[MEM_SIZE] __attribute__((aligned(64)));
static uint8_t frame[VIRTIO_NET_MAX_FRAME + 1];

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void raise_irq(struct virtio_dev *d, uint32_t reason)
{
	(void)d;
	CHECK(reason == VIRTIO_INT_USED_BUFFER || reason == VIRTIO_INT_CONFIG);
}

static void nothing(void *opaque)
{
	(void)opaque;
}

/* What the transport does at QueueReady, from 7 header bytes. */
static bool start_queue(struct virtio_dev *d, uint16_t qi, const uint8_t *h,
                        uint8_t flags)
{
	struct virtq *q = &d->queues[qi];
	struct husk_error err;
	virtq_reset(q);
	q->num = (uint16_t)(1u << (h[0] % 9)); /* 1..256 */
	q->desc = (uint32_t)(get16(h + 1) << 1) & ~15u;
	q->avail = (uint32_t)(get16(h + 3) << 1) & ~1u;
	q->used = (uint32_t)(get16(h + 5) << 1) & ~3u;
	q->indirect = flags & H_INDIRECT;
	q->event_idx = flags & H_EVENT_IDX;
	if (virtq_validate(d->mem, q, &err) != 0)
		return false;
	q->ready = true;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct virtio_dev d;
	struct guest_mem m;
	struct husk_error err;

	if (size < HEADER)
		return 0;
	vmm_log_set_quiet(true);
	const uint8_t *h = data;
	size_t body = size - HEADER;
	if (body > MEM_SIZE)
		body = MEM_SIZE;
	memset(mem, 0, sizeof(mem));
	memcpy(mem, data + HEADER, body);
	CHECK(guest_mem_wrap(&m, mem, MEM_SIZE) == 0);

	static const uint8_t mac[6] = {0x52, 0x54, 0, 1, 2, 3};
	struct virtio_net_backend be = {NULL, nothing, nothing};
	CHECK(virtio_net_init(&d, &m, mac, &be, &err) == 0);
	uint8_t cfg[VIRTIO_NET_CONFIG_SIZE];
	uint32_t off = h[30] % (VIRTIO_NET_CONFIG_SIZE + 1);
	d.ops->config_read(&d, off, cfg,
	                   h[31] % (VIRTIO_NET_CONFIG_SIZE - off + 1));

	d.raise_irq = raise_irq;
	d.status = LIVE;
	d.driver_features = d.device_features;
	bool ok = start_queue(&d, VIRTIO_NET_RXQ, h, h[14]) &&
	          start_queue(&d, VIRTIO_NET_TXQ, h + 7, h[14]);
	for (unsigned i = 0; ok && i < MAX_STEPS; i++) {
		uint8_t step = h[15 + i % 15];
		step = (uint8_t)(step >> (i / 15 * 4));
		bool was_live = virtio_dev_live(&d);
		struct virtq *tx = &d.queues[VIRTIO_NET_TXQ];
		struct virtq *rx = &d.queues[VIRTIO_NET_RXQ];
		uint16_t tx_used = tx->used_idx, rx_used = rx->used_idx;
		switch (step & 3) {
		case 0: { /* the guest kicks a queue */
			pthread_mutex_lock(&d.lock);
			d.ops->notify(&d, step & 4 ? VIRTIO_NET_TXQ
			                           : VIRTIO_NET_RXQ);
			pthread_mutex_unlock(&d.lock);
			CHECK(tx->used_idx == tx_used &&
			      rx->used_idx == rx_used);
			break;
		}
		case 1: /* the backend drains the transmit queue */
			for (size_t len;
			     (len = virtio_net_tx_pop(&d, frame,
			                              VIRTIO_NET_MAX_FRAME));) {
				CHECK(len >= VIRTIO_NET_ETH_HLEN);
				CHECK(len <= VIRTIO_NET_MAX_FRAME);
			}
			/* Every chain taken was handed back. */
			CHECK(tx->last_avail == tx->used_idx ||
			      !virtio_dev_live(&d));
			break;
		default: { /* a frame for the guest */
			size_t len = (size_t)(step >> 2) * 1031 % sizeof(frame);
			memset(frame, step, len);
			int rc = virtio_net_rx_push(&d, frame, len);
			CHECK(rc == 1 || rc == 0 || rc == -EMSGSIZE ||
			      rc == -EIO);
			CHECK(rx->used_idx - rx_used <= 1 ||
			      !virtio_dev_live(&d));
			if (rc == 1)
				CHECK(len <= VIRTIO_NET_MAX_FRAME);
			break;
		}
		}
		if (!was_live) {
			CHECK(tx->used_idx == tx_used &&
			      rx->used_idx == rx_used);
		}
		if (!virtio_dev_live(&d))
			CHECK(d.status & VIRTIO_STATUS_NEEDS_RESET);
		/* The driver offers more: move both avail->idx on. */
		for (uint16_t qi = 0; qi < 2; qi++) {
			uint8_t *idx = guest_ptr(&m, d.queues[qi].avail + 2, 2);
			CHECK(idx != NULL);
			uint16_t v =
			    (uint16_t)(get16(idx) + (h[29] >> (qi * 4) & 7));
			idx[0] = (uint8_t)v;
			idx[1] = (uint8_t)(v >> 8);
		}
	}
	virtio_net_destroy(&d);
	return 0;
}
