/* Unit tests for the MSR filter built from a policy (kvm/kvm_msr_filter.c):
 * which MSRs KVM will hand to vigil, how ranges merge and split, and the
 * refusals (more ranges than KVM takes, rules only on x2APIC MSRs). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/policy.h"
#include "kvm/kvm_msr_filter.h"

#define MAXR 64

struct spec_builder {
	struct policy_spec s;
	struct policy_rule rules[MAXR];
	struct policy_range ranges[MAXR][4];
};

static void add_rule(struct spec_builder *b, enum policy_verdict v, enum policy_access acc, bool audit,
		     uint64_t first, uint64_t last)
{
	unsigned i = b->s.nrules++;
	struct policy_rule *r = &b->rules[i];
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "r%u", i);
	r->resource = POL_RES_MSR;
	r->verdict = v;
	r->access = acc;
	r->audit = audit;
	b->ranges[i][0] = (struct policy_range){ first, last };
	r->ranges = b->ranges[i];
	r->nranges = 1;
	if (v == POLICY_REDIRECT) {
		r->has_value = true;
		r->value = 42;
	}
	b->s.rules = b->rules;
}

static struct policy *compile(struct spec_builder *b)
{
	char err[256];
	struct policy *p = policy_compile(&b->s, err, sizeof(err));
	assert_non_null(p);
	return p;
}

static struct kvm_msrf f;

static int build(struct spec_builder *b, char *err, size_t errlen, char *warn)
{
	struct policy *p = compile(b);
	int r = kvm_msrf_build(&f, p, err, errlen, warn, 256);
	policy_free(p);
	return r;
}

static void test_no_rules_no_filter(void **state)
{
	(void)state;
	struct spec_builder b = { .s = { .mode = POLICY_ENFORCE } };
	char err[256] = "", warn[256];
	assert_int_equal(build(&b, err, sizeof(err), warn), 0);
	assert_int_equal(f.nranges, 0);
	assert_int_equal(f.filter.flags, KVM_MSR_FILTER_DEFAULT_ALLOW);
	assert_true(kvm_msrf_empty(&f));
	assert_false(kvm_msrf_traps(&f, 0x10, false));
}

static void test_read_only_rule(void **state)
{
	(void)state;
	struct spec_builder b = { .s = { .mode = POLICY_ENFORCE } };
	char err[256] = "", warn[256];
	add_rule(&b, POLICY_DENY, POL_ACC_READ, true, 0x10, 0x10);
	assert_int_equal(build(&b, err, sizeof(err), warn), 0);
	assert_int_equal(f.nranges, 1);
	assert_int_equal(f.filter.ranges[0].flags, KVM_MSR_FILTER_READ);
	assert_int_equal(f.filter.ranges[0].base, 0x10);
	assert_int_equal(f.filter.ranges[0].nmsrs, 1);
	assert_true(kvm_msrf_traps(&f, 0x10, false));
	assert_false(kvm_msrf_traps(&f, 0x10, true));
	assert_false(kvm_msrf_traps(&f, 0x11, false));
	assert_false(kvm_msrf_traps(&f, 0xf, false));
	assert_string_equal(warn, "");
}

static void test_reads_and_writes_differ(void **state)
{
	(void)state;
	struct spec_builder b = { .s = { .mode = POLICY_ENFORCE } };
	char err[256] = "", warn[256];
	add_rule(&b, POLICY_DENY, POL_ACC_READ, true, 0x10, 0x10);
	add_rule(&b, POLICY_DENY, POL_ACC_WRITE, true, 0x3a, 0x3a);
	assert_int_equal(build(&b, err, sizeof(err), warn), 0);
	assert_int_equal(f.nranges, 2);
	assert_true(kvm_msrf_traps(&f, 0x10, false));
	assert_false(kvm_msrf_traps(&f, 0x10, true));
	assert_true(kvm_msrf_traps(&f, 0x3a, true));
	assert_false(kvm_msrf_traps(&f, 0x3a, false));
}

static void test_overlaps_merge_and_gaps_stay_allowed(void **state)
{
	(void)state;
	struct spec_builder b = { .s = { .mode = POLICY_ENFORCE } };
	char err[256] = "", warn[256];
	add_rule(&b, POLICY_DENY, POL_ACC_ANY, true, 0x100, 0x1ff);
	add_rule(&b, POLICY_REDIRECT, POL_ACC_ANY, true, 0x180, 0x2ff);
	add_rule(&b, POLICY_DENY, POL_ACC_ANY, true, 0x1000, 0x1000);
	assert_int_equal(build(&b, err, sizeof(err), warn), 0);
	/* All within 12288 MSRs of 0x100: one range, reads and writes. */
	assert_int_equal(f.nranges, 1);
	assert_int_equal(f.filter.ranges[0].flags, KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE);
	assert_int_equal(f.filter.ranges[0].base, 0x100);
	assert_int_equal(f.filter.ranges[0].nmsrs, 0x1000 - 0x100 + 1);
	for (uint32_t m = 0x100; m <= 0x2ff; m++)
		assert_true(kvm_msrf_traps(&f, m, m & 1));
	assert_false(kvm_msrf_traps(&f, 0x300, false));
	assert_false(kvm_msrf_traps(&f, 0xfff, true));
	assert_true(kvm_msrf_traps(&f, 0x1000, true));
	assert_false(kvm_msrf_traps(&f, 0xff, false));
}

static void test_far_apart_msrs_take_a_range_each(void **state)
{
	(void)state;
	struct spec_builder b = { .s = { .mode = POLICY_ENFORCE } };
	char err[256] = "", warn[256];
	add_rule(&b, POLICY_DENY, POL_ACC_ANY, true, 0x10, 0x10);
	add_rule(&b, POLICY_DENY, POL_ACC_ANY, true, 0xc0000080, 0xc0000080);
	add_rule(&b, POLICY_DENY, POL_ACC_ANY, true, 0x40000000, 0x40000001);
	assert_int_equal(build(&b, err, sizeof(err), warn), 0);
	assert_int_equal(f.nranges, 3);
	assert_true(kvm_msrf_traps(&f, 0xc0000080, false));
	assert_true(kvm_msrf_traps(&f, 0x40000001, true));
	assert_false(kvm_msrf_traps(&f, 0x40000002, true));
}

static void test_long_range_is_split(void **state)
{
	(void)state;
	struct spec_builder b = { .s = { .mode = POLICY_ENFORCE } };
	char err[256] = "", warn[256];
	add_rule(&b, POLICY_DENY, POL_ACC_ANY, true, 0x0, 0x7ff); /* below x2APIC */
	add_rule(&b, POLICY_DENY, POL_ACC_ANY, true, 0x900, 0x20000);
	assert_int_equal(build(&b, err, sizeof(err), warn), 0);
	/* 0x0-0x20000 has 0x100 untrapped MSRs in it but spans 131073. */
	assert_int_equal(f.nranges, (0x20000 + KVM_MSRF_SPAN) / KVM_MSRF_SPAN);
	for (unsigned i = 0; i < f.nranges; i++) {
		assert_true(f.filter.ranges[i].nmsrs <= KVM_MSRF_SPAN);
		assert_true(f.filter.ranges[i].nmsrs > 0);
	}
	assert_true(kvm_msrf_traps(&f, 0, false));
	assert_true(kvm_msrf_traps(&f, KVM_MSRF_SPAN - 1, false));
	assert_true(kvm_msrf_traps(&f, KVM_MSRF_SPAN, false));
	assert_true(kvm_msrf_traps(&f, 0x20000, true));
	assert_false(kvm_msrf_traps(&f, 0x20001, true));
	assert_false(kvm_msrf_traps(&f, 0x850, true));
}

static void test_too_many_ranges_refused(void **state)
{
	(void)state;
	struct spec_builder b = { .s = { .mode = POLICY_ENFORCE } };
	char err[256] = "", warn[256];
	for (unsigned i = 0; i < 17; i++)
		add_rule(&b, POLICY_DENY, POL_ACC_ANY, true, 0x100000ull * (i + 1), 0x100000ull * (i + 1));
	assert_int_equal(build(&b, err, sizeof(err), warn), -1);
	assert_non_null(strstr(err, "17 ranges"));
	assert_non_null(strstr(err, "at most 16"));
	/* 16 fit. */
	b.s.nrules = 16;
	assert_int_equal(build(&b, err, sizeof(err), warn), 0);
	assert_int_equal(f.nranges, 16);
	/* Far-apart MSRs alternating with far-apart holes fit neither way. */
	struct spec_builder all = { .s = { .mode = POLICY_ENFORCE } };
	for (unsigned i = 0; i < 20; i++)
		add_rule(&all, POLICY_DENY, POL_ACC_ANY, true, 0x8000000ull * i + 0x1000, 0x8000000ull * i + 0x4000000);
	assert_int_equal(build(&all, err, sizeof(err), warn), -1);
	assert_non_null(strstr(err, "ranges"));
}

static void test_most_of_the_space_default_deny(void **state)
{
	(void)state;
	struct spec_builder b = { .s = { .mode = POLICY_ENFORCE } };
	char err[256] = "", warn[256];
	/* Every MSR but 0x10 and 0xc0000080-0xc0000084 denied. */
	add_rule(&b, POLICY_DENY, POL_ACC_ANY, true, 0x0, 0xf);
	add_rule(&b, POLICY_DENY, POL_ACC_ANY, true, 0x11, 0xc000007f);
	add_rule(&b, POLICY_DENY, POL_ACC_ANY, true, 0xc0000085, 0xffffffff);
	assert_int_equal(build(&b, err, sizeof(err), warn), 0);
	assert_int_equal(f.filter.flags, KVM_MSR_FILTER_DEFAULT_DENY);
	assert_int_equal(f.nranges, 2);
	assert_false(kvm_msrf_empty(&f));
	assert_false(kvm_msrf_traps(&f, 0x10, false));
	assert_false(kvm_msrf_traps(&f, 0xc0000084, true));
	assert_true(kvm_msrf_traps(&f, 0xf, false));
	assert_true(kvm_msrf_traps(&f, 0x11, true));
	assert_true(kvm_msrf_traps(&f, 0xc0000085, true));
	assert_true(kvm_msrf_traps(&f, 0xffffffff, false));
	assert_true(kvm_msrf_traps(&f, 0x12345, false));
	assert_non_null(strstr(warn, "x2APIC")); /* the middle rule covers 0x800-0x8ff */

	/* Reads of every MSR denied, writes of none: the filter's default
	 * is one for both, so neither layout fits; refused. */
	struct spec_builder r = { .s = { .mode = POLICY_ENFORCE } };
	add_rule(&r, POLICY_DENY, POL_ACC_READ, true, 0x0, 0xffffffff);
	assert_int_equal(build(&r, err, sizeof(err), warn), -1);
	/* Both denied: a default-deny filter with no range at all. */
	r.rules[0].access = POL_ACC_ANY;
	assert_int_equal(build(&r, err, sizeof(err), warn), 0);
	assert_int_equal(f.nranges, 0);
	assert_false(kvm_msrf_empty(&f));
	assert_true(kvm_msrf_traps(&f, 0x10, true));
}

static void test_x2apic(void **state)
{
	(void)state;
	struct spec_builder b = { .s = { .mode = POLICY_ENFORCE } };
	char err[256] = "", warn[256];
	add_rule(&b, POLICY_DENY, POL_ACC_ANY, true, 0x802, 0x80f);
	assert_int_equal(build(&b, err, sizeof(err), warn), -1);
	assert_non_null(strstr(err, "'r0'"));
	assert_non_null(strstr(err, "x2APIC"));

	struct spec_builder o = { .s = { .mode = POLICY_ENFORCE } };
	add_rule(&o, POLICY_DENY, POL_ACC_ANY, true, 0x7f0, 0x810);
	assert_int_equal(build(&o, err, sizeof(err), warn), 0);
	assert_non_null(strstr(warn, "'r0'"));
	assert_non_null(strstr(warn, "0x800-0x8ff"));
}

static void test_provide_traps_only_when_audited(void **state)
{
	(void)state;
	struct spec_builder b = { .s = { .mode = POLICY_ENFORCE } };
	char err[256] = "", warn[256];
	add_rule(&b, POLICY_PROVIDE, POL_ACC_ANY, false, 0x10, 0x10);
	assert_int_equal(build(&b, err, sizeof(err), warn), 0);
	assert_int_equal(f.nranges, 0);
	b.rules[0].audit = true;
	assert_int_equal(build(&b, err, sizeof(err), warn), 0);
	assert_int_equal(f.nranges, 1);
	assert_true(kvm_msrf_traps(&f, 0x10, false));
}

static void test_permissive_still_traps(void **state)
{
	(void)state;
	struct spec_builder b = { .s = { .mode = POLICY_PERMISSIVE } };
	char err[256] = "", warn[256];
	add_rule(&b, POLICY_DENY, POL_ACC_ANY, true, 0x10, 0x10);
	assert_int_equal(build(&b, err, sizeof(err), warn), 0);
	assert_true(kvm_msrf_traps(&f, 0x10, false));
	assert_true(kvm_msrf_traps(&f, 0x10, true));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_rules_no_filter),
		cmocka_unit_test(test_read_only_rule),
		cmocka_unit_test(test_reads_and_writes_differ),
		cmocka_unit_test(test_overlaps_merge_and_gaps_stay_allowed),
		cmocka_unit_test(test_far_apart_msrs_take_a_range_each),
		cmocka_unit_test(test_long_range_is_split),
		cmocka_unit_test(test_too_many_ranges_refused),
		cmocka_unit_test(test_most_of_the_space_default_deny),
		cmocka_unit_test(test_x2apic),
		cmocka_unit_test(test_provide_traps_only_when_audited),
		cmocka_unit_test(test_permissive_still_traps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
