/* A virtio device as the transport (virtio/mmio.c) sees it: a small const
 * ops table per device type plus this common state. Devices never touch
 * transport registers; the transport never looks inside a device.
 *
 * Locking: the transport holds dev->lock around every ops call, so a device
 * is single-threaded with respect to itself. A device's own I/O thread (if
 * any) takes the same lock before touching queues.
 */
#ifndef HUSK_VMM_VIRTIO_DEVICE_H
#define HUSK_VMM_VIRTIO_DEVICE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../guest_mem.h"
#include "virtq.h"

#define VIRTIO_MAX_QUEUES 18 /* virtio-console: 8 ports + control */

/* Feature bits (bit numbers) common to all devices. */
#define VIRTIO_F_VERSION_1 32

/* Device status bits (virtio 1.x, 2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER      2
#define VIRTIO_STATUS_DRIVER_OK   4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED      128

/* InterruptStatus bits. */
#define VIRTIO_INT_USED_BUFFER 1
#define VIRTIO_INT_CONFIG      2

/* Device IDs. */
#define VIRTIO_ID_NET     1
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG     4

struct virtio_dev;

struct virtio_dev_ops {
	const char *name;
	uint32_t device_id;
	/* Reads len bytes of device configuration at offset; the transport
	 * has checked offset + len <= dev->config_size. */
	void (*config_read)(struct virtio_dev *d, uint32_t offset,
	                    uint8_t *data, uint32_t len);
	/* Optional; NULL means the configuration is read-only. */
	void (*config_write)(struct virtio_dev *d, uint32_t offset,
	                     const uint8_t *data, uint32_t len);
	/* The driver made buffers available on queue q (q < num_queues and
	 * the queue is ready). */
	void (*notify)(struct virtio_dev *d, uint16_t q);
	/* Optional: DRIVER_OK was set; the device may start work. */
	void (*activate)(struct virtio_dev *d);
	/* Optional: the driver reset the device; drop in-flight state. The
	 * transport resets the queues and common state itself. */
	void (*reset)(struct virtio_dev *d);
};

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	void *priv; /* the device type's own state */
	const struct guest_mem *mem;
	uint64_t device_features; /* offered; VERSION_1 always included */
	uint64_t driver_features; /* accepted at FEATURES_OK */
	uint32_t config_size;
	uint32_t status;
	uint32_t interrupt_status;
	uint32_t config_generation;
	uint16_t num_queues;
	uint16_t queue_num_max;
	struct virtq queues[VIRTIO_MAX_QUEUES];
	pthread_mutex_t lock;
	/* Set by the transport: raise the device's interrupt for reason
	 * (VIRTIO_INT_*). Called with dev->lock held. */
	void (*raise_irq)(struct virtio_dev *d, uint32_t reason);
	void *transport;
};

/* Fills the common part; features are the device-specific bits. */
void virtio_dev_init(struct virtio_dev *d, const struct virtio_dev_ops *ops,
                     void *priv, const struct guest_mem *mem,
                     uint16_t num_queues, uint64_t features,
                     uint32_t config_size);

/* Hands a chain back and interrupts the driver if it asked for that. A
 * failure marks the device NEEDS_RESET. Call with dev->lock held. */
void virtio_dev_complete(struct virtio_dev *d, uint16_t q, uint16_t head,
                         uint32_t written);

/* Serves one chain and returns the bytes it wrote into the chain's
 * device-writable part (the used length). */
typedef uint32_t (*virtio_serve_fn)(struct virtio_dev *d,
                                    const struct virtq_chain *c);

/* What a device's notify does for a request queue: pop every available
 * chain into *scratch, serve it, complete it; then re-enable kicks (with
 * EVENT_IDX, move avail_event up to what was taken, or the driver stops
 * kicking) and serve what arrived meanwhile. Re-checks that take nothing
 * are bounded, so a guest toggling avail->idx cannot hold the device lock
 * forever. A guest violation sets NEEDS_RESET. Call with dev->lock held. */
void virtio_dev_serve_queue(struct virtio_dev *d, uint16_t q,
                            struct virtq_chain *scratch, virtio_serve_fn serve);

/* The guest broke the protocol on this device: set NEEDS_RESET and tell
 * the driver with a configuration interrupt. The device stops processing
 * until the driver resets it; nothing else is affected. */
void virtio_dev_set_needs_reset(struct virtio_dev *d, const char *why);

/* Whether the device is live: DRIVER_OK set and NEEDS_RESET not set. */
bool virtio_dev_live(const struct virtio_dev *d);

/* Whether the driver accepted feature bit. */
bool virtio_dev_has_feature(const struct virtio_dev *d, unsigned bit);

#endif
