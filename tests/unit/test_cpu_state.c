/* cpu_state_boot: the boot protocols' entry state over a vCPU after reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/cpu_state.h"

static void test_boot_over_reset(void **state)
{
	(void)state;
	struct vcpu_state s;
	memset(&s, 0, sizeof(s));
	/* What a vCPU holds after reset, roughly: the reset vector, the CPU
	 * signature in rdx, the APIC base. */
	s.rip = 0xfff0;
	s.rdx = 0x600;
	s.r11 = 7;
	s.cs.selector = 0xf000;
	s.apic_base = 0xfee00900;
	s.tr.selector = 0x28;
	struct x86_boot_cpu b = {
		.rip = 0x1000200, .rsi = 0x7000, .rbx = 0x8000, .rsp = 0x90000,
		.cr0 = 0x80050033, .cr3 = 0x9000, .cr4 = 0x20, .efer = 0x500,
		.cs = { .selector = 0x10, .l = 1, .present = 1, .type = 11, .s = 1 },
		.ds = { .selector = 0x18, .present = 1, .type = 3, .s = 1 },
		.gdt_base = 0x500, .gdt_limit = 0x1f, .idt_base = 0, .idt_limit = 0,
	};
	cpu_state_boot(&s, &b);
	assert_int_equal(s.rip, 0x1000200);
	assert_int_equal(s.rsi, 0x7000);
	assert_int_equal(s.rbx, 0x8000);
	assert_int_equal(s.rsp, 0x90000);
	assert_int_equal(s.rdx, 0); /* the reset's CPU signature is gone */
	assert_int_equal(s.r11, 0);
	assert_int_equal(s.rflags, 2);
	assert_int_equal(s.cs.selector, 0x10);
	assert_int_equal(s.cs.l, 1);
	assert_int_equal(s.ss.selector, 0x18);
	assert_int_equal(s.gs.selector, 0x18);
	assert_int_equal(s.cr0, 0x80050033);
	assert_int_equal(s.cr3, 0x9000);
	assert_int_equal(s.efer, 0x500);
	assert_int_equal(s.gdt_base, 0x500);
	assert_int_equal(s.gdt_limit, 0x1f);
	/* What the protocols do not name stays. */
	assert_int_equal(s.apic_base, 0xfee00900);
	assert_int_equal(s.tr.selector, 0x28);
	b.rflags = 0x202;
	cpu_state_boot(&s, &b);
	assert_int_equal(s.rflags, 0x202);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boot_over_reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
