/* The policy engine's decisions (core/policy.h): every one is a lookup in
 * the tables policy_compile.c built, never a scan over the rules. Also the
 * spec's own helpers and the names. */
#include "core/policy.h"
#include "core/policy_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


void policy_spec_free(struct policy_spec *s)
{
	for (unsigned i = 0; i < s->nrules; i++) {
		free(s->rules[i].ranges);
		free(s->rules[i].overlay);
	}
	free(s->rules);
	memset(s, 0, sizeof(*s));
}

int policy_spec_copy(struct policy_spec *dst, const struct policy_spec *src)
{
	*dst = *src;
	dst->rules = NULL;
	dst->nrules = 0;
	if (!src->nrules)
		return 0;
	dst->rules = calloc(src->nrules, sizeof(*dst->rules));
	if (!dst->rules)
		return -ENOMEM;
	for (unsigned i = 0; i < src->nrules; i++) {
		struct policy_rule *d = &dst->rules[i];
		*d = src->rules[i];
		d->ranges = NULL;
		d->overlay = NULL;
		dst->nrules = i + 1;
		if (d->nranges) {
			d->ranges = malloc(d->nranges * sizeof(*d->ranges));
			if (!d->ranges)
				goto nomem;
			memcpy(d->ranges, src->rules[i].ranges, d->nranges * sizeof(*d->ranges));
		}
		if (src->rules[i].overlay && !(d->overlay = strdup(src->rules[i].overlay)))
			goto nomem;
	}
	return 0;
nomem:
	policy_spec_free(dst);
	return -ENOMEM;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (int s = 0; s < 3; s++)
		for (int w = 0; w < 2; w++)
			ptab_free(&p->access[s][w]);
	free(p->port_rule[0]);
	free(p->port_rule[1]);
	for (unsigned i = 0; i < p->ndrives; i++)
		for (int k = 0; k < POL_DISK_KINDS; k++)
			ptab_free(&p->drives[i].kind[k]);
	free(p->drives);
	for (int d = 0; d < 2; d++) {
		for (int k = 0; k < POL_NET_PROTOS; k++)
			pcand_free(&p->net[d][k]);
		ptab_free(&p->vsock[d]);
	}
	free(p->cpuid_sub);
	free(p->cpuid_any);
	free(p->msr);
	policy_spec_free(&p->spec);
	free(p->hits);
	free(p);
}

struct policy *policy_default(void)
{
	struct policy_spec none = { .mode = POLICY_ENFORCE };
	char err[8];
	return policy_compile(&none, err, sizeof(err));
}

const struct policy_spec *policy_spec_of(const struct policy *p)
{
	return &p->spec;
}

uint64_t policy_rule_hits(const struct policy *p, unsigned i)
{
	return i < p->spec.nrules ? atomic_load_explicit(&p->hits[i], memory_order_relaxed) : 0;
}

void policy_rule_hits_add(const struct policy *p, unsigned i, uint64_t n)
{
	if (i < p->spec.nrules)
		atomic_fetch_add_explicit(&p->hits[i], n, memory_order_relaxed);
}

/* The last unit of [first, first + count), count 0 read as 1, saturating:
 * a guest-given length never wraps the range around. */
static uint64_t span_last(uint64_t first, uint64_t count)
{
	if (!count)
		return first;
	return count - 1 > UINT64_MAX - first ? UINT64_MAX : first + (count - 1);
}

_Static_assert(offsetof(struct policy, spec) == offsetof(struct policy_head, spec) &&
		       offsetof(struct policy, hits) == offsetof(struct policy_head, hits) &&
		       offsetof(struct policy, port_rule) == offsetof(struct policy_head, port_rule),
	       "policy.h's inline port decision reads struct policy through struct policy_head");
_Static_assert(PT_NONE == UINT32_MAX, "policy.h's inline port decision takes UINT32_MAX for no rule");

void policy_decide_access_table(const struct policy *p, enum policy_space sp, uint64_t addr, uint32_t len,
				bool write, bool claimed, struct policy_decision *d)
{
	policy_by_default(p, claimed ? POLICY_PROVIDE : POLICY_DENY, d);
	if ((unsigned)sp > POLICY_MSR)
		return;
	/* A port access the 64K table holds never comes here (policy.h). */
	uint32_t i = ptab_decide(&p->access[sp][write], addr, span_last(addr, len));
	if (i != PT_NONE)
		policy_by_rule(p, i, d);
}

void policy_decide_msr(const struct policy *p, uint32_t msr, bool write, struct policy_decision *d)
{
	policy_by_default(p, POLICY_PROVIDE, d);
	uint32_t i = ptab_lookup(&p->access[POLICY_MSR][write], msr, msr);
	if (i != PT_NONE)
		policy_by_rule(p, i, d);
}

static const struct pol_drive *find_drive(const struct policy *p, const char *name)
{
	size_t lo = 0, hi = p->ndrives;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(p->drives[mid].name, name);
		if (!c)
			return &p->drives[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void policy_decide_disk(const struct policy *p, const char *drive, enum req_kind kind, uint64_t sector,
			uint64_t nsectors, bool read_only, struct policy_decision *d)
{
	policy_by_default(p, read_only && kind == REQ_WRITE ? POLICY_DENY : POLICY_PROVIDE, d);
	const struct pol_drive *dr = drive ? find_drive(p, drive) : NULL;
	if (dr && (unsigned)kind < POL_DISK_KINDS) {
		uint32_t i = ptab_decide(&dr->kind[kind], sector, span_last(sector, nsectors));
		if (i != PT_NONE)
			policy_by_rule(p, i, d);
	}
	/* A read-only drive stays read-only whatever a rule or the mode says. */
	if (read_only && kind == REQ_WRITE) {
		d->verdict = POLICY_DENY;
		d->enforced = true;
	}
}

static bool cidr_ok(const struct policy_rule *r, uint32_t ip)
{
	if (!r->dst_prefix)
		return true;
	uint32_t mask = r->dst_prefix >= 32 ? 0xffffffffu : ~(0xffffffffu >> r->dst_prefix);
	return (ip & mask) == (r->dst_ip & mask);
}

void policy_decide_net(const struct policy *p, const char *iface, enum policy_dir dir,
		       enum policy_proto proto, uint32_t ip, uint16_t port, struct policy_decision *d)
{
	policy_by_default(p, POLICY_PROVIDE, d);
	if ((unsigned)dir > POL_DIR_INGRESS || (unsigned)proto >= POL_NET_PROTOS)
		return;
	size_t n;
	const uint32_t *cand = pcand_lookup(&p->net[dir][proto], port, &n);
	for (size_t k = 0; k < n; k++) {
		const struct policy_rule *r = &p->spec.rules[cand[k]];
		if ((!r->iface[0] || (iface && strcmp(r->iface, iface) == 0)) && cidr_ok(r, ip)) {
			policy_by_rule(p, cand[k], d);
			return;
		}
	}
}

void policy_decide_vsock(const struct policy *p, enum policy_vsock_dir dir, uint32_t port,
			 struct policy_decision *d)
{
	policy_by_default(p, POLICY_PROVIDE, d);
	if ((unsigned)dir > POL_VSOCK_H2G)
		return;
	uint32_t i = ptab_lookup(&p->vsock[dir], port, port);
	if (i != PT_NONE)
		policy_by_rule(p, i, d);
}

/* The entry for (leaf, subleaf) in a table sorted by both, or PT_NONE. */
static uint32_t cpuid_find(const struct pol_cpuid *t, size_t n, uint32_t leaf, uint32_t subleaf)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t[mid].leaf < leaf || (t[mid].leaf == leaf && t[mid].subleaf < subleaf))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && t[lo].leaf == leaf && t[lo].subleaf == subleaf ? t[lo].rule : PT_NONE;
}

int policy_cpuid(const struct policy *p, uint32_t leaf, uint32_t subleaf, uint32_t regs[4])
{
	uint32_t a = cpuid_find(p->cpuid_sub, p->ncpuid_sub, leaf, subleaf);
	uint32_t b = cpuid_find(p->cpuid_any, p->ncpuid_any, leaf, 0);
	uint32_t i = a < b ? a : b;
	if (i == PT_NONE)
		return -1;
	const struct policy_rule *r = &p->spec.rules[i];
	for (int k = 0; k < 4; k++)
		regs[k] = (regs[k] & ~r->regs[k].mask) | (r->regs[k].value & r->regs[k].mask);
	atomic_fetch_add_explicit(&p->hits[i], 1, memory_order_relaxed);
	return (int)i;
}

const struct policy_rule *policy_rtc(const struct policy *p)
{
	return p->rtc >= 0 ? &p->spec.rules[p->rtc] : NULL;
}

void policy_msr_ranges(const struct policy *p,
		       void (*fn)(void *ctx, uint32_t first, uint32_t last, bool read, bool write), void *ctx)
{
	for (size_t i = 0; i < p->nmsr; i++)
		fn(ctx, p->msr[i].first, p->msr[i].last, p->msr[i].read, p->msr[i].write);
}

const char *policy_verdict_name(enum policy_verdict v)
{
	switch (v) {
	case POLICY_PROVIDE: return "provide";
	case POLICY_REDIRECT: return "redirect";
	case POLICY_DENY: return "deny";
	}
	return "?";
}

const char *policy_resource_name(enum policy_resource r)
{
	static const char *const names[POL_RES__COUNT] = {
		[POL_RES_PIO] = "pio",     [POL_RES_MMIO] = "mmio", [POL_RES_MSR] = "msr",
		[POL_RES_CPUID] = "cpuid", [POL_RES_DISK] = "disk", [POL_RES_NET] = "net",
		[POL_RES_VSOCK] = "vsock", [POL_RES_RTC] = "rtc",
	};
	return (unsigned)r < POL_RES__COUNT ? names[r] : "?";
}
