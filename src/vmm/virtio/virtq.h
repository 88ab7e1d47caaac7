/* The one split-virtqueue walker (virtio 1.x, little-endian rings) that
 * every device uses.
 *
 * struct virtq is plain data, with no host pointers, so a snapshot can save
 * it as is; every call maps the rings again through guest_ptr(). The guest
 * owns the rings and may rewrite them at any moment from another vCPU, so
 * each guest field is read once into host memory and checked there, never
 * read again.
 *
 * Errors: negative errno plus a message in *err. A guest that breaks the
 * ring protocol gets -EPROTO (-EFAULT for an address outside RAM, -EINVAL
 * when the queue layout no longer validates), the queue is marked broken
 * and every later pop, push and notify change fails with -EIO until
 * virtq_reset(); the device should then set DEVICE_NEEDS_RESET.
 */
#ifndef HUSK_VMM_VIRTQ_H
#define HUSK_VMM_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>

#include "husk/error.h"
#include "../guest_mem.h"

#define VIRTQ_MAX_SIZE  1024 /* largest queue size we offer (QueueNumMax) */
#define VIRTQ_MAX_CHAIN 256  /* most buffers in one chain, indirect included */

/* Feature bits (bit numbers). */
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX     29

/* Descriptor flags. */
#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4

/* avail->flags and used->flags. */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY     1

struct virtq {
	uint16_t num;  /* queue size, set by the driver (QueueNum) */
	uint64_t desc; /* guest-physical addresses of the three rings */
	uint64_t avail;
	uint64_t used;
	bool ready;     /* set by the transport once virtq_validate() passed */
	bool indirect;  /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	bool event_idx; /* VIRTIO_RING_F_EVENT_IDX negotiated */
	uint16_t last_avail; /* next avail ring slot the device takes */
	uint16_t used_idx;   /* next used ring slot the device fills */
	bool broken;         /* the guest violated the protocol */
};

struct virtq_buf {
	uint64_t addr; /* guest-physical, [addr, addr + len) checked in RAM */
	uint32_t len;  /* never 0 */
	bool device_writable;
};

/* One chain taken from the avail ring: the device-readable buffers first,
 * then the device-writable ones. */
struct virtq_chain {
	uint16_t head;     /* what to hand back to virtq_push() */
	uint16_t n;        /* buffers in buf[], 1..VIRTQ_MAX_CHAIN */
	uint64_t readable; /* total bytes, each at most UINT32_MAX */
	uint64_t writable;
	struct virtq_buf buf[VIRTQ_MAX_CHAIN];
};

/* Zeroes the queue: not ready, not broken, no features, indices 0. */
void virtq_reset(struct virtq *q);

/* Checks what the driver set before it sets QueueReady: num a power of two
 * in 1..VIRTQ_MAX_SIZE; desc 16-byte aligned, avail 2 and used 4; the
 * descriptor table, the avail ring and the used ring each wholly inside one
 * RAM region. 0, -EINVAL or -EFAULT. Does not look at or change q->ready. */
int virtq_validate(const struct guest_mem *m, const struct virtq *q,
                   struct husk_error *err);

/* Takes the next available chain into *c. 1: a chain was taken; 0: the
 * avail ring is empty; <0: the queue is (now) broken, see above. On error
 * *c is unspecified and last_avail is unchanged. */
int virtq_pop(const struct guest_mem *m, struct virtq *q, struct virtq_chain *c,
              struct husk_error *err);

/* Returns chain head to the driver with written bytes put in its writable
 * part. 0; -EIO on a broken queue; -EINVAL for a device bug (head >= num,
 * or no chain outstanding), which leaves the queue unchanged. */
int virtq_push(const struct guest_mem *m, struct virtq *q, uint16_t head,
               uint32_t written, struct husk_error *err);

/* Whether the driver wants an interrupt for the used entries pushed since
 * used_idx was used_before_push: VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event
 * with EVENT_IDX. true when in doubt (a spurious interrupt is harmless, a
 * lost one hangs the driver). */
bool virtq_should_interrupt(const struct guest_mem *m, const struct virtq *q,
                            uint16_t used_before_push);

/* Asks the driver to notify (kick) on new buffers, or not to: avail_event
 * when EVENT_IDX is negotiated, else VIRTQ_USED_F_NO_NOTIFY. After enabling,
 * returns 1 if chains arrived meanwhile (pop them: the driver may not have
 * kicked), else 0; <0 on a broken or unmappable queue. */
int virtq_set_used_notify(const struct guest_mem *m, struct virtq *q,
                          bool enable, struct husk_error *err);

/* Copy from the device-readable part of c, starting offset bytes into it,
 * or into its device-writable part. Return the bytes copied: less than len
 * when that part ends first. */
uint64_t virtq_chain_read(const struct guest_mem *m,
                          const struct virtq_chain *c, uint64_t offset,
                          void *dst, uint64_t len);
uint64_t virtq_chain_write(const struct guest_mem *m,
                           const struct virtq_chain *c, uint64_t offset,
                           const void *src, uint64_t len);

#endif
