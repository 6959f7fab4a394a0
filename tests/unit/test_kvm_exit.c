/* Unit tests for kvm_run decoding (src/kvm/kvm_exit.c): run areas as a
 * confused kernel could leave them, no KVM needed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/exit.h"
#include "kvm/kvm_internal.h"

#define RUN_SIZE 4096u

static _Alignas(8) uint8_t area[RUN_SIZE];

static struct kvm_run *io_exit(uint8_t size, uint32_t count, uint64_t data_offset)
{
	struct kvm_run *run = (struct kvm_run *)(void *)area;
	memset(area, 0, sizeof(area));
	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = KVM_EXIT_IO_IN;
	run->io.size = size;
	run->io.port = 0x3f8;
	run->io.count = count;
	run->io.data_offset = data_offset;
	return run;
}

static void test_io_in_bounds(void **state)
{
	(void)state;
	struct vexit ex;
	kvm_translate_exit(io_exit(1, 4, RUN_SIZE - 4), RUN_SIZE, &ex);
	assert_int_equal(ex.reason, VEXIT_IO);
	assert_ptr_equal(ex.data, area + RUN_SIZE - 4);
	assert_int_equal(ex.count, 4);
	assert_int_equal(ex.len, 1);
	assert_int_equal(ex.addr, 0x3f8);
	assert_false(ex.write);
}

static void test_io_past_end(void **state)
{
	(void)state;
	struct vexit ex;
	kvm_translate_exit(io_exit(1, 5, RUN_SIZE - 4), RUN_SIZE, &ex);
	assert_int_equal(ex.reason, VEXIT_INTERNAL_ERROR);
	kvm_translate_exit(io_exit(4, 1, RUN_SIZE + 8), RUN_SIZE, &ex);
	assert_int_equal(ex.reason, VEXIT_INTERNAL_ERROR);
	kvm_translate_exit(io_exit(4, 0x40000001u, 0), RUN_SIZE, &ex);
	assert_int_equal(ex.reason, VEXIT_INTERNAL_ERROR);
}

/* Found by fuzz_exit: count 0 passed the bound check with the data offset at
 * the very end of the run area, and exit_dispatch (which takes count 0 as
 * one access) then read len bytes past it. */
static void test_io_count_zero_at_end(void **state)
{
	(void)state;
	struct vexit ex;
	kvm_translate_exit(io_exit(1, 0, RUN_SIZE), RUN_SIZE, &ex);
	assert_int_equal(ex.reason, VEXIT_INTERNAL_ERROR);
	kvm_translate_exit(io_exit(4, 0, RUN_SIZE - 2), RUN_SIZE, &ex);
	assert_int_equal(ex.reason, VEXIT_INTERNAL_ERROR);
	/* Count 0 with room for one access is one access. */
	kvm_translate_exit(io_exit(4, 0, RUN_SIZE - 4), RUN_SIZE, &ex);
	assert_int_equal(ex.reason, VEXIT_IO);
}

static void test_msr_points_into_run(void **state)
{
	(void)state;
	struct kvm_run *run = (struct kvm_run *)(void *)area;
	struct vexit ex;
	memset(area, 0, sizeof(area));
	run->exit_reason = KVM_EXIT_X86_WRMSR;
	run->msr.index = 0x10;
	kvm_translate_exit(run, RUN_SIZE, &ex);
	assert_int_equal(ex.reason, VEXIT_MSR);
	assert_true(ex.write);
	assert_ptr_equal(ex.data, (uint8_t *)&run->msr.data);
	assert_ptr_equal(ex.fault, &run->msr.error);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_io_in_bounds),
		cmocka_unit_test(test_io_past_end),
		cmocka_unit_test(test_io_count_zero_at_end),
		cmocka_unit_test(test_msr_points_into_run),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
