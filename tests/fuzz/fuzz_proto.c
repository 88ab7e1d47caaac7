/* libFuzzer target for the host <-> agent codec (src/lib/proto.c).
 *
 * The input is a 5-byte header and then the byte stream a hostile peer
 * sends. Header byte 0 picks the reading side (bit 0: the host reads what
 * an agent sent; else the agent reads a host) and whether a valid HELLO
 * goes first (bit 1), so that the fuzzer reaches the later frames at once;
 * bytes 1-4 seed the chunk sizes the stream is fed in, from 1 byte to 4 KiB.
 * Every frame the reader delivers is checked against the codec's own
 * contract: the stand-alone check accepts it, every getter of the right
 * kind succeeds on it, and the encoder rebuilds its exact bytes. After a
 * failure the reader must fail the same way for good.
 *
 *   clang -std=gnu11 -g -O1 -Iinclude -D_GNU_SOURCE \
 *     -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_proto.c \
 *     src/lib/proto.c src/lib/error.c -o /tmp/fuzz_proto
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "husk/proto.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_VALUES 8

static uint32_t next_rand(uint32_t *s)
{
	/* xorshift32: cheap, and fully determined by the input. */
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Every getter on one TLV; a value that passes must honour its kind. */
static void probe_tlv(const struct husk_tlv *t)
{
	struct husk_error err;
	struct husk_str s;
	uint32_t u;
	uint64_t u64;
	bool b;

	if (husk_tlv_u32(t, &u, &err) == 0)
		CHECK(t->len == 4);
	if (husk_tlv_u64(t, &u64, &err) == 0)
		CHECK(t->len == 8);
	if (husk_tlv_bool(t, &b, &err) == 0)
		CHECK(t->len == 4 && (t->value[0] & 0xfe) == 0);
	if (husk_tlv_str(t, &s, &err) == 0)
		CHECK(s.len == t->len && !memchr(s.ptr, '\0', s.len));
}

/* Every frame getter for tag. In a frame the reader accepted, a getter of
 * the tag's own kind may fail only for the caller's limits. */
static void probe_tag(const struct husk_frame *f, unsigned tag)
{
	enum husk_tlv_kind kind = husk_proto_tag_kind(tag);
	struct husk_error err;
	struct husk_str s, sv[MAX_VALUES];
	uint32_t u, uv[MAX_VALUES];
	uint64_t u64;
	bool b;
	char buf[16];
	int rc;

	rc = husk_frame_u32(f, tag, &u, &err);
	CHECK(kind != HUSK_TLV_U32 || rc >= 0 || rc == -EINVAL);
	rc = husk_frame_u64(f, tag, &u64, &err);
	CHECK(kind != HUSK_TLV_U64 || rc >= 0);
	rc = husk_frame_bool(f, tag, &b, &err);
	CHECK(kind != HUSK_TLV_BOOL || rc >= 0);
	rc = husk_frame_str(f, tag, &s, &err);
	CHECK(kind != HUSK_TLV_STRING || rc >= 0 || rc == -EINVAL);
	rc = husk_frame_str_buf(f, tag, buf, sizeof(buf), &err);
	CHECK(kind != HUSK_TLV_STRING || rc >= 0 || rc == -EINVAL ||
	      rc == -EMSGSIZE);
	if (rc > 0)
		CHECK(strlen(buf) < sizeof(buf));
	rc = husk_frame_strv(f, tag, sv, MAX_VALUES, &err);
	CHECK(kind != HUSK_TLV_STRING || rc >= 0 || rc == -EMSGSIZE);
	CHECK(rc <= MAX_VALUES);
	rc = husk_frame_u32v(f, tag, uv, MAX_VALUES, &err);
	CHECK(kind != HUSK_TLV_U32 || rc >= 0 || rc == -EMSGSIZE);
	CHECK(rc <= MAX_VALUES);
}

/* Rebuilds f with the encoder of the side that sent it. */
static void reencode(struct husk_proto_enc *e, const struct husk_frame *f,
                     const struct husk_tlv *tlvs, size_t n, bool all_known)
{
	struct husk_error err;
	struct husk_str s;
	uint32_t u;
	uint64_t u64;
	bool b;

	husk_proto_enc_reset(e);
	CHECK(husk_proto_enc_begin(e, f->type, f->flags, f->stream, &err) == 0);
	if (f->type == HUSK_FRAME_STDIN || f->type == HUSK_FRAME_STDOUT ||
	    f->type == HUSK_FRAME_STDERR)
		CHECK(husk_proto_enc_data(e, f->payload, f->len, &err) == 0);
	for (size_t i = 0; i < n; i++) {
		const struct husk_tlv *t = &tlvs[i];
		switch (husk_proto_tag_kind(t->tag)) {
		case HUSK_TLV_U32:
			CHECK(husk_tlv_u32(t, &u, &err) == 0);
			husk_proto_enc_u32(e, t->tag, u, &err);
			break;
		case HUSK_TLV_U64:
			CHECK(husk_tlv_u64(t, &u64, &err) == 0);
			husk_proto_enc_u64(e, t->tag, u64, &err);
			break;
		case HUSK_TLV_BOOL:
			CHECK(husk_tlv_bool(t, &b, &err) == 0);
			husk_proto_enc_bool(e, t->tag, b, &err);
			break;
		case HUSK_TLV_STRING:
			CHECK(husk_tlv_str(t, &s, &err) == 0);
			husk_proto_enc_strn(e, t->tag, s.ptr, s.len, &err);
			break;
		case HUSK_TLV_UNKNOWN: break;
		}
	}
	/* What one reader accepts, the other side's encoder can write. */
	CHECK(husk_proto_enc_end(e, &err) == 0);
	if (all_known) {
		CHECK(e->len == HUSK_PROTO_HDR_SIZE + f->len);
		CHECK(memcmp(e->buf + HUSK_PROTO_HDR_SIZE, f->payload,
		             f->len) == 0);
	}
}

static struct husk_tlv tlvs[HUSK_PROTO_MAX_PAYLOAD / HUSK_PROTO_TLV_HDR];

static void walk(struct husk_proto_enc *e, enum husk_proto_side from,
                 const struct husk_frame *f)
{
	struct husk_error err;
	struct husk_tlv_iter it;
	size_t n = 0;
	bool all_known = true;
	int rc;

	CHECK(f->type >= 1 && f->type <= HUSK_FRAME_TYPE_MAX);
	CHECK(f->len <= HUSK_PROTO_MAX_PAYLOAD);
	CHECK(strcmp(husk_proto_type_name(f->type), "?") != 0);
	CHECK(husk_proto_check_frame(from, f, &err) == 0);
	if (f->type != HUSK_FRAME_STDIN && f->type != HUSK_FRAME_STDOUT &&
	    f->type != HUSK_FRAME_STDERR) {
		husk_tlv_iter_init(&it, f->payload, f->len);
		while ((rc = husk_tlv_next(&it, &tlvs[n], &err)) > 0) {
			CHECK(tlvs[n].tag != 0);
			CHECK(tlvs[n].value + tlvs[n].len <=
			      f->payload + f->len);
			probe_tlv(&tlvs[n]);
			if (husk_proto_tag_kind(tlvs[n].tag) ==
			    HUSK_TLV_UNKNOWN)
				all_known = false;
			else
				probe_tag(f, tlvs[n].tag);
			n++;
		}
		CHECK(rc == 0); /* the reader validated the structure */
		probe_tag(f, HUSK_TAG_SIGNAL);
	}
	reencode(e, f, tlvs, n, all_known);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct husk_proto_reader r;
	struct husk_proto_enc e;
	struct husk_error err, again;
	struct husk_frame f;
	enum husk_proto_side self, peer;
	uint32_t seed;
	size_t off = 0, used;
	int rc = 0;

	if (size < 5)
		return 0;
	self = data[0] & 1 ? HUSK_SIDE_HOST : HUSK_SIDE_AGENT;
	peer = self == HUSK_SIDE_HOST ? HUSK_SIDE_AGENT : HUSK_SIDE_HOST;
	seed = (uint32_t)data[1] | (uint32_t)data[2] << 8 |
	       (uint32_t)data[3] << 16 | (uint32_t)data[4] << 24;
	seed |= 1; /* xorshift never leaves 0 */
	husk_proto_reader_init(&r, self);
	husk_proto_enc_init_alloc(&e, peer);
	if (data[0] & 2) {
		CHECK(husk_proto_enc_hello(&e, "fuzz", &err) == 0);
		CHECK(husk_proto_reader_feed(&r, e.buf, e.len, &used, &f,
		                             &err) == 1);
		CHECK(used == e.len);
	}
	data += 5;
	size -= 5;
	while (off < size) {
		uint32_t x = next_rand(&seed);
		size_t chunk = 1 + (x & 0x100 ? x % 4096 : x % 16);
		if (chunk > size - off)
			chunk = size - off;
		/* Drain the chunk; one frame comes back per call. */
		while (chunk > 0) {
			rc = husk_proto_reader_feed(&r, data + off, chunk,
			                            &used, &f, &err);
			if (rc < 0)
				break;
			CHECK(used <= chunk && (rc == 1 || used == chunk));
			off += used;
			chunk -= used;
			if (rc == 1)
				walk(&e, peer, &f);
		}
		if (rc < 0)
			break;
	}
	if (rc < 0) {
		/* A failed session stays failed, with the same story. */
		CHECK(rc == -err.code);
		CHECK(husk_proto_reader_feed(&r, data, size, &used, &f,
		                             &again) == rc);
		CHECK(used == 0 && strcmp(again.msg, err.msg) == 0);
		CHECK(husk_proto_reader_eof(&r, &again) == rc);
	} else {
		rc = husk_proto_reader_eof(&r, &err);
		CHECK(rc == 0 || rc == -EPROTO);
	}
	husk_proto_reader_free(&r);
	husk_proto_enc_free(&e);
	return 0;
}
