/* The host clock source (see host/clock.h). */
#include "host/clock.h"

#include <time.h>

uint64_t host_mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t mono_ns(void *ctx)
{
	(void)ctx;
	return host_mono_ns();
}

static int64_t wall_s(void *ctx)
{
	(void)ctx;
	return (int64_t)time(NULL);
}

struct vclock host_clock(void)
{
	return (struct vclock){ .mono_ns = mono_ns, .wall_s = wall_s };
}
