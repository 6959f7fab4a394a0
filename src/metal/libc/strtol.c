/* strtol and friends — C semantics: leading space, a sign, base 0 (0x /
 * 0 prefixes) or 2..36, the end pointer, ERANGE with the limit on
 * overflow. One unsigned core does the digits. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>

static int digit(int c)
{
	if (isdigit(c))
		return c - '0';
	if (isalpha(c))
		return tolower(c) - 'a' + 10;
	return 99;
}

/* The magnitude, saturated at `limit` (ERANGE); *neg the sign read. */
static unsigned long long parse(const char *s, char **end, int base, unsigned long long limit, bool *neg)
{
	const char *p = s;
	unsigned long long v = 0;
	bool any = false, over = false;

	*neg = false;
	if (base < 0 || base == 1 || base > 36) {
		errno = EINVAL;
		if (end)
			*end = (char *)s;
		return 0;
	}
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '+' || *p == '-')
		*neg = *p++ == '-';
	if ((base == 0 || base == 16) && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') &&
	    digit((unsigned char)p[2]) < 16) {
		p += 2;
		base = 16;
	} else if (base == 0)
		base = p[0] == '0' ? 8 : 10;
	for (int d; (d = digit((unsigned char)*p)) < base; p++) {
		any = true;
		if (v > (limit - (unsigned)d) / (unsigned)base)
			over = true;
		else
			v = v * (unsigned)base + (unsigned)d;
	}
	if (end)
		*end = (char *)(any ? p : s);
	if (over) {
		errno = ERANGE;
		return limit;
	}
	return v;
}

unsigned long long strtoull(const char *restrict s, char **restrict end, int base)
{
	bool neg;
	unsigned long long v = parse(s, end, base, ULLONG_MAX, &neg);
	return neg ? -v : v;
}

unsigned long strtoul(const char *restrict s, char **restrict end, int base)
{
	return strtoull(s, end, base);
}

uintmax_t strtoumax(const char *restrict s, char **restrict end, int base)
{
	return strtoull(s, end, base);
}

long long strtoll(const char *restrict s, char **restrict end, int base)
{
	bool neg;
	/* A negative number may reach one more than LLONG_MAX. */
	unsigned long long v = parse(s, end, base, (unsigned long long)LLONG_MAX + 1, &neg);
	if (!neg && v > (unsigned long long)LLONG_MAX) {
		errno = ERANGE;
		return LLONG_MAX;
	}
	return neg ? (long long)(0 - v) : (long long)v;
}

long strtol(const char *restrict s, char **restrict end, int base)
{
	return strtoll(s, end, base);
}

int atoi(const char *s)
{
	return (int)strtol(s, NULL, 10);
}

int abs(int v)
{
	return v < 0 ? -v : v;
}

long labs(long v)
{
	return v < 0 ? -v : v;
}

long long llabs(long long v)
{
	return v < 0 ? -v : v;
}
