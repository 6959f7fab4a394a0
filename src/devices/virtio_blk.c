/* virtio_blk — see virtio_blk.h.
 * Threads: queue_notify (device context, the event thread) pops chains,
 * decodes and gates them, and submits the I/O to the backend; the
 * backend's threads run the I/O and call io_done(), which writes the status
 * and pushes the chain. Each request queue (one per vCPU, VIRTIO_BLK_F_MQ)
 * has its own jobs and locks and is served on its own: `qlock` serialises
 * every use of that virtq (pop on the event thread, push + used on backend
 * threads: virtq is not thread-safe); `lock` guards its free job list. They
 * are never held together.
 * Merging: within one turn of a queue, a read or write that continues the
 * one before it (same direction, the next byte) is appended to it, up to
 * one iovec (64 buffers) and 1 MiB, and the run goes to the backend as one
 * I/O; if it fails, each request is retried alone, so errors stay exactly
 * the failing requests'. Each request is gated and counted on its own.
 * Interrupts: with a backend that batches (blk_backend.batches), io_done
 * only pushes and marks the queue; batch_end, after the backend's run of
 * completions, interrupts each marked queue once (if the driver asked).
 * Kicks: while a queue has requests in flight the device does not ask for
 * kicks (virtq_pop_held): each run of completions looks at the ring again
 * (look_again, on the device context), so a driver that adds requests
 * while others are served does not exit to tell us. Only a queue found
 * empty with nothing in flight is armed (virtq_arm). This needs a device
 * context to look from (cfg->ex) and a backend that batches; without them
 * every empty ring is armed at once, as before.
 * Durability: a write's status is pushed only after the backend reported it
 * done, and a FLUSH is completed only after the backend's flush, so every
 * write the guest saw complete before issuing a FLUSH is on stable storage
 * when the FLUSH completes. */
#include "devices/virtio_blk.h"

#include "core/errmsg.h"
#include "core/policy.h"
#include "core/snap.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/exec.h"
#include "virtio/virtio_dev.h"

#define HDR_BYTES 16u

struct blk;

struct blk_queue;

struct blk_job {
	struct blk_io io; /* first: io_done gets &io */
	struct blk *b;
	struct blk_queue *bq;
	struct blk_job *next;
	struct virtq_chain chain;
	uint32_t data; /* bytes of data the status follows (reads) */
	/* Merging (device context until submitted): a read or write the
	 * next adjacent ones of the same queue turn were appended to carries
	 * them in `merged` (in order, linked by merged_next); `len` is this
	 * request's own bytes, `total` the whole run's. */
	uint64_t len, total;
	struct blk_job *merged, *merged_tail, *merged_next;
};

/* A merged request stays within one blk_io's iovec and this many bytes. */
#define MERGE_MAX (1u << 20)

struct blk {
	struct virtio_dev dev; /* first: the ops get &dev */
	struct blk_backend *be;
	uint64_t capacity; /* sectors */
	bool read_only;
	bool quiesced; /* device context only: no new chain is popped */
	char id[VIRTIO_BLK_ID_BYTES];
	uint8_t config[VIRTIO_BLK_CONFIG_LEN];
	/* A redirect's overlay path, copied out of the policy while deciding
	 * (device context only). */
	char overlay[VIRTIO_BLK_SPEC_MAX];

	unsigned nq;            /* request queues, 1..VIRTIO_MAX_QUEUES */
	struct blk_queue *qs;   /* [nq] */
	struct virtio_blk_stats st;
	/* Looking at unarmed queues again from a backend thread, or when a look
	 * could not run in place (look_again). NULL: every empty ring is armed. */
	struct exec ex;
	struct doorbell *look;
	bool draining; /* device context: inside the backend's drain */
};

struct blk_queue {
	unsigned q;
	pthread_mutex_t qlock; /* the virtq: pop, push, used */
	pthread_mutex_t lock;  /* free_jobs */
	struct blk_job *free_jobs;
	unsigned jobs_made;    /* jobs[0..jobs_made) have been handed out once */
	atomic_bool pending;   /* pushed, the interrupt decision not yet made */
	/* Requests taken and not yet completed, and whether the ring was left
	 * unarmed for them (a completion must look again). Set and read in
	 * opposite orders by serve_queue and batch_end (seq_cst), so one of
	 * the two always sees the other. */
	atomic_uint inflight;
	atomic_bool unarmed;
	struct blk_job *held;  /* device context: the read/write a turn may still grow */
	/* One job per queue entry: a driver that keeps the protocol can never
	 * have more chains outstanding than its ring has descriptors. */
	struct blk_job jobs[VIRTIO_BLK_QUEUE_MAX];
};

static struct blk *to_blk(struct virtio_dev *d)
{
	return (struct blk *)d;
}

/* ---- completion ---- */

static void count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* After pushes on bq, under its qlock: interrupts the driver if it asked. */
static void signal_locked(struct blk *b, struct blk_queue *bq)
{
	struct virtio_dev *d = &b->dev;

	if (virtq_should_notify(&d->vq[bq->q]) && d->raise) {
		count(&b->st.interrupts, 1);
		d->raise(d, (int)bq->q);
	}
}

/* Returns a chain to the driver. Safe from any thread. `later`: leave the
 * interrupt to the backend's batch_end. */
static void complete(struct blk *b, struct blk_queue *bq, uint16_t head, uint32_t written, bool later)
{
	pthread_mutex_lock(&bq->qlock);
	virtq_push(&b->dev.vq[bq->q], head, written);
	count(&b->st.completions, 1);
	if (later)
		atomic_store_explicit(&bq->pending, true, memory_order_relaxed);
	else
		signal_locked(b, bq);
	pthread_mutex_unlock(&bq->qlock);
}

static void look_again(struct blk *b, struct blk_queue *bq);

/* The backend's end of a run of completions: one interrupt decision per
 * queue that had any, then a look at each unarmed queue's ring, in place on
 * the device context (outside a drain), else through the doorbell. */
static void batch_end(void *ctx, bool on_device)
{
	struct blk *b = ctx;
	bool ring = false;

	count(&b->st.batches, 1);
	for (unsigned i = 0; i < b->nq; i++) {
		struct blk_queue *bq = &b->qs[i];
		if (!atomic_exchange_explicit(&bq->pending, false, memory_order_relaxed))
			continue;
		pthread_mutex_lock(&bq->qlock);
		signal_locked(b, bq);
		pthread_mutex_unlock(&bq->qlock);
	}
	for (unsigned i = 0; i < b->nq; i++) {
		struct blk_queue *bq = &b->qs[i];
		if (!atomic_load(&bq->unarmed))
			continue;
		if (on_device && !b->draining) {
			look_again(b, bq);
		} else {
			ring = true;
			break; /* the doorbell looks at every queue */
		}
	}
	if (ring)
		b->ex.ops->doorbell_ring(b->ex.ctx, b->look);
}

static void use_backend(struct blk *b, struct blk_backend *be)
{
	b->be = be;
	be->batch_end = batch_end;
	be->batch_ctx = b;
}

/* Writes the status byte (the last writable byte) and returns the used
 * length: `data` bytes of data plus the status, or 0 with no status byte. */
static uint32_t set_status(const struct virtq_chain *c, bool has_status, uint8_t status,
			   uint32_t data)
{
	if (!has_status)
		return 0;
	virtq_chain_write(c, c->in_len - 1, &status, 1);
	return data + 1;
}

/* ---- one request ---- */

static void put_job(struct blk_queue *bq, struct blk_job *j)
{
	pthread_mutex_lock(&bq->lock);
	j->next = bq->free_jobs;
	bq->free_jobs = j;
	pthread_mutex_unlock(&bq->lock);
}

/* One request's end: its status, the job back, the chain to the driver. */
static void finish(struct blk *b, struct blk_job *j, int result)
{
	uint32_t written;

	if (result < 0) {
		dev_request_error(&b->dev.gate);
		written = set_status(&j->chain, true, VIRTIO_BLK_S_IOERR, 0);
	} else {
		written = set_status(&j->chain, true, VIRTIO_BLK_S_OK, j->data);
	}
	uint16_t head = j->chain.head;
	struct blk_queue *bq = j->bq;
	/* Marked while the job still holds its chain (a reset drains every
	 * request before the queue changes, so no lock is needed). */
	virtq_mark_written(&b->dev.vq[bq->q], &j->chain);
	/* The job goes back before the push: then jobs in use never exceed
	 * chains outstanding in the virtq (see queue_notify). */
	put_job(bq, j);
	atomic_fetch_sub(&bq->inflight, 1);
	complete(b, bq, head, written, b->be && b->be->batches);
}

/* j's iovec over its own request alone, as serve() made it. */
static void own_iov(struct blk_job *j)
{
	bool write = j->io.op == BLK_WRITE;
	j->io.n = virtq_chain_iov(&j->chain, !write, write ? HDR_BYTES : 0, j->len, j->io.iov);
	j->merged = j->merged_tail = j->merged_next = NULL;
	j->total = j->len;
}

/* A merged run failed: each of its requests goes again on its own, so the
 * guest sees an error for exactly those that fail (a bad range, a full
 * disk), not for their neighbours. From done(): the backend takes submits
 * there (devices/blk_backend.h). */
static void retry_apart(struct blk *b, struct blk_job *j)
{
	count(&b->st.retried, 1);
	for (struct blk_job *x = j, *next; x; x = next) {
		next = x == j ? j->merged : x->merged_next;
		own_iov(x);
		b->be->ops->submit(b->be, &x->io);
	}
	if (b->be->ops->unplug)
		b->be->ops->unplug(b->be);
}

/* The backend finished j's I/O (on one of its threads, or on the device
 * context for a ring reaped there): j and every request merged into it. */
static void io_done(struct blk_io *io, int result)
{
	struct blk_job *j = (struct blk_job *)io;
	struct blk *b = j->b;
	struct blk_job *f = j->merged;

	if (result < 0 && f) {
		retry_apart(b, j);
		return;
	}
	/* Read the links before each job goes back: it may be reused at once. */
	finish(b, j, result);
	while (f) {
		struct blk_job *next = f->merged_next;
		finish(b, f, result);
		f = next;
	}
}

/* A job never used yet, under bq->lock: jobs are set up as the queue first
 * needs them, so a device only touches the memory of the requests it has
 * had in flight at once (not all 1024 jobs, 2.6 MiB, at creation). */
static struct blk_job *new_job(struct blk *b, struct blk_queue *bq)
{
	struct blk_job *j = &bq->jobs[bq->jobs_made++];
	j->b = b;
	j->bq = bq;
	j->io.done = io_done;
	return j;
}

/* The turn's held request goes to the backend. */
static void submit_held(struct blk *b, struct blk_queue *bq)
{
	struct blk_job *h = bq->held;

	bq->held = NULL;
	if (h)
		b->be->ops->submit(b->be, &h->io);
}

/* A read or write, ready: appended to the held one when it continues it
 * (same direction, the next byte, room in one iovec, neither redirected),
 * else held itself after the held one is submitted. Sequential requests
 * popped in one turn then go to the host as one. */
static void hold(struct blk *b, struct blk_job *j)
{
	struct blk_queue *bq = j->bq;
	struct blk_job *h = bq->held;

	if (h && h->io.op == j->io.op && !h->io.redirect && !j->io.redirect &&
	    h->io.off + h->total == j->io.off && h->io.n + j->io.n <= VIRTQ_MAX_CHAIN &&
	    h->total + j->len <= MERGE_MAX) {
		memcpy(&h->io.iov[h->io.n], j->io.iov, j->io.n * sizeof(j->io.iov[0]));
		h->io.n += j->io.n;
		h->total += j->len;
		if (h->merged_tail)
			h->merged_tail->merged_next = j;
		else
			h->merged = j;
		h->merged_tail = j;
		count(&b->st.merged, 1);
		return;
	}
	submit_held(b, bq);
	bq->held = j;
}

/* Decodes and gates one well-formed chain. Either completes it here and
 * returns the used length, or submits its I/O (io_done completes it) and
 * returns -1. */
static long serve(struct blk *b, struct blk_job *j)
{
	const struct dev_gate *g = &b->dev.gate;
	const struct virtq_chain *c = &j->chain;
	/* Status: the last byte of the last buffer, which must be writable. */
	bool has_status = c->n > 0 && c->buf[c->n - 1].device_writes && c->in_len >= 1;
	uint8_t hdr[HDR_BYTES];

	if (!has_status || c->out_len < HDR_BYTES ||
	    virtq_chain_read(c, 0, hdr, HDR_BYTES) != HDR_BYTES) {
		dev_request_error(g);
		return set_status(c, has_status, VIRTIO_BLK_S_IOERR, 0);
	}
	uint32_t type = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
			(uint32_t)hdr[3] << 24;
	uint64_t sector = 0;
	for (int i = 7; i >= 0; i--)
		sector = sector << 8 | hdr[8 + i];
	uint64_t out_data = c->out_len - HDR_BYTES; /* readable bytes after the header */
	uint64_t in_data = c->in_len - 1;           /* writable bytes before the status */

	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT: {
		bool write = type == VIRTIO_BLK_T_OUT;
		/* IN: all data device-writable; OUT: all data device-readable. */
		uint64_t len = write ? out_data : in_data;
		uint64_t wrong_way = write ? in_data : out_data;
		uint64_t nsec = len / VIRTIO_BLK_SECTOR;
		if (wrong_way != 0 || len % VIRTIO_BLK_SECTOR != 0 || sector > b->capacity ||
		    nsec > b->capacity - sector) {
			dev_request_error(g);
			return set_status(c, true, VIRTIO_BLK_S_IOERR, 0);
		}
		int v = dev_request_disk(g, write ? REQ_WRITE : REQ_READ, sector, nsec, len, NULL, b->overlay,
					 sizeof(b->overlay));
		if (v == POLICY_DENY)
			return set_status(c, true, VIRTIO_BLK_S_IOERR, 0);
		/* A redirected read is an ordinary one: every read sees the
		 * overlay's blocks once there are any. */
		bool redirect = v == POLICY_REDIRECT && write;
		if (redirect && (!b->overlay[0] || !b->be->ops->overlay ||
				 b->be->ops->overlay(b->be, b->overlay) < 0)) {
			dev_request_error(g);
			return set_status(c, true, VIRTIO_BLK_S_IOERR, 0);
		}
		if (len == 0)
			return set_status(c, true, VIRTIO_BLK_S_OK, 0);
		j->io.redirect = redirect;
		j->io.op = write ? BLK_WRITE : BLK_READ;
		j->io.off = sector * VIRTIO_BLK_SECTOR;
		j->len = len;
		own_iov(j);
		j->data = write ? 0 : (uint32_t)len;
		hold(b, j);
		return -1;
	}
	case VIRTIO_BLK_T_FLUSH:
		/* A flush names no sectors: only rules without `sectors` match
		 * it (asked at the last sector no drive has), so a sector-range
		 * deny does not fail every flush of the disk. */
		if (dev_request_disk(g, REQ_FLUSH, UINT64_MAX, 0, 0, NULL, NULL, 0) == POLICY_DENY)
			return set_status(c, true, VIRTIO_BLK_S_IOERR, 0);
		submit_held(b, j->bq);
		j->io.redirect = false;
		j->io.op = BLK_FLUSH;
		j->io.off = 0;
		j->io.n = 0;
		j->data = 0;
		b->be->ops->submit(b->be, &j->io);
		return -1;
	case VIRTIO_BLK_T_GET_ID: {
		uint64_t n = in_data < VIRTIO_BLK_ID_BYTES ? in_data : VIRTIO_BLK_ID_BYTES;
		if (!dev_request(g, REQ_OTHER, n))
			return set_status(c, true, VIRTIO_BLK_S_IOERR, 0);
		size_t w = virtq_chain_write(c, 0, b->id, (size_t)n);
		return set_status(c, true, VIRTIO_BLK_S_OK, (uint32_t)w);
	}
	default:
		dev_request_error(g);
		return set_status(c, true, VIRTIO_BLK_S_UNSUPP, 0);
	}
}

/* ---- virtio_dev ops ---- */

/* The ring was found empty. Requests in flight will look at it again
 * when they complete; with none, the driver is asked to kick. True when
 * entries came in meanwhile: take them now, no kick will come for them. */
static bool leave_or_arm(struct blk_queue *bq, struct virtq *vq)
{
	atomic_store(&bq->unarmed, true);
	if (atomic_load(&bq->inflight) > 0)
		return false;
	atomic_store(&bq->unarmed, false);
	pthread_mutex_lock(&bq->qlock);
	bool more = virtq_arm(vq);
	pthread_mutex_unlock(&bq->qlock);
	return more;
}

/* Takes every chain queue q has (or its turn's budget of them). */
static void serve_queue(struct blk *b, struct blk_queue *bq)
{
	struct virtio_dev *d = &b->dev;
	struct virtq *vq = &d->vq[bq->q];
	bool may_leave = b->look && b->be && b->be->batches;

	for (;;) {
		/* No backend: a PATCH /drives could not reopen any image. */
		if (!virtio_dev_live(d) || b->quiesced || !b->be)
			return;
		pthread_mutex_lock(&bq->lock);
		struct blk_job *j = bq->free_jobs;
		if (j)
			bq->free_jobs = j->next;
		else if (bq->jobs_made < VIRTIO_BLK_QUEUE_MAX)
			j = new_job(b, bq);
		pthread_mutex_unlock(&bq->lock);

		struct virtq_chain spare;
		struct virtq_chain *c = j ? &j->chain : &spare;
		pthread_mutex_lock(&bq->qlock);
		bool enabled = vq->desc != NULL;
		int r = !enabled ? 0 : may_leave ? virtq_pop_held(vq, c) : virtq_pop(vq, c);
		pthread_mutex_unlock(&bq->qlock);

		if (r != 1 && j)
			put_job(bq, j);
		if (r == 0) {
			/* Nothing more (or a kick on a queue not enabled, or the
			 * turn's budget spent: the transport calls again). */
			if (may_leave && enabled && !vq->budget_spent && leave_or_arm(bq, vq))
				continue;
			return;
		}
		if (r == -EBADMSG) {
			/* Consumed, with nothing a device may touch. */
			dev_request_error(&d->gate);
			complete(b, bq, c->head, 0, false);
			continue;
		}
		if (r < 0) {
			/* -EINVAL: the avail index ran away, the queue is broken. */
			virtio_dev_needs_reset(d);
			return;
		}
		if (!j) {
			/* Every job is in use, so the driver already had a full
			 * ring outstanding: this chain cannot exist in a driver
			 * that keeps the protocol. */
			virtio_dev_needs_reset(d);
			return;
		}
		count(&b->st.requests, 1);
		atomic_fetch_add(&bq->inflight, 1);
		long used = serve(b, j);
		if (used >= 0) {
			atomic_fetch_sub(&bq->inflight, 1);
			uint16_t head = c->head;
			virtq_mark_written(vq, c);
			put_job(bq, j);
			complete(b, bq, head, (uint32_t)used, false);
		}
	}
}

/* One turn of a queue: every chain it has, then the turn's requests go to
 * the host together. */
static void turn(struct blk *b, struct blk_queue *bq)
{
	serve_queue(b, bq);
	if (b->be) {
		submit_held(b, bq);
		if (b->be->ops->unplug)
			b->be->ops->unplug(b->be);
	}
}

/* An unarmed queue after completions: a turn of at most VIRTQ_BUDGET chains,
 * as a kick gets (virtio_pci), the rest through the doorbell. */
static void look_again(struct blk *b, struct blk_queue *bq)
{
	struct virtq *vq = &b->dev.vq[bq->q];

	atomic_store(&bq->unarmed, false);
	count(&b->st.looks, 1);
	virtq_budget(vq, VIRTQ_BUDGET);
	turn(b, bq);
	bool more = vq->budget_spent;
	virtq_budget(vq, 0);
	if (more) {
		atomic_store(&bq->unarmed, true);
		b->ex.ops->doorbell_ring(b->ex.ctx, b->look);
	}
}

/* The doorbell: a look at every queue left unarmed. */
static void on_look(void *arg)
{
	struct blk *b = arg;

	for (unsigned i = 0; i < b->nq; i++)
		if (atomic_load(&b->qs[i].unarmed))
			look_again(b, &b->qs[i]);
}

static void blk_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct blk *b = to_blk(d);

	/* A hostile queue index (the transport checks it too). */
	if (q >= b->nq)
		return;
	count(&b->st.notifies, 1);
	turn(b, &b->qs[q]);
}

/* The backend's drain and free take the ring's completions on this same
 * thread: batch_end must not start new requests from inside them. */
static void drain(struct blk *b)
{
	if (!b->be)
		return;
	b->draining = true;
	b->be->ops->drain(b->be);
	b->draining = false;
}

static void drop_backend(struct blk *b)
{
	if (!b->be)
		return;
	b->draining = true;
	b->be->ops->free(b->be); /* drains first */
	b->draining = false;
	b->be = NULL;
}

static int blk_activate(struct virtio_dev *d)
{
	(void)d;
	return 0; /* the backend runs from new() on */
}

static void blk_reset(struct virtio_dev *d)
{
	struct blk *b = to_blk(d);

	/* The requests in flight finish (they touch guest buffers); after
	 * that the backend has nothing of this queue. The core resets the
	 * virtqs themselves. */
	drain(b);
	for (unsigned i = 0; i < b->nq; i++)
		atomic_store(&b->qs[i].unarmed, false);
}

/* Stops popping chains and waits for the I/O in flight: when it returns
 * every chain the device took has been pushed. */
static void blk_quiesce(struct virtio_dev *d)
{
	struct blk *b = to_blk(d);

	b->quiesced = true;
	drain(b);
}

static void blk_resume(struct virtio_dev *d)
{
	struct blk *b = to_blk(d);

	b->quiesced = false;
	/* Kicks while quiesced were dropped: look at every queue once. */
	for (unsigned q = 0; q < b->nq; q++)
		if (d->vq[q].desc)
			blk_queue_notify(d, q);
}

static void blk_config_read(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len)
{
	struct blk *b = to_blk(d);

	memset(buf, 0, len);
	if (off >= sizeof(b->config))
		return;
	if (len > sizeof(b->config) - off)
		len = (uint32_t)(sizeof(b->config) - off);
	memcpy(buf, b->config + off, len);
}

/* Nothing is in flight once quiesced: what the guest saw is the disk's
 * size and whether it may write. The disk itself is the backend's file;
 * a restore over a disk of another size or mode is refused (the guest's
 * file systems were laid out on the other one). */
static int blk_save(struct virtio_dev *d, struct snap_writer *w)
{
	struct blk *b = to_blk(d);

	snap_put_u64(w, b->capacity);
	snap_put_bool(w, b->read_only);
	return 0;
}

static int blk_restore(struct virtio_dev *d, struct snap_reader *r)
{
	struct blk *b = to_blk(d);
	uint64_t capacity = snap_get_u64(r);
	bool ro = snap_get_bool(r);

	if (snap_error(r)[0])
		return -1;
	if (capacity != b->capacity)
		return snap_fail(r, "the disk had %llu sectors, this one has %llu", (unsigned long long)capacity,
				 (unsigned long long)b->capacity);
	if (ro != b->read_only)
		return snap_fail(r, "the disk was read-%s, this one is read-%s", ro ? "only" : "write",
				 b->read_only ? "only" : "write");
	return 0;
}

static const struct virtio_dev_ops blk_ops = {
	.save = blk_save,
	.restore = blk_restore,
	.queue_notify = blk_queue_notify,
	.activate = blk_activate,
	.reset = blk_reset,
	.quiesce = blk_quiesce,
	.resume = blk_resume,
	.config_read = blk_config_read,
	/* no config_write: nothing is writable (no VIRTIO_BLK_F_CONFIG_WCE) */
};

/* ---- setup ---- */

static void put_le(uint8_t *p, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void fill_config(struct blk *b)
{
	uint8_t *c = b->config;

	memset(c, 0, sizeof(b->config));
	put_le(c + 0, b->capacity, 8);             /* capacity */
	put_le(c + 12, VIRTIO_BLK_SEG_MAX, 4);     /* seg_max */
	put_le(c + 20, VIRTIO_BLK_SECTOR, 4);      /* blk_size */
	put_le(c + 34, b->nq, 2);                  /* num_queues (VIRTIO_BLK_F_MQ) */
}

int virtio_blk_parse(const char *spec, struct virtio_blk_config *cfg, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	if (!spec || !*spec) {
		errmsg(err, errlen, "disk: empty spec (want path=FILE[,ro][,id=NAME])");
		return -1;
	}
	size_t n = strlen(spec);
	if (n >= sizeof(cfg->buf)) {
		errmsg(err, errlen, "disk: spec longer than %u bytes", VIRTIO_BLK_SPEC_MAX - 1);
		return -1;
	}
	memcpy(cfg->buf, spec, n + 1);

	bool seen_ro = false, seen_direct = false;
	char *save = NULL;
	for (char *tok = cfg->buf; tok; tok = save) {
		save = strchr(tok, ',');
		if (save)
			*save++ = '\0';
		char *val = strchr(tok, '=');
		if (val)
			*val++ = '\0';
		if (strcmp(tok, "path") == 0 && val) {
			if (cfg->path) {
				errmsg(err, errlen, "disk: path given twice");
				return -1;
			}
			if (!*val) {
				errmsg(err, errlen, "disk: empty path");
				return -1;
			}
			cfg->path = val;
		} else if (strcmp(tok, "id") == 0 && val) {
			if (cfg->id) {
				errmsg(err, errlen, "disk: id given twice");
				return -1;
			}
			if (strlen(val) > VIRTIO_BLK_ID_BYTES) {
				errmsg(err, errlen, "disk: id '%s' longer than %u bytes", val,
				     VIRTIO_BLK_ID_BYTES);
				return -1;
			}
			cfg->id = val;
		} else if (strcmp(tok, "io") == 0 && val) {
			if (cfg->engine != BLK_ENGINE_DEFAULT) {
				errmsg(err, errlen, "disk: io given twice");
				return -1;
			}
			if (strcmp(val, "threads") == 0) {
				cfg->engine = BLK_ENGINE_THREADS;
			} else if (strcmp(val, "uring") == 0) {
				cfg->engine = BLK_ENGINE_URING;
			} else {
				errmsg(err, errlen, "disk: io '%s': expected threads or uring", val);
				return -1;
			}
		} else if (strcmp(tok, "cache") == 0 && val) {
			if (cfg->cache != BLK_CACHE_DEFAULT) {
				errmsg(err, errlen, "disk: cache given twice");
				return -1;
			}
			if (strcmp(val, "writeback") == 0) {
				cfg->cache = BLK_CACHE_WRITEBACK;
			} else if (strcmp(val, "unsafe") == 0) {
				cfg->cache = BLK_CACHE_UNSAFE;
			} else {
				errmsg(err, errlen, "disk: cache '%s': expected writeback or unsafe", val);
				return -1;
			}
		} else if (strcmp(tok, "direct") == 0 && val) {
			if (seen_direct) {
				errmsg(err, errlen, "disk: direct given twice");
				return -1;
			}
			seen_direct = true;
			if (strcmp(val, "on") == 0) {
				cfg->buffered = false;
			} else if (strcmp(val, "off") == 0) {
				cfg->buffered = true;
			} else {
				errmsg(err, errlen, "disk: direct '%s': expected on or off", val);
				return -1;
			}
		} else if (strcmp(tok, "ro") == 0 && !val) {
			if (seen_ro) {
				errmsg(err, errlen, "disk: ro given twice");
				return -1;
			}
			seen_ro = true;
			cfg->read_only = true;
		} else if (!*tok) {
			errmsg(err, errlen, "disk: empty option in '%s'", spec);
			return -1;
		} else if (strcmp(tok, "ro") == 0) {
			errmsg(err, errlen, "disk: 'ro' takes no value");
			return -1;
		} else if (strcmp(tok, "path") == 0 || strcmp(tok, "id") == 0 || strcmp(tok, "io") == 0 ||
			   strcmp(tok, "cache") == 0 || strcmp(tok, "direct") == 0) {
			errmsg(err, errlen, "disk: '%s' needs a value (%s=...)", tok, tok);
			return -1;
		} else {
			errmsg(err, errlen, "disk: unknown option '%s' (want path=FILE[,ro][,id=NAME][,io=threads|uring]"
			       "[,cache=writeback|unsafe][,direct=on|off])",
			     tok);
			return -1;
		}
	}
	if (!cfg->path) {
		errmsg(err, errlen, "disk: missing path=FILE");
		return -1;
	}
	return 0;
}

static void destroy(struct blk *b)
{
	drop_backend(b);
	if (b->look)
		b->ex.ops->doorbell_free(b->ex.ctx, b->look);
	for (unsigned i = 0; b->qs && i < b->nq; i++) {
		pthread_mutex_destroy(&b->qs[i].lock);
		pthread_mutex_destroy(&b->qs[i].qlock);
	}
	free(b->qs);
	free(b);
}

struct virtio_dev *virtio_blk_new_backend(struct blk_backend *be, const struct virtio_blk_config *cfg,
					  const struct gmem *mem, struct dev_gate gate, char *err,
					  size_t errlen)
{
	const char *path = cfg && cfg->path ? cfg->path : "";

	if (cfg && cfg->id && strlen(cfg->id) > VIRTIO_BLK_ID_BYTES) {
		errmsg(err, errlen, "disk: id longer than %u bytes", VIRTIO_BLK_ID_BYTES);
		be->ops->free(be);
		return NULL;
	}
	unsigned nq = cfg && cfg->queues ? cfg->queues : 1;
	if (nq > VIRTIO_MAX_QUEUES) {
		errmsg(err, errlen, "disk %s: %u queues, at most %u", path, nq, VIRTIO_MAX_QUEUES);
		be->ops->free(be);
		return NULL;
	}
	struct blk *b = calloc(1, sizeof(*b));
	/* calloc: the jobs' pages are only touched as the queues need them. */
	struct blk_queue *qs = b ? calloc(nq, sizeof(*qs)) : NULL;
	if (!qs) {
		errmsg(err, errlen, "disk %s: out of memory", path);
		free(b);
		be->ops->free(be);
		return NULL;
	}
	b->qs = qs;
	b->nq = nq;
	for (unsigned i = 0; i < nq; i++) {
		qs[i].q = i;
		pthread_mutex_init(&qs[i].qlock, NULL);
		pthread_mutex_init(&qs[i].lock, NULL);
	}
	use_backend(b, be);
	if (cfg && cfg->ex && cfg->ex->ops && cfg->ex->ops->doorbell_new) {
		b->ex = *cfg->ex;
		b->look = b->ex.ops->doorbell_new(b->ex.ctx, on_look, b); /* NULL: always armed */
	}
	b->read_only = be->read_only || (cfg && cfg->read_only) || gate.read_only;
	b->capacity = be->size / VIRTIO_BLK_SECTOR;

	/* GET_ID: the given id, else the file name, cut to 20 bytes (no NUL
	 * needed when all 20 are used). */
	const char *id = cfg ? cfg->id : NULL;
	if (!id) {
		const char *slash = strrchr(path, '/');
		id = slash ? slash + 1 : path;
	}
	size_t idlen = strlen(id);
	memcpy(b->id, id, idlen < VIRTIO_BLK_ID_BYTES ? idlen : VIRTIO_BLK_ID_BYTES);

	fill_config(b);

	struct virtio_dev *d = &b->dev;
	d->name = "virtio-blk";
	d->device_id = VIRTIO_ID_BLOCK;
	d->host_features = VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
			   VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE);
	if (b->read_only)
		d->host_features |= VIRTIO_BIT(VIRTIO_BLK_F_RO);
	if (nq > 1)
		d->host_features |= VIRTIO_BIT(VIRTIO_BLK_F_MQ);
	d->num_queues = nq;
	d->queue_max = VIRTIO_BLK_QUEUE_MAX;
	d->config_len = VIRTIO_BLK_CONFIG_LEN;
	d->ops = &blk_ops;
	d->priv = b;
	d->gate = gate;
	d->gate.read_only = b->read_only;
	d->mem = mem;
	return d;
}

void virtio_blk_free(struct virtio_dev *d)
{
	if (d)
		destroy(to_blk(d));
}

void virtio_blk_detach(struct virtio_dev *d)
{
	drop_backend(to_blk(d));
}

int virtio_blk_attach(struct virtio_dev *d, struct blk_backend *be, char *err, size_t errlen)
{
	struct blk *b = to_blk(d);

	/* A read-write drive stays one: the driver was told whether it may
	 * write (VIRTIO_BLK_F_RO) once, at feature negotiation. */
	if (be->read_only && !b->read_only) {
		be->ops->free(be);
		return errmsg(err, errlen, "the new image is read-only but the drive is read-write");
	}
	drop_backend(b);
	use_backend(b, be);
	b->capacity = be->size / VIRTIO_BLK_SECTOR;
	fill_config(b);
	/* The driver rereads the capacity on a configuration change. */
	if (d->raise && virtio_dev_live(d))
		d->raise(d, -1);
	return 0;
}

int virtio_blk_open_overlay(struct virtio_dev *d, const char *path, char *err, size_t errlen)
{
	struct blk *b = to_blk(d);

	if (!b->be || !b->be->ops->overlay_open)
		return errmsg(err, errlen, "drive %s: its backend cannot redirect writes", d->name);
	return b->be->ops->overlay_open(b->be, path, err, errlen);
}

uint64_t virtio_blk_capacity(const struct virtio_dev *d)
{
	return ((const struct blk *)d)->capacity;
}

void virtio_blk_get_stats(const struct virtio_dev *d, struct virtio_blk_stat_values *out)
{
	const struct blk *b = (const struct blk *)d;

	out->requests = atomic_load(&b->st.requests);
	out->completions = atomic_load(&b->st.completions);
	out->notifies = atomic_load(&b->st.notifies);
	out->interrupts = atomic_load(&b->st.interrupts);
	out->batches = atomic_load(&b->st.batches);
	out->merged = atomic_load(&b->st.merged);
	out->retried = atomic_load(&b->st.retried);
	out->looks = atomic_load(&b->st.looks);
}
