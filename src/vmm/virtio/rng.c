/* virtio-rng; see rng.h. */
#include "rng.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "../log.h"

struct rng {
	/* Scratch for the chain being served (about 4 KiB, kept off the
	 * vCPU thread's stack). Only touched under d->lock. */
	struct virtq_chain chain;
};

static const struct virtio_dev_ops rng_ops;

/* Fills len bytes at p; returns the bytes filled. getrandom(2) may return
 * less than asked when a signal arrives during a request over 256 bytes.
 * Without GRND_NONBLOCK it blocks only until the kernel's pool is first
 * initialised, long before a VM runs. */
static uint64_t fill(uint8_t *p, uint64_t len)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t r = getrandom(p + done, (size_t)(len - done), 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			char buf[128];
			vmm_log("virtio-rng: getrandom: %s",
			        strerror_r(errno, buf, sizeof(buf)));
			break;
		}
		done += (uint64_t)r;
	}
	return done;
}

/* Fills the chain's writable buffers, up to the per-chain cap, and returns
 * the bytes written: the used length. */
static uint32_t serve(const struct guest_mem *m, const struct virtq_chain *c)
{
	uint64_t total = 0;

	for (uint32_t i = 0; i < c->n && i < VIRTQ_MAX_CHAIN; i++) {
		const struct virtq_buf *b = &c->buf[i];
		if (!b->device_writable)
			continue; /* the driver has nothing to tell us */
		uint64_t len = b->len;
		if (len > VIRTIO_RNG_MAX_PER_CHAIN - total)
			len = VIRTIO_RNG_MAX_PER_CHAIN - total;
		if (len == 0)
			break;
		/* virtq_pop checked the buffer; guest_ptr is still the one
		 * way into guest memory. */
		uint8_t *p = guest_ptr(m, b->addr, len);
		if (!p)
			break;
		uint64_t got = fill(p, len);
		total += got;
		/* The used length says "the first total bytes": stop at the
		 * first gap. */
		if (got < len)
			break;
	}
	return (uint32_t)total;
}

static uint32_t serve_chain(struct virtio_dev *d, const struct virtq_chain *c)
{
	return serve(d->mem, c);
}

static void rng_notify(struct virtio_dev *d, uint16_t qi)
{
	struct rng *r = d->priv;
	if (qi == 0 && r)
		virtio_dev_serve_queue(d, qi, &r->chain, serve_chain);
}

/* config_size is 0, so the transport never calls this; it exists so that
 * a transport bug reads zeros rather than calling through NULL. */
static void rng_config_read(struct virtio_dev *d, uint32_t offset,
                            uint8_t *data, uint32_t len)
{
	(void)d;
	(void)offset;
	memset(data, 0, len);
}

static const struct virtio_dev_ops rng_ops = {
    .name = "rng",
    .device_id = VIRTIO_ID_RNG,
    .config_read = rng_config_read,
    .config_write = NULL,
    .notify = rng_notify,
};

int virtio_rng_init(struct virtio_dev *d, const struct guest_mem *mem,
                    struct husk_error *err)
{
	memset(d, 0, sizeof(*d));
	struct rng *r = calloc(1, sizeof(*r));
	if (!r)
		return husk_err(err, ENOMEM, "virtio-rng: out of memory");
	virtio_dev_init(d, &rng_ops, r, mem, 1, 0, 0);
	return 0;
}

void virtio_rng_destroy(struct virtio_dev *d)
{
	if (d->ops != &rng_ops)
		return;
	free(d->priv);
	d->priv = NULL;
}
