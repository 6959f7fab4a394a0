/* blk_file — see blk_file.h. The workers take I/Os from one FIFO under
 * `lock`; `inflight` counts I/Os submitted and whose done() has not yet
 * returned, so drain() (and free) know when the guest's buffers are no
 * longer touched. Durability: done() for a write comes only after pwritev
 * returned, for a flush only after fdatasync. */
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
#include <unistd.h>

#include "core/errmsg.h"
#include "host/blk_overlay.h"
#include "host/seccomp.h"

struct blk_file {
	struct blk_backend be; /* first: the ops get &be */
	int fd;
	bool base_ro; /* the image opened read-only under a whole-drive overlay */
	/* The disk policy's copy-on-write overlay, once a redirect named one
	 * (set on the device context, read by the workers). */
	_Atomic(struct blk_overlay *) ov;
	pthread_mutex_t lock; /* everything below */
	pthread_cond_t work;  /* an I/O was queued, or stop */
	pthread_cond_t idle;  /* inflight dropped to 0 */
	struct blk_io *head, *tail;
	unsigned inflight;
	bool stop;
	unsigned nthreads;
	pthread_t threads[VIRTIO_BLK_WORKERS];
};

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

static int do_io(struct blk_file *f, struct blk_io *io)
{
	struct blk_overlay *ov = atomic_load_explicit(&f->ov, memory_order_acquire);

	switch (io->op) {
	case BLK_READ:
	case BLK_WRITE:
		if (ovl_wanted(ov, io))
			return ovl_io(ov, f->fd, io);
		if (io->redirect)
			return -EIO; /* redirected, and no overlay named */
		return blk_rw_full(f->fd, io->iov, io->n, (off_t)io->off, io->op == BLK_WRITE);
	case BLK_FLUSH: {
		int r = ovl_flush(ov);
		if (r < 0)
			return r;
		/* Nothing was ever written through a read-only image. */
		return f->be.read_only || f->base_ro || fdatasync(f->fd) == 0 ? 0 : -errno;
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
		pthread_mutex_unlock(&f->lock);

		io->done(io, do_io(f, io));

		pthread_mutex_lock(&f->lock);
		if (--f->inflight == 0)
			pthread_cond_broadcast(&f->idle);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

static void file_submit(struct blk_backend *be, struct blk_io *io)
{
	struct blk_file *f = to_file(be);

	pthread_mutex_lock(&f->lock);
	f->inflight++;
	io->next = NULL;
	if (f->tail)
		f->tail->next = io;
	else
		f->head = io;
	f->tail = io;
	pthread_cond_signal(&f->work);
	pthread_mutex_unlock(&f->lock);
}

static void file_drain(struct blk_backend *be)
{
	struct blk_file *f = to_file(be);

	pthread_mutex_lock(&f->lock);
	while (f->inflight > 0)
		pthread_cond_wait(&f->idle, &f->lock);
	pthread_mutex_unlock(&f->lock);
}

static void file_free(struct blk_backend *be)
{
	struct blk_file *f = to_file(be);

	if (!be)
		return;
	pthread_mutex_lock(&f->lock);
	f->stop = true; /* the workers finish what is queued first */
	pthread_cond_broadcast(&f->work);
	pthread_mutex_unlock(&f->lock);
	for (unsigned i = 0; i < f->nthreads; i++)
		pthread_join(f->threads[i], NULL);
	if (f->fd >= 0)
		close(f->fd);
	ovl_free(atomic_load(&f->ov));
	pthread_cond_destroy(&f->idle);
	pthread_cond_destroy(&f->work);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* The overlay object is made on the first name (its bitmap costs a bit per
 * 4 KiB of image, so drives without a redirect never pay for it). */
static int file_overlay(struct blk_backend *be, const char *path)
{
	struct blk_file *f = to_file(be);
	struct blk_overlay *ov = atomic_load_explicit(&f->ov, memory_order_acquire);

	if (!ov) {
		ov = ovl_new(f->be.size);
		if (!ov)
			return -ENOMEM;
		atomic_store_explicit(&f->ov, ov, memory_order_release);
	}
	return ovl_set_path(ov, path);
}

static const struct blk_backend_ops file_ops = {
	.submit = file_submit,
	.drain = file_drain,
	.overlay = file_overlay,
	.free = file_free,
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

struct blk_backend *blk_file_open_overlay(const char *path, bool read_only, const char *overlay, bool base_ro,
					  char *err, size_t errlen)
{
	struct blk_file *f = calloc(1, sizeof(*f));

	if (!f) {
		errmsg(err, errlen, "disk %s: out of memory", path);
		return NULL;
	}
	f->be = (struct blk_backend){ .ops = &file_ops, .read_only = read_only };
	f->fd = -1;
	f->base_ro = overlay && base_ro;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->work, NULL);
	pthread_cond_init(&f->idle, NULL);
	if (open_image(f, path, err, errlen) < 0) {
		file_free(&f->be);
		return NULL;
	}
	/* An overlay named at build is opened now: the blocks an earlier run
	 * redirected must be read from it from the first request on. */
	if (overlay) {
		struct blk_overlay *ov = NULL;
		if (file_overlay(&f->be, overlay) < 0 || !(ov = atomic_load(&f->ov)) ||
		    ovl_open(ov, err, errlen) < 0) {
			if (!ov)
				errmsg(err, errlen, "disk %s: out of memory", path);
			file_free(&f->be);
			return NULL;
		}
	}
	for (unsigned i = 0; i < VIRTIO_BLK_WORKERS; i++) {
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
	struct blk_backend *be = blk_file_open_overlay(cfg->path, cfg->read_only || gate.read_only, cfg->overlay,
						       cfg->overlay_only, err, errlen);
	if (!be)
		return NULL;
	return virtio_blk_new_backend(be, cfg, mem, gate, err, errlen);
}
