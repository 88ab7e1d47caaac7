/* Bounds-checked 9P message decoding and encoding over host buffers.
 *
 * A decoder never reads past its buffer: a field that does not fit sets
 * the sticky `bad` flag and yields zeroes, so a handler decodes all its
 * fields and checks `bad` once. An encoder likewise sets `overflow` when
 * a field would not fit and writes nothing more.
 */
#ifndef HUSK_VMM_P9_WIRE_H
#define HUSK_VMM_P9_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "p9_proto.h"

struct p9_in {
	const uint8_t *p;
	size_t len; /* the message's size (its own size field, checked) */
	size_t off;
	bool bad; /* a field ran past the end, or a string was unacceptable */
};

struct p9_out {
	uint8_t *p;
	size_t cap;
	size_t off;
	bool overflow;
};

uint8_t p9_get8(struct p9_in *in);
uint16_t p9_get16(struct p9_in *in);
uint32_t p9_get32(struct p9_in *in);
uint64_t p9_get64(struct p9_in *in);

/* A string s[2] into buf (cap bytes, NUL-terminated). -ENAMETOOLONG when
 * it needs cap bytes or more, -EINVAL when it contains a NUL byte (C
 * would cut it short), -EPROTO when it runs past the message; 0 or the
 * error (also recorded: a later check of `bad` is not needed for it). */
int p9_get_str(struct p9_in *in, char *buf, size_t cap);

/* Points *data at n bytes of the message (no copy); NULL and `bad` when
 * they run past its end. */
const uint8_t *p9_get_bytes(struct p9_in *in, size_t n);

void p9_put8(struct p9_out *o, uint8_t v);
void p9_put16(struct p9_out *o, uint16_t v);
void p9_put32(struct p9_out *o, uint32_t v);
void p9_put64(struct p9_out *o, uint64_t v);
void p9_put_str(struct p9_out *o, const char *s, size_t len);
void p9_put_qid(struct p9_out *o, const struct p9_qid *q);

/* Room left for a field of n bytes (false sets overflow). */
bool p9_out_room(const struct p9_out *o, size_t n);

/* Starts a reply of type with tag: reserves the size field. */
void p9_begin(struct p9_out *o, uint8_t type, uint16_t tag);

/* Writes the final size into the header; returns it, 0 on overflow. */
uint32_t p9_finish(struct p9_out *o);

#endif
