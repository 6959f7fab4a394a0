/* le — little-endian values in byte buffers: what a bus access carries
 * (core/bus.h: `data` holds `len` bytes, little-endian) and what device
 * registers and protocol fields hold. n is at most 8. */
#ifndef VIGIL_CORE_LE_H
#define VIGIL_CORE_LE_H

#include <stdint.h>

/* The sizes accesses come in are spelled out: a caller's constant n then
 * folds to plain loads and stores, with no loop left behind. */
static inline __attribute__((always_inline)) uint64_t le_load(const uint8_t *p, unsigned n)
{
	switch (n) {
	case 1:
		return p[0];
	case 2:
		return (uint64_t)p[0] | (uint64_t)p[1] << 8;
	case 4:
		return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
	case 8:
		return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
		       (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
	}
	uint64_t v = 0;
	for (unsigned i = 0; i < n && i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static inline __attribute__((always_inline)) void le_store(uint8_t *p, unsigned n, uint64_t v)
{
	switch (n) {
	case 8:
		p[4] = (uint8_t)(v >> 32);
		p[5] = (uint8_t)(v >> 40);
		p[6] = (uint8_t)(v >> 48);
		p[7] = (uint8_t)(v >> 56);
		/* fall through */
	case 4:
		p[2] = (uint8_t)(v >> 16);
		p[3] = (uint8_t)(v >> 24);
		/* fall through */
	case 2:
		p[1] = (uint8_t)(v >> 8);
		/* fall through */
	case 1:
		p[0] = (uint8_t)v;
		return;
	}
	for (unsigned i = 0; i < n && i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

#endif
