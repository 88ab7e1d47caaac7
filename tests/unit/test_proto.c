/* The host <-> agent codec (include/husk/proto.h): round trips of every
 * message, frames cut at every byte, and the hostile frames a compromised
 * peer could send, each of which must end the session with an error. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "husk/proto.h"

#define H HUSK_SIDE_HOST
#define A HUSK_SIDE_AGENT

/* ---- helpers ---- */

/* Frames a reader delivered, with their payloads copied out (a payload
 * lives only until the next feed). */
struct rx {
	size_t n;
	struct husk_frame f[16];
	uint8_t *copy[16];
};

static void rx_free(struct rx *rx)
{
	for (size_t i = 0; i < rx->n; i++)
		free(rx->copy[i]);
	rx->n = 0;
}

/* Feeds p[0, n) in chunks of `chunk` bytes (0: all at once). */
static int feed(struct husk_proto_reader *r, const uint8_t *p, size_t n,
                size_t chunk, struct rx *rx, struct husk_error *err)
{
	size_t off = 0;

	while (off < n) {
		size_t len = chunk && chunk < n - off ? chunk : n - off;
		size_t used = 0;
		struct husk_frame f;
		int rc =
		    husk_proto_reader_feed(r, p + off, len, &used, &f, err);
		if (rc < 0)
			return rc;
		assert_true(used <= len);
		assert_true(rc == 1 || used == len);
		off += used;
		if (rc == 1) {
			assert_true(rx->n < 16);
			rx->copy[rx->n] = malloc(f.len + 1);
			assert_non_null(rx->copy[rx->n]);
			memcpy(rx->copy[rx->n], f.payload, f.len);
			f.payload = rx->copy[rx->n];
			rx->f[rx->n++] = f;
		}
	}
	return 0;
}

/* A reader for `self` that has already taken the peer's HELLO. */
static void reader_after_hello(struct husk_proto_reader *r,
                               enum husk_proto_side self)
{
	struct husk_proto_enc e;
	struct husk_error err = {0};
	struct rx rx = {0};
	uint8_t buf[128];

	husk_proto_reader_init(r, self);
	husk_proto_enc_init(&e, self == H ? A : H, buf, sizeof(buf));
	assert_int_equal(husk_proto_enc_hello(&e, "peer", &err), 0);
	assert_int_equal(feed(r, buf, e.len, 0, &rx, &err), 0);
	assert_int_equal(rx.n, 1);
	rx_free(&rx);
}

/* Hand-made frames, for what the encoder refuses to write. */
struct raw {
	uint8_t b[512];
	size_t n, start;
};

static void raw_put(struct raw *w, const void *p, size_t n)
{
	assert_true(w->n + n <= sizeof(w->b));
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

static void raw_le(struct raw *w, uint64_t v, size_t width)
{
	for (size_t i = 0; i < width; i++) {
		uint8_t byte = (uint8_t)(v >> (8 * i));
		raw_put(w, &byte, 1);
	}
}

static void raw_begin(struct raw *w, uint16_t type, uint16_t flags,
                      uint32_t stream)
{
	w->start = w->n;
	raw_le(w, 0, 4);
	raw_le(w, type, 2);
	raw_le(w, flags, 2);
	raw_le(w, stream, 4);
}

static void raw_tlv(struct raw *w, uint16_t tag, const void *v, size_t n)
{
	raw_le(w, tag, 2);
	raw_le(w, n, 4);
	raw_put(w, v, n);
}

static void raw_u32(struct raw *w, uint16_t tag, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
	                (uint8_t)(v >> 24)};
	raw_tlv(w, tag, b, 4);
}

/* Patches the length field to the bytes written since raw_begin. */
static void raw_end(struct raw *w)
{
	uint32_t len = (uint32_t)(w->n - w->start - HUSK_PROTO_HDR_SIZE);
	for (int i = 0; i < 4; i++)
		w->b[w->start + i] = (uint8_t)(len >> (8 * i));
}

/* The reader for `self`, past HELLO, must refuse the frame with code and a
 * message containing msg, and then refuse everything. */
static void expect_reject(enum husk_proto_side self, const struct raw *w,
                          int code, const char *msg)
{
	struct husk_proto_reader r;
	struct husk_error err = {0}, again = {0};
	struct rx rx = {0};
	struct raw ok = {0};

	reader_after_hello(&r, self);
	assert_int_equal(feed(&r, w->b, w->n, 0, &rx, &err), -code);
	assert_int_equal(rx.n, 0);
	assert_int_equal(err.code, code);
	if (!strstr(err.msg, msg))
		fail_msg("message '%s' lacks '%s'", err.msg, msg);
	/* A session that saw a bad frame never recovers. */
	raw_begin(&ok, HUSK_FRAME_CLOSE, 0, 1);
	raw_u32(&ok, HUSK_TAG_FD, self == A ? HUSK_FD_STDIN : HUSK_FD_STDOUT);
	raw_end(&ok);
	assert_int_equal(feed(&r, ok.b, ok.n, 0, &rx, &again), -code);
	assert_string_equal(again.msg, err.msg);
	assert_int_equal(husk_proto_reader_eof(&r, &again), -code);
	husk_proto_reader_free(&r);
}

static void assert_str(struct husk_str s, const char *want)
{
	assert_int_equal(s.len, strlen(want));
	assert_memory_equal(s.ptr, want, s.len);
}

/* ---- HELLO ---- */

static void hello_negotiates_version(void **state)
{
	struct husk_proto_reader r;
	struct husk_proto_enc e;
	struct husk_error err = {0};
	struct husk_str name;
	struct rx rx = {0};

	husk_proto_enc_init_alloc(&e, A);
	assert_int_equal(husk_proto_enc_hello(&e, "husk-agent 0.1", &err), 0);
	husk_proto_reader_init(&r, H);
	assert_int_equal(feed(&r, e.buf, e.len, 0, &rx, &err), 0);
	assert_int_equal(rx.n, 1);
	assert_int_equal(rx.f[0].type, HUSK_FRAME_HELLO);
	assert_int_equal(rx.f[0].stream, 0);
	assert_true(r.hello);
	assert_int_equal(r.peer_major, HUSK_PROTO_VERSION);
	assert_int_equal(r.minor, HUSK_PROTO_VERSION_MINOR);
	assert_int_equal(
	    husk_frame_str(&rx.f[0], HUSK_TAG_PEER_NAME, &name, &err), 1);
	assert_str(name, "husk-agent 0.1");
	assert_int_equal(husk_proto_reader_eof(&r, &err), 0);
	rx_free(&rx);
	husk_proto_reader_free(&r);
	husk_proto_enc_free(&e);
}

static void hello_newer_minor_speaks_ours(void **state)
{
	struct husk_proto_reader r;
	struct husk_error err = {0};
	struct rx rx = {0};
	struct raw w = {0};

	raw_begin(&w, HUSK_FRAME_HELLO, 0, 0);
	raw_u32(&w, HUSK_TAG_VERSION_MAJOR, HUSK_PROTO_VERSION);
	raw_u32(&w, HUSK_TAG_VERSION_MINOR, 7);
	raw_tlv(&w, 999, "future", 6); /* a tag from minor 7: skipped */
	raw_end(&w);
	husk_proto_reader_init(&r, A);
	assert_int_equal(feed(&r, w.b, w.n, 0, &rx, &err), 0);
	assert_int_equal(r.peer_minor, 7);
	assert_int_equal(r.minor, HUSK_PROTO_VERSION_MINOR);
	rx_free(&rx);
	husk_proto_reader_free(&r);
}

static void hello_unsupported_major(void **state)
{
	struct husk_proto_reader r;
	struct husk_error err = {0};
	struct rx rx = {0};
	struct raw w = {0};

	raw_begin(&w, HUSK_FRAME_HELLO, 0, 0);
	raw_u32(&w, HUSK_TAG_VERSION_MAJOR, HUSK_PROTO_VERSION + 1);
	raw_u32(&w, HUSK_TAG_VERSION_MINOR, 0);
	raw_end(&w);
	husk_proto_reader_init(&r, H);
	assert_int_equal(feed(&r, w.b, w.n, 0, &rx, &err), -EPROTONOSUPPORT);
	assert_non_null(strstr(err.msg, "protocol 2.0"));
	assert_false(r.hello);
	husk_proto_reader_free(&r);
}

static void frame_before_hello(void **state)
{
	struct husk_proto_reader r;
	struct husk_error err = {0};
	struct rx rx = {0};
	struct raw w = {0};

	raw_begin(&w, HUSK_FRAME_WAIT, 0, 1);
	raw_end(&w);
	husk_proto_reader_init(&r, A);
	assert_int_equal(feed(&r, w.b, w.n, 0, &rx, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "WAIT before HELLO"));
	husk_proto_reader_free(&r);
}

static void second_hello(void **state)
{
	struct raw w = {0};

	raw_begin(&w, HUSK_FRAME_HELLO, 0, 0);
	raw_u32(&w, HUSK_TAG_VERSION_MAJOR, HUSK_PROTO_VERSION);
	raw_u32(&w, HUSK_TAG_VERSION_MINOR, 0);
	raw_end(&w);
	expect_reject(A, &w, EPROTO, "second HELLO");
}

/* ---- round trips ---- */

static void create_round_trip(void **state)
{
	static const char *const argv[] = {"/bin/sh", "-c", "echo hi; exit 3",
	                                   "", NULL};
	static const char *const env[] = {"PATH=/usr/bin:/bin", "TERM=xterm",
	                                  NULL};
	struct husk_proto_reader r;
	struct husk_proto_enc e;
	struct husk_error err = {0};
	struct husk_str sv[8], s;
	uint32_t u, groups[4];
	uint64_t u64;
	bool b;
	char host[65];
	struct rx rx = {0};

	husk_proto_enc_init_alloc(&e, H);
	husk_proto_enc_begin(&e, HUSK_FRAME_CREATE, 0, 7, &err);
	husk_proto_enc_str(&e, HUSK_TAG_CONTAINER_ID, "c0ffee", &err);
	husk_proto_enc_str(&e, HUSK_TAG_ROOT_DEVICE, "/dev/vdb", &err);
	husk_proto_enc_bool(&e, HUSK_TAG_READONLY_ROOT, true, &err);
	husk_proto_enc_strv(&e, HUSK_TAG_ARGV, argv, &err);
	husk_proto_enc_strv(&e, HUSK_TAG_ENV, env, &err);
	husk_proto_enc_str(&e, HUSK_TAG_CWD, "/work", &err);
	husk_proto_enc_str(&e, HUSK_TAG_HOSTNAME, "box", &err);
	husk_proto_enc_u32(&e, HUSK_TAG_UID, 1000, &err);
	husk_proto_enc_u32(&e, HUSK_TAG_GID, 1000, &err);
	husk_proto_enc_u32(&e, HUSK_TAG_GROUP, 10, &err);
	husk_proto_enc_u32(&e, HUSK_TAG_GROUP, 4294967294u, &err);
	husk_proto_enc_bool(&e, HUSK_TAG_TTY, true, &err);
	husk_proto_enc_bool(&e, HUSK_TAG_STDIN, false, &err);
	husk_proto_enc_u32(&e, HUSK_TAG_ROWS, 24, &err);
	husk_proto_enc_u32(&e, HUSK_TAG_COLS, 80, &err);
	husk_proto_enc_u64(&e, HUSK_TAG_MEMORY_LIMIT, 64ull << 30, &err);
	husk_proto_enc_u32(&e, HUSK_TAG_CPU_MILLIS, 1500, &err);
	husk_proto_enc_u64(&e, HUSK_TAG_PIDS_LIMIT, 512, &err);
	assert_int_equal(husk_proto_enc_end(&e, &err), 0);

	reader_after_hello(&r, A);
	assert_int_equal(feed(&r, e.buf, e.len, 0, &rx, &err), 0);
	assert_int_equal(rx.n, 1);
	const struct husk_frame *f = &rx.f[0];
	assert_int_equal(f->type, HUSK_FRAME_CREATE);
	assert_int_equal(f->flags, 0);
	assert_int_equal(f->stream, 7);
	assert_int_equal(f->len, e.len - HUSK_PROTO_HDR_SIZE);

	assert_int_equal(husk_frame_str(f, HUSK_TAG_CONTAINER_ID, &s, &err), 1);
	assert_str(s, "c0ffee");
	assert_int_equal(husk_frame_str(f, HUSK_TAG_ROOT_DEVICE, &s, &err), 1);
	assert_str(s, "/dev/vdb");
	assert_int_equal(husk_frame_strv(f, HUSK_TAG_ARGV, sv, 8, &err), 4);
	for (int i = 0; i < 4; i++)
		assert_str(sv[i], argv[i]);
	assert_int_equal(husk_frame_strv(f, HUSK_TAG_ENV, sv, 8, &err), 2);
	assert_str(sv[0], env[0]);
	assert_str(sv[1], env[1]);
	assert_int_equal(husk_frame_str(f, HUSK_TAG_CWD, &s, &err), 1);
	assert_str(s, "/work");
	assert_int_equal(
	    husk_frame_str_buf(f, HUSK_TAG_HOSTNAME, host, sizeof(host), &err),
	    1);
	assert_string_equal(host, "box");
	assert_int_equal(husk_frame_u32(f, HUSK_TAG_UID, &u, &err), 1);
	assert_int_equal(u, 1000);
	assert_int_equal(husk_frame_u32(f, HUSK_TAG_GID, &u, &err), 1);
	assert_int_equal(u, 1000);
	assert_int_equal(husk_frame_u32v(f, HUSK_TAG_GROUP, groups, 4, &err),
	                 2);
	assert_int_equal(groups[0], 10);
	assert_int_equal(groups[1], 4294967294u);
	assert_int_equal(husk_frame_bool(f, HUSK_TAG_TTY, &b, &err), 1);
	assert_true(b);
	assert_int_equal(husk_frame_bool(f, HUSK_TAG_STDIN, &b, &err), 1);
	assert_false(b);
	assert_int_equal(husk_frame_bool(f, HUSK_TAG_READONLY_ROOT, &b, &err),
	                 1);
	assert_true(b);
	assert_int_equal(husk_frame_u32(f, HUSK_TAG_ROWS, &u, &err), 1);
	assert_int_equal(u, 24);
	assert_int_equal(husk_frame_u32(f, HUSK_TAG_COLS, &u, &err), 1);
	assert_int_equal(u, 80);
	assert_int_equal(husk_frame_u64(f, HUSK_TAG_MEMORY_LIMIT, &u64, &err),
	                 1);
	assert_true(u64 == 64ull << 30);
	assert_int_equal(husk_frame_u32(f, HUSK_TAG_CPU_MILLIS, &u, &err), 1);
	assert_int_equal(u, 1500);
	assert_int_equal(husk_frame_u64(f, HUSK_TAG_PIDS_LIMIT, &u64, &err), 1);
	assert_true(u64 == 512);
	/* Absent: 0, and the output untouched. */
	u = 99;
	assert_int_equal(husk_frame_u32(f, HUSK_TAG_SIGNAL, &u, &err), 0);
	assert_int_equal(u, 99);
	assert_int_equal(husk_frame_strv(f, HUSK_TAG_ARGV, sv, 3, &err),
	                 -EMSGSIZE);
	assert_int_equal(husk_frame_str_buf(f, HUSK_TAG_CWD, host, 5, &err),
	                 -EMSGSIZE);
	rx_free(&rx);
	husk_proto_reader_free(&r);
	husk_proto_enc_free(&e);
}

/* One frame of each kind either side sends, with the tags it needs. */
static void encode_sample(struct husk_proto_enc *e, enum husk_proto_side from,
                          unsigned type, unsigned flags, uint32_t stream)
{
	static const char *const argv[] = {"true", NULL};
	struct husk_error err = {0};

	husk_proto_enc_begin(e, type, flags, stream, &err);
	switch (flags ? 0 : type) {
	case 0: /* replies */
		if (type == HUSK_FRAME_START || type == HUSK_FRAME_EXEC)
			husk_proto_enc_u32(e, HUSK_TAG_PID, 42, &err);
		if (type == HUSK_FRAME_STATS) {
			husk_proto_enc_u64(e, HUSK_TAG_MEMORY_USAGE, 1 << 20,
			                   &err);
			husk_proto_enc_u64(e, HUSK_TAG_CPU_USAGE_NS, 12345,
			                   &err);
			husk_proto_enc_u64(e, HUSK_TAG_PIDS_CURRENT, 3, &err);
		}
		break;
	case HUSK_FRAME_ERROR:
		husk_proto_enc_u32(e, HUSK_TAG_ERRNO, ENOENT, &err);
		husk_proto_enc_str(e, HUSK_TAG_MESSAGE, "no such file", &err);
		husk_proto_enc_u32(e, HUSK_TAG_REQUEST, HUSK_FRAME_EXEC, &err);
		break;
	case HUSK_FRAME_CREATE:
		husk_proto_enc_str(e, HUSK_TAG_ROOT_DEVICE, "/dev/vdb", &err);
		/* fall through */
	case HUSK_FRAME_EXEC:
		husk_proto_enc_str(e, HUSK_TAG_CONTAINER_ID, "c1", &err);
		husk_proto_enc_strv(e, HUSK_TAG_ARGV, argv, &err);
		break;
	case HUSK_FRAME_SIGNAL:
		husk_proto_enc_u32(e, HUSK_TAG_SIGNAL, 9, &err);
		break;
	case HUSK_FRAME_RESIZE:
		husk_proto_enc_u32(e, HUSK_TAG_ROWS, 50, &err);
		husk_proto_enc_u32(e, HUSK_TAG_COLS, 132, &err);
		break;
	case HUSK_FRAME_EXIT:
		husk_proto_enc_u32(e, HUSK_TAG_EXIT_CODE, 137, &err);
		husk_proto_enc_u32(e, HUSK_TAG_EXIT_SIGNAL, 9, &err);
		husk_proto_enc_bool(e, HUSK_TAG_OOM_KILLED, true, &err);
		break;
	case HUSK_FRAME_SHUTDOWN:
		husk_proto_enc_u32(e, HUSK_TAG_TIMEOUT_MS, 3000, &err);
		break;
	case HUSK_FRAME_STDIN:
	case HUSK_FRAME_STDOUT:
	case HUSK_FRAME_STDERR:
		husk_proto_enc_data(e, "hi\n\0\xff", 5, &err);
		break;
	case HUSK_FRAME_CLOSE:
		husk_proto_enc_u32(e, HUSK_TAG_FD, from == H ? 0 : 2, &err);
		break;
	case HUSK_FRAME_CREDIT:
		husk_proto_enc_u32(e, HUSK_TAG_FD, from == H ? 1 : 0, &err);
		husk_proto_enc_u32(e, HUSK_TAG_CREDIT, 65536, &err);
		break;
	}
	if (husk_proto_enc_end(e, &err) < 0)
		fail_msg("encoding %s: %s", husk_proto_type_name(type),
		         err.msg);
}

static const struct sample {
	enum husk_proto_side from;
	unsigned type, flags;
	uint32_t stream;
} samples[] = {
    {H, HUSK_FRAME_CREATE, 0, 1},
    {A, HUSK_FRAME_CREATE, HUSK_FRAME_REPLY, 1},
    {H, HUSK_FRAME_START, 0, 1},
    {A, HUSK_FRAME_START, HUSK_FRAME_REPLY, 1},
    {H, HUSK_FRAME_EXEC, 0, 2},
    {A, HUSK_FRAME_EXEC, HUSK_FRAME_REPLY, 2},
    {H, HUSK_FRAME_SIGNAL, 0, 2},
    {A, HUSK_FRAME_SIGNAL, HUSK_FRAME_REPLY, 2},
    {H, HUSK_FRAME_RESIZE, 0, 1},
    {A, HUSK_FRAME_RESIZE, HUSK_FRAME_REPLY, 1},
    {H, HUSK_FRAME_WAIT, 0, 1},
    {A, HUSK_FRAME_EXIT, 0, 1},
    {H, HUSK_FRAME_STATS, 0, 0},
    {H, HUSK_FRAME_STATS, 0, 1},
    {A, HUSK_FRAME_STATS, HUSK_FRAME_REPLY, 1},
    {H, HUSK_FRAME_SHUTDOWN, 0, 0},
    {A, HUSK_FRAME_SHUTDOWN, HUSK_FRAME_REPLY, 0},
    {H, HUSK_FRAME_STDIN, 0, 1},
    {A, HUSK_FRAME_STDOUT, 0, 1},
    {A, HUSK_FRAME_STDERR, 0, 1},
    {H, HUSK_FRAME_CLOSE, 0, 1},
    {A, HUSK_FRAME_CLOSE, 0, 1},
    {H, HUSK_FRAME_CREDIT, 0, 1},
    {A, HUSK_FRAME_CREDIT, 0, 1},
    {H, HUSK_FRAME_ERROR, 0, 0},
    {A, HUSK_FRAME_ERROR, 0, 2},
};

static void every_type_round_trips(void **state)
{
	unsigned covered = 0;

	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		const struct sample *s = &samples[i];
		struct husk_proto_reader r;
		struct husk_proto_enc e;
		struct husk_error err = {0};
		struct rx rx = {0};

		husk_proto_enc_init_alloc(&e, s->from);
		encode_sample(&e, s->from, s->type, s->flags, s->stream);
		reader_after_hello(&r, s->from == H ? A : H);
		if (feed(&r, e.buf, e.len, 0, &rx, &err) < 0)
			fail_msg("decoding %s: %s",
			         husk_proto_type_name(s->type), err.msg);
		assert_int_equal(rx.n, 1);
		assert_int_equal(rx.f[0].type, s->type);
		assert_int_equal(rx.f[0].flags, s->flags);
		assert_int_equal(rx.f[0].stream, s->stream);
		assert_int_equal(rx.f[0].len, e.len - HUSK_PROTO_HDR_SIZE);
		assert_memory_equal(rx.f[0].payload,
		                    e.buf + HUSK_PROTO_HDR_SIZE, rx.f[0].len);
		assert_int_equal(
		    husk_proto_check_frame(s->from, &rx.f[0], &err), 0);
		covered |= 1u << s->type;
		rx_free(&rx);
		husk_proto_reader_free(&r);
		husk_proto_enc_free(&e);
	}
	/* HELLO has its own tests; every other type is here. */
	assert_int_equal(covered | 1u << HUSK_FRAME_HELLO,
	                 (2u << HUSK_FRAME_TYPE_MAX) - 2);
}

static void exit_and_stats_values(void **state)
{
	struct husk_proto_reader r;
	struct husk_proto_enc e;
	struct husk_error err = {0};
	struct rx rx = {0};
	uint32_t code = 0;
	uint64_t mem = 0;
	bool oom = false;

	husk_proto_enc_init_alloc(&e, A);
	encode_sample(&e, A, HUSK_FRAME_EXIT, 0, 5);
	encode_sample(&e, A, HUSK_FRAME_STATS, HUSK_FRAME_REPLY, 5);
	reader_after_hello(&r, H);
	assert_int_equal(feed(&r, e.buf, e.len, 0, &rx, &err), 0);
	assert_int_equal(rx.n, 2);
	assert_int_equal(
	    husk_frame_u32(&rx.f[0], HUSK_TAG_EXIT_CODE, &code, &err), 1);
	assert_int_equal(code, 137);
	assert_int_equal(
	    husk_frame_bool(&rx.f[0], HUSK_TAG_OOM_KILLED, &oom, &err), 1);
	assert_true(oom);
	assert_int_equal(
	    husk_frame_u64(&rx.f[1], HUSK_TAG_MEMORY_USAGE, &mem, &err), 1);
	assert_true(mem == 1 << 20);
	rx_free(&rx);
	husk_proto_reader_free(&r);
	husk_proto_enc_free(&e);
}

/* ---- chunking ---- */

/* A host's opening: HELLO, CREATE, START, STDIN, an empty STDIN, CLOSE. */
static void host_session(struct husk_proto_enc *e)
{
	struct husk_error err = {0};

	husk_proto_enc_init_alloc(e, H);
	assert_int_equal(husk_proto_enc_hello(e, "husk", &err), 0);
	encode_sample(e, H, HUSK_FRAME_CREATE, 0, 1);
	encode_sample(e, H, HUSK_FRAME_START, 0, 1);
	encode_sample(e, H, HUSK_FRAME_STDIN, 0, 1);
	husk_proto_enc_begin(e, HUSK_FRAME_STDIN, 0, 1, &err);
	assert_int_equal(husk_proto_enc_end(e, &err), 0);
	encode_sample(e, H, HUSK_FRAME_CLOSE, 0, 1);
}

static void check_session(const struct rx *rx)
{
	static const unsigned want[] = {HUSK_FRAME_HELLO, HUSK_FRAME_CREATE,
	                                HUSK_FRAME_START, HUSK_FRAME_STDIN,
	                                HUSK_FRAME_STDIN, HUSK_FRAME_CLOSE};
	assert_int_equal(rx->n, 6);
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(rx->f[i].type, want[i]);
	assert_int_equal(rx->f[3].len, 5);
	assert_memory_equal(rx->f[3].payload, "hi\n\0\xff", 5);
	assert_int_equal(rx->f[4].len, 0);
}

static void split_at_every_byte(void **state)
{
	struct husk_proto_enc e;
	struct husk_error err = {0};

	host_session(&e);
	/* Two feeds, cut at each position. */
	for (size_t cut = 0; cut <= e.len; cut++) {
		struct husk_proto_reader r;
		struct rx rx = {0};

		husk_proto_reader_init(&r, A);
		assert_int_equal(feed(&r, e.buf, cut, 0, &rx, &err), 0);
		assert_int_equal(
		    feed(&r, e.buf + cut, e.len - cut, 0, &rx, &err), 0);
		check_session(&rx);
		assert_int_equal(husk_proto_reader_eof(&r, &err), 0);
		rx_free(&rx);
		husk_proto_reader_free(&r);
	}
	/* Every chunk size, down to one byte at a time. */
	for (size_t chunk = 1; chunk <= 64; chunk++) {
		struct husk_proto_reader r;
		struct rx rx = {0};

		husk_proto_reader_init(&r, A);
		assert_int_equal(feed(&r, e.buf, e.len, chunk, &rx, &err), 0);
		check_session(&rx);
		rx_free(&rx);
		husk_proto_reader_free(&r);
	}
	husk_proto_enc_free(&e);
}

static void several_frames_in_one_feed(void **state)
{
	struct husk_proto_reader r;
	struct husk_proto_enc e;
	struct husk_error err = {0};
	struct husk_frame f;
	size_t off = 0, used, frames = 0;

	host_session(&e);
	husk_proto_reader_init(&r, A);
	/* One frame per call: the caller resubmits the rest. */
	while (off < e.len) {
		int rc = husk_proto_reader_feed(&r, e.buf + off, e.len - off,
		                                &used, &f, &err);
		assert_int_equal(rc, 1);
		off += used;
		frames++;
	}
	assert_int_equal(frames, 6);
	assert_int_equal(husk_proto_reader_feed(&r, NULL, 0, &used, &f, &err),
	                 0);
	assert_int_equal(used, 0);
	husk_proto_reader_free(&r);
	husk_proto_enc_free(&e);
}

static void eof_inside_a_frame(void **state)
{
	struct husk_proto_reader r;
	struct husk_proto_enc e;
	struct husk_error err = {0};
	struct rx rx = {0};

	host_session(&e);
	husk_proto_reader_init(&r, A);
	assert_int_equal(feed(&r, e.buf, e.len - 1, 0, &rx, &err), 0);
	assert_int_equal(husk_proto_reader_eof(&r, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "closed"));
	rx_free(&rx);
	husk_proto_reader_free(&r);
	husk_proto_enc_free(&e);
}

/* ---- hostile frames ---- */

static void length_above_max(void **state)
{
	struct husk_proto_reader r;
	struct husk_error err = {0};
	struct rx rx = {0};
	struct raw w = {0};

	raw_begin(&w, HUSK_FRAME_STDIN, 0, 1);
	w.b[3] = 0xff; /* 4 GiB - ... */
	expect_reject(A, &w, EMSGSIZE, "bytes");
	/* One past the limit, and nothing allocated for it. */
	w.n = 0;
	raw_begin(&w, HUSK_FRAME_STDIN, 0, 1);
	for (int i = 0; i < 4; i++)
		w.b[i] = (uint8_t)((HUSK_PROTO_MAX_PAYLOAD + 1) >> (8 * i));
	reader_after_hello(&r, A);
	assert_int_equal(feed(&r, w.b, w.n, 0, &rx, &err), -EMSGSIZE);
	assert_true(r.cap <= 4096);
	husk_proto_reader_free(&r);
}

static void unknown_type(void **state)
{
	const uint16_t bad[] = {0, HUSK_FRAME_TYPE_MAX + 1, 0xffff};

	for (size_t i = 0; i < 3; i++) {
		struct raw w = {0};
		raw_begin(&w, bad[i], 0, 1);
		raw_end(&w);
		expect_reject(A, &w, EPROTO, "unknown frame type");
	}
}

static void reserved_flags(void **state)
{
	for (unsigned bit = 1; bit < 16; bit++) {
		struct raw w = {0};
		raw_begin(&w, HUSK_FRAME_WAIT, (uint16_t)(1u << bit), 1);
		raw_end(&w);
		expect_reject(A, &w, EPROTO, "reserved flags");
	}
}

static void wrong_direction_or_stream(void **state)
{
	struct raw w = {0};

	raw_begin(&w, HUSK_FRAME_STDOUT, 0, 1); /* the agent's to send */
	raw_end(&w);
	expect_reject(A, &w, EPROTO, "STDOUT frame from the host");
	w.n = 0;
	raw_begin(&w, HUSK_FRAME_WAIT, HUSK_FRAME_REPLY, 1);
	raw_end(&w);
	expect_reject(H, &w, EPROTO, "WAIT reply");
	w.n = 0;
	raw_begin(&w, HUSK_FRAME_START, HUSK_FRAME_REPLY, 1); /* host reply */
	raw_end(&w);
	expect_reject(A, &w, EPROTO, "START reply from the host");
	w.n = 0;
	raw_begin(&w, HUSK_FRAME_START, 0, 1); /* agent request */
	raw_end(&w);
	expect_reject(H, &w, EPROTO, "START frame from the agent");
	w.n = 0;
	raw_begin(&w, HUSK_FRAME_STDIN, 0, 0);
	raw_end(&w);
	expect_reject(A, &w, EPROTO, "STDIN frame on stream 0");
	w.n = 0;
	raw_begin(&w, HUSK_FRAME_SHUTDOWN, 0, 3);
	raw_end(&w);
	expect_reject(A, &w, EPROTO, "SHUTDOWN frame on stream 3");
	w.n = 0;
	raw_begin(&w, HUSK_FRAME_CLOSE, 0, 1); /* the host closes stdout? */
	raw_u32(&w, HUSK_TAG_FD, HUSK_FD_STDOUT);
	raw_end(&w);
	expect_reject(A, &w, EPROTO, "CLOSE of fd 1 from the host");
	w.n = 0;
	raw_begin(&w, HUSK_FRAME_CREDIT, 0, 1); /* agent grants stdout */
	raw_u32(&w, HUSK_TAG_FD, HUSK_FD_STDOUT);
	raw_u32(&w, HUSK_TAG_CREDIT, 10);
	raw_end(&w);
	expect_reject(H, &w, EPROTO, "CREDIT of fd 1 from the agent");
}

static void truncated_tlv_header(void **state)
{
	struct raw w = {0};

	raw_begin(&w, HUSK_FRAME_SIGNAL, 0, 1);
	raw_u32(&w, HUSK_TAG_SIGNAL, 15);
	raw_put(&w, "\x13\x00\x04", 3); /* half a TLV header */
	raw_end(&w);
	expect_reject(A, &w, EPROTO, "truncated TLV header at offset 10");
}

static void tlv_length_past_payload(void **state)
{
	struct raw w = {0};

	raw_begin(&w, HUSK_FRAME_SIGNAL, 0, 1);
	raw_le(&w, HUSK_TAG_SIGNAL, 2);
	raw_le(&w, 5, 4); /* 5 bytes claimed, 4 present */
	raw_le(&w, 15, 4);
	raw_end(&w);
	expect_reject(A, &w, EPROTO, "past the payload end");
	w.n = 0;
	raw_begin(&w, HUSK_FRAME_SIGNAL, 0, 1);
	raw_le(&w, HUSK_TAG_SIGNAL, 2);
	raw_le(&w, 0xffffffff, 4); /* no wrap-around on 32 bits */
	raw_end(&w);
	expect_reject(A, &w, EPROTO, "past the payload end");
}

static void tag_zero(void **state)
{
	struct raw w = {0};

	raw_begin(&w, HUSK_FRAME_WAIT, 0, 1);
	raw_tlv(&w, 0, "", 0);
	raw_end(&w);
	expect_reject(A, &w, EPROTO, "tag 0");
}

static void nul_in_string(void **state)
{
	struct raw w = {0};

	raw_begin(&w, HUSK_FRAME_EXEC, 0, 2);
	raw_tlv(&w, HUSK_TAG_CONTAINER_ID, "c1", 2);
	raw_tlv(&w, HUSK_TAG_ARGV, "/bin/sh\0-x", 10);
	raw_end(&w);
	expect_reject(A, &w, EPROTO, "ARGV: NUL inside a string");
}

static void wrong_integer_width(void **state)
{
	struct raw w = {0};

	raw_begin(&w, HUSK_FRAME_SIGNAL, 0, 1);
	raw_tlv(&w, HUSK_TAG_SIGNAL, "\x09\x00\x00\x00\x00\x00\x00\x00", 8);
	raw_end(&w);
	expect_reject(A, &w, EPROTO, "SIGNAL: 8 bytes for a u32");
	w.n = 0;
	raw_begin(&w, HUSK_FRAME_SIGNAL, 0, 1);
	raw_tlv(&w, HUSK_TAG_SIGNAL, "\x09", 1);
	raw_end(&w);
	expect_reject(A, &w, EPROTO, "SIGNAL: 1 bytes for a u32");
	w.n = 0;
	raw_begin(&w, HUSK_FRAME_STATS, HUSK_FRAME_REPLY, 1);
	raw_u32(&w, HUSK_TAG_MEMORY_USAGE, 5);
	raw_end(&w);
	expect_reject(H, &w, EPROTO, "MEMORY_USAGE: 4 bytes for a u64");
}

static void value_out_of_range(void **state)
{
	struct raw w = {0};

	raw_begin(&w, HUSK_FRAME_SIGNAL, 0, 1);
	raw_u32(&w, HUSK_TAG_SIGNAL, 0);
	raw_end(&w);
	expect_reject(A, &w, EPROTO, "SIGNAL: value 0 outside [1, 64]");
	w.n = 0;
	raw_begin(&w, HUSK_FRAME_EXIT, 0, 1);
	raw_u32(&w, HUSK_TAG_EXIT_CODE, 0);
	raw_u32(&w, HUSK_TAG_OOM_KILLED, 2); /* bools are 0 or 1 */
	raw_end(&w);
	expect_reject(H, &w, EPROTO, "OOM_KILLED: value 2");
	w.n = 0;
	raw_begin(&w, HUSK_FRAME_START, 0, 1);
	raw_tlv(&w, HUSK_TAG_HOSTNAME, "", 0);
	raw_end(&w);
	expect_reject(A, &w, EPROTO, "HOSTNAME: length 0");
}

/* PID_NS_OF (minor 2) is a container id: 1 to 128 bytes. The codec has no
 * per-message tag lists (a tag a message does not use is ignored), so in
 * EXEC it passes the codec like any other; the agent reads it on CREATE
 * only. */
static void pid_ns_of_limits(void **state)
{
	char id[130];
	struct raw w = {0};

	memset(id, 'p', sizeof(id));
	raw_begin(&w, HUSK_FRAME_CREATE, 0, 1);
	raw_tlv(&w, HUSK_TAG_CONTAINER_ID, "c1", 2);
	raw_tlv(&w, HUSK_TAG_ROOT_DEVICE, "serial:r", 8);
	raw_tlv(&w, HUSK_TAG_ARGV, "sh", 2);
	raw_tlv(&w, HUSK_TAG_PID_NS_OF, "", 0);
	raw_end(&w);
	expect_reject(A, &w, EPROTO, "PID_NS_OF: length 0 outside [1, 128]");
	w.n = 0;
	raw_begin(&w, HUSK_FRAME_CREATE, 0, 1);
	raw_tlv(&w, HUSK_TAG_CONTAINER_ID, "c1", 2);
	raw_tlv(&w, HUSK_TAG_ROOT_DEVICE, "serial:r", 8);
	raw_tlv(&w, HUSK_TAG_ARGV, "sh", 2);
	raw_tlv(&w, HUSK_TAG_PID_NS_OF, id, 129);
	raw_end(&w);
	expect_reject(A, &w, EPROTO, "PID_NS_OF: length 129 outside [1, 128]");

	/* 128 bytes pass, and the encoder holds itself to the same. */
	struct husk_proto_reader r;
	struct husk_proto_enc e;
	struct husk_error err = {0};
	struct rx rx = {0};
	struct husk_str got;
	const char *argv[] = {"sh", NULL};
	id[128] = '\0';
	husk_proto_enc_init_alloc(&e, H);
	husk_proto_enc_begin(&e, HUSK_FRAME_CREATE, 0, 1, &err);
	husk_proto_enc_str(&e, HUSK_TAG_CONTAINER_ID, "c1", &err);
	husk_proto_enc_str(&e, HUSK_TAG_ROOT_DEVICE, "serial:r", &err);
	husk_proto_enc_strv(&e, HUSK_TAG_ARGV, argv, &err);
	husk_proto_enc_str(&e, HUSK_TAG_PID_NS_OF, id, &err);
	assert_int_equal(husk_proto_enc_end(&e, &err), 0);
	husk_proto_enc_begin(&e, HUSK_FRAME_EXEC, 0, 2, &err);
	husk_proto_enc_str(&e, HUSK_TAG_CONTAINER_ID, "c1", &err);
	husk_proto_enc_strv(&e, HUSK_TAG_ARGV, argv, &err);
	husk_proto_enc_str(&e, HUSK_TAG_PID_NS_OF, "pause", &err);
	assert_int_equal(husk_proto_enc_end(&e, &err), 0);
	reader_after_hello(&r, A);
	assert_int_equal(feed(&r, e.buf, e.len, 0, &rx, &err), 0);
	assert_int_equal(rx.n, 2);
	assert_int_equal(
	    husk_frame_str(&rx.f[0], HUSK_TAG_PID_NS_OF, &got, &err), 1);
	assert_int_equal(got.len, 128);
	assert_int_equal(
	    husk_frame_str(&rx.f[1], HUSK_TAG_PID_NS_OF, &got, &err), 1);
	assert_int_equal(got.len, 5);
	rx_free(&rx);
	husk_proto_reader_free(&r);
	husk_proto_enc_reset(&e);
	husk_proto_enc_begin(&e, HUSK_FRAME_CREATE, 0, 1, &err);
	husk_proto_enc_str(&e, HUSK_TAG_CONTAINER_ID, "c1", &err);
	husk_proto_enc_str(&e, HUSK_TAG_ROOT_DEVICE, "serial:r", &err);
	husk_proto_enc_strv(&e, HUSK_TAG_ARGV, argv, &err);
	husk_proto_enc_str(&e, HUSK_TAG_PID_NS_OF, "", &err);
	assert_int_equal(husk_proto_enc_end(&e, &err), -EINVAL);
	assert_int_equal(e.len, 0);
	husk_proto_enc_free(&e);
	assert_string_equal(husk_proto_tag_name(HUSK_TAG_PID_NS_OF),
	                    "PID_NS_OF");
	assert_int_equal(husk_proto_tag_kind(HUSK_TAG_PID_NS_OF),
	                 HUSK_TLV_STRING);
}

static void duplicate_or_missing_tag(void **state)
{
	struct raw w = {0};

	raw_begin(&w, HUSK_FRAME_SIGNAL, 0, 1);
	raw_u32(&w, HUSK_TAG_SIGNAL, 15);
	raw_u32(&w, HUSK_TAG_SIGNAL, 9);
	raw_end(&w);
	expect_reject(A, &w, EPROTO, "SIGNAL appears twice");
	w.n = 0;
	raw_begin(&w, HUSK_FRAME_EXEC, 0, 2);
	raw_tlv(&w, HUSK_TAG_CONTAINER_ID, "c1", 2);
	raw_end(&w);
	expect_reject(A, &w, EPROTO, "EXEC without ARGV");
}

static void too_many_repeated_strings(void **state)
{
	struct husk_proto_reader r;
	struct husk_proto_enc e;
	struct husk_error err = {0};
	struct rx rx = {0};

	/* The limit itself passes; one more is refused by both ends. */
	for (int extra = 0; extra < 2; extra++) {
		husk_proto_enc_init_alloc(&e, H);
		husk_proto_enc_begin(&e, HUSK_FRAME_EXEC, 0, 2, &err);
		husk_proto_enc_str(&e, HUSK_TAG_CONTAINER_ID, "c1", &err);
		for (int i = 0; i < HUSK_PROTO_MAX_STRINGS + extra; i++)
			husk_proto_enc_str(&e, HUSK_TAG_ARGV, "x", &err);
		assert_int_equal(husk_proto_enc_end(&e, &err),
		                 extra ? -EMSGSIZE : 0);
		husk_proto_enc_free(&e);
	}
	/* A peer that writes its own bytes gets the same answer. */
	size_t n = HUSK_PROTO_HDR_SIZE + 8 +
	           (HUSK_PROTO_MAX_STRINGS + 1) * (HUSK_PROTO_TLV_HDR + 1);
	uint8_t *b = calloc(1, n), *p = b + HUSK_PROTO_HDR_SIZE;
	assert_non_null(b);
	b[0] = (uint8_t)(n - HUSK_PROTO_HDR_SIZE);
	b[1] = (uint8_t)((n - HUSK_PROTO_HDR_SIZE) >> 8);
	b[4] = HUSK_FRAME_EXEC;
	b[8] = 2;
	memcpy(p,
	       "\x07\x00\x02\x00\x00\x00"
	       "c1",
	       8);
	for (p += 8; p < b + n; p += HUSK_PROTO_TLV_HDR + 1)
		memcpy(p, "\x08\x00\x01\x00\x00\x00x", 7);
	reader_after_hello(&r, A);
	assert_int_equal(feed(&r, b, n, 0, &rx, &err), -EMSGSIZE);
	assert_non_null(strstr(err.msg, "more than 4096 ARGV"));
	husk_proto_reader_free(&r);
	free(b);
}

static void unknown_tags_are_skipped(void **state)
{
	struct husk_proto_reader r;
	struct husk_error err = {0};
	struct rx rx = {0};
	struct raw w = {0};
	uint32_t sig = 0, v;

	raw_begin(&w, HUSK_FRAME_SIGNAL, 0, 1);
	raw_tlv(&w, 4000, "\x01\x02\x03", 3);
	raw_u32(&w, HUSK_TAG_SIGNAL, 15);
	raw_tlv(&w, 4001, "", 0);
	raw_end(&w);
	reader_after_hello(&r, A);
	assert_int_equal(feed(&r, w.b, w.n, 0, &rx, &err), 0);
	assert_int_equal(husk_frame_u32(&rx.f[0], HUSK_TAG_SIGNAL, &sig, &err),
	                 1);
	assert_int_equal(sig, 15);
	/* Asked for directly, an unknown tag is held to the width asked. */
	assert_int_equal(husk_frame_u32(&rx.f[0], 4000, &v, &err), -EPROTO);
	rx_free(&rx);
	husk_proto_reader_free(&r);
}

static void stays_failed_after_error(void **state)
{
	struct husk_proto_reader r;
	struct husk_proto_enc e;
	struct husk_error err = {0}, later = {0};
	struct rx rx = {0};
	struct raw w = {0};

	raw_begin(&w, 99, 0, 1);
	raw_end(&w);
	host_session(&e);
	husk_proto_reader_init(&r, A);
	/* The good frames before the bad one are delivered. */
	assert_int_equal(feed(&r, e.buf, e.len, 0, &rx, &err), 0);
	assert_int_equal(feed(&r, w.b, w.n, 0, &rx, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "host frame 7: unknown frame type 99"));
	for (int i = 0; i < 3; i++) {
		size_t used = 1;
		struct husk_frame f;
		assert_int_equal(
		    husk_proto_reader_feed(&r, e.buf, e.len, &used, &f, &later),
		    -EPROTO);
		assert_int_equal(used, 0);
		assert_string_equal(later.msg, err.msg);
	}
	assert_int_equal(rx.n, 6);
	rx_free(&rx);
	husk_proto_reader_free(&r);
	husk_proto_enc_free(&e);
}

static void tlv_iterator_stays_failed(void **state)
{
	static const uint8_t p[] = {HUSK_TAG_UID, 0, 4, 0, 0, 0, 1, 0, 0, 0,
	                            HUSK_TAG_GID, 0, 9, 0, 0, 0, 1};
	struct husk_tlv_iter it;
	struct husk_tlv t;
	struct husk_error err = {0};
	uint32_t v;
	uint64_t v64;
	struct husk_str s;

	husk_tlv_iter_init(&it, p, sizeof(p));
	assert_int_equal(husk_tlv_next(&it, &t, &err), 1);
	assert_int_equal(husk_tlv_u32(&t, &v, &err), 0);
	assert_int_equal(v, 1);
	assert_int_equal(husk_tlv_u64(&t, &v64, &err), -EINVAL);
	assert_int_equal(husk_tlv_str(&t, &s, &err), -EINVAL);
	assert_int_equal(husk_tlv_next(&it, &t, &err), -EPROTO);
	assert_int_equal(husk_tlv_next(&it, &t, &err), -EPROTO);
}

/* ---- encoder ---- */

static void encoder_refuses_oversize(void **state)
{
	struct husk_proto_reader r;
	struct husk_proto_enc e;
	struct husk_error err = {0};
	struct rx rx = {0};
	uint8_t *big = calloc(1, HUSK_PROTO_MAX_PAYLOAD + 1);

	assert_non_null(big);
	husk_proto_enc_init_alloc(&e, A);
	/* Exactly the limit is fine, and decodes. */
	husk_proto_enc_begin(&e, HUSK_FRAME_STDOUT, 0, 1, &err);
	assert_int_equal(
	    husk_proto_enc_data(&e, big, HUSK_PROTO_MAX_PAYLOAD, &err), 0);
	assert_int_equal(husk_proto_enc_end(&e, &err), 0);
	assert_int_equal(e.len, HUSK_PROTO_MAX_FRAME);
	reader_after_hello(&r, H);
	assert_int_equal(feed(&r, e.buf, e.len, 4096, &rx, &err), 0);
	assert_int_equal(rx.n, 1);
	assert_int_equal(rx.f[0].len, HUSK_PROTO_MAX_PAYLOAD);
	rx_free(&rx);
	husk_proto_reader_free(&r);
	/* One byte more, in one go or bit by bit, is not; the frame is
	 * dropped and the one before it stays. */
	husk_proto_enc_begin(&e, HUSK_FRAME_STDOUT, 0, 1, &err);
	assert_int_equal(
	    husk_proto_enc_data(&e, big, HUSK_PROTO_MAX_PAYLOAD + 1, &err),
	    -EMSGSIZE);
	assert_int_equal(husk_proto_enc_end(&e, &err), -EMSGSIZE);
	husk_proto_enc_begin(&e, HUSK_FRAME_STDOUT, 0, 1, &err);
	husk_proto_enc_data(&e, big, HUSK_PROTO_MAX_PAYLOAD, &err);
	assert_int_equal(husk_proto_enc_data(&e, big, 1, &err), -EMSGSIZE);
	assert_int_equal(husk_proto_enc_data(&e, big, (size_t)-1, &err),
	                 -EMSGSIZE);
	assert_int_equal(husk_proto_enc_end(&e, &err), -EMSGSIZE);
	assert_int_equal(e.len, HUSK_PROTO_MAX_FRAME);
	/* TLVs count too, header included. */
	husk_proto_enc_begin(&e, HUSK_FRAME_ERROR, 0, 0, &err);
	memset(big, 'a', HUSK_PROTO_MAX_PAYLOAD);
	assert_int_equal(
	    husk_proto_enc_strn(&e, HUSK_TAG_MESSAGE, (char *)big,
	                        HUSK_PROTO_MAX_PAYLOAD - HUSK_PROTO_TLV_HDR + 1,
	                        &err),
	    -EMSGSIZE);
	assert_int_equal(husk_proto_enc_end(&e, &err), -EMSGSIZE);
	husk_proto_enc_free(&e);
	free(big);
}

static void encoder_fixed_buffer(void **state)
{
	struct husk_proto_enc e;
	struct husk_error err = {0};
	uint8_t buf[64], data[60] = {0};

	husk_proto_enc_init(&e, H, buf, sizeof(buf));
	encode_sample(&e, H, HUSK_FRAME_WAIT, 0, 1);
	assert_int_equal(e.len, HUSK_PROTO_HDR_SIZE);
	husk_proto_enc_begin(&e, HUSK_FRAME_STDIN, 0, 1, &err);
	assert_int_equal(husk_proto_enc_data(&e, data, 60, &err), -ENOBUFS);
	assert_int_equal(husk_proto_enc_end(&e, &err), -ENOBUFS);
	assert_int_equal(e.len, HUSK_PROTO_HDR_SIZE);
	husk_proto_enc_reset(&e);
	assert_int_equal(e.len, 0);
}

static void encoder_errors_stick_until_end(void **state)
{
	struct husk_proto_enc e;
	struct husk_error err = {0};

	husk_proto_enc_init_alloc(&e, H);
	husk_proto_enc_begin(&e, HUSK_FRAME_EXEC, 0, 2, &err);
	assert_int_equal(
	    husk_proto_enc_strn(&e, HUSK_TAG_ARGV, "a\0b", 3, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "NUL"));
	/* Later adds, even good ones, report the first failure. */
	assert_int_equal(
	    husk_proto_enc_str(&e, HUSK_TAG_CONTAINER_ID, "c", &err), -EINVAL);
	assert_int_equal(husk_proto_enc_end(&e, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "NUL"));
	assert_int_equal(e.len, 0);
	/* The next frame starts clean. */
	encode_sample(&e, H, HUSK_FRAME_WAIT, 0, 1);
	husk_proto_enc_free(&e);
}

static void encoder_refuses_bad_frames(void **state)
{
	struct husk_proto_enc e;
	struct husk_error err = {0};

	husk_proto_enc_init_alloc(&e, H);
	/* Not the host's to send. */
	husk_proto_enc_begin(&e, HUSK_FRAME_STDOUT, 0, 1, &err);
	assert_int_equal(husk_proto_enc_end(&e, &err), -EINVAL);
	/* Reserved flags, unknown type, stream 0 for a process. */
	husk_proto_enc_begin(&e, HUSK_FRAME_WAIT, 0x8000, 1, &err);
	assert_int_equal(husk_proto_enc_end(&e, &err), -EINVAL);
	husk_proto_enc_begin(&e, 77, 0, 1, &err);
	assert_int_equal(husk_proto_enc_end(&e, &err), -EINVAL);
	husk_proto_enc_begin(&e, HUSK_FRAME_WAIT, 0, 0, &err);
	assert_int_equal(husk_proto_enc_end(&e, &err), -EINVAL);
	/* A tag of the wrong kind, or unknown. */
	husk_proto_enc_begin(&e, HUSK_FRAME_SIGNAL, 0, 1, &err);
	assert_int_equal(husk_proto_enc_u64(&e, HUSK_TAG_SIGNAL, 9, &err),
	                 -EINVAL);
	assert_int_equal(husk_proto_enc_end(&e, &err), -EINVAL);
	husk_proto_enc_begin(&e, HUSK_FRAME_SIGNAL, 0, 1, &err);
	assert_int_equal(husk_proto_enc_u32(&e, 4000, 9, &err), -EINVAL);
	assert_int_equal(husk_proto_enc_end(&e, &err), -EINVAL);
	/* TLVs in a data frame, data in a control frame. */
	husk_proto_enc_begin(&e, HUSK_FRAME_STDIN, 0, 1, &err);
	assert_int_equal(husk_proto_enc_u32(&e, HUSK_TAG_FD, 0, &err), -EINVAL);
	assert_int_equal(husk_proto_enc_end(&e, &err), -EINVAL);
	husk_proto_enc_begin(&e, HUSK_FRAME_WAIT, 0, 1, &err);
	assert_int_equal(husk_proto_enc_data(&e, "x", 1, &err), -EINVAL);
	assert_int_equal(husk_proto_enc_end(&e, &err), -EINVAL);
	/* What the reader would refuse: missing, duplicate, out of range. */
	husk_proto_enc_begin(&e, HUSK_FRAME_CREATE, 0, 1, &err);
	husk_proto_enc_str(&e, HUSK_TAG_CONTAINER_ID, "c", &err);
	assert_int_equal(husk_proto_enc_end(&e, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "CREATE without ARGV"));
	husk_proto_enc_begin(&e, HUSK_FRAME_SIGNAL, 0, 1, &err);
	husk_proto_enc_u32(&e, HUSK_TAG_SIGNAL, 9, &err);
	husk_proto_enc_u32(&e, HUSK_TAG_SIGNAL, 9, &err);
	assert_int_equal(husk_proto_enc_end(&e, &err), -EINVAL);
	husk_proto_enc_begin(&e, HUSK_FRAME_SIGNAL, 0, 1, &err);
	husk_proto_enc_u32(&e, HUSK_TAG_SIGNAL, 65, &err);
	assert_int_equal(husk_proto_enc_end(&e, &err), -EINVAL);
	/* Misuse of the sequence. */
	assert_int_equal(husk_proto_enc_u32(&e, HUSK_TAG_SIGNAL, 9, &err),
	                 -EINVAL);
	assert_int_equal(husk_proto_enc_end(&e, &err), -EINVAL);
	assert_int_equal(e.len, 0);
	husk_proto_enc_free(&e);
}

static void getter_misuse(void **state)
{
	struct husk_proto_enc e;
	struct husk_error err = {0};
	struct husk_frame f;
	struct husk_str s;
	uint32_t v;

	husk_proto_enc_init_alloc(&e, A);
	encode_sample(&e, A, HUSK_FRAME_EXIT, 0, 1);
	f = (struct husk_frame){HUSK_FRAME_EXIT, 0, 1,
	                        (uint32_t)(e.len - HUSK_PROTO_HDR_SIZE),
	                        e.buf + HUSK_PROTO_HDR_SIZE};
	assert_int_equal(husk_frame_str(&f, HUSK_TAG_EXIT_CODE, &s, &err),
	                 -EINVAL);
	assert_int_equal(husk_frame_u32(&f, HUSK_TAG_GROUP, &v, &err), -EINVAL);
	f.type = HUSK_FRAME_STDOUT;
	assert_int_equal(husk_frame_u32(&f, HUSK_TAG_EXIT_CODE, &v, &err),
	                 -EINVAL);
	assert_string_equal(husk_proto_type_name(HUSK_FRAME_CREDIT), "CREDIT");
	assert_string_equal(husk_proto_type_name(0), "?");
	assert_string_equal(husk_proto_tag_name(HUSK_TAG_ENV), "ENV");
	assert_int_equal(husk_proto_tag_kind(HUSK_TAG_MEMORY_LIMIT),
	                 HUSK_TLV_U64);
	assert_int_equal(husk_proto_tag_kind(0), HUSK_TLV_UNKNOWN);
	husk_proto_enc_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(hello_negotiates_version),
	    cmocka_unit_test(hello_newer_minor_speaks_ours),
	    cmocka_unit_test(hello_unsupported_major),
	    cmocka_unit_test(frame_before_hello),
	    cmocka_unit_test(second_hello),
	    cmocka_unit_test(create_round_trip),
	    cmocka_unit_test(every_type_round_trips),
	    cmocka_unit_test(exit_and_stats_values),
	    cmocka_unit_test(split_at_every_byte),
	    cmocka_unit_test(several_frames_in_one_feed),
	    cmocka_unit_test(eof_inside_a_frame),
	    cmocka_unit_test(length_above_max),
	    cmocka_unit_test(unknown_type),
	    cmocka_unit_test(reserved_flags),
	    cmocka_unit_test(wrong_direction_or_stream),
	    cmocka_unit_test(truncated_tlv_header),
	    cmocka_unit_test(tlv_length_past_payload),
	    cmocka_unit_test(tag_zero),
	    cmocka_unit_test(nul_in_string),
	    cmocka_unit_test(wrong_integer_width),
	    cmocka_unit_test(value_out_of_range),
	    cmocka_unit_test(pid_ns_of_limits),
	    cmocka_unit_test(duplicate_or_missing_tag),
	    cmocka_unit_test(too_many_repeated_strings),
	    cmocka_unit_test(unknown_tags_are_skipped),
	    cmocka_unit_test(stays_failed_after_error),
	    cmocka_unit_test(tlv_iterator_stays_failed),
	    cmocka_unit_test(encoder_refuses_oversize),
	    cmocka_unit_test(encoder_fixed_buffer),
	    cmocka_unit_test(encoder_errors_stick_until_end),
	    cmocka_unit_test(encoder_refuses_bad_frames),
	    cmocka_unit_test(getter_misuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
