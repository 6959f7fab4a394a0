/* fuzz_input — how the fuzz targets read their input: a cursor over the
 * bytes libFuzzer gives, taken a little-endian value at a time; past the
 * end every value reads as zero, so a short input is still a valid one. */
#ifndef VIGIL_FUZZ_INPUT_H
#define VIGIL_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

struct in {
	const uint8_t *p;
	size_t n;
};

static inline uint64_t take(struct in *in, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes && in->n; i++, in->p++, in->n--)
		v |= (uint64_t)*in->p << (8 * i);
	return v;
}

#endif
