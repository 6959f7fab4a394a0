/* deadline — monotonic time points for bounded waits (condition variables
 * set to CLOCK_MONOTONIC), computed from a core/clock.h clock so that the
 * portable part never reads the host clock itself. Used by uart_16550 and
 * virtio_console. */
#ifndef VIGIL_CORE_DEADLINE_H
#define VIGIL_CORE_DEADLINE_H

#include <time.h>

#include "core/clock.h"

/* Now plus ms on the clock's monotonic time (ms <= 0: now). */
static inline struct timespec deadline_after_ms(const struct vclock *c, int ms)
{
	uint64_t ns = vclock_mono_ns(c) + (ms > 0 ? (uint64_t)ms * 1000000u : 0);
	return (struct timespec){ .tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u) };
}

#endif
