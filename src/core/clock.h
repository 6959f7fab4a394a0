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

/* A clock whose wall time runs `offset_s` from another's (the policy's rtc
 * redirect); the monotonic time is the other's. Lives as long as the
 * vclock made from it. */
struct vclock_shift {
	struct vclock base;
	int64_t offset_s;
};

static inline uint64_t vclock_shift_mono(void *ctx)
{
	const struct vclock_shift *s = ctx;
	return vclock_mono_ns(&s->base);
}

static inline int64_t vclock_shift_wall(void *ctx)
{
	const struct vclock_shift *s = ctx;
	return vclock_wall_s(&s->base) + s->offset_s;
}

static inline struct vclock vclock_shifted(struct vclock_shift *s)
{
	return (struct vclock){ .mono_ns = vclock_shift_mono, .wall_s = vclock_shift_wall, .ctx = s };
}

#endif
