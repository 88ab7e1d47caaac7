/* libFuzzer target for virtio-blk request handling.
 *
 * The input is a small header and then the contents of a 64 KiB fake guest
 * memory: rings, descriptors, request headers and data are whatever the
 * fuzzer writes. The header picks the queue size, ring addresses, ring
 * features, read-only or not, starting indices and how many times the
 * driver kicks. The disk is a 64 KiB memfd. The target traps if the device
 * ever lets the file change size (a write outside the disk), changes a
 * read-only disk, leaves the used ring inconsistent with its queue, or
 * keeps working after NEEDS_RESET.
 *
 *   clang -std=gnu11 -g -O1 -Iinclude -D_GNU_SOURCE \
 *     -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_virtio_blk.c \
 *     src/vmm/virtio/blk.c src/vmm/virtio/device.c src/vmm/virtio/virtq.c \
 *     src/vmm/guest_mem.c src/vmm/log.c src/lib/error.c -lpthread \
 *     -o /tmp/fuzz_blk
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "husk/error.h"
#include "../../src/vmm/guest_mem.h"
#include "../../src/vmm/log.h"
#include "../../src/vmm/virtio/blk.h"
#include "../../src/vmm/virtio/device.h"
#include "../../src/vmm/virtio/virtq.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM_SIZE  0x10000u
#define DISK_SIZE 0x10000u
#define HEADER    16u
#define MAX_KICKS 4

/* Header flags (h[7]). */
#define H_INDIRECT  0x01 /* negotiate INDIRECT_DESC */
#define H_EVENT_IDX 0x02 /* negotiate EVENT_IDX */
#define H_READ_ONLY 0x04 /* a read-only disk */
#define H_RESET     0x08 /* after NEEDS_RESET, reset and go on */

#define LIVE                                                                   \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |                    \
	 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK)

static uint8_t mem[MEM_SIZE] __attribute__((aligned(64)));
static uint8_t disk_before[DISK_SIZE];
static int disk_fd = -1;
static char disk_path[64];

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void open_disk(void)
{
	static uint8_t init[DISK_SIZE];

	disk_fd = memfd_create("fuzz-blk-disk", MFD_CLOEXEC);
	CHECK(disk_fd >= 0);
	for (unsigned i = 0; i < DISK_SIZE; i++)
		init[i] = (uint8_t)(i * 7 + (i >> 9));
	CHECK(pwrite(disk_fd, init, DISK_SIZE, 0) == DISK_SIZE);
	snprintf(disk_path, sizeof(disk_path), "/proc/self/fd/%d", disk_fd);
	vmm_log_set_quiet(true);
}

static void raise_irq(struct virtio_dev *d, uint32_t reason)
{
	(void)d;
	CHECK(reason == VIRTIO_INT_USED_BUFFER || reason == VIRTIO_INT_CONFIG);
}

/* What the transport does at DRIVER_OK. */
static bool start(struct virtio_dev *d, const uint8_t *h)
{
	struct virtq *q = &d->queues[0];
	struct husk_error err;

	d->raise_irq = raise_irq;
	d->status = LIVE;
	d->interrupt_status = 0;
	d->driver_features = d->device_features;
	virtq_reset(q);
	q->num = (uint16_t)(1u << (h[0] % 9)); /* 1..256 */
	q->desc = get16(h + 1) & ~15u;
	q->avail = get16(h + 3) & ~1u;
	q->used = get16(h + 5) & ~3u;
	q->indirect = h[7] & H_INDIRECT;
	q->event_idx = h[7] & H_EVENT_IDX;
	q->last_avail = q->used_idx = get16(h + 8);
	if (virtq_validate(d->mem, q, &err) != 0)
		return false;
	q->ready = true;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct virtio_dev d;
	struct guest_mem m;
	struct husk_error err;
	struct stat st;

	if (size < HEADER)
		return 0;
	if (disk_fd < 0)
		open_disk();
	const uint8_t *h = data;
	size_t body = size - HEADER;
	if (body > MEM_SIZE)
		body = MEM_SIZE;
	memset(mem, 0, sizeof(mem));
	memcpy(mem, data + HEADER, body);
	CHECK(guest_mem_wrap(&m, mem, MEM_SIZE) == 0);

	bool read_only = h[7] & H_READ_ONLY;
	if (read_only)
		CHECK(pread(disk_fd, disk_before, DISK_SIZE, 0) == DISK_SIZE);
	struct virtio_blk_config_opts o = {.path = disk_path,
	                                   .read_only = read_only};
	CHECK(virtio_blk_init(&d, &m, &o, &err) == 0);

	/* Any in-range configuration read. */
	uint8_t cfg[VIRTIO_BLK_CONFIG_SIZE];
	uint32_t off = h[12] % (VIRTIO_BLK_CONFIG_SIZE + 1);
	uint32_t len = h[13] % (VIRTIO_BLK_CONFIG_SIZE - off + 1);
	d.ops->config_read(&d, off, cfg, len);

	if (start(&d, h)) {
		unsigned kicks = 1 + h[10] % MAX_KICKS;
		for (unsigned k = 0; k < kicks; k++) {
			struct virtq *q = &d.queues[0];
			uint16_t used_before = q->used_idx;
			bool was_live = virtio_dev_live(&d);
			pthread_mutex_lock(&d.lock);
			d.ops->notify(&d, 0);
			pthread_mutex_unlock(&d.lock);
			/* Every chain taken was handed back. */
			CHECK(q->last_avail == q->used_idx ||
			      !virtio_dev_live(&d));
			if (!was_live)
				CHECK(q->used_idx == used_before);
			if (!virtio_dev_live(&d)) {
				CHECK(d.status & VIRTIO_STATUS_NEEDS_RESET);
				if (!(h[7] & H_RESET) || !start(&d, h))
					break;
				continue;
			}
			/* The driver offers more: move avail->idx on. */
			uint8_t *idx = guest_ptr(&m, q->avail + 2, 2);
			CHECK(idx != NULL);
			uint16_t v = (uint16_t)(get16(idx) + (h[11] & 7));
			idx[0] = (uint8_t)v;
			idx[1] = (uint8_t)(v >> 8);
		}
	}
	virtio_blk_destroy(&d);

	/* The disk never grows or shrinks, and a read-only one never
	 * changes. */
	CHECK(fstat(disk_fd, &st) == 0 && st.st_size == DISK_SIZE);
	if (read_only) {
		static uint8_t after[DISK_SIZE];
		CHECK(pread(disk_fd, after, DISK_SIZE, 0) == DISK_SIZE);
		CHECK(memcmp(after, disk_before, DISK_SIZE) == 0);
	}
	return 0;
}
