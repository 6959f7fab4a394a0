/* blk_uring — see blk_uring.h. The SQ is used under `lock` (submitters);
 * the CQ only by the completion thread, so it needs none. Each SQE's user
 * data is its blk_io; the stop NOP's is the ring itself. The SQ has
 * `depth` entries and the owner never has more I/Os in flight, so a free
 * SQE is always there once the previous ones were submitted, and the CQ
 * (twice that, liburing's default) cannot overflow. */
#define _GNU_SOURCE
#include "host/blk_uring.h"

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/errmsg.h"
#include "core/exec.h"
#include "host/exec_evloop.h"
#include "host/seccomp.h"

struct blk_uring {
	struct io_uring ring;
	pthread_mutex_t lock; /* the SQ */
	pthread_t thread;
	bool started;
	/* Bumped (release) before each submit, read (acquire) after each
	 * completion: the kernel orders the two through the rings, which
	 * thread sanitizers cannot see; this says the same in C. */
	atomic_uint submitted;
	void (*retire)(void *ctx, unsigned n);
	void *ctx;
	/* Completions on the device context (the event thread, which is also
	 * the submitter): the ring signals db's eventfd when it posts a CQE.
	 * NULL: the completion thread reaps. */
	struct exec ex;
	struct doorbell *db;
	pthread_mutex_t cq_lock; /* the CQ, when reaped on the device context */
};

static size_t io_bytes(const struct blk_io *io)
{
	size_t n = 0;
	for (unsigned i = 0; i < io->n; i++)
		n += io->iov[i].iov_len;
	return n;
}

static int result_of(const struct blk_io *io, int res)
{
	if (res < 0)
		return res;
	if (io->op == BLK_FLUSH)
		return 0;
	/* A short transfer (the file shrank, a device error part-way) fails
	 * the whole request: the guest sees IOERR for exactly this one. */
	return (size_t)res == io_bytes(io) ? 0 : -EIO;
}

/* CQEs taken per peek. */
#define REAP_BATCH 64

/* Completes what the CQ holds now (up to REAP_BATCH), without retiring
 * them. Returns how many CQEs it took, adds the I/Os among them to *ios;
 * *stop when one was the stop NOP. One consumer at a time. */
static unsigned reap(struct blk_uring *u, bool *stop, unsigned *ios)
{
	(void)atomic_load_explicit(&u->submitted, memory_order_acquire);
	struct io_uring_cqe *cqes[REAP_BATCH];
	unsigned n = io_uring_peek_batch_cqe(&u->ring, cqes, REAP_BATCH);
	for (unsigned i = 0; i < n; i++) {
		void *data = io_uring_cqe_get_data(cqes[i]);
		if (data == u) {
			*stop = true; /* the stop NOP: every I/O before it has retired */
			continue;
		}
		struct blk_io *io = data;
		io->done(io, result_of(io, cqes[i]->res));
		(*ios)++;
	}
	io_uring_cq_advance(&u->ring, n);
	return n;
}

/* Takes every completion there is by now, then retires them together, so
 * the device makes one interrupt decision for the whole run: the CQ is
 * emptied, then the completions the kernel finished meanwhile but has not
 * posted yet (task work pending on this thread) are flushed into it, and
 * it is emptied again, until a flush brings nothing new. Returns the CQEs
 * taken. One consumer at a time. */
static unsigned reap_all(struct blk_uring *u, bool *stop)
{
	unsigned n = 0, ios = 0, got;

	for (;;) {
		while ((got = reap(u, stop, &ios)) > 0)
			n += got;
		if (*stop || !u->db)
			break;
		/* Only the submitter's thread runs its task work: the device
		 * context, which reaps when u->db is set. */
		io_uring_get_events(&u->ring);
		if (!io_uring_cq_ready(&u->ring))
			break;
	}
	if (ios)
		u->retire(u->ctx, ios);
	return n;
}

static void *reaper(void *arg)
{
	struct blk_uring *u = arg;
	bool stop = false;

	seccomp_enter(SC_BLK);
	while (!stop) {
		struct io_uring_cqe *cqe;
		int r = io_uring_wait_cqe(&u->ring, &cqe);
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r < 0)
			break; /* the ring is broken: nothing more can complete */
		reap_all(u, &stop);
	}
	return NULL;
}

/* reap_all on the device context, against a drain's blk_uring_poll. */
static unsigned reap_locked(struct blk_uring *u)
{
	bool stop = false;

	pthread_mutex_lock(&u->cq_lock);
	unsigned n = reap_all(u, &stop);
	pthread_mutex_unlock(&u->cq_lock);
	return n;
}

unsigned blk_uring_poll(struct blk_uring *u)
{
	if (!u->db)
		return 0; /* the completion thread reaps */
	return reap_locked(u);
}

/* The ring posted CQEs (its eventfd, on the device context): the kernel
 * ran their completion work on this same thread, the submitter, so taking
 * them here costs no other thread a wake-up. */
static void on_cq(void *arg)
{
	reap_locked(arg);
	blk_uring_unplug(arg); /* what a full CQ kept back goes now */
}

bool blk_uring_on_exec(const struct blk_uring *u)
{
	return u->db != NULL;
}

/* Only what the backend needs may ever run through the ring. */
static int restrict_ring(struct io_uring *ring)
{
	static const unsigned char ops[] = { IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC,
					     IORING_OP_NOP };
	struct io_uring_restriction res[sizeof(ops)];

	memset(res, 0, sizeof(res));
	for (size_t i = 0; i < sizeof(ops); i++) {
		res[i].opcode = IORING_RESTRICTION_SQE_OP;
		res[i].sqe_op = ops[i];
	}
	/* The raw call: Debian's liburing 2.3 does not export its wrappers. */
	if (syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_RESTRICTIONS, res,
		    (unsigned)sizeof(ops)) < 0 ||
	    syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
		return -errno;
	return 0;
}

/* The CQ's eventfd as a doorbell of ex (before the ring is restricted:
 * registrations are refused after). false: the completion thread it is. */
static bool reap_on_exec(struct blk_uring *u, const struct exec *ex)
{
	if (!ex || !ex->ops || !ex->ops->doorbell_new)
		return false;
	struct doorbell *db = ex->ops->doorbell_new(ex->ctx, on_cq, u);
	if (!db)
		return false;
	if (io_uring_register_eventfd(&u->ring, evloop_doorbell_fd(db)) < 0) {
		ex->ops->doorbell_free(ex->ctx, db);
		return false;
	}
	u->ex = *ex;
	u->db = db;
	return true;
}

struct blk_uring *blk_uring_new(unsigned depth, void (*retire)(void *ctx, unsigned n), void *ctx,
				const struct exec *ex, char *err, size_t errlen)
{
	struct blk_uring *u = calloc(1, sizeof(*u));

	if (!u) {
		errmsg(err, errlen, "io_uring: out of memory");
		return NULL;
	}
	u->retire = retire;
	u->ctx = ctx;
	int r = io_uring_queue_init(depth, &u->ring, IORING_SETUP_R_DISABLED);
	if (r < 0) {
		errmsg(err, errlen, "io_uring: cannot set up a ring: %s", strerror(-r));
		free(u);
		return NULL;
	}
	pthread_mutex_init(&u->lock, NULL);
	pthread_mutex_init(&u->cq_lock, NULL);
	bool on_exec = reap_on_exec(u, ex);
	r = restrict_ring(&u->ring);
	if (r < 0) {
		errmsg(err, errlen, "io_uring: cannot restrict the ring: %s", strerror(-r));
		blk_uring_free(u);
		return NULL;
	}
	if (on_exec)
		return u;
	r = pthread_create(&u->thread, NULL, reaper, u);
	if (r) {
		errmsg(err, errlen, "io_uring: cannot start the completion thread: %s", strerror(r));
		blk_uring_free(u);
		return NULL;
	}
	u->started = true;
	return u;
}

static void push(struct blk_uring *u);

/* An SQE, submitting what is queued first if the SQ is full. Under lock. */
static struct io_uring_sqe *get_sqe(struct blk_uring *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	if (!sqe) {
		push(u);
		sqe = io_uring_get_sqe(&u->ring);
	}
	return sqe;
}

/* Hands the SQ to the kernel. An SQE it did not take now (a short count,
 * EINTR, EAGAIN: no memory for a moment, EBUSY: completions to reap first)
 * stays in the ring (io_uring_sq_ready counts it), so the next unplug, the
 * next completion taken (on_cq) or a drain's next look hands it over;
 * counted as gone, it would wait for an unrelated request, and a drain for
 * it forever. */
static void push(struct blk_uring *u)
{
	for (int tries = 0; tries < 8; tries++) {
		int r = io_uring_submit(&u->ring);
		if (r >= 0 || (r != -EINTR && r != -EAGAIN))
			break;
	}
}

/* Prepares io's SQE; under lock. */
static int prep(struct blk_uring *u, int fd, struct blk_io *io)
{
	struct io_uring_sqe *sqe = get_sqe(u);
	if (!sqe)
		return -EBUSY;
	switch (io->op) {
	case BLK_READ:
		io_uring_prep_readv(sqe, fd, io->iov, io->n, io->off);
		break;
	case BLK_WRITE:
		io_uring_prep_writev(sqe, fd, io->iov, io->n, io->off);
		break;
	case BLK_FLUSH:
		/* Full fsync, not IORING_FSYNC_DATASYNC: images are often
		 * sparse, and a write into a hole changes metadata too. The
		 * device only sends it after the writes the guest saw complete,
		 * and fsync covers every write that completed before it. */
		io_uring_prep_fsync(sqe, fd, 0);
		break;
	}
	io_uring_sqe_set_data(sqe, io);
	atomic_fetch_add_explicit(&u->submitted, 1, memory_order_release);
	return 0;
}

int blk_uring_submit(struct blk_uring *u, int fd, struct blk_io *io)
{
	pthread_mutex_lock(&u->lock);
	int r = prep(u, fd, io);
	if (r == 0)
		push(u);
	pthread_mutex_unlock(&u->lock);
	return r;
}

int blk_uring_queue(struct blk_uring *u, int fd, struct blk_io *io)
{
	pthread_mutex_lock(&u->lock);
	int r = prep(u, fd, io);
	pthread_mutex_unlock(&u->lock);
	return r;
}

void blk_uring_unplug(struct blk_uring *u)
{
	pthread_mutex_lock(&u->lock);
	if (io_uring_sq_ready(&u->ring))
		push(u);
	pthread_mutex_unlock(&u->lock);
}

void blk_uring_free(struct blk_uring *u)
{
	if (!u)
		return;
	if (u->started) {
		/* Drained: the SQ is empty, so the first try gets an SQE. */
		struct io_uring_sqe *sqe;
		pthread_mutex_lock(&u->lock);
		while (!(sqe = get_sqe(u)))
			;
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data(sqe, u);
		atomic_fetch_add_explicit(&u->submitted, 1, memory_order_release);
		push(u);
		pthread_mutex_unlock(&u->lock);
		pthread_join(u->thread, NULL);
	}
	if (u->db)
		u->ex.ops->doorbell_free(u->ex.ctx, u->db);
	io_uring_queue_exit(&u->ring);
	pthread_mutex_destroy(&u->lock);
	pthread_mutex_destroy(&u->cq_lock);
	free(u);
}
