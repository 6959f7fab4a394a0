/* time — calendar arithmetic in UTC (the proleptic Gregorian calendar, days
 * from the civil date and back), what the CMOS RTC model converts with. */
#include <time.h>

static long days_from_civil(long y, unsigned m, unsigned d)
{
	y -= m <= 2;
	long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long)doe - 719468;
}

static const short cumdays[12] = { 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334 };

static int leap(long y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

struct tm *gmtime_r(const time_t *restrict t, struct tm *restrict out)
{
	long s = *t, days = s / 86400, rem = s % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	out->tm_hour = (int)(rem / 3600);
	out->tm_min = (int)(rem % 3600 / 60);
	out->tm_sec = (int)(rem % 60);
	out->tm_wday = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
	long z = days + 719468;
	long era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	long y = (long)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned d = doy - (153 * mp + 2) / 5 + 1;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	out->tm_year = (int)(y - 1900);
	out->tm_mon = (int)m - 1;
	out->tm_mday = (int)d;
	out->tm_yday = cumdays[m - 1] + (int)d - 1 + (m > 2 && leap(y));
	out->tm_isdst = 0;
	out->tm_gmtoff = 0;
	out->tm_zone = "GMT";
	return out;
}

time_t timegm(struct tm *tm)
{
	/* Out-of-range fields carry, as in mktime. */
	long mon = tm->tm_mon, year = tm->tm_year + 1900L;
	year += mon / 12;
	mon %= 12;
	if (mon < 0) {
		mon += 12;
		year--;
	}
	long days = days_from_civil(year, (unsigned)mon + 1, 1) + tm->tm_mday - 1;
	time_t t = days * 86400 + tm->tm_hour * 3600L + tm->tm_min * 60L + tm->tm_sec;
	gmtime_r(&t, tm);
	return t;
}
