/* virtio-blk against a fake guest and a fake transport: guest_mem_wrap over
 * a buffer holding rings and request buffers the tests write as a driver
 * would, a queue set up the way the MMIO transport sets it up, and a
 * mkstemp file as the disk, checked from the host side with pread. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "husk/error.h"
#include "../../src/vmm/guest_mem.h"
#include "../../src/vmm/log.h"
#include "../../src/vmm/virtio/blk.h"
#include "../../src/vmm/virtio/device.h"
#include "../../src/vmm/virtio/virtq.h"
#include "fake_driver.h"

#define MEM_SIZE 0x40000ULL
#define QNUM     64
#define DESC     0x0000ULL /* 64 x 16 bytes */
#define AVAIL    0x1000ULL
#define USED     0x2000ULL
#define INDIRECT 0x3000ULL
#define HDR      0x4000ULL
#define HDR2     0x4100ULL /* a second and third request's headers */
#define HDR3     0x4200ULL
#define STATUS   0x4800ULL
#define STATUS2  0x4801ULL
#define STATUS3  0x4802ULL
#define DATA     0x10000ULL /* up to 0x30000: 128 KiB of data */
#define DATA2    0x30000ULL

#define SECTORS 64ULL /* the disk: 32 KiB */
#define SECTOR  512u

#define WR VIRTQ_DESC_F_WRITE

struct fx {
	uint8_t *buf;
	struct guest_mem m;
	struct virtio_dev d;
	char path[64];
	int host_fd; /* the test's own view of the disk file */
	unsigned used_irqs, config_irqs;
	uint16_t avail_idx;
	uint16_t next_desc;
};

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 31 + (off >> 9) * 7 + 1);
}

/* ---- the fake transport ---- */

static void count_irq(struct virtio_dev *d, uint32_t reason)
{
	struct fx *f = d->transport;
	drv_count_irq(reason, &f->used_irqs, &f->config_irqs);
}

/* What the transport does once the driver has set up queue 0 and written
 * DRIVER_OK, with the given ring features negotiated. */
static void start_device(struct fx *f, bool indirect, bool event_idx)
{
	struct virtq *q = &f->d.queues[0];

	memset(f->buf, 0, 0x3000); /* rings */
	f->avail_idx = 0;
	f->next_desc = 0;
	drv_go_live(&f->d, f, count_irq);
	drv_queue_layout(q, QNUM, DESC, AVAIL, USED);
	q->indirect = indirect;
	q->event_idx = event_idx;
	drv_queue_ready(&f->m, q);
}

static void open_device(struct fx *f, bool read_only, const char *serial)
{
	struct virtio_blk_config_opts o = {
	    .path = f->path, .read_only = read_only, .serial = serial};
	struct husk_error e = {0};
	if (virtio_blk_init(&f->d, &f->m, &o, &e) != 0)
		fail_msg("virtio_blk_init: %s", e.msg);
	start_device(f, false, false);
}

static void reopen_device(struct fx *f, bool read_only, const char *serial)
{
	virtio_blk_destroy(&f->d);
	open_device(f, read_only, serial);
}

static void kick(struct fx *f)
{
	drv_kick(&f->d, 0);
}

/* ---- the fake driver (fake_driver.h) on queue 0 ---- */

/* Writes the segments as one chain in the descriptor table, offers it and
 * returns its head. */
static uint16_t offer_chain(struct fx *f, const struct drv_seg *s, unsigned n)
{
	return drv_offer_chain(&f->m, DESC, AVAIL, QNUM, &f->avail_idx,
	                       &f->next_desc, s, n);
}

static void put_hdr(struct fx *f, uint64_t gpa, uint32_t type, uint64_t sector)
{
	uint8_t h[16] = {0};
	uint32_t t = htole32(type);
	uint64_t s = htole64(sector);
	memcpy(h, &t, 4);
	memcpy(h + 8, &s, 8);
	drv_put(&f->m, gpa, h, 16);
}

static uint16_t used_idx(struct fx *f)
{
	return drv_used_idx(&f->m, USED);
}

static uint32_t used_id(struct fx *f, uint16_t i)
{
	return drv_used_id(&f->m, USED, QNUM, i);
}

static uint32_t used_len(struct fx *f, uint16_t i)
{
	return drv_used_len(&f->m, USED, QNUM, i);
}

/* Kicks and expects exactly the chain head completed; its used length. */
static uint32_t kick_one(struct fx *f, uint16_t head)
{
	uint16_t before = used_idx(f);
	kick(f);
	assert_int_equal(used_idx(f), (uint16_t)(before + 1));
	assert_int_equal(used_id(f, before), head);
	return used_len(f, before);
}

/* The common shape: header, one data buffer (readable for OUT, writable
 * otherwise; none when len is 0), one status byte. The status byte the
 * device wrote; *used the used length. */
static uint8_t request(struct fx *f, uint32_t type, uint64_t sector,
                       uint32_t len, uint32_t *used)
{
	struct drv_seg s[3];
	unsigned n = 0;

	put_hdr(f, HDR, type, sector);
	uint8_t poison = 0xee;
	drv_put(&f->m, STATUS, &poison, 1);
	s[n++] = (struct drv_seg){HDR, 16, 0};
	if (len)
		s[n++] = (struct drv_seg){DATA, len,
		                          type == VIRTIO_BLK_T_OUT ? 0 : WR};
	s[n++] = (struct drv_seg){STATUS, 1, WR};
	uint32_t u = kick_one(f, offer_chain(f, s, n));
	if (used)
		*used = u;
	return drv_get8(&f->m, STATUS);
}

/* ---- the host side ---- */

static void fill_guest(struct fx *f, uint64_t gpa, uint64_t len, uint8_t seed)
{
	for (uint64_t i = 0; i < len; i++) {
		uint8_t v = (uint8_t)(seed + i * 13 + (i >> 8));
		drv_put(&f->m, gpa + i, &v, 1);
	}
}

/* Guest bytes equal the file's bytes at off. */
static void assert_guest_matches_file(struct fx *f, uint64_t gpa, uint64_t off,
                                      uint64_t len)
{
	uint8_t *want = malloc(len), *got = malloc(len);
	assert_non_null(want);
	assert_non_null(got);
	assert_int_equal(pread(f->host_fd, want, len, (off_t)off),
	                 (ssize_t)len);
	drv_get(&f->m, gpa, got, len);
	assert_memory_equal(got, want, len);
	free(want);
	free(got);
}

/* The file is still exactly what setup wrote. */
static void assert_file_pristine(struct fx *f)
{
	uint8_t *b = malloc(SECTORS * SECTOR);
	assert_non_null(b);
	assert_int_equal(pread(f->host_fd, b, SECTORS * SECTOR, 0),
	                 (ssize_t)(SECTORS * SECTOR));
	for (uint64_t i = 0; i < SECTORS * SECTOR; i++)
		if (b[i] != pattern(i))
			fail_msg("file byte %llu changed",
			         (unsigned long long)i);
	free(b);
}

static int make_file(char *path, size_t path_size, uint64_t size)
{
	snprintf(path, path_size, "/tmp/husk-blk-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	uint8_t *b = malloc(size ? size : 1);
	for (uint64_t i = 0; i < size; i++)
		b[i] = pattern(i);
	ssize_t w = pwrite(fd, b, size, 0);
	free(b);
	if (w != (ssize_t)size) {
		close(fd);
		return -1;
	}
	return fd;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || drv_mem_new(&f->m, &f->buf, MEM_SIZE) != 0)
		return -1;
	f->host_fd = make_file(f->path, sizeof(f->path), SECTORS * SECTOR);
	if (f->host_fd < 0)
		return -1;
	vmm_log_set_quiet(false);
	*state = f;
	open_device(f, false, NULL);
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	virtio_blk_destroy(&f->d);
	close(f->host_fd);
	unlink(f->path);
	free(f->buf);
	free(f);
	vmm_log_set_quiet(false);
	return 0;
}

/* ---- requests ---- */

static void read_round_trip(void **state)
{
	struct fx *f = *state;
	uint32_t used;

	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 3, 2 * SECTOR, &used),
	                 VIRTIO_BLK_S_OK);
	assert_int_equal(used, 2 * SECTOR + 1);
	assert_guest_matches_file(f, DATA, 3 * SECTOR, 2 * SECTOR);
	assert_int_equal(f->used_irqs, 1);
	assert_true(f->d.interrupt_status & VIRTIO_INT_USED_BUFFER);

	/* The very last sector. */
	assert_int_equal(
	    request(f, VIRTIO_BLK_T_IN, SECTORS - 1, SECTOR, &used),
	    VIRTIO_BLK_S_OK);
	assert_guest_matches_file(f, DATA, (SECTORS - 1) * SECTOR, SECTOR);
}

static void write_round_trip(void **state)
{
	struct fx *f = *state;
	uint32_t used;

	fill_guest(f, DATA, 3 * SECTOR, 0x40);
	assert_int_equal(request(f, VIRTIO_BLK_T_OUT, 5, 3 * SECTOR, &used),
	                 VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1); /* only the status byte */
	assert_guest_matches_file(f, DATA, 5 * SECTOR, 3 * SECTOR);
	/* Its neighbours are untouched. */
	uint8_t b;
	assert_int_equal(pread(f->host_fd, &b, 1, 5 * SECTOR - 1), 1);
	assert_int_equal(b, pattern(5 * SECTOR - 1));
	assert_int_equal(pread(f->host_fd, &b, 1, 8 * SECTOR), 1);
	assert_int_equal(b, pattern(8 * SECTOR));

	/* Read it back into other guest memory. */
	memset(f->buf + DATA, 0, 3 * SECTOR);
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 5, 3 * SECTOR, &used),
	                 VIRTIO_BLK_S_OK);
	assert_int_equal(used, 3 * SECTOR + 1);
	assert_guest_matches_file(f, DATA, 5 * SECTOR, 3 * SECTOR);
}

static void zero_length_request(void **state)
{
	struct fx *f = *state;
	uint32_t used;

	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 0, 0, &used),
	                 VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
	assert_int_equal(request(f, VIRTIO_BLK_T_OUT, SECTORS, 0, &used),
	                 VIRTIO_BLK_S_OK);
	assert_file_pristine(f);
}

static void multi_segment(void **state)
{
	struct fx *f = *state;

	/* OUT: header split 10 + 6, data 100 + 924 + 512, status alone. */
	fill_guest(f, DATA, 100, 1);
	fill_guest(f, DATA + 0x1000, 924, 2);
	fill_guest(f, DATA + 0x2000, 512, 3);
	put_hdr(f, HDR, VIRTIO_BLK_T_OUT, 10);
	struct drv_seg out[] = {
	    {HDR, 10, 0},
	    {HDR + 10, 6, 0},
	    {DATA, 100, 0},
	    {DATA + 0x1000, 924, 0},
	    {DATA + 0x2000, 512, 0},
	    {STATUS, 1, WR},
	};
	assert_int_equal(kick_one(f, offer_chain(f, out, 6)), 1);
	assert_int_equal(drv_get8(&f->m, STATUS), VIRTIO_BLK_S_OK);
	assert_guest_matches_file(f, DATA, 10 * SECTOR, 100);
	assert_guest_matches_file(f, DATA + 0x1000, 10 * SECTOR + 100, 924);
	assert_guest_matches_file(f, DATA + 0x2000, 10 * SECTOR + 1024, 512);

	/* IN: header and nothing else readable, data 1 + 511 + 700, and the
	 * last 324 data bytes share a buffer with the status byte. */
	put_hdr(f, HDR, VIRTIO_BLK_T_IN, 10);
	memset(f->buf + DATA2, 0, 0x4000);
	struct drv_seg in[] = {
	    {HDR, 16, 0},
	    {DATA2, 1, WR},
	    {DATA2 + 0x100, 511, WR},
	    {DATA2 + 0x1000, 700, WR},
	    {DATA2 + 0x2000, 325, WR},
	};
	assert_int_equal(kick_one(f, offer_chain(f, in, 5)), 1536 + 1);
	assert_int_equal(drv_get8(&f->m, DATA2 + 0x2000 + 324),
	                 VIRTIO_BLK_S_OK);
	assert_guest_matches_file(f, DATA2, 10 * SECTOR, 1);
	assert_guest_matches_file(f, DATA2 + 0x100, 10 * SECTOR + 1, 511);
	assert_guest_matches_file(f, DATA2 + 0x1000, 11 * SECTOR, 700);
	assert_guest_matches_file(f, DATA2 + 0x2000, 11 * SECTOR + 700, 324);
}

/* Offers one IN of VIRTIO_BLK_SEG_MAX one-sector buffers from sector 0,
 * through an indirect table (the ring itself has only QNUM entries). */
static void offer_max_segments(struct fx *f)
{
	const uint32_t segs = VIRTIO_BLK_SEG_MAX;

	start_device(f, true, false);
	put_hdr(f, HDR, VIRTIO_BLK_T_IN, 0);
	drv_set_desc(&f->m, INDIRECT, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
	for (uint32_t i = 0; i < segs; i++)
		drv_set_desc(&f->m, INDIRECT, (uint16_t)(1 + i),
		             DATA + 512ULL * i, 512, WR | VIRTQ_DESC_F_NEXT,
		             (uint16_t)(2 + i));
	drv_set_desc(&f->m, INDIRECT, (uint16_t)(1 + segs), STATUS, 1, WR, 0);
	drv_set_desc(&f->m, DESC, 0, INDIRECT, 16 * (segs + 2),
	             VIRTQ_DESC_F_INDIRECT, 0);
	drv_offer(&f->m, AVAIL, QNUM, &f->avail_idx, 0);
}

static void max_segments(void **state)
{
	struct fx *f = *state;

	/* 254 sectors do not fit the 64-sector disk. */
	vmm_log_set_quiet(true);
	offer_max_segments(f);
	assert_int_equal(kick_one(f, 0), 1);
	assert_int_equal(drv_get8(&f->m, STATUS), VIRTIO_BLK_S_IOERR);

	/* They fit a 254-sector one: header + seg_max + status is exactly
	 * the walker's chain limit. */
	assert_int_equal(ftruncate(f->host_fd, 512ULL * VIRTIO_BLK_SEG_MAX), 0);
	reopen_device(f, false, NULL);
	offer_max_segments(f);
	assert_int_equal(kick_one(f, 0), 512 * VIRTIO_BLK_SEG_MAX + 1);
	assert_int_equal(drv_get8(&f->m, STATUS), VIRTIO_BLK_S_OK);
	assert_guest_matches_file(f, DATA, 0, 512ULL * VIRTIO_BLK_SEG_MAX);
}

static void indirect_request(void **state)
{
	struct fx *f = *state;

	start_device(f, true, false);
	fill_guest(f, DATA, SECTOR, 9);
	put_hdr(f, HDR, VIRTIO_BLK_T_OUT, 7);
	drv_set_desc(&f->m, INDIRECT, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 2);
	drv_set_desc(&f->m, INDIRECT, 2, DATA, SECTOR, VIRTQ_DESC_F_NEXT, 1);
	drv_set_desc(&f->m, INDIRECT, 1, STATUS, 1, WR, 0);
	drv_set_desc(&f->m, DESC, 5, INDIRECT, 48, VIRTQ_DESC_F_INDIRECT, 0);
	drv_offer(&f->m, AVAIL, QNUM, &f->avail_idx, 5);
	assert_int_equal(kick_one(f, 5), 1);
	assert_int_equal(drv_get8(&f->m, STATUS), VIRTIO_BLK_S_OK);
	assert_guest_matches_file(f, DATA, 7 * SECTOR, SECTOR);
}

static void several_requests_one_kick(void **state)
{
	struct fx *f = *state;

	fill_guest(f, DATA, SECTOR, 77);
	put_hdr(f, HDR, VIRTIO_BLK_T_OUT, 1);
	put_hdr(f, HDR2, VIRTIO_BLK_T_IN, 1);
	put_hdr(f, HDR3, VIRTIO_BLK_T_FLUSH, 0);
	struct drv_seg a[] = {{HDR, 16, 0}, {DATA, SECTOR, 0}, {STATUS, 1, WR}};
	struct drv_seg b[] = {
	    {HDR2, 16, 0}, {DATA2, SECTOR, WR}, {STATUS2, 1, WR}};
	struct drv_seg c[] = {{HDR3, 16, 0}, {STATUS3, 1, WR}};
	uint16_t ha = offer_chain(f, a, 3);
	uint16_t hb = offer_chain(f, b, 3);
	uint16_t hc = offer_chain(f, c, 2);
	kick(f);
	assert_int_equal(used_idx(f), 3);
	assert_int_equal(used_id(f, 0), ha);
	assert_int_equal(used_len(f, 0), 1);
	assert_int_equal(used_id(f, 1), hb);
	assert_int_equal(used_len(f, 1), SECTOR + 1);
	assert_int_equal(used_id(f, 2), hc);
	assert_int_equal(used_len(f, 2), 1);
	assert_int_equal(drv_get8(&f->m, STATUS), VIRTIO_BLK_S_OK);
	assert_int_equal(drv_get8(&f->m, STATUS2), VIRTIO_BLK_S_OK);
	assert_int_equal(drv_get8(&f->m, STATUS3), VIRTIO_BLK_S_OK);
	/* Served in order: the read saw the write. */
	assert_memory_equal(f->buf + DATA2, f->buf + DATA, SECTOR);
}

static void event_idx_moves_avail_event(void **state)
{
	struct fx *f = *state;

	start_device(f, false, true);
	/* used_event 0: interrupt once entry 0 is used. */
	drv_put16(&f->m, AVAIL + 4 + 2 * QNUM, 0);
	assert_int_equal(request(f, VIRTIO_BLK_T_FLUSH, 0, 0, NULL),
	                 VIRTIO_BLK_S_OK);
	assert_int_equal(drv_get16(&f->m, USED + 4 + 8 * QNUM), 1);
	assert_int_equal(f->used_irqs, 1);
	/* used_event still 0: the second completion is not signalled. */
	assert_int_equal(request(f, VIRTIO_BLK_T_FLUSH, 0, 0, NULL),
	                 VIRTIO_BLK_S_OK);
	assert_int_equal(drv_get16(&f->m, USED + 4 + 8 * QNUM), 2);
	assert_int_equal(f->used_irqs, 1);
}

static void flush(void **state)
{
	struct fx *f = *state;
	uint32_t used;

	assert_int_equal(request(f, VIRTIO_BLK_T_FLUSH, 0, 0, &used),
	                 VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
	/* The sector field is unused for a flush. */
	assert_int_equal(request(f, VIRTIO_BLK_T_FLUSH, UINT64_MAX, 0, &used),
	                 VIRTIO_BLK_S_OK);
}

static void get_id(void **state)
{
	struct fx *f = *state;
	uint32_t used;
	char id[VIRTIO_BLK_ID_BYTES];

	/* Derived from the file's basename: "husk-blk-XXXXXX", NUL-padded. */
	memset(f->buf + DATA, 0xff, 64);
	assert_int_equal(request(f, VIRTIO_BLK_T_GET_ID, 0, 20, &used),
	                 VIRTIO_BLK_S_OK);
	assert_int_equal(used, 21);
	memset(id, 0, sizeof(id));
	memcpy(id, strrchr(f->path, '/') + 1, strlen("husk-blk-XXXXXX"));
	assert_memory_equal(f->buf + DATA, id, sizeof(id));

	/* Given, and exactly 20 bytes: no NUL. */
	reopen_device(f, false, "0123456789abcdefghij");
	assert_int_equal(request(f, VIRTIO_BLK_T_GET_ID, 0, 20, &used),
	                 VIRTIO_BLK_S_OK);
	assert_memory_equal(f->buf + DATA, "0123456789abcdefghij", 20);

	/* A smaller buffer gets what fits; a larger one the 20 bytes. */
	reopen_device(f, false, "disk0");
	memset(f->buf + DATA, 0xff, 64);
	assert_int_equal(request(f, VIRTIO_BLK_T_GET_ID, 0, 3, &used),
	                 VIRTIO_BLK_S_OK);
	assert_int_equal(used, 4);
	assert_memory_equal(f->buf + DATA, "dis\xff", 4);
	memset(f->buf + DATA, 0xff, 64);
	assert_int_equal(request(f, VIRTIO_BLK_T_GET_ID, 0, 32, &used),
	                 VIRTIO_BLK_S_OK);
	assert_int_equal(used, 21);
	assert_memory_equal(f->buf + DATA,
	                    "disk0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
	assert_int_equal(drv_get8(&f->m, DATA + 20), 0xff);
}

static void read_only_refuses_writes(void **state)
{
	struct fx *f = *state;
	uint32_t used;

	reopen_device(f, true, NULL);
	assert_true(f->d.device_features & (1ULL << VIRTIO_BLK_F_RO));
	fill_guest(f, DATA, 4 * SECTOR, 5);
	assert_int_equal(request(f, VIRTIO_BLK_T_OUT, 0, 4 * SECTOR, &used),
	                 VIRTIO_BLK_S_IOERR);
	assert_int_equal(used, 1);
	assert_file_pristine(f);
	/* Reads and flushes still work. */
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 2, SECTOR, &used),
	                 VIRTIO_BLK_S_OK);
	assert_guest_matches_file(f, DATA, 2 * SECTOR, SECTOR);
	assert_int_equal(request(f, VIRTIO_BLK_T_FLUSH, 0, 0, &used),
	                 VIRTIO_BLK_S_OK);
	assert_true(virtio_dev_live(&f->d));
}

static void out_of_range(void **state)
{
	struct fx *f = *state;
	uint32_t used;

	vmm_log_set_quiet(true);
	memset(f->buf + DATA, 0xaa, 2 * SECTOR);
	/* One sector past the end. */
	assert_int_equal(
	    request(f, VIRTIO_BLK_T_IN, SECTORS - 1, 2 * SECTOR, &used),
	    VIRTIO_BLK_S_IOERR);
	assert_int_equal(used, 1);
	assert_int_equal(drv_get8(&f->m, DATA), 0xaa); /* nothing read */
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, SECTORS, SECTOR, &used),
	                 VIRTIO_BLK_S_IOERR);
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, SECTORS + 1, 0, &used),
	                 VIRTIO_BLK_S_IOERR);
	assert_int_equal(
	    request(f, VIRTIO_BLK_T_OUT, SECTORS - 1, 2 * SECTOR, &used),
	    VIRTIO_BLK_S_IOERR);
	assert_file_pristine(f);
	struct stat st;
	assert_int_equal(fstat(f->host_fd, &st), 0);
	assert_int_equal(st.st_size, SECTORS * SECTOR);
	assert_true(virtio_dev_live(&f->d));
}

static void sector_overflow(void **state)
{
	struct fx *f = *state;
	const uint64_t bad[] = {UINT64_MAX,       UINT64_MAX - 1,
	                        UINT64_MAX / 512, UINT64_MAX / 512 + 1,
	                        1ULL << 63,       (1ULL << 55) - 1};

	vmm_log_set_quiet(true);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(
		    request(f, VIRTIO_BLK_T_IN, bad[i], 2 * SECTOR, NULL),
		    VIRTIO_BLK_S_IOERR);
		assert_int_equal(
		    request(f, VIRTIO_BLK_T_OUT, bad[i], 2 * SECTOR, NULL),
		    VIRTIO_BLK_S_IOERR);
		assert_int_equal(request(f, VIRTIO_BLK_T_OUT, bad[i], 0, NULL),
		                 VIRTIO_BLK_S_IOERR);
	}
	assert_file_pristine(f);
	assert_true(virtio_dev_live(&f->d));
}

static void length_not_multiple_of_512(void **state)
{
	struct fx *f = *state;
	uint32_t used;

	vmm_log_set_quiet(true);
	fill_guest(f, DATA, 2 * SECTOR, 3);
	assert_int_equal(request(f, VIRTIO_BLK_T_OUT, 0, 100, &used),
	                 VIRTIO_BLK_S_IOERR);
	assert_int_equal(request(f, VIRTIO_BLK_T_OUT, 0, SECTOR + 1, &used),
	                 VIRTIO_BLK_S_IOERR);
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 0, SECTOR - 1, &used),
	                 VIRTIO_BLK_S_IOERR);
	assert_int_equal(used, 1);
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 0, 1, &used),
	                 VIRTIO_BLK_S_IOERR);
	assert_file_pristine(f);
}

static void header_too_short(void **state)
{
	struct fx *f = *state;

	vmm_log_set_quiet(true);
	/* 15 readable bytes. */
	put_hdr(f, HDR, VIRTIO_BLK_T_IN, 0);
	struct drv_seg s[] = {
	    {HDR, 15, 0}, {DATA, SECTOR, WR}, {STATUS, 1, WR}};
	assert_int_equal(kick_one(f, offer_chain(f, s, 3)), 1);
	assert_int_equal(drv_get8(&f->m, STATUS), VIRTIO_BLK_S_IOERR);

	/* Nothing readable at all: a writable-only chain. */
	struct drv_seg w[] = {{DATA, SECTOR, WR}, {STATUS, 1, WR}};
	assert_int_equal(kick_one(f, offer_chain(f, w, 2)), 1);
	assert_int_equal(drv_get8(&f->m, STATUS), VIRTIO_BLK_S_IOERR);

	/* A single writable byte: it is the status. */
	drv_put16(&f->m, STATUS, 0xee);
	struct drv_seg one[] = {{STATUS, 1, WR}};
	assert_int_equal(kick_one(f, offer_chain(f, one, 1)), 1);
	assert_int_equal(drv_get8(&f->m, STATUS), VIRTIO_BLK_S_IOERR);
	assert_true(virtio_dev_live(&f->d));
}

static void missing_status_byte(void **state)
{
	struct fx *f = *state;

	vmm_log_set_quiet(true);
	/* An OUT whose chain has no writable part: nowhere to report, so
	 * the device must not act on it, and completes it with length 0. */
	fill_guest(f, DATA, SECTOR, 8);
	put_hdr(f, HDR, VIRTIO_BLK_T_OUT, 0);
	struct drv_seg s[] = {{HDR, 16, 0}, {DATA, SECTOR, 0}};
	assert_int_equal(kick_one(f, offer_chain(f, s, 2)), 0);
	assert_file_pristine(f);
	/* Header only. */
	struct drv_seg h[] = {{HDR, 16, 0}};
	assert_int_equal(kick_one(f, offer_chain(f, h, 1)), 0);
	/* The device carries on. */
	assert_true(virtio_dev_live(&f->d));
	assert_int_equal(f->config_irqs, 0);
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 0, SECTOR, NULL),
	                 VIRTIO_BLK_S_OK);
}

static void unknown_type(void **state)
{
	struct fx *f = *state;
	const uint32_t types[] = {2,  3,  5,          7,         11,
	                          13, 14, 0x80000000, UINT32_MAX};
	uint32_t used;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		assert_int_equal(request(f, types[i], 0, SECTOR, &used),
		                 VIRTIO_BLK_S_UNSUPP);
		assert_int_equal(used, 1);
	}
	assert_file_pristine(f);
}

static void host_read_error(void **state)
{
	struct fx *f = *state;
	uint32_t used;

	vmm_log_set_quiet(true);
	/* The file shrinks under the device: the read hits end of file. */
	assert_int_equal(ftruncate(f->host_fd, 4 * SECTOR), 0);
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 8, SECTOR, &used),
	                 VIRTIO_BLK_S_IOERR);
	assert_int_equal(used, 1);
	/* Partly there: the part read counts in the used length. */
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 3, 2 * SECTOR, &used),
	                 VIRTIO_BLK_S_IOERR);
	assert_int_equal(used, SECTOR + 1);
	assert_true(virtio_dev_live(&f->d));
}

/* ---- hostile rings ---- */

/* NEEDS_RESET, one configuration interrupt, and no more work until the
 * driver resets the device; then it works again. */
static void assert_needs_reset_then_recovers(struct fx *f)
{
	assert_true(f->d.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_false(virtio_dev_live(&f->d));
	assert_int_equal(f->config_irqs, 1);
	assert_true(f->d.interrupt_status & VIRTIO_INT_CONFIG);

	uint16_t before = used_idx(f);
	kick(f);
	kick(f);
	assert_int_equal(used_idx(f), before);
	assert_int_equal(f->config_irqs, 1);

	/* The driver resets (status 0), sets the queue up again and writes
	 * DRIVER_OK: the transport's part, done here by hand. */
	f->d.status = 0;
	start_device(f, false, false);
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 0, SECTOR, NULL),
	                 VIRTIO_BLK_S_OK);
	assert_guest_matches_file(f, DATA, 0, SECTOR);
}

static void hostile_loop(void **state)
{
	struct fx *f = *state;

	vmm_log_set_quiet(true);
	put_hdr(f, HDR, VIRTIO_BLK_T_IN, 0);
	drv_set_desc(&f->m, DESC, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
	drv_set_desc(&f->m, DESC, 1, DATA, SECTOR, WR | VIRTQ_DESC_F_NEXT, 0);
	drv_offer(&f->m, AVAIL, QNUM, &f->avail_idx, 0);
	kick(f);
	assert_int_equal(used_idx(f), 0);
	assert_needs_reset_then_recovers(f);
}

static void hostile_address(void **state)
{
	struct fx *f = *state;

	vmm_log_set_quiet(true);
	put_hdr(f, HDR, VIRTIO_BLK_T_IN, 0);
	struct drv_seg s[] = {
	    {HDR, 16, 0}, {MEM_SIZE - 256, SECTOR, WR}, {STATUS, 1, WR}};
	offer_chain(f, s, 3);
	kick(f);
	assert_int_equal(used_idx(f), 0);
	assert_needs_reset_then_recovers(f);
}

static void hostile_avail_index(void **state)
{
	struct fx *f = *state;

	vmm_log_set_quiet(true);
	drv_put16(&f->m, AVAIL + 2, QNUM + 1);
	kick(f);
	assert_needs_reset_then_recovers(f);
}

static void notify_needs_driver_ok(void **state)
{
	struct fx *f = *state;

	f->d.status &= ~(uint32_t)VIRTIO_STATUS_DRIVER_OK;
	put_hdr(f, HDR, VIRTIO_BLK_T_FLUSH, 0);
	struct drv_seg s[] = {{HDR, 16, 0}, {STATUS, 1, WR}};
	offer_chain(f, s, 2);
	kick(f);
	assert_int_equal(used_idx(f), 0);
	/* A queue that is not ready: ignored, not a protocol violation. */
	f->d.status |= VIRTIO_STATUS_DRIVER_OK;
	f->d.queues[0].ready = false;
	kick(f);
	assert_int_equal(used_idx(f), 0);
	assert_true(virtio_dev_live(&f->d));
	f->d.queues[0].ready = true;
	kick(f);
	assert_int_equal(used_idx(f), 1);
}

/* ---- configuration and init ---- */

static void config_space(void **state)
{
	struct fx *f = *state;
	uint8_t cfg[VIRTIO_BLK_CONFIG_SIZE];
	uint64_t cap;
	uint32_t v;

	assert_int_equal(f->d.ops->device_id, VIRTIO_ID_BLOCK);
	assert_null(f->d.ops->config_write);
	assert_int_equal(f->d.num_queues, 1);
	assert_true(f->d.config_size >= 24);
	f->d.ops->config_read(&f->d, 0, cfg, sizeof(cfg));
	memcpy(&cap, cfg, 8);
	assert_int_equal(le64toh(cap), SECTORS);
	memcpy(&v, cfg + 8, 4);
	assert_int_equal(le32toh(v), 0); /* size_max: not offered */
	memcpy(&v, cfg + 12, 4);
	assert_int_equal(le32toh(v), VIRTQ_MAX_CHAIN - 2);
	memcpy(&v, cfg + 16, 4);
	assert_int_equal(v, 0); /* geometry: not offered */
	memcpy(&v, cfg + 20, 4);
	assert_int_equal(le32toh(v), 512);

	/* Pieces, as a driver reading byte by byte sees them. */
	uint8_t b[3];
	f->d.ops->config_read(&f->d, 12, b, 1);
	assert_int_equal(b[0], 254);
	f->d.ops->config_read(&f->d, 20, b, 3);
	assert_memory_equal(b, "\x00\x02\x00", 3);

	uint64_t want =
	    1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_BLK_SIZE |
	    1ULL << VIRTIO_BLK_F_FLUSH | 1ULL << VIRTIO_RING_F_INDIRECT_DESC |
	    1ULL << VIRTIO_RING_F_EVENT_IDX | 1ULL << VIRTIO_F_VERSION_1;
	assert_int_equal(f->d.device_features, want);
	reopen_device(f, true, NULL);
	assert_int_equal(f->d.device_features, want | 1ULL << VIRTIO_BLK_F_RO);
}

static void init_rejects_bad_backing(void **state)
{
	struct fx *f = *state;
	struct virtio_dev d;
	struct husk_error e = {0};
	struct virtio_blk_config_opts o = {.path = "/nonexistent/husk.img"};

	assert_int_equal(virtio_blk_init(&d, &f->m, &o, &e), -ENOENT);
	assert_non_null(strstr(e.msg, "/nonexistent/husk.img"));
	virtio_blk_destroy(&d); /* harmless after a failure */

	char odd[64];
	int fd = make_file(odd, sizeof(odd), 1000);
	assert_true(fd >= 0);
	o.path = odd;
	assert_int_equal(virtio_blk_init(&d, &f->m, &o, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "multiple of 512"));
	virtio_blk_destroy(&d);
	close(fd);
	unlink(odd);

	o.path = "/tmp"; /* read-only: a read-write open fails EISDIR */
	o.read_only = true;
	assert_int_equal(virtio_blk_init(&d, &f->m, &o, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "not a regular file"));
	o.read_only = false;
	o.path = NULL;
	assert_int_equal(virtio_blk_init(&d, &f->m, &o, &e), -EINVAL);
	o.path = f->path;
	o.serial = "012345678901234567890"; /* 21 bytes */
	assert_int_equal(virtio_blk_init(&d, &f->m, &o, &e), -EINVAL);
	virtio_blk_destroy(&d);

	/* A read-write open of a file we may only read fails. */
	if (geteuid() != 0) {
		assert_int_equal(chmod(f->path, 0400), 0);
		o.serial = NULL;
		assert_int_equal(virtio_blk_init(&d, &f->m, &o, &e), -EACCES);
		o.read_only = true;
		assert_int_equal(virtio_blk_init(&d, &f->m, &o, &e), 0);
		virtio_blk_destroy(&d);
	}
}

static void empty_file(void **state)
{
	struct fx *f = *state;

	assert_int_equal(ftruncate(f->host_fd, 0), 0);
	reopen_device(f, false, NULL);
	uint64_t cap = 1;
	f->d.ops->config_read(&f->d, 0, (uint8_t *)&cap, 8);
	assert_int_equal(cap, 0);
	vmm_log_set_quiet(true);
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 0, SECTOR, NULL),
	                 VIRTIO_BLK_S_IOERR);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(read_round_trip),
	    T(write_round_trip),
	    T(zero_length_request),
	    T(multi_segment),
	    T(max_segments),
	    T(indirect_request),
	    T(several_requests_one_kick),
	    T(event_idx_moves_avail_event),
	    T(flush),
	    T(get_id),
	    T(read_only_refuses_writes),
	    T(out_of_range),
	    T(sector_overflow),
	    T(length_not_multiple_of_512),
	    T(header_too_short),
	    T(missing_status_byte),
	    T(unknown_type),
	    T(host_read_error),
	    T(hostile_loop),
	    T(hostile_address),
	    T(hostile_avail_index),
	    T(notify_needs_driver_ok),
	    T(config_space),
	    T(init_rejects_bad_backing),
	    T(empty_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
