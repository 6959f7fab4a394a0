/* Unit tests for virtio_rng and virtio_console, driven without a transport:
 * the test plays the driver, laying rings out in fake guest memory byte by
 * byte, enabling the queues, setting DRIVER_OK and calling queue_notify. */
#define _GNU_SOURCE /* CPU affinity (fake_feeder.h) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/virtio_console.h"
#include "devices/virtio_rng.h"
#include "fake_dirty.h"
#include "fake_driver.h"
#include "fake_feeder.h"
#include "host/clock.h"
#include "host/entropy.h"

#define QSIZE 16
#define DESC(q) FAKE_DESC(q)
#define AVAIL(q) FAKE_AVAIL(q)
#define USED(q) FAKE_USED(q)
#define DATA 0x100000ULL
#define GUEST_SIZE (4 * MiB)

/* The host's getrandom(), as vigil uses it; set in setup(). */
static struct entropy ent;

struct fix {
	struct fake_guest g;
	struct dev_stats stats;
	struct virtio_dev *d;
	struct fake_vq q[2];
	uint64_t data; /* bump allocator for buffers */
	int raised[2];
	long raise_ns; /* each interrupt raised takes this long (a slow device) */
	uint8_t out[4096];
	size_t nout;
};

static void rec_raise(struct virtio_dev *d, int q)
{
	struct fix *f = d->transport;
	if (q >= 0 && q < 2)
		f->raised[q]++;
	if (f->raise_ns) {
		struct timespec t = { 0, f->raise_ns };
		nanosleep(&t, NULL);
	}
}

static void rec_out(void *ctx, const uint8_t *buf, size_t len)
{
	struct fix *f = ctx;
	assert_true(f->nout + len <= sizeof(f->out));
	memcpy(f->out + f->nout, buf, len);
	f->nout += len;
}

static uint64_t alloc_buf(struct fix *f, uint32_t len)
{
	uint64_t gpa = f->data;
	f->data += (len + 15) & ~15u;
	assert_true(f->data <= GUEST_SIZE);
	return gpa;
}

#define seg fake_seg

/* Posts a chain on queue q; returns its head. */
static uint16_t post(struct fix *f, unsigned q, const struct seg *s, unsigned n)
{
	return fake_vq_post(&f->q[q], s, n);
}

/* Next used element of queue q, if any. */
static bool used(struct fix *f, unsigned q, uint32_t *id, uint32_t *len)
{
	return fake_vq_used(&f->q[q], id, len);
}

static void start(struct fix *f, struct virtio_dev *d)
{
	f->d = d;
	assert_non_null(d);
	d->raise = rec_raise;
	d->transport = f;
	assert_int_equal(fake_driver_start(d, f->q, f->g.ram, &f->g.m, QSIZE), 0);
}

static struct dev_gate gate(struct fix *f)
{
	return (struct dev_gate){ .stats = &f->stats };
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	ent = host_entropy();
	if (!f || fake_guest_init(&f->g, GUEST_SIZE))
		return -1;
	f->data = DATA;
	f->stats.name = "test";
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	fake_guest_fini(&f->g);
	free(f);
	return 0;
}

/* ---- virtio_rng ------------------------------------------------------- */

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void test_rng_fills(void **state)
{
	struct fix *f = *state;
	uint32_t id, len;

	start(f, virtio_rng_new(&f->g.m, gate(f), &ent));
	assert_int_equal(f->d->device_id, VIRTIO_ID_RNG);
	assert_int_equal(f->d->num_queues, 1);
	struct seg s[2] = { { alloc_buf(f, 100), 100, true }, { alloc_buf(f, 300), 300, true } };
	uint16_t head = post(f, 0, s, 2);
	assert_int_equal(gmem_dirty_track(&f->g.m, true), 0);
	f->d->ops->queue_notify(f->d, 0);
	assert_true(used(f, 0, &id, &len));
	assert_int_equal(id, head);
	assert_int_equal(len, 400);
	/* Diff snapshots: what the device wrote is marked. */
	assert_true(fake_dirty_marked(&f->g.m, s[0].gpa, s[1].gpa + 300 - s[0].gpa));
	gmem_dirty_track(&f->g.m, false);
	assert_false(all_zero(f->g.ram + s[0].gpa, 100));
	assert_false(all_zero(f->g.ram + s[1].gpa, 300));
	assert_int_equal(f->stats.requests, 1);
	assert_int_equal(f->stats.bytes, 400);
	assert_int_equal(f->stats.errors, 0);
	assert_int_equal(f->raised[0], 1);
	assert_false(used(f, 0, &id, &len));
	virtio_rng_free(f->d);
}

static void test_rng_bounded(void **state)
{
	struct fix *f = *state;
	uint32_t id, len;

	start(f, virtio_rng_new(&f->g.m, gate(f), &ent));
	struct seg s = { alloc_buf(f, 2 * VIRTIO_RNG_MAX_REQ), 2 * VIRTIO_RNG_MAX_REQ, true };
	post(f, 0, &s, 1);
	f->d->ops->queue_notify(f->d, 0);
	assert_true(used(f, 0, &id, &len));
	assert_int_equal(len, VIRTIO_RNG_MAX_REQ);
	assert_false(all_zero(f->g.ram + s.gpa + VIRTIO_RNG_MAX_REQ - 64, 64));
	assert_true(all_zero(f->g.ram + s.gpa + VIRTIO_RNG_MAX_REQ, VIRTIO_RNG_MAX_REQ));
	assert_int_equal(f->stats.bytes, VIRTIO_RNG_MAX_REQ);
	virtio_rng_free(f->d);
}

static void test_rng_readable_is_error(void **state)
{
	struct fix *f = *state;
	uint32_t id, len;

	start(f, virtio_rng_new(&f->g.m, gate(f), &ent));
	struct seg s[2] = { { alloc_buf(f, 16), 16, false }, { alloc_buf(f, 64), 64, true } };
	uint16_t bad = post(f, 0, s, 2);
	struct seg ok = { alloc_buf(f, 32), 32, true };
	uint16_t good = post(f, 0, &ok, 1);
	f->d->ops->queue_notify(f->d, 0);
	assert_true(used(f, 0, &id, &len));
	assert_int_equal(id, bad);
	assert_int_equal(len, 0);
	assert_true(all_zero(f->g.ram + s[1].gpa, 64));
	assert_true(used(f, 0, &id, &len));
	assert_int_equal(id, good);
	assert_int_equal(len, 32);
	assert_int_equal(f->stats.errors, 1);
	assert_int_equal(f->stats.requests, 1);
	assert_int_equal(f->stats.bytes, 32);
	virtio_rng_free(f->d);
}

static void test_rng_bad_chain_and_not_live(void **state)
{
	struct fix *f = *state;
	uint32_t id, len;

	start(f, virtio_rng_new(&f->g.m, gate(f), &ent));
	/* A buffer outside guest RAM: consumed, completed empty, counted. */
	struct seg s = { GUEST_SIZE + 4096, 64, true };
	post(f, 0, &s, 1);
	f->d->ops->queue_notify(f->d, 0);
	assert_true(used(f, 0, &id, &len));
	assert_int_equal(len, 0);
	assert_int_equal(f->stats.errors, 1);
	/* Not DRIVER_OK: queue untouched. */
	atomic_store(&f->d->status, 0);
	struct seg ok = { alloc_buf(f, 32), 32, true };
	post(f, 0, &ok, 1);
	f->d->ops->queue_notify(f->d, 0);
	assert_false(used(f, 0, &id, &len));
	virtio_rng_free(f->d);
}

/* ---- virtio_console --------------------------------------------------- */

static struct virtio_dev *new_console(struct fix *f)
{
	struct vclock clk = host_clock();
	return virtio_console_new(&f->g.m, gate(f), (struct chardev_out){ rec_out, f }, &clk);
}

static void test_console_tx(void **state)
{
	struct fix *f = *state;
	uint32_t id, len;

	start(f, new_console(f));
	assert_int_equal(f->d->device_id, VIRTIO_ID_CONSOLE);
	assert_int_equal(f->d->num_queues, 2);
	assert_int_equal(f->d->host_features, 0);
	struct seg s[2] = { { alloc_buf(f, 6), 6, false }, { alloc_buf(f, 7), 7, false } };
	memcpy(f->g.ram + s[0].gpa, "hello ", 6);
	memcpy(f->g.ram + s[1].gpa, "world!\n", 7);
	uint16_t head = post(f, 1, s, 2);
	f->d->ops->queue_notify(f->d, 1);
	assert_int_equal(f->nout, 13);
	assert_memory_equal(f->out, "hello world!\n", 13);
	assert_true(used(f, 1, &id, &len));
	assert_int_equal(id, head);
	assert_int_equal(len, 0);
	assert_int_equal(f->raised[1], 1);
	assert_int_equal(f->stats.requests, 1);
	assert_int_equal(f->stats.bytes, 13);
	/* A device-writable buffer in a transmit chain: error, no output. */
	struct seg w = { alloc_buf(f, 8), 8, true };
	post(f, 1, &w, 1);
	f->d->ops->queue_notify(f->d, 1);
	assert_true(used(f, 1, &id, &len));
	assert_int_equal(f->nout, 13);
	assert_int_equal(f->stats.errors, 1);
	/* Config space reads as zero. */
	uint8_t cfg[12];
	memset(cfg, 0xff, sizeof(cfg));
	f->d->ops->config_read(f->d, 0, cfg, sizeof(cfg));
	assert_true(all_zero(cfg, sizeof(cfg)));
	virtio_console_free(f->d);
}

static void test_console_rx(void **state)
{
	struct fix *f = *state;
	uint32_t id, len;
	const uint8_t msg[] = "typed on the host";

	start(f, new_console(f));
	/* No buffer posted: nothing taken, no room. */
	assert_int_equal(virtio_console_rx_push(f->d, msg, sizeof(msg) - 1), 0);
	assert_false(virtio_console_rx_wait_room(f->d, 0));
	assert_false(virtio_console_rx_wait_room(f->d, 20));

	/* a alone in its page (see the Diff snapshot check below) */
	struct seg a = { alloc_buf(f, 4096), 8, true }, b = { alloc_buf(f, 64), 64, true };
	uint16_t ha = post(f, 0, &a, 1);
	uint16_t hb = post(f, 0, &b, 1);
	f->d->ops->queue_notify(f->d, 0);
	assert_true(virtio_console_rx_wait_room(f->d, 0));
	/* The held chain's descriptor is pointed elsewhere before the input
	 * comes: the buffer the device was given is what it writes and what
	 * a Diff snapshot must take. */
	assert_int_equal(gmem_dirty_track(&f->g.m, true), 0);
	uint64_t elsewhere = alloc_buf(f, 8192) + 4096;
	put64(f->g.ram + f->q[0].desc + 16u * ha, elsewhere);
	assert_int_equal(virtio_console_rx_push(f->d, msg, sizeof(msg) - 1), sizeof(msg) - 1);
	assert_true(fake_dirty_marked(&f->g.m, a.gpa, 8));
	gmem_dirty_track(&f->g.m, false);
	assert_true(used(f, 0, &id, &len));
	assert_int_equal(id, ha);
	assert_int_equal(len, 8);
	assert_memory_equal(f->g.ram + a.gpa, "typed on", 8);
	assert_true(used(f, 0, &id, &len));
	assert_int_equal(id, hb);
	assert_int_equal(len, 9);
	assert_memory_equal(f->g.ram + b.gpa, " the host", 9);
	assert_int_equal(f->stats.bytes, 17);
	assert_true(f->raised[0] >= 1);
	/* Buffers used up. */
	assert_int_equal(virtio_console_rx_push(f->d, msg, 3), 0);
	virtio_console_free(f->d);
}

struct waiter {
	struct virtio_dev *d;
	bool room;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;
	w->room = virtio_console_rx_wait_room(w->d, 5000);
	return NULL;
}

static void test_console_wait_woken(void **state)
{
	struct fix *f = *state;
	struct waiter w;
	pthread_t t;
	struct timespec t0, t1;
	uint32_t id, len;

	start(f, new_console(f));
	w.d = f->d;
	w.room = false;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
	struct timespec ms50 = { 0, 50 * 1000000L };
	nanosleep(&ms50, NULL);
	struct seg a = { alloc_buf(f, 4), 4, true };
	post(f, 0, &a, 1);
	f->d->ops->queue_notify(f->d, 0); /* the kick wakes the waiter */
	pthread_join(t, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(w.room);
	assert_true(t1.tv_sec - t0.tv_sec < 3);
	/* The chain popped while waiting is used by the next push. */
	assert_int_equal(virtio_console_rx_push(f->d, (const uint8_t *)"abcdef", 6), 4);
	assert_true(used(f, 0, &id, &len));
	assert_int_equal(len, 4);
	assert_memory_equal(f->g.ram + a.gpa, "abcd", 4);
	virtio_console_free(f->d);
}

static void test_console_reset_drops_held(void **state)
{
	struct fix *f = *state;
	uint32_t id, len;

	start(f, new_console(f));
	struct seg a = { alloc_buf(f, 4), 4, true };
	post(f, 0, &a, 1);
	assert_true(virtio_console_rx_wait_room(f->d, 0)); /* holds the chain */
	atomic_store(&f->d->status, 0);
	f->d->ops->reset(f->d);
	assert_int_equal(virtio_console_rx_push(f->d, (const uint8_t *)"x", 1), 0);
	assert_false(used(f, 0, &id, &len));
	virtio_console_free(f->d);
}

/* A pause (a snapshot reads the rings and guest memory) keeps the input
 * thread off the receive queue: nothing is taken and no room is seen until
 * resume, and a waiter is woken by the resume. */
static void test_console_quiesce_holds_input(void **state)
{
	struct fix *f = *state;
	uint32_t id, len;
	struct waiter w;
	pthread_t t;

	start(f, new_console(f));
	struct seg a = { alloc_buf(f, 4), 4, true };
	post(f, 0, &a, 1);
	f->d->ops->quiesce(f->d);
	assert_int_equal(virtio_console_rx_push(f->d, (const uint8_t *)"abcd", 4), 0);
	assert_false(virtio_console_rx_wait_room(f->d, 20));
	assert_false(used(f, 0, &id, &len));
	w.d = f->d;
	w.room = false;
	assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
	struct timespec ms50 = { 0, 50 * 1000000L };
	nanosleep(&ms50, NULL);
	f->d->ops->resume(f->d);
	pthread_join(t, NULL);
	assert_true(w.room);
	assert_int_equal(virtio_console_rx_push(f->d, (const uint8_t *)"abcd", 4), 4);
	assert_true(used(f, 0, &id, &len));
	assert_int_equal(len, 4);
	virtio_console_free(f->d);
}

/* Malformed receive chains are completed under the rx lock, which the
 * event thread's kick also takes: a call takes at most a ring's worth of
 * them, so it returns while the guest is still posting instead of when the
 * guest stops. Each completion is slowed so that the feeder keeps the ring
 * from running dry; on a loaded host it may not always, which ends the old
 * code's loop early too, so the count of chains taken is what tells. */
static void test_console_bad_chains_bounded(void **state)
{
	struct fix *f = *state;
	struct fake_feeder w = { 0 };
	pthread_t t;
	cpu_set_t cpus;

	start(f, new_console(f));
	w.q = f->q[0];
	w.buf = (struct seg){ alloc_buf(f, 16), 16, false }; /* readable: malformed */
	f->raise_ns = 200 * 1000;
	fake_feeder_start(&w, &t, &cpus);
	bool room = virtio_console_rx_wait_room(f->d, 0);
	int stopped = atomic_load(&w.stopped);
	size_t took = virtio_console_rx_push(f->d, (const uint8_t *)"x", 1);
	int stopped2 = atomic_load(&w.stopped);
	fake_feeder_stop(&w, t, &cpus);
	f->q[0] = w.q;
	f->raise_ns = 0;
	assert_false(room);
	assert_int_equal(took, 0);
	assert_int_equal(stopped, 0);  /* returned while the guest was still posting */
	assert_int_equal(stopped2, 0);
	/* The chains posted before the first call, and a ring's worth a call at most. */
	assert_true(f->stats.errors >= QSIZE - 1);
	assert_true(f->stats.errors <= 2 * QSIZE);
	/* The queue still works: behind the fewer than a ring's worth of
	 * malformed chains left, a good buffer is filled by one push. */
	uint32_t id, len;
	struct seg a = { alloc_buf(f, 4), 4, true };
	uint16_t head = post(f, 0, &a, 1);
	assert_int_equal(virtio_console_rx_push(f->d, (const uint8_t *)"abcd", 4), 4);
	assert_memory_equal(f->g.ram + a.gpa, "abcd", 4);
	bool found = false;
	while (used(f, 0, &id, &len))
		found |= id == head && len == 4;
	assert_true(found);
	virtio_console_free(f->d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rng_fills, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rng_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rng_readable_is_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rng_bad_chain_and_not_live, setup, teardown),
		cmocka_unit_test_setup_teardown(test_console_tx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_console_rx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_console_wait_woken, setup, teardown),
		cmocka_unit_test_setup_teardown(test_console_reset_drops_held, setup, teardown),
		cmocka_unit_test_setup_teardown(test_console_quiesce_holds_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_console_bad_chains_bounded, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
