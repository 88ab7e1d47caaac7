/* The host <-> agent frame codec; the format is described in
 * include/husk/proto.h.
 *
 * One set of checks (check_hdr, check_payload) serves the reader, the
 * encoder and husk_proto_check_frame, so what one side may send and what
 * the other accepts cannot drift apart. Bytes are assembled one by one,
 * never by casting the buffer, so the code is independent of host
 * endianness and alignment.
 */
#include "husk/proto.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define H      HUSK_SIDE_HOST
#define A      HUSK_SIDE_AGENT
#define HA     (HUSK_SIDE_HOST | HUSK_SIDE_AGENT)
#define T(tag) (1ull << (tag))

enum { S_ZERO = 1, S_SET, S_ANY }; /* which stream ids a type accepts */

static const struct type_info {
	const char *name;
	uint8_t senders; /* sides that may send it without HUSK_FRAME_REPLY */
	bool reply;      /* a host request the agent answers in kind */
	uint8_t stream;
	bool raw;          /* stdio data, not TLVs */
	uint64_t required; /* tags a non-reply frame must carry */
} types[HUSK_FRAME_TYPE_MAX + 1] = {
    [HUSK_FRAME_HELLO] = {"HELLO", HA, false, S_ZERO, false,
                          T(HUSK_TAG_VERSION_MAJOR) |
                              T(HUSK_TAG_VERSION_MINOR)},
    [HUSK_FRAME_ERROR] = {"ERROR", HA, false, S_ANY, false,
                          T(HUSK_TAG_ERRNO) | T(HUSK_TAG_MESSAGE)},
    [HUSK_FRAME_CREATE] = {"CREATE", H, true, S_SET, false,
                           T(HUSK_TAG_CONTAINER_ID) | T(HUSK_TAG_ROOT_DEVICE) |
                               T(HUSK_TAG_ARGV)},
    [HUSK_FRAME_START] = {"START", H, true, S_SET, false, 0},
    [HUSK_FRAME_EXEC] = {"EXEC", H, true, S_SET, false,
                         T(HUSK_TAG_CONTAINER_ID) | T(HUSK_TAG_ARGV)},
    [HUSK_FRAME_SIGNAL] = {"SIGNAL", H, true, S_SET, false, T(HUSK_TAG_SIGNAL)},
    [HUSK_FRAME_RESIZE] = {"RESIZE", H, true, S_SET, false,
                           T(HUSK_TAG_ROWS) | T(HUSK_TAG_COLS)},
    [HUSK_FRAME_WAIT] = {"WAIT", H, false, S_SET, false, 0},
    [HUSK_FRAME_EXIT] = {"EXIT", A, false, S_SET, false, T(HUSK_TAG_EXIT_CODE)},
    [HUSK_FRAME_STATS] = {"STATS", H, true, S_ANY, false, 0},
    [HUSK_FRAME_SHUTDOWN] = {"SHUTDOWN", H, true, S_ZERO, false, 0},
    [HUSK_FRAME_STDIN] = {"STDIN", H, false, S_SET, true, 0},
    [HUSK_FRAME_STDOUT] = {"STDOUT", A, false, S_SET, true, 0},
    [HUSK_FRAME_STDERR] = {"STDERR", A, false, S_SET, true, 0},
    [HUSK_FRAME_CLOSE] = {"CLOSE", HA, false, S_SET, false, T(HUSK_TAG_FD)},
    [HUSK_FRAME_CREDIT] = {"CREDIT", HA, false, S_SET, false,
                           T(HUSK_TAG_FD) | T(HUSK_TAG_CREDIT)},
};

/* min/max bound the value of integers and the length of strings. */
#define U32(lo, hi) HUSK_TLV_U32, 0, (lo), (hi)
#define U64(lo)     HUSK_TLV_U64, 0, (lo), UINT64_MAX
#define STR(lo, hi) HUSK_TLV_STRING, 0, (lo), (hi)
#define BOOL        HUSK_TLV_BOOL, 0, 0, 1
static const struct tag_info {
	const char *name;
	enum husk_tlv_kind kind;
	uint16_t repeat; /* most occurrences per frame; 0: at most once */
	uint64_t min, max;
} tags[HUSK_TAG_MAX + 1] = {
    [HUSK_TAG_VERSION_MAJOR] = {"VERSION_MAJOR", U32(0, UINT32_MAX)},
    [HUSK_TAG_VERSION_MINOR] = {"VERSION_MINOR", U32(0, UINT32_MAX)},
    [HUSK_TAG_PEER_NAME] = {"PEER_NAME", STR(0, 64)},
    [HUSK_TAG_ERRNO] = {"ERRNO", U32(1, 4095)},
    [HUSK_TAG_MESSAGE] = {"MESSAGE", STR(0, 1024)},
    [HUSK_TAG_REQUEST] = {"REQUEST", U32(0, HUSK_FRAME_TYPE_MAX)},
    [HUSK_TAG_CONTAINER_ID] = {"CONTAINER_ID", STR(1, 128)},
    [HUSK_TAG_ARGV] = {"ARGV", HUSK_TLV_STRING, HUSK_PROTO_MAX_STRINGS, 0,
                       HUSK_PROTO_MAX_PAYLOAD},
    [HUSK_TAG_ENV] = {"ENV", HUSK_TLV_STRING, HUSK_PROTO_MAX_STRINGS, 0,
                      HUSK_PROTO_MAX_PAYLOAD},
    [HUSK_TAG_CWD] = {"CWD", STR(1, 4095)},
    [HUSK_TAG_UID] = {"UID", U32(0, UINT32_MAX)},
    [HUSK_TAG_GID] = {"GID", U32(0, UINT32_MAX)},
    [HUSK_TAG_GROUP] = {"GROUP", HUSK_TLV_U32, HUSK_PROTO_MAX_GROUPS, 0,
                        UINT32_MAX},
    [HUSK_TAG_USER] = {"USER", STR(1, 256)},
    [HUSK_TAG_TTY] = {"TTY", BOOL},
    [HUSK_TAG_STDIN] = {"STDIN", BOOL},
    [HUSK_TAG_ROWS] = {"ROWS", U32(0, 65535)},
    [HUSK_TAG_COLS] = {"COLS", U32(0, 65535)},
    [HUSK_TAG_SIGNAL] = {"SIGNAL", U32(1, 64)},
    [HUSK_TAG_EXIT_CODE] = {"EXIT_CODE", U32(0, 255)},
    [HUSK_TAG_EXIT_SIGNAL] = {"EXIT_SIGNAL", U32(1, 64)},
    [HUSK_TAG_OOM_KILLED] = {"OOM_KILLED", BOOL},
    [HUSK_TAG_HOSTNAME] = {"HOSTNAME", STR(1, 64)},
    [HUSK_TAG_ROOT_DEVICE] = {"ROOT_DEVICE", STR(1, 255)},
    [HUSK_TAG_READONLY_ROOT] = {"READONLY_ROOT", BOOL},
    [HUSK_TAG_MEMORY_LIMIT] = {"MEMORY_LIMIT", U64(0)},
    [HUSK_TAG_CPU_MILLIS] = {"CPU_MILLIS", U32(1, 1u << 20)},
    [HUSK_TAG_PIDS_LIMIT] = {"PIDS_LIMIT", U64(1)},
    [HUSK_TAG_PID] = {"PID", U32(0, UINT32_MAX)},
    [HUSK_TAG_FD] = {"FD", U32(0, 2)},
    [HUSK_TAG_CREDIT] = {"CREDIT", U32(1, HUSK_PROTO_MAX_WINDOW)},
    [HUSK_TAG_MEMORY_USAGE] = {"MEMORY_USAGE", U64(0)},
    [HUSK_TAG_CPU_USAGE_NS] = {"CPU_USAGE_NS", U64(0)},
    [HUSK_TAG_PIDS_CURRENT] = {"PIDS_CURRENT", U64(0)},
    [HUSK_TAG_TIMEOUT_MS] = {"TIMEOUT_MS", U32(0, UINT32_MAX)},
    [HUSK_TAG_EXIT_FOLLOWS] = {"EXIT_FOLLOWS", BOOL},
    [HUSK_TAG_MOUNT] = {"MOUNT", HUSK_TLV_STRING, HUSK_PROTO_MAX_MOUNTS, 1,
                        4200},
    [HUSK_TAG_PID_NS_OF] = {"PID_NS_OF", STR(1, 128)},
};

static const char *const kind_names[] = {"unknown", "u32", "u64", "bool",
                                         "string"};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static const struct tag_info *tag_info(unsigned tag)
{
	return tag <= HUSK_TAG_MAX && tags[tag].name ? &tags[tag] : NULL;
}

static const struct type_info *type_info(unsigned type)
{
	return type <= HUSK_FRAME_TYPE_MAX && types[type].name ? &types[type]
	                                                       : NULL;
}

const char *husk_proto_type_name(unsigned type)
{
	return type_info(type) ? types[type].name : "?";
}

const char *husk_proto_tag_name(unsigned tag)
{
	return tag_info(tag) ? tags[tag].name : "?";
}

enum husk_tlv_kind husk_proto_tag_kind(unsigned tag)
{
	return tag_info(tag) ? tags[tag].kind : HUSK_TLV_UNKNOWN;
}

static const char *side_name(unsigned side)
{
	return side == H ? "host" : "agent";
}

/* ---- checks shared by reader and encoder ---- */

static int check_hdr(enum husk_proto_side from, const struct husk_frame *f,
                     struct husk_error *err)
{
	const struct type_info *ti = type_info(f->type);

	if (!ti)
		return husk_err(err, EPROTO, "unknown frame type %u", f->type);
	if (f->len > HUSK_PROTO_MAX_PAYLOAD)
		return husk_err(err, EMSGSIZE,
		                "%s frame of %" PRIu32 " bytes (most %u)",
		                ti->name, f->len, HUSK_PROTO_MAX_PAYLOAD);
	if (f->flags & ~HUSK_FRAME_REPLY)
		return husk_err(err, EPROTO, "%s frame with reserved flags %#x",
		                ti->name, f->flags & ~HUSK_FRAME_REPLY);
	if (f->flags & HUSK_FRAME_REPLY) {
		if (from != A || !ti->reply)
			return husk_err(err, EPROTO, "%s reply from the %s",
			                ti->name, side_name(from));
	} else if (!(ti->senders & from)) {
		return husk_err(err, EPROTO, "%s frame from the %s", ti->name,
		                side_name(from));
	}
	if ((ti->stream == S_ZERO && f->stream != 0) ||
	    (ti->stream == S_SET && f->stream == 0))
		return husk_err(err, EPROTO, "%s frame on stream %" PRIu32,
		                ti->name, f->stream);
	return 0;
}

/* Width, NUL and limits of a value of the tag ti describes. */
static int check_value(const struct tag_info *ti, const struct husk_tlv *t,
                       struct husk_error *err)
{
	uint64_t v = t->len;

	switch (ti->kind) {
	case HUSK_TLV_U32:
	case HUSK_TLV_BOOL:
	case HUSK_TLV_U64: {
		uint32_t width = ti->kind == HUSK_TLV_U64 ? 8 : 4;
		if (t->len != width)
			return husk_err(err, EPROTO,
			                "%s: %" PRIu32 " bytes for a %s",
			                ti->name, t->len, kind_names[ti->kind]);
		v = width == 8 ? get64(t->value) : get32(t->value);
		break;
	}
	case HUSK_TLV_STRING:
		if (memchr(t->value, '\0', t->len))
			return husk_err(err, EPROTO, "%s: NUL inside a string",
			                ti->name);
		break;
	case HUSK_TLV_UNKNOWN: break;
	}
	if (v < ti->min || v > ti->max)
		return husk_err(
		    err, EPROTO,
		    "%s: %s %" PRIu64 " outside [%" PRIu64 ", %" PRIu64 "]",
		    ti->name, ti->kind == HUSK_TLV_STRING ? "length" : "value",
		    v, ti->min, ti->max);
	return 0;
}

static int check_payload(enum husk_proto_side from, const struct husk_frame *f,
                         struct husk_error *err)
{
	const struct type_info *ti = &types[f->type];
	uint16_t count[HUSK_TAG_MAX + 1] = {0};
	uint64_t seen = 0;
	uint32_t fd = 0;
	struct husk_tlv_iter it;
	struct husk_tlv t;
	int rc;

	if (ti->raw)
		return 0;
	husk_tlv_iter_init(&it, f->payload, f->len);
	while ((rc = husk_tlv_next(&it, &t, err)) > 0) {
		const struct tag_info *tag = tag_info(t.tag);
		if (!tag)
			continue; /* a newer minor version's tag */
		if ((rc = check_value(tag, &t, err)) < 0)
			return rc;
		if (tag->repeat == 0 && count[t.tag] > 0)
			return husk_err(err, EPROTO, "%s: %s appears twice",
			                ti->name, tag->name);
		if (tag->repeat > 0 && count[t.tag] >= tag->repeat)
			return husk_err(err, EMSGSIZE,
			                "%s: more than %u %s values", ti->name,
			                tag->repeat, tag->name);
		count[t.tag]++;
		seen |= T(t.tag);
		if (t.tag == HUSK_TAG_FD)
			fd = get32(t.value);
	}
	if (rc < 0)
		return rc;
	if (!(f->flags & HUSK_FRAME_REPLY) && (ti->required & ~seen)) {
		unsigned miss = (unsigned)__builtin_ctzll(ti->required & ~seen);
		return husk_err(err, EPROTO, "%s without %s", ti->name,
		                tags[miss].name);
	}
	/* CLOSE comes from the side that writes fd, CREDIT from the other;
	 * the host writes only stdin. */
	if (f->type == HUSK_FRAME_CLOSE || f->type == HUSK_FRAME_CREDIT) {
		bool writer_is_host = fd == HUSK_FD_STDIN;
		bool sender_writes = f->type == HUSK_FRAME_CLOSE;
		if (writer_is_host != ((from == H) == sender_writes))
			return husk_err(err, EPROTO,
			                "%s of fd %" PRIu32 " from the %s",
			                ti->name, fd, side_name(from));
	}
	return 0;
}

int husk_proto_check_frame(enum husk_proto_side from,
                           const struct husk_frame *f, struct husk_error *err)
{
	int rc = check_hdr(from, f, err);
	return rc < 0 ? rc : check_payload(from, f, err);
}

/* ---- TLVs ---- */

void husk_tlv_iter_init(struct husk_tlv_iter *it, const uint8_t *payload,
                        size_t len)
{
	*it = (struct husk_tlv_iter){.p = payload, .len = len};
}

int husk_tlv_next(struct husk_tlv_iter *it, struct husk_tlv *tlv,
                  struct husk_error *err)
{
	size_t left = it->len - it->off;

	if (it->failed)
		return husk_err(err, it->failed, "TLV walk failed earlier");
	if (left == 0)
		return 0;
	if (left < HUSK_PROTO_TLV_HDR) {
		it->failed = EPROTO;
		return husk_err(err, EPROTO,
		                "truncated TLV header at offset %zu", it->off);
	}
	tlv->tag = get16(it->p + it->off);
	tlv->len = get32(it->p + it->off + 2);
	tlv->value = it->p + it->off + HUSK_PROTO_TLV_HDR;
	if (tlv->tag == 0) {
		it->failed = EPROTO;
		return husk_err(err, EPROTO, "TLV tag 0 at offset %zu",
		                it->off);
	}
	if (tlv->len > left - HUSK_PROTO_TLV_HDR) {
		it->failed = EPROTO;
		return husk_err(err, EPROTO,
		                "TLV %s at offset %zu: length %" PRIu32
		                " runs past the payload end",
		                husk_proto_tag_name(tlv->tag), it->off,
		                tlv->len);
	}
	it->off += HUSK_PROTO_TLV_HDR + tlv->len;
	return 1;
}

/* Checks t as a kind value and stores it in out (a uint32_t, uint64_t,
 * bool or struct husk_str). A tag this build does not know is held only to
 * the width of the kind asked for. */
static int get(const struct husk_tlv *t, enum husk_tlv_kind kind, void *out,
               struct husk_error *err)
{
	static const struct tag_info unknown[] = {
	    [HUSK_TLV_U32] = {"unknown tag", U32(0, UINT32_MAX)},
	    [HUSK_TLV_U64] = {"unknown tag", U64(0)},
	    [HUSK_TLV_BOOL] = {"unknown tag", BOOL},
	    [HUSK_TLV_STRING] = {"unknown tag", STR(0, UINT64_MAX)},
	};
	const struct tag_info *ti = tag_info(t->tag);
	int rc;

	if (ti && ti->kind != kind)
		return husk_err(err, EINVAL, "%s is a %s, not a %s", ti->name,
		                kind_names[ti->kind], kind_names[kind]);
	if ((rc = check_value(ti ? ti : &unknown[kind], t, err)) < 0)
		return rc;
	switch (kind) {
	case HUSK_TLV_U32: *(uint32_t *)out = get32(t->value); break;
	case HUSK_TLV_U64: *(uint64_t *)out = get64(t->value); break;
	case HUSK_TLV_BOOL: *(bool *)out = get32(t->value) != 0; break;
	case HUSK_TLV_STRING:
		*(struct husk_str *)out =
		    (struct husk_str){(const char *)t->value, t->len};
		break;
	case HUSK_TLV_UNKNOWN: break;
	}
	return 0;
}

int husk_tlv_u32(const struct husk_tlv *t, uint32_t *v, struct husk_error *err)
{
	return get(t, HUSK_TLV_U32, v, err);
}

int husk_tlv_u64(const struct husk_tlv *t, uint64_t *v, struct husk_error *err)
{
	return get(t, HUSK_TLV_U64, v, err);
}

int husk_tlv_bool(const struct husk_tlv *t, bool *v, struct husk_error *err)
{
	return get(t, HUSK_TLV_BOOL, v, err);
}

int husk_tlv_str(const struct husk_tlv *t, struct husk_str *s,
                 struct husk_error *err)
{
	return get(t, HUSK_TLV_STRING, s, err);
}

static int has_tlvs(const struct husk_frame *f, struct husk_error *err)
{
	if (!type_info(f->type) || types[f->type].raw)
		return husk_err(err, EINVAL, "%s frame has no TLVs",
		                husk_proto_type_name(f->type));
	return 0;
}

/* A single-valued tag: 1 and the value in out when present, 0 when absent.
 * The whole payload is walked, so a second occurrence is caught anywhere. */
static int frame_get(const struct husk_frame *f, unsigned tag,
                     enum husk_tlv_kind kind, void *out, struct husk_error *err)
{
	const struct tag_info *ti = tag_info(tag);
	struct husk_tlv_iter it;
	struct husk_tlv t, one;
	int rc, found = 0;

	if ((rc = has_tlvs(f, err)) < 0)
		return rc;
	if (ti && ti->repeat)
		return husk_err(err, EINVAL, "%s is repeated", ti->name);
	husk_tlv_iter_init(&it, f->payload, f->len);
	while ((rc = husk_tlv_next(&it, &t, err)) > 0) {
		if (t.tag != tag)
			continue;
		if (found++)
			return husk_err(err, EPROTO, "%s appears twice",
			                husk_proto_tag_name(tag));
		one = t;
	}
	if (rc == 0 && found)
		rc = get(&one, kind, out, err);
	return rc < 0 ? rc : found;
}

int husk_frame_u32(const struct husk_frame *f, unsigned tag, uint32_t *v,
                   struct husk_error *err)
{
	return frame_get(f, tag, HUSK_TLV_U32, v, err);
}

int husk_frame_u64(const struct husk_frame *f, unsigned tag, uint64_t *v,
                   struct husk_error *err)
{
	return frame_get(f, tag, HUSK_TLV_U64, v, err);
}

int husk_frame_bool(const struct husk_frame *f, unsigned tag, bool *v,
                    struct husk_error *err)
{
	return frame_get(f, tag, HUSK_TLV_BOOL, v, err);
}

int husk_frame_str(const struct husk_frame *f, unsigned tag, struct husk_str *v,
                   struct husk_error *err)
{
	return frame_get(f, tag, HUSK_TLV_STRING, v, err);
}

int husk_frame_str_buf(const struct husk_frame *f, unsigned tag, char *buf,
                       size_t cap, struct husk_error *err)
{
	struct husk_str s;
	int rc = husk_frame_str(f, tag, &s, err);

	if (rc > 0 && s.len >= cap)
		return husk_err(err, EMSGSIZE, "%s: %zu bytes, room for %zu",
		                husk_proto_tag_name(tag), s.len,
		                cap ? cap - 1 : 0);
	if (rc > 0) {
		memcpy(buf, s.ptr, s.len);
		buf[s.len] = '\0';
	}
	return rc;
}

/* Every value of tag, in order, into out[0, max). */
static int collect(const struct husk_frame *f, unsigned tag,
                   enum husk_tlv_kind kind, void *out, size_t max,
                   struct husk_error *err)
{
	struct husk_tlv_iter it;
	struct husk_tlv t;
	int rc, n = 0;

	if ((rc = has_tlvs(f, err)) < 0)
		return rc;
	husk_tlv_iter_init(&it, f->payload, f->len);
	while ((rc = husk_tlv_next(&it, &t, err)) > 0) {
		if (t.tag != tag)
			continue;
		if ((size_t)n >= max)
			return husk_err(err, EMSGSIZE,
			                "more than %zu %s values", max,
			                husk_proto_tag_name(tag));
		if ((rc = get(&t, kind,
		              kind == HUSK_TLV_STRING
		                  ? (void *)((struct husk_str *)out + n)
		                  : (void *)((uint32_t *)out + n),
		              err)) < 0)
			return rc;
		n++;
	}
	return rc < 0 ? rc : n;
}

int husk_frame_strv(const struct husk_frame *f, unsigned tag,
                    struct husk_str *out, size_t max, struct husk_error *err)
{
	return collect(f, tag, HUSK_TLV_STRING, out, max, err);
}

int husk_frame_u32v(const struct husk_frame *f, unsigned tag, uint32_t *out,
                    size_t max, struct husk_error *err)
{
	return collect(f, tag, HUSK_TLV_U32, out, max, err);
}

/* ---- encoder ---- */

void husk_proto_enc_init(struct husk_proto_enc *e, enum husk_proto_side self,
                         void *buf, size_t cap)
{
	*e = (struct husk_proto_enc){.buf = buf, .cap = cap, .self = self};
}

void husk_proto_enc_init_alloc(struct husk_proto_enc *e,
                               enum husk_proto_side self)
{
	*e = (struct husk_proto_enc){.self = self, .growable = true};
}

void husk_proto_enc_free(struct husk_proto_enc *e)
{
	if (e->growable) {
		free(e->buf);
		e->buf = NULL;
		e->cap = 0;
	}
	husk_proto_enc_reset(e);
}

void husk_proto_enc_reset(struct husk_proto_enc *e)
{
	e->len = e->frame = 0;
	e->open = false;
	e->error = 0;
}

/* The first failure in an open frame sticks until end. */
static int stick(struct husk_proto_enc *e, int rc)
{
	if (rc < 0 && e->open && !e->error)
		e->error = -rc;
	return rc;
}

/* What the peer's reader calls a protocol error is the caller's mistake
 * here. */
static int local(struct husk_error *err, int rc)
{
	if (rc != -EPROTO)
		return rc;
	if (err)
		err->code = EINVAL;
	return -EINVAL;
}

/* Room for hdr + n more bytes; n counts against the open frame's payload
 * when payload is set. hdr is small, so only n needs an overflow check. */
static int room(struct husk_proto_enc *e, size_t hdr, size_t n, bool payload,
                struct husk_error *err)
{
	size_t used = e->len - e->frame - HUSK_PROTO_HDR_SIZE, cap;
	uint8_t *p;

	if (payload && (n > HUSK_PROTO_MAX_PAYLOAD ||
	                hdr + n > HUSK_PROTO_MAX_PAYLOAD - used))
		return husk_err(err, EMSGSIZE,
		                "frame payload would exceed %u bytes",
		                HUSK_PROTO_MAX_PAYLOAD);
	if (hdr + n <= e->cap - e->len)
		return 0;
	if (!e->growable)
		return husk_err(err, ENOBUFS,
		                "encoder buffer of %zu bytes is full", e->cap);
	for (cap = e->cap ? e->cap : 4096; cap - e->len < hdr + n;)
		cap *= 2;
	if (!(p = realloc(e->buf, cap)))
		return husk_err(err, ENOMEM, "encoder buffer of %zu bytes",
		                cap);
	e->buf = p;
	e->cap = cap;
	return 0;
}

static int usable(struct husk_proto_enc *e, bool raw, struct husk_error *err)
{
	unsigned type;

	if (!e->open)
		return husk_err(err, EINVAL, "encoder: no open frame");
	if (e->error)
		return -e->error;
	type = get16(e->buf + e->frame + 4);
	if (types[type].raw != raw)
		return stick(
		    e,
		    husk_err(err, EINVAL, "%s frame takes %s", types[type].name,
		             raw ? "TLVs, not data" : "data, not TLVs"));
	return 0;
}

int husk_proto_enc_begin(struct husk_proto_enc *e, unsigned type,
                         unsigned flags, uint32_t stream,
                         struct husk_error *err)
{
	struct husk_frame f = {(uint16_t)type, (uint16_t)flags, stream, 0, 0};
	int rc;

	if (e->open)
		return stick(e, husk_err(err, EINVAL,
		                         "encoder: begin inside "
		                         "an open frame"));
	e->open = true;
	e->error = 0;
	e->frame = e->len;
	if (type > UINT16_MAX || flags > UINT16_MAX)
		return stick(e, husk_err(err, EINVAL, "frame type %u flags %#x",
		                         type, flags));
	if ((rc = check_hdr(e->self, &f, err)) < 0 ||
	    (rc = room(e, HUSK_PROTO_HDR_SIZE, 0, false, err)) < 0)
		return stick(e, local(err, rc));
	put32(e->buf + e->len, 0);
	put16(e->buf + e->len + 4, f.type);
	put16(e->buf + e->len + 6, f.flags);
	put32(e->buf + e->len + 8, f.stream);
	e->len += HUSK_PROTO_HDR_SIZE;
	return 0;
}

static int enc_tlv(struct husk_proto_enc *e, unsigned tag,
                   enum husk_tlv_kind kind, const void *v, size_t n,
                   struct husk_error *err)
{
	const struct tag_info *ti = tag_info(tag);
	int rc;

	if ((rc = usable(e, false, err)) < 0)
		return rc;
	if (!ti || ti->kind != kind)
		return stick(e, husk_err(err, EINVAL, "tag %u (%s) is not a %s",
		                         tag, husk_proto_tag_name(tag),
		                         kind_names[kind]));
	if (kind == HUSK_TLV_STRING && n && memchr(v, '\0', n))
		return stick(e, husk_err(err, EINVAL, "%s: NUL inside a string",
		                         ti->name));
	if ((rc = room(e, HUSK_PROTO_TLV_HDR, n, true, err)) < 0)
		return stick(e, rc);
	put16(e->buf + e->len, (uint16_t)tag);
	put32(e->buf + e->len + 2, (uint32_t)n);
	if (n)
		memcpy(e->buf + e->len + HUSK_PROTO_TLV_HDR, v, n);
	e->len += HUSK_PROTO_TLV_HDR + n;
	return 0;
}

static int enc_int(struct husk_proto_enc *e, unsigned tag,
                   enum husk_tlv_kind kind, uint64_t v, struct husk_error *err)
{
	uint8_t b[8];

	put32(b, (uint32_t)v);
	put32(b + 4, (uint32_t)(v >> 32));
	return enc_tlv(e, tag, kind, b, kind == HUSK_TLV_U64 ? 8 : 4, err);
}

int husk_proto_enc_u32(struct husk_proto_enc *e, unsigned tag, uint32_t v,
                       struct husk_error *err)
{
	return enc_int(e, tag, HUSK_TLV_U32, v, err);
}

int husk_proto_enc_u64(struct husk_proto_enc *e, unsigned tag, uint64_t v,
                       struct husk_error *err)
{
	return enc_int(e, tag, HUSK_TLV_U64, v, err);
}

int husk_proto_enc_bool(struct husk_proto_enc *e, unsigned tag, bool v,
                        struct husk_error *err)
{
	return enc_int(e, tag, HUSK_TLV_BOOL, v, err);
}

int husk_proto_enc_strn(struct husk_proto_enc *e, unsigned tag, const char *s,
                        size_t n, struct husk_error *err)
{
	if (!s && n)
		return stick(e, husk_err(err, EINVAL, "NULL string"));
	return enc_tlv(e, tag, HUSK_TLV_STRING, s, n, err);
}

int husk_proto_enc_str(struct husk_proto_enc *e, unsigned tag, const char *s,
                       struct husk_error *err)
{
	if (!s)
		return stick(e, husk_err(err, EINVAL, "NULL string"));
	return enc_tlv(e, tag, HUSK_TLV_STRING, s, strlen(s), err);
}

int husk_proto_enc_strv(struct husk_proto_enc *e, unsigned tag,
                        const char *const *v, struct husk_error *err)
{
	int rc = 0;

	if (!v)
		return stick(e, husk_err(err, EINVAL, "NULL string vector"));
	for (; *v && rc == 0; v++)
		rc = husk_proto_enc_str(e, tag, *v, err);
	return rc;
}

int husk_proto_enc_data(struct husk_proto_enc *e, const void *data, size_t n,
                        struct husk_error *err)
{
	int rc;

	if ((rc = usable(e, true, err)) < 0)
		return rc;
	if ((rc = room(e, 0, n, true, err)) < 0)
		return stick(e, rc);
	if (n)
		memcpy(e->buf + e->len, data, n);
	e->len += n;
	return 0;
}

int husk_proto_enc_end(struct husk_proto_enc *e, struct husk_error *err)
{
	struct husk_frame f;
	int rc;

	if (!e->open)
		return husk_err(err, EINVAL, "encoder: end without begin");
	e->open = false;
	if (e->error) {
		rc = -e->error;
		e->error = 0;
		e->len = e->frame;
		return rc;
	}
	f.len = (uint32_t)(e->len - e->frame - HUSK_PROTO_HDR_SIZE);
	put32(e->buf + e->frame, f.len);
	f.type = get16(e->buf + e->frame + 4);
	f.flags = get16(e->buf + e->frame + 6);
	f.stream = get32(e->buf + e->frame + 8);
	f.payload = e->buf + e->frame + HUSK_PROTO_HDR_SIZE;
	if ((rc = check_payload(e->self, &f, err)) < 0) {
		e->len = e->frame;
		return local(err, rc);
	}
	return 0;
}

int husk_proto_enc_hello(struct husk_proto_enc *e, const char *name,
                         struct husk_error *err)
{
	husk_proto_enc_begin(e, HUSK_FRAME_HELLO, 0, 0, err);
	husk_proto_enc_u32(e, HUSK_TAG_VERSION_MAJOR, HUSK_PROTO_VERSION_MAJOR,
	                   err);
	husk_proto_enc_u32(e, HUSK_TAG_VERSION_MINOR, HUSK_PROTO_VERSION_MINOR,
	                   err);
	if (name)
		husk_proto_enc_str(e, HUSK_TAG_PEER_NAME, name, err);
	return husk_proto_enc_end(e, err);
}

/* ---- reader ---- */

void husk_proto_reader_init(struct husk_proto_reader *r,
                            enum husk_proto_side self)
{
	*r = (struct husk_proto_reader){.self = self};
}

void husk_proto_reader_free(struct husk_proto_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->cap = 0;
}

static enum husk_proto_side peer_of(const struct husk_proto_reader *r)
{
	return r->self == H ? A : H;
}

/* Records why the session ends; every later call repeats it. */
static int fail(struct husk_proto_reader *r, int rc,
                const struct husk_error *why, struct husk_error *err)
{
	r->failed = rc < 0 ? -rc : EPROTO;
	husk_err(&r->first, r->failed, "%s frame %" PRIu64 ": %s",
	         side_name(peer_of(r)), r->frames + 1, why->msg);
	if (err)
		*err = r->first;
	return -r->failed;
}

/* The header is complete: judge it before any payload is buffered, so a
 * hostile length costs nothing. */
static int start_frame(struct husk_proto_reader *r, struct husk_error *err)
{
	struct husk_frame *f = &r->cur;
	size_t cap;
	uint8_t *p;
	int rc;

	f->len = get32(r->hdr);
	f->type = get16(r->hdr + 4);
	f->flags = get16(r->hdr + 6);
	f->stream = get32(r->hdr + 8);
	r->have = 0;
	if ((rc = check_hdr(peer_of(r), f, err)) < 0)
		return rc;
	if (!r->hello && f->type != HUSK_FRAME_HELLO)
		return husk_err(err, EPROTO, "%s before HELLO",
		                types[f->type].name);
	if (r->hello && f->type == HUSK_FRAME_HELLO)
		return husk_err(err, EPROTO, "a second HELLO");
	if (f->len <= r->cap)
		return 0;
	for (cap = r->cap ? r->cap : 4096; cap < f->len;)
		cap *= 2;
	if (cap > HUSK_PROTO_MAX_PAYLOAD)
		cap = HUSK_PROTO_MAX_PAYLOAD;
	if (!(p = realloc(r->buf, cap)))
		return husk_err(err, ENOMEM, "frame buffer of %zu bytes", cap);
	r->buf = p;
	r->cap = cap;
	return 0;
}

static int take_hello(struct husk_proto_reader *r, struct husk_error *err)
{
	uint32_t major = 0, minor = 0, ours = HUSK_PROTO_VERSION_MINOR;
	int rc;

	if ((rc = husk_frame_u32(&r->cur, HUSK_TAG_VERSION_MAJOR, &major,
	                         err)) < 0 ||
	    (rc = husk_frame_u32(&r->cur, HUSK_TAG_VERSION_MINOR, &minor,
	                         err)) < 0)
		return rc;
	if (major != HUSK_PROTO_VERSION_MAJOR)
		return husk_err(err, EPROTONOSUPPORT,
		                "peer speaks protocol %" PRIu32 ".%" PRIu32
		                ", this build %u.%u",
		                major, minor, HUSK_PROTO_VERSION_MAJOR,
		                HUSK_PROTO_VERSION_MINOR);
	r->hello = true;
	r->peer_major = major;
	r->peer_minor = minor;
	r->minor = minor < ours ? minor : ours;
	return 0;
}

int husk_proto_reader_feed(struct husk_proto_reader *r, const void *data,
                           size_t len, size_t *used, struct husk_frame *frame,
                           struct husk_error *err)
{
	const uint8_t *in = data;
	struct husk_error why = {0};
	size_t pos = 0, n;
	int rc;

	*used = 0;
	if (r->failed) {
		if (err)
			*err = r->first;
		return -r->failed;
	}
	if (r->hdr_have < HUSK_PROTO_HDR_SIZE) {
		n = HUSK_PROTO_HDR_SIZE - r->hdr_have;
		n = n < len ? n : len;
		if (n)
			memcpy(r->hdr + r->hdr_have, in, n);
		r->hdr_have += n;
		*used = pos = n;
		if (r->hdr_have < HUSK_PROTO_HDR_SIZE)
			return 0;
		if ((rc = start_frame(r, &why)) < 0)
			return fail(r, rc, &why, err);
	}
	n = r->cur.len - r->have;
	n = n < len - pos ? n : len - pos;
	if (n)
		memcpy(r->buf + r->have, in + pos, n);
	r->have += n;
	*used = pos + n;
	if (r->have < r->cur.len)
		return 0;
	r->hdr_have = 0;
	r->cur.payload = r->cur.len ? r->buf : (const uint8_t *)"";
	if ((rc = check_payload(peer_of(r), &r->cur, &why)) < 0 ||
	    (r->cur.type == HUSK_FRAME_HELLO && (rc = take_hello(r, &why)) < 0))
		return fail(r, rc, &why, err);
	r->frames++;
	*frame = r->cur;
	return 1;
}

int husk_proto_reader_eof(struct husk_proto_reader *r, struct husk_error *err)
{
	struct husk_error why = {0};

	if (r->failed) {
		if (err)
			*err = r->first;
		return -r->failed;
	}
	if (r->hdr_have == 0)
		return 0;
	return fail(r,
	            husk_err(&why, EPROTO,
	                     "channel closed inside a frame (%zu header, %zu "
	                     "payload bytes)",
	                     r->hdr_have, r->have),
	            &why, err);
}
