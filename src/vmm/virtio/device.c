#include "device.h"

#include <string.h>

#include "../log.h"

void virtio_dev_init(struct virtio_dev *d, const struct virtio_dev_ops *ops,
                     void *priv, const struct guest_mem *mem,
                     uint16_t num_queues, uint64_t features,
                     uint32_t config_size)
{
	memset(d, 0, sizeof(*d));
	d->ops = ops;
	d->priv = priv;
	d->mem = mem;
	d->num_queues = num_queues;
	d->queue_num_max = 256;
	d->device_features = features | (1ULL << VIRTIO_F_VERSION_1);
	d->config_size = config_size;
	pthread_mutex_init(&d->lock, NULL);
}

bool virtio_dev_live(const struct virtio_dev *d)
{
	return (d->status & VIRTIO_STATUS_DRIVER_OK) &&
	       !(d->status & VIRTIO_STATUS_NEEDS_RESET);
}

bool virtio_dev_has_feature(const struct virtio_dev *d, unsigned bit)
{
	return bit < 64 && (d->driver_features >> bit) & 1;
}

void virtio_dev_set_needs_reset(struct virtio_dev *d, const char *why)
{
	if (d->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	vmm_log("virtio-%s: %s; device needs reset", d->ops->name, why);
	d->status |= VIRTIO_STATUS_NEEDS_RESET;
	if (d->status & VIRTIO_STATUS_DRIVER_OK) {
		d->interrupt_status |= VIRTIO_INT_CONFIG;
		if (d->raise_irq)
			d->raise_irq(d, VIRTIO_INT_CONFIG);
	}
}

void virtio_dev_complete(struct virtio_dev *d, uint16_t q, uint16_t head,
                         uint32_t written)
{
	struct virtq *vq = &d->queues[q];
	struct husk_error err = {0};
	uint16_t before = vq->used_idx;
	if (virtq_push(d->mem, vq, head, written, &err) < 0) {
		virtio_dev_set_needs_reset(d, err.msg);
		return;
	}
	if (virtq_should_interrupt(d->mem, vq, before)) {
		d->interrupt_status |= VIRTIO_INT_USED_BUFFER;
		if (d->raise_irq)
			d->raise_irq(d, VIRTIO_INT_USED_BUFFER);
	}
}
