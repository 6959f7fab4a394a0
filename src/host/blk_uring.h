/* blk_uring — an io_uring (liburing) that carries a blk_file's reads,
 * writes and flushes: many requests in flight, vectored straight into the
 * guest's buffers (the blk_io's iovec), completed on one completion thread.
 *
 * Where completions are taken: on the device context when the owner gives
 * its executor (blk_uring_new's ex: the builder's drives). The kernel runs
 * a read's or write's completion work on the task that submitted it (the
 * event thread), so a separate completion thread cost a second wake-up per
 * completion, which in the lab's nested setup was most of a request's
 * time. Without an executor (PATCH /drives, unit tests) a completion
 * thread blocked in io_uring_enter takes them.
 *
 * Hardening: the ring is created disabled and restricted to READV, WRITEV,
 * FSYNC and NOP before it is enabled, so a compromised submitter cannot
 * use it to open files or sockets behind the seccomp filter's back.
 *
 * Used by blk_file.c only. Threading: submit from the device context (one
 * submitter at a time is not required: it takes a lock); done() and
 * retire() run on the completion thread, or on the device context. */
#ifndef VIGIL_HOST_BLK_URING_H
#define VIGIL_HOST_BLK_URING_H

#include <stdbool.h>
#include <stddef.h>

#include "core/exec.h"

#include "devices/blk_backend.h"

struct blk_uring;

/* A ring of `depth` entries (the most I/Os the owner ever has in flight)
 * and its completion thread. The thread takes the completions that are
 * there at once (up to 64), runs each I/O's done(), then retire(ctx, n)
 * once for the n of them (the owner's end of a batch and its accounting
 * for drain). NULL with a one-line reason in err (io_uring missing,
 * disabled, or refused: the caller may fall back). */
struct blk_uring *blk_uring_new(unsigned depth, void (*retire)(void *ctx, unsigned n), void *ctx,
				const struct exec *ex, char *err, size_t errlen);

/* With ex (an executor whose doorbells are evloop_exec()'s eventfds), the
 * completions are taken on the device context instead of a thread: the
 * device context submits, so the kernel finishes each I/O there and the
 * ring signals a doorbell of ex; no other thread wakes per completion.
 * done() and retire() then run on the device context, and the owner's
 * drain, which cannot wait for that context (it may be on it, or it may
 * be paused), takes them itself with blk_uring_poll. Without ex, or when
 * the eventfd cannot be registered: the completion thread. */
bool blk_uring_on_exec(const struct blk_uring *u);

/* Takes the completions the CQ holds (done, retire) without waiting; the
 * number taken. 0 at once for a ring reaped by its thread. On the device
 * context or with it paused. */
unsigned blk_uring_poll(struct blk_uring *u);

/* Queues io against fd and submits it: READ/WRITE as readv/writev of
 * io->iov at io->off, FLUSH as a full fsync of fd. Its done() gets 0 when the
 * whole transfer (or the sync) happened, -EIO for a short transfer, else
 * the -errno the kernel gave. 0, or -errno when it could not be queued
 * (done() then never runs: the caller completes it). */
int blk_uring_submit(struct blk_uring *u, int fd, struct blk_io *io);

/* The same, but the SQE waits in the ring until blk_uring_unplug (or an
 * SQ that fills up, or the next blk_uring_submit): a run of requests goes
 * to the kernel in one io_uring_enter. */
int blk_uring_queue(struct blk_uring *u, int fd, struct blk_io *io);
void blk_uring_unplug(struct blk_uring *u);

/* Stops the completion thread and frees the ring. Every I/O submitted must
 * have retired (the owner drained). NULL is fine. */
void blk_uring_free(struct blk_uring *u);

#endif
