/* virtio-rng (device ID 4): one queue whose writable buffers the device
 * fills with getrandom(2) bytes. No features and no configuration space.
 *
 * At most VIRTIO_RNG_MAX_PER_CHAIN bytes go into one chain (the driver
 * learns how many from the used length), so a request for a huge buffer
 * cannot hold a vCPU exit long. Readable buffers in a chain are ignored; a
 * chain with no writable buffer completes with used length 0.
 */
#ifndef HUSK_VMM_VIRTIO_RNG_H
#define HUSK_VMM_VIRTIO_RNG_H

#include "husk/error.h"
#include "../guest_mem.h"
#include "device.h"

#define VIRTIO_RNG_MAX_PER_CHAIN 65536

/* Makes d a virtio-rng device with 1 queue. 0, or a negative errno with
 * *err filled and d zeroed (virtio_rng_destroy() on it is harmless). */
int virtio_rng_init(struct virtio_dev *d, const struct guest_mem *mem,
                    struct husk_error *err);

/* Frees the device state. Safe on a zeroed d and after a failed init; the
 * common state (d->lock) is the caller's. */
void virtio_rng_destroy(struct virtio_dev *d);

#endif
