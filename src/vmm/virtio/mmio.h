/* The virtio-mmio transport, version 2 (virtio 1.2, 4.2.2): a 4 KiB
 * register window per device, announced to Linux on the kernel command
 * line (virtio_mmio.device=4K@BASE:IRQ), interrupts through an irqfd. */
#ifndef HUSK_VMM_VIRTIO_MMIO_H
#define HUSK_VMM_VIRTIO_MMIO_H

#include "../bus.h"
#include "device.h"

#define VIRTIO_MMIO_BASE   0xd0000000ULL
#define VIRTIO_MMIO_SIZE   0x1000
#define VIRTIO_MMIO_IRQ0   5 /* GSIs 5, 6, 7, 9, 10, ... (not 8: RTC) */
#define VIRTIO_MMIO_VENDOR 0x4b535548 /* "HUSK" */

struct virtio_mmio {
	struct virtio_dev *dev;
	uint64_t base;
	unsigned irq;
	int irqfd; /* eventfd bound to irq with KVM_IRQFD, or -1 */
	uint32_t device_features_sel;
	uint32_t driver_features_sel;
	uint32_t queue_sel;
	/* raises the interrupt when irqfd is -1 (unit tests) */
	void (*raise)(void *opaque);
	void *raise_opaque;
};

/* Binds dev to the transport; the caller registers the bus device. */
void virtio_mmio_init(struct virtio_mmio *t, struct virtio_dev *dev,
                      uint64_t base, unsigned irq, int irqfd);
struct bus_device virtio_mmio_bus_device(struct virtio_mmio *t);

/* Register offsets, for tests. */
enum {
	VMMIO_MAGIC = 0x000,
	VMMIO_VERSION = 0x004,
	VMMIO_DEVICE_ID = 0x008,
	VMMIO_VENDOR_ID = 0x00c,
	VMMIO_DEVICE_FEATURES = 0x010,
	VMMIO_DEVICE_FEATURES_SEL = 0x014,
	VMMIO_DRIVER_FEATURES = 0x020,
	VMMIO_DRIVER_FEATURES_SEL = 0x024,
	VMMIO_QUEUE_SEL = 0x030,
	VMMIO_QUEUE_NUM_MAX = 0x034,
	VMMIO_QUEUE_NUM = 0x038,
	VMMIO_QUEUE_READY = 0x044,
	VMMIO_QUEUE_NOTIFY = 0x050,
	VMMIO_INTERRUPT_STATUS = 0x060,
	VMMIO_INTERRUPT_ACK = 0x064,
	VMMIO_STATUS = 0x070,
	VMMIO_QUEUE_DESC_LOW = 0x080,
	VMMIO_QUEUE_DESC_HIGH = 0x084,
	VMMIO_QUEUE_DRIVER_LOW = 0x090,
	VMMIO_QUEUE_DRIVER_HIGH = 0x094,
	VMMIO_QUEUE_DEVICE_LOW = 0x0a0,
	VMMIO_QUEUE_DEVICE_HIGH = 0x0a4,
	VMMIO_CONFIG_GENERATION = 0x0fc,
	VMMIO_CONFIG = 0x100,
};

#endif
