/* The policy file's value readers (policy_json_int.h): numbers, ranges
 * and lists, names and enums, and the one error format naming the rule
 * and the field that every reader uses. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errmsg.h"
#include "vmm/policy_json_int.h"

/* --- errors ----------------------------------------------------------- */

int pj_err(struct pj_ctx *x, const char *field, const char *fmt, ...)
{
	char msg[320];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (x->id)
		return errmsg(x->err, x->errlen, "policy: rule \"%s\" (#%u): %s%s%s", x->id, x->n,
			      field ? field : "", field ? ": " : "", msg);
	return errmsg(x->err, x->errlen, "policy: rule #%u: %s%s%s", x->n, field ? field : "",
		      field ? ": " : "", msg);
}

/* A JSON value in a message: short and printable. */
void pj_shown(const char *s, char *out, size_t len)
{
	size_t i = 0;
	for (; s[i] && i + 1 < len && i < 40; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
	out[i] = 0;
	if (s[i] && i >= 40 && len > 44)
		strcpy(out + i, "...");
}

/* --- numbers and ranges ----------------------------------------------- */

int policy_parse_u64(const char *s, uint64_t *v)
{
	uint64_t r = 0;
	unsigned base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return -1;
	for (; *s; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return -1;
		if (r > (UINT64_MAX - d) / base)
			return -1;
		r = r * base + d;
	}
	*v = r;
	return 0;
}

/* A number: a JSON integer >= 0 or a string in hex or decimal, at most max. */
int pj_num(struct pj_ctx *x, const char *field, json_t *v, uint64_t max, uint64_t *out)
{
	char b[48];
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i < 0 || (uint64_t)i > max)
			return pj_err(x, field, "%lld is out of range (0 to 0x%llx)", (long long)i,
				      (unsigned long long)max);
		*out = (uint64_t)i;
		return 0;
	}
	if (!json_is_string(v))
		return pj_err(x, field, "must be a number (an integer, or a string such as \"0x2f8\")");
	pj_shown(json_string_value(v), b, sizeof(b));
	if (policy_parse_u64(json_string_value(v), out) < 0)
		return pj_err(x, field, "\"%s\" is not a number (hex \"0x...\" or decimal)", b);
	if (*out > max)
		return pj_err(x, field, "\"%s\" is out of range (0 to 0x%llx)", b, (unsigned long long)max);
	return 0;
}

static int get_range(struct pj_ctx *x, const char *field, json_t *v, uint64_t max, struct policy_range *r)
{
	if (json_is_string(v)) {
		const char *s = json_string_value(v), *dash = strchr(s, '-');
		char b[48], a[32];
		pj_shown(s, b, sizeof(b));
		if (dash) {
			size_t n = (size_t)(dash - s);
			if (n < sizeof(a)) {
				memcpy(a, s, n);
				a[n] = 0;
			}
			if (n >= sizeof(a) || policy_parse_u64(a, &r->first) < 0 ||
			    policy_parse_u64(dash + 1, &r->last) < 0)
				return pj_err(
				    x, field,
				    "\"%s\" is not a range (\"A-B\", A and B in hex \"0x...\" or decimal)",
				    b);
			if (r->first > max || r->last > max)
				return pj_err(x, field, "\"%s\" is out of range (0 to 0x%llx)", b,
					      (unsigned long long)max);
			if (r->first > r->last)
				return pj_err(x, field, "reversed range \"%s\"", b);
			return 0;
		}
	}
	if (pj_num(x, field, v, max, &r->first) < 0)
		return -1;
	r->last = r->first;
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct policy_range *x = a, *y = b;
	return x->first < y->first ? -1 : x->first > y->first;
}

static void range_text(const struct policy_range *r, char *b, size_t n)
{
	if (r->first == r->last)
		snprintf(b, n, "0x%llx", (unsigned long long)r->first);
	else
		snprintf(b, n, "0x%llx-0x%llx", (unsigned long long)r->first, (unsigned long long)r->last);
}

/* A list field: one value or range, or an array of them (1..POLICY_MAX_RANGES).
 * Overlapping entries are refused: the second could never be told apart. */
int pj_ranges(struct pj_ctx *x, const char *field, json_t *v, uint64_t max, struct policy_rule *r)
{
	size_t n = json_is_array(v) ? json_array_size(v) : 1;
	if (json_is_array(v) && n == 0)
		return pj_err(x, field, "empty list (leave the field out to match any)");
	if (n > POLICY_MAX_RANGES)
		return pj_err(x, field, "%zu entries, at most %d", n, POLICY_MAX_RANGES);
	struct policy_range *rs = calloc(n, sizeof(*rs));
	if (!rs)
		return pj_err(x, field, "out of memory");
	for (size_t i = 0; i < n; i++)
		if (get_range(x, field, json_is_array(v) ? json_array_get(v, i) : v, max, &rs[i]) < 0) {
			free(rs);
			return -1;
		}
	struct policy_range *sorted = malloc(n * sizeof(*sorted));
	if (!sorted) {
		free(rs);
		return pj_err(x, field, "out of memory");
	}
	memcpy(sorted, rs, n * sizeof(*rs));
	qsort(sorted, n, sizeof(*sorted), cmp_range);
	for (size_t i = 1; i < n; i++)
		if (sorted[i].first <= sorted[i - 1].last) {
			char a[48], b[48];
			range_text(&sorted[i - 1], a, sizeof(a));
			range_text(&sorted[i], b, sizeof(b));
			free(sorted);
			free(rs);
			return pj_err(x, field, "%s overlaps %s", b, a);
		}
	free(sorted);
	free(r->ranges);
	r->ranges = rs;
	r->nranges = (unsigned)n;
	return 0;
}

/* One of names[] (NULL-terminated); its index in *out. */
int pj_enum(struct pj_ctx *x, const char *field, json_t *v, const char *const *names, int *out)
{
	char list[160] = "";
	if (json_is_string(v))
		for (int i = 0; names[i]; i++)
			if (!strcmp(json_string_value(v), names[i])) {
				*out = i;
				return 0;
			}
	for (int i = 0; names[i]; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s\"%s\"",
			 i ? names[i + 1] ? ", " : " or " : "", names[i]);
	if (!json_is_string(v))
		return pj_err(x, field, "must be %s", list);
	char b[48];
	pj_shown(json_string_value(v), b, sizeof(b));
	return pj_err(x, field, "\"%s\" is not %s", b, list);
}

int pj_name(struct pj_ctx *x, const char *field, json_t *v, char *out, size_t size)
{
	if (!json_is_string(v) || !json_string_length(v))
		return pj_err(x, field, "must be a non-empty string");
	const char *s = json_string_value(v);
	if (json_string_length(v) >= size)
		return pj_err(x, field, "longer than %zu characters", size - 1);
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_'))
			return pj_err(x, field, "only letters, digits and '_' (a drive_id or iface_id)");
	strcpy(out, s);
	return 0;
}
