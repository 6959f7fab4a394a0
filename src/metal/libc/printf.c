/* printf — vsnprintf for vigil-metal: the conversions vigil's code uses
 * (d i u x X o c s p %, with flags - 0 + space #, width, precision, `*`, and
 * the lengths hh h l ll z j t). No floating point: the image's own code is
 * built without SSE. C99 semantics: returns the length the whole output
 * would have had; writes at most n-1 bytes and a NUL when n > 0. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct out {
	char *buf;
	size_t n, len;
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->n)
		o->buf[o->len] = c;
	o->len++;
}

static void pad(struct out *o, char c, int count)
{
	while (count-- > 0)
		put(o, c);
}

struct spec {
	int left, zero, plus, space, alt;
	int width, prec; /* prec -1: none */
};

static void emit_str(struct out *o, const struct spec *sp, const char *s)
{
	size_t len = sp->prec >= 0 ? strnlen(s, (size_t)sp->prec) : strlen(s);
	int fill = sp->width > (int)len ? sp->width - (int)len : 0;
	if (!sp->left)
		pad(o, ' ', fill);
	for (size_t i = 0; i < len; i++)
		put(o, s[i]);
	if (sp->left)
		pad(o, ' ', fill);
}

static void emit_num(struct out *o, const struct spec *sp, uintmax_t v, int neg, unsigned base, int upper,
		     const char *prefix)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[72];
	int nd = 0;
	if (v == 0 && sp->prec == 0)
		nd = 0;
	else
		do {
			tmp[nd++] = digits[v % base];
			v /= base;
		} while (v);
	int zeros = sp->prec > nd ? sp->prec - nd : 0;
	char sign = neg ? '-' : sp->plus ? '+' : sp->space ? ' ' : 0;
	int plen = (int)strlen(prefix) + (sign != 0);
	int total = plen + zeros + nd;
	int fill = sp->width > total ? sp->width - total : 0;
	if (sp->zero && !sp->left && sp->prec < 0) {
		zeros += fill;
		fill = 0;
	}
	if (!sp->left)
		pad(o, ' ', fill);
	if (sign)
		put(o, sign);
	for (const char *p = prefix; *p; p++)
		put(o, *p);
	pad(o, '0', zeros);
	while (nd)
		put(o, tmp[--nd]);
	if (sp->left)
		pad(o, ' ', fill);
}

int vsnprintf(char *restrict buf, size_t n, const char *restrict fmt, va_list ap)
{
	struct out o = { buf, n, 0 };
	for (const char *f = fmt; *f; f++) {
		if (*f != '%') {
			put(&o, *f);
			continue;
		}
		struct spec sp = { .prec = -1 };
		for (;; f++) {
			char c = f[1];
			if (c == '-')
				sp.left = 1;
			else if (c == '0')
				sp.zero = 1;
			else if (c == '+')
				sp.plus = 1;
			else if (c == ' ')
				sp.space = 1;
			else if (c == '#')
				sp.alt = 1;
			else
				break;
		}
		f++;
		if (*f == '*') {
			sp.width = va_arg(ap, int);
			if (sp.width < 0) {
				sp.left = 1;
				sp.width = -sp.width;
			}
			f++;
		} else
			while (*f >= '0' && *f <= '9')
				sp.width = sp.width * 10 + (*f++ - '0');
		if (*f == '.') {
			f++;
			sp.prec = 0;
			if (*f == '*') {
				sp.prec = va_arg(ap, int);
				if (sp.prec < 0)
					sp.prec = -1;
				f++;
			} else
				while (*f >= '0' && *f <= '9')
					sp.prec = sp.prec * 10 + (*f++ - '0');
		}
		int lng = 0; /* -2 hh, -1 h, 1 l, 2 ll, 3 z/j/t */
		for (;; f++) {
			if (*f == 'h')
				lng = lng == -1 ? -2 : -1;
			else if (*f == 'l')
				lng = lng == 1 ? 2 : 1;
			else if (*f == 'z' || *f == 'j' || *f == 't')
				lng = 3;
			else
				break;
		}
		char c = *f;
		if (!c)
			break;
		switch (c) {
		case 'd':
		case 'i': {
			intmax_t v = lng >= 1 ? va_arg(ap, long long) : va_arg(ap, int);
			if (lng == -1)
				v = (short)v;
			else if (lng == -2)
				v = (signed char)v;
			uintmax_t u = v < 0 ? (uintmax_t)0 - (uintmax_t)v : (uintmax_t)v;
			emit_num(&o, &sp, u, v < 0, 10, 0, "");
			break;
		}
		case 'u':
		case 'x':
		case 'X':
		case 'o': {
			uintmax_t v = lng >= 1 ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
			if (lng == -1)
				v = (unsigned short)v;
			else if (lng == -2)
				v = (unsigned char)v;
			unsigned base = c == 'u' ? 10 : c == 'o' ? 8 : 16;
			const char *prefix = "";
			if (sp.alt && v && base == 16)
				prefix = c == 'X' ? "0X" : "0x";
			else if (sp.alt && base == 8)
				prefix = "0";
			emit_num(&o, &sp, v, 0, base, c == 'X', prefix);
			break;
		}
		case 'p':
			emit_num(&o, &sp, (uintptr_t)va_arg(ap, void *), 0, 16, 0, "0x");
			break;
		case 'c': {
			char s[2] = { (char)va_arg(ap, int), 0 };
			struct spec cs = sp;
			cs.prec = 1;
			emit_str(&o, &cs, s);
			break;
		}
		case 's': {
			const char *s = va_arg(ap, const char *);
			emit_str(&o, &sp, s ? s : "(null)");
			break;
		}
		default:
			put(&o, c);
			break;
		}
	}
	if (n)
		buf[o.len < n ? o.len : n - 1] = 0;
	return (int)o.len;
}

int snprintf(char *restrict buf, size_t n, const char *restrict fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return r;
}
