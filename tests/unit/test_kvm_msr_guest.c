/* Unit tests for the guest's answer to an MSR vigil provides through KVM's
 * host path (kvm/kvm_msr_guest.c): what the guest's CPUID gives it, the
 * MSRs only the host may write, and the checks that depend on state. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "kvm/kvm_msr_guest.h"

/* A table like KVM's on an AMD host: long mode, NX, RDTSCP, x2APIC,
 * AMD_SSBD; no SVM, XSAVES, ARCH_CAPABILITIES, PDCM or VIRT_SSBD. */
static unsigned amd_table(struct cpuid_leaf *l, bool svm)
{
	memset(l, 0, 6 * sizeof(*l));
	l[0] = (struct cpuid_leaf){ .function = 0, .eax = 0xd };
	memcpy(&l[0].ebx, "Auth", 4);
	memcpy(&l[0].edx, "enti", 4);
	memcpy(&l[0].ecx, "cAMD", 4);
	l[1] = (struct cpuid_leaf){ .function = 1, .ecx = 1u << 21 };
	l[2] = (struct cpuid_leaf){ .function = 0x80000001,
				    .ecx = svm ? 1u << 2 : 0,
				    .edx = (1u << 29) | (1u << 20) | (1u << 27) };
	l[3] = (struct cpuid_leaf){ .function = 0x80000008, .eax = 48, .ebx = 1u << 24 };
	l[4] = (struct cpuid_leaf){ .function = 0xd, .index = 1, .flags = CPUID_FLAG_SIGNIFICANT_INDEX, .eax = 0 };
	l[5] = (struct cpuid_leaf){ .function = 0xd, .index = 0, .flags = CPUID_FLAG_SIGNIFICANT_INDEX,
				    .eax = 1u << 3 }; /* bit 3 of subleaf 0 is not XSAVES */
	return 6;
}

static struct kvm_msr_guest guest(bool svm)
{
	struct cpuid_leaf l[6];
	struct kvm_msr_guest g;
	kvm_msr_guest_init(&g, l, amd_table(l, svm));
	return g;
}

static enum kvm_msr_answer wr(const struct kvm_msr_guest *g, uint32_t i, uint64_t v, struct kvm_msr_state s)
{
	return kvm_msr_guest_check(g, i, true, &v, &s);
}

static enum kvm_msr_answer rd(const struct kvm_msr_guest *g, uint32_t i, struct kvm_msr_state s)
{
	uint64_t v = 0;
	return kvm_msr_guest_check(g, i, false, &v, &s);
}

static void features_come_from_the_table(void **state)
{
	(void)state;
	struct kvm_msr_guest g = guest(false);
	assert_true(g.amd);
	assert_int_equal(g.maxphyaddr, 48);
	assert_true(g.has & 1u << MSRG_F_LM);
	assert_true(g.has & 1u << MSRG_F_NX);
	assert_true(g.has & 1u << MSRG_F_X2APIC);
	assert_true(g.has & 1u << MSRG_F_AMD_SSBD);
	assert_false(g.has & 1u << MSRG_F_SVM);
	assert_false(g.has & 1u << MSRG_F_XSAVES); /* subleaf 0's bit 3 is not it */
	assert_int_equal(guest(true).has & 1u << MSRG_F_SVM, 1u << MSRG_F_SVM);

	struct kvm_msr_guest none;
	kvm_msr_guest_init(&none, NULL, 0);
	assert_int_equal(none.has, 0);
	assert_int_equal(none.maxphyaddr, 36);
	assert_false(none.amd);
}

static void host_only_writes_fault(void **state)
{
	(void)state;
	struct kvm_msr_guest g = guest(true);
	struct kvm_msr_state s = { 0 };
	static const uint32_t host_only[] = { 0x10a, 0x345, 0x9e, 0x34, 0xce, 0x480, 0x48d, 0x491 };
	for (size_t i = 0; i < sizeof(host_only) / sizeof(host_only[0]); i++)
		assert_int_equal(wr(&g, host_only[i], 0, s), MSRG_GP);
	assert_int_equal(wr(&g, 0x492, 0, s), MSRG_HOST);
	assert_int_equal(wr(&g, 0x47f, 0, s), MSRG_HOST);
	/* The microcode revision: a guest's write is taken and changes nothing. */
	assert_int_equal(wr(&g, 0x8b, 0x4141, s), MSRG_DROP);
	/* Reads: SMBASE never; the capability MSRs only with their CPUID bit. */
	assert_int_equal(rd(&g, 0x9e, s), MSRG_GP);
	assert_int_equal(rd(&g, 0x10a, s), MSRG_GP);
	assert_int_equal(rd(&g, 0x345, s), MSRG_GP);
	assert_int_equal(rd(&g, 0x8b, s), MSRG_HOST);
	g.has |= 1u << MSRG_F_ARCH_CAP | 1u << MSRG_F_PDCM;
	assert_int_equal(rd(&g, 0x10a, s), MSRG_HOST);
	assert_int_equal(rd(&g, 0x345, s), MSRG_HOST);
}

/* A TSC write moves the offset and TSC_ADJUST; a TSC_ADJUST write too, but
 * only with CPUID 7 EBX bit 1 (without it KVM takes the write and does
 * nothing). Reads are plain. */
static void tsc_writes_move_the_offset(void **state)
{
	(void)state;
	struct kvm_msr_guest g = guest(false);
	struct kvm_msr_state s = { 0 };
	assert_false(g.has & 1u << MSRG_F_TSC_ADJUST);
	assert_int_equal(wr(&g, MSRG_MSR_TSC, 1ull << 40, s), MSRG_TSC);
	assert_int_equal(wr(&g, MSRG_MSR_TSC_ADJUST, 5, s), MSRG_DROP);
	assert_int_equal(rd(&g, MSRG_MSR_TSC, s), MSRG_HOST);
	assert_int_equal(rd(&g, MSRG_MSR_TSC_ADJUST, s), MSRG_HOST);

	struct cpuid_leaf l[7];
	unsigned n = amd_table(l, false);
	l[n++] = (struct cpuid_leaf){ .function = 7, .index = 0, .flags = CPUID_FLAG_SIGNIFICANT_INDEX,
				      .ebx = 1u << 1 };
	kvm_msr_guest_init(&g, l, n);
	assert_true(g.has & 1u << MSRG_F_TSC_ADJUST);
	assert_int_equal(wr(&g, MSRG_MSR_TSC_ADJUST, 5, s), MSRG_TSC);
}

static void efer_is_checked_as_for_the_guest(void **state)
{
	(void)state;
	struct kvm_msr_guest g = guest(false);
	const uint64_t lme = 1 << 8, lma = 1 << 10, nx = 1 << 11, svme = 1 << 12, ffxsr = 1 << 14;
	struct kvm_msr_state paged = { .cur = lme | lma | nx, .cr0 = 0x80000011 }, real = { 0 };
	assert_int_equal(kvm_msr_guest_needs(0xc0000080, true), MSRG_NEED_CUR | MSRG_NEED_CR0);
	assert_int_equal(kvm_msr_guest_needs(0xc0000080, false), 0);
	assert_int_equal(wr(&g, 0xc0000080, lme | lma | nx | 1, paged), MSRG_HOST);
	assert_int_equal(wr(&g, 0xc0000080, lme | lma | nx | svme, paged), MSRG_GP); /* nested not given */
	assert_int_equal(wr(&g, 0xc0000080, lme | lma | nx | ffxsr, paged), MSRG_GP);
	assert_int_equal(wr(&g, 0xc0000080, lma | nx, paged), MSRG_GP); /* LME off under paging */
	assert_int_equal(wr(&g, 0xc0000080, lme, real), MSRG_HOST);   /* on before paging */
	assert_int_equal(rd(&g, 0xc0000080, paged), MSRG_HOST);

	struct kvm_msr_guest s = guest(true);
	assert_int_equal(wr(&s, 0xc0000080, lme | lma | nx | svme, paged), MSRG_HOST);
	s.has &= ~(1u << MSRG_F_NX | 1u << MSRG_F_LM);
	assert_int_equal(wr(&s, 0xc0000080, nx, real), MSRG_GP);
	assert_int_equal(wr(&s, 0xc0000080, lme, real), MSRG_GP);
}

static void apic_base_mode_changes(void **state)
{
	(void)state;
	struct kvm_msr_guest g = guest(false);
	const uint64_t base = 0xfee00000, en = 1 << 11, extd = 1 << 10;
	struct kvm_msr_state xapic = { .cur = base | en }, x2apic = { .cur = base | en | extd }, off = { .cur = base };
	assert_int_equal(kvm_msr_guest_needs(0x1b, true), MSRG_NEED_CUR);
	assert_int_equal(wr(&g, 0x1b, base | en | extd, xapic), MSRG_HOST);
	assert_int_equal(wr(&g, 0x1b, base | en, x2apic), MSRG_GP);
	assert_int_equal(wr(&g, 0x1b, base, x2apic), MSRG_HOST);
	assert_int_equal(wr(&g, 0x1b, base | en | extd, off), MSRG_GP);
	assert_int_equal(wr(&g, 0x1b, base | en, off), MSRG_HOST);
}

static void misc_enable_keeps_read_only_bits(void **state)
{
	(void)state;
	struct kvm_msr_guest g = guest(false);
	struct kvm_msr_state s = { .cur = (1 << 11) | (1 << 12) | (1 << 7) | 1 };
	uint64_t v = (1 << 11) | (1 << 12) | 8; /* EMON cleared, bit 0 cleared, bit 3 set */
	assert_int_equal(kvm_msr_guest_check(&g, 0x1a0, true, &v, &s), MSRG_HOST);
	assert_int_equal(v, (1 << 11) | (1 << 12) | (1 << 7) | 8);
	assert_int_equal(wr(&g, 0x1a0, 1 << 12, s), MSRG_GP); /* BTS-unavailable cleared */
}

static void cpuid_gated_msrs(void **state)
{
	(void)state;
	struct kvm_msr_guest g = guest(false);
	struct kvm_msr_state s = { 0 };
	assert_int_equal(wr(&g, 0xda0, 0, s), MSRG_GP); /* XSS without XSAVES */
	assert_int_equal(rd(&g, 0xda0, s), MSRG_GP);
	assert_int_equal(rd(&g, 0x1c4, s), MSRG_GP); /* XFD */
	assert_int_equal(wr(&g, 0x1c5, 0, s), MSRG_GP);
	assert_int_equal(rd(&g, 0xc0000103, s), MSRG_HOST); /* TSC_AUX with RDTSCP */
	assert_int_equal(wr(&g, 0x48, 4, s), MSRG_HOST);    /* SPEC_CTRL through AMD_SSBD */
	assert_int_equal(wr(&g, 0x49, 1, s), MSRG_GP);      /* PRED_CMD needs IBPB */
	assert_int_equal(wr(&g, 0xc001011f, 0, s), MSRG_GP);
	assert_int_equal(rd(&g, 0xc0000104, s), MSRG_GP); /* TSC_RATIO without SVM */
	g.has |= 1u << MSRG_F_XSAVES | 1u << MSRG_F_AMD_IBPB;
	assert_int_equal(wr(&g, 0xda0, 0, s), MSRG_HOST);
	assert_int_equal(wr(&g, 0x49, 1, s), MSRG_HOST);
	g.has &= ~(1u << MSRG_F_RDTSCP);
	assert_int_equal(rd(&g, 0xc0000103, s), MSRG_GP);
	g.has |= 1u << MSRG_F_RDPID;
	assert_int_equal(rd(&g, 0xc0000103, s), MSRG_HOST);
}

static void machine_check_msrs(void **state)
{
	(void)state;
	struct kvm_msr_guest g = guest(false);
	struct kvm_msr_state s = { .mcg_cap = 10 }, wren = { .hwcr = 1u << 18 };
	assert_int_equal(kvm_msr_guest_needs(0x401, true), MSRG_NEED_HWCR);
	assert_int_equal(kvm_msr_guest_needs(0x401, false), 0);
	assert_int_equal(kvm_msr_guest_needs(0x17b, false), MSRG_NEED_MCG_CAP);
	assert_int_equal(kvm_msr_guest_needs(0x280, true), MSRG_NEED_MCG_CAP);
	assert_int_equal(wr(&g, 0x401, 0, s), MSRG_HOST); /* clearing is always allowed */
	assert_int_equal(wr(&g, 0x401, 0xb200000000000000ull, s), MSRG_GP);
	assert_int_equal(wr(&g, 0x401 + 4 * 31, 1, s), MSRG_GP);
	assert_int_equal(wr(&g, 0x401, 1, wren), MSRG_HOST);
	assert_int_equal(wr(&g, 0x400, 1, s), MSRG_HOST); /* MC0_CTL is not a status */
	g.amd = false;
	assert_int_equal(wr(&g, 0x401, 1, wren), MSRG_GP);
	assert_int_equal(rd(&g, 0x17b, s), MSRG_GP);
	assert_int_equal(wr(&g, 0x17b, 0, s), MSRG_GP);
	assert_int_equal(rd(&g, 0x281, s), MSRG_GP);
	s.mcg_cap |= 1 << 8 | 1 << 10;
	assert_int_equal(rd(&g, 0x17b, s), MSRG_HOST);
	assert_int_equal(wr(&g, 0x281, 0, s), MSRG_HOST);
}

static void state_checked_writes(void **state)
{
	(void)state;
	struct kvm_msr_guest g = guest(false);
	assert_int_equal(wr(&g, 0x3a, 5, (struct kvm_msr_state){ .cur = 1 }), MSRG_GP); /* locked */
	assert_int_equal(wr(&g, 0x3a, 5, (struct kvm_msr_state){ .cur = 0 }), MSRG_HOST);
	assert_int_equal(wr(&g, 0xc0011029, 2, (struct kvm_msr_state){ .cur = 2 }), MSRG_HOST);
	assert_int_equal(wr(&g, 0xc0011029, 0, (struct kvm_msr_state){ .cur = 2 }), MSRG_GP);
	struct kvm_msr_state s = { 0 };
	assert_int_equal(wr(&g, 0xc0010117, 0x1000, s), MSRG_HOST);
	assert_int_equal(wr(&g, 0xc0010117, 0x1008, s), MSRG_GP);
	assert_int_equal(wr(&g, 0xc0010117, 1ull << 48, s), MSRG_GP); /* past MAXPHYADDR */
}

static void ordinary_msrs_take_the_host_path(void **state)
{
	(void)state;
	struct kvm_msr_guest g = guest(false);
	struct kvm_msr_state s = { 0 };
	static const uint32_t plain[] = { 0x174, 0x277, 0x2ff, 0x6e0, 0xc0000081, 0xc0000082, 0xc0000102,
					  0x4b564d01, 0xc0010000, 0x11 };
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		assert_int_equal(kvm_msr_guest_needs(plain[i], true), 0);
		assert_int_equal(wr(&g, plain[i], 0x1000, s), MSRG_HOST);
		assert_int_equal(rd(&g, plain[i], s), MSRG_HOST);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(features_come_from_the_table),
		cmocka_unit_test(host_only_writes_fault),
		cmocka_unit_test(tsc_writes_move_the_offset),
		cmocka_unit_test(efer_is_checked_as_for_the_guest),
		cmocka_unit_test(apic_base_mode_changes),
		cmocka_unit_test(misc_enable_keeps_read_only_bits),
		cmocka_unit_test(cpuid_gated_msrs),
		cmocka_unit_test(machine_check_msrs),
		cmocka_unit_test(state_checked_writes),
		cmocka_unit_test(ordinary_msrs_take_the_host_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
