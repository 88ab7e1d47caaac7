/* Bounds-checked 9P decoding and encoding; see p9_wire.h. All fields are
 * little-endian. Only sizes already checked against the buffer are added
 * to offsets, so no sum here can wrap. */
#include "p9_wire.h"

#include <errno.h>
#include <string.h>

/* Takes n bytes from in, or marks it bad and returns NULL. */
static const uint8_t *take(struct p9_in *in, size_t n)
{
	if (in->bad || in->off > in->len || n > in->len - in->off) {
		in->bad = true;
		return NULL;
	}
	const uint8_t *p = in->p + in->off;
	in->off += n;
	return p;
}

static uint64_t get_le(struct p9_in *in, size_t n)
{
	const uint8_t *p = take(in, n);
	uint64_t v = 0;
	for (size_t i = 0; p && i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

uint8_t p9_get8(struct p9_in *in)
{
	return (uint8_t)get_le(in, 1);
}

uint16_t p9_get16(struct p9_in *in)
{
	return (uint16_t)get_le(in, 2);
}

uint32_t p9_get32(struct p9_in *in)
{
	return (uint32_t)get_le(in, 4);
}

uint64_t p9_get64(struct p9_in *in)
{
	return get_le(in, 8);
}

const uint8_t *p9_get_bytes(struct p9_in *in, size_t n)
{
	return take(in, n);
}

int p9_get_str(struct p9_in *in, char *buf, size_t cap)
{
	uint16_t n = p9_get16(in);
	const uint8_t *p = take(in, n);
	if (cap)
		buf[0] = '\0';
	if (!p)
		return -EPROTO;
	if (n >= cap)
		return -ENAMETOOLONG;
	if (memchr(p, '\0', n))
		return -EINVAL;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return 0;
}

bool p9_out_room(const struct p9_out *o, size_t n)
{
	return !o->overflow && o->off <= o->cap && n <= o->cap - o->off;
}

static void put_le(struct p9_out *o, uint64_t v, size_t n)
{
	if (!p9_out_room(o, n)) {
		o->overflow = true;
		return;
	}
	for (size_t i = 0; i < n; i++)
		o->p[o->off + i] = (uint8_t)(v >> (8 * i));
	o->off += n;
}

void p9_put8(struct p9_out *o, uint8_t v)
{
	put_le(o, v, 1);
}

void p9_put16(struct p9_out *o, uint16_t v)
{
	put_le(o, v, 2);
}

void p9_put32(struct p9_out *o, uint32_t v)
{
	put_le(o, v, 4);
}

void p9_put64(struct p9_out *o, uint64_t v)
{
	put_le(o, v, 8);
}

void p9_put_str(struct p9_out *o, const char *s, size_t len)
{
	if (len > UINT16_MAX || !p9_out_room(o, 2 + len)) {
		o->overflow = true;
		return;
	}
	p9_put16(o, (uint16_t)len);
	memcpy(o->p + o->off, s, len);
	o->off += len;
}

void p9_put_qid(struct p9_out *o, const struct p9_qid *q)
{
	p9_put8(o, q->type);
	p9_put32(o, q->version);
	p9_put64(o, q->path);
}

void p9_begin(struct p9_out *o, uint8_t type, uint16_t tag)
{
	o->off = 0;
	o->overflow = false;
	p9_put32(o, 0);
	p9_put8(o, type);
	p9_put16(o, tag);
}

uint32_t p9_finish(struct p9_out *o)
{
	if (o->overflow || o->off < P9_HDR_SIZE || o->off > UINT32_MAX)
		return 0;
	uint32_t n = (uint32_t)o->off;
	for (int i = 0; i < 4; i++)
		o->p[i] = (uint8_t)(n >> (8 * i));
	return n;
}
