/* strtod — for jansson's real numbers only (no policy field is a real, but
 * the JSON parser converts any it meets). This file alone is built with
 * SSE (mk/metal.mk): it runs while a policy module is parsed, before the
 * first VMRUN, never with guest state in the registers. Decimal input as
 * JSON writes it; up to 19 significant digits are kept and scaled by
 * powers of ten, so the last bit may differ from a correctly rounded
 * conversion. Overflow gives ±HUGE_VAL with ERANGE. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

double strtod(const char *restrict s, char **restrict end)
{
	const char *p = s;
	bool neg = false, any = false;
	uint64_t mant = 0;
	int exp10 = 0, kept = 0;

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	for (; isdigit((unsigned char)*p); p++, any = true) {
		if (kept < 19) {
			mant = mant * 10 + (uint64_t)(*p - '0');
			kept += mant != 0;
		} else
			exp10++;
	}
	if (*p == '.') {
		p++;
		for (; isdigit((unsigned char)*p); p++, any = true)
			if (kept < 19) {
				mant = mant * 10 + (uint64_t)(*p - '0');
				kept += mant != 0;
				exp10--;
			}
	}
	if (!any) {
		if (end)
			*end = (char *)s;
		return 0;
	}
	if (*p == 'e' || *p == 'E') {
		const char *q = p + 1;
		bool eneg = false;
		if (*q == '+' || *q == '-')
			eneg = *q++ == '-';
		if (isdigit((unsigned char)*q)) {
			int e = 0;
			for (; isdigit((unsigned char)*q); q++)
				if (e < 100000)
					e = e * 10 + (*q - '0');
			exp10 += eneg ? -e : e;
			p = q;
		}
	}
	if (end)
		*end = (char *)p;
	double v = (double)mant;
	if (v != 0) {
		double scale = 10.0;
		unsigned n = (unsigned)(exp10 < 0 ? -exp10 : exp10);
		double f = 1.0;
		for (; n; n >>= 1, scale *= scale)
			if (n & 1)
				f *= scale;
		v = exp10 < 0 ? v / f : v * f;
		if (v > 1.7976931348623157e308) {
			errno = ERANGE;
			v = __builtin_huge_val();
		} else if (v == 0)
			errno = ERANGE;
	}
	return neg ? -v : v;
}
