/* fake_guest — guest RAM for unit tests: an anonymous MAP_NORESERVE mapping
 * registered with gmem at a given guest physical address, so tests can give
 * a loader tens of MiB without paying for the pages they never touch. */
#ifndef VIGIL_TESTS_FAKE_GUEST_H
#define VIGIL_TESTS_FAKE_GUEST_H

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "core/gmem.h"

#define MiB (1024ULL * 1024)
#define GiB (1024 * MiB)

struct fake_guest {
	struct gmem m;
	uint8_t *ram;   /* host mapping of the region at gpa 0 */
	uint64_t size;
};

/* Anonymous zeroed memory, NULL on failure. */
static inline void *fake_map(uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static inline void fake_unmap(void *p, uint64_t size)
{
	if (p)
		munmap(p, size);
}

/* One RAM region [0, size). Returns 0 or -1. */
static inline int fake_guest_init(struct fake_guest *g, uint64_t size)
{
	memset(g, 0, sizeof(*g));
	g->ram = fake_map(size);
	if (!g->ram)
		return -1;
	g->size = size;
	return gmem_add(&g->m, 0, size, g->ram) == 0 ? 0 : -1;
}

static inline void fake_guest_fini(struct fake_guest *g)
{
	fake_unmap(g->ram, g->size);
	g->ram = NULL;
}

/* Little-endian accessors into a byte buffer (test images, guest memory). */
static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}
static inline void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}
static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t get32(const uint8_t *p)
{
	return get16(p) | (uint32_t)get16(p + 2) << 16;
}
static inline uint64_t get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* Deterministic filler so copied bytes can be told from zeroes. */
static inline void fill_pattern(uint8_t *p, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (uint8_t)(x >> 16);
	}
}

#endif
