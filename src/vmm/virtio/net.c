/* virtio-net; see net.h. */
#include "net.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../log.h"

struct net {
	struct virtio_net_backend be;
	uint8_t mac[6];
	struct virtio_net_stats stats;
	/* Scratch for the chain being served (about 4 KiB). Only touched
	 * under dev->lock, and never kept across an unlock. */
	struct virtq_chain chain;
};

static bool queue_usable(struct virtio_dev *d, uint16_t q)
{
	return virtio_dev_live(d) && d->queues[q].ready;
}

/* Pops the next chain of queue q: 1 taken, 0 none (kicks enabled again),
 * <0 the ring is broken (NEEDS_RESET set). Kicks come back on only when
 * the ring is empty, and chains that arrived meanwhile are taken: a driver
 * that saw kicks off would otherwise never kick again. */
static int pop(struct virtio_dev *d, struct net *n, uint16_t q)
{
	struct husk_error err = {0};
	/* Bounded: a guest racing avail->idx cannot hold the lock. */
	for (int round = 0; round < 8; round++) {
		int rc = virtq_pop(d->mem, &d->queues[q], &n->chain, &err);
		if (rc != 0) {
			if (rc < 0)
				virtio_dev_set_needs_reset(d, err.msg);
			return rc;
		}
		rc = virtq_set_used_notify(d->mem, &d->queues[q], true, &err);
		if (rc < 0) {
			virtio_dev_set_needs_reset(d, err.msg);
			return rc;
		}
		if (rc == 0)
			return 0;
	}
	return 0; /* a guest playing games: it gets its next kick's worth */
}

/* Whether a transmit chain carries a frame we take (see net.h). */
static bool tx_chain_ok(const struct virtq_chain *c)
{
	return c->writable == 0 &&
	       c->readable >= VIRTIO_NET_HDR_SIZE + VIRTIO_NET_ETH_HLEN &&
	       c->readable <= VIRTIO_NET_MAX_TX;
}

size_t virtio_net_tx_pop(struct virtio_dev *d, uint8_t *frame, size_t cap)
{
	struct net *n = d->priv;
	size_t len = 0;
	pthread_mutex_lock(&d->lock);
	while (n && queue_usable(d, VIRTIO_NET_TXQ) &&
	       pop(d, n, VIRTIO_NET_TXQ) > 0) {
		const struct virtq_chain *c = &n->chain;
		uint64_t want = c->readable - VIRTIO_NET_HDR_SIZE;
		/* The header says nothing we use: no offloads negotiated,
		 * so flags and gso_type are 0 and the frame is complete. */
		if (tx_chain_ok(c) && want <= cap &&
		    virtq_chain_read(d->mem, c, VIRTIO_NET_HDR_SIZE, frame,
		                     want) == want)
			len = (size_t)want;
		else
			n->stats.tx_dropped++;
		virtio_dev_complete(d, VIRTIO_NET_TXQ, c->head, 0);
		if (len) {
			n->stats.tx_frames++;
			break;
		}
	}
	pthread_mutex_unlock(&d->lock);
	return len;
}

int virtio_net_rx_push(struct virtio_dev *d, const void *frame, size_t len)
{
	struct net *n = d->priv;
	if (!n)
		return -EIO;
	int rc = 0;
	pthread_mutex_lock(&d->lock);
	if (len > VIRTIO_NET_MAX_FRAME) {
		rc = -EMSGSIZE;
	} else if (queue_usable(d, VIRTIO_NET_RXQ)) {
		rc = pop(d, n, VIRTIO_NET_RXQ);
		if (rc < 0)
			rc = -EIO;
	}
	if (rc > 0) {
		const struct virtq_chain *c = &n->chain;
		uint32_t used = 0;
		if (c->writable >= VIRTIO_NET_HDR_SIZE + len) {
			/* flags 0, gso_type NONE, lengths 0: a complete frame
			 * with its checksums; num_buffers 1 (no MRG_RXBUF). */
			uint8_t hdr[VIRTIO_NET_HDR_SIZE] = {0};
			uint16_t one = htole16(1);
			memcpy(hdr + 10, &one, 2);
			virtq_chain_write(d->mem, c, 0, hdr, sizeof(hdr));
			virtq_chain_write(d->mem, c, VIRTIO_NET_HDR_SIZE, frame,
			                  len);
			used = (uint32_t)(VIRTIO_NET_HDR_SIZE + len);
			n->stats.rx_frames++;
		} else {
			/* A buffer too small for the frame: Linux drops a
			 * used length below the header as a runt. */
			rc = -EMSGSIZE;
		}
		virtio_dev_complete(d, VIRTIO_NET_RXQ, c->head, used);
	}
	if (rc < 0)
		n->stats.rx_dropped++;
	pthread_mutex_unlock(&d->lock);
	return rc;
}

void virtio_net_count_rx_drop(struct virtio_dev *d)
{
	struct net *n = d->priv;
	pthread_mutex_lock(&d->lock);
	if (n)
		n->stats.rx_dropped++;
	pthread_mutex_unlock(&d->lock);
}

void virtio_net_get_stats(struct virtio_dev *d, struct virtio_net_stats *s)
{
	struct net *n = d->priv;
	pthread_mutex_lock(&d->lock);
	if (n)
		*s = n->stats;
	else
		memset(s, 0, sizeof(*s));
	pthread_mutex_unlock(&d->lock);
}

void *virtio_net_backend_opaque(const struct virtio_dev *d)
{
	const struct net *n = d->priv;
	return n ? n->be.opaque : NULL;
}

static void net_notify(struct virtio_dev *d, uint16_t q)
{
	struct net *n = d->priv;
	if (q == VIRTIO_NET_TXQ) {
		/* No more kicks until the backend has drained the ring
		 * (pop() turns them back on when it finds it empty): one
		 * MMIO exit per burst instead of one per frame. */
		struct husk_error err = {0};
		if (virtq_set_used_notify(d->mem, &d->queues[q], false, &err) <
		    0) {
			virtio_dev_set_needs_reset(d, err.msg);
			return;
		}
		n->be.tx_ready(n->be.opaque);
	} else if (q == VIRTIO_NET_RXQ) {
		n->be.rx_ready(n->be.opaque);
	}
}

static void net_activate(struct virtio_dev *d)
{
	struct net *n = d->priv;
	/* Frames the backend held while the driver was not ready. */
	n->be.rx_ready(n->be.opaque);
}

static void net_config_read(struct virtio_dev *d, uint32_t offset,
                            uint8_t *data, uint32_t len)
{
	struct net *n = d->priv;
	uint8_t cfg[VIRTIO_NET_CONFIG_SIZE] = {0};
	uint16_t status = htole16(VIRTIO_NET_S_LINK_UP);
	memcpy(cfg + VIRTIO_NET_CFG_MAC, n->mac, 6);
	memcpy(cfg + VIRTIO_NET_CFG_STATUS, &status, 2);
	memcpy(data, cfg + offset, len);
}

static const struct virtio_dev_ops net_ops = {
    .name = "net",
    .device_id = VIRTIO_ID_NET,
    .config_read = net_config_read,
    .notify = net_notify,
    .activate = net_activate,
};

int virtio_net_init(struct virtio_dev *d, const struct guest_mem *mem,
                    const uint8_t mac[6], const struct virtio_net_backend *be,
                    struct husk_error *err)
{
	memset(d, 0, sizeof(*d));
	if (!be || !be->tx_ready || !be->rx_ready)
		return husk_err(err, EINVAL, "virtio-net: no backend");
	struct net *n = calloc(1, sizeof(*n));
	if (!n)
		return husk_err(err, ENOMEM, "virtio-net");
	n->be = *be;
	memcpy(n->mac, mac, 6);
	uint64_t features = 1ULL << VIRTIO_NET_F_MAC |
	                    1ULL << VIRTIO_NET_F_STATUS |
	                    1ULL << VIRTIO_RING_F_INDIRECT_DESC |
	                    1ULL << VIRTIO_RING_F_EVENT_IDX;
	virtio_dev_init(d, &net_ops, n, mem, 2, features,
	                VIRTIO_NET_CONFIG_SIZE);
	return 0;
}

void virtio_net_destroy(struct virtio_dev *d)
{
	struct net *n = d->priv;
	if (!n)
		return;
	struct virtio_net_stats s = n->stats;
	vmm_debug(
	    "virtio-net: tx %llu frames (%llu dropped), rx %llu "
	    "(%llu dropped)",
	    (unsigned long long)s.tx_frames, (unsigned long long)s.tx_dropped,
	    (unsigned long long)s.rx_frames, (unsigned long long)s.rx_dropped);
	free(n);
	d->priv = NULL;
}
