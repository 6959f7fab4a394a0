/* dev_request: counting and the policy's decision are separate, so a gate
 * without counters is still governed by the policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/devreq.h"
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_and_decides),
		cmocka_unit_test(test_no_counters_still_governed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
