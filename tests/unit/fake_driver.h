/* fake_driver — the guest driver's side of a split virtqueue, for device
 * tests that run without a transport: lay descriptor chains out in fake guest
 * memory (fake_guest.h), publish them in the avail ring, and read completions
 * back from the used ring. */
#ifndef VIGIL_TESTS_FAKE_DRIVER_H
#define VIGIL_TESTS_FAKE_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "fake_guest.h"
#include "virtio/virtio_dev.h"
#include "virtio/virtq.h"

struct fake_vq {
	uint8_t *ram;                  /* guest RAM at gpa 0 */
	uint64_t desc, avail, used;    /* ring addresses */
	uint16_t size;
	uint16_t next_desc, avail_idx, used_seen;
};

struct fake_seg {
	uint64_t gpa;
	uint32_t len;
	bool write; /* device-writable */
};

/* Posts the n segments as one chain on consecutive descriptors; returns its head. */
static inline uint16_t fake_vq_post(struct fake_vq *q, const struct fake_seg *s, unsigned n)
{
	uint16_t head = q->next_desc;

	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % q->size);
		uint8_t *d = q->ram + q->desc + 16u * idx;
		put64(d, s[i].gpa);
		put32(d + 8, s[i].len);
		put16(d + 12, (uint16_t)((i + 1 < n ? VIRTQ_DESC_F_NEXT : 0) |
					 (s[i].write ? VIRTQ_DESC_F_WRITE : 0)));
		put16(d + 14, (uint16_t)((idx + 1) % q->size));
	}
	q->next_desc = (uint16_t)((head + n) % q->size);
	put16(q->ram + q->avail + 4 + 2u * (q->avail_idx % q->size), head);
	q->avail_idx++;
	__atomic_store_n((uint16_t *)(void *)(q->ram + q->avail + 2), q->avail_idx, __ATOMIC_RELEASE);
	return head;
}

/* The next used element, if the device has completed one. */
static inline bool fake_vq_used(struct fake_vq *q, uint32_t *id, uint32_t *len)
{
	uint16_t idx = __atomic_load_n((uint16_t *)(void *)(q->ram + q->used + 2), __ATOMIC_ACQUIRE);

	if (idx == q->used_seen)
		return false;
	const uint8_t *e = q->ram + q->used + 4 + 8u * (q->used_seen % q->size);
	*id = get32(e);
	*len = get32(e + 4);
	q->used_seen++;
	return true;
}

/* Where queue q's rings live: 64 KiB apart from 64 KiB up, desc/avail/used
 * 4 KiB apart, so no queue of up to 256 entries overlaps another. */
#define FAKE_RING(q) (0x10000ULL * ((q) + 1))
#define FAKE_DESC(q) FAKE_RING(q)
#define FAKE_AVAIL(q) (FAKE_RING(q) + 0x1000)
#define FAKE_USED(q) (FAKE_RING(q) + 0x2000)

/* Plays the driver's handshake: every queue of d laid out at FAKE_RING(q)
 * with `size` entries and enabled, then DRIVER_OK and activate(). Returns
 * 0, or the step that failed (-1 virtq_enable, -2 activate). */
static inline int fake_driver_start(struct virtio_dev *d, struct fake_vq *fq, uint8_t *ram,
				    const struct gmem *m, uint16_t size)
{
	for (unsigned q = 0; q < d->num_queues; q++) {
		fq[q] = (struct fake_vq){ .ram = ram, .desc = FAKE_DESC(q), .avail = FAKE_AVAIL(q),
					  .used = FAKE_USED(q), .size = size };
		d->vq[q].size = size;
		d->vq[q].desc_gpa = FAKE_DESC(q);
		d->vq[q].avail_gpa = FAKE_AVAIL(q);
		d->vq[q].used_gpa = FAKE_USED(q);
		if (virtq_enable(&d->vq[q], m) != 0)
			return -1;
	}
	atomic_store(&d->status, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK |
					 VIRTIO_S_DRIVER_OK);
	return d->ops->activate && d->ops->activate(d) != 0 ? -2 : 0;
}

#endif
