/* blk_overlay — see blk_overlay.h. `held` mirrors the file's data extents,
 * one bit per block, so a read needs no syscall to split itself; it is
 * filled from SEEK_DATA/SEEK_HOLE when the file is opened and a bit is set
 * (release) only once the block's data is in the file. */
#define _GNU_SOURCE
#include "host/blk_overlay.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errmsg.h"

#define BS BLK_OVERLAY_BLOCK

struct blk_overlay {
	uint64_t size, nblocks;
	pthread_mutex_t lock; /* writes, opening, the path */
	char *path;
	_Atomic bool named; /* path is set (a redirected write asks each time) */
	int fd;          /* -1 until opened */
	bool failed;     /* opening failed: redirected writes fail, reported once */
	_Atomic bool any; /* some block is held: reads must look */
	_Atomic uint64_t *held;
};

static bool held(const struct blk_overlay *o, uint64_t b)
{
	return atomic_load_explicit(&o->held[b / 64], memory_order_acquire) >> (b % 64) & 1;
}

static void hold(struct blk_overlay *o, uint64_t first, uint64_t last)
{
	for (uint64_t b = first; b <= last && b < o->nblocks; b++)
		atomic_fetch_or_explicit(&o->held[b / 64], 1ull << (b % 64), memory_order_release);
	atomic_store_explicit(&o->any, true, memory_order_release);
}

struct blk_overlay *ovl_new(uint64_t size)
{
	struct blk_overlay *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->size = size;
	o->nblocks = (size + BS - 1) / BS;
	o->held = calloc((size_t)(o->nblocks / 64 + 1), sizeof(*o->held));
	if (!o->held) {
		free(o);
		return NULL;
	}
	o->fd = -1;
	pthread_mutex_init(&o->lock, NULL);
	return o;
}

void ovl_free(struct blk_overlay *o)
{
	if (!o)
		return;
	if (o->fd >= 0)
		close(o->fd);
	pthread_mutex_destroy(&o->lock);
	free(o->path);
	free((void *)o->held);
	free(o);
}

int ovl_set_path(struct blk_overlay *o, const char *path)
{
	int r = 0;
	/* Asked for every redirected write, on the event thread: no wait on
	 * the lock a worker holds across its write, once named. */
	if (atomic_load_explicit(&o->named, memory_order_acquire))
		return 0;
	pthread_mutex_lock(&o->lock);
	if (!o->path && !(o->path = strdup(path)))
		r = -ENOMEM;
	else
		atomic_store_explicit(&o->named, true, memory_order_release);
	pthread_mutex_unlock(&o->lock);
	return r;
}

/* Marks the blocks the file holds. 0 or -1 with err. */
static int scan(struct blk_overlay *o, char *err, size_t errlen)
{
	off_t off = 0;
	for (;;) {
		off_t d = lseek(o->fd, off, SEEK_DATA);
		if (d < 0) {
			if (errno == ENXIO)
				return 0; /* only holes from here on */
			return errmsg(err, errlen, "overlay %s: SEEK_DATA: %s", o->path, strerror(errno));
		}
		off_t h = lseek(o->fd, d, SEEK_HOLE);
		if (h < 0)
			return errmsg(err, errlen, "overlay %s: SEEK_HOLE: %s", o->path, strerror(errno));
		if (h <= d)
			return 0;
		hold(o, (uint64_t)d / BS, ((uint64_t)h - 1) / BS);
		off = h;
	}
}

/* With the lock held. */
static int open_locked(struct blk_overlay *o, char *err, size_t errlen)
{
	struct stat st;

	if (o->fd >= 0 || !o->path)
		return 0;
	int fd = open(o->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return errmsg(err, errlen, "overlay %s: %s", o->path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return errmsg(err, errlen, "overlay %s: in use by another process", o->path);
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return errmsg(err, errlen, "overlay %s: not a regular file", o->path);
	}
	if (st.st_size == 0) {
		/* New: all holes. A filesystem that cannot keep a hole would
		 * make every block look written. */
		if (ftruncate(fd, (off_t)o->size) < 0) {
			close(fd);
			return errmsg(err, errlen, "overlay %s: cannot size it: %s", o->path, strerror(errno));
		}
		if (lseek(fd, 0, SEEK_DATA) >= 0 || errno != ENXIO) {
			close(fd);
			unlink(o->path);
			return errmsg(err, errlen, "overlay %s: the filesystem does not keep sparse files", o->path);
		}
	} else if ((uint64_t)st.st_size != o->size) {
		close(fd);
		return errmsg(err, errlen, "overlay %s: %lld bytes, but the image has %llu", o->path,
			      (long long)st.st_size, (unsigned long long)o->size);
	}
	o->fd = fd;
	if (scan(o, err, errlen) < 0) {
		o->fd = -1;
		close(fd);
		return -1;
	}
	return 0;
}

int ovl_open_path(struct blk_overlay *o, const char *path, char *err, size_t errlen)
{
	int r;

	pthread_mutex_lock(&o->lock);
	bool named = o->path != NULL;
	if (!named && !(o->path = strdup(path))) {
		r = errmsg(err, errlen, "overlay %s: out of memory", path);
	} else if ((r = open_locked(o, err, errlen)) < 0 && !named) {
		free(o->path);
		o->path = NULL;
	} else {
		atomic_store_explicit(&o->named, true, memory_order_release);
	}
	pthread_mutex_unlock(&o->lock);
	return r;
}

bool ovl_wanted(const struct blk_overlay *o, const struct blk_io *io)
{
	if (!o)
		return false;
	/* Every write: under the lock a redirected one's copy_in takes. */
	return io->op == BLK_WRITE || io->redirect || atomic_load_explicit(&o->any, memory_order_acquire);
}

/* The part [skip, skip + len) of an iovec, into out (as many entries). */
static unsigned slice(const struct iovec *in, unsigned n, size_t skip, size_t len, struct iovec *out)
{
	unsigned k = 0;
	for (unsigned i = 0; i < n && len > 0; i++) {
		if (skip >= in[i].iov_len) {
			skip -= in[i].iov_len;
			continue;
		}
		size_t take = in[i].iov_len - skip;
		if (take > len)
			take = len;
		out[k++] = (struct iovec){ (uint8_t *)in[i].iov_base + skip, take };
		len -= take;
		skip = 0;
	}
	return k;
}

static size_t iov_total(const struct iovec *iov, unsigned n)
{
	size_t t = 0;
	for (unsigned i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

/* Bytes of block b (the last one may be short). */
static size_t block_len(const struct blk_overlay *o, uint64_t b)
{
	uint64_t start = b * BS;
	return o->size - start < BS ? (size_t)(o->size - start) : BS;
}

/* Reads or writes [off, off + len) of the I/O's buffers (at byte `skip` of
 * them) on one file. */
static int part(const struct blk_io *io, int fd, uint64_t off, size_t skip, size_t len, bool write)
{
	struct iovec v[VIRTQ_MAX_CHAIN];
	unsigned k = slice(io->iov, io->n, skip, len, v);
	return blk_rw_full(fd, v, k, (off_t)off, write);
}

/* Splits [off, end) into runs of blocks held / not held and serves each
 * from the overlay or the base. */
static int by_runs(struct blk_overlay *o, int base_fd, const struct blk_io *io, uint64_t end, bool write)
{
	uint64_t pos = io->off;
	while (pos < end) {
		uint64_t b = pos / BS;
		/* A held bit (acquire) also publishes o->fd. */
		bool in = held(o, b);
		uint64_t stop = (b + 1) * BS;
		while (stop < end && held(o, stop / BS) == in)
			stop += BS;
		if (stop > end)
			stop = end;
		int r = part(io, in ? o->fd : base_fd, pos, (size_t)(pos - io->off), (size_t)(stop - pos), write);
		if (r < 0)
			return r;
		pos = stop;
	}
	return 0;
}

/* Copies base block b into the overlay (before a write covering part of it). */
static int copy_in(struct blk_overlay *o, int base_fd, uint64_t b)
{
	uint8_t buf[BS];
	size_t n = block_len(o, b);
	struct iovec v = { buf, n };
	int r = blk_rw_full(base_fd, &v, 1, (off_t)(b * BS), false);
	if (r < 0)
		return r;
	v = (struct iovec){ buf, n };
	r = blk_rw_full(o->fd, &v, 1, (off_t)(b * BS), true);
	if (r == 0)
		hold(o, b, b);
	return r;
}

static int redirected_write(struct blk_overlay *o, int base_fd, const struct blk_io *io, uint64_t end)
{
	uint64_t first = io->off / BS, last = (end - 1) / BS;
	int r;

	if (o->fd < 0 && !o->failed) {
		char err[256];
		if (open_locked(o, err, sizeof(err)) < 0 || o->fd < 0) {
			o->failed = true;
			fprintf(stderr, "vigil: %s; redirected writes fail\n", o->path ? err : "overlay: no path");
		}
	}
	if (o->fd < 0)
		return -EIO;
	/* A block only partly written must be whole in the overlay first. */
	uint64_t edge[2] = { first, last };
	for (int i = 0; i < (first == last ? 1 : 2); i++) {
		uint64_t b = edge[i], bstart = b * BS, bend = bstart + block_len(o, b);
		if (!held(o, b) && (io->off > bstart || end < bend) && (r = copy_in(o, base_fd, b)) < 0)
			return r;
	}
	r = part(io, o->fd, io->off, 0, (size_t)(end - io->off), true);
	if (r == 0)
		hold(o, first, last);
	return r;
}

int ovl_io(struct blk_overlay *o, int base_fd, struct blk_io *io)
{
	uint64_t len = iov_total(io->iov, io->n);
	uint64_t end = io->off + len;
	int r;

	if (len == 0)
		return 0;
	if (end > o->size || end < io->off)
		return -EIO;
	if (io->op == BLK_READ)
		return by_runs(o, base_fd, io, end, false);
	pthread_mutex_lock(&o->lock);
	r = io->redirect ? redirected_write(o, base_fd, io, end) : by_runs(o, base_fd, io, end, true);
	pthread_mutex_unlock(&o->lock);
	return r;
}

int ovl_flush(struct blk_overlay *o)
{
	int r = 0;
	if (!o)
		return 0;
	pthread_mutex_lock(&o->lock);
	if (o->fd >= 0 && fdatasync(o->fd) < 0)
		r = -errno;
	pthread_mutex_unlock(&o->lock);
	return r;
}

uint64_t ovl_blocks_held(const struct blk_overlay *o)
{
	uint64_t n = 0;
	for (uint64_t b = 0; b < o->nblocks; b++)
		n += held(o, b);
	return n;
}
