/* Unit tests for the e820 map builder (arch/x86/e820.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>

#include "arch/x86/e820.h"
#include "arch/x86/layout.h"

#define MiB (1024ULL * 1024)
#define GiB (1024 * MiB)

/* gmem never touches host memory to build a map; any non-NULL pointer will
 * do as the region's host mapping. */
static uint8_t dummy;

static void add(struct gmem *m, uint64_t gpa, uint64_t size)
{
	assert_int_equal(gmem_add(m, gpa, size, &dummy), 0);
}

static void expect(const struct e820_entry *e, uint64_t addr, uint64_t size, uint32_t type)
{
	assert_int_equal(e->addr, addr);
	assert_int_equal(e->size, size);
	assert_int_equal(e->type, type);
}

static void test_layout_entry_is_boot_params_size(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct e820_entry), 20);
}

static void test_256m(void **state)
{
	(void)state;
	struct gmem m = { 0 };
	struct e820_entry e[8];
	add(&m, 0, 256 * MiB);
	assert_int_equal(e820_build(&m, e, 8), 3);
	expect(&e[0], 0, LAYOUT_EBDA_START, E820_RAM);
	expect(&e[1], LAYOUT_EBDA_START, LAYOUT_HIMEM - LAYOUT_EBDA_START, E820_RESERVED);
	expect(&e[2], LAYOUT_HIMEM, 256 * MiB - LAYOUT_HIMEM, E820_RAM);
}

static void test_3g_exactly_mem32_end(void **state)
{
	(void)state;
	struct gmem m = { 0 };
	struct e820_entry e[8];
	add(&m, 0, LAYOUT_MEM32_END);
	assert_int_equal(e820_build(&m, e, 8), 3);
	expect(&e[0], 0, 0x9FC00, E820_RAM);
	expect(&e[1], 0x9FC00, 0x100000 - 0x9FC00, E820_RESERVED);
	expect(&e[2], 0x100000, 0xC0000000ULL - 0x100000, E820_RAM);
}

static void test_4g_split(void **state)
{
	(void)state;
	struct gmem m = { 0 };
	struct e820_entry e[8];
	/* Registered high region first: the map must still come out sorted. */
	add(&m, LAYOUT_MEM_HIGH, 1 * GiB);
	add(&m, 0, 3 * GiB);
	assert_int_equal(e820_build(&m, e, 8), 4);
	expect(&e[0], 0, LAYOUT_EBDA_START, E820_RAM);
	expect(&e[1], LAYOUT_EBDA_START, LAYOUT_HIMEM - LAYOUT_EBDA_START, E820_RESERVED);
	expect(&e[2], LAYOUT_HIMEM, 3 * GiB - LAYOUT_HIMEM, E820_RAM);
	expect(&e[3], 4 * GiB, 1 * GiB, E820_RAM);
}

static void test_tiny_table(void **state)
{
	(void)state;
	struct gmem m = { 0 };
	struct e820_entry e[4];
	add(&m, 0, LAYOUT_MEM32_END);
	add(&m, LAYOUT_MEM_HIGH, 1 * GiB);
	assert_int_equal(e820_build(&m, e, 0), -ENOSPC);
	assert_int_equal(e820_build(&m, e, 3), -ENOSPC);
	assert_int_equal(e820_build(&m, e, 4), 4);
}

static void test_region_below_ebda(void **state)
{
	(void)state;
	struct gmem m = { 0 };
	struct e820_entry e[8];
	add(&m, 0, 512 * 1024);
	assert_int_equal(e820_build(&m, e, 8), 2);
	expect(&e[0], 0, 512 * 1024, E820_RAM);
	/* The legacy hole is reserved whatever backs it. */
	expect(&e[1], LAYOUT_EBDA_START, LAYOUT_HIMEM - LAYOUT_EBDA_START, E820_RESERVED);
}

static void test_region_ending_inside_carve_out(void **state)
{
	(void)state;
	struct gmem m = { 0 };
	struct e820_entry e[8];
	add(&m, 0, 768 * 1024); /* ends at 0xC0000, inside the BIOS area */
	assert_int_equal(e820_build(&m, e, 8), 2);
	expect(&e[0], 0, LAYOUT_EBDA_START, E820_RAM);
	expect(&e[1], LAYOUT_EBDA_START, LAYOUT_HIMEM - LAYOUT_EBDA_START, E820_RESERVED);
}

static void test_adjacent_regions_merge(void **state)
{
	(void)state;
	struct gmem m = { 0 };
	struct e820_entry e[8];
	add(&m, 2 * MiB, 62 * MiB);
	add(&m, 0, 2 * MiB);
	assert_int_equal(e820_build(&m, e, 8), 3);
	expect(&e[0], 0, LAYOUT_EBDA_START, E820_RAM);
	expect(&e[1], LAYOUT_EBDA_START, LAYOUT_HIMEM - LAYOUT_EBDA_START, E820_RESERVED);
	expect(&e[2], LAYOUT_HIMEM, 63 * MiB, E820_RAM);
}

static void test_region_starting_inside_carve_out(void **state)
{
	(void)state;
	struct gmem m = { 0 };
	struct e820_entry e[8];
	add(&m, 0, 0xA0000);
	add(&m, 0xE0000, 15 * MiB);
	assert_int_equal(e820_build(&m, e, 8), 3);
	expect(&e[0], 0, LAYOUT_EBDA_START, E820_RAM);
	expect(&e[1], LAYOUT_EBDA_START, LAYOUT_HIMEM - LAYOUT_EBDA_START, E820_RESERVED);
	expect(&e[2], LAYOUT_HIMEM, 0xE0000 + 15 * MiB - LAYOUT_HIMEM, E820_RAM);
}

static void test_no_memory(void **state)
{
	(void)state;
	struct gmem m = { 0 };
	struct e820_entry e[2];
	assert_int_equal(e820_build(&m, e, 2), 1);
	expect(&e[0], LAYOUT_EBDA_START, LAYOUT_HIMEM - LAYOUT_EBDA_START, E820_RESERVED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_entry_is_boot_params_size),
		cmocka_unit_test(test_256m),
		cmocka_unit_test(test_3g_exactly_mem32_end),
		cmocka_unit_test(test_4g_split),
		cmocka_unit_test(test_tiny_table),
		cmocka_unit_test(test_region_below_ebda),
		cmocka_unit_test(test_region_ending_inside_carve_out),
		cmocka_unit_test(test_adjacent_regions_merge),
		cmocka_unit_test(test_region_starting_inside_carve_out),
		cmocka_unit_test(test_no_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
