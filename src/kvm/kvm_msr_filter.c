/* Building KVM's MSR filter from a policy (kvm_msr_filter.h). */
#include "kvm/kvm_msr_filter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/policy.h"

struct span {
	uint32_t first, last;
};

struct spans {
	struct span *v;
	size_t n, cap;
	bool nomem;
};

struct collect {
	struct spans rd, wr;
};

static void push(struct spans *s, uint32_t first, uint32_t last)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct span *v = realloc(s->v, cap * sizeof(*v));
		if (!v) {
			s->nomem = true;
			return;
		}
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = (struct span){ first, last };
}

static void on_range(void *ctx, uint32_t first, uint32_t last, bool read, bool write)
{
	struct collect *c = ctx;
	if (first > last)
		return;
	if (read)
		push(&c->rd, first, last);
	if (write)
		push(&c->wr, first, last);
}

static int by_first(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	return x->first < y->first ? -1 : x->first > y->first;
}

/* Sorts and merges overlapping or touching spans. */
static void normalize(struct spans *s)
{
	if (!s->n)
		return;
	qsort(s->v, s->n, sizeof(s->v[0]), by_first);
	size_t out = 0;
	for (size_t i = 1; i < s->n; i++) {
		struct span *last = &s->v[out];
		if (s->v[i].first <= last->last || s->v[i].first - 1 == last->last) {
			if (s->v[i].last > last->last)
				last->last = s->v[i].last;
		} else {
			s->v[++out] = s->v[i];
		}
	}
	s->n = out + 1;
}

static bool same(const struct spans *a, const struct spans *b)
{
	return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof(a->v[0])) == 0);
}

/* The fewest ranges of at most KVM_MSRF_SPAN MSRs covering every span,
 * from the left (greedy is optimal for fixed-width windows). `mark`: the
 * spans' bits are set in an all-clear bitmap (allowed MSRs, for a
 * default-deny filter), else cleared in an all-set one (trapped MSRs).
 * Returns the ranges used in all, which may exceed the maximum (then
 * nothing past it is written). */
static unsigned windows(struct kvm_msrf *f, unsigned used, const struct spans *s, uint32_t flags, bool mark)
{
	size_t i = 0;
	uint64_t at = s->n ? s->v[0].first : 0; /* first MSR not yet covered */
	while (i < s->n) {
		if (at < s->v[i].first)
			at = s->v[i].first;
		uint64_t base = at, end = base + KVM_MSRF_SPAN - 1; /* inclusive */
		uint64_t top = base;                                 /* last MSR of a span in this range */
		uint8_t *bm = used < KVM_MSR_FILTER_MAX_RANGES ? f->bitmaps[used] : NULL;
		if (bm)
			memset(bm, mark ? 0x00 : 0xff, KVM_MSR_FILTER_MAX_BITMAP_SIZE);
		while (i < s->n && s->v[i].first <= end) {
			uint64_t last = s->v[i].last < end ? s->v[i].last : end;
			top = last;
			for (uint64_t m = (at > s->v[i].first ? at : s->v[i].first); bm && m <= last; m++) {
				uint8_t bit = (uint8_t)(1u << ((m - base) % 8));
				if (mark)
					bm[(m - base) / 8] |= bit;
				else
					bm[(m - base) / 8] &= (uint8_t)~bit;
			}
			if (s->v[i].last > end) {
				at = end + 1; /* the rest of this span starts the next range */
				break;
			}
			i++;
		}
		if (bm)
			f->filter.ranges[used] = (struct kvm_msr_filter_range){
				.flags = flags, .nmsrs = (uint32_t)(top - base + 1), .base = (uint32_t)base, .bitmap = bm,
			};
		used++;
	}
	return used;
}

/* The MSRs not in `s` (sorted, disjoint), within 0..0xffffffff. */
static void complement(const struct spans *s, struct spans *out)
{
	uint64_t next = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i].first > next)
			push(out, (uint32_t)next, s->v[i].first - 1);
		next = (uint64_t)s->v[i].last + 1;
	}
	if (next <= 0xffffffffu)
		push(out, (uint32_t)next, 0xffffffffu);
}

/* Ranges for the trap sets; `deny`: a default-deny filter whose ranges
 * allow what is not trapped (for policies trapping most of the space). */
static unsigned layout(struct kvm_msrf *f, const struct spans *rd, const struct spans *wr, bool deny)
{
	memset(&f->filter, 0, sizeof(f->filter));
	f->filter.flags = deny ? KVM_MSR_FILTER_DEFAULT_DENY : KVM_MSR_FILTER_DEFAULT_ALLOW;
	if (same(rd, wr))
		return windows(f, 0, rd, KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE, deny);
	unsigned used = windows(f, 0, rd, KVM_MSR_FILTER_READ, deny);
	return windows(f, used, wr, KVM_MSR_FILTER_WRITE, deny);
}

static bool on_x2apic(uint64_t first, uint64_t last)
{
	return first <= KVM_MSRF_X2APIC_LAST && last >= KVM_MSRF_X2APIC_FIRST;
}

/* Rules the filter cannot serve because KVM keeps the x2APIC registers. */
static int check_x2apic(const struct policy *p, char *err, size_t errlen, char *warn, size_t warnlen)
{
	const struct policy_spec *s = policy_spec_of(p);
	for (unsigned i = 0; i < s->nrules; i++) {
		const struct policy_rule *r = &s->rules[i];
		if (r->resource != POL_RES_MSR || (r->verdict == POLICY_PROVIDE && !r->audit))
			continue;
		unsigned inside = 0, touching = 0;
		for (unsigned k = 0; k < r->nranges; k++) {
			uint64_t a = r->ranges[k].first, b = r->ranges[k].last;
			touching += on_x2apic(a, b);
			inside += a >= KVM_MSRF_X2APIC_FIRST && b <= KVM_MSRF_X2APIC_LAST;
		}
		if (r->nranges && inside == r->nranges) {
			snprintf(err, errlen,
				 "policy rule '%s': msrs: 0x800-0x8ff are the x2APIC registers, which KVM never "
				 "lets an MSR filter see",
				 r->id);
			return -1;
		}
		if (touching && warn && !warn[0])
			snprintf(warn, warnlen,
				 "policy rule '%s': msrs: KVM keeps the x2APIC registers 0x800-0x8ff to itself; the "
				 "rule covers the rest",
				 r->id);
	}
	return 0;
}

int kvm_msrf_build(struct kvm_msrf *f, const struct policy *p, char *err, size_t errlen, char *warn,
		   size_t warnlen)
{
	struct collect c = { { 0 }, { 0 } };
	int rc = -1;

	if (warn && warnlen)
		warn[0] = '\0';
	memset(&f->filter, 0, sizeof(f->filter));
	f->filter.flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
	f->nranges = 0;
	if (check_x2apic(p, err, errlen, warn, warnlen) < 0)
		return -1;
	policy_msr_ranges(p, on_range, &c);
	if (c.rd.nomem || c.wr.nomem) {
		snprintf(err, errlen, "policy: out of memory building the MSR filter");
		goto out;
	}
	normalize(&c.rd);
	normalize(&c.wr);
	unsigned used = layout(f, &c.rd, &c.wr, false);
	if (used > KVM_MSR_FILTER_MAX_RANGES) {
		/* Most of the space trapped ("deny every MSR but ..."): what is
		 * left alone may fit where the trapped part does not. */
		struct spans nrd = { 0 }, nwr = { 0 };
		complement(&c.rd, &nrd);
		complement(&c.wr, &nwr);
		bool nomem = nrd.nomem || nwr.nomem;
		unsigned alt = nomem ? 0 : layout(f, &nrd, &nwr, true);
		if (!nomem && alt <= KVM_MSR_FILTER_MAX_RANGES)
			used = alt;
		else if (!nomem)
			layout(f, &c.rd, &c.wr, false);
		free(nrd.v);
		free(nwr.v);
		if (nomem) {
			snprintf(err, errlen, "policy: out of memory building the MSR filter");
			goto out;
		}
	}
	if (used > KVM_MSR_FILTER_MAX_RANGES) {
		snprintf(err, errlen,
			 "policy: the msr rules need %u ranges of KVM's MSR filter, which takes at most %u of "
			 "%u MSRs each: bring the rules' msrs closer together",
			 used, KVM_MSR_FILTER_MAX_RANGES, KVM_MSRF_SPAN);
		memset(&f->filter, 0, sizeof(f->filter));
		goto out;
	}
	f->nranges = used;
	rc = 0;
out:
	free(c.rd.v);
	free(c.wr.v);
	return rc;
}

bool kvm_msrf_traps(const struct kvm_msrf *f, uint32_t msr, bool write)
{
	uint32_t want = write ? KVM_MSR_FILTER_WRITE : KVM_MSR_FILTER_READ;
	for (unsigned i = 0; i < f->nranges; i++) {
		const struct kvm_msr_filter_range *r = &f->filter.ranges[i];
		if (!(r->flags & want) || msr < r->base || msr - r->base >= r->nmsrs)
			continue;
		uint32_t off = msr - r->base;
		return !(r->bitmap[off / 8] & (1u << (off % 8)));
	}
	return f->filter.flags & KVM_MSR_FILTER_DEFAULT_DENY;
}

bool kvm_msrf_empty(const struct kvm_msrf *f)
{
	return f->nranges == 0 && !(f->filter.flags & KVM_MSR_FILTER_DEFAULT_DENY);
}
