/* fuzz_input — how the fuzz targets read their input: a cursor over the
 * bytes libFuzzer gives, taken a little-endian value at a time; past the
 * end every value reads as zero, so a short input is still a valid one. */
#ifndef VIGIL_FUZZ_INPUT_H
#define VIGIL_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

/* Harness code left out of coverage instrumentation (it is not code under
 * test, and its traced compares only cost time). */
#if defined(__clang__)
#define FUZZ_NOCOV __attribute__((no_sanitize("coverage")))
#elif defined(__GNUC__) && __GNUC__ >= 12
#define FUZZ_NOCOV __attribute__((no_sanitize_coverage))
#else
#define FUZZ_NOCOV
#endif

struct in {
	const uint8_t *p;
	size_t n;
};

/* Not instrumented for coverage: its traced byte loop was a tenth of
 * fuzz_exit's time and tells the fuzzer nothing. */
FUZZ_NOCOV static inline uint64_t take(struct in *in, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes && in->n; i++, in->p++, in->n--)
		v |= (uint64_t)*in->p << (8 * i);
	return v;
}

#endif
