/* virtio-vsock's receive flush has a budget: a guest that advertises a
 * huge buf_alloc and keeps its receive ring full from a second vCPU, with
 * a host service that never stops sending, gets at most RX_FLUSH_BUDGET
 * (the queue size, 256) packets per turn of the event thread, and the
 * device's doorbell brings the rest on a later turn. Over a fake backend
 * whose stream always has data and a fake executor whose doorbell the test
 * rings by hand. */
#define _GNU_SOURCE /* CPU affinity (fake_feeder.h) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio_vsock.h"
#include "devices/vsock_backend.h"
#include "fake_driver.h"
#include "fake_exec.h"
#include "fake_feeder.h"

#define QSIZE 256
#define BUDGET 256   /* RX_FLUSH_BUDGET */
#define RX_BUF 0x100000ULL
#define TX_BUF 0x200000ULL
#define HDR 44
enum { REQUEST = 1, RESPONSE, RST, SHUTDOWN, RW, CREDIT_UPDATE, CREDIT_REQUEST };

static struct dev_stats stats;


/* ---- the backend: one host service that always has more to send ------- */

struct vsock_stream {
	vsock_stream_fn fn;
	void *cookie;
	uint32_t events;
	bool open;
};
#define MAX_STREAMS 64
static struct vsock_stream streams[MAX_STREAMS];
static unsigned nstreams, watch_calls;

static struct vsock_stream *fb_connect(struct vsock_backend *be, uint32_t port, int *status)
{
	(void)be, (void)port;
	if (nstreams == MAX_STREAMS) {
		*status = -ECONNREFUSED;
		return NULL;
	}
	streams[nstreams] = (struct vsock_stream){ .open = true };
	*status = 0;
	return &streams[nstreams++];
}
static int fb_connect_result(struct vsock_backend *be, struct vsock_stream *s)
{
	(void)be, (void)s;
	return 0;
}
static ssize_t fb_send(struct vsock_backend *be, struct vsock_stream *s, const struct iovec *iov, int cnt)
{
	(void)be, (void)s;
	size_t n = 0;
	for (int i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	return (ssize_t)n;
}
static ssize_t fb_recv(struct vsock_backend *be, struct vsock_stream *s, void *buf, size_t len, bool peek)
{
	(void)be, (void)s, (void)peek;
	memset(buf, 'h', len);
	return (ssize_t)len;
}
static void fb_shutdown_wr(struct vsock_backend *be, struct vsock_stream *s)
{
	(void)be, (void)s;
}
static int fb_watch(struct vsock_backend *be, struct vsock_stream *s, uint32_t events, vsock_stream_fn fn,
		    void *cookie)
{
	(void)be;
	s->fn = fn;
	s->cookie = cookie;
	s->events = events;
	watch_calls++;
	return 0;
}
static void fb_close(struct vsock_backend *be, struct vsock_stream *s)
{
	(void)be;
	s->open = false;
}
static int fb_start(struct vsock_backend *be)
{
	(void)be;
	return 0;
}
static void fb_free(struct vsock_backend *be)
{
	(void)be;
}
static const struct vsock_backend_ops fb_ops = { fb_connect, fb_connect_result, fb_send, fb_recv,
						 fb_shutdown_wr, fb_watch, fb_close, fb_start, fb_free };
static struct vsock_backend the_backend = { .ops = &fb_ops };

/* ---- the guest -------------------------------------------------------- */

struct fix {
	struct fake_guest g;
	struct fake_vq q[3];
	struct virtio_dev *d;
};

static void raise_none(struct virtio_dev *d, int q)
{
	(void)d, (void)q;
}

/* A packet from guest port `from` to host port 5000, with no payload. */
static void guest_send(struct fix *f, uint16_t op, uint32_t from, uint32_t buf_alloc)
{
	uint8_t *p = f->g.ram + TX_BUF;
	uint32_t id, len;

	memset(p, 0, HDR);
	put64(p, 3);        /* src_cid */
	put64(p + 8, 2);    /* dst_cid */
	put32(p + 16, from);
	put32(p + 20, 5000);
	put16(p + 28, 1);   /* stream */
	put16(p + 30, op);
	put32(p + 36, buf_alloc);
	struct fake_seg seg = { TX_BUF, HDR, false };
	fake_vq_post(&f->q[1], &seg, 1);
	f->d->ops->queue_notify(f->d, 1);
	assert_true(fake_vq_used(&f->q[1], &id, &len));
}

/* Guest port 1025 connects to host port 5000, advertising buf_alloc. */
static void guest_request(struct fix *f, uint32_t buf_alloc)
{
	guest_send(f, REQUEST, 1025, buf_alloc);
}

/* One receive buffer of 4 KiB, at a place of its own, and a kick. */
static void post_rx(struct fix *f)
{
	struct fake_seg seg = { RX_BUF + 4096ULL * f->q[0].next_desc, 4096, true };
	fake_vq_post(&f->q[0], &seg, 1);
	f->d->ops->queue_notify(f->d, 0);
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	char err[128];

	if (!f || fake_guest_init(&f->g, 4 * MiB))
		return -1;
	memset(&stats, 0, sizeof(stats));
	nstreams = watch_calls = 0;
	f->d = virtio_vsock_new_backend(&the_backend, 3, &fake_exec, &fake_clk, &f->g.m,
					(struct dev_gate){ .stats = &stats }, err, sizeof(err));
	if (!f->d)
		return -1;
	f->d->raise = raise_none;
	if (fake_driver_start(f->d, f->q, f->g.ram, &f->g.m, QSIZE))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	virtio_vsock_free(f->d);
	fake_guest_fini(&f->g);
	free(f);
	return 0;
}

/* The connection open (its RESPONSE taken), its stream watched for input. */
static void open_conn(struct fix *f)
{
	uint32_t id, len;

	guest_request(f, 0xffffffffu);
	struct fake_seg seg = { RX_BUF, 4096, true };
	fake_vq_post(&f->q[0], &seg, 1);
	f->d->ops->queue_notify(f->d, 0);
	assert_true(fake_vq_used(&f->q[0], &id, &len));
	assert_int_equal(len, HDR);
	assert_int_equal(get16(f->g.ram + RX_BUF + 30), RESPONSE);
	assert_true(streams[0].open);
	assert_true(streams[0].events & VSOCK_EV_IN);
}

/* The host service's data is readable while a second vCPU keeps the
 * receive ring full: the event thread's call returns after the budget
 * while the guest is still posting (on the old code it ran until the
 * guest stopped), the doorbell is rung, and ringing it carries on. A try
 * in which the feeder fell behind (the ring ran dry: no doorbell owed)
 * proves nothing and is made again, on a fresh device. */
static void test_flush_budget_under_flood(void **state)
{
	struct fix *f = *state;
	bool flooded = false;

	for (int try = 0; try < 20 && !flooded; try++) {
		struct fake_feeder w = { .buf = { RX_BUF, 4096, true } };
		pthread_t t;
		cpu_set_t cpus;

		if (try) {
			teardown((void **)&f);
			assert_int_equal(setup((void **)&f), 0);
			*state = f;
		}
		open_conn(f);
		w.q = f->q[0];
		fake_feeder_start(&w, &t, &cpus);
		uint64_t before = stats.requests;
		streams[0].fn(streams[0].cookie, VSOCK_EV_IN);
		int stopped = atomic_load(&w.stopped);
		uint64_t sent = stats.requests - before;
		int rung = fake_doorbell.rung;
		/* The rest, on the doorbell's turn: at most another budget. */
		if (rung)
			fake_doorbell.fn(fake_doorbell.arg);
		uint64_t more = stats.requests - before - sent;
		fake_feeder_stop(&w, t, &cpus);
		f->q[0] = w.q;

		assert_int_equal(stopped, 0);
		assert_true(sent <= BUDGET);
		assert_int_equal(stats.errors, 0);
		assert_true(streams[0].open);
		if (!rung)
			continue;
		flooded = true;
		assert_int_equal(sent, BUDGET);
		assert_int_equal(rung, 1);
		assert_true(more >= 1 && more <= BUDGET);
	}
	assert_true(flooded);
}

/* Without a flood, a flush that ends for want of buffers rings nothing:
 * the guest's kick of the receive queue brings the rest. */
static void test_no_doorbell_when_stalled(void **state)
{
	struct fix *f = *state;
	uint32_t id = 0, len = 0;

	open_conn(f);
	for (unsigned i = 0; i < 8; i++) {
		struct fake_seg seg = { RX_BUF + 4096ULL * f->q[0].next_desc, 4096, true };
		fake_vq_post(&f->q[0], &seg, 1);
	}
	uint64_t before = stats.requests;
	streams[0].fn(streams[0].cookie, VSOCK_EV_IN);
	assert_int_equal(stats.requests - before, 8);
	assert_int_equal(fake_doorbell.rung, 0);
	for (unsigned i = 0; i < 8; i++) {
		assert_true(fake_vq_used(&f->q[0], &id, &len));
		assert_int_equal(len, 4096);
		assert_int_equal(get16(f->g.ram + RX_BUF + 4096 * id + 30), RW);
	}
	/* No buffers: input is not watched until the guest posts more. */
	assert_false(streams[0].events & VSOCK_EV_IN);
}

/* Many open connections with nothing to read, and a guest that runs its
 * receive ring dry and refills it, one buffer at a time: the streams'
 * input interest stays as it is (on the old code every open connection's
 * was dropped at each stall and taken again at each refill: two epoll_ctl
 * calls per connection per cycle on the event thread, for two kicks). */
static void test_stall_leaves_idle_streams_watched(void **state)
{
	struct fix *f = *state;
	uint32_t id = 0, len = 0;
	enum { CONNS = 48, CYCLES = 20 };

	for (unsigned i = 0; i < CONNS; i++) {
		guest_send(f, REQUEST, 2000 + i, 65536);
		post_rx(f);
		assert_true(fake_vq_used(&f->q[0], &id, &len));
		assert_int_equal(get16(f->g.ram + RX_BUF + 4096ULL * id + 30), RESPONSE);
	}
	assert_int_equal(nstreams, CONNS);
	for (unsigned i = 0; i < CONNS; i++)
		assert_true(streams[i].events & VSOCK_EV_IN);
	post_rx(f); /* a spare */
	unsigned before = watch_calls;
	for (unsigned c = 0; c < CYCLES; c++) {
		/* Two CREDIT_REQUESTs: the first answer takes the last buffer,
		 * the second finds none (the ring runs dry). */
		guest_send(f, CREDIT_REQUEST, 2000, 65536);
		guest_send(f, CREDIT_REQUEST, 2000, 65536);
		assert_true(fake_vq_used(&f->q[0], &id, &len));
		assert_int_equal(get16(f->g.ram + RX_BUF + 4096ULL * id + 30), CREDIT_UPDATE);
		post_rx(f); /* the owed answer takes it */
		assert_true(fake_vq_used(&f->q[0], &id, &len));
		assert_int_equal(get16(f->g.ram + RX_BUF + 4096ULL * id + 30), CREDIT_UPDATE);
		post_rx(f); /* and one spare for the next cycle */
	}
	assert_int_equal(watch_calls - before, 0);
	for (unsigned i = 0; i < CONNS; i++)
		assert_true(streams[i].events & VSOCK_EV_IN);
	assert_int_equal(stats.errors, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_flush_budget_under_flood, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_doorbell_when_stalled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stall_leaves_idle_streams_watched, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
