/* libFuzzer target for virtio-9p and its 9P2000.L server.
 *
 * The input is a flag byte and then a stream of 9P messages, each taken
 * as its own little-endian size field says (clamped to what is left), and
 * each offered to the device as one chain in a fake guest memory: the
 * message readable, a reply buffer of a fuzzer-chosen size writable. With
 * flag F_SESSION a valid Tversion and Tattach (fid 0) come first, so the
 * fuzzer starts inside a session. The share is a fresh scratch tree each
 * run: files, a directory, symlinks to outside the share and to "/". Next
 * to it lies "outside" with a canary file. The target traps if anything
 * outside the share changes, if a read-only share changes at all, if the
 * device writes past a reply buffer or answers with a malformed header,
 * or if descriptors leak once the device is destroyed.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "husk/error.h"
#include "../../src/vmm/guest_mem.h"
#include "../../src/vmm/log.h"
#include "../../src/vmm/virtio/device.h"
#include "../../src/vmm/virtio/p9.h"
#include "../../src/vmm/virtio/virtq.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM_SIZE 0x30000u
#define QNUM     16
#define DESC     0x0000u
#define AVAIL    0x1000u
#define USED     0x2000u
#define REQ      0x3000u /* a message: up to 0x10000 bytes */
#define RESP     0x13000u
#define RESP_MAX 0x10000u
#define GUARD    0x23000u /* after the reply buffer: must stay zero */
#define MAX_MSGS 64

#define F_SESSION 0x01
#define F_RO      0x02

#define LIVE                                                                   \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |                    \
	 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK)

static uint8_t mem[MEM_SIZE] __attribute__((aligned(64)));
static char base[64], share[96], outside[96];

static void put16(uint32_t gpa, uint16_t v)
{
	mem[gpa] = (uint8_t)v;
	mem[gpa + 1] = (uint8_t)(v >> 8);
}

static void put32(uint32_t gpa, uint32_t v)
{
	put16(gpa, (uint16_t)v);
	put16(gpa + 2, (uint16_t)(v >> 16));
}

static uint32_t get32(uint32_t gpa)
{
	return (uint32_t)mem[gpa] | (uint32_t)mem[gpa + 1] << 8 |
	       (uint32_t)mem[gpa + 2] << 16 | (uint32_t)mem[gpa + 3] << 24;
}

static int rm_one(const char *p, const struct stat *st, int flag,
                  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	/* Make directories the guest chmod'ed 0 removable again: only
	 * directories, since chmod follows symlinks and the tree holds one
	 * to "/" (it once made the host's / mode 0700). */
	if (flag == FTW_DP || flag == FTW_DNR)
		chmod(p, 0700);
	return remove(p);
}

static void write_text(const char *dir, const char *name, const char *text)
{
	char p[160];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
}

/* The scratch tree goes when the fuzzer ends. */
static void remove_base(void)
{
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh share and outside directory. */
static void make_tree(void)
{
	char p[160];
	if (!base[0]) {
		snprintf(base, sizeof(base), "/tmp/husk-fuzz-p9.XXXXXX");
		CHECK(mkdtemp(base) != NULL);
		snprintf(share, sizeof(share), "%s/share", base);
		snprintf(outside, sizeof(outside), "%s/outside", base);
		vmm_log_set_quiet(true);
		atexit(remove_base);
	}
	nftw(share, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	nftw(outside, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	CHECK(mkdir(share, 0755) == 0 && mkdir(outside, 0755) == 0);
	write_text(outside, "canary", "canary");
	write_text(share, "a", "hello");
	snprintf(p, sizeof(p), "%s/d", share);
	CHECK(mkdir(p, 0755) == 0);
	write_text(p, "b", "world");
	snprintf(p, sizeof(p), "%s/out", share);
	CHECK(symlink("../outside", p) == 0);
	snprintf(p, sizeof(p), "%s/root", share);
	CHECK(symlink("/", p) == 0);
}

static uint64_t tree_sum;

static int sum_one(const char *p, const struct stat *st, int flag,
                   struct FTW *ftw)
{
	(void)flag;
	(void)ftw;
	uint64_t h = tree_sum ^ (uint64_t)st->st_size ^
	             ((uint64_t)st->st_mode << 32) ^ (uint64_t)st->st_mtime;
	for (; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ULL;
	tree_sum = h;
	return 0;
}

/* Names, sizes, modes and times of everything under dir. */
static uint64_t tree_of(const char *dir)
{
	tree_sum = 14695981039346656037ULL;
	nftw(dir, sum_one, 16, FTW_PHYS);
	return tree_sum;
}

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	CHECK(d != NULL);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void raise_irq(struct virtio_dev *d, uint32_t reason)
{
	(void)d;
	CHECK(reason == VIRTIO_INT_USED_BUFFER || reason == VIRTIO_INT_CONFIG);
}

static uint16_t avail_idx;

/* Offers msg as one chain with a reply buffer of wlen bytes and kicks;
 * checks what came back. */
static void call(struct virtio_dev *d, const uint8_t *msg, uint32_t len,
                 uint32_t wlen)
{
	/* Avail and used slots wrap at QNUM; each chain takes two of the
	 * QNUM descriptors. */
	uint16_t slot = avail_idx % QNUM;
	uint16_t d0 = (uint16_t)(2 * (avail_idx % (QNUM / 2)));
	uint16_t d1 = (uint16_t)(d0 + 1);
	memcpy(mem + REQ, msg, len);
	memset(mem + RESP, 0, RESP_MAX + 16);
	/* Descriptor d0: the message (may be empty: then only the reply). */
	uint32_t at = DESC + 16u * d0;
	memset(mem + at, 0, 32);
	put32(at, REQ);
	put32(at + 8, len ? len : 1);
	put16(at + 12, 1); /* NEXT */
	put16(at + 14, d1);
	at = DESC + 16u * d1;
	put32(at, RESP);
	put32(at + 8, wlen);
	put16(at + 12, 2); /* WRITE */
	put16(AVAIL + 4 + 2 * slot, d0);
	avail_idx++;
	put16(AVAIL + 2, avail_idx);
	pthread_mutex_lock(&d->lock);
	d->ops->notify(d, 0);
	pthread_mutex_unlock(&d->lock);
	CHECK(virtio_dev_live(d));
	uint16_t used = (uint16_t)(mem[USED + 2] | mem[USED + 3] << 8);
	CHECK(used == avail_idx);
	uint32_t ulen = get32(USED + 4 + 8u * slot + 4);
	CHECK(ulen <= wlen);
	for (unsigned i = 0; i < 16; i++)
		CHECK(mem[RESP + wlen + i] == 0);
	if (ulen) {
		/* A reply: its size is the used length, a reply type. */
		CHECK(ulen >= 7 && get32(RESP) == ulen);
		CHECK(mem[RESP + 4] & 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct virtio_dev d;
	struct guest_mem m;
	struct husk_error err;

	if (size < 1)
		return 0;
	make_tree();
	uint64_t outside_before = tree_of(outside);
	uint64_t share_before = tree_of(share);
	int fds_before = count_fds();

	uint8_t flags = data[0];
	data++;
	size--;
	memset(mem, 0, sizeof(mem));
	CHECK(guest_mem_wrap(&m, mem, MEM_SIZE) == 0);
	struct virtio_p9_config_opts o = {
	    .tag = "fuzz", .path = share, .read_only = flags & F_RO};
	CHECK(virtio_p9_init(&d, &m, &o, &err) == 0);
	d.raise_irq = raise_irq;
	d.status = LIVE;
	d.driver_features = d.device_features;
	struct virtq *q = &d.queues[0];
	virtq_reset(q);
	q->num = QNUM;
	q->desc = DESC;
	q->avail = AVAIL;
	q->used = USED;
	CHECK(virtq_validate(&m, q, &err) == 0);
	q->ready = true;
	avail_idx = 0;

	if (flags & F_SESSION) {
		static const uint8_t version[] = {
		    21, 0, 0,   0,   100, 0xff, 0xff, 0x00, 0x00, 0x01, 0x00,
		    8,  0, '9', 'P', '2', '0',  '0',  '0',  '.',  'L'};
		static const uint8_t attach[] = {
		    23,   0,    0,    0, 104, 1,   0, 0, 0, 0, 0, 0xff,
		    0xff, 0xff, 0xff, 1, 0,   'u', 0, 0, 0, 0, 0};
		call(&d, version, sizeof(version), 64);
		call(&d, attach, sizeof(attach), 64);
	}
	for (unsigned n = 0; n < MAX_MSGS && size > 0; n++) {
		/* One byte picks the reply buffer's size, then the message
		 * as long as its size field says. */
		uint32_t wlen = 1u + (uint32_t)data[0] * 257u;
		if (wlen > RESP_MAX)
			wlen = RESP_MAX;
		data++;
		size--;
		uint32_t len = size >= 4 ? (uint32_t)data[0] |
		                               (uint32_t)data[1] << 8 |
		                               (uint32_t)data[2] << 16
		                         : (uint32_t)size;
		if (len > size)
			len = (uint32_t)size;
		if (len > 0x10000)
			len = 0x10000;
		call(&d, data, len, wlen);
		data += len;
		size -= len;
	}
	virtio_p9_destroy(&d);
	pthread_mutex_destroy(&d.lock);

	CHECK(count_fds() == fds_before);
	CHECK(tree_of(outside) == outside_before);
	if (flags & F_RO)
		CHECK(tree_of(share) == share_before);
	return 0;
}
