/* The compiled tables against the reference (policy_spec_build.h: the
 * first-match scan over the rules): random policies over small address
 * spaces, so that rules overlap a lot, and random accesses. Also: every
 * rule policy_compile refuses as "never matches" indeed never decides,
 * and (for the resources whose tables it can see whole) every rule it
 * accepts decides somewhere. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "policy_spec_build.h"

static uint64_t rng;
static uint64_t spread = 80; /* small numbers: [0, spread) */
static bool wide;            /* a large policy: rules mostly apart */

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t below(uint64_t n)
{
	return next() % n;
}

static uint64_t space_max(enum policy_resource res)
{
	switch (res) {
	case POL_RES_PIO:
	case POL_RES_NET: return 0xffff;
	case POL_RES_MSR:
	case POL_RES_VSOCK: return 0xffffffff;
	default: return UINT64_MAX;
	}
}

/* Mostly small numbers (rules collide), sometimes at the top of the space. */
static uint64_t coord(enum policy_resource res)
{
	uint64_t max = space_max(res);
	if (wide || below(8))
		return below(spread);
	if (res == POL_RES_MSR && below(2))
		return 0xc0000080 + below(8);
	return max - below(16);
}

static void add_random_ranges(struct policy_rule *r, unsigned lo, unsigned hi)
{
	unsigned n = lo + (unsigned)below(hi - lo + 1);
	uint64_t max = space_max(r->resource);
	for (unsigned k = 0; k < n; k++) {
		uint64_t a = coord(r->resource), len = below(4) ? below(6) : below(40);
		sb_range(r, a, a + len > max || a + len < a ? max : a + len);
	}
}

static const char *const drives[] = { "a", "b", "c" };
static const char *const ifaces[] = { "", "eth0", "eth1" };
static const uint32_t ips[] = { 0x0a000001, 0x0a000102, 0x0a010203, 0xc0a80001 };

static void random_rule(struct policy_spec *s, unsigned n)
{
	static const enum policy_resource kinds[] = { POL_RES_PIO,  POL_RES_MMIO, POL_RES_MSR,	POL_RES_DISK,
						      POL_RES_VSOCK, POL_RES_NET,  POL_RES_CPUID };
	enum policy_resource res = kinds[below(7)];
	char id[16];
	snprintf(id, sizeof(id), "r%u", n);
	enum policy_verdict v = res == POL_RES_CPUID ? POLICY_REDIRECT : (enum policy_verdict)below(3);
	struct policy_rule *r = sb_add(s, id, res, v);
	r->audit = below(2);
	bool rdr = v == POLICY_REDIRECT;
	switch (res) {
	case POL_RES_PIO:
	case POL_RES_MMIO:
	case POL_RES_MSR:
		r->access = (enum policy_access)below(3);
		add_random_ranges(r, 1, 3);
		if (rdr && res != POL_RES_MSR && below(2))
			r->has_to = true; /* to 0: never runs past the end */
		else if (rdr)
			r->has_value = true, r->value = next();
		break;
	case POL_RES_DISK:
		snprintf(r->drive, sizeof(r->drive), "%s", drives[below(3)]);
		r->access = (enum policy_access)below(4);
		add_random_ranges(r, wide || below(5) ? 1 : 0, 2);
		if (rdr)
			r->overlay = strdup("ov");
		break;
	case POL_RES_VSOCK:
		r->vdir = (enum policy_vsock_dir)below(2);
		add_random_ranges(r, wide || below(6) ? 1 : 0, 2);
		if (rdr)
			r->to_vport = 1 + (uint32_t)below(100);
		break;
	case POL_RES_NET:
		r->dir = (enum policy_dir)below(2);
		r->proto = (enum policy_proto)below(wide ? 3 : 4); /* icmp has no ports: few tell apart */
		snprintf(r->iface, sizeof(r->iface), "%s", ifaces[below(3)]);
		static const unsigned prefixes[] = { 0, 0, 8, 16, 24, 32 };
		r->dst_prefix = prefixes[below(6)];
		r->dst_ip = ips[below(4)];
		if (r->proto != POL_PROTO_ICMP)
			add_random_ranges(r, wide || below(4) ? 1 : 0, 2);
		if (rdr)
			r->to_port = 1 + (uint16_t)below(1000);
		break;
	case POL_RES_CPUID:
		r->leaf = (uint32_t)below(wide ? 100000 : 6);
		r->has_subleaf = below(2);
		r->subleaf = (uint32_t)below(4);
		for (int k = 0; k < 4; k++)
			if (below(2))
				r->regs[k] = (struct policy_cpuid_reg){ (uint32_t)next(), (uint32_t)next() };
		r->regs[below(4)].mask |= 1;
		break;
	default: break;
	}
}

/* Every point where some rule of `res` starts or stops: single-unit
 * decisions are constant between two of them, so these are all the
 * decisions there are. */
static size_t cut_points(const struct policy_spec *s, enum policy_resource res, uint64_t *pts)
{
	size_t n = 0;
	pts[n++] = 0;
	for (unsigned i = 0; i < s->nrules; i++) {
		const struct policy_rule *r = &s->rules[i];
		if (r->resource != res)
			continue;
		for (unsigned k = 0; k < r->nranges; k++) {
			pts[n++] = r->ranges[k].first;
			if (r->ranges[k].last < space_max(res))
				pts[n++] = r->ranges[k].last + 1;
		}
	}
	return n;
}

/* Calls fn for every single-unit decision the reference can make, over
 * every resource; net and cpuid over a sample. */
typedef void (*visit_fn)(void *ctx, int rule);

static void every_decision(const struct policy_spec *s, uint64_t *pts, visit_fn fn, void *ctx)
{
	static const enum policy_resource addr[] = { POL_RES_PIO, POL_RES_MMIO, POL_RES_MSR };
	for (int a = 0; a < 3; a++) {
		size_t n = cut_points(s, addr[a], pts);
		for (size_t k = 0; k < n; k++)
			for (int w = 0; w < 2; w++)
				fn(ctx, ref_access(s, addr[a], pts[k], 1, w, true).rule);
	}
	size_t n = cut_points(s, POL_RES_DISK, pts);
	for (size_t k = 0; k < n; k++)
		for (int d = 0; d < 3; d++)
			for (int kind = 0; kind < 4; kind++)
				fn(ctx, ref_disk(s, drives[d], (enum req_kind)kind, pts[k], 1, false).rule);
	n = cut_points(s, POL_RES_VSOCK, pts);
	for (size_t k = 0; k < n; k++)
		for (int dir = 0; dir < 2; dir++)
			fn(ctx, ref_vsock(s, (enum policy_vsock_dir)dir, (uint32_t)pts[k]).rule);
	for (uint32_t leaf = 0; leaf < 7; leaf++)
		for (uint32_t sub = 0; sub < 5; sub++)
			fn(ctx, ref_cpuid(s, leaf, sub));
}

/* Net flows over a sample that tells every pool address, prefix and iface apart. */
static void every_net_decision(const struct policy_spec *s, uint64_t *pts, visit_fn fn, void *ctx)
{
	static const char *const if_q[] = { "eth0", "eth1", "eth2" };
	uint32_t ip_q[16];
	unsigned nip = 0;
	for (int i = 0; i < 4; i++) {
		ip_q[nip++] = ips[i];
		ip_q[nip++] = ips[i] ^ 0x00800000; /* same /8, other /16 */
		ip_q[nip++] = ips[i] ^ 0x80;       /* same /24 */
	}
	ip_q[nip++] = 0x08080808;
	size_t n = cut_points(s, POL_RES_NET, pts);
	for (size_t k = 0; k < n; k++)
		for (int d = 0; d < 2; d++)
			for (int pr = 0; pr < 4; pr++)
				for (int f = 0; f < 3; f++)
					for (unsigned i = 0; i < nip; i++)
						fn(ctx, ref_net(s, if_q[f], (enum policy_dir)d, (enum policy_proto)pr,
								ip_q[i], (uint16_t)pts[k])
								.rule);
}

static void mark(void *ctx, int rule)
{
	if (rule >= 0)
		((uint8_t *)ctx)[rule] = 1;
}

static void expect_same(const struct policy_decision *d, struct ref_decision want, const char *what, uint64_t x)
{
	if (d->rule != want.rule || d->verdict != want.verdict || d->audit != want.audit ||
	    d->enforced != want.enforced)
		fail_msg("%s at 0x%llx: rule %d verdict %d audit %d enforced %d; reference rule %d verdict %d audit %d "
			 "enforced %d",
			 what, (unsigned long long)x, d->rule, d->verdict, d->audit, d->enforced, want.rule, want.verdict,
			 want.audit, want.enforced);
}

static uint64_t query_coord(const uint64_t *pts, size_t n, enum policy_resource res)
{
	uint64_t x = n && below(4) ? pts[below(n)] : coord(res);
	switch (below(4)) {
	case 0: return x - 1;
	case 1: return x + 1;
	default: return x;
	}
}

static void cross_check(const struct policy_spec *s, const struct policy *p, uint64_t *pts, unsigned queries,
			uint64_t *hits)
{
	struct policy_decision d;
	static const enum policy_resource addr[] = { POL_RES_PIO, POL_RES_MMIO, POL_RES_MSR };
	for (int a = 0; a < 3; a++) {
		size_t n = cut_points(s, addr[a], pts);
		for (unsigned q = 0; q < queries; q++) {
			uint64_t x = query_coord(pts, n, addr[a]);
			bool w = below(2), claimed = below(2);
			struct ref_decision want;
			if (addr[a] == POL_RES_MSR) {
				want = ref_access(s, POL_RES_MSR, (uint32_t)x, 1, w, true);
				policy_decide_msr(p, (uint32_t)x, w, &d);
			} else {
				if (addr[a] == POL_RES_PIO)
					x &= 0xffff;
				uint32_t len = (uint32_t)(1u << below(4));
				want = ref_access(s, addr[a], x, len, w, claimed);
				policy_decide_access(p, addr[a] == POL_RES_PIO ? POLICY_PIO : POLICY_MMIO, x, len, w, claimed,
						     &d);
			}
			expect_same(&d, want, policy_resource_name(addr[a]), x);
			if (want.rule >= 0)
				hits[want.rule]++;
		}
	}
	size_t n = cut_points(s, POL_RES_DISK, pts);
	for (unsigned q = 0; q < queries; q++) {
		uint64_t x = query_coord(pts, n, POL_RES_DISK), len = below(8) ? below(12) : next();
		const char *drive = below(8) ? drives[below(3)] : "zz";
		enum req_kind kind = (enum req_kind)below(4);
		bool ro = !below(4);
		struct ref_decision want = ref_disk(s, drive, kind, x, len, ro);
		policy_decide_disk(p, drive, kind, x, len, ro, &d);
		expect_same(&d, want, "disk", x);
		if (want.rule >= 0)
			hits[want.rule]++;
	}
	n = cut_points(s, POL_RES_VSOCK, pts);
	for (unsigned q = 0; q < queries; q++) {
		uint32_t x = (uint32_t)query_coord(pts, n, POL_RES_VSOCK);
		enum policy_vsock_dir dir = (enum policy_vsock_dir)below(2);
		struct ref_decision want = ref_vsock(s, dir, x);
		policy_decide_vsock(p, dir, x, &d);
		expect_same(&d, want, "vsock", x);
		if (want.rule >= 0)
			hits[want.rule]++;
	}
	n = cut_points(s, POL_RES_NET, pts);
	for (unsigned q = 0; q < queries; q++) {
		uint16_t port = (uint16_t)query_coord(pts, n, POL_RES_NET);
		static const char *const if_q[] = { "eth0", "eth1", "eth2" };
		const char *iface = if_q[below(3)];
		uint32_t ip = ips[below(4)] ^ (below(2) ? (uint32_t)(1u << below(32)) : 0);
		enum policy_dir dir = (enum policy_dir)below(2);
		enum policy_proto proto = (enum policy_proto)below(4);
		struct ref_decision want = ref_net(s, iface, dir, proto, ip, port);
		policy_decide_net(p, iface, dir, proto, ip, port, &d);
		expect_same(&d, want, "net", port);
		if (want.rule >= 0)
			hits[want.rule]++;
	}
	for (uint32_t leaf = 0; leaf < 7; leaf++)
		for (uint32_t sub = 0; sub < 5; sub++) {
			uint32_t regs[4] = { (uint32_t)next(), (uint32_t)next(), (uint32_t)next(), (uint32_t)next() };
			uint32_t want[4];
			memcpy(want, regs, sizeof(want));
			int i = ref_cpuid(s, leaf, sub);
			if (i >= 0) {
				hits[i]++;
				for (int k = 0; k < 4; k++)
					want[k] = (want[k] & ~s->rules[i].regs[k].mask) |
						  (s->rules[i].regs[k].value & s->rules[i].regs[k].mask);
			}
			assert_int_equal(policy_cpuid(p, leaf, sub, regs), i);
			assert_memory_equal(regs, want, sizeof(want));
		}
	for (unsigned i = 0; i < s->nrules; i++)
		if (policy_rule_hits(p, i) != hits[i])
			fail_msg("rule %u: %llu hits, reference %llu", i, (unsigned long long)policy_rule_hits(p, i),
				 (unsigned long long)hits[i]);
}

/* policy_msr_ranges against the reference: sorted, disjoint, and trapping
 * exactly the MSRs whose decision is not a silent provide. */
struct msr_list {
	size_t n;
	uint32_t first[4096], last[4096];
	bool read[4096], write[4096];
};

static void on_msr(void *ctx, uint32_t first, uint32_t last, bool read, bool write)
{
	struct msr_list *m = ctx;
	assert_true(m->n < 4096);
	assert_true(first <= last);
	assert_true(read || write);
	if (m->n)
		assert_true(first > m->last[m->n - 1]);
	m->first[m->n] = first, m->last[m->n] = last, m->read[m->n] = read, m->write[m->n] = write;
	m->n++;
}

static bool ref_trapped(const struct policy_spec *s, uint32_t msr, bool write)
{
	struct ref_decision d = ref_access(s, POL_RES_MSR, msr, 1, write, true);
	return d.rule >= 0 && (d.verdict != POLICY_PROVIDE || d.audit);
}

static void check_msr_ranges(const struct policy_spec *s, const struct policy *p, uint64_t *pts)
{
	static struct msr_list m;
	m.n = 0;
	policy_msr_ranges(p, on_msr, &m);
	size_t n = cut_points(s, POL_RES_MSR, pts);
	for (size_t k = 0; k < n; k++)
		for (int back = 0; back < 2; back++) {
			uint32_t x = (uint32_t)(pts[k] - (uint64_t)back);
			bool r = false, w = false;
			for (size_t i = 0; i < m.n; i++)
				if (x >= m.first[i] && x <= m.last[i])
					r = m.read[i], w = m.write[i];
			assert_int_equal(r, ref_trapped(s, x, false));
			assert_int_equal(w, ref_trapped(s, x, true));
		}
}

static unsigned named_rule(const struct policy_spec *s, const char *err)
{
	unsigned n;
	if (sscanf(err, "rule \"r%u\"", &n) != 1 || !strstr(err, "never matches"))
		fail_msg("unexpected refusal: %s", err);
	char id[16];
	snprintf(id, sizeof(id), "r%u", n);
	for (unsigned i = 0; i < s->nrules; i++)
		if (!strcmp(s->rules[i].id, id))
			return i;
	fail_msg("refusal names no rule: %s", err);
	return 0;
}

/* check: also prove every refusal and acceptance against the reference
 * (quadratic: small policies only). */
static void one_round(uint64_t seed, unsigned nrules, unsigned queries, bool check)
{
	rng = seed;
	struct policy_spec s = { .mode = below(3) ? POLICY_ENFORCE : POLICY_PERMISSIVE };
	for (unsigned i = 0; i < nrules; i++)
		random_rule(&s, i);
	size_t npts = 2 * (size_t)nrules * 3 + 2;
	uint64_t *pts = malloc(npts * sizeof(*pts));
	uint8_t *reach = malloc(nrules);
	uint64_t *hits = calloc(nrules, sizeof(*hits));
	assert_non_null(pts);
	char err[256];
	struct policy *p;
	unsigned refused = 0;
	while (!(p = policy_compile(&s, err, sizeof(err)))) {
		unsigned i = named_rule(&s, err);
		if (!check) {
			if (getenv("POLICY_TEST_VERBOSE"))
				print_message("%s\n", err);
			sb_remove(&s, i);
			refused++;
			continue;
		}
		memset(reach, 0, nrules);
		if (s.rules[i].resource == POL_RES_NET)
			every_net_decision(&s, pts, mark, reach);
		else
			every_decision(&s, pts, mark, reach);
		if (reach[i])
			fail_msg("seed %llu: refused rule %u decides somewhere: %s", (unsigned long long)seed, i, err);
		sb_remove(&s, i);
		refused++;
	}
	if (check) {
		memset(reach, 0, nrules);
		every_decision(&s, pts, mark, reach);
		for (unsigned i = 0; i < s.nrules; i++)
			if (!reach[i] && s.rules[i].resource != POL_RES_NET)
				fail_msg("seed %llu: rule %u (%s) never decides but was accepted", (unsigned long long)seed, i,
					 policy_resource_name(s.rules[i].resource));
	}
	cross_check(&s, p, pts, queries, hits);
	check_msr_ranges(&s, p, pts);
	policy_free(p);
	policy_spec_free(&s);
	free(pts);
	free(reach);
	free(hits);
	if (getenv("POLICY_TEST_VERBOSE"))
		print_message("seed %llu: %u rules, %u refused as never matching\n", (unsigned long long)seed, nrules, refused);
}

static void test_small_policies(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 200; seed++)
		one_round(seed * 0x9e3779b97f4a7c15ull, 10 + (unsigned)(seed % 90), 300, true);
}

static void test_large_policy(void **state)
{
	(void)state;
	spread = 20000;
	wide = true;
	one_round(0x1234567887654321ull, 5000, 20000, false);
	wide = false;
	spread = 80;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_policies),
		cmocka_unit_test(test_large_policy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
