/* Unit tests for the split virtqueue walker (virtio/virtq.c): enable checks,
 * chain walking, every way a hostile driver can break a chain or the ring,
 * used-ring publication, interrupt suppression, and the chain copy helpers.
 * The rings are laid out byte by byte from the spec (not through virtq.h's
 * structs), so a layout mistake in the header shows up here. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "core/gmem.h"
#include "fake_guest.h"
#include "virtio/virtq.h"

/* Guest memory: [0, 1 MiB) RAM, a hole, then [2 MiB, 2 MiB + 64 KiB) and
 * [2 MiB + 64 KiB, 2 MiB + 128 KiB) — two regions that touch, so a range
 * spanning them is still refused. */
#define LO_SIZE (1 * MiB)
#define HI_GPA (2 * MiB)
#define HI_SIZE 0x10000ULL
#define HI2_GPA (HI_GPA + HI_SIZE)

/* Default ring layout (room for size 256) and a data area. */
#define DESC 0x1000ULL
#define AVAIL 0x3000ULL
#define USED 0x4000ULL
#define DATA 0x10000ULL

static struct fake_guest g;
static uint8_t *hi, *hi2;
static struct virtq q;
static struct virtq_chain c;
static uint16_t aidx; /* the driver's avail idx */

static int setup(void **state)
{
	(void)state;
	if (fake_guest_init(&g, LO_SIZE))
		return -1;
	hi = fake_map(HI_SIZE);
	hi2 = fake_map(HI_SIZE);
	if (!hi || !hi2 || gmem_add(&g.m, HI_GPA, HI_SIZE, hi) || gmem_add(&g.m, HI2_GPA, HI_SIZE, hi2))
		return -1;
	memset(&q, 0, sizeof(q));
	memset(&c, 0xa5, sizeof(c)); /* stale garbage pop must overwrite */
	aidx = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fake_unmap(hi, HI_SIZE);
	fake_unmap(hi2, HI_SIZE);
	fake_guest_fini(&g);
	return 0;
}

static void layout(uint16_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
	q.size = size;
	q.desc_gpa = desc;
	q.avail_gpa = avail;
	q.used_gpa = used;
}

static void enable(uint16_t size)
{
	layout(size, DESC, AVAIL, USED);
	assert_int_equal(virtq_enable(&q, &g.m), 0);
}

static void set_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = g.ram + DESC + 16u * i;
	put64(d, addr);
	put32(d + 8, len);
	put16(d + 12, flags);
	put16(d + 14, next);
}

/* The driver makes `head` available and publishes the new idx. */
static void offer(uint16_t head)
{
	put16(g.ram + AVAIL + 4 + 2u * (aidx & (q.size - 1)), head);
	aidx++;
	put16(g.ram + AVAIL + 2, aidx);
}

static void set_avail_idx(uint16_t idx)
{
	aidx = idx;
	put16(g.ram + AVAIL + 2, idx);
}

static uint16_t used_idx(void) { return get16(g.ram + USED + 2); }
static uint32_t used_id(unsigned i) { return get32(g.ram + USED + 4 + 8 * i); }
static uint32_t used_len(unsigned i) { return get32(g.ram + USED + 8 + 8 * i); }
static uint16_t avail_event(void) { return get16(g.ram + USED + 4 + 8u * q.size); }
static void set_used_event(uint16_t v) { put16(g.ram + AVAIL + 4 + 2u * q.size, v); }
static void set_avail_flags(uint16_t v) { put16(g.ram + AVAIL, v); }

/* Offers a one-buffer chain and checks pop rejects it as a bad chain. */
static void expect_bad(uint16_t head)
{
	uint16_t last = q.last_avail;
	uint64_t errs = q.errors;
	offer(head);
	assert_int_equal(virtq_pop(&q, &c), -EBADMSG);
	assert_int_equal(c.head, head);
	assert_int_equal(c.n, 0);
	assert_int_equal(c.out_len, 0);
	assert_int_equal(c.in_len, 0);
	assert_int_equal(q.last_avail, (uint16_t)(last + 1));
	assert_int_equal(q.errors, errs + 1);
	assert_false(q.broken);
}

static void test_enable_size(void **state)
{
	(void)state;
	static const uint16_t bad[] = { 0, 3, 6, 1000, 1025, 2048, 32768, 65535 };
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		layout(bad[i], 0x20000, 0x30000, 0x40000);
		assert_int_equal(virtq_enable(&q, &g.m), -EINVAL);
		assert_null(q.desc);
		assert_int_equal(virtq_pop(&q, &c), -EINVAL);
	}
	layout(1, 0x20000, 0x30000, 0x40000);
	assert_int_equal(virtq_enable(&q, &g.m), 0);
	assert_ptr_equal(q.desc, g.ram + 0x20000);
	assert_ptr_equal(q.avail, g.ram + 0x30000);
	assert_ptr_equal(q.used, g.ram + 0x40000);
	layout(VIRTQ_MAX_SIZE, 0x20000, 0x30000, 0x40000);
	assert_int_equal(virtq_enable(&q, &g.m), 0);
	assert_int_equal(virtq_enable(&q, NULL), -EINVAL);
	assert_null(q.desc);
}

static void test_enable_alignment(void **state)
{
	(void)state;
	for (unsigned off = 1; off < 16; off++) {
		layout(16, DESC + off, AVAIL, USED);
		assert_int_equal(virtq_enable(&q, &g.m), -EINVAL);
	}
	layout(16, DESC, AVAIL + 1, USED);
	assert_int_equal(virtq_enable(&q, &g.m), -EINVAL);
	for (unsigned off = 1; off < 4; off++) {
		layout(16, DESC, AVAIL, USED + off);
		assert_int_equal(virtq_enable(&q, &g.m), -EINVAL);
	}
	/* The smallest legal alignments are accepted. */
	layout(16, DESC + 16, AVAIL + 2, USED + 4);
	assert_int_equal(virtq_enable(&q, &g.m), 0);
	assert_ptr_equal(q.avail, g.ram + AVAIL + 2);
	assert_ptr_equal(q.used, g.ram + USED + 4);

	/* A region whose host mapping is offset by 8 from its gpa: the guest
	 * address and the host pointer are both checked. */
	assert_int_equal(gmem_add(&g.m, 0x300000, 0x1000, hi2 + 8), 0);
	layout(16, 0x300008, AVAIL, USED); /* host aligned, gpa not */
	assert_int_equal(virtq_enable(&q, &g.m), -EINVAL);
	layout(16, 0x300000, AVAIL, USED); /* gpa aligned, host not */
	assert_int_equal(virtq_enable(&q, &g.m), -EINVAL);
	layout(16, DESC, 0x300000, 0x300004); /* 2 and 4 hold for both */
	assert_int_equal(virtq_enable(&q, &g.m), 0);
	assert_ptr_equal(q.used, hi2 + 12);
}

static void test_enable_outside_ram(void **state)
{
	(void)state;
	const uint16_t n = 16;
	/* Each ring ending exactly at the end of RAM fits... */
	layout(n, LO_SIZE - 16 * n, AVAIL, USED);
	assert_int_equal(virtq_enable(&q, &g.m), 0);
	layout(n, DESC, LO_SIZE - (6 + 2 * n), USED);
	assert_int_equal(virtq_enable(&q, &g.m), 0);
	layout(n, DESC, AVAIL, LO_SIZE - (6 + 8 * n) - 2); /* 4-aligned */
	assert_int_equal(virtq_enable(&q, &g.m), 0);
	/* ...one element further does not. */
	layout(n, LO_SIZE - 16 * n + 16, AVAIL, USED);
	assert_int_equal(virtq_enable(&q, &g.m), -EINVAL);
	/* The event fields count: rings without them would fit. */
	layout(n, DESC, LO_SIZE - (4 + 2 * n), USED);
	assert_int_equal(virtq_enable(&q, &g.m), -EINVAL);
	layout(n, DESC, AVAIL, LO_SIZE - (4 + 8 * n));
	assert_int_equal(virtq_enable(&q, &g.m), -EINVAL);
	/* In the hole, straddling into it, across it, and across two
	 * touching regions. */
	layout(n, LO_SIZE, AVAIL, USED);
	assert_int_equal(virtq_enable(&q, &g.m), -EINVAL);
	layout(n, DESC, AVAIL, LO_SIZE - 64);
	assert_int_equal(virtq_enable(&q, &g.m), -EINVAL);
	layout(n, DESC, HI_GPA - 8, USED);
	assert_int_equal(virtq_enable(&q, &g.m), -EINVAL);
	layout(n, HI2_GPA - 128, AVAIL, USED);
	assert_int_equal(virtq_enable(&q, &g.m), -EINVAL);
	/* Far away and at the top of the address space. */
	layout(n, 0xfffffffffffff000ULL, AVAIL, USED);
	assert_int_equal(virtq_enable(&q, &g.m), -EINVAL);
	layout(n, DESC, AVAIL, 0xfffffffffffffffcULL);
	assert_int_equal(virtq_enable(&q, &g.m), -EINVAL);
	assert_int_equal(virtq_pop(&q, &c), -EINVAL);
	/* Rings in the high regions work. */
	layout(n, HI_GPA, HI_GPA + 0x1000, HI2_GPA);
	assert_int_equal(virtq_enable(&q, &g.m), 0);
	assert_ptr_equal(q.desc, hi);
	assert_ptr_equal(q.used, hi2);
}

static void test_normal_chain(void **state)
{
	(void)state;
	enable(16);
	set_desc(5, DATA, 16, VIRTQ_DESC_F_NEXT, 2);
	set_desc(2, HI_GPA + 0x100, 100, VIRTQ_DESC_F_NEXT, 7);
	set_desc(7, DATA + 0x2000, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 9);
	set_desc(9, DATA + 0x3000, 8, VIRTQ_DESC_F_WRITE, 0xffff); /* next ignored */
	offer(5);

	assert_int_equal(virtq_pop(&q, &c), 1);
	assert_int_equal(c.head, 5);
	assert_int_equal(c.n, 4);
	assert_int_equal(c.out_len, 116);
	assert_int_equal(c.in_len, 520);
	assert_ptr_equal(c.buf[0].host, g.ram + DATA);
	assert_int_equal(c.buf[0].gpa, DATA);
	assert_int_equal(c.buf[0].len, 16);
	assert_false(c.buf[0].device_writes);
	assert_ptr_equal(c.buf[1].host, hi + 0x100);
	assert_int_equal(c.buf[1].gpa, HI_GPA + 0x100);
	assert_int_equal(c.buf[1].len, 100);
	assert_false(c.buf[1].device_writes);
	assert_ptr_equal(c.buf[2].host, g.ram + DATA + 0x2000);
	assert_int_equal(c.buf[2].len, 512);
	assert_true(c.buf[2].device_writes);
	assert_ptr_equal(c.buf[3].host, g.ram + DATA + 0x3000);
	assert_int_equal(c.buf[3].len, 8);
	assert_true(c.buf[3].device_writes);
	assert_int_equal(q.last_avail, 1);
	assert_int_equal(q.errors, 0);
	assert_int_equal(virtq_pop(&q, &c), 0);

	/* One-direction chains are fine too. */
	set_desc(0, DATA, 1, 0, 0);
	set_desc(1, DATA, 1, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	offer(1);
	assert_int_equal(virtq_pop(&q, &c), 1);
	assert_int_equal(c.out_len, 1);
	assert_int_equal(c.in_len, 0);
	assert_int_equal(virtq_pop(&q, &c), 1);
	assert_int_equal(c.out_len, 0);
	assert_int_equal(c.in_len, 1);
}

static void test_several_chains(void **state)
{
	(void)state;
	enable(8);
	static const uint16_t heads[] = { 3, 0, 6 };
	for (unsigned i = 0; i < 3; i++) {
		set_desc(heads[i], DATA + 0x100 * i, 10 + i, 0, 0);
		offer(heads[i]);
	}
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(virtq_pop(&q, &c), 1);
		assert_int_equal(c.head, heads[i]);
		assert_int_equal(c.n, 1);
		assert_int_equal(c.out_len, 10 + i);
		assert_ptr_equal(c.buf[0].host, g.ram + DATA + 0x100 * i);
	}
	assert_int_equal(virtq_pop(&q, &c), 0);
	assert_int_equal(q.last_avail, 3);
}

static void test_empty(void **state)
{
	(void)state;
	enable(8);
	assert_int_equal(virtq_pop(&q, &c), 0);
	assert_int_equal(virtq_pop(&q, &c), 0);
	assert_int_equal(q.last_avail, 0);
	assert_int_equal(q.errors, 0);
	/* Never enabled / after reset: -EINVAL, and push/notify are no-ops. */
	virtq_reset(&q);
	assert_int_equal(q.size, 0);
	assert_null(q.desc);
	assert_int_equal(virtq_pop(&q, &c), -EINVAL);
	virtq_push(&q, 0, 1);
	assert_false(virtq_should_notify(&q));
	assert_int_equal(used_idx(), 0);
}

static void test_wraparound(void **state)
{
	(void)state;
	enable(16);
	q.last_avail = q.used_idx = q.signalled = 65530;
	set_avail_idx(65530);
	for (uint16_t i = 0; i < 12; i++) {
		set_desc(i, DATA + 0x100 * i, 1 + i, VIRTQ_DESC_F_WRITE, 0);
		offer(i);
	}
	assert_int_equal(aidx, 6);
	for (uint16_t i = 0; i < 12; i++) {
		assert_int_equal(virtq_pop(&q, &c), 1);
		assert_int_equal(c.head, i);
		assert_int_equal(c.in_len, 1 + i);
		virtq_push(&q, c.head, 1 + i);
	}
	assert_int_equal(virtq_pop(&q, &c), 0);
	assert_int_equal(q.last_avail, 6);
	assert_int_equal(used_idx(), 6);
	for (uint16_t i = 0; i < 12; i++) {
		unsigned slot = (uint16_t)(65530 + i) & 15;
		assert_int_equal(used_id(slot), i);
		assert_int_equal(used_len(slot), 1 + i);
	}
}

static void test_avail_full_ring(void **state)
{
	(void)state;
	enable(8);
	for (uint16_t i = 0; i < 8; i++) {
		set_desc(i, DATA, 4, 0, 0);
		offer(i);
	}
	/* Exactly size entries outstanding is legal. */
	for (uint16_t i = 0; i < 8; i++)
		assert_int_equal(virtq_pop(&q, &c), 1);
	assert_int_equal(virtq_pop(&q, &c), 0);
	assert_false(q.broken);
}

static void test_avail_runaway(void **state)
{
	(void)state;
	enable(8);
	set_desc(0, DATA, 4, 0, 0);
	offer(0);
	assert_int_equal(virtq_pop(&q, &c), 1);
	set_avail_idx((uint16_t)(q.last_avail + 9));
	assert_int_equal(virtq_pop(&q, &c), -EINVAL);
	assert_true(q.broken);
	assert_int_equal(q.last_avail, 1);
	/* Broken for good, even once idx looks sane again. */
	set_avail_idx(2);
	assert_int_equal(virtq_pop(&q, &c), -EINVAL);
	virtq_push(&q, 0, 4);
	assert_int_equal(used_idx(), 0);
	assert_false(virtq_should_notify(&q));
	/* Going backwards is a jump of ~65535. */
	enable(8);
	set_avail_idx(0xffff);
	assert_int_equal(virtq_pop(&q, &c), -EINVAL);
	assert_true(q.broken);
	/* Only a new enable clears it. */
	enable(8);
	assert_false(q.broken);
	assert_int_equal(virtq_pop(&q, &c), -EINVAL); /* idx still 0xffff */
}

static void test_bad_indices(void **state)
{
	(void)state;
	enable(8);
	/* Plausible descriptors just past the table: only the index check
	 * keeps pop from using them. */
	set_desc(8, DATA, 4, 0, 0);
	set_desc(9, DATA, 4, 0, 0);
	expect_bad(8);
	expect_bad(0xffff);
	set_desc(0, DATA, 4, VIRTQ_DESC_F_NEXT, 8);
	expect_bad(0);
	set_desc(1, DATA, 4, VIRTQ_DESC_F_NEXT, 0x8001);
	expect_bad(1);
	/* The queue keeps working. */
	set_desc(2, DATA, 4, 0, 0);
	offer(2);
	assert_int_equal(virtq_pop(&q, &c), 1);
	assert_int_equal(c.head, 2);
	assert_int_equal(q.errors, 4);
	/* A bad chain can be completed like any other. */
	virtq_push(&q, 8, 0);
	assert_int_equal(used_idx(), 1);
	assert_int_equal(used_id(0), 8);
	assert_int_equal(used_len(0), 0);
}

static void test_loops(void **state)
{
	(void)state;
	enable(8);
	set_desc(0, DATA, 4, VIRTQ_DESC_F_NEXT, 1);
	set_desc(1, DATA, 4, VIRTQ_DESC_F_NEXT, 0);
	expect_bad(0);
	expect_bad(1);
	set_desc(3, DATA, 4, VIRTQ_DESC_F_NEXT, 3);
	expect_bad(3);
	/* A loop that starts after a good prefix. */
	set_desc(4, DATA, 4, VIRTQ_DESC_F_NEXT, 5);
	set_desc(5, DATA, 4, VIRTQ_DESC_F_NEXT, 6);
	set_desc(6, DATA, 4, VIRTQ_DESC_F_NEXT, 5);
	expect_bad(4);
	assert_int_equal(q.errors, 4);

	/* Size 1: the only descriptor pointing at itself. */
	memset(g.ram + DESC, 0, 0x100);
	enable(1);
	aidx = 0;
	set_desc(0, DATA, 4, VIRTQ_DESC_F_NEXT, 0);
	expect_bad(0);
	set_desc(0, DATA, 4, 0, 0);
	offer(0);
	assert_int_equal(virtq_pop(&q, &c), 1);
}

static void test_chain_too_long(void **state)
{
	(void)state;
	enable(128);
	/* 0 -> 1 -> ... -> 63: exactly VIRTQ_MAX_CHAIN. */
	for (uint16_t i = 0; i < VIRTQ_MAX_CHAIN; i++)
		set_desc(i, DATA + i, 1, i + 1 < VIRTQ_MAX_CHAIN ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	offer(0);
	assert_int_equal(virtq_pop(&q, &c), 1);
	assert_int_equal(c.n, VIRTQ_MAX_CHAIN);
	assert_int_equal(c.out_len, VIRTQ_MAX_CHAIN);
	assert_ptr_equal(c.buf[VIRTQ_MAX_CHAIN - 1].host, g.ram + DATA + VIRTQ_MAX_CHAIN - 1);
	/* One more, no loop: refused. */
	set_desc(VIRTQ_MAX_CHAIN - 1, DATA, 1, VIRTQ_DESC_F_NEXT, VIRTQ_MAX_CHAIN);
	set_desc(VIRTQ_MAX_CHAIN, DATA, 1, 0, 0);
	expect_bad(0);
	/* Starting one later it is 64 again. */
	offer(1);
	assert_int_equal(virtq_pop(&q, &c), 1);
	assert_int_equal(c.n, VIRTQ_MAX_CHAIN);

	/* With a small queue the bound is the queue size. */
	enable(4);
	aidx = 0;
	for (uint16_t i = 0; i < 4; i++)
		set_desc(i, DATA, 1, i < 3 ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	offer(0);
	assert_int_equal(virtq_pop(&q, &c), 1);
	assert_int_equal(c.n, 4);
}

static void test_bad_buffers(void **state)
{
	(void)state;
	enable(8);
	set_desc(0, LO_SIZE - 8, 16, 0, 0);              /* runs off the end of RAM */
	expect_bad(0);
	set_desc(0, LO_SIZE + 0x1000, 16, 0, 0);         /* in the hole */
	expect_bad(0);
	set_desc(0, HI2_GPA - 8, 16, 0, 0);              /* across touching regions */
	expect_bad(0);
	set_desc(0, UINT64_MAX - 4, 16, 0, 0);           /* addr + len wraps */
	expect_bad(0);
	set_desc(0, UINT64_MAX, UINT32_MAX, 0, 0);
	expect_bad(0);
	set_desc(0, DATA, 0, 0, 0);                      /* zero length */
	expect_bad(0);
	/* A bad buffer anywhere in the chain spoils all of it. */
	set_desc(0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc(1, DATA, 0, VIRTQ_DESC_F_WRITE, 0);
	expect_bad(0);
	assert_int_equal(q.errors, 7);
	/* The last byte of RAM is fine. */
	set_desc(0, LO_SIZE - 1, 1, 0, 0);
	offer(0);
	assert_int_equal(virtq_pop(&q, &c), 1);
	assert_ptr_equal(c.buf[0].host, g.ram + LO_SIZE - 1);
}

static void test_indirect(void **state)
{
	(void)state;
	enable(8);
	/* A well-formed indirect table: still refused, we never offer it. */
	set_desc(1, DATA, 16, 0, 0);
	set_desc(0, DESC + 16, 16, VIRTQ_DESC_F_INDIRECT, 0);
	expect_bad(0);
	set_desc(0, DATA, 16, VIRTQ_DESC_F_NEXT, 2);
	set_desc(2, DESC + 16, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
	expect_bad(0);
}

static void test_order(void **state)
{
	(void)state;
	enable(8);
	set_desc(0, DATA, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(1, DATA + 16, 16, 0, 0);
	expect_bad(0);
	set_desc(0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc(1, DATA, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	set_desc(2, DATA, 16, VIRTQ_DESC_F_NEXT, 3);
	set_desc(3, DATA, 16, VIRTQ_DESC_F_WRITE, 0);
	expect_bad(0);
}

static void test_total_length(void **state)
{
	(void)state;
	/* A 3 GiB sparse region so buffers can be huge without touching pages. */
	const uint64_t big_gpa = 4 * GiB, big_size = 3 * GiB;
	void *big = fake_map(big_size);
	if (!big)
		skip();
	assert_int_equal(gmem_add(&g.m, big_gpa, big_size, big), 0);
	enable(8);
	set_desc(0, big_gpa, 0x80000000u, VIRTQ_DESC_F_NEXT, 1);
	set_desc(1, big_gpa, 0x7fffffffu, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	assert_int_equal(virtq_pop(&q, &c), 1);
	assert_int_equal(c.out_len, 0x80000000u);
	assert_int_equal(c.in_len, 0x7fffffffu);
	set_desc(1, big_gpa, 0x80000000u, VIRTQ_DESC_F_WRITE, 0);
	expect_bad(0);
	fake_unmap(big, big_size);
}

static void test_push(void **state)
{
	(void)state;
	enable(8);
	/* No chain outstanding: nothing to complete. */
	virtq_push(&q, 0, 1);
	assert_int_equal(used_idx(), 0);
	assert_int_equal(q.used_idx, 0);

	set_desc(5, DATA, 64, VIRTQ_DESC_F_WRITE, 0);
	set_desc(6, DATA, 64, VIRTQ_DESC_F_WRITE, 0);
	offer(5);
	offer(6);
	assert_int_equal(virtq_pop(&q, &c), 1);
	assert_int_equal(virtq_pop(&q, &c), 1);
	/* Completion out of order is allowed. */
	virtq_push(&q, 6, 0);
	assert_int_equal(used_idx(), 1);
	virtq_push(&q, 5, 123);
	assert_int_equal(used_idx(), 2);
	assert_int_equal(q.used_idx, 2);
	assert_int_equal(used_id(0), 6);
	assert_int_equal(used_len(0), 0);
	assert_int_equal(used_id(1), 5);
	assert_int_equal(used_len(1), 123);
	/* A third push has no chain left. */
	virtq_push(&q, 5, 7);
	assert_int_equal(used_idx(), 2);
	assert_int_equal(used_id(2), 0);
}

/* The driver offers and the device completes `n` one-buffer chains. */
static void cycle(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		set_desc(0, DATA, 4, VIRTQ_DESC_F_WRITE, 0);
		offer(0);
		assert_int_equal(virtq_pop(&q, &c), 1);
		virtq_push(&q, c.head, 4);
	}
}

static void test_notify_flags(void **state)
{
	(void)state;
	enable(8);
	assert_false(virtq_should_notify(&q)); /* nothing pushed yet */
	cycle(1);
	assert_true(virtq_should_notify(&q));
	assert_false(virtq_should_notify(&q)); /* nothing new since */
	set_avail_flags(VIRTQ_AVAIL_F_NO_INTERRUPT);
	cycle(2);
	assert_false(virtq_should_notify(&q));
	set_avail_flags(0);
	cycle(1);
	assert_true(virtq_should_notify(&q));
	/* used_event is ignored without event_idx. */
	set_used_event(100);
	cycle(1);
	assert_true(virtq_should_notify(&q));
}

static void test_notify_event_idx(void **state)
{
	(void)state;
	enable(8);
	q.event_idx = true;
	/* flags are ignored with event_idx. */
	set_avail_flags(VIRTQ_AVAIL_F_NO_INTERRUPT);
	cycle(3);                      /* old 0, new 3 */
	set_used_event(3);             /* ahead: wants the interrupt after entry 3 */
	assert_false(virtq_should_notify(&q));
	cycle(1);                      /* old 3, new 4 */
	assert_true(virtq_should_notify(&q)); /* exactly at: entry 3 published */
	cycle(2);                      /* old 4, new 6 */
	assert_false(virtq_should_notify(&q)); /* behind: already signalled */
	cycle(2);                      /* old 6, new 8 */
	set_used_event(6);
	assert_true(virtq_should_notify(&q));  /* at the oldest new entry */
	cycle(2);                      /* old 8, new 10 */
	set_used_event(9);
	assert_true(virtq_should_notify(&q));  /* at the newest */
	cycle(2);                      /* old 10, new 12 */
	set_used_event(12);
	assert_false(virtq_should_notify(&q)); /* one ahead */

	/* Across the 16-bit wrap. */
	enable(8);
	q.event_idx = true;
	q.last_avail = q.used_idx = q.signalled = 65534;
	set_avail_idx(65534);
	cycle(3);                      /* old 65534, new 1 */
	set_used_event(65535);
	assert_true(virtq_should_notify(&q));
	cycle(3);                      /* old 1, new 4 */
	set_used_event(65535);
	assert_false(virtq_should_notify(&q));
	cycle(1);                      /* old 4, new 5 */
	set_used_event(4);
	assert_true(virtq_should_notify(&q));
}

static void test_avail_event(void **state)
{
	(void)state;
	enable(8);
	q.event_idx = true;
	put16(g.ram + USED + 4 + 8 * 8, 0xbeef);
	assert_int_equal(virtq_pop(&q, &c), 0);
	assert_int_equal(avail_event(), 0); /* idle: kick me at entry 0 */
	cycle(2);
	assert_int_equal(avail_event(), 2);
	set_desc(1, DATA, 4, 0, 8); /* bad chains move it on too */
	expect_bad(9);
	assert_int_equal(avail_event(), 3);
	/* Without event_idx the field is left alone. */
	q.event_idx = false;
	enable(8);
	aidx = 0;
	set_avail_idx(0);
	put16(g.ram + USED + 4 + 8 * 8, 0xbeef);
	cycle(1);
	assert_int_equal(avail_event(), 0xbeef);
}

/* The three ways to pop, as the driver sees them through avail_event:
 * virtq_pop_quiet moves it only on finding the ring empty; virtq_pop_held
 * never moves it, empty or not; virtq_arm moves it to the next entry and
 * says whether one is already there (added before the driver could see the
 * request, so it will not kick for it). */
static void test_pop_quiet_held_arm(void **state)
{
	(void)state;
	enable(8);
	q.event_idx = true;
	put16(g.ram + USED + 4 + 8 * 8, 0xbeef);
	set_desc(0, DATA, 4, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	offer(0);
	assert_int_equal(virtq_pop_quiet(&q, &c), 1);
	assert_int_equal(virtq_pop_quiet(&q, &c), 1);
	assert_int_equal(avail_event(), 0xbeef); /* draining: no kick asked */
	assert_int_equal(virtq_pop_quiet(&q, &c), 0);
	assert_int_equal(avail_event(), 2); /* empty: kick me at entry 2 */

	put16(g.ram + USED + 4 + 8 * 8, 0xbeef);
	offer(0);
	assert_int_equal(virtq_pop_held(&q, &c), 1);
	assert_int_equal(virtq_pop_held(&q, &c), 0);
	assert_int_equal(avail_event(), 0xbeef); /* empty, and still not asked */
	assert_false(virtq_arm(&q));
	assert_int_equal(avail_event(), 3);

	/* An entry that came in while unarmed: arm says so. */
	put16(g.ram + USED + 4 + 8 * 8, 0xbeef);
	offer(0);
	assert_true(virtq_arm(&q));
	assert_int_equal(avail_event(), 3);
	assert_int_equal(virtq_pop_held(&q, &c), 1);
	assert_false(virtq_arm(&q));
	assert_int_equal(avail_event(), 4);

	/* Without event_idx the field is never written; arm still tells. */
	q.event_idx = false;
	put16(g.ram + USED + 4 + 8 * 8, 0xbeef);
	offer(0);
	assert_true(virtq_arm(&q));
	assert_int_equal(virtq_pop_held(&q, &c), 1);
	assert_false(virtq_arm(&q));
	assert_int_equal(avail_event(), 0xbeef);

	/* A disabled queue has nothing to arm. */
	virtq_reset(&q);
	assert_false(virtq_arm(&q));
}

static void test_chain_copy(void **state)
{
	(void)state;
	enable(8);
	memcpy(g.ram + DATA, "abcd", 4);
	memcpy(g.ram + DATA + 0x100, "efghij", 6);
	memset(g.ram + DATA + 0x200, '.', 0x200);
	set_desc(0, DATA, 4, VIRTQ_DESC_F_NEXT, 1);
	set_desc(1, DATA + 0x100, 6, VIRTQ_DESC_F_NEXT, 2);
	set_desc(2, DATA + 0x200, 3, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
	set_desc(3, DATA + 0x300, 5, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	assert_int_equal(virtq_pop(&q, &c), 1);
	assert_int_equal(c.out_len, 10);
	assert_int_equal(c.in_len, 8);

	char buf[32];
	memset(buf, 0, sizeof(buf));
	assert_int_equal(virtq_chain_read(&c, 0, buf, 10), 10);
	assert_memory_equal(buf, "abcdefghij", 10);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(virtq_chain_read(&c, 2, buf, 5), 5);
	assert_memory_equal(buf, "cdefg\0", 6);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(virtq_chain_read(&c, 3, buf, sizeof(buf)), 7); /* stops at readable end */
	assert_memory_equal(buf, "defghij\0", 8);
	assert_int_equal(virtq_chain_read(&c, 4, buf, 0), 0);
	assert_int_equal(virtq_chain_read(&c, 10, buf, 4), 0);
	assert_int_equal(virtq_chain_read(&c, UINT64_MAX, buf, 4), 0);

	assert_int_equal(virtq_chain_write(&c, 0, "0123456789", 10), 8);
	assert_memory_equal(g.ram + DATA + 0x200, "012.", 4);
	assert_memory_equal(g.ram + DATA + 0x300, "34567.", 6);
	assert_int_equal(virtq_chain_write(&c, 4, "XY", 2), 2);
	assert_memory_equal(g.ram + DATA + 0x300, "3XY67.", 6);
	assert_int_equal(virtq_chain_write(&c, 2, "PQR", 3), 3);
	assert_memory_equal(g.ram + DATA + 0x200, "01P.", 4);
	assert_memory_equal(g.ram + DATA + 0x300, "QRY67.", 6);
	assert_int_equal(virtq_chain_write(&c, 8, "Z", 1), 0);
	assert_int_equal(virtq_chain_write(&c, UINT64_MAX, "Z", 1), 0);
	/* Readable buffers were never written. */
	assert_memory_equal(g.ram + DATA, "abcd", 4);
	assert_memory_equal(g.ram + DATA + 0x100, "efghij", 6);

	/* A rejected chain has nothing to copy. */
	expect_bad(8);
	assert_int_equal(virtq_chain_read(&c, 0, buf, sizeof(buf)), 0);
	assert_int_equal(virtq_chain_write(&c, 0, buf, sizeof(buf)), 0);
}

/* virtq_chain_iov over a hand-built chain: direction filter, skip, len cap. */
static void test_chain_iov(void **state)
{
	(void)state;
	static uint8_t a[10], b[20], w1[8], w2[8];
	struct virtq_chain ch = {
		.n = 4,
		.buf = { { .host = a, .len = 10 }, { .host = b, .len = 20 },
			 { .host = w1, .len = 8, .device_writes = true },
			 { .host = w2, .len = 8, .device_writes = true } },
	};
	struct iovec iov[4];

	/* Readable side, skipping 12 bytes: 18 bytes of b from offset 2. */
	assert_int_equal(virtq_chain_iov(&ch, false, 12, UINT64_MAX, iov), 1);
	assert_ptr_equal(iov[0].iov_base, b + 2);
	assert_int_equal(iov[0].iov_len, 18);
	/* Readable side, whole, capped at 15 bytes: a (10) + 5 of b. */
	assert_int_equal(virtq_chain_iov(&ch, false, 0, 15, iov), 2);
	assert_ptr_equal(iov[0].iov_base, a);
	assert_int_equal(iov[0].iov_len, 10);
	assert_ptr_equal(iov[1].iov_base, b);
	assert_int_equal(iov[1].iov_len, 5);
	/* Writable side, skipping 3: the rest of w1 and all of w2. */
	assert_int_equal(virtq_chain_iov(&ch, true, 3, UINT64_MAX, iov), 2);
	assert_ptr_equal(iov[0].iov_base, w1 + 3);
	assert_int_equal(iov[0].iov_len, 5);
	assert_ptr_equal(iov[1].iov_base, w2);
	assert_int_equal(iov[1].iov_len, 8);
	/* Skipping past everything, or len 0: nothing. */
	assert_int_equal(virtq_chain_iov(&ch, true, 16, UINT64_MAX, iov), 0);
	assert_int_equal(virtq_chain_iov(&ch, false, 0, 0, iov), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_enable_size),     T(test_enable_alignment), T(test_enable_outside_ram),
		T(test_normal_chain),    T(test_several_chains),   T(test_empty),
		T(test_wraparound),      T(test_avail_full_ring),  T(test_avail_runaway),
		T(test_bad_indices),     T(test_loops),            T(test_chain_too_long),
		T(test_bad_buffers),     T(test_indirect),         T(test_order),
		T(test_total_length),    T(test_push),             T(test_notify_flags),
		T(test_notify_event_idx), T(test_avail_event), T(test_pop_quiet_held_arm),     T(test_chain_copy),
		T(test_chain_iov),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
