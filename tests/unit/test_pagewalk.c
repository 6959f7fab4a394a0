/* pagewalk: tables built by hand in a fake guest RAM for each paging mode
 * and page size, every error, and a randomized 4-level check against a
 * list of the mappings made. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/cpu_state.h"
#include "arch/x86/pagewalk.h"
#include "fake_dirty.h"

#define RAM   (32u << 20)
#define P     1ull
#define W     2ull
#define U     4ull
#define PS    0x80ull
#define NX    (1ull << 63)
#define K4    0x1000ull
#define M2    0x200000ull
#define M4    0x400000ull
#define G1    0x40000000ull

#define CR0_PG	 0x80000001ull
#define CR4_PSE	 0x10ull
#define CR4_PAE	 0x20ull
#define CR4_LA57 0x1000ull
#define EFER_LM	 0x500ull /* LME | LMA */
#define EFER_NXE 0x800ull

static uint8_t *ram;
static struct gmem mem;
static uint64_t next_table;

static int setup(void **state)
{
	(void)state;
	ram = calloc(1, RAM);
	memset(&mem, 0, sizeof(mem));
	gmem_add(&mem, 0, RAM, ram);
	next_table = 0x100000;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(ram);
	return 0;
}

static uint64_t new_table(void)
{
	uint64_t t = next_table;
	next_table += K4;
	assert_true(next_table < RAM);
	memset(ram + t, 0, K4);
	return t;
}

static uint64_t *e64(uint64_t table, unsigned i)
{
	return (uint64_t *)(ram + table + i * 8);
}

static uint32_t *e32(uint64_t table, unsigned i)
{
	return (uint32_t *)(ram + table + i * 4);
}

/* Maps one page in long mode (levels 4 or 5) with intermediate entries
 * carrying `mid` and the leaf `flags`; false if the path is taken. */
static bool map64(uint64_t cr3, int levels, uint64_t gva, uint64_t gpa, uint64_t size, uint64_t mid,
		  uint64_t flags)
{
	unsigned shift = levels == 5 ? 48 : 39;
	unsigned leaf_shift = size == G1 ? 30 : size == M2 ? 21 : 12;
	uint64_t t = cr3;
	for (;; shift -= 9) {
		uint64_t *e = e64(t, (unsigned)(gva >> shift) & 511);
		if (shift == leaf_shift) {
			if (*e & P)
				return false;
			*e = gpa | flags | P | (size == K4 ? 0 : PS);
			return true;
		}
		if (!(*e & P))
			*e = new_table() | mid | P;
		else if (*e & PS)
			return false;
		t = *e & 0x000ffffffffff000ull;
	}
}

static struct pw_regs long4(uint64_t cr3)
{
	return (struct pw_regs){ .cr0 = CR0_PG, .cr3 = cr3, .cr4 = CR4_PAE, .efer = EFER_LM | EFER_NXE };
}

static void expect(const struct pw_regs *r, uint64_t gva, uint64_t gpa, uint64_t size, bool w, bool u, bool nx)
{
	struct pw_result res;
	assert_int_equal(pw_translate(&mem, r, gva, &res), PW_OK);
	assert_int_equal(res.gpa, gpa);
	assert_int_equal(res.page_size, size);
	assert_int_equal(res.writable, w);
	assert_int_equal(res.user, u);
	assert_int_equal(res.nx, nx);
}

static void expect_err(const struct pw_regs *r, uint64_t gva, int err)
{
	struct pw_result res;
	assert_int_equal(pw_translate(&mem, r, gva, &res), err);
}

static void test_paging_off(void **state)
{
	(void)state;
	struct pw_regs r = { .cr0 = 0x11, .cr3 = 0xdead000 };
	struct pw_result res;
	assert_int_equal(pw_translate(&mem, &r, 0x12345, &res), PW_OK);
	assert_int_equal(res.gpa, 0x12345);
	assert_int_equal(res.page_size, 4096);
	assert_int_equal(res.levels, 0);
	assert_true(res.writable && res.user && !res.nx);
}

static void test_long4_sizes(void **state)
{
	(void)state;
	uint64_t cr3 = new_table();
	struct pw_regs r = long4(cr3);
	assert_true(map64(cr3, 4, 0x400000, 0x123000, K4, W | U, W | U));
	assert_true(map64(cr3, 4, 0x40000000, 0x600000, M2, W | U, W));
	assert_true(map64(cr3, 4, 0xffffffff80000000ull, 0x1c0000000ull, G1, W, NX));
	struct pw_result res;
	assert_int_equal(pw_translate(&mem, &r, 0x400abc, &res), PW_OK);
	assert_int_equal(res.levels, 4);
	expect(&r, 0x400abc, 0x123abc, K4, true, true, false);
	expect(&r, 0x4012345f, 0x72345f, M2, true, false, false);
	expect(&r, 0xffffffff8abcdef0ull, 0x1cabcdef0ull, G1, false, false, true);
	/* The PCID bits of cr3 do not move the table. */
	r.cr3 |= 0x123;
	expect(&r, 0x400abc, 0x123abc, K4, true, true, false);
}

static void test_long4_flags_accumulate(void **state)
{
	(void)state;
	uint64_t cr3 = new_table();
	struct pw_regs r = long4(cr3);
	/* intermediate entries without W / U win over a W|U leaf */
	assert_true(map64(cr3, 4, 0x1000, 0x5000, K4, U, W | U));
	assert_true(map64(cr3, 4, 0x8000000000ull, 0x6000, K4, W, W | U));
	expect(&r, 0x1000, 0x5000, K4, false, true, false);
	expect(&r, 0x8000000000ull, 0x6000, K4, true, false, false);
	/* NX on an upper level only is enough */
	uint64_t *pml4e = e64(cr3, 0);
	*pml4e |= NX;
	expect(&r, 0x1000, 0x5000, K4, false, true, true);
	/* ... and without EFER.NXE it is a reserved bit */
	r.efer &= ~EFER_NXE;
	expect_err(&r, 0x1000, PW_RESERVED);
}

static void test_long4_errors(void **state)
{
	(void)state;
	uint64_t cr3 = new_table();
	struct pw_regs r = long4(cr3);
	assert_true(map64(cr3, 4, 0x200000, 0x300000, K4, W, W));
	expect_err(&r, 0x800000000000ull, PW_RESERVED);  /* non-canonical */
	expect_err(&r, 0xffff7fffffffffffull, PW_RESERVED);
	expect_err(&r, 0xffff800000000000ull, PW_NOT_PRESENT); /* canonical, PML4E empty */
	expect_err(&r, 0x40000000, PW_NOT_PRESENT);	       /* PDPTE empty */
	expect_err(&r, 0x400000, PW_NOT_PRESENT);	       /* PDE empty */
	expect_err(&r, 0x201000, PW_NOT_PRESENT);	       /* PTE empty */
	/* PS in a PML4E */
	*e64(cr3, 1) = 0x40000000 | PS | P | W;
	expect_err(&r, 0x8000000000ull, PW_RESERVED);
	/* reserved bits 20:13 of a 2 MiB page */
	assert_true(map64(cr3, 4, 0xc0000000ull, 0x400000 | 0x2000, M2, W, W));
	expect_err(&r, 0xc0000000ull, PW_RESERVED);
	/* bit 12 (PAT) of a big page is fine */
	assert_true(map64(cr3, 4, 0xc0200000ull, 0x400000 | 0x1000, M2, W, W));
	expect(&r, 0xc0200010ull, 0x400010, M2, true, false, false);
	/* a table outside RAM, and cr3 outside RAM */
	*e64(cr3, 2) = 0x80000000ull | P | W;
	expect_err(&r, 0x10000000000ull, PW_BAD_TABLE);
	r.cr3 = 0x7ffff000ull;
	expect_err(&r, 0x200000, PW_BAD_TABLE);
}

static void test_long5(void **state)
{
	(void)state;
	uint64_t cr3 = new_table();
	struct pw_regs r = long4(cr3);
	r.cr4 |= CR4_LA57;
	uint64_t hi = 0x00ff000000000000ull; /* canonical only with 57 bits */
	assert_true(map64(cr3, 5, hi, 0x777000, K4, W | U, W | U));
	assert_true(map64(cr3, 5, 0xff00000000000000ull, 0x40000000, G1, W, W));
	struct pw_result res;
	assert_int_equal(pw_translate(&mem, &r, hi + 5, &res), PW_OK);
	assert_int_equal(res.levels, 5);
	expect(&r, hi + 5, 0x777005, K4, true, true, false);
	expect(&r, 0xff00000000123456ull, 0x40123456, G1, true, false, false);
	expect_err(&r, 0x0100000000000000ull, PW_RESERVED);
	*e64(cr3, 3) = 0x1000 | P | PS;
	expect_err(&r, 3ull << 48, PW_RESERVED); /* PS in a PML5E */
	/* the same address under 4-level paging is non-canonical */
	r.cr4 &= ~CR4_LA57;
	expect_err(&r, hi, PW_RESERVED);
}

static void test_pae(void **state)
{
	(void)state;
	uint64_t pdpt = 0x1000 + 0x40; /* 32-byte aligned, not page aligned */
	uint64_t pd = new_table(), pt = new_table();
	struct pw_regs r = { .cr0 = CR0_PG, .cr3 = pdpt, .cr4 = CR4_PAE, .efer = EFER_NXE };
	memset(ram + pdpt, 0, 32);
	*e64(pdpt, 3) = pd | P;
	*e64(pd, 0) = 0x800000 | P | W | U | PS;	 /* 0xc0000000: 2 MiB */
	*e64(pd, 1) = pt | P | W;			 /* 0xc0200000: table */
	*e64(pt, 2) = 0x9000 | P | W | U | NX;		 /* 0xc0202000 */
	struct pw_result res;
	assert_int_equal(pw_translate(&mem, &r, 0xc0202abc, &res), PW_OK);
	assert_int_equal(res.levels, 3);
	expect(&r, 0xc0012345, 0x812345, M2, true, true, false);
	expect(&r, 0xc0202abc, 0x9abc, K4, true, false, true);
	expect_err(&r, 0x00000000, PW_NOT_PRESENT); /* PDPTE 0 empty */
	expect_err(&r, 0xc0400000, PW_NOT_PRESENT); /* PDE 2 empty */
	expect_err(&r, 0x100000000ull, PW_RESERVED); /* beyond 32 bits */
	*e64(pdpt, 2) = pd | P | W;		     /* R/W is reserved in a PDPTE */
	expect_err(&r, 0x80000000, PW_RESERVED);
	*e64(pdpt, 2) = 0x7f000000 | P;		     /* PD outside RAM */
	expect_err(&r, 0x80000000, PW_BAD_TABLE);
	r.efer = 0; /* NX bit without NXE */
	expect_err(&r, 0xc0202abc, PW_RESERVED);
}

static void test_32bit(void **state)
{
	(void)state;
	uint64_t pd = new_table(), pt = new_table();
	struct pw_regs r = { .cr0 = CR0_PG, .cr3 = pd, .cr4 = CR4_PSE };
	*e32(pd, 0) = (uint32_t)(pt | P | W | U);
	*e32(pt, 5) = 0x00abc000 | P | U;
	*e32(pd, 3) = 0x01000000 | P | W | PS;		  /* 0x00c00000: 4 MiB */
	*e32(pd, 4) = 0x01400000 | (0x3u << 13) | P | PS; /* PSE-36: + 3 << 32 */
	*e32(pd, 5) = 0x01800000 | (1u << 21) | P | PS;	  /* reserved bit 21 */
	*e32(pd, 6) = 0x7f000000 | P;			  /* PT outside RAM */
	struct pw_result res;
	assert_int_equal(pw_translate(&mem, &r, 0x5123, &res), PW_OK);
	assert_int_equal(res.levels, 2);
	expect(&r, 0x5123, 0xabc123, K4, false, true, false);
	expect(&r, 0xc12345, 0x1012345, M4, true, false, false);
	expect(&r, 0x1012345, 0x301412345ull, M4, false, false, false);
	expect_err(&r, 0x1400000, PW_RESERVED);
	expect_err(&r, 0x1800000, PW_BAD_TABLE);
	expect_err(&r, 0x6000, PW_NOT_PRESENT);
	expect_err(&r, 0x80000000, PW_NOT_PRESENT);
	expect_err(&r, 0x100000000ull, PW_RESERVED);
	/* without CR4.PSE, PS is ignored: the entry names a page table */
	r.cr4 = 0;
	*e32(pd, 3) = (uint32_t)(pt | P | W | PS);
	expect(&r, 0xc05010, 0xabc010, K4, false, false, false);
}

static void test_read_write(void **state)
{
	(void)state;
	uint64_t cr3 = new_table();
	struct pw_regs r = long4(cr3);
	/* two virtually adjacent pages, physically apart and reversed */
	assert_true(map64(cr3, 4, 0x10000, 0x30000, K4, W, W));
	assert_true(map64(cr3, 4, 0x11000, 0x20000, K4, W, W));
	assert_true(map64(cr3, 4, 0x13000, 0x7f000000, K4, W, W)); /* not RAM */
	for (unsigned i = 0; i < K4; i++) {
		ram[0x30000 + i] = (uint8_t)i;
		ram[0x20000 + i] = (uint8_t)(0x80 + i);
	}
	uint8_t buf[64];
	assert_int_equal(pw_read(&mem, &r, 0x10fe0, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], 0xe0);
	assert_int_equal(buf[31], 0xff);
	assert_int_equal(buf[32], 0x80);
	assert_int_equal(buf[63], 0x80 + 31);
	memset(buf, 0x5a, sizeof(buf));
	/* a debugger's write is one a Diff snapshot must take: both pages */
	assert_int_equal(gmem_dirty_track(&mem, true), 0);
	assert_int_equal(pw_write(&mem, &r, 0x10ff0, buf, 32), 0);
	assert_true(fake_dirty_marked(&mem, 0x30000, K4));
	assert_int_equal(pw_write(&mem, &r, 0x10ff0, buf, 32), 0);
	assert_true(fake_dirty_marked(&mem, 0x20000, K4));
	gmem_dirty_track(&mem, false);
	assert_int_equal(ram[0x30ff0], 0x5a);
	assert_int_equal(ram[0x20000 + 15], 0x5a);
	assert_int_equal(ram[0x20000 + 16], (uint8_t)(0x80 + 16));
	/* the next page is unmapped: the bytes before it are done */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(pw_read(&mem, &r, 0x11ff0, buf, 32), PW_NOT_PRESENT);
	assert_int_equal(buf[0], (uint8_t)(0x80 + 0xff0));
	memset(buf, 0x11, sizeof(buf));
	assert_int_equal(pw_write(&mem, &r, 0x11ff8, buf, 16), PW_NOT_PRESENT);
	assert_int_equal(ram[0x20ff8], 0x11);
	assert_int_equal(pw_read(&mem, &r, 0x13000, buf, 1), PW_NOT_RAM);
	assert_string_equal(pw_error_name(PW_NOT_PRESENT), "not present");
	assert_string_equal(pw_error_name(PW_BAD_TABLE), "page table outside guest memory");
	assert_non_null(pw_error_name(-99));
}

static void test_regs_of(void **state)
{
	(void)state;
	struct vcpu_state s;
	memset(&s, 0, sizeof(s));
	s.cr0 = 1, s.cr3 = 2, s.cr4 = 3, s.efer = 4, s.cr2 = 99;
	struct pw_regs r = pw_regs_of(&s);
	assert_int_equal(r.cr0, 1);
	assert_int_equal(r.cr3, 2);
	assert_int_equal(r.cr4, 3);
	assert_int_equal(r.efer, 4);
}

/* Random mappings of all three sizes in the lower half, each checked at a
 * random offset, and random addresses checked against the list. */
struct mapping {
	uint64_t gva, gpa, size, flags;
};

static uint64_t rnd(void)
{
	return ((uint64_t)rand() << 40) ^ ((uint64_t)rand() << 20) ^ (uint64_t)rand();
}

static void test_random_long4(void **state)
{
	(void)state;
	static struct mapping maps[300];
	unsigned n = 0;
	srand(12345);
	uint64_t cr3 = new_table();
	struct pw_regs r = long4(cr3);
	const uint64_t sizes[] = { K4, M2, G1 };
	for (unsigned i = 0; i < 300; i++) {
		uint64_t size = sizes[rand() % 3];
		/* cluster the addresses so tables are shared and collisions happen */
		uint64_t gva = (rnd() & 0x7fffffffffffull & ~(size - 1)) & 0x00000c7fffe00000ull;
		if (size == K4)
			gva |= (rnd() & 0x1ff) << 12;
		uint64_t gpa = rnd() & 0x000ffffffffff000ull & ~(size - 1);
		uint64_t flags = (rand() & 1 ? W : 0) | (rand() & 1 ? U : 0) | (rand() & 1 ? NX : 0);
		if (map64(cr3, 4, gva, gpa, size, W | U, flags))
			maps[n++] = (struct mapping){ gva, gpa, size, flags };
	}
	assert_true(n > 100);
	for (unsigned i = 0; i < n; i++) {
		uint64_t off = rnd() & (maps[i].size - 1);
		expect(&r, maps[i].gva + off, maps[i].gpa + off, maps[i].size, maps[i].flags & W,
		       maps[i].flags & U, maps[i].flags & NX);
	}
	unsigned hits = 0;
	for (unsigned k = 0; k < 20000; k++) {
		uint64_t gva = rnd() & 0x00000c7fffffffffull;
		const struct mapping *hit = NULL;
		for (unsigned i = 0; i < n && !hit; i++)
			if (gva - maps[i].gva < maps[i].size)
				hit = &maps[i];
		if (hit) {
			hits++;
			expect(&r, gva, hit->gpa + (gva - hit->gva), hit->size, hit->flags & W, hit->flags & U,
			       hit->flags & NX);
		} else
			expect_err(&r, gva, PW_NOT_PRESENT);
	}
	assert_true(hits > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_paging_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long4_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long4_flags_accumulate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long4_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long5, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pae, setup, teardown),
		cmocka_unit_test_setup_teardown(test_32bit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_write, setup, teardown),
		cmocka_unit_test(test_regs_of),
		cmocka_unit_test_setup_teardown(test_random_long4, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
