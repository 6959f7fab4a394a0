/* glibc_compat — what Debian's libjansson.a (built against glibc, with
 * _FORTIFY_SOURCE) calls beyond the C library proper: the fortified
 * variants, errno's accessor, the locale, the process id and time for its
 * hash seed. Only jansson uses these. */
#include <errno.h>
#include <locale.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "metal/metal.h"

int *__errno_location(void);
int *__errno_location(void)
{
	return &errno;
}

struct lconv *localeconv(void)
{
	static char dot[] = ".", empty[] = "";
	static struct lconv c = { dot, empty, empty };
	return &c;
}

__attribute__((noreturn)) static void chk_fail(void)
{
	metal_log("buffer overflow detected (a fortified call's bound)");
	metal_crash("aborted");
}

int __vsnprintf_chk(char *s, size_t n, int flag, size_t slen, const char *fmt, va_list ap)
	__attribute__((format(printf, 5, 0)));
int __vsnprintf_chk(char *s, size_t n, int flag, size_t slen, const char *fmt, va_list ap)
{
	(void)flag;
	if (n > slen)
		chk_fail();
	return vsnprintf(s, n, fmt, ap);
}

int __snprintf_chk(char *s, size_t n, int flag, size_t slen, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
int __snprintf_chk(char *s, size_t n, int flag, size_t slen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = __vsnprintf_chk(s, n, flag, slen, fmt, ap);
	va_end(ap);
	return r;
}

char *__strncpy_chk(char *d, const char *s, size_t n, size_t dlen);
char *__strncpy_chk(char *d, const char *s, size_t n, size_t dlen)
{
	if (n > dlen)
		chk_fail();
	return strncpy(d, s, n);
}

int getpid(void);
int getpid(void)
{
	return 1;
}

struct timeval {
	long tv_sec, tv_usec;
};
int gettimeofday(struct timeval *tv, void *tz);
int gettimeofday(struct timeval *tv, void *tz)
{
	(void)tz;
	uint64_t ns = metal_now_ns();
	tv->tv_sec = metal_wall_s();
	tv->tv_usec = (long)(ns / 1000 % 1000000);
	return 0;
}

int sched_yield(void);
int sched_yield(void)
{
	__asm__ volatile("pause");
	return 0;
}
