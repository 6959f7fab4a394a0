/* clock — time as the portable part sees it: a monotonic clock (what
 * condition variables and deadlines measure, immune to wall-clock jumps)
 * and the wall clock (UTC, for the RTC). The host passes one in
 * (src/host/clock.c: clock_gettime); tests pass fakes. Used by rtc_cmos,
 * uart_16550 and virtio_console. Threading: both calls from any thread. */
#ifndef VIGIL_CORE_CLOCK_H
#define VIGIL_CORE_CLOCK_H

#include <stdint.h>

struct vclock {
	/* Nanoseconds on the clock bounded waits use (pthread_cond_timedwait
	 * with the condition set to CLOCK_MONOTONIC on Linux). */
	uint64_t (*mono_ns)(void *ctx);
	/* Seconds since 1970-01-01 UTC. */
	int64_t (*wall_s)(void *ctx);
	void *ctx;
};

static inline uint64_t vclock_mono_ns(const struct vclock *c)
{
	return c->mono_ns(c->ctx);
}

static inline int64_t vclock_wall_s(const struct vclock *c)
{
	return c->wall_s(c->ctx);
}

#endif
