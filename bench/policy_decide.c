/* policy_decide — what one policy decision costs with 1 rule and with
 * 10,000 (the compiled tables should make them about the same), for port
 * I/O, MMIO, MSRs, net flows and a whole enter/decide/leave through the
 * live slot. Prints one line per case: ns per decision.
 *   make build/bench/policy_decide && build/bench/policy_decide */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/policy.h"

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* n rules: port, MMIO, MSR and net rules in turn, one small range each. */
static struct policy *make(unsigned n)
{
	struct policy_spec s = { .mode = POLICY_ENFORCE, .nrules = n, .rules = calloc(n, sizeof(struct policy_rule)) };
	struct policy_range *ranges = calloc(n, sizeof(*ranges));
	if (!s.rules || !ranges)
		abort();
	for (unsigned i = 0; i < n; i++) {
		struct policy_rule *r = &s.rules[i];
		snprintf(r->id, sizeof(r->id), "r%u", i);
		r->resource = (enum policy_resource[]){ POL_RES_PIO, POL_RES_MMIO, POL_RES_MSR, POL_RES_NET }[i % 4];
		r->verdict = POLICY_DENY;
		r->audit = true;
		uint64_t base = r->resource == POL_RES_MMIO ? 0xd0000000ull : r->resource == POL_RES_MSR ? 0x40000000 : 0;
		ranges[i] = (struct policy_range){ base + (i / 4) * 4, base + (i / 4) * 4 + 1 };
		r->nranges = 1;
		r->ranges = &ranges[i];
		if (r->resource == POL_RES_NET) {
			r->proto = POL_PROTO_TCP;
			r->dst_ip = 0x0a000000u + i;
			r->dst_prefix = 32;
		}
	}
	char err[256];
	struct policy *p = policy_compile(&s, err, sizeof(err));
	if (!p) {
		fprintf(stderr, "policy_decide: %s\n", err);
		exit(1);
	}
	free(ranges);
	free(s.rules);
	return p;
}

#define ROUNDS 2000000u
static volatile int sink;

static void bench(const char *name, unsigned nrules, struct policy *p, struct policy_slot *slot)
{
	struct policy_decision d;
	unsigned span = nrules / 4 ? nrules / 4 : 1;
	double t0 = now_ns();
	for (unsigned i = 0; i < ROUNDS; i++) {
		uint64_t x = ((uint64_t)i * 2654435761u) % span * 4;
		if (!strcmp(name, "pio"))
			policy_decide_access(p, POLICY_PIO, x, 1, i & 1, true, &d);
		else if (!strcmp(name, "mmio"))
			policy_decide_access(p, POLICY_MMIO, 0xd0000000ull + x, 4, i & 1, true, &d);
		else if (!strcmp(name, "msr"))
			policy_decide_msr(p, 0x40000000u + (uint32_t)x, i & 1, &d);
		else if (!strcmp(name, "net"))
			policy_decide_net(p, "eth0", POL_DIR_EGRESS, POL_PROTO_TCP, 0x0a000000u + (uint32_t)x, (uint16_t)x,
					  &d);
		else {
			const struct policy *cur = policy_enter(slot);
			policy_decide_access(cur, POLICY_PIO, x, 1, false, true, &d);
			policy_leave(slot);
		}
		sink = d.rule; /* the decision is used: not optimised away */
	}
	double dt = now_ns() - t0;
	printf("%-14s %6u rules  %7.1f ns/decision\n", name, nrules, dt / ROUNDS);
}

int main(void)
{
	static const char *const cases[] = { "pio", "mmio", "msr", "net", "slot+pio" };
	static const unsigned sizes[] = { 1, 10000 };
	for (unsigned c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
		for (unsigned k = 0; k < 2; k++) {
			struct policy *p = make(sizes[k]);
			static struct policy_slot slot;
			policy_slot_init(&slot, p);
			bench(cases[c], sizes[k], p, &slot);
			policy_slot_fini(&slot);
		}
	return 0;
}
