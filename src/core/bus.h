/* bus — address ranges claimed by device models, one bus for port I/O and
 * one for MMIO. Ranges are registered while the VM is built (before any
 * vCPU runs) and are read-only afterwards, so lookups need no lock.
 * Callers of bus_find(): the exit dispatch (core/exit.c) and, for reports,
 * vm_device_name(). */
#ifndef VIGIL_CORE_BUS_H
#define VIGIL_CORE_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A device's access handler. `offset` is relative to the start of the range
 * the device registered; `data` holds `len` (1, 2, 4 or 8) bytes,
 * little-endian: filled by the handler on a read, supplied on a write.
 * Handlers may be called from any vCPU thread concurrently. */
typedef void (*bus_io_fn)(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* For a range that is only partly populated (the PCI MMIO window): who
 * really answers at [offset, offset+len) — the owning device's name, for
 * reports — or NULL when nobody does. */
typedef const char *(*bus_claims_fn)(void *dev, uint64_t offset, uint32_t len);

/* For a range whose devices the guest can move inside it (PCI BARs): the
 * address the policy judges an access at `offset` by — where the register
 * it reaches sits in the layout vigil built, so that rules naming that
 * address hold wherever the guest moved it. */
typedef uint64_t (*bus_home_fn)(void *dev, uint64_t offset);

struct bus_range {
	uint64_t base;
	uint64_t len;
	bus_io_fn fn;
	bus_claims_fn claims; /* NULL: the whole range is claimed */
	bus_home_fn home;     /* NULL: judged where accessed */
	void *dev;
	const char *name;
};

#define BUS_MAX_RANGES 64

/* Which 256-address pages of [0, 0x10000) (all of port I/O) any range
 * touches: an access in an untouched page (a guest probing or hammering
 * a port nobody has) is unclaimed after one bit test, not a search. */
#define BUS_LOW_PAGES (0x10000 / 256)

struct bus {
	struct bus_range r[BUS_MAX_RANGES]; /* sorted by base */
	unsigned nr;
	uint64_t low_pages[BUS_LOW_PAGES / 64];
};

/* Claims [base, base+len). Refuses zero-length, wrapping and overlapping
 * ranges (-EINVAL, -EEXIST) and a full bus (-ENOSPC). */
int bus_add(struct bus *b, uint64_t base, uint64_t len, const char *name, bus_io_fn fn, void *dev);

/* Like bus_add, for a window whose device says per access whether it
 * answers; accesses it does not claim are unclaimed (and so denied). */
int bus_add_sparse(struct bus *b, uint64_t base, uint64_t len, const char *name, bus_io_fn fn,
		   bus_claims_fn claims, void *dev);
/* Gives the range at `base` its bus_home_fn. 0, or -ENOENT. */
int bus_set_home(struct bus *b, uint64_t base, bus_home_fn home);

/* The address the policy judges an access at addr in range r (NULL: no
 * range) by. */
static inline uint64_t bus_policy_addr(const struct bus_range *r, uint64_t addr)
{
	return r && __builtin_expect(r->home != NULL, 0) ? r->home(r->dev, addr - r->base) : addr;
}

/* bus_find past the page test: the search (bus.c). */
const struct bus_range *bus_search(const struct bus *b, uint64_t addr, uint32_t len);

/* The range wholly containing [addr, addr+len) whose device claims it, or
 * NULL. A range holding the access holds its first address: none in that
 * page, none at all — one bit test, inlined into the exit path. */
static inline const struct bus_range *bus_find(const struct bus *b, uint64_t addr, uint32_t len)
{
	if (addr < 0x10000 && !(b->low_pages[(addr >> 8) / 64] >> ((addr >> 8) % 64) & 1))
		return NULL;
	return bus_search(b, addr, len);
}

/* The name of who answers at addr in range r: the range's own, or for a
 * sparse range the owner its device names. */
const char *bus_owner(const struct bus_range *r, uint64_t addr, uint32_t len);

#endif
