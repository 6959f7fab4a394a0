/* Unit tests for gmem's tracking of vigil's own writes (Diff snapshots):
 * gmem_write and a virtqueue's used chains mark exactly their pages, a take
 * clears, and nothing is marked while tracking is off. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/gmem.h"
#include "fake_guest.h"
#include "virtio/virtq.h"

#define RAM (1 * MiB)
#define PAGES (RAM / GMEM_PAGE)

static bool bit(const uint64_t *b, uint64_t pg)
{
	return b[pg / 64] >> (pg % 64) & 1;
}

static unsigned count(const uint64_t *b)
{
	unsigned n = 0;
	for (uint64_t i = 0; i < PAGES; i++)
		n += bit(b, i);
	return n;
}

static void writes_are_marked(void **state)
{
	(void)state;
	struct fake_guest g;
	uint64_t b[PAGES / 64] = { 0 };
	assert_int_equal(fake_guest_init(&g, RAM), 0);
	uint8_t buf[8192] = { 1 };

	assert_int_equal(gmem_write(&g.m, 0x3000, buf, 16), 0); /* not tracking: nothing */
	assert_int_equal(gmem_dirty_track(&g.m, true), 0);
	gmem_dirty_take(&g.m, 0, b);
	assert_int_equal(count(b), 0);

	assert_int_equal(gmem_write(&g.m, 0x5ff8, buf, 16), 0); /* spans pages 5 and 6 */
	gmem_mark_dirty(&g.m, 0x20000, 1);
	gmem_mark_dirty(&g.m, RAM - 1, 100); /* clamped to the region */
	gmem_mark_dirty(&g.m, RAM + 4096, 4096); /* outside RAM: nothing */
	gmem_dirty_take(&g.m, 0, b);
	assert_true(bit(b, 5) && bit(b, 6) && bit(b, 0x20) && bit(b, PAGES - 1));
	assert_int_equal(count(b), 4);

	memset(b, 0, sizeof(b));
	gmem_dirty_take(&g.m, 0, b); /* taken: clear */
	assert_int_equal(count(b), 0);
	assert_int_equal(gmem_dirty_track(&g.m, false), 0);
	gmem_mark_dirty(&g.m, 0, 4096);
	fake_guest_fini(&g);
}

/* A chain of a readable buffer (page 0x40) and a writable one (page 0x50),
 * pushed: the writable page and the used ring's page are marked, the
 * readable one is not. */
static void push_marks(bool rewrite)
{
	struct fake_guest g;
	struct virtq q;
	struct virtq_chain c;
	uint64_t b[PAGES / 64] = { 0 };
	assert_int_equal(fake_guest_init(&g, RAM), 0);
	uint8_t *desc = g.ram + 0x1000, *avail = g.ram + 0x2000;
	put64(desc, 0x40000);
	put32(desc + 8, 512);
	put16(desc + 12, VIRTQ_DESC_F_NEXT);
	put16(desc + 14, 1);
	put64(desc + 16, 0x50000);
	put32(desc + 24, 512);
	put16(desc + 28, VIRTQ_DESC_F_WRITE);
	put16(avail + 4, 0); /* ring[0] = head 0 */
	put16(avail + 2, 1); /* idx */

	memset(&q, 0, sizeof(q));
	q.size = 16;
	q.desc_gpa = 0x1000;
	q.avail_gpa = 0x2000;
	q.used_gpa = 0x3000;
	assert_int_equal(virtq_enable(&q, &g.m), 0);
	assert_int_equal(gmem_dirty_track(&g.m, true), 0);
	assert_int_equal(virtq_pop(&q, &c), 1);
	if (rewrite) {
		/* The driver points the writable descriptor elsewhere while
		 * the device holds the chain. */
		put64(desc + 16, 0x60000);
		put16(desc + 28, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT);
		put16(desc + 30, 2);
		put64(desc + 32, 0x70000);
		put32(desc + 40, 512);
		put16(desc + 44, VIRTQ_DESC_F_WRITE);
	}
	virtq_push_chain(&q, &c, 512);
	gmem_dirty_take(&g.m, 0, b);
	assert_true(bit(b, 0x50));
	assert_true(bit(b, 0x3));
	assert_false(bit(b, 0x40));
	assert_int_equal(count(b), 2);

	/* A push by head alone marks only the used ring. */
	put16(avail + 6, 0);
	put16(avail + 2, 2);
	assert_int_equal(virtq_pop(&q, &c), 1);
	memset(b, 0, sizeof(b));
	virtq_push(&q, c.head, 0);
	gmem_dirty_take(&g.m, 0, b);
	assert_true(bit(b, 0x3));
	assert_int_equal(count(b), 1);
	gmem_dirty_track(&g.m, false);
	fake_guest_fini(&g);
}

static void used_chains_mark_their_writable_buffers(void **state)
{
	(void)state;
	push_marks(false);
}

/* The same chain, its descriptors rewritten between pop and push: the page
 * the device was given (and wrote) is marked, not what the descriptors name
 * now (0x60, 0x70). */
static void rewritten_descriptors_mark_what_was_popped(void **state)
{
	(void)state;
	push_marks(true);
}

/* gmem_mark_dirty_host: a host pointer gmem_ptr gave marks its guest pages,
 * in the second region too; a pointer outside guest RAM marks nothing. */
static void host_pointers_mark_their_pages(void **state)
{
	(void)state;
	struct fake_guest g;
	uint64_t b[PAGES / 64] = { 0 }, b1[16 / 64 + 1] = { 0 };
	assert_int_equal(fake_guest_init(&g, RAM), 0);
	uint8_t *hi = fake_map(16 * GMEM_PAGE);
	assert_non_null(hi);
	assert_int_equal(gmem_add(&g.m, 4 * MiB, 16 * GMEM_PAGE, hi), 0);
	assert_int_equal(gmem_dirty_track(&g.m, true), 0);
	assert_true(gmem_tracking(&g.m));

	gmem_mark_dirty_host(&g.m, gmem_ptr(&g.m, 0x7ff0, 0x20), 0x20); /* pages 7, 8 */
	gmem_mark_dirty_host(&g.m, gmem_ptr(&g.m, 4 * MiB + 3 * GMEM_PAGE, 1), 1);
	uint8_t outside[64];
	gmem_mark_dirty_host(&g.m, outside, sizeof(outside));
	gmem_dirty_take(&g.m, 0, b);
	gmem_dirty_take(&g.m, 1, b1);
	assert_true(bit(b, 7) && bit(b, 8));
	assert_int_equal(count(b), 2);
	assert_int_equal(b1[0], 1ULL << 3);

	gmem_dirty_track(&g.m, false);
	assert_false(gmem_tracking(&g.m));
	fake_unmap(hi, 16 * GMEM_PAGE);
	fake_guest_fini(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(writes_are_marked),
		cmocka_unit_test(used_chains_mark_their_writable_buffers),
		cmocka_unit_test(rewritten_descriptors_mark_what_was_popped),
		cmocka_unit_test(host_pointers_mark_their_pages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
