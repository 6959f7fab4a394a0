/* Helpers for the policy tests: a spec built rule by rule, and the
 * reference engine the compiled tables are checked against — the plain
 * first-match scan over the rules in order that core/policy.h specifies. */
#ifndef VIGIL_TESTS_POLICY_SPEC_BUILD_H
#define VIGIL_TESTS_POLICY_SPEC_BUILD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/policy.h"

/* Appends a rule (zeroed but for id, resource, verdict, the reader's
 * audit default); the pointer is valid until the next sb_add. */
static inline struct policy_rule *sb_add(struct policy_spec *s, const char *id, enum policy_resource res,
					 enum policy_verdict v)
{
	struct policy_rule *nr = realloc(s->rules, (s->nrules + 1) * sizeof(*nr));
	if (!nr)
		abort();
	s->rules = nr;
	struct policy_rule *r = &s->rules[s->nrules++];
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%s", id);
	r->resource = res;
	r->verdict = v;
	r->audit = v != POLICY_PROVIDE;
	return r;
}

static inline void sb_range(struct policy_rule *r, uint64_t first, uint64_t last)
{
	struct policy_range *nr = realloc(r->ranges, (r->nranges + 1) * sizeof(*nr));
	if (!nr)
		abort();
	r->ranges = nr;
	r->ranges[r->nranges++] = (struct policy_range){ first, last };
}

/* Drops rule i (its ranges and overlay freed). */
static inline void sb_remove(struct policy_spec *s, unsigned i)
{
	free(s->rules[i].ranges);
	free(s->rules[i].overlay);
	memmove(&s->rules[i], &s->rules[i + 1], (s->nrules - i - 1) * sizeof(*s->rules));
	s->nrules--;
}

/* --- the reference engine ------------------------------------------------- */
struct ref_decision {
	enum policy_verdict verdict;
	bool enforced, audit;
	int rule;
};

static inline bool ref_overlaps(const struct policy_rule *r, uint64_t first, uint64_t last, bool none_is_all)
{
	if (!r->nranges)
		return none_is_all;
	for (unsigned k = 0; k < r->nranges; k++)
		if (first <= r->ranges[k].last && last >= r->ranges[k].first)
			return true;
	return false;
}

static inline uint64_t ref_last(uint64_t first, uint64_t count)
{
	if (!count)
		return first;
	return first + (count - 1) < first ? UINT64_MAX : first + (count - 1);
}

static inline struct ref_decision ref_default(const struct policy_spec *s, enum policy_verdict v)
{
	return (struct ref_decision){ v, s->mode == POLICY_ENFORCE, v == POLICY_DENY, -1 };
}

static inline struct ref_decision ref_rule(const struct policy_spec *s, unsigned i)
{
	return (struct ref_decision){ s->rules[i].verdict, s->mode == POLICY_ENFORCE, s->rules[i].audit, (int)i };
}

static inline bool ref_acc(enum policy_access a, bool write)
{
	return a == POL_ACC_ANY || a == (write ? POL_ACC_WRITE : POL_ACC_READ);
}

/* Of the units' own rules (each unit's first), the access takes the first
 * that is not a plain provide, else the first. Tracked over the units one
 * at a time: own is a unit's rule (-1: none). */
static inline void ref_take(const struct policy_spec *s, int own, int *first, int *strict)
{
	if (own < 0)
		return;
	if (*first < 0 || own < *first)
		*first = own;
	if (s->rules[own].verdict != POLICY_PROVIDE && (*strict < 0 || own < *strict))
		*strict = own;
}

static inline struct ref_decision ref_access(const struct policy_spec *s, enum policy_resource res, uint64_t addr,
					     uint64_t len, bool write, bool claimed)
{
	int first = -1, strict = -1;
	for (uint64_t u = addr; u <= ref_last(addr, len); u++) { /* len <= 8 */
		int own = -1;
		for (unsigned i = 0; i < s->nrules && own < 0; i++) {
			const struct policy_rule *r = &s->rules[i];
			if (r->resource == res && ref_acc(r->access, write) && ref_overlaps(r, u, u, false))
				own = (int)i;
		}
		ref_take(s, own, &first, &strict);
		if (u == UINT64_MAX)
			break;
	}
	if (first >= 0)
		return ref_rule(s, (unsigned)(strict >= 0 ? strict : first));
	return ref_default(s, claimed || res == POL_RES_MSR ? POLICY_PROVIDE : POLICY_DENY);
}

static inline bool ref_disk_acc(enum policy_access a, enum req_kind k)
{
	return a == POL_ACC_ANY || (a == POL_ACC_READ && k == REQ_READ) || (a == POL_ACC_WRITE && k == REQ_WRITE) ||
	       (a == POL_ACC_FLUSH && k == REQ_FLUSH);
}

static inline struct ref_decision ref_disk(const struct policy_spec *s, const char *drive, enum req_kind kind,
					   uint64_t sector, uint64_t n, bool ro)
{
	struct ref_decision d = ref_default(s, ro && kind == REQ_WRITE ? POLICY_DENY : POLICY_PROVIDE);
	uint64_t last = ref_last(sector, n);
	int first = -1, strict = -1;
	/* The own rule changes only where a rule's range starts or ends: one
	 * unit of each stretch between those points stands for it. */
	for (unsigned i = 0; i <= s->nrules; i++) {
		const struct policy_rule *b = i ? &s->rules[i - 1] : NULL;
		unsigned nk = b ? 2 * b->nranges : 1;
		if (b && (b->resource != POL_RES_DISK || strcmp(b->drive, drive) || !ref_disk_acc(b->access, kind)))
			continue;
		for (unsigned k = 0; k < nk; k++) {
			uint64_t u = !b ? sector : k % 2 ? b->ranges[k / 2].last + 1 : b->ranges[k / 2].first;
			if (u < sector || u > last || (b && k % 2 && b->ranges[k / 2].last == UINT64_MAX))
				continue;
			int own = -1;
			for (unsigned j = 0; j < s->nrules && own < 0; j++) {
				const struct policy_rule *r = &s->rules[j];
				if (r->resource == POL_RES_DISK && !strcmp(r->drive, drive) && ref_disk_acc(r->access, kind) &&
				    ref_overlaps(r, u, u, true))
					own = (int)j;
			}
			ref_take(s, own, &first, &strict);
		}
	}
	if (first >= 0)
		d = ref_rule(s, (unsigned)(strict >= 0 ? strict : first));
	if (ro && kind == REQ_WRITE)
		d.verdict = POLICY_DENY, d.enforced = true;
	return d;
}

static inline struct ref_decision ref_net(const struct policy_spec *s, const char *iface, enum policy_dir dir,
					  enum policy_proto proto, uint32_t ip, uint16_t port)
{
	for (unsigned i = 0; i < s->nrules; i++) {
		const struct policy_rule *r = &s->rules[i];
		uint64_t m = r->dst_prefix ? (0xffffffffull << (32 - r->dst_prefix)) & 0xffffffffull : 0;
		if (r->resource == POL_RES_NET && (!r->iface[0] || !strcmp(r->iface, iface)) && r->dir == dir &&
		    (r->proto == POL_PROTO_ANY || r->proto == proto) && (ip & m) == (r->dst_ip & m) &&
		    ref_overlaps(r, port, port, true))
			return ref_rule(s, i);
	}
	return ref_default(s, POLICY_PROVIDE);
}

static inline struct ref_decision ref_vsock(const struct policy_spec *s, enum policy_vsock_dir dir, uint32_t port)
{
	for (unsigned i = 0; i < s->nrules; i++) {
		const struct policy_rule *r = &s->rules[i];
		if (r->resource == POL_RES_VSOCK && r->vdir == dir && ref_overlaps(r, port, port, true))
			return ref_rule(s, i);
	}
	return ref_default(s, POLICY_PROVIDE);
}

static inline int ref_cpuid(const struct policy_spec *s, uint32_t leaf, uint32_t subleaf)
{
	for (unsigned i = 0; i < s->nrules; i++) {
		const struct policy_rule *r = &s->rules[i];
		if (r->resource == POL_RES_CPUID && r->leaf == leaf && (!r->has_subleaf || r->subleaf == subleaf))
			return (int)i;
	}
	return -1;
}

#endif
