/* dev_request: counting and the policy's decision are separate, so a gate
 * without counters is still governed by the policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/devreq.h"
#include "core/event.h"
#include "core/policy.h"

static void test_counts_and_decides(void **state)
{
	(void)state;
	struct dev_stats st = { .name = "d" };
	struct dev_gate g = { .stats = &st, .policy = NULL, .read_only = true };
	assert_true(dev_request(&g, REQ_READ, 512));
	assert_false(dev_request(&g, REQ_WRITE, 512));
	assert_int_equal(atomic_load(&st.requests), 2);
	assert_int_equal(atomic_load(&st.denied), 1);
	assert_int_equal(atomic_load(&st.bytes), 512);
}

/* The fail-open the hardening review found: no counters meant "provide". */
static void test_no_counters_still_governed(void **state)
{
	(void)state;
	struct dev_gate g = { .stats = NULL, .policy = NULL, .read_only = true };
	assert_false(dev_request(&g, REQ_WRITE, 4096));
	assert_true(dev_request(&g, REQ_READ, 4096));
	assert_false(dev_request(NULL, REQ_READ, 1)); /* no gate: nothing provided */
}

/* ---- dev_request_disk, dev_decide_vsock: decisions and their records ---- */

static uint64_t mono(void *ctx)
{
	(void)ctx;
	return 1000;
}

struct seen {
	unsigned n;
	struct vevent e[8];
};

static void on_record(void *ctx, const struct vevent *e)
{
	struct seen *s = ctx;
	if (s->n < 8)
		s->e[s->n] = *e;
	s->n++;
}

static void on_lost(void *ctx, uint64_t t, const char *ring, unsigned dest, uint64_t count)
{
	(void)ctx, (void)t, (void)ring, (void)dest, (void)count;
	fail_msg("lost events");
}

static const struct ev_drain_ops ops = { on_record, on_lost };

static struct policy_slot *slot_of(struct policy_rule *rules, unsigned n, enum policy_mode mode)
{
	struct policy_spec spec = { .mode = mode, .nrules = n, .rules = rules };
	char err[160];
	struct policy *p = policy_compile(&spec, err, sizeof(err));
	if (!p)
		fail_msg("policy_compile: %s", err);
	struct policy_slot *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	policy_slot_init(s, p);
	return s;
}

static void test_disk_decisions_and_audit(void **state)
{
	(void)state;
	struct policy_range deny = { 100, 199 };
	struct policy_rule rules[2] = {
		{ .resource = POL_RES_DISK, .verdict = POLICY_DENY, .audit = true, .nranges = 1, .ranges = &deny },
		{ .resource = POL_RES_DISK, .verdict = POLICY_REDIRECT, .audit = true, .access = POL_ACC_WRITE,
		  .overlay = "/tmp/ovl" },
	};
	snprintf(rules[0].id, sizeof(rules[0].id), "no-range");
	snprintf(rules[1].id, sizeof(rules[1].id), "cow");
	snprintf(rules[0].drive, sizeof(rules[0].drive), "d0");
	snprintf(rules[1].drive, sizeof(rules[1].drive), "d0");
	struct policy_slot *slot = slot_of(rules, 2, POLICY_ENFORCE);
	struct evsink_config c = { .clock = { .mono_ns = mono } };
	struct evsink *ev = ev_sink_new(&c);
	assert_non_null(ev);
	ev_sink_mark_start(ev);
	ev_set_audit(ev, true);
	struct dev_stats st = { .name = "d0" };
	struct dev_gate g = { .stats = &st, .policy = slot, .id = "d0", .ev = ev };
	struct policy_decision d;
	char ovl[64];

	/* 96..103 overlaps the denied range. */
	assert_int_equal(dev_request_disk(&g, REQ_READ, 96, 8, 4096, &d, ovl, sizeof(ovl)), POLICY_DENY);
	assert_int_equal(d.rule, 0);
	assert_null(d.r);
	assert_string_equal(ovl, "");
	assert_int_equal(dev_request_disk(&g, REQ_READ, 200, 8, 4096, &d, NULL, 0), POLICY_PROVIDE);
	assert_int_equal(dev_request_disk(&g, REQ_WRITE, 300, 1, 512, &d, ovl, sizeof(ovl)), POLICY_REDIRECT);
	assert_string_equal(ovl, "/tmp/ovl");
	/* An overlay path that does not fit: "" (the device then fails it). */
	assert_int_equal(dev_request_disk(&g, REQ_WRITE, 300, 1, 512, &d, ovl, 4), POLICY_REDIRECT);
	assert_string_equal(ovl, "");
	assert_int_equal(atomic_load(&st.requests), 4);
	assert_int_equal(atomic_load(&st.denied), 1);
	assert_int_equal(atomic_load(&st.bytes), 4096 + 512 + 512);

	struct seen s = { 0 };
	ev_drain(ev, true, &ops, &s);
	/* Audited: the deny and the redirects (coalesced: identical). */
	assert_int_equal(s.n, 2);
	assert_int_equal(s.e[0].kind, EV_DEVREQ);
	assert_int_equal(s.e[0].resource, POL_RES_DISK);
	assert_int_equal(s.e[0].verdict, POLICY_DENY);
	assert_int_equal(s.e[0].addr, 96);
	assert_int_equal(s.e[0].extra, 8);
	assert_int_equal(s.e[0].value, 4096);
	assert_string_equal(s.e[0].rule, "no-range");
	assert_string_equal(s.e[0].device, "d0");
	assert_true(s.e[0].enforced);
	assert_int_equal(s.e[1].verdict, POLICY_REDIRECT);
	assert_int_equal(s.e[1].write, REQ_WRITE);
	assert_int_equal(s.e[1].count, 2);
	assert_string_equal(s.e[1].rule, "cow");
	ev_sink_free(ev);
	policy_slot_fini(slot);
	free(slot);
}

static void test_vsock_decisions_and_audit(void **state)
{
	(void)state;
	struct policy_range p1 = { 6100, 6100 }, p2 = { 6200, 6200 };
	struct policy_rule rules[2] = {
		{ .resource = POL_RES_VSOCK, .verdict = POLICY_DENY, .audit = true, .vdir = POL_VSOCK_G2H, .nranges = 1,
		  .ranges = &p1 },
		{ .resource = POL_RES_VSOCK, .verdict = POLICY_REDIRECT, .audit = true, .vdir = POL_VSOCK_H2G,
		  .nranges = 1, .ranges = &p2, .to_vport = 5000 },
	};
	snprintf(rules[0].id, sizeof(rules[0].id), "deny");
	snprintf(rules[1].id, sizeof(rules[1].id), "redir");
	struct policy_slot *slot = slot_of(rules, 2, POLICY_PERMISSIVE);
	struct evsink_config c = { .clock = { .mono_ns = mono } };
	struct evsink *ev = ev_sink_new(&c);
	ev_sink_mark_start(ev);
	ev_set_audit(ev, true);
	struct dev_stats st = { .name = "vsock" };
	struct dev_gate g = { .stats = &st, .policy = slot, .id = "vsock", .ev = ev };
	uint32_t to;

	/* Permissive: computed and audited, provided. */
	assert_int_equal(dev_decide_vsock(&g, POL_VSOCK_G2H, 6100, &to), POLICY_PROVIDE);
	assert_int_equal(to, 6100);
	assert_int_equal(dev_decide_vsock(&g, POL_VSOCK_H2G, 6200, &to), POLICY_PROVIDE);
	assert_int_equal(to, 6200);
	assert_int_equal(dev_decide_vsock(&g, POL_VSOCK_H2G, 6100, &to), POLICY_PROVIDE);
	assert_int_equal(atomic_load(&st.denied), 0);
	struct seen s = { 0 };
	ev_drain(ev, true, &ops, &s);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.e[0].kind, EV_VSOCK);
	assert_int_equal(s.e[0].verdict, POLICY_DENY);
	assert_false(s.e[0].enforced);
	assert_int_equal(s.e[0].addr, 6100);
	assert_int_equal(s.e[0].proto, POL_VSOCK_G2H);
	assert_int_equal(s.e[1].verdict, POLICY_REDIRECT);
	assert_int_equal(s.e[1].proto, POL_VSOCK_H2G);
	ev_sink_free(ev);
	policy_slot_fini(slot);
	free(slot);

	/* Enforcing. */
	slot = slot_of(rules, 2, POLICY_ENFORCE);
	g = (struct dev_gate){ .stats = &st, .policy = slot, .id = "vsock" };
	assert_int_equal(dev_decide_vsock(&g, POL_VSOCK_G2H, 6100, &to), POLICY_DENY);
	assert_int_equal(dev_decide_vsock(&g, POL_VSOCK_H2G, 6200, &to), POLICY_REDIRECT);
	assert_int_equal(to, 5000);
	assert_int_equal(atomic_load(&st.denied), 1);
	policy_slot_fini(slot);
	free(slot);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_and_decides),
		cmocka_unit_test(test_no_counters_still_governed),
		cmocka_unit_test(test_disk_decisions_and_audit),
		cmocka_unit_test(test_vsock_decisions_and_audit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
