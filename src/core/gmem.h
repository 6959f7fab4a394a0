/* gmem — guest physical memory: the map of RAM regions and the one checked
 * way from a guest physical address to host memory.
 * Used by everything that touches guest memory (loaders, table builders,
 * devices). Devices never do pointer arithmetic on guest memory themselves:
 * they ask gmem_ptr() for the whole [gpa, gpa+len) range at once. */
#ifndef VIGIL_CORE_GMEM_H
#define VIGIL_CORE_GMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t gpa_t;

#define GMEM_MAX_REGIONS 4

struct gmem_region {
	gpa_t gpa;     /* first guest physical address */
	uint64_t size; /* bytes */
	uint8_t *host; /* host mapping of the region */
	/* Pages written by vigil itself (devices, debuggers) since the last
	 * gmem_dirty_take, one bit per GMEM_PAGE; NULL while not tracking.
	 * The guest's own writes are the hypervisor's dirty log. */
	_Atomic uint64_t *dirty;
};

#define GMEM_PAGE 4096ULL

struct gmem {
	struct gmem_region r[GMEM_MAX_REGIONS];
	unsigned nr;
	uint64_t total; /* sum of region sizes */
};

/* Adds a region; regions must not overlap or wrap. Returns 0 or -errno. */
int gmem_add(struct gmem *m, gpa_t gpa, uint64_t size, void *host);

/* Host pointer for [gpa, gpa+len) if the whole range lies in one region,
 * NULL otherwise (including len == 0 and arithmetic overflow). */
void *gmem_ptr(const struct gmem *m, gpa_t gpa, uint64_t len);

/* Dirty tracking of vigil's own writes, for Diff snapshots: on allocates
 * one bitmap per region (all clear), off frees them. Before any device
 * runs or with all of them quiesced. 0 or -ENOMEM. */
int gmem_dirty_track(struct gmem *m, bool on);
/* Marks the pages of [gpa, gpa+len) written; nothing when not tracking or
 * outside RAM. Any thread. */
void gmem_mark_dirty(const struct gmem *m, gpa_t gpa, uint64_t len);
/* The same for [p, p+len) given as the host pointer gmem_ptr returned. */
void gmem_mark_dirty_host(const struct gmem *m, const void *p, uint64_t len);
static inline bool gmem_tracking(const struct gmem *m)
{
	return m->nr && m->r[0].dirty;
}
/* ORs region `i`'s bitmap into out (size/GMEM_PAGE bits, 64 per word) and
 * clears it. */
void gmem_dirty_take(const struct gmem *m, unsigned i, uint64_t *out);

/* Copies in or out of guest memory (a write is marked dirty); 0 or -EFAULT. */
int gmem_read(const struct gmem *m, gpa_t gpa, void *dst, uint64_t len);
int gmem_write(const struct gmem *m, gpa_t gpa, const void *src, uint64_t len);

/* True if [gpa, gpa+len) is entirely RAM in one region. */
static inline bool gmem_valid(const struct gmem *m, gpa_t gpa, uint64_t len)
{
	return gmem_ptr(m, gpa, len) != NULL;
}

#endif
