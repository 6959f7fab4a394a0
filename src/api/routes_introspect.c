/* routes_introspect — vigil's calls that look into the guest: memory by
 * physical or virtual address (raw bytes), a vCPU's translation of an
 * address, the core dump. Their arguments come in the query string, which
 * is hostile like any body: every key known, none twice, every number
 * whole. The reading itself is the VMM's (vmm/introspect.c). */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/routes_int.h"
#include "arch/x86/pagewalk.h"
#include "vmm/introspect.h"

#define MAX_ARGS 4

struct arg {
	const char *key;
	char val[32];
	bool set;
};

/* What goes back in a message: printable ASCII only (the fault message is
 * JSON, and a query can hold any byte). */
static const char *shown(char *dst, size_t size, const char *s, size_t len)
{
	size_t i;
	for (i = 0; i < len && s[i] && i + 1 < size; i++)
		dst[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	dst[i] = 0;
	return dst;
}

/* Fills args[] (keys preset, NULL-terminated list) from the query. */
static int parse_query(struct ctx *x, const char *what, struct arg *args)
{
	const char *q = x->query;
	while (*q) {
		const char *end = strchr(q, '&'), *eq;
		size_t n = end ? (size_t)(end - q) : strlen(q);
		eq = memchr(q, '=', n);
		size_t klen = eq ? (size_t)(eq - q) : n;
		struct arg *a = NULL;
		for (struct arg *p = args; p->key && !a; p++)
			if (strlen(p->key) == klen && !strncmp(p->key, q, klen))
				a = p;
		if (!a) {
			if (!n) { /* "a=1&&b=2": an empty item is harmless */
				q += end ? 1 : 0;
				continue;
			}
			char k[33];
			return snprintf(x->err, sizeof(x->err), "%s: unknown query parameter `%s`", what,
					shown(k, sizeof(k), q, klen)),
			       -1;
		}
		if (a->set)
			return snprintf(x->err, sizeof(x->err), "%s: `%s` given twice", what, a->key), -1;
		size_t vlen = eq ? n - klen - 1 : 0;
		if (vlen >= sizeof(a->val))
			return snprintf(x->err, sizeof(x->err), "%s: `%s` is too long to be a number", what,
					a->key),
			       -1;
		memcpy(a->val, eq ? eq + 1 : "", vlen);
		a->val[vlen] = 0;
		a->set = true;
		q += n + (end ? 1 : 0);
	}
	return 0;
}

/* A number in hex (0x...) or decimal, all of it, no sign. */
static int number(struct ctx *x, const char *what, const struct arg *a, uint64_t *v)
{
	const char *s = a->val;
	bool hexa = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	const char *digits = hexa ? s + 2 : s;
	char *end;
	errno = 0;
	if (!*digits || !strchr("0123456789abcdefABCDEF", *digits) || (!hexa && !strchr("0123456789", *digits)))
		goto bad;
	*v = strtoull(digits, &end, hexa ? 16 : 10);
	if (errno || *end)
		goto bad;
	return 0;
bad:;
	char b[sizeof(a->val)];
	return snprintf(x->err, sizeof(x->err), "%s: %s '%s' is not a number (decimal, or hex with 0x)", what,
			a->key, shown(b, sizeof(b), s, sizeof(b))),
	       -1;
}

static int vcpu_number(struct ctx *x, const char *what, const char *s, unsigned *n)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *s < '0' || *s > '9' || *end || errno || v > 1024) {
		char b[33];
		return snprintf(x->err, sizeof(x->err), "%s: vCPU '%s': expected a vCPU number", what,
				shown(b, sizeof(b), s, sizeof(b))),
		       -1;
	}
	*n = (unsigned)v;
	return 0;
}

/* GET /vigil/memory?gpa=ADDR&len=N or ?gva=ADDR&vcpu=N&len=N */
int api_get_memory(struct ctx *x)
{
	struct arg args[] = { { .key = "gpa" }, { .key = "gva" }, { .key = "vcpu" }, { .key = "len" }, { 0 } };
	uint64_t addr, len;
	unsigned cpu = 0;
	const char *w = "memory";

	if (parse_query(x, w, args) < 0)
		return -1;
	bool gpa = args[0].set, gva = args[1].set;
	if (gpa == gva)
		return snprintf(x->err, sizeof(x->err), "%s: give exactly one of gpa and gva", w), -1;
	if (gva && !args[2].set)
		return snprintf(x->err, sizeof(x->err), "%s: gva needs vcpu (whose page tables translate it)", w),
		       -1;
	if (gpa && args[2].set)
		return snprintf(x->err, sizeof(x->err), "%s: vcpu goes with gva only", w), -1;
	if (!args[3].set)
		return snprintf(x->err, sizeof(x->err), "%s: missing len", w), -1;
	if (number(x, w, &args[gpa ? 0 : 1], &addr) < 0 || number(x, w, &args[3], &len) < 0)
		return -1;
	if (gva && vcpu_number(x, w, args[2].val, &cpu) < 0)
		return -1;
	if (len == 0 || len > VMM_MEM_MAX)
		return snprintf(x->err, sizeof(x->err), "%s: len %" PRIu64 " is out of range: 1 to %u (1 MiB)", w,
				len, VMM_MEM_MAX),
		       -1;
	char *buf = malloc(len);
	if (!buf)
		return snprintf(x->err, sizeof(x->err), "out of memory"), -1;
	int r = gpa ? vmm_read_gpa(x->m, addr, buf, len, x->err, sizeof(x->err))
		    : vmm_read_gva(x->m, cpu, addr, buf, len, x->err, sizeof(x->err));
	if (r < 0) {
		free(buf);
		return -1;
	}
	x->out->status = 200;
	x->out->content_type = "application/octet-stream";
	x->out->body = buf;
	x->out->len = len;
	return 0;
}

/* GET /vigil/vcpus/{n}/translate?gva=ADDR */
int api_get_translate(struct ctx *x)
{
	struct arg args[] = { { .key = "gva" }, { 0 } };
	struct pw_result res;
	uint64_t gva;
	unsigned cpu;
	const char *w = "translate";

	if (vcpu_number(x, w, x->id, &cpu) < 0 || parse_query(x, w, args) < 0)
		return -1;
	if (!args[0].set)
		return snprintf(x->err, sizeof(x->err), "%s: missing gva", w), -1;
	if (number(x, w, &args[0], &gva) < 0 || vmm_translate(x->m, cpu, gva, &res, x->err, sizeof(x->err)) < 0)
		return -1;
	api_set_json(x->out, 200,
		     json_pack("{s:o, s:o, s:I, s:b, s:b, s:b}", "gva", api_hex(gva), "gpa", api_hex(res.gpa),
			       "page_size", (json_int_t)res.page_size, "writable", res.writable, "user",
			       res.user, "nx", res.nx));
	return 0;
}

/* PUT /vigil/dump {"path": "..."} */
int api_put_dump(struct ctx *x)
{
	if (api_only_field(x, "dump", "path") < 0)
		return -1;
	const char *path = json_string_value(json_object_get(x->body, "path"));
	if (!path[0])
		return snprintf(x->err, sizeof(x->err), "dump: path is empty"), -1;
	return vmm_dump(x->m, path, x->err, sizeof(x->err));
}
