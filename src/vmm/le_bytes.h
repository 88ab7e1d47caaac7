/* Little-endian fields at a byte offset in a buffer the loader builds or
 * reads (boot_params, the setup header, the MP table). memcpy keeps the
 * accesses legal at any alignment; x86 is little-endian, and htole/letoh
 * say so for a reader. */
#ifndef HUSK_VMM_LE_BYTES_H
#define HUSK_VMM_LE_BYTES_H

#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void le_put16(uint8_t *p, size_t off, uint16_t v)
{
	v = htole16(v);
	memcpy(p + off, &v, sizeof(v));
}

static inline void le_put32(uint8_t *p, size_t off, uint32_t v)
{
	v = htole32(v);
	memcpy(p + off, &v, sizeof(v));
}

static inline void le_put64(uint8_t *p, size_t off, uint64_t v)
{
	v = htole64(v);
	memcpy(p + off, &v, sizeof(v));
}

static inline uint16_t le_get16(const uint8_t *p, size_t off)
{
	uint16_t v;
	memcpy(&v, p + off, sizeof(v));
	return le16toh(v);
}

static inline uint32_t le_get32(const uint8_t *p, size_t off)
{
	uint32_t v;
	memcpy(&v, p + off, sizeof(v));
	return le32toh(v);
}

#endif
