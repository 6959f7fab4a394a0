/* Snapshots of the virtio devices' own state (virtio_dev_ops save/restore),
 * without a transport: virtio-net's config space and the MAC override a
 * clone gets at load, virtio-vsock's CID, its override, and the
 * TRANSPORT_RESET event it owes the guest after a restore (sent on the
 * first event buffer, id 0, 4 bytes). */
#define _GNU_SOURCE /* CPU affinity (fake_feeder.h) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/snap.h"
#include "devices/blk_backend.h"
#include "devices/net_backend.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_net.h"
#include "devices/virtio_vsock.h"
#include "devices/vsock_backend.h"
#include "fake_driver.h"
#include "fake_exec.h"
#include "fake_feeder.h"

static struct dev_stats stats;
static struct dev_gate gate(void)
{
	return (struct dev_gate){ .stats = &stats };
}

/* The device's part alone, in a section of its own. */
static struct snap_reader *save_dev(struct virtio_dev *d, uint8_t **buf)
{
	struct snap_writer *w = snap_writer_new();
	const uint8_t *b;
	size_t len;
	snap_begin(w, "dev", "virtio", 1);
	assert_int_equal(d->ops->save(d, w), 0);
	snap_end(w);
	assert_int_equal(snap_writer_finish(w, &b, &len), 0);
	*buf = malloc(len);
	memcpy(*buf, b, len);
	snap_writer_free(w);
	char err[SNAP_ERR_MAX];
	struct snap_reader *r = snap_reader_open(*buf, len, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(snap_open_section(r, "dev", "virtio", 1, NULL), 0);
	return r;
}

/* ---- virtio-net --------------------------------------------------------- */

static int nb_send(struct net_backend *b, const struct iovec *iov, int n)
{
	(void)b, (void)iov, (void)n;
	return 0;
}
static ssize_t nb_recv(struct net_backend *b, const struct iovec *iov, int n)
{
	(void)b, (void)iov, (void)n;
	return -EAGAIN;
}
static void nb_rx_enable(struct net_backend *b, bool on)
{
	(void)b, (void)on;
}
static int nb_activate(struct net_backend *b, uint64_t f)
{
	(void)b, (void)f;
	return 0;
}
static void nb_free(struct net_backend *b)
{
	free(b);
}
static const struct net_backend_ops nb_ops = { .send = nb_send, .recv = nb_recv, .rx_enable = nb_rx_enable,
					       .activate = nb_activate, .free = nb_free };

static struct virtio_dev *net_new(struct fake_guest *g, const uint8_t *mac)
{
	struct net_backend *be = calloc(1, sizeof(*be));
	be->ops = &nb_ops;
	be->name = "fake";
	char err[128];
	struct virtio_dev *d = virtio_net_new_backend(be, mac, NULL, &g->m, gate(), err, sizeof(err));
	assert_non_null(d);
	return d;
}

static void test_net_mac(void **state)
{
	(void)state;
	struct fake_guest g;
	assert_int_equal(fake_guest_init(&g, 1 * MiB), 0);
	static const uint8_t mac_a[6] = { 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc };
	static const uint8_t mac_b[6] = { 0x52, 0x54, 0x00, 0x11, 0x22, 0x33 };
	static const uint8_t mac_c[6] = { 0x52, 0x54, 0x00, 0x99, 0x88, 0x77 };
	struct virtio_dev *a = net_new(&g, mac_a);
	uint8_t *buf, cfg[8];

	/* No override: the snapshot's MAC, whatever the new device was built with. */
	struct snap_reader *r = save_dev(a, &buf);
	struct virtio_dev *b = net_new(&g, mac_b);
	assert_int_equal(b->ops->restore(b, r), 0);
	assert_int_equal(snap_left(r), 0);
	b->ops->config_read(b, 0, cfg, 8);
	assert_memory_equal(cfg, mac_a, 6);
	assert_int_equal(cfg[6], 1); /* link up */
	snap_reader_free(r);

	/* A clone's MAC set before the restore wins. */
	struct virtio_dev *c = net_new(&g, mac_b);
	virtio_net_set_mac(c, mac_c);
	free(buf);
	r = save_dev(a, &buf);
	assert_int_equal(c->ops->restore(c, r), 0);
	c->ops->config_read(c, 0, cfg, 8);
	assert_memory_equal(cfg, mac_c, 6);
	snap_reader_free(r);
	free(buf);

	/* A multicast MAC in the file is refused. */
	static const uint8_t mcast[6] = { 0x01, 0, 0, 0, 0, 1 };
	virtio_net_set_mac(a, mcast);
	r = save_dev(a, &buf);
	assert_int_equal(b->ops->restore(b, r), -1);
	assert_non_null(strstr(snap_error(r), "multicast"));
	snap_reader_free(r);
	free(buf);
	virtio_net_free(a);
	virtio_net_free(b);
	virtio_net_free(c);
	fake_guest_fini(&g);
}

/* ---- virtio-blk --------------------------------------------------------- */

static void bb_submit(struct blk_backend *be, struct blk_io *io)
{
	(void)be, (void)io;
}
static void bb_drain(struct blk_backend *be)
{
	(void)be;
}
static void bb_free(struct blk_backend *be)
{
	free(be);
}
static const struct blk_backend_ops bb_ops = { .submit = bb_submit, .drain = bb_drain, .free = bb_free };

static struct virtio_dev *blk_new(struct fake_guest *g, uint64_t size, bool ro)
{
	struct blk_backend *be = calloc(1, sizeof(*be));
	be->ops = &bb_ops;
	be->size = size;
	be->read_only = ro;
	struct virtio_blk_config cfg = { .path = "disk.img", .read_only = ro, .id = "rootfs" };
	char err[128];
	struct virtio_dev *d = virtio_blk_new_backend(be, &cfg, &g->m, gate(), err, sizeof(err));
	if (!d)
		fail_msg("%s", err);
	return d;
}

static void test_blk_same_disk(void **state)
{
	(void)state;
	struct fake_guest g;
	assert_int_equal(fake_guest_init(&g, 1 * MiB), 0);
	struct virtio_dev *a = blk_new(&g, 1 * MiB, false);
	uint8_t *buf;

	struct virtio_dev *b = blk_new(&g, 1 * MiB, false);
	struct snap_reader *r = save_dev(a, &buf);
	assert_int_equal(b->ops->restore(b, r), 0);
	assert_int_equal(snap_left(r), 0);
	snap_reader_free(r);
	free(buf);

	/* Another size, or read-only where the guest could write: refused. */
	struct virtio_dev *c = blk_new(&g, 2 * MiB, false);
	r = save_dev(a, &buf);
	assert_int_equal(c->ops->restore(c, r), -1);
	assert_non_null(strstr(snap_error(r), "had 2048 sectors, this one has 4096"));
	snap_reader_free(r);
	free(buf);
	struct virtio_dev *e = blk_new(&g, 1 * MiB, true);
	r = save_dev(a, &buf);
	assert_int_equal(e->ops->restore(e, r), -1);
	assert_non_null(strstr(snap_error(r), "read-write, this one is read-only"));
	snap_reader_free(r);
	free(buf);
	virtio_blk_free(a);
	virtio_blk_free(b);
	virtio_blk_free(c);
	virtio_blk_free(e);
	fake_guest_fini(&g);
}

/* ---- virtio-vsock ------------------------------------------------------- */


static int vb_start(struct vsock_backend *be)
{
	(void)be;
	return 0;
}
static void vb_free(struct vsock_backend *be)
{
	free(be);
}
static const struct vsock_backend_ops vb_ops = { .start = vb_start, .free = vb_free };


static int raised_evq;
static void raise_rec(struct virtio_dev *d, int q)
{
	(void)d;
	if (q == 2)
		raised_evq++;
}

static struct virtio_dev *vsock_new(struct fake_guest *g, uint64_t cid)
{
	struct vsock_backend *be = calloc(1, sizeof(*be));
	be->ops = &vb_ops;
	char err[128];
	struct virtio_dev *d = virtio_vsock_new_backend(be, cid, &fake_exec, &fake_clk, &g->m, gate(), err, sizeof(err));
	assert_non_null(d);
	d->raise = raise_rec;
	return d;
}

static uint64_t read_cid(struct virtio_dev *d)
{
	uint8_t c[8];
	d->ops->config_read(d, 0, c, 8);
	return get64(c);
}

/* The guest posts an event buffer (8 bytes at 0x80000) and kicks: the
 * device completes it with TRANSPORT_RESET (id 0) in its first 4 bytes. */
static void expect_reset_event(struct fake_guest *g, struct virtio_dev *d, struct fake_vq *evq)
{
	struct fake_seg seg = { 0x80000, 8, true };
	uint32_t id, len;

	memset(g->ram + 0x80000, 0xee, 8);
	uint16_t head = fake_vq_post(evq, &seg, 1);
	d->ops->queue_notify(d, 2);
	assert_true(fake_vq_used(evq, &id, &len));
	assert_int_equal(id, head);
	assert_int_equal(len, 4);
	assert_int_equal(get32(g->ram + 0x80000), 0);
	assert_int_equal(g->ram[0x80004], 0xee);
}

static void test_vsock_cid_and_reset(void **state)
{
	(void)state;
	struct fake_guest g;
	struct fake_vq fq[3];
	uint32_t id, len;
	assert_int_equal(fake_guest_init(&g, 1 * MiB), 0);
	struct virtio_dev *a = vsock_new(&g, 42);
	uint8_t *buf;
	struct snap_reader *r = save_dev(a, &buf);

	/* A restored device, its queues as the transport left them. */
	struct virtio_dev *b = vsock_new(&g, 3);
	assert_int_equal(fake_driver_start(b, fq, g.ram, &g.m, 16), 0);
	assert_int_equal(b->ops->restore(b, r), 0);
	assert_int_equal(read_cid(b), 42);
	snap_reader_free(r);
	/* No event buffer yet: the event waits. */
	raised_evq = 0;
	b->ops->queue_notify(b, 2);
	assert_false(fake_vq_used(&fq[2], &id, &len));
	/* The guest posts one: TRANSPORT_RESET (id 0) in its 4 bytes. */
	expect_reset_event(&g, b, &fq[2]);
	assert_true(raised_evq >= 1);
	/* Once only. */
	struct fake_seg seg = { 0x80000, 8, true };
	fake_vq_post(&fq[2], &seg, 1);
	b->ops->queue_notify(b, 2);
	assert_false(fake_vq_used(&fq[2], &id, &len));

	/* A clone's CID set before the restore wins; bad CIDs are refused. */
	struct virtio_dev *c = vsock_new(&g, 3);
	assert_int_equal(virtio_vsock_set_cid(c, 2), -1);
	assert_int_equal(virtio_vsock_set_cid(c, 77), 0);
	free(buf);
	r = save_dev(a, &buf);
	assert_int_equal(c->ops->restore(c, r), 0);
	assert_int_equal(read_cid(c), 77);
	snap_reader_free(r);
	free(buf);

	/* A hostile CID in the file. */
	struct snap_writer *w = snap_writer_new();
	const uint8_t *fb;
	size_t flen;
	snap_begin(w, "dev", "virtio", 1);
	snap_put_u64(w, 2);
	snap_end(w);
	assert_int_equal(snap_writer_finish(w, &fb, &flen), 0);
	char err[SNAP_ERR_MAX];
	r = snap_reader_open(fb, flen, err, sizeof(err));
	assert_int_equal(snap_open_section(r, "dev", "virtio", 1, NULL), 0);
	assert_int_equal(c->ops->restore(c, r), -1);
	assert_non_null(strstr(snap_error(r), "guest CID 2"));
	snap_reader_free(r);
	snap_writer_free(w);

	virtio_vsock_free(a);
	virtio_vsock_free(b);
	virtio_vsock_free(c);
	fake_guest_fini(&g);
}

/* The event queue of a restored device filled with buffers too small for
 * the event (device-readable) by a second vCPU as fast as they are
 * completed: a look takes at most a ring's worth, and returns while the
 * guest is still posting; the event goes out on the next good buffer. */
static void test_vsock_reset_bad_buffers_bounded(void **state)
{
	(void)state;
	struct fake_guest g;
	struct fake_vq fq[3];
	uint32_t id, len;
	uint8_t *buf;
	pthread_t t;
	cpu_set_t cpus;

	assert_int_equal(fake_guest_init(&g, 1 * MiB), 0);
	struct virtio_dev *a = vsock_new(&g, 42);
	struct snap_reader *r = save_dev(a, &buf);
	struct virtio_dev *b = vsock_new(&g, 3);
	assert_int_equal(fake_driver_start(b, fq, g.ram, &g.m, 256), 0); /* the feeder keeps ahead */
	assert_int_equal(b->ops->restore(b, r), 0);
	snap_reader_free(r);
	free(buf);

	struct fake_feeder w = { .q = fq[2], .buf = { 0x80000, 8, false }, .chain = 64 };
	memset(&stats, 0, sizeof(stats));
	fake_feeder_start(&w, &t, &cpus);
	b->ops->queue_notify(b, 2);
	int stopped = atomic_load(&w.stopped);
	fake_feeder_stop(&w, t, &cpus);
	fq[2] = w.q;
	assert_int_equal(stopped, 0);
	assert_true(stats.errors >= 255); /* those posted before the look */
	assert_true(stats.errors <= 256);
	/* The rest (fewer than a ring), then a good buffer takes the event. */
	b->ops->queue_notify(b, 2);
	while (fake_vq_used(&fq[2], &id, &len))
		assert_int_equal(len, 0);
	expect_reset_event(&g, b, &fq[2]);
	virtio_vsock_free(a);
	virtio_vsock_free(b);
	fake_guest_fini(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_net_mac),
		cmocka_unit_test(test_vsock_cid_and_reset),
		cmocka_unit_test(test_vsock_reset_bad_buffers_bounded),
		cmocka_unit_test(test_blk_same_disk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
