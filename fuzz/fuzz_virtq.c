/* fuzz_virtq — libFuzzer target for the split virtqueue walker
 * (src/virtio/virtq.c). The input is a whole guest: a 16-byte header picks
 * the queue size, ring addresses, features and starting indices, and the rest
 * fills guest RAM (two regions with a hole between, each its own heap block
 * so ASan sees any step outside them). The target enables the queue, then
 * pops (virtq_pop, _quiet or _held with virtq_arm: a header bit pair),
 * copies and pushes until the queue is empty or broken, checking the
 * walker's promises on every chain; a broken promise traps.
 *
 * Half the inputs are "tamed" (header bit): the harness fixes up avail->idx,
 * ring entries and descriptors to be mostly plausible, so the fuzzer spends
 * its time on chains rather than on getting past the first check. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/gmem.h"
#include "virtio/virtq.h"

#define LO_SIZE 0xc000u /* [0, 48 KiB) */
#define HI_GPA 0x10000u /* hole [48 KiB, 64 KiB) */
#define HI_SIZE 0x4000u /* [64 KiB, 80 KiB) */
#define GPA_MASK 0x1ffffu /* ring and buffer addresses: RAM, hole, and beyond */
#define HDR 16

#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)

static uint8_t *lo, *hi;
static uint8_t scratch[4096];

static uint64_t get(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Makes the guest's rings mostly well-formed; values derived from the
 * guest's own bytes so the fuzzer still steers them. */
static void tame(struct virtq *q, uint16_t avail_idx)
{
	uint16_t mask = q->size - 1;
	q->avail->idx = avail_idx;
	for (unsigned i = 0; i < q->size; i++) {
		/* 1 in 16 entries keeps its raw (likely out of range) value. */
		if ((q->avail->ring[i] & 0xf000) != 0xf000)
			q->avail->ring[i] &= mask;
		struct virtq_desc *d = &q->desc[i];
		if ((d->next & 0xf000) != 0xf000)
			d->next &= mask;
		if ((d->addr >> 60) != 0xf)
			d->addr &= GPA_MASK;
		if ((d->len >> 28) != 0xf)
			d->len &= 0x1fff;
		d->flags &= (d->flags & 0x8000) ? 0xffff : VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE;
	}
}

/* Checks one good chain against the walker's contract and exercises the
 * copy helpers; returns the byte count to report as written. */
static uint32_t use_chain(const struct gmem *m, const struct virtq_chain *c, uint64_t roff,
			  uint64_t woff)
{
	uint64_t out = 0, in = 0;
	bool seen_write = false;

	CHECK(c->n >= 1 && c->n <= VIRTQ_MAX_CHAIN);
	for (unsigned i = 0; i < c->n; i++) {
		const struct virtq_buf *b = &c->buf[i];
		CHECK(b->len > 0);
		CHECK(b->host == gmem_ptr(m, b->gpa, b->len));
		CHECK(!seen_write || b->device_writes);
		seen_write |= b->device_writes;
		*(b->device_writes ? &in : &out) += b->len;
	}
	CHECK(out == c->out_len && in == c->in_len && out + in <= UINT32_MAX);

	/* Read everything readable in scratch-sized steps, plus one read at
	 * an arbitrary offset. */
	for (uint64_t off = 0; off < out; off += sizeof(scratch)) {
		size_t want = out - off < sizeof(scratch) ? (size_t)(out - off) : sizeof(scratch);
		CHECK(virtq_chain_read(c, off, scratch, sizeof(scratch)) == want);
	}
	size_t got = virtq_chain_read(c, roff, scratch, sizeof(scratch));
	CHECK(got == (roff >= out ? 0 : (out - roff < sizeof(scratch) ? out - roff : sizeof(scratch))));

	size_t put = virtq_chain_write(c, woff, scratch, sizeof(scratch));
	CHECK(put == (woff >= in ? 0 : (in - woff < sizeof(scratch) ? in - woff : sizeof(scratch))));
	/* Write every writable byte too, so ASan sees the whole range. */
	for (uint64_t off = 0; off < in; off += sizeof(scratch))
		virtq_chain_write(c, off, scratch, sizeof(scratch));
	return (uint32_t)(woff + put < in ? woff + put : in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < HDR)
		return 0;
	if (!lo) {
		lo = malloc(LO_SIZE);
		hi = malloc(HI_SIZE);
		if (!lo || !hi)
			abort();
	}
	const uint8_t *h = data;
	data += HDR;
	size -= HDR;
	size_t n_lo = size < LO_SIZE ? size : LO_SIZE;
	memset(lo, 0, LO_SIZE);
	memset(hi, 0, HI_SIZE);
	memcpy(lo, data, n_lo);
	if (size > n_lo)
		memcpy(hi, data + n_lo, size - n_lo < HI_SIZE ? size - n_lo : HI_SIZE);

	struct gmem m = { 0 };
	if (gmem_add(&m, 0, LO_SIZE, lo) || gmem_add(&m, HI_GPA, HI_SIZE, hi))
		abort();
	/* Flag bit 4: Diff snapshot tracking, so pushes mark what they used. */
	if ((h[1] & 0x10) && gmem_dirty_track(&m, true))
		abort();

	struct virtq q = { 0 };
	q.size = (uint16_t)(1u << (h[0] % 12)); /* 2048 must be refused */
	if (h[0] & 0x80)
		q.size = (uint16_t)get(h + 14, 2); /* any value at all */
	bool tamed = h[1] & 2;
	q.event_idx = h[1] & 1;
	q.desc_gpa = get(h + 2, 3) & GPA_MASK;
	q.avail_gpa = get(h + 5, 3) & GPA_MASK;
	q.used_gpa = get(h + 8, 3) & GPA_MASK;
	if (tamed) {
		q.desc_gpa &= ~15ull;
		q.avail_gpa &= ~1ull;
		q.used_gpa &= ~3ull;
	}
	int rc = virtq_enable(&q, &m);
	if (rc) {
		CHECK(rc == -EINVAL && !q.desc);
		struct virtq_chain c;
		CHECK(virtq_pop(&q, &c) == -EINVAL);
		gmem_dirty_track(&m, false);
		return 0;
	}
	CHECK(q.size && q.size <= VIRTQ_MAX_SIZE && !(q.size & (q.size - 1)));

	/* Start anywhere in the 16-bit index space (wraparound). */
	uint16_t start = (uint16_t)get(h + 11, 2);
	q.last_avail = q.used_idx = q.signalled = start;
	if (tamed)
		tame(&q, (uint16_t)(start + h[13] % (q.size + 2u)));

	static struct virtq_chain c;
	uint64_t roff = h[14] * 37u, woff = h[15] * 29u;
	/* Which pop (flag bits 2-3): kick for the next entry, only when empty,
	 * or never (then armed on finding the ring empty, as a device does). */
	unsigned how = (h[1] >> 2 & 3) % 3;
	for (unsigned i = 0; i < 2 * VIRTQ_MAX_SIZE + 2; i++) {
		uint16_t before = q.last_avail;
		int r = how == 0 ? virtq_pop(&q, &c) : how == 1 ? virtq_pop_quiet(&q, &c) : virtq_pop_held(&q, &c);
		if (r == 0 && how == 2 && virtq_arm(&q)) {
			CHECK(q.last_avail == before);
			continue; /* entries there after all: pop them */
		}
		if (r == 0 || r == -EINVAL) {
			CHECK(q.last_avail == before);
			CHECK(r == 0 || q.broken);
			break;
		}
		CHECK(q.last_avail == (uint16_t)(before + 1));
		if (r == -EBADMSG) {
			CHECK(c.n == 0 && c.out_len == 0 && c.in_len == 0);
			CHECK(virtq_chain_read(&c, 0, scratch, sizeof(scratch)) == 0);
			virtq_push(&q, c.head, 0);
		} else {
			CHECK(r == 1);
			virtq_push_chain(&q, &c, use_chain(&m, &c, roff, woff));
		}
		CHECK(q.used_idx == q.last_avail); /* every pop completed */
		if (i & 1)
			virtq_should_notify(&q);
	}
	virtq_should_notify(&q);
	/* Nothing is outstanding (or the queue is broken): a stray push must
	 * not touch the used ring. */
	uint16_t used = q.used->idx;
	virtq_push(&q, 0, 0);
	CHECK(q.used->idx == used);
	virtq_reset(&q);
	gmem_dirty_track(&m, false);
	return 0;
}
