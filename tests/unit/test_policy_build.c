/* Unit tests for what the builder takes from the policy (vmm/policy_build.c):
 * a drive's overlay, the rtc redirect as a shifted clock the CMOS RTC reads. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "devices/rtc_cmos.h"
#include "vmm/policy_build.h"

static struct policy *compile(struct policy_rule *rules, unsigned n, enum policy_mode mode)
{
	struct policy_spec spec = { .mode = mode, .nrules = n, .rules = rules };
	char err[160];
	struct policy *p = policy_compile(&spec, err, sizeof(err));
	if (!p)
		fail_msg("policy_compile: %s", err);
	return p;
}

static struct policy_rule disk(const char *id, const char *drive, enum policy_verdict v, enum policy_access a,
			       struct policy_range *range, char *overlay)
{
	struct policy_rule r = { .resource = POL_RES_DISK, .verdict = v, .access = a, .overlay = overlay,
				 .nranges = range ? 1 : 0, .ranges = range };
	snprintf(r.id, sizeof(r.id), "%s", id);
	snprintf(r.drive, sizeof(r.drive), "%s", drive);
	return r;
}

static void test_overlay(void **state)
{
	(void)state;
	struct policy_range low = { 0, 99 };
	bool only = true;

	/* Nothing for the drive. */
	struct policy_rule r1[] = { disk("a", "other", POLICY_REDIRECT, POL_ACC_WRITE, NULL, "/tmp/o1") };
	struct policy *p = compile(r1, 1, POLICY_ENFORCE);
	assert_null(policy_build_overlay(p, "rootfs", &only));
	assert_false(only);
	assert_string_equal(policy_build_overlay(p, "other", &only), "/tmp/o1");
	assert_true(only);
	policy_free(p);

	/* A sector range: the image must stay writable for the rest. */
	struct policy_rule r2[] = { disk("a", "rootfs", POLICY_REDIRECT, POL_ACC_WRITE, &low, "/tmp/o2") };
	p = compile(r2, 1, POLICY_ENFORCE);
	assert_string_equal(policy_build_overlay(p, "rootfs", &only), "/tmp/o2");
	assert_false(only);
	policy_free(p);

	/* An earlier rule decides some writes otherwise. */
	struct policy_rule r3[] = { disk("a", "rootfs", POLICY_DENY, POL_ACC_ANY, &low, NULL),
				    disk("b", "rootfs", POLICY_REDIRECT, POL_ACC_ANY, NULL, "/tmp/o3") };
	p = compile(r3, 2, POLICY_ENFORCE);
	assert_string_equal(policy_build_overlay(p, "rootfs", &only), "/tmp/o3");
	assert_false(only);
	policy_free(p);

	/* Permissive: writes reach the image. */
	p = compile(r1, 1, POLICY_PERMISSIVE);
	assert_non_null(policy_build_overlay(p, "other", &only));
	assert_false(only);
	policy_free(p);
}

static int64_t fixed_wall(void *ctx)
{
	(void)ctx;
	return 1700000000;
}

static uint64_t fixed_mono(void *ctx)
{
	(void)ctx;
	return 5;
}

static uint8_t rd(struct rtc_cmos *r, uint8_t idx)
{
	uint8_t v = 0;
	rtc_cmos_io(r, 0, &idx, 1, true);
	rtc_cmos_io(r, 1, &v, 1, false);
	return v;
}

static int bcd(uint8_t v)
{
	return (v >> 4) * 10 + (v & 15);
}

static void test_rtc(void **state)
{
	(void)state;
	int64_t off = 0;
	struct policy_rule r = { .resource = POL_RES_RTC, .verdict = POLICY_REDIRECT, .rtc_kind = POL_RTC_EPOCH,
				 .epoch_s = 946684800 /* 2000-01-01T00:00:00Z */ };
	snprintf(r.id, sizeof(r.id), "clock");

	struct policy *p = compile(NULL, 0, POLICY_ENFORCE);
	assert_false(policy_build_rtc(p, 1700000000, &off, NULL));
	policy_free(p);

	p = compile(&r, 1, POLICY_ENFORCE);
	assert_true(policy_build_rtc(p, 1700000000, &off, NULL));
	assert_int_equal(off, 946684800 - 1700000000);
	policy_free(p);

	p = compile(&r, 1, POLICY_PERMISSIVE);
	assert_false(policy_build_rtc(p, 1700000000, &off, NULL));
	policy_free(p);

	r.rtc_kind = POL_RTC_OFFSET;
	r.offset_s = -3600;
	p = compile(&r, 1, POLICY_ENFORCE);
	assert_true(policy_build_rtc(p, 1700000000, &off, NULL));
	assert_int_equal(off, -3600);
	policy_free(p);

	/* The CMOS RTC over the shifted clock reads the epoch. */
	struct vclock_shift sh = { .base = { .mono_ns = fixed_mono, .wall_s = fixed_wall },
				   .offset_s = 946684800 - 1700000000 };
	struct vclock c = vclock_shifted(&sh);
	assert_int_equal(vclock_wall_s(&c), 946684800);
	assert_int_equal(vclock_mono_ns(&c), 5);
	struct rtc_cmos *rtc = rtc_cmos_new((struct irq_line){ 0 }, &c);
	assert_non_null(rtc);
	assert_int_equal(bcd(rd(rtc, 9)), 0);  /* year */
	assert_int_equal(bcd(rd(rtc, 8)), 1);  /* month */
	assert_int_equal(bcd(rd(rtc, 7)), 1);  /* day */
	assert_int_equal(bcd(rd(rtc, 4)), 0);  /* hours */
	assert_int_equal(bcd(rd(rtc, 0x32)), 20); /* century */
	rtc_cmos_free(rtc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overlay),
		cmocka_unit_test(test_rtc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
