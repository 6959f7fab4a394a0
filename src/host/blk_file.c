/* blk_file — see blk_file.h. The workers take I/Os from one FIFO under
 * `lock`; `inflight` counts I/Os submitted and whose done() has not yet
 * returned, so drain() (and free) know when the guest's buffers are no
 * longer touched; it counts the ring's I/Os too (they retire through
 * ring_retire). Durability: done() for a write comes only after pwritev
 * (or the ring's writev) returned, for a flush only after fsync of the
 * image — a full fsync, not fdatasync: images are usually sparse, and
 * filling a hole changes the file's metadata. With cache UNSAFE a flush
 * is acknowledged without one (Firecracker's cache_type "Unsafe").
 * Batches: the ring's completions are retired a run at a time and each
 * worker's one at a time, the device's batch_end first (one interrupt per
 * queue and run); submits only queue SQEs, and unplug (the device's, at the
 * end of a queue's turn) hands them to the kernel in one call.
 * The overlay: once one exists every write goes through it (its lock), and
 * `bypass` counts the I/Os still in flight that were started without it (a
 * worker's write, or anything on the ring, decided under `lock` while `ov`
 * was NULL). A write through the overlay first waits for that count to
 * reach 0: a redirected write that copies a base block in must not read it
 * before a direct write to another part of the block has landed, or that
 * write would land under the overlay's copy and be lost to every read. */
#define _GNU_SOURCE
#include "host/blk_file.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/errmsg.h"
#include "host/blk_overlay.h"
#include "host/blk_uring.h"
#include "host/seccomp.h"
#include "vmm/log.h"

struct blk_file {
	struct blk_backend be; /* first: the ops get &be */
	int fd;
	bool base_ro; /* the image opened read-only under a whole-drive overlay */
	bool flush_noop; /* cache UNSAFE */
	/* The io_uring engine: the ring (NULL: threads only), the fd it uses
	 * (fd itself, or a second open of the image with O_DIRECT) and the
	 * alignment that fd needs of offsets, buffers and lengths (1: none). */
	struct blk_uring *ur;
	_Atomic uint64_t ring_ios;
	int dfd;
	unsigned align;
	/* The disk policy's copy-on-write overlay, once a redirect named one
	 * (set on the device context, read by the workers). */
	_Atomic(struct blk_overlay *) ov;
	pthread_mutex_t lock; /* everything below */
	pthread_cond_t work;  /* an I/O was queued, or stop */
	pthread_cond_t idle;  /* inflight dropped to 0 */
	pthread_cond_t bypass_idle; /* bypass dropped to 0 */
	struct blk_io *head, *tail;
	unsigned inflight;
	unsigned bypass; /* in flight without the overlay (see the top) */
	bool stop;
	unsigned nthreads;
	pthread_t threads[VIRTIO_BLK_WORKERS];
};

#define BLK_RW_MAX 0x7ffff000u /* the kernel's MAX_RW_COUNT on 4 KiB pages */

static struct blk_file *to_file(struct blk_backend *be)
{
	return (struct blk_file *)be;
}

/* The whole transfer, or -errno (EIO for a short read at the end of a file
 * that shrank under us). */
int blk_rw_full(int fd, struct iovec *iov, unsigned n, off_t off, bool write)
{
	while (n > 0) {
		ssize_t r = write ? pwritev(fd, iov, (int)n, off) : preadv(fd, iov, (int)n, off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		off += r;
		size_t done = (size_t)r;
		while (n > 0 && done >= iov->iov_len) {
			done -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + done;
			iov->iov_len -= done;
		}
	}
	return 0;
}

static int do_io(struct blk_file *f, struct blk_overlay *ov, struct blk_io *io)
{
	switch (io->op) {
	case BLK_READ:
	case BLK_WRITE:
		if (ovl_wanted(ov, io))
			return ovl_io(ov, f->fd, io);
		if (io->redirect)
			return -EIO; /* redirected, and no overlay named */
		return blk_rw_full(f->fd, io->iov, io->n, (off_t)io->off, io->op == BLK_WRITE);
	case BLK_FLUSH: {
		if (f->flush_noop)
			return 0;
		int r = ovl_flush(ov);
		if (r < 0)
			return r;
		/* Nothing was ever written through a read-only image. */
		return f->flush_noop || f->be.read_only || f->base_ro || fsync(f->fd) == 0 ? 0 : -errno;
	}
	}
	return -EINVAL;
}

static void *worker(void *arg)
{
	struct blk_file *f = arg;

	seccomp_enter(SC_BLK);
	pthread_mutex_lock(&f->lock);
	for (;;) {
		while (!f->head && !f->stop)
			pthread_cond_wait(&f->work, &f->lock);
		if (!f->head)
			break; /* stop, and nothing left to serve */
		struct blk_io *io = f->head;
		f->head = io->next;
		if (!f->head)
			f->tail = NULL;
		/* Decided under the lock, where file_submit counts the ring's. */
		struct blk_overlay *ov = atomic_load_explicit(&f->ov, memory_order_acquire);
		bool bypass = io->op == BLK_WRITE && !ov && !io->redirect;
		if (bypass)
			f->bypass++;
		else if (io->op == BLK_WRITE)
			while (f->bypass > 0)
				pthread_cond_wait(&f->bypass_idle, &f->lock);
		pthread_mutex_unlock(&f->lock);

		int r = do_io(f, ov, io);
		if (bypass) {
			/* Before done(): a drain that returns has seen it. */
			pthread_mutex_lock(&f->lock);
			if (--f->bypass == 0)
				pthread_cond_broadcast(&f->bypass_idle);
			pthread_mutex_unlock(&f->lock);
		}
		io->done(io, r);
		/* One I/O is a whole batch here: a worker may block in the
		 * next one for long (a flush), and this one's interrupt must
		 * not wait for it. */
		if (f->be.batch_end)
			f->be.batch_end(f->be.batch_ctx, false);

		pthread_mutex_lock(&f->lock);
		if (--f->inflight == 0)
			pthread_cond_broadcast(&f->idle);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/* Whether the ring can carry io as it is: a plain read or write (or the
 * flush of an image written only directly), aligned for the ring's fd. */
static bool ring_takes(struct blk_file *f, const struct blk_io *io)
{
	struct blk_overlay *ov = atomic_load_explicit(&f->ov, memory_order_acquire);

	if (!f->ur || ov || io->redirect)
		return false;
	if (io->op == BLK_FLUSH)
		return !f->flush_noop && !f->be.read_only && !f->base_ro;
	uint64_t mask = f->align - 1, bytes = 0;
	if (io->off & mask)
		return false;
	for (unsigned i = 0; i < io->n; i++) {
		if (((uintptr_t)io->iov[i].iov_base | io->iov[i].iov_len) & mask)
			return false;
		bytes += io->iov[i].iov_len;
	}
	/* One readv/writev moves at most MAX_RW_COUNT; the ring takes a short
	 * transfer as a failure, the workers go on where it stopped. */
	return bytes <= BLK_RW_MAX;
}

/* After a run of the ring's done()s: the device's end of batch comes
 * before the I/Os count as retired, so a drain that returns has seen it. */
static void ring_retire(void *ctx, unsigned n)
{
	struct blk_file *f = ctx;

	if (f->be.batch_end)
		f->be.batch_end(f->be.batch_ctx, blk_uring_on_exec(f->ur));
	pthread_mutex_lock(&f->lock);
	f->inflight -= n;
	if (f->inflight == 0)
		pthread_cond_broadcast(&f->idle);
	f->bypass -= n;
	if (f->bypass == 0)
		pthread_cond_broadcast(&f->bypass_idle);
	pthread_mutex_unlock(&f->lock);
}

static void file_submit(struct blk_backend *be, struct blk_io *io)
{
	struct blk_file *f = to_file(be);

	pthread_mutex_lock(&f->lock);
	f->inflight++;
	if (ring_takes(f, io)) {
		f->bypass++;
		pthread_mutex_unlock(&f->lock);
		/* A FLUSH syncs fd: the same inode as dfd, so it covers every
		 * write either path completed before it. */
		if (blk_uring_queue(f->ur, io->op == BLK_FLUSH ? f->fd : f->dfd, io) == 0) {
			atomic_fetch_add_explicit(&f->ring_ios, 1, memory_order_relaxed);
			return;
		}
		pthread_mutex_lock(&f->lock); /* not queued: the workers serve it */
		if (--f->bypass == 0)
			pthread_cond_broadcast(&f->bypass_idle);
	}
	io->next = NULL;
	if (f->tail)
		f->tail->next = io;
	else
		f->head = io;
	f->tail = io;
	pthread_cond_signal(&f->work);
	pthread_mutex_unlock(&f->lock);
}

/* The ring's queued SQEs go to the kernel in one call. */
static void file_unplug(struct blk_backend *be)
{
	struct blk_file *f = to_file(be);

	if (f->ur)
		blk_uring_unplug(f->ur);
}

static void file_drain(struct blk_backend *be)
{
	struct blk_file *f = to_file(be);

	file_unplug(be);
	pthread_mutex_lock(&f->lock);
	while (f->inflight > 0) {
		if (!f->ur) {
			pthread_cond_wait(&f->idle, &f->lock);
			continue;
		}
		/* With a ring, every 200 µs: what the kernel did not take yet
		 * is handed over again, and a ring reaped on the device
		 * context has its completions taken here (drain runs on that
		 * context or with it paused; poll is 0 for a reaper thread's). */
		pthread_mutex_unlock(&f->lock);
		unsigned got = blk_uring_poll(f->ur);
		blk_uring_unplug(f->ur);
		pthread_mutex_lock(&f->lock);
		if (got || f->inflight == 0)
			continue;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&f->idle, &f->lock, &ts);
	}
	pthread_mutex_unlock(&f->lock);
}

static void file_free(struct blk_backend *be)
{
	struct blk_file *f = to_file(be);

	if (!be)
		return;
	/* Everything in flight first, the ring's too: a worker's write through
	 * the overlay waits for the ring's I/Os (bypass), which only a drain
	 * reaps once the event loop is gone, and a merged I/O that failed is
	 * submitted again, which needs the workers. */
	file_drain(be);
	pthread_mutex_lock(&f->lock);
	f->stop = true; /* the workers finish what is queued first */
	pthread_cond_broadcast(&f->work);
	pthread_mutex_unlock(&f->lock);
	for (unsigned i = 0; i < f->nthreads; i++)
		pthread_join(f->threads[i], NULL);
	blk_uring_free(f->ur);
	if (f->dfd >= 0 && f->dfd != f->fd)
		close(f->dfd);
	if (f->fd >= 0)
		close(f->fd);
	ovl_free(atomic_load(&f->ov));
	pthread_cond_destroy(&f->bypass_idle);
	pthread_cond_destroy(&f->idle);
	pthread_cond_destroy(&f->work);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* The overlay object is made on the first name (its bitmap costs a bit per
 * 4 KiB of image, so drives without a redirect never pay for it). The
 * event thread (a redirected write) and the control thread (a policy
 * swapped in) may both make it: the first one stored stays. */
static struct blk_overlay *file_ovl(struct blk_file *f)
{
	struct blk_overlay *ov = atomic_load_explicit(&f->ov, memory_order_acquire);

	if (!ov) {
		struct blk_overlay *fresh = ovl_new(f->be.size);
		if (!fresh)
			return NULL;
		if (atomic_compare_exchange_strong_explicit(&f->ov, &ov, fresh, memory_order_acq_rel,
							    memory_order_acquire))
			ov = fresh;
		else
			ovl_free(fresh);
	}
	return ov;
}

static int file_overlay(struct blk_backend *be, const char *path)
{
	struct blk_overlay *ov = file_ovl(to_file(be));

	return ov ? ovl_set_path(ov, path) : -ENOMEM;
}

static int file_overlay_open(struct blk_backend *be, const char *path, char *err, size_t errlen)
{
	struct blk_overlay *ov = file_ovl(to_file(be));

	if (!ov)
		return errmsg(err, errlen, "overlay %s: out of memory", path);
	return ovl_open_path(ov, path, err, errlen);
}

static const struct blk_backend_ops file_ops = {
	.submit = file_submit,
	.drain = file_drain,
	.overlay = file_overlay,
	.overlay_open = file_overlay_open,
	.free = file_free,
	.unplug = file_unplug,
};

/* Opens and checks the image; fills fd and size. 0 or -1 with err. */
static int open_image(struct blk_file *f, const char *path, char *err, size_t errlen)
{
	struct stat st;
	bool ro = f->be.read_only || f->base_ro;

	if (stat(path, &st) < 0) {
		errmsg(err, errlen, "disk %s: %s", path, strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		errmsg(err, errlen, "disk %s: is a directory, not a disk image", path);
		return -1;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		errmsg(err, errlen, "disk %s: not a regular file or block device", path);
		return -1;
	}
	f->fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (f->fd < 0) {
		errmsg(err, errlen, "disk %s: cannot open %s: %s", path, ro ? "read-only" : "read-write",
		       strerror(errno));
		return -1;
	}
	/* Two VMs writing one image corrupt it: writers exclusive, readers shared. */
	if (flock(f->fd, (ro ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		errmsg(err, errlen, "disk %s: in use by another process (%s)", path, strerror(errno));
		return -1;
	}
	off_t size = lseek(f->fd, 0, SEEK_END); /* works for block devices too */
	if (size < 0) {
		errmsg(err, errlen, "disk %s: cannot get size: %s", path, strerror(errno));
		return -1;
	}
	if (size == 0) {
		errmsg(err, errlen, "disk %s: image is empty", path);
		return -1;
	}
	if (size % VIRTIO_BLK_SECTOR != 0) {
		errmsg(err, errlen, "disk %s: size %lld is not a multiple of %u bytes", path, (long long)size,
		       VIRTIO_BLK_SECTOR);
		return -1;
	}
	f->be.size = (uint64_t)size;
	return 0;
}

/* The alignment O_DIRECT needs on dfd, found by reading the first sector
 * (and, if refused, the first 4 KiB) into an aligned buffer; 0 when not
 * even that works (the ring then uses the buffered fd). */
static unsigned probe_align(int dfd, uint64_t size)
{
	static const unsigned sizes[] = { VIRTIO_BLK_SECTOR, 4096 };
	void *buf = NULL;
	unsigned got = 0;

	if (posix_memalign(&buf, 4096, 4096) != 0)
		return 0;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && !got; i++)
		if (sizes[i] <= size && pread(dfd, buf, sizes[i], 0) == (ssize_t)sizes[i])
			got = sizes[i];
	free(buf);
	return got;
}

/* The io_uring engine on an opened image; false: the threads serve it all. */
static bool start_ring(struct blk_file *f, const char *path, const struct blk_file_opts *o)
{
	char why[256];

	/* Room for 256 requests per queue, the CQ for twice that; more at
	 * once (a 1024-entry ring of 4 KiB requests) wait in the SQ or, past
	 * the CQ, in the kernel's overflow list (IORING_FEAT_NODROP, which
	 * every kernel with ring restrictions has). */
	unsigned queues = o->queues ? o->queues : 1;
	f->ur = blk_uring_new(256u * queues, ring_retire, f, o->ex, why, sizeof(why));
	if (!f->ur) {
		if (o->engine == BLK_ENGINE_URING)
			VLOG_WARN("disk %s: %s; served by threads", path, why);
		else
			VLOG_DEBUG("disk %s: %s; served by threads", path, why);
		return false;
	}
	f->dfd = f->fd;
	f->align = 1;
	if (o->buffered)
		return true;
	bool ro = f->be.read_only || f->base_ro;
	int dfd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_DIRECT);
	unsigned a = dfd >= 0 ? probe_align(dfd, f->be.size) : 0;
	if (a) {
		f->dfd = dfd;
		f->align = a;
		return true;
	}
	VLOG_DEBUG("disk %s: no O_DIRECT here (%s); the ring goes through the page cache", path,
		   dfd < 0 ? strerror(errno) : "unaligned reads refused");
	if (dfd >= 0)
		close(dfd);
	return true;
}

struct blk_backend *blk_file_open_opts(const char *path, const struct blk_file_opts *o, char *err,
				       size_t errlen)
{
	struct blk_file *f = calloc(1, sizeof(*f));

	if (!f) {
		errmsg(err, errlen, "disk %s: out of memory", path);
		return NULL;
	}
	f->be = (struct blk_backend){ .ops = &file_ops, .read_only = o->read_only, .batches = true };
	f->fd = -1;
	f->dfd = -1;
	f->base_ro = o->overlay && o->base_ro;
	f->flush_noop = o->cache == BLK_CACHE_UNSAFE;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->work, NULL);
	pthread_cond_init(&f->idle, NULL);
	pthread_cond_init(&f->bypass_idle, NULL);
	if (open_image(f, path, err, errlen) < 0) {
		file_free(&f->be);
		return NULL;
	}
	/* An overlay named at build is opened now: the blocks an earlier run
	 * redirected must be read from it from the first request on. */
	if (o->overlay && file_overlay_open(&f->be, o->overlay, err, errlen) < 0) {
		file_free(&f->be);
		return NULL;
	}
	enum blk_engine engine = o->engine == BLK_ENGINE_DEFAULT ? BLK_FILE_ENGINE : o->engine;
	/* With a ring the workers only take what it cannot carry. */
	unsigned workers = engine == BLK_ENGINE_URING && start_ring(f, path, o) ? 2 : VIRTIO_BLK_WORKERS;
	for (unsigned i = 0; i < workers; i++) {
		int e = pthread_create(&f->threads[i], NULL, worker, f);
		if (e) {
			errmsg(err, errlen, "disk %s: cannot start worker thread: %s", path, strerror(e));
			file_free(&f->be);
			return NULL;
		}
		f->nthreads++;
	}
	return &f->be;
}

enum blk_engine blk_file_engine(const struct blk_backend *be, bool *direct)
{
	const struct blk_file *f = (const struct blk_file *)be;

	if (direct)
		*direct = f->ur && f->dfd != f->fd;
	return f->ur ? BLK_ENGINE_URING : BLK_ENGINE_THREADS;
}

uint64_t blk_file_ring_ios(const struct blk_backend *be)
{
	return atomic_load(&((struct blk_file *)be)->ring_ios);
}

struct blk_backend *blk_file_open_overlay(const char *path, bool read_only, const char *overlay, bool base_ro,
					  char *err, size_t errlen)
{
	struct blk_file_opts o = { .read_only = read_only, .overlay = overlay, .base_ro = base_ro };
	return blk_file_open_opts(path, &o, err, errlen);
}

struct blk_backend *blk_file_open(const char *path, bool read_only, char *err, size_t errlen)
{
	return blk_file_open_overlay(path, read_only, NULL, false, err, errlen);
}

struct virtio_dev *host_blk_new(const struct virtio_blk_config *cfg, const struct gmem *mem,
				struct dev_gate gate, char *err, size_t errlen)
{
	if (!cfg || !cfg->path || !*cfg->path) {
		errmsg(err, errlen, "disk: no path");
		return NULL;
	}
	struct blk_file_opts o = { .read_only = cfg->read_only || gate.read_only,
				   .overlay = cfg->overlay,
				   .base_ro = cfg->overlay_only,
				   .engine = cfg->engine,
				   .buffered = cfg->buffered,
				   .cache = cfg->cache,
				   .queues = cfg->queues,
				   .ex = cfg->ex };
	struct blk_backend *be = blk_file_open_opts(cfg->path, &o, err, errlen);
	if (!be)
		return NULL;
	return virtio_blk_new_backend(be, cfg, mem, gate, err, errlen);
}
