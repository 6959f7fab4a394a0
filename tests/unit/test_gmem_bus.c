/* Unit tests for guest memory (core/gmem.c) and the device buses
 * (core/bus.c): range edges, overflow, overlap, ordering. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "core/bus.h"
#include "core/gmem.h"

static uint8_t lo_mem[0x4000], hi_mem[0x2000];

/* Two regions with a hole between: [0x0, 0x4000) and [0x10000, 0x12000). */
static void two_regions(struct gmem *m)
{
	memset(m, 0, sizeof(*m));
	assert_int_equal(gmem_add(m, 0x10000, sizeof(hi_mem), hi_mem), 0);
	assert_int_equal(gmem_add(m, 0, sizeof(lo_mem), lo_mem), 0);
	assert_int_equal(m->nr, 2);
	assert_int_equal(m->total, sizeof(lo_mem) + sizeof(hi_mem));
}

static void test_gmem_ptr_edges(void **state)
{
	(void)state;
	struct gmem m;
	two_regions(&m);

	assert_ptr_equal(gmem_ptr(&m, 0, 1), lo_mem);
	assert_ptr_equal(gmem_ptr(&m, 0, sizeof(lo_mem)), lo_mem);          /* whole region */
	assert_ptr_equal(gmem_ptr(&m, 0x3fff, 1), lo_mem + 0x3fff);          /* last byte */
	assert_ptr_equal(gmem_ptr(&m, 0x3ff0, 0x10), lo_mem + 0x3ff0);       /* ends exactly at the end */
	assert_null(gmem_ptr(&m, 0x3ff0, 0x11));                              /* one past */
	assert_null(gmem_ptr(&m, 0x4000, 1));                                 /* first byte after */
	assert_null(gmem_ptr(&m, 0, sizeof(lo_mem) + 1));
	assert_null(gmem_ptr(&m, 0x100, 0));                                  /* len 0 */
	assert_null(gmem_ptr(&m, 0, 0));

	assert_ptr_equal(gmem_ptr(&m, 0x10000, 0x2000), hi_mem);
	assert_ptr_equal(gmem_ptr(&m, 0x11fff, 1), hi_mem + 0x1fff);
	assert_null(gmem_ptr(&m, 0xffff, 1));                                 /* last byte of the hole */
	assert_null(gmem_ptr(&m, 0xffff, 2));                                 /* hole into region */
	assert_null(gmem_ptr(&m, 0x12000, 1));

	/* Spanning the hole, even though both ends are RAM. */
	assert_null(gmem_ptr(&m, 0x3000, 0x10000));
	assert_null(gmem_ptr(&m, 0, 0x12000));

	/* gpa + len wraps around 2^64. */
	assert_null(gmem_ptr(&m, 0x10, UINT64_MAX));
	assert_null(gmem_ptr(&m, 0x10000, UINT64_MAX - 0xffff));
	assert_null(gmem_ptr(&m, 0x10000, UINT64_MAX - 0xfffe));
	assert_null(gmem_ptr(&m, UINT64_MAX, 2));
	assert_null(gmem_ptr(&m, UINT64_MAX, 1));
	assert_null(gmem_ptr(&m, UINT64_MAX - 0xfff, 0x2000));

	assert_true(gmem_valid(&m, 0x10000, 0x2000));
	assert_false(gmem_valid(&m, 0x10000, 0x2001));
}

static void test_gmem_read_write(void **state)
{
	(void)state;
	struct gmem m;
	two_regions(&m);
	uint8_t buf[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, out[8] = { 0 };

	assert_int_equal(gmem_write(&m, 0x11ff8, buf, 8), 0);
	assert_memory_equal(hi_mem + 0x1ff8, buf, 8);
	assert_int_equal(gmem_read(&m, 0x11ff8, out, 8), 0);
	assert_memory_equal(out, buf, 8);

	memset(lo_mem + 0x3ffc, 0xAB, 4);
	assert_int_equal(gmem_write(&m, 0x3ffc, buf, 8), -EFAULT); /* straddles the end */
	assert_int_equal(lo_mem[0x3ffc], 0xAB);                    /* nothing written */
	memset(out, 0x5A, sizeof(out));
	assert_int_equal(gmem_read(&m, 0x3ffc, out, 8), -EFAULT);
	assert_int_equal(out[0], 0x5A);
	assert_int_equal(gmem_read(&m, 0x8000, out, 1), -EFAULT);
}

static void test_gmem_add_refusals(void **state)
{
	(void)state;
	struct gmem m;
	uint8_t x;
	two_regions(&m);

	/* Overlaps, from either side, contained and containing. */
	assert_int_equal(gmem_add(&m, 0x3fff, 0x10, &x), -EEXIST);
	assert_int_equal(gmem_add(&m, 0xfff0, 0x11, &x), -EEXIST);
	assert_int_equal(gmem_add(&m, 0x11000, 0x10, &x), -EEXIST);
	assert_int_equal(gmem_add(&m, 0x0, 0x100000, &x), -EEXIST);
	assert_int_equal(gmem_add(&m, 0x10000, 0x2000, &x), -EEXIST);
	assert_int_equal(m.nr, 2);

	/* Zero size, no host, wrap. */
	assert_int_equal(gmem_add(&m, 0x20000, 0, &x), -EINVAL);
	assert_int_equal(gmem_add(&m, 0x20000, 0x1000, NULL), -EINVAL);
	assert_int_equal(gmem_add(&m, UINT64_MAX - 0xfff, 0x2000, &x), -EINVAL);
	assert_int_equal(m.nr, 2);
	assert_int_equal(m.total, 0x6000);

	/* Touching both neighbours is fine: fills the hole. */
	static uint8_t mid[0xc000];
	assert_int_equal(gmem_add(&m, 0x4000, sizeof(mid), mid), 0);
	assert_ptr_equal(gmem_ptr(&m, 0xffff, 1), mid + 0xbfff);
	/* Still no single region spans 0x3fff..0x4000. */
	assert_null(gmem_ptr(&m, 0x3fff, 2));

	/* Full. */
	assert_int_equal(gmem_add(&m, 0x100000, 0x1000, &x), 0);
	assert_int_equal(m.nr, GMEM_MAX_REGIONS);
	assert_int_equal(gmem_add(&m, 0x200000, 0x1000, &x), -ENOSPC);
	assert_int_equal(m.total, 0x6000 + 0xc000 + 0x1000);
}

/* --- bus --- */

static void nop_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	(void)dev, (void)offset, (void)data, (void)len, (void)is_write;
}

static void test_bus_add_refusals(void **state)
{
	(void)state;
	static struct bus b;
	memset(&b, 0, sizeof(b));

	assert_int_equal(bus_add(&b, 0x100, 0, "zero", nop_io, NULL), -EINVAL);
	assert_int_equal(bus_add(&b, UINT64_MAX - 3, 8, "wrap", nop_io, NULL), -EINVAL);
	assert_int_equal(bus_add(&b, 0x100, 8, "nofn", NULL, NULL), -EINVAL);
	assert_int_equal(b.nr, 0);

	assert_int_equal(bus_add(&b, 0x100, 0x10, "a", nop_io, NULL), 0);
	assert_int_equal(bus_add(&b, 0x0f8, 9, "left", nop_io, NULL), -EEXIST);   /* ends at 0x100 inclusive */
	assert_int_equal(bus_add(&b, 0x10f, 1, "right", nop_io, NULL), -EEXIST);  /* last byte */
	assert_int_equal(bus_add(&b, 0x104, 2, "inside", nop_io, NULL), -EEXIST);
	assert_int_equal(bus_add(&b, 0x0, 0x1000, "around", nop_io, NULL), -EEXIST);
	assert_int_equal(bus_add(&b, 0x100, 0x10, "same", nop_io, NULL), -EEXIST);
	assert_int_equal(bus_add(&b, 0x100, 1, "samebase", nop_io, NULL), -EEXIST);
	assert_int_equal(b.nr, 1);
	assert_int_equal(bus_add(&b, 0x0f8, 8, "touch-left", nop_io, NULL), 0);
	assert_int_equal(bus_add(&b, 0x110, 8, "touch-right", nop_io, NULL), 0);
	assert_int_equal(b.nr, 3);
	/* Between two neighbours, overlapping only the right one. */
	assert_int_equal(bus_add(&b, 0x200, 0x10, "c", nop_io, NULL), 0);
	assert_int_equal(bus_add(&b, 0x118, 0xe9, "gap+1", nop_io, NULL), -EEXIST);
	assert_int_equal(bus_add(&b, 0x118, 0xe8, "gap", nop_io, NULL), 0);

	/* Ranges ending at the top of the address space are fine, but not 2^64. */
	assert_int_equal(bus_add(&b, UINT64_MAX - 7, 7, "top", nop_io, NULL), 0);
	assert_int_equal(bus_add(&b, UINT64_MAX, 1, "wrap0", nop_io, NULL), -EINVAL);

	/* Fill the bus. */
	while (b.nr < BUS_MAX_RANGES)
		assert_int_equal(bus_add(&b, 0x10000 + b.nr * 0x10, 0x10, "fill", nop_io, NULL), 0);
	assert_int_equal(bus_add(&b, 0x90000, 1, "full", nop_io, NULL), -ENOSPC);
	assert_int_equal(b.nr, BUS_MAX_RANGES);
	for (unsigned i = 1; i < b.nr; i++)
		assert_true(b.r[i - 1].base + b.r[i - 1].len <= b.r[i].base);
}

static void test_bus_find(void **state)
{
	(void)state;
	static struct bus b;
	memset(&b, 0, sizeof(b));
	int d1, d2, d3;

	/* Out of order: sorted insertion. */
	assert_int_equal(bus_add(&b, 0x3f8, 8, "com1", nop_io, &d1), 0);
	assert_int_equal(bus_add(&b, 0x70, 2, "rtc", nop_io, &d2), 0);
	assert_int_equal(bus_add(&b, 0x600, 0x10, "pm", nop_io, &d3), 0);
	assert_int_equal(bus_add(&b, 0x2f8, 8, "com2", nop_io, NULL), 0);
	assert_int_equal(b.nr, 4);
	assert_int_equal(b.r[0].base, 0x70);
	assert_int_equal(b.r[1].base, 0x2f8);
	assert_int_equal(b.r[2].base, 0x3f8);
	assert_int_equal(b.r[3].base, 0x600);

	const struct bus_range *r = bus_find(&b, 0x3f8, 1);
	assert_non_null(r);
	assert_string_equal(r->name, "com1");
	assert_ptr_equal(r->dev, &d1);
	assert_ptr_equal(r->fn, nop_io);
	assert_ptr_equal(bus_find(&b, 0x3ff, 1), r);     /* last byte */
	assert_ptr_equal(bus_find(&b, 0x3f8, 8), r);     /* whole range */
	assert_ptr_equal(bus_find(&b, 0x3fc, 4), r);     /* ends at the end */
	assert_null(bus_find(&b, 0x3fc, 8));             /* straddles the end */
	assert_null(bus_find(&b, 0x3fe, 4));
	assert_null(bus_find(&b, 0x3f7, 1));             /* one before */
	assert_null(bus_find(&b, 0x3f7, 2));             /* straddles the start */
	assert_null(bus_find(&b, 0x400, 1));             /* one after */

	assert_string_equal(bus_find(&b, 0x70, 2)->name, "rtc");
	assert_string_equal(bus_find(&b, 0x71, 1)->name, "rtc");
	assert_null(bus_find(&b, 0x71, 2));
	assert_null(bus_find(&b, 0x6f, 1));
	assert_null(bus_find(&b, 0x0, 1));               /* below everything */
	assert_string_equal(bus_find(&b, 0x60f, 1)->name, "pm");
	assert_null(bus_find(&b, 0x610, 1));
	assert_null(bus_find(&b, UINT64_MAX, 8));        /* above everything, huge */
	assert_null(bus_find(&b, 0x600, UINT32_MAX));
	assert_string_equal(bus_find(&b, 0x2f8, 4)->name, "com2");

	/* Empty bus. */
	static struct bus empty;
	memset(&empty, 0, sizeof(empty));
	assert_null(bus_find(&empty, 0x3f8, 1));
}

/* Many ranges in reverse order: the binary search finds every one. */
static void sparse_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	(void)dev; (void)offset; (void)data; (void)len; (void)is_write;
}

/* The window answers only at [0x1000, 0x2000). */
static const char *sparse_claims(void *dev, uint64_t offset, uint32_t len)
{
	(void)dev;
	return offset >= 0x1000 && offset + len <= 0x2000 ? "bar" : NULL;
}

static void test_bus_sparse(void **state)
{
	(void)state;
	struct bus b = { 0 };

	assert_int_equal(bus_add_sparse(&b, 0xc0000000, 0x10000, "win", sparse_io, sparse_claims, NULL), 0);
	assert_int_equal(bus_add(&b, 0xd0000000, 0x10, "dense", sparse_io, NULL), 0);
	const struct bus_range *r = bus_find(&b, 0xc0001000, 4);
	assert_non_null(r);
	assert_string_equal(r->name, "win");
	/* Reports name the device behind the window, not the window. */
	assert_string_equal(bus_owner(r, 0xc0001000, 4), "bar");
	assert_string_equal(bus_owner(bus_find(&b, 0xd0000004, 4), 0xd0000004, 4), "dense");
	assert_null(bus_owner(NULL, 0, 1));
	assert_non_null(bus_find(&b, 0xc0001ffc, 4));
	assert_null(bus_find(&b, 0xc0000ffc, 4));  /* window, but nobody home */
	assert_null(bus_find(&b, 0xc0001ffe, 4));  /* straddles the populated end */
	assert_null(bus_find(&b, 0xc0008000, 1));
	assert_non_null(bus_find(&b, 0xd0000004, 4)); /* a plain range claims all of itself */
	/* Overlaps are refused for sparse ranges too. */
	assert_int_equal(bus_add_sparse(&b, 0xc000f000, 0x2000, "x", sparse_io, sparse_claims, NULL), -EEXIST);
}

static void test_bus_find_many(void **state)
{
	(void)state;
	static struct bus b;
	memset(&b, 0, sizeof(b));
	static int devs[BUS_MAX_RANGES];
	for (int i = BUS_MAX_RANGES - 1; i >= 0; i--)
		assert_int_equal(bus_add(&b, 0x1000 + (uint64_t)i * 0x100, 0x80, "r", nop_io, &devs[i]), 0);
	for (int i = 0; i < BUS_MAX_RANGES; i++) {
		uint64_t base = 0x1000 + (uint64_t)i * 0x100;
		assert_int_equal(b.r[i].base, base);
		assert_ptr_equal(bus_find(&b, base, 1)->dev, &devs[i]);
		assert_ptr_equal(bus_find(&b, base + 0x7f, 1)->dev, &devs[i]);
		assert_null(bus_find(&b, base + 0x80, 1)); /* the gap */
		assert_null(bus_find(&b, base + 0xff, 1));
	}
}

/* The low-page map: ranges that cross 256-address pages and the end of
 * port space are found in every page they touch; nothing else is. */
static void test_bus_find_pages(void **state)
{
	(void)state;
	static struct bus b;
	static int d1, d2, d3;
	memset(&b, 0, sizeof(b));
	assert_int_equal(bus_add(&b, 0x10f0, 0x20, "a", nop_io, &d1), 0);   /* pages 0x10, 0x11 */
	assert_int_equal(bus_add(&b, 0xfff0, 0x20, "b", nop_io, &d2), 0);   /* 0xff and past 64 Ki */
	assert_int_equal(bus_add(&b, 0x30000, 0x100, "c", nop_io, &d3), 0); /* above: no page */
	assert_ptr_equal(bus_find(&b, 0x10f0, 1)->dev, &d1);
	assert_ptr_equal(bus_find(&b, 0x1100, 4)->dev, &d1);
	assert_ptr_equal(bus_find(&b, 0x110f, 1)->dev, &d1);
	assert_null(bus_find(&b, 0x1110, 1));  /* same page, past the range */
	assert_null(bus_find(&b, 0x10ef, 1));
	assert_null(bus_find(&b, 0x1200, 1));  /* an untouched page */
	assert_null(bus_find(&b, 0x1234, 2));
	assert_ptr_equal(bus_find(&b, 0xfff8, 8)->dev, &d2);
	assert_ptr_equal(bus_find(&b, 0x10008, 8)->dev, &d2);
	assert_ptr_equal(bus_find(&b, 0x30080, 4)->dev, &d3);
	assert_null(bus_find(&b, 0x0, 1));
	assert_null(bus_find(&b, 0xffff + 0x20 + 0x10, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gmem_ptr_edges),
		cmocka_unit_test(test_gmem_read_write),
		cmocka_unit_test(test_gmem_add_refusals),
		cmocka_unit_test(test_bus_add_refusals),
		cmocka_unit_test(test_bus_find),
		cmocka_unit_test(test_bus_find_many),
		cmocka_unit_test(test_bus_sparse),
		cmocka_unit_test(test_bus_find_pages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
