/* clock — the host's clocks as a core/clock.h source (CLOCK_MONOTONIC and
 * CLOCK_REALTIME). Used by the builder (src/cli) and by unit tests that need
 * real time. Threading: any thread. */
#ifndef VIGIL_HOST_CLOCK_H
#define VIGIL_HOST_CLOCK_H

#include "core/clock.h"

struct vclock host_clock(void);
/* CLOCK_MONOTONIC in nanoseconds: the same clock, for the VMM's own timing
 * (uptime, a snapshot call's duration, a restore's first entry). */
uint64_t host_mono_ns(void);

#endif
