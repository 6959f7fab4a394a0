/* fake_feeder — a second vCPU's worth of hostile driver for device tests:
 * a thread that keeps a ring full of malformed chains while the device
 * under test serves it (fake_driver.h's ring layout). Needs _GNU_SOURCE
 * (CPU affinity) defined before the first include. */
#ifndef VIGIL_TESTS_FAKE_FEEDER_H
#define VIGIL_TESTS_FAKE_FEEDER_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "fake_driver.h"

/* A second vCPU's worth of hostile driver: one chain (of `buf`s, malformed
 * for the device under test) in every avail entry, and the
 * avail index kept a ring's worth (less one) ahead of the used index, as
 * fast as the device completes them, until `stop` is set or two seconds
 * pass; then `stopped` is set. Nothing stops a driver from offering one
 * head many times. The thread's body: pthread_create(..., fake_feed, &w),
 * with w.q the queue's driver state (taken back after the join). */
struct fake_feeder {
	struct fake_vq q;
	struct fake_seg buf;
	unsigned chain; /* the chain is this many copies of buf (0: one, at most 64) */
	atomic_int stop, stopped, posted;
};

static inline void *fake_feed(void *arg)
{
	struct fake_feeder *w = arg;
	struct fake_vq *q = &w->q;
	const uint16_t *used_idx = (const uint16_t *)(const void *)(q->ram + q->used + 2);
	uint16_t *avail_idx = (uint16_t *)(void *)(q->ram + q->avail + 2);
	struct timespec t0, t;

	struct fake_seg segs[64];
	unsigned n = w->chain ? w->chain : 1;
	for (unsigned i = 0; i < n; i++)
		segs[i] = w->buf;
	uint16_t head = fake_vq_post(q, segs, n);
	for (unsigned i = 0; i < q->size; i++)
		put16(q->ram + q->avail + 4 + 2u * i, head);
	uint16_t from = (uint16_t)(q->avail_idx - 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		q->used_seen = __atomic_load_n(used_idx, __ATOMIC_ACQUIRE);
		uint16_t want = (uint16_t)(q->used_seen + q->size - 1);
		if (want != q->avail_idx) {
			q->avail_idx = want;
			__atomic_store_n(avail_idx, want, __ATOMIC_RELEASE);
			atomic_store(&w->posted, (uint16_t)(want - from));
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (!atomic_load(&w->stop) && t.tv_sec - t0.tv_sec < 2);
	atomic_store(&w->stopped, 1);
	return NULL;
}

/* Starts the feeder and returns once it has a ring's worth (less one)
 * posted. With two CPUs allowed, the caller and the feeder each get one
 * (until fake_feeder_stop), so the feeder keeps up with the device. */
static inline void fake_feeder_start(struct fake_feeder *w, pthread_t *t, cpu_set_t *saved)
{
	cpu_set_t one;
	int cpu[2], n = 0;

	CPU_ZERO(saved);
	if (sched_getaffinity(0, sizeof(*saved), saved) == 0)
		for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
			if (CPU_ISSET(c, saved))
				cpu[n++] = c;
	if (pthread_create(t, NULL, fake_feed, w) != 0)
		abort();
	if (n == 2) {
		CPU_ZERO(&one);
		CPU_SET(cpu[1], &one);
		pthread_setaffinity_np(*t, sizeof(one), &one);
		CPU_ZERO(&one);
		CPU_SET(cpu[0], &one);
		sched_setaffinity(0, sizeof(one), &one);
	}
	while (atomic_load(&w->posted) < w->q.size - 1)
		sched_yield();
}

/* Stops and joins the feeder; the caller's CPUs as before. */
static inline void fake_feeder_stop(struct fake_feeder *w, pthread_t t, const cpu_set_t *saved)
{
	atomic_store(&w->stop, 1);
	pthread_join(t, NULL);
	if (CPU_COUNT(saved))
		sched_setaffinity(0, sizeof(*saved), saved);
}

#endif
