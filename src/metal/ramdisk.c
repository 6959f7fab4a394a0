/* ramdisk — see ramdisk.h. One list of I/Os done but not yet reported for
 * all disks: submit copies at once and queues the completion; the poll
 * loop (or drain) runs done(), never inside submit, so the device's own
 * locks are never taken twice on this CPU. */
#include "metal/ramdisk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/errmsg.h"
#include "devices/blk_backend.h"

struct ramdisk {
	struct blk_backend be;
	uint8_t *data;
};

struct done_entry {
	struct blk_io *io;
	int result;
	struct done_entry *next;
};

static struct done_entry *pending, **pending_tail = &pending;

static void queue_done(struct blk_io *io, int result)
{
	struct done_entry *d = malloc(sizeof(*d));
	if (!d) {
		io->done(io, -ENOMEM); /* out of memory: report now rather than lose it */
		return;
	}
	*d = (struct done_entry){ io, result, NULL };
	*pending_tail = d;
	pending_tail = &d->next;
}

static void rd_submit(struct blk_backend *be, struct blk_io *io)
{
	struct ramdisk *rd = (struct ramdisk *)be;
	if (io->op == BLK_FLUSH) {
		queue_done(io, 0); /* RAM is as stable as it gets here */
		return;
	}
	if (io->redirect) {
		queue_done(io, -ENOTSUP); /* no copy-on-write overlay: there are no files */
		return;
	}
	uint64_t off = io->off;
	for (unsigned i = 0; i < io->n; i++) {
		size_t len = io->iov[i].iov_len;
		if (off > be->size || len > be->size - off) {
			queue_done(io, -EIO);
			return;
		}
		if (io->op == BLK_WRITE)
			memcpy(rd->data + off, io->iov[i].iov_base, len);
		else
			memcpy(io->iov[i].iov_base, rd->data + off, len);
		off += len;
	}
	queue_done(io, 0);
}

void metal_ramdisk_poll(void)
{
	while (pending) {
		struct done_entry *d = pending;
		pending = d->next;
		if (!pending)
			pending_tail = &pending;
		struct blk_io *io = d->io;
		int result = d->result;
		free(d);
		io->done(io, result);
	}
}

static void rd_drain(struct blk_backend *be)
{
	(void)be;
	metal_ramdisk_poll();
}

static void rd_free(struct blk_backend *be)
{
	rd_drain(be);
	free(be);
}

static int rd_overlay(struct blk_backend *be, const char *path)
{
	(void)be;
	(void)path;
	return -ENOTSUP;
}

static const struct blk_backend_ops ramdisk_ops = {
	.submit = rd_submit, .drain = rd_drain, .free = rd_free, .overlay = rd_overlay,
};

struct blk_backend *metal_ramdisk_new(uint8_t *data, size_t len, char *err, size_t errlen)
{
	if (!len || len % 512) {
		errmsg(err, errlen, "the disk image is %zu bytes: not a whole number of 512-byte sectors", len);
		return NULL;
	}
	struct ramdisk *rd = calloc(1, sizeof(*rd));
	if (!rd) {
		errmsg(err, errlen, "out of memory");
		return NULL;
	}
	rd->be = (struct blk_backend){ .ops = &ramdisk_ops, .size = len, .read_only = false };
	rd->data = data;
	return &rd->be;
}
