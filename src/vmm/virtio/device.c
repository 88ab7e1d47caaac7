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

/* How many rounds of re-enabling kicks may find nothing new before we
 * stop looking (see virtio_dev_serve_queue). */
#define MAX_IDLE_ROUNDS 8

void virtio_dev_serve_queue(struct virtio_dev *d, uint16_t qi,
                            struct virtq_chain *scratch, virtio_serve_fn serve)
{
	struct husk_error err = {0};
	unsigned idle = 0;
	/* The transport only notifies ready queues; an extra check keeps a
	 * stray call from breaking the device (virtq_pop would fail). */
	if (qi >= d->num_queues || !d->queues[qi].ready || !virtio_dev_live(d))
		return;
	struct virtq *q = &d->queues[qi];
	for (;;) {
		bool progress = false;
		/* Completing can fail and set NEEDS_RESET: check each time. */
		while (virtio_dev_live(d)) {
			int rc = virtq_pop(d->mem, q, scratch, &err);
			if (rc < 0) {
				virtio_dev_set_needs_reset(d, err.msg);
				return;
			}
			if (rc == 0)
				break;
			progress = true;
			virtio_dev_complete(d, qi, scratch->head,
			                    serve(d, scratch));
		}
		if (!virtio_dev_live(d))
			return;
		int rc = virtq_set_used_notify(d->mem, q, true, &err);
		if (rc < 0) {
			virtio_dev_set_needs_reset(d, err.msg);
			return;
		}
		if (rc == 0 || (!progress && ++idle >= MAX_IDLE_ROUNDS))
			return;
	}
}
