/* vigil-metal's libc shim: <time.h> — the types, and the calendar
 * arithmetic the RTC model uses. No clock here: the portable part reads
 * time through core/clock.h, which vigil-metal fills from the TSC. */
#ifndef VIGIL_METAL_TIME_H
#define VIGIL_METAL_TIME_H
#include <stddef.h>
typedef long time_t;
typedef int clockid_t;
#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
struct timespec {
	time_t tv_sec;
	long tv_nsec;
};
struct tm {
	int tm_sec, tm_min, tm_hour, tm_mday, tm_mon, tm_year, tm_wday, tm_yday, tm_isdst;
	long tm_gmtoff;
	const char *tm_zone;
};
struct tm *gmtime_r(const time_t *restrict t, struct tm *restrict out);
time_t timegm(struct tm *tm);
#endif
