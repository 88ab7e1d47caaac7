/* virtio-9p (device ID 9): one request queue carrying 9P2000.L messages to
 * the file server in ../p9/, which shares one host directory with the
 * guest (`mount -t 9p -o trans=virtio,version=9p2000.L TAG /mnt`).
 *
 * Configuration space: le16 tag_len, then the tag's bytes (feature
 * VIRTIO_9P_MOUNT_TAG). A request is one chain: the message in its
 * readable part, the reply written into its writable part. Requests are
 * served synchronously in notify() through a host copy of each message
 * (at most P9_MAX_MSIZE each way). A chain too short for a 9P header is
 * completed with used length 0; any other malformed message gets an
 * Rlerror. Only a broken ring sets DEVICE_NEEDS_RESET.
 */
#ifndef HUSK_VMM_VIRTIO_P9_H
#define HUSK_VMM_VIRTIO_P9_H

#include <stdbool.h>

#include "husk/error.h"
#include "../guest_mem.h"
#include "device.h"

#define VIRTIO_ID_9P          9
#define VIRTIO_9P_F_MOUNT_TAG 0
#define VIRTIO_9P_MAX_TAG     31 /* letters, digits, '_' and '-' */

struct virtio_p9_config_opts {
	const char *tag;
	const char *path; /* the host directory */
	bool read_only;
};

/* Whether tag is 1..VIRTIO_9P_MAX_TAG of [A-Za-z0-9_-]. */
bool virtio_p9_tag_ok(const char *tag);

/* Opens o->path as the share and makes d a virtio-9p device with 1
 * queue. 0, or a negative errno with *err filled and d zeroed (so
 * virtio_p9_destroy() on it is harmless). */
int virtio_p9_init(struct virtio_dev *d, const struct guest_mem *mem,
                   const struct virtio_p9_config_opts *o,
                   struct husk_error *err);

/* Closes every fid and the share and frees the device state. Safe on a
 * zeroed d and after a failed init; d->lock is the caller's. */
void virtio_p9_destroy(struct virtio_dev *d);

#endif
