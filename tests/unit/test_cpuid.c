/* Unit tests for the CPUID table fix-ups (arch/x86/cpuid.c): the APIC IDs and
 * topology each vCPU of an N-vCPU guest must see. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "arch/x86/cpuid.h"

enum { L1, L4_L1D, L4_L3, L4_END, LB_0, LB_1, LB_2, L1F_1, L80000008, L8000001E, L0, NLEAVES };

/* A plausible host table before the fix-ups. */
static void host_table(struct cpuid_leaf *t)
{
	memset(t, 0, NLEAVES * sizeof(*t));
	/* Leaf 1: stepping etc. in EAX; EBX: brand 0x00, CLFLUSH 8, 16 logical,
	 * host APIC ID 0x2a. */
	t[L1] = (struct cpuid_leaf){ .function = 0x1, .eax = 0x000906ea, .ebx = 0x2a100800,
				     .ecx = 0x7ffafbff, .edx = 0x0fabfbff };
	/* Leaf 4: L1d (type 1, level 1) and L3 (type 3, level 3), host
	 * sharing bits and cores-per-package set to junk. */
	t[L4_L1D] = (struct cpuid_leaf){ .function = 0x4, .index = 0, .flags = 1,
					 .eax = (0x3fu << 26) | (1u << 14) | (1u << 8) | (1u << 5) | 1,
					 .ebx = 0x01c0003f, .ecx = 0x3f };
	t[L4_L3] = (struct cpuid_leaf){ .function = 0x4, .index = 3, .flags = 1,
					.eax = (0x3fu << 26) | (0xfu << 14) | (1u << 8) | (3u << 5) | 3,
					.ebx = 0x03c0003f, .ecx = 0x2fff };
	t[L4_END] = (struct cpuid_leaf){ .function = 0x4, .index = 4, .flags = 1, .eax = 0 };
	for (unsigned i = 0; i < 3; i++)
		t[LB_0 + i] = (struct cpuid_leaf){ .function = 0xB, .index = i, .flags = 1,
						   .eax = 0x77, .ebx = 0x77, .ecx = 0x77, .edx = 0x2a };
	t[L1F_1] = (struct cpuid_leaf){ .function = 0x1F, .index = 1, .flags = 1, .eax = 9, .ebx = 99,
					.edx = 0x2a };
	t[L80000008] = (struct cpuid_leaf){ .function = 0x80000008, .eax = 0x3030,
					    .ecx = 0x00057007 | (0xfu << 12) };
	t[L8000001E] = (struct cpuid_leaf){ .function = 0x8000001E, .eax = 0x2a, .ebx = 0x0105,
					    .ecx = 0x0301 };
	t[L0] = (struct cpuid_leaf){ .function = 0x0, .eax = 0x16, .ebx = 0x756e6547 };
}

static void test_cpu3_of_4(void **state)
{
	(void)state;
	struct cpuid_leaf t[NLEAVES], orig[NLEAVES];
	host_table(t);
	memcpy(orig, t, sizeof(t));
	cpuid_fixup(t, NLEAVES, 3, 4);

	/* Leaf 1: APIC ID 3, 4 logical processors, hypervisor, HTT. */
	assert_int_equal(t[L1].ebx >> 24, 3);
	assert_int_equal((t[L1].ebx >> 16) & 0xff, 4);
	assert_int_equal(t[L1].ebx & 0xffff, 0x0800); /* CLFLUSH size, brand kept */
	assert_int_equal(t[L1].ecx, orig[L1].ecx | (1u << 31));
	assert_int_equal(t[L1].edx, orig[L1].edx | (1u << 28));
	assert_int_equal(t[L1].eax, orig[L1].eax);

	/* Leaf 4: cores per package - 1 = 3 everywhere; L1d private, L3
	 * shared by all 4; the low 10 bits (type, level, ...) kept. */
	assert_int_equal(t[L4_L1D].eax >> 26, 3);
	assert_int_equal((t[L4_L1D].eax >> 14) & 0xfff, 0);
	assert_int_equal(t[L4_L1D].eax & 0x3ff, orig[L4_L1D].eax & 0x3ff);
	assert_int_equal(t[L4_L3].eax >> 26, 3);
	assert_int_equal((t[L4_L3].eax >> 14) & 0xfff, 3);
	assert_int_equal(t[L4_L3].eax & 0x3ff, orig[L4_L3].eax & 0x3ff);
	assert_int_equal(t[L4_L3].ebx, orig[L4_L3].ebx);
	assert_int_equal(t[L4_L3].ecx, orig[L4_L3].ecx);
	assert_int_equal(t[L4_END].eax, 0); /* the terminating subleaf stays null */

	/* Leaf 0xB: SMT level (1 thread), core level (4), then invalid. */
	assert_int_equal(t[LB_0].eax, 0);
	assert_int_equal(t[LB_0].ebx, 1);
	assert_int_equal(t[LB_0].ecx, 0x100);
	assert_int_equal(t[LB_0].edx, 3);
	assert_int_equal(t[LB_1].eax, 2); /* shift: 4 IDs need 2 bits */
	assert_int_equal(t[LB_1].ebx, 4);
	assert_int_equal(t[LB_1].ecx, 0x201);
	assert_int_equal(t[LB_1].edx, 3);
	assert_int_equal((t[LB_2].ecx >> 8) & 0xff, 0);
	assert_int_equal(t[LB_2].ecx & 0xff, 2);
	assert_int_equal(t[LB_2].ebx, 0);
	assert_int_equal(t[LB_2].eax, 0);
	assert_int_equal(t[LB_2].edx, 3);
	/* Leaf 0x1F mirrors it. */
	assert_int_equal(t[L1F_1].ebx, 4);
	assert_int_equal(t[L1F_1].eax, 2);
	assert_int_equal(t[L1F_1].edx, 3);

	/* AMD: NC = 3, ApicIdCoreIdSize = 2, other bits kept. */
	assert_int_equal(t[L80000008].ecx & 0xff, 3);
	assert_int_equal((t[L80000008].ecx >> 12) & 0xf, 2);
	assert_int_equal(t[L80000008].ecx & ~0xf0ffu, orig[L80000008].ecx & ~0xf0ffu);
	assert_int_equal(t[L80000008].eax, orig[L80000008].eax);
	assert_int_equal(t[L8000001E].eax, 3);
	assert_int_equal(t[L8000001E].ebx, 3);
	assert_int_equal(t[L8000001E].ecx, 0);

	/* Untouched leaves. */
	assert_memory_equal(&t[L0], &orig[L0], sizeof(t[L0]));
	for (unsigned i = 0; i < NLEAVES; i++) {
		assert_int_equal(t[i].function, orig[i].function);
		assert_int_equal(t[i].index, orig[i].index);
		assert_int_equal(t[i].flags, orig[i].flags);
	}
}

static void test_single_cpu(void **state)
{
	(void)state;
	struct cpuid_leaf t[NLEAVES], orig[NLEAVES];
	host_table(t);
	memcpy(orig, t, sizeof(t));
	cpuid_fixup(t, NLEAVES, 0, 1);

	assert_int_equal(t[L1].ebx >> 24, 0);
	assert_int_equal((t[L1].ebx >> 16) & 0xff, 1);
	assert_int_equal(t[L1].ecx >> 31, 1);
	/* One logical processor: HTT left as the host had it (clear here). */
	assert_int_equal(t[L1].edx, orig[L1].edx);
	assert_int_equal(t[L4_L3].eax >> 26, 0);
	assert_int_equal((t[L4_L3].eax >> 14) & 0xfff, 0);
	assert_int_equal(t[LB_1].eax, 0);
	assert_int_equal(t[LB_1].ebx, 1);
	assert_int_equal(t[LB_1].edx, 0);
	assert_int_equal(t[L80000008].ecx & 0xff, 0);
	assert_int_equal((t[L80000008].ecx >> 12) & 0xf, 0);
}

static void test_htt_not_invented_for_one_cpu(void **state)
{
	(void)state;
	struct cpuid_leaf l = { .function = 0x1, .edx = 0 };
	cpuid_fixup(&l, 1, 0, 1);
	assert_int_equal(l.edx, 0);
	assert_int_equal(l.ecx, 1u << 31);
	cpuid_fixup(&l, 1, 1, 2);
	assert_int_equal(l.edx, 1u << 28);
	assert_int_equal(l.ebx, 0x01020000);
}

/* Every vCPU gets its own, distinct APIC ID in all the places it appears. */
static void test_apic_ids_per_cpu(void **state)
{
	(void)state;
	const unsigned n = 64;
	for (unsigned cpu = 0; cpu < n; cpu++) {
		struct cpuid_leaf t[NLEAVES];
		host_table(t);
		cpuid_fixup(t, NLEAVES, cpu, n);
		assert_int_equal(t[L1].ebx >> 24, cpu);
		assert_int_equal((t[L1].ebx >> 16) & 0xff, 64);
		assert_int_equal(t[LB_0].edx, cpu);
		assert_int_equal(t[LB_1].edx, cpu);
		assert_int_equal(t[LB_1].eax, 6);
		assert_int_equal(t[LB_1].ebx, 64);
		assert_int_equal(t[L8000001E].eax, cpu);
		assert_int_equal(t[L4_L3].eax >> 26, 63);
		assert_int_equal((t[L4_L3].eax >> 14) & 0xfff, 63);
		assert_int_equal(t[L80000008].ecx & 0xff, 63);
		assert_int_equal((t[L80000008].ecx >> 12) & 0xf, 6);
	}
	/* Non-power-of-two counts round the shift up. */
	struct cpuid_leaf t[NLEAVES];
	host_table(t);
	cpuid_fixup(t, NLEAVES, 2, 3);
	assert_int_equal(t[LB_1].eax, 2);
	assert_int_equal(t[LB_1].ebx, 3);
	host_table(t);
	cpuid_fixup(t, NLEAVES, 4, 5);
	assert_int_equal(t[LB_1].eax, 3);
}

/* Leaf 0 with a vendor, and 0x80000001 with ECX's CmpLegacy clear. */
static void vendor_table(struct cpuid_leaf t[2], const char *vendor)
{
	memset(t, 0, 2 * sizeof(*t));
	t[0].function = 0;
	memcpy(&t[0].ebx, vendor, 4);
	memcpy(&t[0].edx, vendor + 4, 4);
	memcpy(&t[0].ecx, vendor + 8, 4);
	t[1] = (struct cpuid_leaf){ .function = 0x80000001, .eax = 0x00a10f11, .ecx = 0x00400391 };
}

static void test_cmp_legacy(void **state)
{
	(void)state;
	struct cpuid_leaf t[2];
	/* AMD with 2 vCPUs: set, the other bits kept. */
	vendor_table(t, "AuthenticAMD");
	cpuid_fixup(t, 2, 1, 2);
	assert_int_equal(t[1].ecx, 0x00400391 | 2u);
	assert_int_equal(t[1].eax, 0x00a10f11);
	/* Hygon too. */
	vendor_table(t, "HygonGenuine");
	cpuid_fixup(t, 2, 0, 4);
	assert_int_equal(t[1].ecx & 2u, 2u);
	/* One vCPU: nothing to say about cores. */
	vendor_table(t, "AuthenticAMD");
	cpuid_fixup(t, 2, 0, 1);
	assert_int_equal(t[1].ecx, 0x00400391);
	/* Intel and Zhaoxin: never, whatever the count. */
	vendor_table(t, "GenuineIntel");
	cpuid_fixup(t, 2, 0, 8);
	assert_int_equal(t[1].ecx, 0x00400391);
	vendor_table(t, "  Shanghai  ");
	cpuid_fixup(t, 2, 0, 8);
	assert_int_equal(t[1].ecx, 0x00400391);
	/* No leaf 0 to tell the vendor: left alone. */
	vendor_table(t, "AuthenticAMD");
	cpuid_fixup(&t[1], 1, 0, 8);
	assert_int_equal(t[1].ecx, 0x00400391);
}

/* The three brand leaves as a string, as the guest reads them. */
static void brand_of(const struct cpuid_leaf *b, char out[49])
{
	for (unsigned k = 0; k < 3; k++) {
		memcpy(out + 16 * k, &b[k].eax, 4);
		memcpy(out + 16 * k + 4, &b[k].ebx, 4);
		memcpy(out + 16 * k + 8, &b[k].ecx, 4);
		memcpy(out + 16 * k + 12, &b[k].edx, 4);
	}
	out[48] = 0;
}

static void brand_table(struct cpuid_leaf t[4])
{
	memset(t, 0, 4 * sizeof(*t));
	t[0].function = 0x80000000;
	t[0].eax = 0x80000021;
	for (unsigned k = 0; k < 3; k++)
		t[1 + k].function = 0x80000002 + k;
}

static void test_brand_string(void **state)
{
	(void)state;
	struct cpuid_leaf t[4];
	char s[49];

	/* Zero leaves: the host's brand. */
	brand_table(t);
	cpuid_set_brand(t, 4, "AMD EPYC 7763 64-Core Processor");
	brand_of(&t[1], s);
	assert_string_equal(s, "AMD EPYC 7763 64-Core Processor");
	assert_int_equal(t[0].eax, 0x80000021);

	/* No host brand: ours. */
	brand_table(t);
	cpuid_set_brand(t, 4, "");
	brand_of(&t[1], s);
	assert_string_equal(s, CPUID_DEFAULT_BRAND);
	brand_table(t);
	cpuid_set_brand(t, 4, NULL);
	brand_of(&t[1], s);
	assert_string_equal(s, CPUID_DEFAULT_BRAND);

	/* Longer than 47 characters: cut, still NUL-terminated. */
	brand_table(t);
	cpuid_set_brand(t, 4, "0123456789abcdef0123456789abcdef0123456789abcdefXYZ");
	brand_of(&t[1], s);
	assert_int_equal(strlen(s), 47);
	assert_memory_equal(s, "0123456789abcdef0123456789abcdef0123456789abcde", 47);

	/* KVM already gives one: kept as it is. */
	brand_table(t);
	cpuid_set_brand(t, 4, "Fake CPU");
	cpuid_set_brand(t, 4, "Another CPU");
	brand_of(&t[1], s);
	assert_string_equal(s, "Fake CPU");

	/* A table without all three leaves: nothing added or changed. */
	brand_table(t);
	cpuid_set_brand(t, 3, "AMD EPYC");
	for (unsigned k = 1; k < 3; k++)
		assert_int_equal(t[k].eax | t[k].ebx | t[k].ecx | t[k].edx, 0);
}

static void test_empty_table(void **state)
{
	(void)state;
	cpuid_fixup(NULL, 0, 0, 1); /* nothing to do, nothing touched */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpu3_of_4),
		cmocka_unit_test(test_single_cpu),
		cmocka_unit_test(test_htt_not_invented_for_one_cpu),
		cmocka_unit_test(test_apic_ids_per_cpu),
		cmocka_unit_test(test_cmp_legacy),
		cmocka_unit_test(test_brand_string),
		cmocka_unit_test(test_empty_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
