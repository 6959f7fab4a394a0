/* virtq — the split virtqueue (virtio 1.x, section 2.7) seen from the device
 * side, written for a guest that may be hostile.
 * Used by the virtio transports (which fill in size, ring addresses and
 * features from the driver's register writes, then call virtq_enable) and by
 * the virtio devices (which pop chains, read and write their buffers through
 * virtq_chain_read/virtq_chain_write, push them back and ask whether to
 * interrupt).
 *
 * Every ring is resolved through gmem_ptr() once, at enable time, and every
 * buffer of every chain is checked in full before a device sees it; the guest
 * can rewrite the rings at any time, so each ring field is fetched exactly
 * once and checked on the local copy. A malformed chain is consumed and
 * reported (the device answers it with an error); only an avail index that
 * runs away marks the whole queue broken. Not thread-safe: one queue is
 * driven by one thread at a time. */
#ifndef VIGIL_VIRTIO_VIRTQ_H
#define VIGIL_VIRTIO_VIRTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/gmem.h"

#define VIRTQ_MAX_SIZE 1024 /* largest queue we offer */
#define VIRTQ_MAX_CHAIN 64  /* longest descriptor chain we accept (<= queue size) */

/* Descriptor flags (virtio 1.x 2.7.5). */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2    /* device writes (driver reads) this buffer */
#define VIRTQ_DESC_F_INDIRECT 4 /* never offered (no VIRTIO_F_INDIRECT_DESC) */

#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

/* Guest-visible ring layouts (little-endian, as is the host). */
struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* [size], then uint16_t used_event */
};

struct virtq_used_elem {
	uint32_t id;  /* head of the completed chain */
	uint32_t len; /* bytes the device wrote */
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[]; /* [size], then uint16_t avail_event */
};

/* Bytes each ring occupies for a queue of `size`, event fields included. */
#define VIRTQ_DESC_BYTES(size) (16u * (size))
#define VIRTQ_AVAIL_BYTES(size) (6u + 2u * (size))
#define VIRTQ_USED_BYTES(size) (6u + 8u * (size))

struct virtq {
	/* set by the transport from the driver's writes */
	uint16_t size; /* power of two, 1..VIRTQ_MAX_SIZE */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool event_idx; /* VIRTIO_F_EVENT_IDX negotiated */
	/* private state */
	const struct gmem *mem;
	struct virtq_desc *desc; /* host pointers, resolved and checked by virtq_enable */
	struct virtq_avail *avail;
	struct virtq_used *used;
	uint16_t last_avail;  /* next avail entry to consume */
	uint16_t used_idx;    /* shadow of used->idx */
	uint16_t signalled;   /* used_idx at the last virtq_should_notify decision */
	bool broken;          /* the guest broke the protocol: stop touching the queue */
	uint64_t errors;      /* chains rejected */
	/* A turn's budget (virtq_budget): one busy queue must not keep the
	 * device context from every other device. */
	bool budgeted;
	unsigned budget_left;
	bool budget_spent;    /* a pop was refused for the budget: chains wait */
};

/* Chains one turn of service may take: from here virtq_pop hands out at
 * most n, then answers "none" and marks the budget spent; n 0 lifts the
 * limit. The transport sets it around each queue notification and, when
 * it was spent, notifies again through the executor so others run first.
 * Devices see an empty ring and need nothing special. */
static inline void virtq_budget(struct virtq *q, unsigned n)
{
	q->budgeted = n != 0;
	q->budget_left = n;
	q->budget_spent = false;
}

#define VIRTQ_BUDGET 64 /* chains per queue per turn of the device context */

struct virtq_buf {
	void *host;  /* gmem_ptr(gpa, len): the whole buffer is RAM in one region */
	uint64_t gpa;
	uint32_t len; /* never 0 */
	bool device_writes;
};

struct virtq_chain {
	uint16_t head;
	unsigned n; /* number of buffers */
	struct virtq_buf buf[VIRTQ_MAX_CHAIN];
	uint64_t out_len; /* total driver->device bytes (readable) */
	uint64_t in_len;  /* total device->driver bytes (writable) */
};

/* Called when the driver enables the queue: checks the size (power of two,
 * <= VIRTQ_MAX_SIZE), the alignment (desc 16, avail 2, used 4), that each of
 * the three rings (event fields included) lies wholly in one RAM region, and
 * resolves the host pointers once. Starts the indices at 0. 0 or -EINVAL (the
 * queue then stays disabled). */
int virtq_enable(struct virtq *q, const struct gmem *mem);
/* Whether q was enabled (and has not broken since). */
static inline bool virtq_enabled(const struct virtq *q)
{
	return q->desc != NULL && !q->broken;
}

/* Back to the disabled state: zeroes the whole struct, driver-set fields
 * included (after a device reset the transport sets size again). */
void virtq_reset(struct virtq *q);

/* Takes the next available chain. Returns 1 with *c filled, 0 if none is
 * available, or a negative errno if the guest broke the protocol:
 *  -EINVAL: the queue is disabled or broken, or avail->idx ran ahead of
 *           last_avail by more than the queue size (the queue is then marked
 *           broken and every later call returns -EINVAL);
 *  -EBADMSG: a bad chain (head or next index >= size, a loop or a chain longer
 *           than min(size, VIRTQ_MAX_CHAIN), a buffer not wholly in one RAM
 *           region or of length 0, an INDIRECT descriptor, a device-readable
 *           buffer after a device-writable one, a total length above
 *           UINT32_MAX). The chain is consumed and counted in q->errors;
 *           c->head is its head and c->n == 0, so the device can complete it
 *           with virtq_push (error status / zero length). The queue stays
 *           usable.
 * With event_idx, also publishes avail_event so the driver kicks for the
 * next entry. */
int virtq_pop(struct virtq *q, struct virtq_chain *c);

/* Returns a chain to the driver: writes the used element (head, written) and
 * publishes used->idx with release semantics. The caller clamps `written` to
 * the chain's in_len. Does nothing on a disabled or broken queue, or when no
 * popped chain is outstanding (more pushes than pops would overwrite used
 * entries the driver has not read yet). Never writes outside the used ring,
 * and marks only that ring written for Diff snapshots (see below). */
void virtq_push(struct virtq *q, uint16_t head, uint32_t written);

/* Diff snapshots: marks the pages of c's device-writable buffers written,
 * from the chain as virtq_pop checked it (the descriptors may have changed
 * since). Nothing when not tracking. A device that wrote into a chain's
 * buffers calls this before it pushes the head, or pushes with
 * virtq_push_chain, which does both. */
void virtq_mark_written(const struct virtq *q, const struct virtq_chain *c);
void virtq_push_chain(struct virtq *q, const struct virtq_chain *c, uint32_t written);

/* After pushes: does the driver want an interrupt? Without event_idx, yes
 * unless avail->flags has VIRTQ_AVAIL_F_NO_INTERRUPT; with event_idx, yes if
 * used_event lies in [old, new) where old is the used index at the previous
 * call (vring_need_event). False if nothing was pushed since, or on a disabled
 * or broken queue. */
bool virtq_should_notify(struct virtq *q);

/* Copy out of the chain's device-readable buffers, starting `off` bytes into
 * them, spanning buffer boundaries; returns the bytes copied (< len when the
 * readable part ends first). */
size_t virtq_chain_read(const struct virtq_chain *c, uint64_t off, void *dst, size_t len);

/* Copy into the chain's device-writable buffers, `off` counted over the
 * writable buffers only; returns the bytes copied. */
size_t virtq_chain_write(const struct virtq_chain *c, uint64_t off, const void *src, size_t len);

/* An iovec over at most `len` bytes of the chain's buffers of one direction
 * (device-writable or device-readable), starting `skip` bytes into them, for
 * readv/writev-style backends. `iov` has room for c->n entries; returns the
 * number filled. */
unsigned virtq_chain_iov(const struct virtq_chain *c, bool device_writes, uint64_t skip, uint64_t len,
			 struct iovec *iov);

/* virtq_pop, but while chains keep coming avail_event is left where
 * it was, so a driver adding entries during the drain does not kick for
 * them; only the pop that finds the ring empty asks for the next kick (as
 * virtq_pop does). For a caller that pops until it gets 0 (or spends its
 * budget, and is then called again): stopping early would leave the
 * driver not kicking for entries nobody looks at. */
int virtq_pop_quiet(struct virtq *q, struct virtq_chain *c);

/* virtq_pop that never moves avail_event, not even on finding the ring
 * empty: for a device that looks at the ring again by itself while it has
 * requests in flight (after each completion), so the driver need not kick
 * for what it adds meanwhile. Before it stops looking, the device calls
 * virtq_arm. */
int virtq_pop_held(struct virtq *q, struct virtq_chain *c);

/* Asks the driver to kick for the next entry (with EVENT_IDX) and says
 * whether entries are there already, added before the driver could see the
 * request: the caller then pops them, as no kick will come for them. False
 * on a disabled or broken queue. */
bool virtq_arm(struct virtq *q);

#endif
