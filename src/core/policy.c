/* The policy engine (core/policy.h). FIRST CUT: decisions scan the rules in
 * order; the lookup tables, the full validation and the grace period of
 * policy_swap() replace this (issue 7). The semantics here are the contract. */
#include "core/policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct policy {
	struct policy_spec spec;
	_Atomic uint64_t *hits; /* spec.nrules */
};

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

struct policy *policy_compile(const struct policy_spec *s, char *err, size_t errlen)
{
	if (s->nrules > POLICY_MAX_RULES) {
		snprintf(err, errlen, "policy: %u rules, at most %u", s->nrules, POLICY_MAX_RULES);
		return NULL;
	}
	struct policy *p = calloc(1, sizeof(*p));
	if (!p || policy_spec_copy(&p->spec, s) < 0 ||
	    (s->nrules && !(p->hits = calloc(s->nrules, sizeof(*p->hits))))) {
		snprintf(err, errlen, "policy: out of memory");
		policy_free(p);
		return NULL;
	}
	return p;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
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

static bool in_ranges(const struct policy_rule *r, uint64_t first, uint64_t last, bool empty_is_any)
{
	if (!r->nranges)
		return empty_is_any;
	for (unsigned i = 0; i < r->nranges; i++)
		if (first <= r->ranges[i].last && last >= r->ranges[i].first)
			return true;
	return false;
}

static bool access_ok(enum policy_access want, bool write)
{
	return want == POL_ACC_ANY || (want == POL_ACC_WRITE) == write;
}

static void decided(const struct policy *p, int i, struct policy_decision *d)
{
	const struct policy_rule *r = &p->spec.rules[i];
	atomic_fetch_add_explicit(&p->hits[i], 1, memory_order_relaxed);
	d->verdict = r->verdict;
	d->audit = r->audit;
	d->rule = i;
	d->r = r;
}

static void by_default(const struct policy *p, enum policy_verdict v, struct policy_decision *d)
{
	/* The built-in deny (an unclaimed address, a write to a read-only
	 * disk) is audited too: the audit log shows every refusal. */
	*d = (struct policy_decision){
		.verdict = v, .enforced = p->spec.mode == POLICY_ENFORCE, .rule = -1, .audit = v == POLICY_DENY
	};
}

void policy_decide_access(const struct policy *p, enum policy_space sp, uint64_t addr, uint32_t len,
			  bool write, bool claimed, struct policy_decision *d)
{
	enum policy_resource res = sp == POLICY_PIO ? POL_RES_PIO : POL_RES_MMIO;
	by_default(p, claimed ? POLICY_PROVIDE : POLICY_DENY, d);
	for (unsigned i = 0; i < p->spec.nrules; i++) {
		const struct policy_rule *r = &p->spec.rules[i];
		if (r->resource == res && access_ok(r->access, write) && in_ranges(r, addr, addr + len - 1, false)) {
			decided(p, (int)i, d);
			return;
		}
	}
}

void policy_decide_msr(const struct policy *p, uint32_t msr, bool write, struct policy_decision *d)
{
	by_default(p, POLICY_PROVIDE, d);
	for (unsigned i = 0; i < p->spec.nrules; i++) {
		const struct policy_rule *r = &p->spec.rules[i];
		if (r->resource == POL_RES_MSR && access_ok(r->access, write) && in_ranges(r, msr, msr, false)) {
			decided(p, (int)i, d);
			return;
		}
	}
}

static bool disk_access_ok(enum policy_access want, enum req_kind kind)
{
	switch (want) {
	case POL_ACC_ANY: return true;
	case POL_ACC_READ: return kind == REQ_READ;
	case POL_ACC_WRITE: return kind == REQ_WRITE;
	case POL_ACC_FLUSH: return kind == REQ_FLUSH;
	}
	return false;
}

void policy_decide_disk(const struct policy *p, const char *drive, enum req_kind kind, uint64_t sector,
			uint64_t nsectors, bool read_only, struct policy_decision *d)
{
	by_default(p, read_only && kind == REQ_WRITE ? POLICY_DENY : POLICY_PROVIDE, d);
	uint64_t last = nsectors ? sector + nsectors - 1 : sector;
	for (unsigned i = 0; i < p->spec.nrules; i++) {
		const struct policy_rule *r = &p->spec.rules[i];
		if (r->resource == POL_RES_DISK && strcmp(r->drive, drive) == 0 && disk_access_ok(r->access, kind) &&
		    in_ranges(r, sector, last, true)) {
			decided(p, (int)i, d);
			return;
		}
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
	by_default(p, POLICY_PROVIDE, d);
	for (unsigned i = 0; i < p->spec.nrules; i++) {
		const struct policy_rule *r = &p->spec.rules[i];
		if (r->resource == POL_RES_NET && (!r->iface[0] || strcmp(r->iface, iface) == 0) && r->dir == dir &&
		    (r->proto == POL_PROTO_ANY || r->proto == proto) && cidr_ok(r, ip) &&
		    in_ranges(r, port, port, true)) {
			decided(p, (int)i, d);
			return;
		}
	}
}

void policy_decide_vsock(const struct policy *p, enum policy_vsock_dir dir, uint32_t port,
			 struct policy_decision *d)
{
	by_default(p, POLICY_PROVIDE, d);
	for (unsigned i = 0; i < p->spec.nrules; i++) {
		const struct policy_rule *r = &p->spec.rules[i];
		if (r->resource == POL_RES_VSOCK && r->vdir == dir && in_ranges(r, port, port, true)) {
			decided(p, (int)i, d);
			return;
		}
	}
}

int policy_cpuid(const struct policy *p, uint32_t leaf, uint32_t subleaf, uint32_t regs[4])
{
	for (unsigned i = 0; i < p->spec.nrules; i++) {
		const struct policy_rule *r = &p->spec.rules[i];
		if (r->resource != POL_RES_CPUID || r->leaf != leaf || (r->has_subleaf && r->subleaf != subleaf))
			continue;
		for (int k = 0; k < 4; k++)
			regs[k] = (regs[k] & ~r->regs[k].mask) | (r->regs[k].value & r->regs[k].mask);
		atomic_fetch_add_explicit(&p->hits[i], 1, memory_order_relaxed);
		return (int)i;
	}
	return -1;
}

const struct policy_rule *policy_rtc(const struct policy *p)
{
	for (unsigned i = 0; i < p->spec.nrules; i++)
		if (p->spec.rules[i].resource == POL_RES_RTC)
			return &p->spec.rules[i];
	return NULL;
}

void policy_msr_ranges(const struct policy *p,
		       void (*fn)(void *ctx, uint32_t first, uint32_t last, bool read, bool write), void *ctx)
{
	for (unsigned i = 0; i < p->spec.nrules; i++) {
		const struct policy_rule *r = &p->spec.rules[i];
		if (r->resource != POL_RES_MSR || (r->verdict == POLICY_PROVIDE && !r->audit))
			continue;
		for (unsigned k = 0; k < r->nranges; k++)
			fn(ctx, (uint32_t)r->ranges[k].first, (uint32_t)r->ranges[k].last, r->access != POL_ACC_WRITE,
			   r->access != POL_ACC_READ);
	}
}

/* --- the slot ------------------------------------------------------------- */
static _Thread_local int reader_index = -1;

void policy_slot_init(struct policy_slot *s, struct policy *p)
{
	memset(s, 0, sizeof(*s));
	atomic_store(&s->cur, p);
}

void policy_slot_fini(struct policy_slot *s)
{
	policy_free(atomic_exchange(&s->cur, NULL));
}

const struct policy *policy_enter(struct policy_slot *s)
{
	(void)reader_index;
	return atomic_load_explicit(&s->cur, memory_order_acquire);
}

void policy_leave(struct policy_slot *s)
{
	(void)s;
}

struct policy *policy_swap(struct policy_slot *s, struct policy *np)
{
	/* FIRST CUT: no grace period yet; the caller must not free the old one. */
	return atomic_exchange_explicit(&s->cur, np, memory_order_acq_rel);
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
