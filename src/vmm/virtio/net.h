/* virtio-net (device ID 1): one receive and one transmit queue, a MAC in
 * the configuration space, frames handed to and taken from a backend
 * (net_slirp.c in husk-vmm, a test double in the unit tests).
 *
 * Offered features: MAC, STATUS (link always up), INDIRECT_DESC and
 * EVENT_IDX. Not offered, and why:
 *  - CSUM / GUEST_CSUM / TSO / UFO: the backend (libslirp) takes and
 *    gives complete Ethernet frames with real checksums and no
 *    segmentation; offering them would only move the work into our copy.
 *  - MRG_RXBUF: it lets one frame span several receive chains, which
 *    matters for frames above the MTU (guest GSO), which we do not offer.
 *    Without it Linux posts receive buffers of header + 1518 bytes, and
 *    every frame the backend makes (MTU 1500) fits one buffer.
 * With VIRTIO_F_VERSION_1 the header is always 12 bytes
 * (virtio_net_hdr_mrg_rxbuf), num_buffers included.
 *
 * Threads: the transport calls notify() on a vCPU thread with dev->lock
 * held; the device then only tells the backend (tx_ready, rx_ready), which
 * must not call back into the device from there. The backend's own thread
 * moves frames with virtio_net_tx_pop() and virtio_net_rx_push(), which
 * take dev->lock themselves, one frame at a time, so the backend can feed
 * a frame to its stack without holding the lock.
 *
 * Hostile guests: a transmit chain with a device-writable buffer, shorter
 * than header + an Ethernet header (26 bytes) or longer than
 * VIRTIO_NET_MAX_TX is returned unread (used length 0) and counted as
 * dropped; the device stays live. Only a broken ring (virtq_pop) sets
 * DEVICE_NEEDS_RESET.
 */
#ifndef HUSK_VMM_VIRTIO_NET_H
#define HUSK_VMM_VIRTIO_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "husk/error.h"
#include "../guest_mem.h"
#include "device.h"

/* Feature bits (bit numbers). */
#define VIRTIO_NET_F_MAC    5
#define VIRTIO_NET_F_STATUS 16

#define VIRTIO_NET_RXQ 0
#define VIRTIO_NET_TXQ 1

#define VIRTIO_NET_HDR_SIZE 12 /* struct virtio_net_hdr_mrg_rxbuf */
#define VIRTIO_NET_ETH_HLEN 14
/* Largest transmit chain accepted, header included: a 64 KiB IP packet
 * plus Ethernet and VLAN headers, as other VMMs allow. */
#define VIRTIO_NET_MAX_TX    65550
#define VIRTIO_NET_MAX_FRAME (VIRTIO_NET_MAX_TX - VIRTIO_NET_HDR_SIZE)

/* Configuration space: mac[6], le16 status. */
#define VIRTIO_NET_CFG_MAC     0
#define VIRTIO_NET_CFG_STATUS  6
#define VIRTIO_NET_CONFIG_SIZE 8
#define VIRTIO_NET_S_LINK_UP   1

struct virtio_net_backend {
	void *opaque;
	/* The guest queued frames to send / posted receive buffers. Called
	 * from a vCPU thread with dev->lock held: wake the backend's thread,
	 * nothing more. */
	void (*tx_ready)(void *opaque);
	void (*rx_ready)(void *opaque);
};

struct virtio_net_stats {
	uint64_t tx_frames, tx_dropped; /* from the guest */
	uint64_t rx_frames, rx_dropped; /* to the guest */
};

/* Makes d a virtio-net device with the given MAC and backend. 0, or a
 * negative errno with *err filled and d zeroed. */
int virtio_net_init(struct virtio_dev *d, const struct guest_mem *mem,
                    const uint8_t mac[6], const struct virtio_net_backend *be,
                    struct husk_error *err);
/* Frees the device state. Safe on a zeroed d and twice. */
void virtio_net_destroy(struct virtio_dev *d);

/* Takes the next frame the guest sent, without the virtio-net header,
 * into frame (cap should be VIRTIO_NET_MAX_FRAME). Bad chains are dropped
 * and counted on the way. Returns the frame's length, or 0 when there is
 * none (kicks are then enabled again, so tx_ready comes with the next). */
size_t virtio_net_tx_pop(struct virtio_dev *d, uint8_t *frame, size_t cap);

/* Puts one Ethernet frame into the guest's next receive buffer.
 * 1: delivered; 0: the guest has no buffer posted (or is not running):
 * keep the frame and try again after rx_ready; -EMSGSIZE: the frame is
 * larger than VIRTIO_NET_MAX_FRAME or than the buffer (dropped, counted);
 * -EIO: the device is broken (dropped). */
int virtio_net_rx_push(struct virtio_dev *d, const void *frame, size_t len);

/* Counts a frame the backend itself dropped on the way to the guest. */
void virtio_net_count_rx_drop(struct virtio_dev *d);

/* The opaque pointer of the backend d was made with (NULL when none). */
void *virtio_net_backend_opaque(const struct virtio_dev *d);

void virtio_net_get_stats(struct virtio_dev *d, struct virtio_net_stats *s);

#endif
