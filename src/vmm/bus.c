#include "bus.h"

#include <errno.h>
#include <string.h>

void bus_init(struct bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len,
                 const struct bus_device *dev, struct husk_error *err)
{
	if (len == 0 || base + len < base)
		return husk_err(err, EINVAL, "%s: %s: bad range 0x%llx+0x%llx",
		                bus->name, dev->name, (unsigned long long)base,
		                (unsigned long long)len);
	if (bus->n == BUS_MAX_DEVICES)
		return husk_err(err, ENOSPC, "%s: no room for %s", bus->name,
		                dev->name);
	unsigned at = 0;
	while (at < bus->n && bus->regions[at].base < base)
		at++;
	/* Sorted and non-overlapping, so only the neighbours can collide. */
	const struct bus_region *prev = at ? &bus->regions[at - 1] : NULL;
	const struct bus_region *next = at < bus->n ? &bus->regions[at] : NULL;
	if ((prev && prev->base + prev->len > base) ||
	    (next && base + len > next->base))
		return husk_err(err, EEXIST, "%s: %s at 0x%llx overlaps %s",
		                bus->name, dev->name, (unsigned long long)base,
		                (prev && prev->base + prev->len > base)
		                    ? prev->dev.name
		                    : next->dev.name);
	memmove(&bus->regions[at + 1], &bus->regions[at],
	        (bus->n - at) * sizeof(bus->regions[0]));
	bus->regions[at] = (struct bus_region){base, len, *dev};
	bus->n++;
	return 0;
}

static const struct bus_region *find(const struct bus *bus, uint64_t addr,
                                     uint32_t len)
{
	unsigned lo = 0, hi = bus->n;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		const struct bus_region *r = &bus->regions[mid];
		if (addr < r->base)
			hi = mid;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return len <= r->len - (addr - r->base) ? r : NULL;
	}
	return NULL;
}

bool bus_read(const struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len)
{
	const struct bus_region *r = find(bus, addr, len);
	if (!r || !r->dev.read) {
		memset(data, 0xff, len);
		return r != NULL;
	}
	r->dev.read(r->dev.opaque, addr - r->base, data, len);
	return true;
}

bool bus_write(const struct bus *bus, uint64_t addr, const uint8_t *data,
               uint32_t len)
{
	const struct bus_region *r = find(bus, addr, len);
	if (!r)
		return false;
	if (r->dev.write)
		r->dev.write(r->dev.opaque, addr - r->base, data, len);
	return true;
}
