/* policy_compile (core/policy.h): checks what a spec means, rule by rule,
 * then builds the lookup tables (core/policy_table.h) and, from them, finds
 * the rules that can never decide (the per-rule checks: policy_check.c).
 * Every refusal is one line naming the rule and the field; where several
 * rules are wrong, the first in rule order is named. */
#include "core/policy_check.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_drive(const void *a, const void *b)
{
	const struct policy_rule *x = *(const struct policy_rule *const *)a, *y = *(const struct policy_rule *const *)b;
	int c = strcmp(x->drive, y->drive);
	return c ? c : pol_by_ptr(x, y);
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
	return c ? c : pol_by_ptr(x, y);
}

/* Appends rule i's ranges (or the whole space when it has none) to c->iv. */
static size_t add_ranges(struct pol_cc *c, size_t n, uint32_t i)
{
	const struct policy_rule *r = &c->s->rules[i];
	if (!r->nranges)
		c->iv[n++] = (struct ptab_iv){ 0, pol_range_max(r->resource), i };
	for (unsigned k = 0; k < r->nranges; k++)
		c->iv[n++] = (struct ptab_iv){ r->ranges[k].first, r->ranges[k].last, i };
	return n;
}

static bool access_has(enum policy_access a, bool write)
{
	return a == POL_ACC_ANY || a == (write ? POL_ACC_WRITE : POL_ACC_READ);
}

static int build_access(struct pol_cc *c)
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
			if (ptab_build(&c->p->access[sp][w], c->iv, n, c->seen) < 0 ||
			    ptab_mark_strict(&c->p->access[sp][w], c->strict) < 0)
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

static int build_disks(struct pol_cc *c)
{
	size_t n;
	const struct policy_rule **v = pol_sorted_rules(c->s, POL_RES_DISK, cmp_drive, &n);
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
					ni = add_ranges(c, ni, pol_index_of(c, v[j]));
			if (ptab_build(&d->kind[kind], c->iv, ni, c->seen) < 0 ||
			    ptab_mark_strict(&d->kind[kind], c->strict) < 0) {
				free(v);
				return -ENOMEM;
			}
		}
		k = e;
	}
	free(v);
	return 0;
}

static int build_vsock(struct pol_cc *c)
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

static int build_net(struct pol_cc *c)
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
	const struct policy_rule **v = pol_sorted_rules(c->s, POL_RES_NET, cmp_net, &n);
	if (n == SIZE_MAX)
		return -ENOMEM;
	for (size_t k = 1, g = 0; k < n; k++) {
		if (net_key(v[g], v[k]) != 0) {
			g = k;
			continue;
		}
		pol_refuse(c, pol_index_of(c, v[k]), "ports: never matches (rule \"%.*s\" matches the same flows first)",
		       pol_id_len(v[g]), v[g]->id);
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
static size_t cpuid_unique(struct pol_cc *c, struct pol_cpuid *t, size_t n, bool sub)
{
	if (n < 2)
		return n;
	qsort(t, n, sizeof(*t), cmp_cpuid);
	size_t u = 0;
	for (size_t k = 0; k < n; k++) {
		if (u && t[u - 1].leaf == t[k].leaf && t[u - 1].subleaf == t[k].subleaf) {
			const struct policy_rule *first = &c->s->rules[t[u - 1].rule];
			if (sub)
				pol_refuse(c, t[k].rule,
				       "leaf: never matches (rule \"%.*s\" redirects leaf 0x%x subleaf 0x%x first)",
				       pol_id_len(first), first->id, t[k].leaf, t[k].subleaf);
			else
				pol_refuse(c, t[k].rule, "leaf: never matches (rule \"%.*s\" redirects leaf 0x%x first)",
				       pol_id_len(first), first->id, t[k].leaf);
			continue;
		}
		t[u++] = t[k];
	}
	return u;
}

static int build_cpuid(struct pol_cc *c)
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
					pol_refuse(c, e->rule,
					       "subleaf: never matches (rule \"%.*s\" redirects every subleaf of "
					       "leaf 0x%x first)",
					       pol_id_len(&c->s->rules[a->rule]), c->s->rules[a->rule].id, e->leaf);
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

static void find_rtc(struct pol_cc *c)
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
		pol_refuse(c, i, "verdict: never matches (rule \"%.*s\" sets the clock first)", pol_id_len(first), first->id);
	}
}

/* Whether an MSR decided by `label` must reach vigil (anything but a
 * silent provide). */
static bool msr_trapped(const struct pol_cc *c, const struct ptab *t, uint64_t x)
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
static int build_msr_ranges(struct pol_cc *c)
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
static const struct ptab *table_of(const struct pol_cc *c, const struct policy_rule *r)
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
static void check_shadowed(struct pol_cc *c)
{
	for (uint32_t i = 0; i < c->s->nrules && i < c->bad; i++) {
		const struct policy_rule *r = &c->s->rules[i];
		if (c->seen[i] || r->resource == POL_RES_CPUID || r->resource == POL_RES_RTC)
			continue;
		const char *rf = pol_range_field(r->resource);
		uint64_t first = r->nranges ? r->ranges[0].first : 0;
		uint64_t last = r->nranges ? r->ranges[0].last : pol_range_max(r->resource);
		char a[64];
		pol_range_text(a, sizeof(a), r->resource, first, last);
		if (r->resource == POL_RES_NET) {
			size_t n;
			const uint32_t *cand = pcand_lookup(&c->p->net[r->dir][r->proto], (uint32_t)first, &n);
			const struct policy_rule *by = n ? &c->s->rules[cand[n - 1]] : r;
			pol_refuse(c, i, "%s: never matches (rule \"%.*s\" matches every flow to %s first)", rf, pol_id_len(by),
			       by->id, a);
			continue;
		}
		const struct ptab *t = table_of(c, r);
		uint32_t label = PT_NONE;
		const struct ptab_seg *sg = t ? ptab_segment(t, first, &label) : NULL;
		if (!sg || label >= c->s->nrules) {
			pol_refuse(c, i, "%s: never matches", rf);
			continue;
		}
		const struct policy_rule *by = &c->s->rules[label];
		if (sg->first <= first && sg->last >= last)
			pol_refuse(c, i, "%s: never matches (rule \"%.*s\" covers %s first)", rf, pol_id_len(by), by->id, a);
		else
			pol_refuse(c, i, "%s: never matches (earlier rules cover %s, the first is \"%.*s\")", rf, a,
			       pol_id_len(by), by->id);
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
	struct pol_cc c = { .s = s, .err = err, .errlen = errlen, .bad = UINT32_MAX };
	for (uint32_t i = 0; i < s->nrules; i++)
		if (!pol_check_rule(&c, i))
			return NULL;
	/* From here on every refusal is noted and the earliest rule named. */
	if (pol_check_ids(&c) < 0)
		goto nomem;
	c.p = calloc(1, sizeof(*c.p));
	c.seen = calloc(s->nrules ? s->nrules : 1, 1);
	c.strict = calloc(s->nrules ? s->nrules : 1, 1);
	c.iv = malloc(total_ranges(s) * sizeof(*c.iv) + 1);
	if (!c.p || !c.seen || !c.strict || !c.iv)
		goto nomem;
	for (uint32_t i = 0; i < s->nrules; i++)
		c.strict[i] = s->rules[i].verdict != POLICY_PROVIDE;
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
	free(c.strict);
	free(c.iv);
	return c.p;
nomem:
	snprintf(err, errlen, "policy: out of memory");
refused:
	free(c.seen);
	free(c.strict);
	free(c.iv);
	policy_free(c.p);
	return NULL;
}
