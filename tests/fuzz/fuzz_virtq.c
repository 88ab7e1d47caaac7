/* libFuzzer target for the virtqueue walker.
 *
 * The input is a small header and then the contents of a 64 KiB fake guest
 * memory: rings, descriptors and buffers are all whatever the fuzzer
 * writes. The header picks the queue size, ring addresses, features and
 * starting indices. The target then plays a device: validate once, then up
 * to 64 rounds of pop, read and write the chain, push, and the
 * interrupt/notify helpers, and traps if the walker ever hands back a chain
 * that breaks its own contract.
 *
 *   clang -std=gnu11 -g -O1 -Iinclude -D_GNU_SOURCE \
 *     -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_virtq.c \
 *     src/vmm/virtio/virtq.c src/vmm/guest_mem.c src/lib/error.c \
 *     -o /tmp/fuzz_virtq
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "husk/error.h"
#include "../../src/vmm/guest_mem.h"
#include "../../src/vmm/virtio/virtq.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM_SIZE   0x10000u
#define HEADER     12u
#define MAX_ROUNDS 64
#define IO_MAX     4096u

/* Header flags. */
#define H_INDIRECT  0x01 /* negotiate INDIRECT_DESC */
#define H_EVENT_IDX 0x02 /* negotiate EVENT_IDX */
#define H_RAW_ADDRS 0x04 /* do not align the ring addresses */
#define H_HIGH_ADDR 0x08 /* put the used ring far outside RAM */

static uint8_t mem[MEM_SIZE] __attribute__((aligned(64)));
static uint8_t io[IO_MAX];

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* What every chain virtq_pop returns must satisfy. */
static void check_chain(const struct guest_mem *m, const struct virtq *q,
                        const struct virtq_chain *c)
{
	uint64_t readable = 0, writable = 0;

	CHECK(c->head < q->num);
	CHECK(c->n >= 1 && c->n <= VIRTQ_MAX_CHAIN);
	for (unsigned i = 0; i < c->n; i++) {
		const struct virtq_buf *b = &c->buf[i];
		CHECK(b->len > 0);
		CHECK(guest_ptr(m, b->addr, b->len) != NULL);
		if (b->device_writable)
			writable += b->len;
		else
			readable += b->len;
		/* Readable buffers all come first. */
		CHECK(!(i > 0 && c->buf[i - 1].device_writable &&
		        !b->device_writable));
	}
	CHECK(readable == c->readable && writable == c->writable);
	CHECK(readable <= UINT32_MAX && writable <= UINT32_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct virtq_chain c;
	struct guest_mem m;
	struct husk_error err;
	struct virtq q;

	if (size < HEADER)
		return 0;
	const uint8_t *h = data;
	size_t body = size - HEADER;
	if (body > MEM_SIZE)
		body = MEM_SIZE;
	memset(mem, 0, sizeof(mem));
	memcpy(mem, data + HEADER, body);
	if (guest_mem_wrap(&m, mem, MEM_SIZE) != 0)
		__builtin_trap();

	virtq_reset(&q);
	q.num = (uint16_t)(1u << (h[0] % 9)); /* 1..256 */
	q.desc = get16(h + 1);
	q.avail = get16(h + 3);
	q.used = get16(h + 5);
	if (!(h[7] & H_RAW_ADDRS)) {
		q.desc &= ~15ULL;
		q.avail &= ~1ULL;
		q.used &= ~3ULL;
	}
	if (h[7] & H_HIGH_ADDR)
		q.used |= 1ULL << 63;
	q.indirect = h[7] & H_INDIRECT;
	q.event_idx = h[7] & H_EVENT_IDX;
	q.last_avail = q.used_idx = get16(h + 8);
	unsigned rounds = 1 + h[10] % MAX_ROUNDS;
	uint64_t offset = h[11];

	if (virtq_validate(&m, &q, &err) == 0) {
		q.ready = true;
	} else {
		/* A queue that never became ready can only fail. */
		CHECK(virtq_pop(&m, &q, &c, &err) < 0);
		CHECK(q.broken);
		return 0;
	}

	for (unsigned r = 0; r < rounds; r++) {
		uint16_t last = q.last_avail, used_before = q.used_idx;
		int rc = virtq_pop(&m, &q, &c, &err);
		if (rc < 0) {
			CHECK(q.broken && q.last_avail == last);
			CHECK(virtq_pop(&m, &q, &c, &err) < 0);
			CHECK(virtq_push(&m, &q, 0, 0, &err) < 0);
			break;
		}
		if (rc == 0) {
			CHECK(q.last_avail == last);
			/* Not necessarily 0: the used ring may overlap the
			 * avail index, and this writes the used ring. */
			CHECK(virtq_set_used_notify(&m, &q, true, &err) >= 0);
			break;
		}
		CHECK(q.last_avail == (uint16_t)(last + 1));
		check_chain(&m, &q, &c);

		uint64_t want = c.readable > offset ? c.readable - offset : 0;
		if (want > IO_MAX)
			want = IO_MAX;
		CHECK(virtq_chain_read(&m, &c, offset, io, IO_MAX) == want);

		want = c.writable > offset ? c.writable - offset : 0;
		if (want > IO_MAX)
			want = IO_MAX;
		memset(io, 0xa5, sizeof(io));
		/* Writes may land on the rings themselves: fine, the next
		 * pop must cope with whatever the guest memory then holds. */
		CHECK(virtq_chain_write(&m, &c, offset, io, IO_MAX) == want);

		uint32_t written =
		    (uint32_t)(c.writable < 512 ? c.writable : 512);
		CHECK(virtq_push(&m, &q, c.head, written, &err) == 0);
		CHECK(q.used_idx == (uint16_t)(used_before + 1));
		(void)virtq_should_interrupt(&m, &q, used_before);
		CHECK(virtq_set_used_notify(&m, &q, r & 1, &err) >= 0);
	}
	return 0;
}
