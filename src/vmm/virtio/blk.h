/* virtio-blk (device ID 2): one request queue over a host file or block
 * device, I/O done synchronously in notify() with preadv/pwritev straight
 * into guest memory.
 *
 * Offered features: SEG_MAX (VIRTQ_MAX_CHAIN - 2 data segments, so header +
 * data + status always fit one chain), BLK_SIZE (512), FLUSH, RO for a
 * read-only disk, INDIRECT_DESC and EVENT_IDX.
 *
 * Malformed requests (short header, bad length or sector, write to a
 * read-only disk) complete with status IOERR; unknown types with UNSUPP. A
 * chain with no device-writable byte has nowhere to put a status: it is
 * completed with used length 0 and the device stays live (the request is
 * the driver's own mistake, the ring itself is intact). Only a broken ring
 * (what virtq_pop rejects) sets DEVICE_NEEDS_RESET.
 */
#ifndef HUSK_VMM_VIRTIO_BLK_H
#define HUSK_VMM_VIRTIO_BLK_H

#include <stdbool.h>

#include "husk/error.h"
#include "../guest_mem.h"
#include "device.h"

/* Feature bits (bit numbers). */
#define VIRTIO_BLK_F_SEG_MAX  2
#define VIRTIO_BLK_F_RO       5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH    9

/* Request types. */
#define VIRTIO_BLK_T_IN     0
#define VIRTIO_BLK_T_OUT    1
#define VIRTIO_BLK_T_FLUSH  4
#define VIRTIO_BLK_T_GET_ID 8

/* Request status, the last byte of each chain's writable part. */
#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_SECTOR_SIZE 512
#define VIRTIO_BLK_HDR_SIZE    16 /* le32 type, le32 reserved, le64 sector */
#define VIRTIO_BLK_ID_BYTES    20 /* GET_ID: NUL-padded, no NUL if full */
#define VIRTIO_BLK_SEG_MAX     (VIRTQ_MAX_CHAIN - 2)

/* Configuration space offsets (virtio 1.2, 5.2.4); we expose 24 bytes,
 * capacity through blk_size, the rest being behind features we do not
 * offer. */
#define VIRTIO_BLK_CFG_CAPACITY 0  /* le64, in 512-byte sectors */
#define VIRTIO_BLK_CFG_SIZE_MAX 8  /* le32, 0: SIZE_MAX not offered */
#define VIRTIO_BLK_CFG_SEG_MAX  12 /* le32 */
#define VIRTIO_BLK_CFG_GEOMETRY 16 /* 4 bytes, 0: GEOMETRY not offered */
#define VIRTIO_BLK_CFG_BLK_SIZE 20 /* le32 */
#define VIRTIO_BLK_CONFIG_SIZE  24

struct virtio_blk_config_opts {
	const char *path;
	bool read_only;
	/* The GET_ID string, at most 20 bytes; NULL: the first 20 bytes of
	 * the file's basename. */
	const char *serial;
};

/* Opens o->path (O_RDONLY when read_only, else O_RDWR; O_CLOEXEC), which
 * must be a regular file or a block device whose size is a multiple of
 * 512, and makes d a virtio-blk device over it with 1 queue. 0, or a
 * negative errno with *err filled and d zeroed (so virtio_blk_destroy() on
 * it is harmless). */
int virtio_blk_init(struct virtio_dev *d, const struct guest_mem *mem,
                    const struct virtio_blk_config_opts *o,
                    struct husk_error *err);

/* Closes the file and frees the device state. Safe on a zeroed d and after
 * a failed init; the common state (d->lock) is the caller's. */
void virtio_blk_destroy(struct virtio_dev *d);

#endif
