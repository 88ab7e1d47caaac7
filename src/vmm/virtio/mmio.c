/* virtio-mmio register semantics. Everything the driver writes is checked
 * here before a device sees it: feature negotiation, queue set-up (through
 * virtq_validate), status transitions. A driver that breaks the rules puts
 * its own device into NEEDS_RESET and nothing else. */
#include "mmio.h"

#include <string.h>
#include <unistd.h>

#include "../log.h"

#define MMIO_MAGIC 0x74726976 /* "virt" */

static void raise_irq(struct virtio_dev *d, uint32_t reason)
{
	struct virtio_mmio *t = d->transport;
	(void)reason; /* already recorded in d->interrupt_status */
	if (t->irqfd >= 0) {
		uint64_t one = 1;
		ssize_t n = write(t->irqfd, &one, sizeof(one));
		(void)n; /* an eventfd at its limit is still signalled */
	} else if (t->raise) {
		t->raise(t->raise_opaque);
	}
}

void virtio_mmio_init(struct virtio_mmio *t, struct virtio_dev *dev,
                      uint64_t base, unsigned irq, int irqfd)
{
	memset(t, 0, sizeof(*t));
	t->dev = dev;
	t->base = base;
	t->irq = irq;
	t->irqfd = irqfd;
	dev->transport = t;
	dev->raise_irq = raise_irq;
}

static struct virtq *selected_queue(struct virtio_mmio *t)
{
	return t->queue_sel < t->dev->num_queues ? &t->dev->queues[t->queue_sel]
	                                         : NULL;
}

static uint32_t read_reg(struct virtio_mmio *t, uint64_t off)
{
	struct virtio_dev *d = t->dev;
	struct virtq *q = selected_queue(t);
	switch (off) {
	case VMMIO_MAGIC: return MMIO_MAGIC;
	case VMMIO_VERSION: return 2;
	case VMMIO_DEVICE_ID: return d->ops->device_id;
	case VMMIO_VENDOR_ID: return VIRTIO_MMIO_VENDOR;
	case VMMIO_DEVICE_FEATURES:
		return t->device_features_sel < 2
		           ? (uint32_t)(d->device_features >>
		                        (32 * t->device_features_sel))
		           : 0;
	case VMMIO_QUEUE_NUM_MAX: return q ? d->queue_num_max : 0;
	case VMMIO_QUEUE_READY: return q && q->ready;
	case VMMIO_INTERRUPT_STATUS: return d->interrupt_status;
	case VMMIO_STATUS: return d->status;
	case VMMIO_CONFIG_GENERATION: return d->config_generation;
	}
	return 0;
}

static void reset_device(struct virtio_dev *d)
{
	if (d->ops->reset)
		d->ops->reset(d);
	for (unsigned i = 0; i < d->num_queues; i++)
		virtq_reset(&d->queues[i]);
	d->status = 0;
	d->driver_features = 0;
	d->interrupt_status = 0;
}

static void write_status(struct virtio_dev *d, uint32_t v)
{
	if (v == 0) {
		reset_device(d);
		return;
	}
	/* A device that needs a reset takes nothing but the reset. Without
	 * this, a driver writing NEEDS_RESET back along with new bits had
	 * FEATURES_OK and DRIVER_OK accepted (and ops->activate called) on a
	 * device it had already broken. */
	if (d->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	uint32_t added = v & ~d->status;
	/* The driver may only add bits (2.1.1); clearing one needs a reset. */
	if (d->status & ~v) {
		virtio_dev_set_needs_reset(d, "driver cleared status bits");
		return;
	}
	if (added & VIRTIO_STATUS_FEATURES_OK) {
		bool subset = !(d->driver_features & ~d->device_features);
		bool v1 = virtio_dev_has_feature(d, VIRTIO_F_VERSION_1);
		if (!subset || !v1) {
			/* The driver reads FEATURES_OK back and gives up. */
			v &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK;
			added &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK;
		}
	}
	if ((added & VIRTIO_STATUS_DRIVER_OK) &&
	    !(v & VIRTIO_STATUS_FEATURES_OK)) {
		virtio_dev_set_needs_reset(d, "DRIVER_OK before FEATURES_OK");
		return;
	}
	d->status = v;
	if ((added & VIRTIO_STATUS_DRIVER_OK) && d->ops->activate)
		d->ops->activate(d);
}

static void set_queue_ready(struct virtio_dev *d, struct virtq *q, bool on)
{
	if (!on) {
		q->ready = false;
		return;
	}
	struct husk_error err = {0};
	q->indirect = virtio_dev_has_feature(d, VIRTIO_RING_F_INDIRECT_DESC);
	q->event_idx = virtio_dev_has_feature(d, VIRTIO_RING_F_EVENT_IDX);
	if (virtq_validate(d->mem, q, &err) < 0) {
		virtio_dev_set_needs_reset(d, err.msg);
		return;
	}
	q->ready = true;
}

static void set_addr_half(uint64_t *addr, bool high, uint32_t v)
{
	if (high)
		*addr = (*addr & 0xffffffffULL) | ((uint64_t)v << 32);
	else
		*addr = (*addr & ~0xffffffffULL) | v;
}

static void write_queue_reg(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	struct virtio_dev *d = t->dev;
	struct virtq *q = selected_queue(t);
	if (!q)
		return; /* a queue the device does not have: ignored */
	/* Queue layout is fixed once the driver is running or the queue is
	 * enabled; a write then is a driver bug we do not follow. */
	if ((d->status & VIRTIO_STATUS_DRIVER_OK) ||
	    (q->ready && off != VMMIO_QUEUE_READY)) {
		virtio_dev_set_needs_reset(d, "queue register written while "
		                              "the queue is live");
		return;
	}
	switch (off) {
	case VMMIO_QUEUE_NUM:
		q->num = v <= d->queue_num_max ? (uint16_t)v : 0;
		break;
	case VMMIO_QUEUE_READY: set_queue_ready(d, q, v == 1); break;
	case VMMIO_QUEUE_DESC_LOW:
	case VMMIO_QUEUE_DESC_HIGH:
		set_addr_half(&q->desc, off == VMMIO_QUEUE_DESC_HIGH, v);
		break;
	case VMMIO_QUEUE_DRIVER_LOW:
	case VMMIO_QUEUE_DRIVER_HIGH:
		set_addr_half(&q->avail, off == VMMIO_QUEUE_DRIVER_HIGH, v);
		break;
	case VMMIO_QUEUE_DEVICE_LOW:
	case VMMIO_QUEUE_DEVICE_HIGH:
		set_addr_half(&q->used, off == VMMIO_QUEUE_DEVICE_HIGH, v);
		break;
	}
}

static void write_reg(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	struct virtio_dev *d = t->dev;
	switch (off) {
	case VMMIO_DEVICE_FEATURES_SEL: t->device_features_sel = v; return;
	case VMMIO_DRIVER_FEATURES_SEL: t->driver_features_sel = v; return;
	case VMMIO_DRIVER_FEATURES:
		/* Features are fixed from FEATURES_OK on. */
		if (d->status & VIRTIO_STATUS_FEATURES_OK ||
		    t->driver_features_sel > 1)
			return;
		set_addr_half(&d->driver_features, t->driver_features_sel == 1,
		              v);
		return;
	case VMMIO_QUEUE_SEL: t->queue_sel = v; return;
	case VMMIO_QUEUE_NOTIFY:
		if (v < d->num_queues && d->queues[v].ready &&
		    virtio_dev_live(d))
			d->ops->notify(d, (uint16_t)v);
		return;
	case VMMIO_INTERRUPT_ACK: d->interrupt_status &= ~v; return;
	case VMMIO_STATUS: write_status(d, v); return;
	case VMMIO_QUEUE_NUM:
	case VMMIO_QUEUE_READY:
	case VMMIO_QUEUE_DESC_LOW:
	case VMMIO_QUEUE_DESC_HIGH:
	case VMMIO_QUEUE_DRIVER_LOW:
	case VMMIO_QUEUE_DRIVER_HIGH:
	case VMMIO_QUEUE_DEVICE_LOW:
	case VMMIO_QUEUE_DEVICE_HIGH: write_queue_reg(t, off, v); return;
	}
	/* Read-only or unknown register: ignored. */
}

static bool config_range(const struct virtio_dev *d, uint64_t off, uint32_t len)
{
	return off >= VMMIO_CONFIG && off - VMMIO_CONFIG <= d->config_size &&
	       len <= d->config_size - (off - VMMIO_CONFIG);
}

static void mmio_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct virtio_mmio *t = opaque;
	struct virtio_dev *d = t->dev;
	memset(data, 0, len);
	pthread_mutex_lock(&d->lock);
	if (off >= VMMIO_CONFIG) {
		if (config_range(d, off, len) && d->ops->config_read)
			d->ops->config_read(d, (uint32_t)(off - VMMIO_CONFIG),
			                    data, len);
	} else if (len == 4 && !(off & 3)) {
		uint32_t v = read_reg(t, off);
		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&d->lock);
}

static void mmio_write(void *opaque, uint64_t off, const uint8_t *data,
                       uint32_t len)
{
	struct virtio_mmio *t = opaque;
	struct virtio_dev *d = t->dev;
	pthread_mutex_lock(&d->lock);
	if (off >= VMMIO_CONFIG) {
		if (config_range(d, off, len) && d->ops->config_write)
			d->ops->config_write(d, (uint32_t)(off - VMMIO_CONFIG),
			                     data, len);
	} else if (len == 4 && !(off & 3)) {
		uint32_t v;
		memcpy(&v, data, 4);
		write_reg(t, off, v);
	} else {
		vmm_debug("virtio-%s: %u-byte register write at 0x%llx "
		          "ignored",
		          d->ops->name, len, (unsigned long long)off);
	}
	pthread_mutex_unlock(&d->lock);
}

struct bus_device virtio_mmio_bus_device(struct virtio_mmio *t)
{
	return (struct bus_device){t->dev->ops->name, t, mmio_read, mmio_write};
}
