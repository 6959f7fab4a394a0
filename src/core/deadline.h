/* deadline — monotonic time points for bounded waits (condition variables
 * set to CLOCK_MONOTONIC, timers). */
#ifndef VIGIL_CORE_DEADLINE_H
#define VIGIL_CORE_DEADLINE_H

#include <time.h>

/* Now plus ms on CLOCK_MONOTONIC (ms <= 0: now). */
static inline struct timespec deadline_after_ms(int ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	if (ms > 0) {
		t.tv_sec += ms / 1000;
		t.tv_nsec += (long)(ms % 1000) * 1000000L;
		if (t.tv_nsec >= 1000000000L) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000L;
		}
	}
	return t;
}

#endif
