/* virtq — split virtqueue walker; see virtq.h. The rules that keep a hostile
 * guest out of host memory:
 *  - rings are resolved once, at enable, through gmem_ptr over their full size;
 *  - every index taken from the guest is checked against the queue size before
 *    it is used to address a ring, and ring positions we compute ourselves are
 *    masked with size - 1;
 *  - each field the guest can change is loaded once (an atomic load, so the
 *    compiler cannot re-read it) and checked on that local copy;
 *  - every buffer goes through gmem_ptr over its whole length. */
#include "virtio/virtq.h"

#include <errno.h>
#include <string.h>

/* virtio 1.x rings are little-endian; so is every host we build for. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "virtq assumes a little-endian host");
_Static_assert(sizeof(struct virtq_desc) == 16, "descriptor layout");
_Static_assert(sizeof(struct virtq_used_elem) == 8, "used element layout");
_Static_assert(VIRTQ_MAX_CHAIN <= VIRTQ_MAX_SIZE, "chain bound");

/* Guest-shared memory: one load or store each, never torn or repeated. */
#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)


/* The event fields sit just past each ring's array. */
static uint16_t *used_event(const struct virtq *q)
{
	return &q->avail->ring[q->size];
}

static uint16_t *avail_event(const struct virtq *q)
{
	return (uint16_t *)(void *)&q->used->ring[q->size];
}

/* Host pointer for a ring, or NULL if it is not wholly in one RAM region or
 * its host address is not aligned (the atomic accesses need natural
 * alignment; gmem regions are page-aligned in practice). */
static void *ring_ptr(const struct gmem *mem, uint64_t gpa, uint64_t len, uint64_t align)
{
	if (gpa & (align - 1))
		return NULL;
	void *p = gmem_ptr(mem, gpa, len);
	if (p && ((uintptr_t)p & (align - 1)))
		return NULL;
	return p;
}

int virtq_enable(struct virtq *q, const struct gmem *mem)
{
	uint16_t size = q->size;

	q->desc = NULL;
	q->avail = NULL;
	q->used = NULL;
	if (!mem || size == 0 || size > VIRTQ_MAX_SIZE || (size & (size - 1)))
		return -EINVAL;

	struct virtq_desc *desc = ring_ptr(mem, q->desc_gpa, VIRTQ_DESC_BYTES(size), 16);
	struct virtq_avail *avail = ring_ptr(mem, q->avail_gpa, VIRTQ_AVAIL_BYTES(size), 2);
	struct virtq_used *used = ring_ptr(mem, q->used_gpa, VIRTQ_USED_BYTES(size), 4);
	if (!desc || !avail || !used)
		return -EINVAL;

	q->mem = mem;
	q->desc = desc;
	q->avail = avail;
	q->used = used;
	q->last_avail = 0;
	q->used_idx = 0;
	q->signalled = 0;
	q->broken = false;
	q->errors = 0;
	return 0;
}

void virtq_reset(struct virtq *q)
{
	memset(q, 0, sizeof(*q));
}

/* Walks the chain starting at `head` into c. 0, or -EBADMSG on any defect. */
static int walk_chain(const struct virtq *q, uint16_t head, struct virtq_chain *c)
{
	/* A chain can never be longer than the table it lives in, so anything
	 * past min(size, VIRTQ_MAX_CHAIN) is a loop or more than we accept;
	 * counting is the whole loop detection. */
	unsigned max = q->size < VIRTQ_MAX_CHAIN ? q->size : VIRTQ_MAX_CHAIN;
	uint16_t idx = head;
	bool seen_write = false;
	uint64_t total = 0;

	for (;;) {
		if (idx >= q->size || c->n == max)
			return -EBADMSG;

		const struct virtq_desc *d = &q->desc[idx];
		uint64_t addr = LOAD(&d->addr);
		uint32_t len = LOAD(&d->len);
		uint16_t flags = LOAD(&d->flags);
		uint16_t next = LOAD(&d->next);

		if (flags & VIRTQ_DESC_F_INDIRECT)
			return -EBADMSG;
		bool writes = flags & VIRTQ_DESC_F_WRITE;
		/* Spec 2.7.4.2: all device-readable buffers come first. Devices
		 * rely on it to find their header and status bytes. */
		if (!writes && seen_write)
			return -EBADMSG;
		seen_write |= writes;
		/* NULL for len 0, gpa + len overflow, or a range not wholly in
		 * one region. */
		void *host = gmem_ptr(q->mem, addr, len);
		if (!host)
			return -EBADMSG;
		/* The used ring reports lengths in 32 bits; a chain larger than
		 * that cannot be completed honestly. */
		total += len;
		if (total > UINT32_MAX)
			return -EBADMSG;

		c->buf[c->n++] = (struct virtq_buf){
			.host = host, .gpa = addr, .len = len, .device_writes = writes
		};
		if (writes)
			c->in_len += len;
		else
			c->out_len += len;

		if (!(flags & VIRTQ_DESC_F_NEXT))
			return 0;
		idx = next;
	}
}

/* Asks for a kick at the next entry, then looks again, so an entry added
 * between the driver's read of avail_event and our store is not lost
 * (store-load needs a full fence). Returns avail->idx as seen after. */
static uint16_t arm(struct virtq *q)
{
	if (q->event_idx) {
		STORE(avail_event(q), q->last_avail);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
	return __atomic_load_n(&q->avail->idx, __ATOMIC_ACQUIRE);
}

/* When to ask the driver for its next kick (with EVENT_IDX): for the very
 * next entry on every pop (virtq_pop), only when the ring is found empty
 * (virtq_pop_quiet), or never (virtq_pop_held, whose caller arms). */
enum ask { ASK_NEXT, ASK_WHEN_EMPTY, ASK_NEVER };

static int pop(struct virtq *q, struct virtq_chain *c, enum ask ask)
{
	if (!virtq_enabled(q))
		return -EINVAL;

	/* Acquire: the ring entries and descriptors the driver wrote before
	 * bumping idx are visible to the loads below. */
	uint16_t avail_idx = __atomic_load_n(&q->avail->idx, __ATOMIC_ACQUIRE);
	if (avail_idx == q->last_avail && ask != ASK_NEVER && q->event_idx)
		avail_idx = arm(q); /* about to go idle */

	uint16_t pending = (uint16_t)(avail_idx - q->last_avail);
	if (pending == 0)
		return 0;
	if (pending > q->size) {
		/* The driver claims more entries than the ring holds: nothing
		 * in it can be trusted any more. */
		q->broken = true;
		return -EINVAL;
	}
	if (q->budgeted) {
		if (!q->budget_left) {
			q->budget_spent = true;
			return 0;
		}
		q->budget_left--;
	}

	uint16_t head = LOAD(&q->avail->ring[q->last_avail & (q->size - 1)]);
	q->last_avail++;
	if (q->event_idx && ask == ASK_NEXT)
		STORE(avail_event(q), q->last_avail);

	c->head = head;
	c->n = 0;
	c->out_len = 0;
	c->in_len = 0;
	if (walk_chain(q, head, c) < 0) {
		/* Consumed, but with nothing a device may touch. */
		c->n = 0;
		c->out_len = 0;
		c->in_len = 0;
		q->errors++;
		return -EBADMSG;
	}
	return 1;
}

int virtq_pop(struct virtq *q, struct virtq_chain *c)
{
	return pop(q, c, ASK_NEXT);
}

int virtq_pop_quiet(struct virtq *q, struct virtq_chain *c)
{
	return pop(q, c, ASK_WHEN_EMPTY);
}

int virtq_pop_held(struct virtq *q, struct virtq_chain *c)
{
	return pop(q, c, ASK_NEVER);
}

bool virtq_arm(struct virtq *q)
{
	if (!virtq_enabled(q))
		return false;
	return arm(q) != q->last_avail;
}

/* Diff snapshots: a device writes only into a chain's device-writable
 * buffers and the used ring (the virtio contract), so those are the pages
 * vigil dirtied. The buffers are marked from the chain as virtq_pop checked
 * it, never from the descriptors again: a driver may rewrite those while the
 * device holds the chain, and the pages the device wrote would then go
 * unmarked. */
void virtq_mark_written(const struct virtq *q, const struct virtq_chain *c)
{
	if (!q->mem || !gmem_tracking(q->mem))
		return;
	unsigned n = c->n <= VIRTQ_MAX_CHAIN ? c->n : VIRTQ_MAX_CHAIN;
	for (unsigned i = 0; i < n; i++)
		if (c->buf[i].device_writes)
			gmem_mark_dirty(q->mem, c->buf[i].gpa, c->buf[i].len);
}

void virtq_push_chain(struct virtq *q, const struct virtq_chain *c, uint32_t written)
{
	virtq_mark_written(q, c);
	virtq_push(q, c->head, written);
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t written)
{
	if (!virtq_enabled(q))
		return;
	/* Chains popped but not yet pushed; pushing with none outstanding is
	 * a device bug that would overwrite entries the driver has not read. */
	if ((uint16_t)(q->last_avail - q->used_idx) == 0)
		return;

	if (gmem_tracking(q->mem))
		gmem_mark_dirty(q->mem, q->used_gpa, VIRTQ_USED_BYTES(q->size));
	struct virtq_used_elem *e = &q->used->ring[q->used_idx & (q->size - 1)];
	STORE(&e->id, (uint32_t)head);
	STORE(&e->len, written);
	q->used_idx++;
	/* Release: the element is visible before the index that covers it. */
	__atomic_store_n(&q->used->idx, q->used_idx, __ATOMIC_RELEASE);
}

bool virtq_should_notify(struct virtq *q)
{
	if (!virtq_enabled(q))
		return false;

	uint16_t old = q->signalled;
	uint16_t new = q->used_idx;
	q->signalled = new;
	if (new == old)
		return false;

	/* Our used->idx store must be visible before we read the driver's
	 * suppression fields, or we could miss a driver that just re-enabled
	 * interrupts (store-load ordering needs a full fence). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (q->event_idx) {
		/* vring_need_event: interrupt if used_event is one of the
		 * entries [old, new) published since the last decision. */
		uint16_t ev = LOAD(used_event(q));
		return (uint16_t)(new - ev - 1) < (uint16_t)(new - old);
	}
	return !(LOAD(&q->avail->flags) & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

/* Copies between a flat buffer and the chain's buffers of one direction,
 * `off` bytes into them: into the writable ones from `in` when to_chain, out
 * of the readable ones into `out` otherwise. */
static size_t chain_copy(const struct virtq_chain *c, uint64_t off, size_t len, bool to_chain,
			 uint8_t *out, const uint8_t *in)
{
	size_t done = 0;
	unsigned n = c->n <= VIRTQ_MAX_CHAIN ? c->n : VIRTQ_MAX_CHAIN;

	for (unsigned i = 0; i < n && done < len; i++) {
		const struct virtq_buf *b = &c->buf[i];
		if (b->device_writes != to_chain)
			continue;
		if (off >= b->len) {
			off -= b->len;
			continue;
		}
		size_t chunk = (size_t)(b->len - off);
		if (chunk > len - done)
			chunk = len - done;
		uint8_t *p = (uint8_t *)b->host + off;
		if (to_chain)
			memcpy(p, in + done, chunk);
		else
			memcpy(out + done, p, chunk);
		done += chunk;
		off = 0;
	}
	return done;
}

size_t virtq_chain_read(const struct virtq_chain *c, uint64_t off, void *dst, size_t len)
{
	return chain_copy(c, off, len, false, dst, NULL);
}

size_t virtq_chain_write(const struct virtq_chain *c, uint64_t off, const void *src, size_t len)
{
	return chain_copy(c, off, len, true, NULL, src);
}

unsigned virtq_chain_iov(const struct virtq_chain *c, bool device_writes, uint64_t skip, uint64_t len,
			 struct iovec *iov)
{
	unsigned k = 0;

	for (unsigned i = 0; i < c->n && len > 0; i++) {
		const struct virtq_buf *b = &c->buf[i];
		if (b->device_writes != device_writes)
			continue;
		if (skip >= b->len) {
			skip -= b->len;
			continue;
		}
		uint64_t chunk = b->len - skip;
		if (chunk > len)
			chunk = len;
		iov[k].iov_base = (uint8_t *)b->host + skip;
		iov[k].iov_len = (size_t)chunk;
		k++;
		len -= chunk;
		skip = 0;
	}
	return k;
}

