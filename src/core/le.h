/* le — little-endian values in byte buffers: what a bus access carries
 * (core/bus.h: `data` holds `len` bytes, little-endian) and what device
 * registers and protocol fields hold. n is at most 8. */
#ifndef VIGIL_CORE_LE_H
#define VIGIL_CORE_LE_H

#include <stdint.h>

static inline uint64_t le_load(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n && i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static inline void le_store(uint8_t *p, unsigned n, uint64_t v)
{
	for (unsigned i = 0; i < n && i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

#endif
