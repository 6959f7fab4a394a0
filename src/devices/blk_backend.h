/* blk_backend — the host side of a virtio-blk device: where its sectors
 * live. The device (src/devices/virtio_blk.c) decodes requests, applies the
 * policy and accounting, and submits I/O here; the host implements it
 * (src/host/blk_file.c: a raw image with a worker pool) and tests may plug
 * in a fake. Threading: submit and drain from the device context (the event
 * thread) or with it paused; `done` runs on a backend thread or on the
 * device context (an io_uring reaped there), once per submitted I/O. */
#ifndef VIGIL_DEVICES_BLK_BACKEND_H
#define VIGIL_DEVICES_BLK_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "virtio/virtq.h"

enum blk_op { BLK_READ, BLK_WRITE, BLK_FLUSH };

/* How the host serves a drive (--disk io=, Firecracker's io_engine):
 * DEFAULT lets the host pick (src/host/blk_file.h says which). */
enum blk_engine { BLK_ENGINE_DEFAULT, BLK_ENGINE_THREADS, BLK_ENGINE_URING };

/* What a FLUSH does (--disk cache=, Firecracker's cache_type): WRITEBACK
 * puts the data on stable storage before the guest sees it complete;
 * UNSAFE acknowledges it without touching the host (Firecracker's
 * "Unsafe"). DEFAULT is WRITEBACK. */
enum blk_cache { BLK_CACHE_DEFAULT, BLK_CACHE_WRITEBACK, BLK_CACHE_UNSAFE };

/* One I/O, in memory the device owns until `done` returns. */
struct blk_io {
	enum blk_op op;
	uint64_t off; /* bytes */
	struct iovec iov[VIRTQ_MAX_CHAIN]; /* the backend may consume it */
	unsigned n;
	/* A write the policy redirects to the copy-on-write overlay (named
	 * with ops->overlay first); the base image is not written. */
	bool redirect;
	/* 0 when the whole transfer (or the flush to stable storage) is done,
	 * else -errno. */
	void (*done)(struct blk_io *io, int result);
	struct blk_io *next; /* the backend's while it holds the I/O */
};

struct blk_backend;

struct blk_backend_ops {
	/* Queues io; its done() follows, on a backend thread. Also called
	 * from within a done() (the device retries a failed merged request
	 * one request at a time), followed there by unplug. */
	void (*submit)(struct blk_backend *be, struct blk_io *io);
	/* Returns once every I/O submitted before the call has had its
	 * done() return. */
	void (*drain)(struct blk_backend *be);
	/* Drains, then frees. */
	void (*free)(struct blk_backend *be);
	/* Names the copy-on-write overlay redirected writes go to (opened,
	 * or created, on the first); the first name stays. NULL: the backend
	 * has none (a redirected write then fails). 0 or -errno. */
	int (*overlay)(struct blk_backend *be, const char *path);
	/* Optional. Names the overlay as `overlay` does and opens (or
	 * creates) it now, on the caller's thread: a rule swapped in live
	 * must not leave the open to its first redirected write, whose thread
	 * (a block worker) may not open files. 0 or -1 with err. */
	int (*overlay_open)(struct blk_backend *be, const char *path, char *err, size_t errlen);
	/* Optional. When set, submit may only queue the I/O, and the device
	 * calls unplug after each run of submits (one turn of a queue), so a
	 * whole run goes to the host in one system call. drain and free
	 * unplug first. */
	void (*unplug)(struct blk_backend *be);
};

struct blk_backend {
	const struct blk_backend_ops *ops;
	uint64_t size;  /* bytes, a multiple of 512 */
	bool read_only; /* opened so: writes would fail */
	/* Set by the backend: it calls batch_end (when the device set one)
	 * after each run of done() calls on one thread and before any of those
	 * I/Os counts as retired for drain; the device then interrupts the
	 * driver once per run instead of once per I/O, and looks at its rings
	 * again. on_device: the run was on the device context (or with it
	 * paused), where the device may pop and submit. false: done() alone. */
	bool batches;
	void (*batch_end)(void *ctx, bool on_device); /* set by the device */
	void *batch_ctx;
};

#endif
