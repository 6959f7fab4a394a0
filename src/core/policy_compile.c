/* policy_compile (core/policy.h): checks what a spec means, rule by rule,
 * then builds the lookup tables (core/policy_table.h) and, from them, finds
 * the rules that can never decide. The JSON reader has already checked types
 * and unknown fields; here a rule is refused for what it says. Every refusal
 * is one line naming the rule and the field; where several rules are wrong,
 * the first in rule order is named. */
#include "core/policy_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cc {
	const struct policy_spec *s;
	struct policy *p;
	char *err;
	size_t errlen;
	uint32_t bad;     /* the rule err names (UINT32_MAX: none yet) */
	uint8_t *seen;    /* nrules: the rule labels some table entry */
	struct ptab_iv *iv;
};

static int id_len(const struct policy_rule *r)
{
	size_t n = strnlen(r->id, sizeof(r->id));
	return n > POLICY_ID_MAX ? POLICY_ID_MAX : (int)n;
}

/* Records the refusal of rule i unless an earlier rule is refused already. */
__attribute__((format(printf, 3, 4))) static void refuse(struct cc *c, uint32_t i, const char *fmt, ...)
{
	if (i >= c->bad)
		return;
	c->bad = i;
	const struct policy_rule *r = &c->s->rules[i];
	int n = id_len(r) && strnlen(r->id, sizeof(r->id)) <= POLICY_ID_MAX
			? snprintf(c->err, c->errlen, "rule \"%.*s\": ", id_len(r), r->id)
			: snprintf(c->err, c->errlen, "rule #%u: ", i);
	if (n < 0 || (size_t)n >= c->errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static const char *range_field(enum policy_resource res)
{
	switch (res) {
	case POL_RES_MMIO: return "addresses";
	case POL_RES_MSR: return "msrs";
	case POL_RES_DISK: return "sectors";
	default: return "ports";
	}
}

static uint64_t range_max(enum policy_resource res)
{
	switch (res) {
	case POL_RES_PIO:
	case POL_RES_NET: return 0xffff;
	case POL_RES_MSR:
	case POL_RES_VSOCK: return 0xffffffff;
	default: return UINT64_MAX;
	}
}

static bool addr_like(enum policy_resource res)
{
	return res == POL_RES_PIO || res == POL_RES_MMIO || res == POL_RES_MSR;
}

/* "0x2f8-0x2ff", "17", "every sector": a range as the message shows it. */
static const char *range_text(char *buf, size_t len, enum policy_resource res, uint64_t first, uint64_t last)
{
	bool hex = addr_like(res);
	if (first == 0 && last == range_max(res) && !hex)
		snprintf(buf, len, "every %s", res == POL_RES_DISK ? "sector" : "port");
	else if (first == last)
		snprintf(buf, len, hex ? "0x%" PRIx64 : "%" PRIu64, first);
	else
		snprintf(buf, len, hex ? "0x%" PRIx64 "-0x%" PRIx64 : "%" PRIu64 "-%" PRIu64, first, last);
	return buf;
}

/* A field that belongs to another resource, or a meaning the resource
 * does not have; NULL when the rule only uses its own fields. */
static const char *foreign_field(const struct policy_rule *r)
{
	enum policy_resource res = r->resource;
	bool any_mask = r->regs[0].mask || r->regs[1].mask || r->regs[2].mask || r->regs[3].mask;
	if (r->access != POL_ACC_ANY && !addr_like(res) && res != POL_RES_DISK)
		return "access";
	if (r->nranges && (res == POL_RES_CPUID || res == POL_RES_RTC))
		return "ranges";
	if (r->has_value && !addr_like(res))
		return "value";
	if (r->has_to && res != POL_RES_PIO && res != POL_RES_MMIO)
		return "to";
	if (any_mask && res != POL_RES_CPUID)
		return "registers";
	if ((r->leaf || r->has_subleaf) && res != POL_RES_CPUID)
		return "leaf";
	if (r->drive[0] && res != POL_RES_DISK)
		return "drive";
	if (r->overlay && res != POL_RES_DISK)
		return "overlay";
	if (r->iface[0] && res != POL_RES_NET)
		return "iface";
	if ((r->dst_prefix || r->dst_ip) && res != POL_RES_NET)
		return "dst";
	if ((r->to_port || r->to_ip) && res != POL_RES_NET)
		return "to";
	if (r->to_vport && res != POL_RES_VSOCK)
		return "to_port";
	return NULL;
}

/* What one rule says on its own; false (and err) when it cannot be used. */
static bool check_rule(struct cc *c, uint32_t i)
{
	const struct policy_rule *r = &c->s->rules[i];
	size_t idl = strnlen(r->id, sizeof(r->id));
	if (!idl)
		return refuse(c, i, "id: empty"), false;
	if (idl > POLICY_ID_MAX)
		return refuse(c, i, "id: longer than %d bytes", POLICY_ID_MAX), false;
	if ((unsigned)r->resource >= POL_RES__COUNT)
		return refuse(c, i, "resource: unknown (%d)", (int)r->resource), false;
	if ((unsigned)r->verdict > POLICY_DENY)
		return refuse(c, i, "verdict: unknown (%d)", (int)r->verdict), false;
	if ((unsigned)r->access > POL_ACC_FLUSH)
		return refuse(c, i, "access: unknown (%d)", (int)r->access), false;
	if (strnlen(r->drive, sizeof(r->drive)) > POLICY_NAME_MAX)
		return refuse(c, i, "drive: longer than %d bytes", POLICY_NAME_MAX), false;
	if (strnlen(r->iface, sizeof(r->iface)) > POLICY_NAME_MAX)
		return refuse(c, i, "iface: longer than %d bytes", POLICY_NAME_MAX), false;

	enum policy_resource res = r->resource;
	const char *rname = policy_resource_name(res);
	const char *f = foreign_field(r);
	if (f)
		return refuse(c, i, "%s: not a field of %s rules", f, rname), false;
	if (r->access == POL_ACC_FLUSH && res != POL_RES_DISK)
		return refuse(c, i, "access: flush is for disk rules only"), false;

	const char *rf = range_field(res);
	char a[48];
	if (r->nranges > POLICY_MAX_RANGES)
		return refuse(c, i, "%s: %u ranges, at most %u", rf, r->nranges, POLICY_MAX_RANGES), false;
	if (r->nranges && !r->ranges)
		return refuse(c, i, "%s: missing", rf), false;
	for (unsigned k = 0; k < r->nranges; k++) {
		uint64_t lo = r->ranges[k].first, hi = r->ranges[k].last;
		bool hex = addr_like(res);
		if (lo > hi)
			return refuse(c, i, "%s: reversed range %s", rf, range_text(a, sizeof(a), res, lo, hi)),
			       false;
		if (hi > range_max(res))
			return refuse(c, i, hex ? "%s: 0x%" PRIx64 " is past the last, 0x%" PRIx64
						: "%s: %" PRIu64 " is past the last, %" PRIu64,
				      rf, hi, range_max(res)),
			       false;
	}
	bool redirect = r->verdict == POLICY_REDIRECT;
	switch (res) {
	case POL_RES_PIO:
	case POL_RES_MMIO:
	case POL_RES_MSR:
		if (!r->nranges)
			return refuse(c, i, "%s: none given", rf), false;
		if (!redirect && (r->has_value || r->has_to))
			return refuse(c, i, "%s: only a redirect takes one", r->has_value ? "value" : "to"), false;
		if (redirect && res == POL_RES_MSR && !r->has_value)
			return refuse(c, i, "value: an msr redirect needs the value reads return"), false;
		if (redirect && !r->has_value && !r->has_to)
			return refuse(c, i, "value: a redirect needs \"value\" or \"to\""), false;
		if (r->has_value && r->has_to)
			return refuse(c, i, "to: a redirect takes \"value\" or \"to\", not both"), false;
		for (unsigned k = 0; r->has_to && k < r->nranges; k++) {
			uint64_t span = r->ranges[k].last - r->ranges[k].first;
			if (span > range_max(res) - (r->to > range_max(res) ? range_max(res) : r->to) ||
			    r->to > range_max(res))
				return refuse(c, i, "to: 0x%" PRIx64 " plus range %s runs past 0x%" PRIx64, r->to,
					      range_text(a, sizeof(a), res, r->ranges[k].first, r->ranges[k].last),
					      range_max(res)),
				       false;
		}
		break;
	case POL_RES_CPUID:
		if (!redirect)
			return refuse(c, i, "verdict: cpuid rules take redirect only"), false;
		if (!(r->regs[0].mask | r->regs[1].mask | r->regs[2].mask | r->regs[3].mask))
			return refuse(c, i, "registers: none given"), false;
		break;
	case POL_RES_RTC:
		if (!redirect)
			return refuse(c, i, "verdict: rtc rules take redirect only"), false;
		if ((unsigned)r->rtc_kind > POL_RTC_OFFSET)
			return refuse(c, i, "epoch: unknown kind (%d)", (int)r->rtc_kind), false;
		if (r->rtc_kind == POL_RTC_EPOCH && r->epoch_ns > 999999999u)
			return refuse(c, i, "epoch: %u nanoseconds", r->epoch_ns), false;
		break;
	case POL_RES_DISK:
		if (!r->drive[0])
			return refuse(c, i, "drive: missing"), false;
		if (redirect && (!r->overlay || !r->overlay[0]))
			return refuse(c, i, "overlay: a disk redirect needs one"), false;
		if (!redirect && r->overlay)
			return refuse(c, i, "overlay: only a redirect takes one"), false;
		break;
	case POL_RES_NET:
		if ((unsigned)r->dir > POL_DIR_INGRESS)
			return refuse(c, i, "direction: unknown (%d)", (int)r->dir), false;
		if ((unsigned)r->proto > POL_PROTO_ICMP)
			return refuse(c, i, "proto: unknown (%d)", (int)r->proto), false;
		if (r->dst_prefix > 32)
			return refuse(c, i, "dst: prefix /%u is longer than 32", r->dst_prefix), false;
		if (r->proto == POL_PROTO_ICMP && r->nranges)
			return refuse(c, i, "ports: icmp has no ports"), false;
		if (redirect && !r->to_port)
			return refuse(c, i, "to: a net redirect needs HOST:PORT"), false;
		if (!redirect && (r->to_port || r->to_ip))
			return refuse(c, i, "to: only a redirect takes one"), false;
		break;
	case POL_RES_VSOCK:
		if ((unsigned)r->vdir > POL_VSOCK_H2G)
			return refuse(c, i, "direction: unknown (%d)", (int)r->vdir), false;
		if (redirect && !r->to_vport)
			return refuse(c, i, "to_port: a vsock redirect needs one"), false;
		if (!redirect && r->to_vport)
			return refuse(c, i, "to_port: only a redirect takes one"), false;
		break;
	default: break;
	}
	return true;
}

/* qsort has no context: sort pointers into the rule array, which also
 * orders equal keys by rule order. */
static int by_ptr(const struct policy_rule *x, const struct policy_rule *y)
{
	return (x > y) - (x < y);
}

static int cmp_id(const void *a, const void *b)
{
	const struct policy_rule *x = *(const struct policy_rule *const *)a, *y = *(const struct policy_rule *const *)b;
	int c = strcmp(x->id, y->id);
	return c ? c : by_ptr(x, y);
}

static int cmp_drive(const void *a, const void *b)
{
	const struct policy_rule *x = *(const struct policy_rule *const *)a, *y = *(const struct policy_rule *const *)b;
	int c = strcmp(x->drive, y->drive);
	return c ? c : by_ptr(x, y);
}

static uint32_t net_mask(const struct policy_rule *r)
{
	return !r->dst_prefix ? 0 : r->dst_prefix >= 32 ? 0xffffffffu : ~(0xffffffffu >> r->dst_prefix);
}

/* Two net rules that match exactly the same flows compare equal. */
static int net_key(const struct policy_rule *x, const struct policy_rule *y)
{
	if (x->dir != y->dir)
		return x->dir < y->dir ? -1 : 1;
	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	int c = strcmp(x->iface, y->iface);
	if (c)
		return c;
	if (x->dst_prefix != y->dst_prefix)
		return x->dst_prefix < y->dst_prefix ? -1 : 1;
	uint32_t xi = x->dst_ip & net_mask(x), yi = y->dst_ip & net_mask(y);
	if (xi != yi)
		return xi < yi ? -1 : 1;
	if (x->nranges != y->nranges)
		return x->nranges < y->nranges ? -1 : 1;
	return x->nranges ? memcmp(x->ranges, y->ranges, x->nranges * sizeof(*x->ranges)) : 0;
}

static int cmp_net(const void *a, const void *b)
{
	const struct policy_rule *x = *(const struct policy_rule *const *)a, *y = *(const struct policy_rule *const *)b;
	int c = net_key(x, y);
	return c ? c : by_ptr(x, y);
}

/* The rules of one resource, sorted by cmp (rule order within equal keys).
 * NULL with *n = 0 when there are none; NULL with *n = SIZE_MAX: no memory. */
static const struct policy_rule **sorted_rules(const struct policy_spec *s, int res,
					       int (*cmp)(const void *, const void *), size_t *n)
{
	size_t k = 0;
	for (unsigned i = 0; i < s->nrules; i++)
		k += res < 0 || s->rules[i].resource == (enum policy_resource)res;
	*n = k;
	if (!k)
		return NULL;
	const struct policy_rule **v = malloc(k * sizeof(*v));
	if (!v) {
		*n = SIZE_MAX;
		return NULL;
	}
	k = 0;
	for (unsigned i = 0; i < s->nrules; i++)
		if (res < 0 || s->rules[i].resource == (enum policy_resource)res)
			v[k++] = &s->rules[i];
	qsort(v, k, sizeof(*v), cmp);
	return v;
}

static uint32_t index_of(const struct cc *c, const struct policy_rule *r)
{
	return (uint32_t)(r - c->s->rules);
}

static int check_ids(struct cc *c)
{
	size_t n;
	const struct policy_rule **v = sorted_rules(c->s, -1, cmp_id, &n);
	if (n == SIZE_MAX)
		return -ENOMEM;
	for (size_t k = 1; k < n; k++)
		if (strcmp(v[k - 1]->id, v[k]->id) == 0)
			refuse(c, index_of(c, v[k]), "id: duplicate (rule #%u has it too)", index_of(c, v[k - 1]));
	free(v);
	return 0;
}

/* Appends rule i's ranges (or the whole space when it has none) to c->iv. */
static size_t add_ranges(struct cc *c, size_t n, uint32_t i)
{
	const struct policy_rule *r = &c->s->rules[i];
	if (!r->nranges)
		c->iv[n++] = (struct ptab_iv){ 0, range_max(r->resource), i };
	for (unsigned k = 0; k < r->nranges; k++)
		c->iv[n++] = (struct ptab_iv){ r->ranges[k].first, r->ranges[k].last, i };
	return n;
}

static bool access_has(enum policy_access a, bool write)
{
	return a == POL_ACC_ANY || a == (write ? POL_ACC_WRITE : POL_ACC_READ);
}

static int build_access(struct cc *c)
{
	static const enum policy_resource res_of[3] = { POL_RES_PIO, POL_RES_MMIO, POL_RES_MSR };
	for (int sp = 0; sp < 3; sp++)
		for (int w = 0; w < 2; w++) {
			size_t n = 0;
			for (uint32_t i = 0; i < c->s->nrules; i++) {
				const struct policy_rule *r = &c->s->rules[i];
				if (r->resource == res_of[sp] && access_has(r->access, w))
					n = add_ranges(c, n, i);
			}
			if (ptab_build(&c->p->access[sp][w], c->iv, n, c->seen) < 0)
				return -ENOMEM;
		}
	/* Ports: the segments spread into one label per port. */
	for (int w = 0; w < 2 && (c->p->access[POLICY_PIO][0].n || c->p->access[POLICY_PIO][1].n); w++) {
		const struct ptab *t = &c->p->access[POLICY_PIO][w];
		uint32_t *v = malloc(0x10000 * sizeof(*v));
		if (!v)
			return -ENOMEM;
		for (size_t k = 0; k < 0x10000; k++)
			v[k] = PT_NONE;
		for (size_t k = 0; k < t->n; k++)
			for (uint64_t port = t->seg[k].first; port <= t->seg[k].last; port++)
				v[port] = t->min[t->n + k];
		c->p->port_rule[w] = v;
	}
	return 0;
}

static bool disk_has(enum policy_access a, int kind)
{
	return a == POL_ACC_ANY || (a == POL_ACC_READ && kind == REQ_READ) ||
	       (a == POL_ACC_WRITE && kind == REQ_WRITE) || (a == POL_ACC_FLUSH && kind == REQ_FLUSH);
}

static int build_disks(struct cc *c)
{
	size_t n;
	const struct policy_rule **v = sorted_rules(c->s, POL_RES_DISK, cmp_drive, &n);
	if (n == SIZE_MAX)
		return -ENOMEM;
	size_t nd = 0;
	for (size_t k = 0; k < n; k++)
		nd += !k || strcmp(v[k - 1]->drive, v[k]->drive) != 0;
	if (nd && !(c->p->drives = calloc(nd, sizeof(*c->p->drives)))) {
		free(v);
		return -ENOMEM;
	}
	for (size_t k = 0, g = 0; k < n; g++) {
		size_t e = k + 1;
		while (e < n && strcmp(v[e]->drive, v[k]->drive) == 0)
			e++;
		struct pol_drive *d = &c->p->drives[g];
		memcpy(d->name, v[k]->drive, sizeof(d->name));
		c->p->ndrives = (unsigned)g + 1;
		for (int kind = 0; kind < POL_DISK_KINDS; kind++) {
			size_t ni = 0;
			for (size_t j = k; j < e; j++)
				if (disk_has(v[j]->access, kind))
					ni = add_ranges(c, ni, index_of(c, v[j]));
			if (ptab_build(&d->kind[kind], c->iv, ni, c->seen) < 0) {
				free(v);
				return -ENOMEM;
			}
		}
		k = e;
	}
	free(v);
	return 0;
}

static int build_vsock(struct cc *c)
{
	for (int dir = 0; dir < 2; dir++) {
		size_t n = 0;
		for (uint32_t i = 0; i < c->s->nrules; i++) {
			const struct policy_rule *r = &c->s->rules[i];
			if (r->resource == POL_RES_VSOCK && (int)r->vdir == dir)
				n = add_ranges(c, n, i);
		}
		if (ptab_build(&c->p->vsock[dir], c->iv, n, c->seen) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int build_net(struct cc *c)
{
	uint8_t *final = calloc(c->s->nrules ? c->s->nrules : 1, 1);
	if (!final)
		return -ENOMEM;
	for (uint32_t i = 0; i < c->s->nrules; i++) {
		const struct policy_rule *r = &c->s->rules[i];
		final[i] = r->resource == POL_RES_NET && !r->iface[0] && !r->dst_prefix;
	}
	int rc = 0;
	for (int dir = 0; dir < 2 && !rc; dir++)
		for (int proto = 0; proto < POL_NET_PROTOS && !rc; proto++) {
			size_t n = 0;
			for (uint32_t i = 0; i < c->s->nrules; i++) {
				const struct policy_rule *r = &c->s->rules[i];
				if (r->resource == POL_RES_NET && (int)r->dir == dir &&
				    (r->proto == POL_PROTO_ANY || (int)r->proto == proto))
					n = add_ranges(c, n, i);
			}
			rc = pcand_build(&c->p->net[dir][proto], c->iv, n, final, c->seen);
		}
	free(final);
	if (rc == -E2BIG)
		snprintf(c->err, c->errlen,
			 "policy: net rules: more than %u (port range, rule) pairs to tell apart; "
			 "give rules fewer overlapping port ranges",
			 PCAND_MAX_ENTRIES);
	if (rc)
		return rc;
	/* A rule matching exactly what an earlier one matches never decides. */
	size_t n;
	const struct policy_rule **v = sorted_rules(c->s, POL_RES_NET, cmp_net, &n);
	if (n == SIZE_MAX)
		return -ENOMEM;
	for (size_t k = 1, g = 0; k < n; k++) {
		if (net_key(v[g], v[k]) != 0) {
			g = k;
			continue;
		}
		refuse(c, index_of(c, v[k]), "ports: never matches (rule \"%.*s\" matches the same flows first)",
		       id_len(v[g]), v[g]->id);
	}
	free(v);
	return 0;
}

static int cmp_cpuid(const void *a, const void *b)
{
	const struct pol_cpuid *x = a, *y = b;
	if (x->leaf != y->leaf)
		return x->leaf < y->leaf ? -1 : 1;
	if (x->subleaf != y->subleaf)
		return x->subleaf < y->subleaf ? -1 : 1;
	return (x->rule > y->rule) - (x->rule < y->rule);
}

/* Sorts t and keeps the first rule of each key; refuses the others. */
static size_t cpuid_unique(struct cc *c, struct pol_cpuid *t, size_t n, bool sub)
{
	qsort(t, n, sizeof(*t), cmp_cpuid);
	size_t u = 0;
	for (size_t k = 0; k < n; k++) {
		if (u && t[u - 1].leaf == t[k].leaf && t[u - 1].subleaf == t[k].subleaf) {
			const struct policy_rule *first = &c->s->rules[t[u - 1].rule];
			if (sub)
				refuse(c, t[k].rule,
				       "leaf: never matches (rule \"%.*s\" redirects leaf 0x%x subleaf 0x%x first)",
				       id_len(first), first->id, t[k].leaf, t[k].subleaf);
			else
				refuse(c, t[k].rule, "leaf: never matches (rule \"%.*s\" redirects leaf 0x%x first)",
				       id_len(first), first->id, t[k].leaf);
			continue;
		}
		t[u++] = t[k];
	}
	return u;
}

static int build_cpuid(struct cc *c)
{
	size_t ns = 0, na = 0;
	for (uint32_t i = 0; i < c->s->nrules; i++)
		if (c->s->rules[i].resource == POL_RES_CPUID)
			*(c->s->rules[i].has_subleaf ? &ns : &na) += 1;
	struct policy *p = c->p;
	if ((ns && !(p->cpuid_sub = malloc(ns * sizeof(*p->cpuid_sub)))) ||
	    (na && !(p->cpuid_any = malloc(na * sizeof(*p->cpuid_any)))))
		return -ENOMEM;
	ns = na = 0;
	for (uint32_t i = 0; i < c->s->nrules; i++) {
		const struct policy_rule *r = &c->s->rules[i];
		if (r->resource != POL_RES_CPUID)
			continue;
		if (r->has_subleaf)
			p->cpuid_sub[ns++] = (struct pol_cpuid){ r->leaf, r->subleaf, i };
		else
			p->cpuid_any[na++] = (struct pol_cpuid){ r->leaf, 0, i };
	}
	p->ncpuid_sub = cpuid_unique(c, p->cpuid_sub, ns, true);
	p->ncpuid_any = cpuid_unique(c, p->cpuid_any, na, false);
	/* A subleaf rule after a rule for its whole leaf never decides. */
	for (size_t k = 0; k < p->ncpuid_sub; k++) {
		const struct pol_cpuid *e = &p->cpuid_sub[k];
		for (size_t lo = 0, hi = p->ncpuid_any; lo < hi;) {
			size_t mid = lo + (hi - lo) / 2;
			const struct pol_cpuid *a = &p->cpuid_any[mid];
			if (a->leaf == e->leaf) {
				if (a->rule < e->rule)
					refuse(c, e->rule,
					       "subleaf: never matches (rule \"%.*s\" redirects every subleaf of "
					       "leaf 0x%x first)",
					       id_len(&c->s->rules[a->rule]), c->s->rules[a->rule].id, e->leaf);
				break;
			}
			if (a->leaf < e->leaf)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	return 0;
}

static void find_rtc(struct cc *c)
{
	c->p->rtc = -1;
	for (uint32_t i = 0; i < c->s->nrules; i++) {
		if (c->s->rules[i].resource != POL_RES_RTC)
			continue;
		if (c->p->rtc < 0) {
			c->p->rtc = (int)i;
			continue;
		}
		const struct policy_rule *first = &c->s->rules[c->p->rtc];
		refuse(c, i, "verdict: never matches (rule \"%.*s\" sets the clock first)", id_len(first), first->id);
	}
}

/* Whether an MSR decided by `label` must reach vigil (anything but a
 * silent provide). */
static bool msr_trapped(const struct cc *c, const struct ptab *t, uint64_t x)
{
	uint32_t label;
	if (!ptab_segment(t, x, &label))
		return false;
	const struct policy_rule *r = &c->s->rules[label];
	return r->verdict != POLICY_PROVIDE || r->audit;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* policy_msr_ranges' list: the read and write tables' segments cut into
 * pieces where either changes, the trapped ones merged. */
static int build_msr_ranges(struct cc *c)
{
	const struct ptab *rd = &c->p->access[POLICY_MSR][0], *wr = &c->p->access[POLICY_MSR][1];
	size_t nb = 2 * (rd->n + wr->n);
	if (!nb)
		return 0;
	uint64_t *b = malloc(nb * sizeof(*b));
	struct pol_msr_range *out = malloc(nb * sizeof(*out));
	if (!b || !out) {
		free(b);
		free(out);
		return -ENOMEM;
	}
	size_t k = 0;
	for (int t = 0; t < 2; t++)
		for (size_t i = 0; i < (t ? wr : rd)->n; i++) {
			const struct ptab_seg *sg = &(t ? wr : rd)->seg[i];
			b[k++] = sg->first;
			b[k++] = sg->last + 1; /* MSRs end at 0xffffffff: no wrap */
		}
	qsort(b, k, sizeof(*b), cmp_u64);
	size_t no = 0;
	for (size_t i = 0; i + 1 < k; i++) {
		if (b[i] == b[i + 1])
			continue;
		bool r = msr_trapped(c, rd, b[i]), w = msr_trapped(c, wr, b[i]);
		if (!r && !w)
			continue;
		if (no && out[no - 1].last + 1 == b[i] && out[no - 1].read == r && out[no - 1].write == w) {
			out[no - 1].last = (uint32_t)(b[i + 1] - 1);
			continue;
		}
		out[no++] = (struct pol_msr_range){ (uint32_t)b[i], (uint32_t)(b[i + 1] - 1), r, w };
	}
	free(b);
	c->p->msr = out;
	c->p->nmsr = no;
	return 0;
}

/* The table rule i is looked up in for its first range, for the message. */
static const struct ptab *table_of(const struct cc *c, const struct policy_rule *r)
{
	switch (r->resource) {
	case POL_RES_PIO: return &c->p->access[POLICY_PIO][r->access == POL_ACC_WRITE];
	case POL_RES_MMIO: return &c->p->access[POLICY_MMIO][r->access == POL_ACC_WRITE];
	case POL_RES_MSR: return &c->p->access[POLICY_MSR][r->access == POL_ACC_WRITE];
	case POL_RES_VSOCK: return &c->p->vsock[r->vdir];
	case POL_RES_DISK:
		for (unsigned d = 0; d < c->p->ndrives; d++)
			if (strcmp(c->p->drives[d].name, r->drive) == 0)
				return &c->p->drives[d].kind[r->access == POL_ACC_ANY ? REQ_READ
							    : r->access == POL_ACC_READ  ? REQ_READ
							    : r->access == POL_ACC_WRITE ? REQ_WRITE
											 : REQ_FLUSH];
		return NULL;
	default: return NULL;
	}
}

/* Rules that label no table entry: earlier rules decide all they match. */
static void check_shadowed(struct cc *c)
{
	for (uint32_t i = 0; i < c->s->nrules && i < c->bad; i++) {
		const struct policy_rule *r = &c->s->rules[i];
		if (c->seen[i] || r->resource == POL_RES_CPUID || r->resource == POL_RES_RTC)
			continue;
		const char *rf = range_field(r->resource);
		uint64_t first = r->nranges ? r->ranges[0].first : 0;
		uint64_t last = r->nranges ? r->ranges[0].last : range_max(r->resource);
		char a[64];
		range_text(a, sizeof(a), r->resource, first, last);
		if (r->resource == POL_RES_NET) {
			size_t n;
			const uint32_t *cand = pcand_lookup(&c->p->net[r->dir][r->proto], (uint32_t)first, &n);
			const struct policy_rule *by = n ? &c->s->rules[cand[n - 1]] : r;
			refuse(c, i, "%s: never matches (rule \"%.*s\" matches every flow to %s first)", rf, id_len(by),
			       by->id, a);
			continue;
		}
		const struct ptab *t = table_of(c, r);
		uint32_t label = PT_NONE;
		const struct ptab_seg *sg = t ? ptab_segment(t, first, &label) : NULL;
		if (!sg || label >= c->s->nrules) {
			refuse(c, i, "%s: never matches", rf);
			continue;
		}
		const struct policy_rule *by = &c->s->rules[label];
		if (sg->first <= first && sg->last >= last)
			refuse(c, i, "%s: never matches (rule \"%.*s\" covers %s first)", rf, id_len(by), by->id, a);
		else
			refuse(c, i, "%s: never matches (earlier rules cover %s, the first is \"%.*s\")", rf, a,
			       id_len(by), by->id);
	}
}

static size_t total_ranges(const struct policy_spec *s)
{
	size_t n = 0;
	for (unsigned i = 0; i < s->nrules; i++)
		n += s->rules[i].nranges ? s->rules[i].nranges : 1;
	return n;
}

struct policy *policy_compile(const struct policy_spec *s, char *err, size_t errlen)
{
	char scratch[8];
	if (!err || !errlen)
		err = scratch, errlen = sizeof(scratch);
	err[0] = 0;
	if (s->nrules > POLICY_MAX_RULES) {
		snprintf(err, errlen, "policy: %u rules, at most %u", s->nrules, POLICY_MAX_RULES);
		return NULL;
	}
	if ((unsigned)s->mode > POLICY_PERMISSIVE) {
		snprintf(err, errlen, "policy: mode: unknown (%d)", (int)s->mode);
		return NULL;
	}
	if (s->nrules && !s->rules) {
		snprintf(err, errlen, "policy: rules: missing");
		return NULL;
	}
	struct cc c = { .s = s, .err = err, .errlen = errlen, .bad = UINT32_MAX };
	for (uint32_t i = 0; i < s->nrules; i++)
		if (!check_rule(&c, i))
			return NULL;
	/* From here on every refusal is noted and the earliest rule named. */
	if (check_ids(&c) < 0)
		goto nomem;
	c.p = calloc(1, sizeof(*c.p));
	c.seen = calloc(s->nrules ? s->nrules : 1, 1);
	c.iv = malloc(total_ranges(s) * sizeof(*c.iv) + 1);
	if (!c.p || !c.seen || !c.iv)
		goto nomem;
	if (build_access(&c) < 0 || build_disks(&c) < 0 || build_vsock(&c) < 0 || build_cpuid(&c) < 0 ||
	    build_msr_ranges(&c) < 0)
		goto nomem;
	int rc = build_net(&c);
	if (rc == -E2BIG)
		goto refused;
	if (rc < 0)
		goto nomem;
	find_rtc(&c);
	check_shadowed(&c);
	if (c.bad != UINT32_MAX)
		goto refused;

	if (policy_spec_copy(&c.p->spec, s) < 0 ||
	    (s->nrules && !(c.p->hits = calloc(s->nrules, sizeof(*c.p->hits)))))
		goto nomem;
	free(c.seen);
	free(c.iv);
	return c.p;
nomem:
	snprintf(err, errlen, "policy: out of memory");
refused:
	free(c.seen);
	free(c.iv);
	policy_free(c.p);
	return NULL;
}
