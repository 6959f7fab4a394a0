/* Unit tests for the policy's cpuid rules applied to a vCPU's CPUID table
 * (arch/x86/cpuid.c: cpuid_apply_policy): registers masked in place, after
 * the fix-ups; entries the table lacks added, with the range's highest
 * leaf raised to reach them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "arch/x86/cpuid.h"
#include "core/policy.h"

#define CAP 16

static struct policy_rule rules[8];
static struct policy_spec spec;

static struct policy_rule *rule(uint32_t leaf, int subleaf)
{
	struct policy_rule *r = &rules[spec.nrules];
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "c%u", spec.nrules);
	r->resource = POL_RES_CPUID;
	r->verdict = POLICY_REDIRECT;
	r->audit = true;
	r->leaf = leaf;
	if (subleaf >= 0) {
		r->has_subleaf = true;
		r->subleaf = (uint32_t)subleaf;
	}
	spec.nrules++;
	spec.rules = rules;
	return r;
}

static struct policy *compile(void)
{
	char err[256];
	struct policy *p = policy_compile(&spec, err, sizeof(err));
	assert_non_null(p);
	return p;
}

static unsigned table(struct cpuid_leaf *t)
{
	memset(t, 0, CAP * sizeof(*t));
	t[0] = (struct cpuid_leaf){ .function = 0, .eax = 0xd, .ebx = 0x68747541 };
	t[1] = (struct cpuid_leaf){ .function = 1, .eax = 0x00a00f11, .ebx = 0x00100800, .ecx = 0x7ef8320b,
				    .edx = 0x178bfbff };
	t[2] = (struct cpuid_leaf){ .function = 7, .index = 0, .flags = CPUID_FLAG_SIGNIFICANT_INDEX, .eax = 1,
				    .ebx = 0x219c91a9 };
	t[3] = (struct cpuid_leaf){ .function = 0x40000000, .eax = 0x40000001, .ebx = 0x4b4d564b };
	t[4] = (struct cpuid_leaf){ .function = 0x80000000, .eax = 0x80000008 };
	return 5;
}

static void setup_spec(void)
{
	memset(&spec, 0, sizeof(spec));
	spec.mode = POLICY_ENFORCE;
}

static void test_hypervisor_bit_cleared_after_fixup(void **state)
{
	(void)state;
	setup_spec();
	struct policy_rule *r = rule(1, -1);
	r->regs[2] = (struct policy_cpuid_reg){ .mask = 1u << 31, .value = 0 };
	struct policy *p = compile();
	struct cpuid_leaf t[CAP];
	unsigned n = table(t);
	uint32_t ecx = t[1].ecx;
	cpuid_fixup(t, n, 0, 1); /* sets the hypervisor bit */
	assert_true(t[1].ecx & (1u << 31));
	assert_int_equal(cpuid_policy_extra(p), 1);
	assert_int_equal(cpuid_apply_policy(t, n, CAP, p), n);
	assert_int_equal(t[1].ecx, ecx & ~(1u << 31));
	assert_int_equal(t[1].eax, 0x00a00f11); /* other registers untouched */
	policy_free(p);
}

static void test_whole_value_and_other_leaves_alone(void **state)
{
	(void)state;
	setup_spec();
	struct policy_rule *r = rule(0, -1);
	r->regs[1] = (struct policy_cpuid_reg){ .mask = 0xffffffff, .value = 0x12345678 };
	struct policy *p = compile();
	struct cpuid_leaf t[CAP], orig[CAP];
	unsigned n = table(t);
	memcpy(orig, t, sizeof(t));
	cpuid_apply_policy(t, n, CAP, p);
	assert_int_equal(t[0].ebx, 0x12345678);
	assert_int_equal(t[0].eax, orig[0].eax);
	assert_memory_equal(&t[1], &orig[1], (n - 1) * sizeof(t[0]));
	policy_free(p);
}

static void test_missing_leaf_added_and_reachable(void **state)
{
	(void)state;
	setup_spec();
	struct policy_rule *r = rule(0x40000010, -1);
	r->regs[0] = (struct policy_cpuid_reg){ .mask = 0xffffffff, .value = 0xabcd };
	r = rule(7, 1); /* leaf 7 subleaf 1: KVM's table has only subleaf 0 */
	r->regs[0] = (struct policy_cpuid_reg){ .mask = 0xff, .value = 0x5a };
	r = rule(0x15, -1); /* beyond leaf 0's highest basic leaf (0xd) */
	r->regs[1] = (struct policy_cpuid_reg){ .mask = 0xffffffff, .value = 7 };
	struct policy *p = compile();
	struct cpuid_leaf t[CAP];
	unsigned n = table(t);
	unsigned m = cpuid_apply_policy(t, n, CAP, p);
	assert_int_equal(m, n + 3);
	assert_int_equal(t[n].function, 0x40000010);
	assert_int_equal(t[n].eax, 0xabcd);
	assert_int_equal(t[n].flags, 0);
	assert_int_equal(t[n + 1].function, 7);
	assert_int_equal(t[n + 1].index, 1);
	assert_int_equal(t[n + 1].flags, CPUID_FLAG_SIGNIFICANT_INDEX);
	assert_int_equal(t[n + 1].eax, 0x5a);
	assert_int_equal(t[2].eax, 1); /* subleaf 0 untouched */
	assert_int_equal(t[n + 2].function, 0x15);
	assert_int_equal(t[n + 2].ebx, 7);
	assert_int_equal(t[3].eax, 0x40000010); /* the hypervisor range reaches it */
	assert_int_equal(t[0].eax, 0x15);       /* and the basic range */
	assert_int_equal(t[4].eax, 0x80000008); /* the extended range had no rule */
	policy_free(p);
}

static void test_rule_on_highest_leaf_wins(void **state)
{
	(void)state;
	setup_spec();
	rule(0x20, -1)->regs[0] = (struct policy_cpuid_reg){ .mask = 0xffffffff, .value = 1 };
	rule(0, -1)->regs[0] = (struct policy_cpuid_reg){ .mask = 0xffffffff, .value = 0x7 };
	struct policy *p = compile();
	struct cpuid_leaf t[CAP];
	unsigned n = table(t);
	assert_int_equal(cpuid_apply_policy(t, n, CAP, p), n + 1);
	assert_int_equal(t[0].eax, 0x7); /* what the rule says, not the raise */
	policy_free(p);
}

static void test_no_room_adds_nothing(void **state)
{
	(void)state;
	setup_spec();
	rule(0x40000010, -1)->regs[0] = (struct policy_cpuid_reg){ .mask = 1, .value = 1 };
	struct policy *p = compile();
	struct cpuid_leaf t[CAP];
	unsigned n = table(t);
	assert_int_equal(cpuid_apply_policy(t, n, n, p), n);
	policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hypervisor_bit_cleared_after_fixup),
		cmocka_unit_test(test_whole_value_and_other_leaves_alone),
		cmocka_unit_test(test_missing_leaf_added_and_reachable),
		cmocka_unit_test(test_rule_on_highest_leaf_wins),
		cmocka_unit_test(test_no_room_adds_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
