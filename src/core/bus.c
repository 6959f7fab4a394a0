#include "core/bus.h"

#include <errno.h>
#include <string.h>

int bus_add(struct bus *b, uint64_t base, uint64_t len, const char *name, bus_io_fn fn, void *dev)
{
	if (len == 0 || base + len < base || fn == NULL)
		return -EINVAL;
	if (b->nr == BUS_MAX_RANGES)
		return -ENOSPC;
	unsigned i = 0;
	while (i < b->nr && b->r[i].base < base)
		i++;
	if (i > 0 && b->r[i - 1].base + b->r[i - 1].len > base)
		return -EEXIST;
	if (i < b->nr && base + len > b->r[i].base)
		return -EEXIST;
	memmove(&b->r[i + 1], &b->r[i], (b->nr - i) * sizeof(b->r[0]));
	b->r[i] = (struct bus_range){ .base = base, .len = len, .fn = fn, .dev = dev, .name = name };
	b->nr++;
	for (uint64_t pg = base >> 8; pg < BUS_LOW_PAGES && pg <= (base + len - 1) >> 8; pg++)
		b->low_pages[pg / 64] |= 1ull << (pg % 64);
	return 0;
}

const struct bus_range *bus_search(const struct bus *b, uint64_t addr, uint32_t len)
{
	unsigned lo = 0, hi = b->nr;

	/* Binary search for the last range starting at or below addr. */
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (b->r[mid].base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct bus_range *r = &b->r[lo - 1];
	uint64_t off = addr - r->base;
	if (off >= r->len || len > r->len - off)
		return NULL;
	if (r->claims && !r->claims(r->dev, off, len))
		return NULL;
	return r;
}

const char *bus_owner(const struct bus_range *r, uint64_t addr, uint32_t len)
{
	if (!r)
		return NULL;
	if (!r->claims)
		return r->name;
	const char *who = r->claims(r->dev, addr - r->base, len);
	return who ? who : r->name;
}

int bus_add_sparse(struct bus *b, uint64_t base, uint64_t len, const char *name, bus_io_fn fn,
		   bus_claims_fn claims, void *dev)
{
	int r = bus_add(b, base, len, name, fn, dev);
	for (unsigned i = 0; r == 0 && i < b->nr; i++)
		if (b->r[i].base == base)
			b->r[i].claims = claims;
	return r;
}

int bus_set_home(struct bus *b, uint64_t base, bus_home_fn home)
{
	for (unsigned i = 0; i < b->nr; i++)
		if (b->r[i].base == base) {
			b->r[i].home = home;
			return 0;
		}
	return -ENOENT;
}
