/* selftest — see selftest.h. The libc checks compare against values
 * computed elsewhere (glibc, Python), so a wrong shim fails here first
 * rather than somewhere in the core. */
#include "metal/selftest.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metal/metal.h"

static unsigned checks, failed;

static void check(int ok, const char *what)
{
	checks++;
	if (!ok) {
		failed++;
		metal_log("selftest libc: FAILED %s", what);
	}
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

static void heap(void)
{
	/* Many sizes, freed in an interleaved order, then the same again:
	 * free must really free (the second round reuses the first's). */
	enum { N = 512 };
	static void *p[N];
	uint64_t before = metal_free_bytes();
	for (int round = 0; round < 8; round++) {
		for (int i = 0; i < N; i++) {
			size_t n = (size_t)((i * 7919 + round * 31) % 3000) + 1;
			p[i] = malloc(n);
			check(p[i] && ((uintptr_t)p[i] & 15) == 0, "malloc: 16-byte aligned, not NULL");
			if (p[i])
				memset(p[i], (char)i, n);
		}
		for (int i = 0; i < N; i += 2)
			free(p[i]);
		for (int i = 1; i < N; i += 2) {
			size_t n = (size_t)((i * 7919 + round * 31) % 3000) + 1;
			check(((unsigned char *)p[i])[n - 1] == (unsigned char)i, "malloc: a neighbour's free kept the data");
			free(p[i]);
		}
	}
	check(metal_free_bytes() == before || metal_free_bytes() + (8u << 20) >= before,
	      "free: 8 rounds of 512 blocks fit in one arena");
	void *big = malloc(32u << 20); /* beyond an arena: its own */
	check(big != NULL, "malloc: 32 MiB");
	free(big);
	void *again = malloc(32u << 20);
	check(again == big, "free: a 32 MiB block is reused whole");
	free(again);
	char *r = malloc(10);
	strcpy(r, "123456789");
	r = realloc(r, 100000);
	check(r && !strcmp(r, "123456789"), "realloc keeps the data");
	free(r);
	int *z = calloc(1000, sizeof(int));
	int zero = 1;
	for (int i = 0; z && i < 1000; i++)
		zero &= z[i] == 0;
	check(z && zero, "calloc zeroes");
	free(z);
	check(calloc(SIZE_MAX / 2, 4) == NULL, "calloc: overflow refused");
	void *a = aligned_alloc(4096, 5000);
	check(a && ((uintptr_t)a & 4095) == 0, "aligned_alloc(4096)");
	free(a);
	void *pm = NULL;
	check(posix_memalign(&pm, 64, 100) == 0 && ((uintptr_t)pm & 63) == 0, "posix_memalign(64)");
	free(pm);
	check(posix_memalign(&pm, 3, 100) == EINVAL, "posix_memalign: not a power of two");
}

static void conversions(void)
{
	char *end;
	errno = 0;
	check(strtoull("18446744073709551615", &end, 10) == ULLONG_MAX && !*end && !errno, "strtoull max");
	errno = 0;
	check(strtoull("18446744073709551616", NULL, 10) == ULLONG_MAX && errno == ERANGE, "strtoull overflow");
	check(strtoul("0x1F", &end, 0) == 31 && !*end, "strtoul base 0 hex");
	check(strtoul("017", NULL, 0) == 15, "strtoul base 0 octal");
	check(strtoul("  42abc", &end, 10) == 42 && !strcmp(end, "abc"), "strtoul end pointer");
	check(strtoul("zz", &end, 10) == 0 && !strcmp(end, "zz"), "strtoul no digits");
	check(strtoul("0x", &end, 16) == 0 && !strcmp(end, "x"), "strtoul '0x' alone");
	errno = 0;
	check(strtoll("-9223372036854775808", NULL, 10) == LLONG_MIN && !errno, "strtoll min");
	errno = 0;
	check(strtoll("9223372036854775808", NULL, 10) == LLONG_MAX && errno == ERANGE, "strtoll overflow");
	char buf[64];
	snprintf(buf, sizeof(buf), "%5.2s|%-4d|%04x|%#llx|%zu|%+d|%%", "abc", 7, 0xab, 0x10ull, (size_t)9, 3);
	check(!strcmp(buf, "   ab|7   |00ab|0x10|9|+3|%"), "snprintf conversions");
	check(snprintf(buf, 4, "%s", "truncated") == 9 && !strcmp(buf, "tru"), "snprintf truncates, returns the length");
	char tok[] = "a,,b c";
	char *save, *t1 = strtok_r(tok, ", ", &save), *t2 = strtok_r(NULL, ", ", &save), *t3 = strtok_r(NULL, ", ", &save);
	check(t1 && t2 && t3 && !strcmp(t1, "a") && !strcmp(t2, "b") && !strcmp(t3, "c") && !strtok_r(NULL, ", ", &save),
	      "strtok_r");
	check(!strcasecmp("Policy", "pOLICY") && strncasecmp("abc", "abd", 3) < 0, "strcasecmp");
	check(strstr("hello world", "o w") && !strstr("abc", "abd"), "strstr");
}

static void sorting(void)
{
	int v[257];
	for (int i = 0; i < 257; i++)
		v[i] = (i * 7919) % 257 - 100;
	qsort(v, 257, sizeof(int), cmp_int);
	int sorted = 1;
	for (int i = 1; i < 257; i++)
		sorted &= v[i - 1] <= v[i];
	check(sorted && v[0] == -100 && v[256] == 156, "qsort");
	int key = 42;
	int *hit = bsearch(&key, v, 257, sizeof(int), cmp_int);
	check(hit && *hit == 42, "bsearch finds");
	key = 1000;
	check(!bsearch(&key, v, 257, sizeof(int), cmp_int), "bsearch misses");
}

static void calendar(void)
{
	/* From Python's time.gmtime: t, Y-M-D h:m:s, yday (1-based), wday. */
	static const struct {
		long t;
		int y, mo, d, h, mi, s, yday, wday;
	} cases[] = {
		{ 0, 1970, 1, 1, 0, 0, 0, 1, 4 },
		{ 951782400, 2000, 2, 29, 0, 0, 0, 60, 2 },
		{ 1796083200, 2026, 12, 1, 0, 0, 0, 335, 2 },
		{ 4102444800, 2100, 1, 1, 0, 0, 0, 1, 5 },
		{ -86400, 1969, 12, 31, 0, 0, 0, 365, 3 },
		{ 1709251199, 2024, 2, 29, 23, 59, 59, 60, 4 },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tm tm;
		time_t t = cases[i].t;
		gmtime_r(&t, &tm);
		check(tm.tm_year + 1900 == cases[i].y && tm.tm_mon + 1 == cases[i].mo && tm.tm_mday == cases[i].d &&
			      tm.tm_hour == cases[i].h && tm.tm_min == cases[i].mi && tm.tm_sec == cases[i].s &&
			      tm.tm_yday + 1 == cases[i].yday && tm.tm_wday == cases[i].wday,
		      "gmtime_r");
		check(timegm(&tm) == t, "timegm(gmtime_r(t)) == t");
	}
	struct tm carry = { .tm_year = 126, .tm_mon = 12, .tm_mday = 1 }; /* month 13 of 2026 */
	check(timegm(&carry) == 1798761600 && carry.tm_year == 127 && carry.tm_mon == 0, "timegm carries the month");
}

static void locks(void)
{
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t c = PTHREAD_COND_INITIALIZER;
	check(pthread_mutex_lock(&m) == 0 && pthread_mutex_trylock(&m) != 0, "trylock on a held mutex fails");
	uint64_t t0 = metal_now_ns();
	struct timespec ts = { .tv_sec = (time_t)((t0 + 20000000) / 1000000000),
			       .tv_nsec = (long)((t0 + 20000000) % 1000000000) };
	check(pthread_cond_timedwait(&c, &m, &ts) == ETIMEDOUT && metal_now_ns() >= t0 + 20000000,
	      "cond_timedwait times out at its deadline on the only CPU");
	check(pthread_mutex_unlock(&m) == 0 && pthread_mutex_trylock(&m) == 0, "unlock, then lock again");
	pthread_mutex_unlock(&m);
}

/* --selftest smp: the APs come up, and a mutex and a condition pass
 * between two CPUs (the lock shim's spinning path). */
static pthread_mutex_t smp_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t smp_c = PTHREAD_COND_INITIALIZER;
static volatile unsigned smp_ran, smp_flag;

static void smp_entry(unsigned cpu)
{
	__atomic_add_fetch(&smp_ran, 1, __ATOMIC_ACQ_REL);
	if (cpu == 1) {
		pthread_mutex_lock(&smp_m);
		smp_flag = 1;
		pthread_cond_signal(&smp_c);
		pthread_mutex_unlock(&smp_m);
	}
	for (;;)
		__asm__ volatile("cli; hlt");
}

static void smp(void)
{
	pthread_mutex_lock(&smp_m);
	unsigned n = metal_smp_start(64, smp_entry);
	metal_log("selftest smp: %u CPUs online", n);
	if (n > 1) {
		while (!smp_flag)
			pthread_cond_wait(&smp_c, &smp_m); /* another CPU signals: no deadlock report */
		check(smp_flag == 1, "smp: a condition signalled from another CPU");
	}
	pthread_mutex_unlock(&smp_m);
	for (unsigned i = 0; i < 1000 && smp_ran < n - 1; i++)
		for (uint64_t t0 = metal_now_ns(); metal_now_ns() - t0 < 1000000;)
			__asm__ volatile("pause");
	metal_log("selftest smp: %u application processor(s) ran their entry, CPU index here %u", smp_ran,
		  metal_cpu_index());
	check(smp_ran == n - 1, "smp: every AP ran its entry");
}

void metal_selftest(const char *kind)
{
	metal_log("selftest: %s", kind);
	if (!strcmp(kind, "libc")) {
		heap();
		conversions();
		sorting();
		calendar();
		locks();
		metal_log("selftest libc: %u checks, %u failed", checks, failed);
		metal_poweroff(failed ? 1 : 0);
	}
	if (!strcmp(kind, "smp")) {
		smp();
		metal_log("selftest smp: %u checks, %u failed", checks, failed);
		metal_poweroff(failed ? 1 : 0);
	}
	if (!strcmp(kind, "fault")) {
		volatile uint64_t *bad = (volatile uint64_t *)(uintptr_t)0x8000000000ull; /* above the 4 GiB mapped */
		(void)*bad;
	} else if (!strcmp(kind, "abort")) {
		abort();
	} else if (!strcmp(kind, "deadlock")) {
		pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
		pthread_cond_t c = PTHREAD_COND_INITIALIZER;
		pthread_mutex_lock(&m);
		pthread_cond_wait(&c, &m);
	}
	metal_log("selftest %s: still running", kind);
	metal_poweroff(1);
}
