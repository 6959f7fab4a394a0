/* The checks of policy_compile (core/policy_check.h) that need no table:
 * each rule's fields against its resource and verdict, then the ids. The
 * JSON reader has already checked types and unknown fields; here a rule is
 * refused for what it says. */
#include "core/policy_check.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pol_id_len(const struct policy_rule *r)
{
	size_t n = strnlen(r->id, sizeof(r->id));
	return n > POLICY_ID_MAX ? POLICY_ID_MAX : (int)n;
}

void pol_refuse(struct pol_cc *c, uint32_t i, const char *fmt, ...)
{
	if (i >= c->bad)
		return;
	c->bad = i;
	const struct policy_rule *r = &c->s->rules[i];
	int n = pol_id_len(r) && strnlen(r->id, sizeof(r->id)) <= POLICY_ID_MAX
			? snprintf(c->err, c->errlen, "rule \"%.*s\": ", pol_id_len(r), r->id)
			: snprintf(c->err, c->errlen, "rule #%u: ", i);
	if (n < 0 || (size_t)n >= c->errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

const char *pol_range_field(enum policy_resource res)
{
	switch (res) {
	case POL_RES_MMIO: return "addresses";
	case POL_RES_MSR: return "msrs";
	case POL_RES_DISK: return "sectors";
	default: return "ports";
	}
}

uint64_t pol_range_max(enum policy_resource res)
{
	switch (res) {
	case POL_RES_PIO:
	case POL_RES_NET: return 0xffff;
	case POL_RES_MSR:
	case POL_RES_VSOCK: return 0xffffffff;
	default: return UINT64_MAX;
	}
}

bool pol_addr_like(enum policy_resource res)
{
	return res == POL_RES_PIO || res == POL_RES_MMIO || res == POL_RES_MSR;
}

const char *pol_range_text(char *buf, size_t len, enum policy_resource res, uint64_t first, uint64_t last)
{
	bool hex = pol_addr_like(res);
	if (first == 0 && last == pol_range_max(res) && !hex)
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
	if (r->access != POL_ACC_ANY && !pol_addr_like(res) && res != POL_RES_DISK)
		return "access";
	if (r->nranges && (res == POL_RES_CPUID || res == POL_RES_RTC))
		return "ranges";
	if (r->has_value && !pol_addr_like(res))
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

bool pol_check_rule(struct pol_cc *c, uint32_t i)
{
	const struct policy_rule *r = &c->s->rules[i];
	size_t idl = strnlen(r->id, sizeof(r->id));
	if (!idl)
		return pol_refuse(c, i, "id: empty"), false;
	if (idl > POLICY_ID_MAX)
		return pol_refuse(c, i, "id: longer than %d bytes", POLICY_ID_MAX), false;
	if ((unsigned)r->resource >= POL_RES__COUNT)
		return pol_refuse(c, i, "resource: unknown (%d)", (int)r->resource), false;
	if ((unsigned)r->verdict > POLICY_DENY)
		return pol_refuse(c, i, "verdict: unknown (%d)", (int)r->verdict), false;
	if ((unsigned)r->access > POL_ACC_FLUSH)
		return pol_refuse(c, i, "access: unknown (%d)", (int)r->access), false;
	if (strnlen(r->drive, sizeof(r->drive)) > POLICY_NAME_MAX)
		return pol_refuse(c, i, "drive: longer than %d bytes", POLICY_NAME_MAX), false;
	if (strnlen(r->iface, sizeof(r->iface)) > POLICY_NAME_MAX)
		return pol_refuse(c, i, "iface: longer than %d bytes", POLICY_NAME_MAX), false;

	enum policy_resource res = r->resource;
	const char *rname = policy_resource_name(res);
	const char *f = foreign_field(r);
	if (f)
		return pol_refuse(c, i, "%s: not a field of %s rules", f, rname), false;
	if (r->access == POL_ACC_FLUSH && res != POL_RES_DISK)
		return pol_refuse(c, i, "access: flush is for disk rules only"), false;

	const char *rf = pol_range_field(res);
	char a[48];
	if (r->nranges > POLICY_MAX_RANGES)
		return pol_refuse(c, i, "%s: %u ranges, at most %u", rf, r->nranges, POLICY_MAX_RANGES), false;
	if (r->nranges && !r->ranges)
		return pol_refuse(c, i, "%s: missing", rf), false;
	for (unsigned k = 0; k < r->nranges; k++) {
		uint64_t lo = r->ranges[k].first, hi = r->ranges[k].last;
		bool hex = pol_addr_like(res);
		if (lo > hi)
			return pol_refuse(c, i, "%s: reversed range %s", rf, pol_range_text(a, sizeof(a), res, lo, hi)),
			       false;
		if (hi > pol_range_max(res))
			return pol_refuse(c, i, hex ? "%s: 0x%" PRIx64 " is past the last, 0x%" PRIx64
						: "%s: %" PRIu64 " is past the last, %" PRIu64,
				      rf, hi, pol_range_max(res)),
			       false;
	}
	bool redirect = r->verdict == POLICY_REDIRECT;
	switch (res) {
	case POL_RES_PIO:
	case POL_RES_MMIO:
	case POL_RES_MSR:
		if (!r->nranges)
			return pol_refuse(c, i, "%s: none given", rf), false;
		if (!redirect && (r->has_value || r->has_to))
			return pol_refuse(c, i, "%s: only a redirect takes one", r->has_value ? "value" : "to"), false;
		if (redirect && res == POL_RES_MSR && !r->has_value)
			return pol_refuse(c, i, "value: an msr redirect needs the value reads return"), false;
		if (redirect && !r->has_value && !r->has_to)
			return pol_refuse(c, i, "value: a redirect needs \"value\" or \"to\""), false;
		if (r->has_value && r->has_to)
			return pol_refuse(c, i, "to: a redirect takes \"value\" or \"to\", not both"), false;
		for (unsigned k = 0; r->has_to && k < r->nranges; k++) {
			uint64_t span = r->ranges[k].last - r->ranges[k].first;
			if (span > pol_range_max(res) - (r->to > pol_range_max(res) ? pol_range_max(res) : r->to) ||
			    r->to > pol_range_max(res))
				return pol_refuse(c, i, "to: 0x%" PRIx64 " plus range %s runs past 0x%" PRIx64, r->to,
					      pol_range_text(a, sizeof(a), res, r->ranges[k].first, r->ranges[k].last),
					      pol_range_max(res)),
				       false;
		}
		break;
	case POL_RES_CPUID:
		if (!redirect)
			return pol_refuse(c, i, "verdict: cpuid rules take redirect only"), false;
		if (!(r->regs[0].mask | r->regs[1].mask | r->regs[2].mask | r->regs[3].mask))
			return pol_refuse(c, i, "registers: none given"), false;
		break;
	case POL_RES_RTC:
		if (!redirect)
			return pol_refuse(c, i, "verdict: rtc rules take redirect only"), false;
		if ((unsigned)r->rtc_kind > POL_RTC_OFFSET)
			return pol_refuse(c, i, "epoch: unknown kind (%d)", (int)r->rtc_kind), false;
		if (r->rtc_kind == POL_RTC_EPOCH && r->epoch_ns > 999999999u)
			return pol_refuse(c, i, "epoch: %u nanoseconds", r->epoch_ns), false;
		break;
	case POL_RES_DISK:
		if (!r->drive[0])
			return pol_refuse(c, i, "drive: missing"), false;
		if (redirect && (!r->overlay || !r->overlay[0]))
			return pol_refuse(c, i, "overlay: a disk redirect needs one"), false;
		if (!redirect && r->overlay)
			return pol_refuse(c, i, "overlay: only a redirect takes one"), false;
		break;
	case POL_RES_NET:
		if ((unsigned)r->dir > POL_DIR_INGRESS)
			return pol_refuse(c, i, "direction: unknown (%d)", (int)r->dir), false;
		if ((unsigned)r->proto > POL_PROTO_ICMP)
			return pol_refuse(c, i, "proto: unknown (%d)", (int)r->proto), false;
		if (r->dst_prefix > 32)
			return pol_refuse(c, i, "dst: prefix /%u is longer than 32", r->dst_prefix), false;
		if (r->proto == POL_PROTO_ICMP && r->nranges)
			return pol_refuse(c, i, "ports: icmp has no ports"), false;
		if (redirect && !r->to_port)
			return pol_refuse(c, i, "to: a net redirect needs HOST:PORT"), false;
		if (!redirect && (r->to_port || r->to_ip))
			return pol_refuse(c, i, "to: only a redirect takes one"), false;
		break;
	case POL_RES_VSOCK:
		if ((unsigned)r->vdir > POL_VSOCK_H2G)
			return pol_refuse(c, i, "direction: unknown (%d)", (int)r->vdir), false;
		if (redirect && !r->to_vport)
			return pol_refuse(c, i, "to_port: a vsock redirect needs one"), false;
		if (!redirect && r->to_vport)
			return pol_refuse(c, i, "to_port: only a redirect takes one"), false;
		break;
	default: break;
	}
	return true;
}

int pol_by_ptr(const struct policy_rule *x, const struct policy_rule *y)
{
	return (x > y) - (x < y);
}

static int cmp_id(const void *a, const void *b)
{
	const struct policy_rule *x = *(const struct policy_rule *const *)a, *y = *(const struct policy_rule *const *)b;
	int c = strcmp(x->id, y->id);
	return c ? c : pol_by_ptr(x, y);
}

const struct policy_rule **pol_sorted_rules(const struct policy_spec *s, int res,
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

int pol_check_ids(struct pol_cc *c)
{
	size_t n;
	const struct policy_rule **v = pol_sorted_rules(c->s, -1, cmp_id, &n);
	if (n == SIZE_MAX)
		return -ENOMEM;
	for (size_t k = 1; k < n; k++)
		if (strcmp(v[k - 1]->id, v[k]->id) == 0)
			pol_refuse(c, pol_index_of(c, v[k]), "id: duplicate (rule #%u has it too)", pol_index_of(c, v[k - 1]));
	free(v);
	return 0;
}

