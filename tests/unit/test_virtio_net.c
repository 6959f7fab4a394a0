/* Unit tests for virtio_net (devices/virtio_net.c) and its backends.
 * The device is driven without a transport: rings laid out byte by byte in
 * fake guest memory, queues enabled by hand, queue_notify called directly,
 * and a fake backend that records what the device sends and hands it
 * frames. Then the slirp backend on its own (ARP answered inside libslirp;
 * a host forward reaching the guest through a running event loop), the
 * device over slirp end to end, the TAP backend when the host allows it,
 * and the --net parser. */
#define _GNU_SOURCE /* CPU affinity (fake_feeder.h) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/devreq.h"
#include "core/policy.h"
#include "devices/virtio_net.h"
#include "fake_driver.h"
#include "fake_feeder.h"
#include "fake_dirty.h"
#include "fake_guest.h"
#include "host/entropy.h"
#include "host/evloop.h"
#include "host/net_open.h"
#include "host/net_slirp.h"
#include "host/net_tap.h"
#include "virtio/virtio_dev.h"

#define QSIZE 16
/* Ring layout per queue: desc, avail, used; data area after. */
static const uint64_t ring_base[2] = { 0x1000, 0x4000 };
#define DESC(q) (ring_base[q])
#define AVAIL(q) (ring_base[q] + 0x1000)
#define USED(q) (ring_base[q] + 0x2000)
#define DATA 0x10000ULL
#define RAM (2 * MiB)

/* ---- a fake backend ----------------------------------------------------- */

#define FAKE_FRAMES 8
#define FAKE_MAX (VIRTIO_NET_HDR_LEN + VIRTIO_NET_FRAME_MAX)

struct fake_be {
	struct net_backend be;
	/* what the device sent */
	unsigned sent;
	size_t last_len;
	uint8_t last[FAKE_MAX];
	/* frames waiting for the device */
	unsigned nq;
	size_t qlen[FAKE_FRAMES];
	uint8_t q[FAKE_FRAMES][2048];
	bool rx_on;
	unsigned rx_toggles;
	uint64_t activated_with;
	bool freed;
	size_t endless;  /* non-zero: every recv is a frame claiming this many bytes */
	unsigned recvs;  /* recv calls */
	void (*on_send)(unsigned n); /* called inside the n-th send (0-based) */
	void (*on_recv)(unsigned n); /* called as the n-th recv begins */
};

static int fake_send(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
	struct fake_be *f = (struct fake_be *)b;
	size_t len = 0;

	for (int i = 0; i < iovcnt; i++) {
		assert_true(len + iov[i].iov_len <= sizeof(f->last));
		memcpy(f->last + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	f->last_len = len;
	if (f->on_send)
		f->on_send(f->sent);
	f->sent++;
	return 0;
}

static ssize_t fake_recv(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
	struct fake_be *f = (struct fake_be *)b;

	if (f->on_recv)
		f->on_recv(f->recvs);
	f->recvs++;
	if (f->endless)
		return (ssize_t)f->endless;
	if (!f->nq)
		return -EAGAIN;
	size_t len = f->qlen[0], off = 0;
	for (int i = 0; i < iovcnt && off < len; i++) {
		size_t c = len - off < iov[i].iov_len ? len - off : iov[i].iov_len;
		memcpy(iov[i].iov_base, f->q[0] + off, c);
		off += c;
	}
	f->nq--;
	memmove(f->qlen, f->qlen + 1, f->nq * sizeof(f->qlen[0]));
	memmove(f->q, f->q + 1, f->nq * sizeof(f->q[0]));
	return (ssize_t)len;
}

static void fake_rx_enable(struct net_backend *b, bool on)
{
	struct fake_be *f = (struct fake_be *)b;
	f->rx_on = on;
	f->rx_toggles++;
}

static int fake_activate(struct net_backend *b, uint64_t features)
{
	((struct fake_be *)b)->activated_with = features;
	return 0;
}

static void fake_free(struct net_backend *b)
{
	((struct fake_be *)b)->freed = true;
}

static const struct net_backend_ops fake_ops = {
	.send = fake_send,
	.recv = fake_recv,
	.rx_enable = fake_rx_enable,
	.activate = fake_activate,
	.free = fake_free,
};

static void fake_queue(struct fake_be *f, const uint8_t *frame, size_t len)
{
	assert_true(f->nq < FAKE_FRAMES && len <= sizeof(f->q[0]));
	memcpy(f->q[f->nq], frame, len);
	f->qlen[f->nq++] = len;
}

/* ---- the fixture: a device with its queues enabled --------------------- */

static struct fake_guest g;
static struct fake_be fb;
static struct virtio_dev *dev;
static struct dev_stats stats;

static unsigned raised[3]; /* [0] rxq, [1] txq, [2] config */
static uint16_t aidx[2], next_desc[2];
static uint64_t data_top;

static void on_raise(struct virtio_dev *d, int q)
{
	(void)d;
	raised[q < 0 ? 2 : q]++;
}

static void enable_queues(struct virtio_dev *d)
{
	for (unsigned q = 0; q < 2; q++) {
		d->vq[q].size = QSIZE;
		d->vq[q].desc_gpa = DESC(q);
		d->vq[q].avail_gpa = AVAIL(q);
		d->vq[q].used_gpa = USED(q);
		assert_int_equal(virtq_enable(&d->vq[q], d->mem), 0);
	}
}

static void start(struct virtio_dev *d, uint64_t extra_features)
{
	d->features = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_MAC) |
		      VIRTIO_BIT(VIRTIO_NET_F_STATUS) | extra_features;
	assert_int_equal(d->features & ~(d->host_features | VIRTIO_BIT(VIRTIO_F_VERSION_1)), 0);
	enable_queues(d);
	d->raise = on_raise;
	atomic_store(&d->status, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK |
					 VIRTIO_S_DRIVER_OK);
	assert_int_equal(d->ops->activate(d), 0);
}

static struct dev_gate gate(bool read_only)
{
	return (struct dev_gate){ .stats = &stats, .policy = NULL, .read_only = read_only };
}

static int setup_common(bool vnet_hdr, bool read_only)
{
	if (fake_guest_init(&g, RAM))
		return -1;
	memset(&fb, 0, sizeof(fb));
	memset(&stats, 0, sizeof(stats));
	memset(raised, 0, sizeof(raised));
	memset(aidx, 0, sizeof(aidx));
	memset(next_desc, 0, sizeof(next_desc));
	data_top = DATA;
	fb.be.ops = &fake_ops;
	fb.be.name = "fake";
	fb.be.vnet_hdr = vnet_hdr;
	fb.be.features = vnet_hdr ? VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) : 0;
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	char err[128];
	dev = virtio_net_new_backend(&fb.be, mac, NULL, &g.m, gate(read_only), err, sizeof(err));
	if (!dev)
		return -1;
	start(dev, 0);
	return 0;
}

static int setup_plain(void **state)
{
	(void)state;
	return setup_common(false, false);
}

static int setup_vnet(void **state)
{
	(void)state;
	return setup_common(true, false);
}

static int setup_ro(void **state)
{
	(void)state;
	return setup_common(false, true);
}

static int teardown(void **state)
{
	(void)state;
	virtio_net_free(dev);
	dev = NULL;
	fake_guest_fini(&g);
	return 0;
}

/* ---- the driver's side of the rings ------------------------------------ */

struct buf {
	uint64_t gpa;
	uint32_t len;
	bool writable;
};

/* Bytes of guest data area, zeroed. */
static uint64_t galloc(uint32_t len)
{
	uint64_t gpa = data_top;
	data_top = (data_top + len + 15) & ~15ULL;
	assert_true(data_top <= RAM);
	memset(g.ram + gpa, 0, len);
	return gpa;
}

static void set_desc(unsigned q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = g.ram + DESC(q) + 16u * i;
	put64(d, addr);
	put32(d + 8, len);
	put16(d + 12, flags);
	put16(d + 14, next);
}

static void publish(unsigned q, uint16_t head)
{
	put16(g.ram + AVAIL(q) + 4 + 2u * (aidx[q] % QSIZE), head);
	aidx[q]++;
	put16(g.ram + AVAIL(q) + 2, aidx[q]);
}

/* Lays out a chain and makes it available; returns its head. */
static uint16_t post(unsigned q, const struct buf *b, unsigned n)
{
	uint16_t head = next_desc[q];
	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % QSIZE);
		uint16_t flags = (uint16_t)((b[i].writable ? VIRTQ_DESC_F_WRITE : 0) |
					    (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
		set_desc(q, idx, b[i].gpa, b[i].len, flags, (uint16_t)((idx + 1) % QSIZE));
	}
	next_desc[q] = (uint16_t)((head + n) % QSIZE);
	publish(q, head);
	return head;
}

static uint16_t used_idx(unsigned q)
{
	return get16(g.ram + USED(q) + 2);
}

static void used_elem(unsigned q, uint16_t k, uint32_t *id, uint32_t *len)
{
	const uint8_t *e = g.ram + USED(q) + 4 + 8u * (k % QSIZE);
	*id = get32(e);
	*len = get32(e + 4);
}

/* A TX chain: header (12 bytes) in one buffer, the frame split in two. */
static uint16_t post_tx(const uint8_t *hdr, const uint8_t *frame, uint32_t len)
{
	uint64_t h = galloc(VIRTIO_NET_HDR_LEN), a = galloc(len), b = galloc(len);
	uint32_t first = len / 3;
	memcpy(g.ram + h, hdr, VIRTIO_NET_HDR_LEN);
	memcpy(g.ram + a, frame, first);
	memcpy(g.ram + b, frame + first, len - first);
	struct buf bufs[3] = { { h, VIRTIO_NET_HDR_LEN, false }, { a, first, false }, { b, len - first, false } };
	return post(VIRTIO_NET_TXQ, bufs, 3);
}

/* An RX chain of `total` writable bytes in two buffers (the header split
 * across them, to exercise the copies); returns the head, *gpa0/1 set. */
static uint16_t post_rx(uint32_t total, uint64_t *gpa0, uint64_t *gpa1)
{
	uint32_t first = 7;
	uint64_t a = galloc(first), b = galloc(total - first);
	memset(g.ram + a, 0xee, first);
	memset(g.ram + b, 0xee, total - first);
	struct buf bufs[2] = { { a, first, true }, { b, total - first, true } };
	*gpa0 = a;
	*gpa1 = b;
	return post(VIRTIO_NET_RXQ, bufs, 2);
}

/* Reads back what the device wrote into a post_rx chain. */
static void rx_read(uint64_t a, uint64_t b, uint8_t *out, uint32_t len)
{
	uint32_t first = len < 7 ? len : 7;
	memcpy(out, g.ram + a, first);
	memcpy(out + first, g.ram + b, len - first);
}

static void make_frame(uint8_t *f, size_t len, uint32_t seed)
{
	fill_pattern(f, len, seed);
	memcpy(f, "\x52\x54\x00\x12\x34\x56", 6);
}

/* ---- TX ----------------------------------------------------------------- */

static void test_tx_strips_header(void **state)
{
	(void)state;
	uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	uint8_t frame[98];
	make_frame(frame, sizeof(frame), 1);

	uint16_t head = post_tx(hdr, frame, sizeof(frame));
	dev->ops->queue_notify(dev, VIRTIO_NET_TXQ);

	assert_int_equal(fb.sent, 1);
	assert_int_equal(fb.last_len, sizeof(frame));
	assert_memory_equal(fb.last, frame, sizeof(frame));
	assert_int_equal(used_idx(VIRTIO_NET_TXQ), 1);
	uint32_t id, len;
	used_elem(VIRTIO_NET_TXQ, 0, &id, &len);
	assert_int_equal(id, head);
	assert_int_equal(len, 0);
	assert_int_equal(raised[VIRTIO_NET_TXQ], 1);
	assert_int_equal(stats.requests, 1);
	assert_int_equal(stats.bytes, sizeof(frame));
	assert_int_equal(stats.errors, 0);
}

static void test_tx_keeps_header_for_vnet_backend(void **state)
{
	(void)state;
	uint8_t hdr[VIRTIO_NET_HDR_LEN] = { VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 0, 0, 34, 0, 16, 0, 0, 0 };
	uint8_t frame[200];
	make_frame(frame, sizeof(frame), 2);
	start(dev, VIRTIO_BIT(VIRTIO_NET_F_CSUM)); /* a partial checksum needs CSUM negotiated */

	post_tx(hdr, frame, sizeof(frame));
	dev->ops->queue_notify(dev, VIRTIO_NET_TXQ);

	assert_int_equal(fb.sent, 1);
	assert_int_equal(fb.last_len, VIRTIO_NET_HDR_LEN + sizeof(frame));
	assert_memory_equal(fb.last, hdr, VIRTIO_NET_HDR_LEN);
	assert_memory_equal(fb.last + VIRTIO_NET_HDR_LEN, frame, sizeof(frame));
	/* the backend's offloads are offered on top of MAC and STATUS */
	assert_true(dev->host_features & VIRTIO_BIT(VIRTIO_NET_F_CSUM));
}

/* The header a TAP backend gets asks only for what was negotiated; the
 * frame of one that asks for more is dropped and counted. */
static void test_tx_header_within_features(void **state)
{
	(void)state;
	uint8_t frame[200];
	make_frame(frame, sizeof(frame), 3);
	const uint8_t bad[][VIRTIO_NET_HDR_LEN] = {
		{ VIRTIO_NET_HDR_F_NEEDS_CSUM },                 /* CSUM not negotiated */
		{ 0, VIRTIO_NET_HDR_GSO_TCPV4, 0, 0, 0x40, 5 },  /* no HOST_TSO4 */
		{ 0, VIRTIO_NET_HDR_GSO_TCPV6 },                 /* no HOST_TSO6 */
		{ 0, VIRTIO_NET_HDR_GSO_UDP },                   /* UFO never offered */
		{ 0, VIRTIO_NET_HDR_GSO_ECN },                   /* ECN never offered */
		{ 0, 7 },                                        /* no such GSO type */
		{ 0x80 },                                        /* unknown flag */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		post_tx(bad[i], frame, sizeof(frame));
	dev->ops->queue_notify(dev, VIRTIO_NET_TXQ);
	assert_int_equal(fb.sent, 0);
	assert_int_equal(used_idx(VIRTIO_NET_TXQ), sizeof(bad) / sizeof(bad[0])); /* all completed */
	assert_int_equal(atomic_load(&stats.errors), sizeof(bad) / sizeof(bad[0]));

	/* A plain header passes, as a copy: the guest changing its bytes
	 * after the send cannot reach the backend's. */
	const uint8_t plain[VIRTIO_NET_HDR_LEN] = { 0 };
	post_tx(plain, frame, sizeof(frame));
	dev->ops->queue_notify(dev, VIRTIO_NET_TXQ);
	assert_int_equal(fb.sent, 1);
	assert_memory_equal(fb.last, plain, VIRTIO_NET_HDR_LEN);
	assert_memory_equal(fb.last + VIRTIO_NET_HDR_LEN, frame, sizeof(frame));
}

static void test_tx_too_large(void **state)
{
	(void)state;
	uint32_t len = VIRTIO_NET_HDR_LEN + VIRTIO_NET_FRAME_MAX + 1;
	uint64_t a = galloc(len);
	make_frame(g.ram + a + VIRTIO_NET_HDR_LEN, 64, 3);
	struct buf b = { a, len, false };
	post(VIRTIO_NET_TXQ, &b, 1);
	dev->ops->queue_notify(dev, VIRTIO_NET_TXQ);

	assert_int_equal(fb.sent, 0);
	assert_int_equal(used_idx(VIRTIO_NET_TXQ), 1);
	struct virtio_net_stats st;
	virtio_net_get_stats(dev, &st);
	assert_int_equal(st.tx_errors, 1);
	assert_int_equal(stats.errors, 1);

	/* the largest allowed frame still goes through */
	len--;
	b = (struct buf){ galloc(len), len, false };
	make_frame(g.ram + b.gpa + VIRTIO_NET_HDR_LEN, 64, 3);
	post(VIRTIO_NET_TXQ, &b, 1);
	dev->ops->queue_notify(dev, VIRTIO_NET_TXQ);
	assert_int_equal(fb.sent, 1);
	assert_int_equal(fb.last_len, VIRTIO_NET_FRAME_MAX);
}

static void test_tx_writable_buffer_refused(void **state)
{
	(void)state;
	uint64_t h = galloc(VIRTIO_NET_HDR_LEN + 60), w = galloc(64);
	struct buf bufs[2] = { { h, VIRTIO_NET_HDR_LEN + 60, false }, { w, 64, true } };
	uint16_t head = post(VIRTIO_NET_TXQ, bufs, 2);
	dev->ops->queue_notify(dev, VIRTIO_NET_TXQ);

	assert_int_equal(fb.sent, 0);
	uint32_t id, len;
	assert_int_equal(used_idx(VIRTIO_NET_TXQ), 1);
	used_elem(VIRTIO_NET_TXQ, 0, &id, &len);
	assert_int_equal(id, head);
	assert_int_equal(len, 0);
	assert_int_equal(stats.errors, 1);
}

static void test_tx_short_header_refused(void **state)
{
	(void)state;
	struct buf b = { galloc(10), 10, false };
	post(VIRTIO_NET_TXQ, &b, 1);
	/* a header but less than an Ethernet header behind it */
	struct buf c = { galloc(VIRTIO_NET_HDR_LEN + 13), VIRTIO_NET_HDR_LEN + 13, false };
	post(VIRTIO_NET_TXQ, &c, 1);
	dev->ops->queue_notify(dev, VIRTIO_NET_TXQ);

	assert_int_equal(fb.sent, 0);
	assert_int_equal(used_idx(VIRTIO_NET_TXQ), 2);
	assert_int_equal(stats.errors, 2);
}

static void test_tx_bad_chain_then_good(void **state)
{
	(void)state;
	/* head 0 points its next at descriptor 200: outside the queue */
	set_desc(VIRTIO_NET_TXQ, 0, galloc(64), 64, VIRTQ_DESC_F_NEXT, 200);
	next_desc[VIRTIO_NET_TXQ] = 1;
	publish(VIRTIO_NET_TXQ, 0);
	uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 }, frame[60];
	make_frame(frame, sizeof(frame), 4);
	post_tx(hdr, frame, sizeof(frame));
	dev->ops->queue_notify(dev, VIRTIO_NET_TXQ);

	assert_int_equal(used_idx(VIRTIO_NET_TXQ), 2);
	uint32_t id, len;
	used_elem(VIRTIO_NET_TXQ, 0, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 0);
	assert_int_equal(fb.sent, 1);
	assert_memory_equal(fb.last, frame, sizeof(frame));
	struct virtio_net_stats st;
	virtio_net_get_stats(dev, &st);
	assert_int_equal(st.bad_chains, 1);
	assert_false(atomic_load(&dev->status) & VIRTIO_S_DEVICE_NEEDS_RESET);
}

static void test_tx_runaway_avail_needs_reset(void **state)
{
	(void)state;
	put16(g.ram + AVAIL(VIRTIO_NET_TXQ) + 2, QSIZE + 5);
	dev->ops->queue_notify(dev, VIRTIO_NET_TXQ);

	assert_true(atomic_load(&dev->status) & VIRTIO_S_DEVICE_NEEDS_RESET);
	assert_int_equal(raised[2], 1);
	assert_int_equal(fb.sent, 0);
	/* and the device leaves its queues alone from then on */
	uint8_t frame[60];
	make_frame(frame, sizeof(frame), 5);
	fake_queue(&fb, frame, sizeof(frame));
	fb.be.rx_ready(fb.be.rx_ctx);
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 0);
	assert_int_equal(fb.nq, 1);
}

static void test_tx_denied_by_policy(void **state)
{
	(void)state;
	uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 }, frame[60];
	make_frame(frame, sizeof(frame), 6);
	post_tx(hdr, frame, sizeof(frame));
	dev->ops->queue_notify(dev, VIRTIO_NET_TXQ);

	assert_int_equal(fb.sent, 0);
	assert_int_equal(stats.denied, 1);
	assert_int_equal(used_idx(VIRTIO_NET_TXQ), 1); /* completed all the same */
}

/* ---- RX ----------------------------------------------------------------- */

static void test_rx_gets_header_and_frame(void **state)
{
	(void)state;
	uint64_t a, b;
	uint16_t head = post_rx(1526, &a, &b);
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);
	assert_true(fb.rx_on);

	uint8_t frame[342];
	make_frame(frame, sizeof(frame), 7);
	fake_queue(&fb, frame, sizeof(frame));
	fb.be.rx_ready(fb.be.rx_ctx);

	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 1);
	uint32_t id, len;
	used_elem(VIRTIO_NET_RXQ, 0, &id, &len);
	assert_int_equal(id, head);
	assert_int_equal(len, VIRTIO_NET_HDR_LEN + sizeof(frame));
	uint8_t got[VIRTIO_NET_HDR_LEN + sizeof(frame)];
	rx_read(a, b, got, sizeof(got));
	static const uint8_t want_hdr[VIRTIO_NET_HDR_LEN] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	assert_memory_equal(got, want_hdr, VIRTIO_NET_HDR_LEN);
	assert_memory_equal(got + VIRTIO_NET_HDR_LEN, frame, sizeof(frame));
	assert_int_equal(raised[VIRTIO_NET_RXQ], 1);
	assert_int_equal(stats.bytes, sizeof(frame));
	/* the ring is empty again: the backend is told to hold frames */
	assert_false(fb.rx_on);
}

/* Diff snapshots: the held chain's descriptors are pointed elsewhere while
 * the device holds it, then a frame comes. The device writes the buffers it
 * popped, so those pages are the ones marked, whatever the ring says now. */
static void test_rx_marks_held_buffers(void **state)
{
	(void)state;
	uint64_t a, b;
	uint16_t head = post_rx(1526, &a, &b);
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);
	assert_int_equal(gmem_dirty_track(&g.m, true), 0);
	uint64_t elsewhere = (galloc(3 * 4096) + 4095) & ~4095ULL;
	put64(g.ram + DESC(VIRTIO_NET_RXQ) + 16u * head, elsewhere);
	put64(g.ram + DESC(VIRTIO_NET_RXQ) + 16u * ((head + 1) % QSIZE), elsewhere + 4096);

	uint8_t frame[1500];
	make_frame(frame, sizeof(frame), 11);
	fake_queue(&fb, frame, sizeof(frame));
	fb.be.rx_ready(fb.be.rx_ctx);
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 1);
	uint8_t got[VIRTIO_NET_HDR_LEN + sizeof(frame)];
	rx_read(a, b, got, sizeof(got));
	assert_memory_equal(got + VIRTIO_NET_HDR_LEN, frame, sizeof(frame));
	assert_true(fake_dirty_marked(&g.m, a, b + 1519 - a));
	gmem_dirty_track(&g.m, false);
}

static void test_rx_vnet_header_passed_and_sanitised(void **state)
{
	(void)state;
	uint64_t a, b;
	post_rx(1526, &a, &b);
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);

	uint8_t in[VIRTIO_NET_HDR_LEN + 80];
	memset(in, 0, VIRTIO_NET_HDR_LEN);
	in[VIRTIO_NET_HDR_OFF_FLAGS] = VIRTIO_NET_HDR_F_DATA_VALID; /* GUEST_CSUM not negotiated */
	in[VIRTIO_NET_HDR_OFF_NUM_BUFS] = 0x77;                    /* whatever the host left */
	make_frame(in + VIRTIO_NET_HDR_LEN, 80, 8);
	fake_queue(&fb, in, sizeof(in));
	fb.be.rx_ready(fb.be.rx_ctx);

	uint32_t id, len;
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 1);
	used_elem(VIRTIO_NET_RXQ, 0, &id, &len);
	assert_int_equal(len, sizeof(in));
	uint8_t got[sizeof(in)];
	rx_read(a, b, got, sizeof(got));
	assert_int_equal(got[VIRTIO_NET_HDR_OFF_FLAGS], 0);
	assert_int_equal(get16(got + VIRTIO_NET_HDR_OFF_NUM_BUFS), 1);
	assert_memory_equal(got + VIRTIO_NET_HDR_LEN, in + VIRTIO_NET_HDR_LEN, 80);
}

static void test_rx_held_until_buffer(void **state)
{
	(void)state;
	uint8_t f1[60], f2[70];
	make_frame(f1, sizeof(f1), 9);
	make_frame(f2, sizeof(f2), 10);
	fake_queue(&fb, f1, sizeof(f1));
	fake_queue(&fb, f2, sizeof(f2));

	/* frames announced, no buffer: nothing lost, delivery switched off */
	fb.rx_on = true;
	fb.be.rx_ready(fb.be.rx_ctx);
	fb.be.rx_ready(fb.be.rx_ctx);
	assert_int_equal(fb.nq, 2);
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 0);

	/* one buffer and a kick: the first frame lands, the second waits */
	uint64_t a, b;
	post_rx(1526, &a, &b);
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 1);
	assert_int_equal(fb.nq, 1);
	assert_false(fb.rx_on);
	uint8_t got[VIRTIO_NET_HDR_LEN + sizeof(f1)];
	rx_read(a, b, got, sizeof(got));
	assert_memory_equal(got + VIRTIO_NET_HDR_LEN, f1, sizeof(f1));

	post_rx(1526, &a, &b);
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 2);
	assert_int_equal(fb.nq, 0);
	uint8_t got2[VIRTIO_NET_HDR_LEN + sizeof(f2)];
	rx_read(a, b, got2, sizeof(got2));
	assert_memory_equal(got2 + VIRTIO_NET_HDR_LEN, f2, sizeof(f2));
	/* a buffer popped with no frame waits: delivery stays on */
	post_rx(1526, &a, &b);
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);
	assert_true(fb.rx_on);
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 2);
	fake_queue(&fb, f1, sizeof(f1));
	fb.be.rx_ready(fb.be.rx_ctx);
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 3);
}

/* Quiesce stops reading the host side and taking kicks; resume looks at
 * the queues once and delivers what waited. */
static void test_quiesce_resume(void **state)
{
	(void)state;
	uint64_t a, b;
	post_rx(1526, &a, &b);
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);
	assert_true(fb.rx_on);

	assert_non_null(dev->ops->quiesce);
	dev->ops->quiesce(dev);
	assert_false(fb.rx_on); /* the TAP/slirp side is not read */
	uint8_t f1[60];
	make_frame(f1, sizeof(f1), 11);
	fake_queue(&fb, f1, sizeof(f1));
	fb.be.rx_ready(fb.be.rx_ctx);
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 0);
	assert_int_equal(fb.nq, 1);
	assert_false(fb.rx_on);

	dev->ops->resume(dev);
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 1);
	assert_int_equal(fb.nq, 0);
	uint8_t got[VIRTIO_NET_HDR_LEN + sizeof(f1)];
	rx_read(a, b, got, sizeof(got));
	assert_memory_equal(got + VIRTIO_NET_HDR_LEN, f1, sizeof(f1));
}

static void test_rx_frame_too_big_for_buffer(void **state)
{
	(void)state;
	uint64_t a, b;
	uint16_t head = post_rx(VIRTIO_NET_HDR_LEN + 100, &a, &b);
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);

	uint8_t big[101], ok[100];
	make_frame(big, sizeof(big), 11);
	make_frame(ok, sizeof(ok), 12);
	fake_queue(&fb, big, sizeof(big));
	fake_queue(&fb, ok, sizeof(ok));
	fb.be.rx_ready(fb.be.rx_ctx);

	/* the big one is dropped and counted; the same chain takes the next */
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 1);
	uint32_t id, len;
	used_elem(VIRTIO_NET_RXQ, 0, &id, &len);
	assert_int_equal(id, head);
	assert_int_equal(len, VIRTIO_NET_HDR_LEN + sizeof(ok));
	uint8_t got[VIRTIO_NET_HDR_LEN + sizeof(ok)];
	rx_read(a, b, got, sizeof(got));
	assert_memory_equal(got + VIRTIO_NET_HDR_LEN, ok, sizeof(ok));
	struct virtio_net_stats st;
	virtio_net_get_stats(dev, &st);
	assert_int_equal(st.rx_errors, 1);
	assert_int_equal(st.rx_frames, 1);
}

static void test_rx_readable_buffer_refused(void **state)
{
	(void)state;
	uint64_t r = galloc(16), w = galloc(1526);
	struct buf bufs[2] = { { r, 16, false }, { w, 1526, true } };
	uint16_t bad = post(VIRTIO_NET_RXQ, bufs, 2);
	uint64_t a, b;
	uint16_t good = post_rx(1526, &a, &b);
	uint8_t frame[60];
	make_frame(frame, sizeof(frame), 13);
	fake_queue(&fb, frame, sizeof(frame));
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);

	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 2);
	uint32_t id, len;
	used_elem(VIRTIO_NET_RXQ, 0, &id, &len);
	assert_int_equal(id, bad);
	assert_int_equal(len, 0);
	used_elem(VIRTIO_NET_RXQ, 1, &id, &len);
	assert_int_equal(id, good);
	assert_int_equal(len, VIRTIO_NET_HDR_LEN + sizeof(frame));
	assert_int_equal(stats.errors, 1);
}

/* Device-readable receive chains posted by a second vCPU as fast as the
 * device completes them: one look at the ring takes at most a ring's worth
 * (the event thread runs it outside any kick's budget) and returns while
 * the guest is still posting. On a loaded host the feeder may fall behind,
 * which ends the old code's loop early too, so the count is what tells. */
static void test_rx_bad_chains_bounded(void **state)
{
	(void)state;
	const uint16_t size = 256; /* the feeder then stays ahead of the device */
	struct fake_feeder w = {
		.q = { .ram = g.ram, .desc = DESC(VIRTIO_NET_RXQ), .avail = AVAIL(VIRTIO_NET_RXQ),
		       .used = USED(VIRTIO_NET_RXQ), .size = size },
		.buf = { galloc(64), 64, false },
		.chain = 64, /* long, so each costs the device more than the feeder */
	};
	pthread_t t;
	cpu_set_t cpus;
	uint8_t frame[60];

	dev->vq[VIRTIO_NET_RXQ].size = size;
	assert_int_equal(virtq_enable(&dev->vq[VIRTIO_NET_RXQ], dev->mem), 0);
	make_frame(frame, sizeof(frame), 14);
	fake_queue(&fb, frame, sizeof(frame));
	fake_feeder_start(&w, &t, &cpus);
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);
	int stopped = atomic_load(&w.stopped);
	fake_feeder_stop(&w, t, &cpus);
	struct virtio_net_stats st;
	virtio_net_get_stats(dev, &st);
	assert_int_equal(stopped, 0);
	assert_true(st.rx_errors >= size - 1u); /* those posted before the look */
	assert_true(st.rx_errors <= size);
	assert_int_equal(st.rx_frames, 0);
	assert_int_equal(fb.nq, 1); /* the frame waits for a good buffer */
}

static void test_rx_reset_forgets_chain(void **state)
{
	(void)state;
	uint64_t a, b;
	post_rx(1526, &a, &b);
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ); /* pops and keeps the chain */
	assert_true(fb.rx_on);

	dev->ops->reset(dev);
	atomic_store(&dev->status, 0);
	assert_false(fb.rx_on);
	uint8_t frame[60];
	make_frame(frame, sizeof(frame), 14);
	fake_queue(&fb, frame, sizeof(frame));
	fb.be.rx_ready(fb.be.rx_ctx);
	assert_int_equal(fb.nq, 1);
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 0);

	/* the driver starts over: new rings, the frame goes to a new buffer */
	for (unsigned q = 0; q < 2; q++)
		virtq_reset(&dev->vq[q]);
	memset(g.ram + DESC(0), 0, 0x6000);
	memset(aidx, 0, sizeof(aidx));
	memset(next_desc, 0, sizeof(next_desc));
	start(dev, 0);
	post_rx(1526, &a, &b);
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 1);
	assert_int_equal(fb.nq, 0);
}

/* ---- RX with mergeable buffers ------------------------------------------ */

/* The driver negotiates MRG_RXBUF (the queues start over). */
static void start_mrg(void)
{
	start(dev, VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF));
}

/* n one-buffer receive chains of len bytes each; gpa[i] their buffers. */
static void post_rx_bufs(unsigned n, uint32_t len, uint64_t *gpa)
{
	for (unsigned i = 0; i < n; i++) {
		gpa[i] = galloc(len);
		memset(g.ram + gpa[i], 0xee, len);
		struct buf b = { gpa[i], len, true };
		post(VIRTIO_NET_RXQ, &b, 1);
	}
}

/* Reads `len` bytes spread over the buffers gpa[0..] of `each` bytes. */
static void rx_gather(const uint64_t *gpa, uint32_t each, uint8_t *out, uint32_t len)
{
	for (unsigned i = 0; len; i++) {
		uint32_t c = len < each ? len : each;
		memcpy(out, g.ram + gpa[i], c);
		out += c;
		len -= c;
	}
}

/* A frame longer than one buffer spans several chains; num_buffers says
 * how many, each used length is what that chain got. */
static void test_mrg_frame_spans_chains(void **state)
{
	(void)state;
	start_mrg();
	uint64_t gpa[16];
	post_rx_bufs(16, 128, gpa); /* 2048 bytes >= the 1530 one frame may need */
	uint8_t frame[300];
	make_frame(frame, sizeof(frame), 21);
	fake_queue(&fb, frame, sizeof(frame));
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);

	/* 12 + 300 = 312 bytes: 128 + 128 + 56 */
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 3);
	static const uint32_t want[3] = { 128, 128, 56 };
	for (unsigned i = 0; i < 3; i++) {
		uint32_t id, len;
		used_elem(VIRTIO_NET_RXQ, (uint16_t)i, &id, &len);
		assert_int_equal(id, i);
		assert_int_equal(len, want[i]);
	}
	uint8_t got[VIRTIO_NET_HDR_LEN + sizeof(frame)];
	rx_gather(gpa, 128, got, sizeof(got));
	assert_int_equal(get16(got + VIRTIO_NET_HDR_OFF_NUM_BUFS), 3);
	assert_int_equal(got[VIRTIO_NET_HDR_OFF_FLAGS], 0);
	assert_memory_equal(got + VIRTIO_NET_HDR_LEN, frame, sizeof(frame));
	assert_int_equal(raised[VIRTIO_NET_RXQ], 1);
	struct virtio_net_stats st;
	virtio_net_get_stats(dev, &st);
	assert_int_equal(st.rx_frames, 1);
	assert_int_equal(st.rx_bufs, 3);
	assert_int_equal(st.rx_errors, 0);
}

/* Several waiting frames go in one run: one used-ring update, one
 * interrupt, the batch counted. */
static void test_mrg_batch_one_interrupt(void **state)
{
	(void)state;
	start_mrg();
	uint64_t gpa[16];
	post_rx_bufs(16, 256, gpa);
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);
	assert_true(fb.rx_on);
	uint8_t f[5][100];
	for (unsigned i = 0; i < 5; i++) {
		make_frame(f[i], sizeof(f[i]), 30 + i);
		fake_queue(&fb, f[i], sizeof(f[i]));
	}
	fb.be.rx_ready(fb.be.rx_ctx);

	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 5);
	assert_int_equal(raised[VIRTIO_NET_RXQ], 1);
	for (unsigned i = 0; i < 5; i++) {
		uint8_t got[VIRTIO_NET_HDR_LEN + 100];
		memcpy(got, g.ram + gpa[i], sizeof(got));
		assert_int_equal(get16(got + VIRTIO_NET_HDR_OFF_NUM_BUFS), 1);
		assert_memory_equal(got + VIRTIO_NET_HDR_LEN, f[i], 100);
	}
	struct virtio_net_stats st;
	virtio_net_get_stats(dev, &st);
	assert_int_equal(st.rx_batches, 1);
	assert_int_equal(st.rx_batch_max, 5);
	assert_true(fb.rx_on); /* buffers remain: delivery stays on */
}

/* Too few buffers for the largest frame: nothing is read, the frames wait
 * on the host side until the driver posts more and kicks. */
static void test_mrg_waits_for_enough_buffers(void **state)
{
	(void)state;
	start_mrg();
	uint64_t gpa[16];
	post_rx_bufs(4, 200, gpa); /* 800 < 1530 */
	uint8_t frame[60];
	make_frame(frame, sizeof(frame), 40);
	fake_queue(&fb, frame, sizeof(frame));
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 0);
	assert_int_equal(fb.nq, 1);
	assert_false(fb.rx_on);
	struct virtio_net_stats st;
	virtio_net_get_stats(dev, &st);
	assert_int_equal(st.rx_waits, 1);

	post_rx_bufs(4, 200, gpa + 4);
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 1);
	assert_int_equal(fb.nq, 0);
	uint32_t id, len;
	used_elem(VIRTIO_NET_RXQ, 0, &id, &len);
	assert_int_equal(id, 0); /* the first chain held, in ring order */
	assert_int_equal(len, VIRTIO_NET_HDR_LEN + sizeof(frame));
	assert_memory_equal(g.ram + gpa[0] + VIRTIO_NET_HDR_LEN, frame, sizeof(frame));
}

/* A driver whose whole ring is ours and still short of the largest frame
 * gets what fits (it could post nothing more); what does not fit is
 * dropped and counted, never written past the buffers. */
static void test_mrg_small_ring_gets_what_fits(void **state)
{
	(void)state;
	start_mrg();
	uint64_t gpa[16];
	post_rx_bufs(QSIZE, 40, gpa); /* 640 bytes, every descriptor */
	uint8_t small[100], big[700];
	make_frame(small, sizeof(small), 41);
	make_frame(big, sizeof(big), 42);
	fake_queue(&fb, big, sizeof(big));
	fake_queue(&fb, small, sizeof(small));
	uint64_t end = galloc(64); /* right after the last buffer */
	memset(g.ram + end, 0x5a, 64);
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);

	assert_int_equal(fb.nq, 0);
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 3); /* 112 bytes: 40 + 40 + 32 */
	uint8_t got[VIRTIO_NET_HDR_LEN + sizeof(small)];
	rx_gather(gpa, 40, got, sizeof(got));
	assert_int_equal(get16(got + VIRTIO_NET_HDR_OFF_NUM_BUFS), 3);
	assert_memory_equal(got + VIRTIO_NET_HDR_LEN, small, sizeof(small));
	for (unsigned i = 0; i < 64; i++)
		assert_int_equal(g.ram[end + i], 0x5a);
	struct virtio_net_stats st;
	virtio_net_get_stats(dev, &st);
	assert_int_equal(st.rx_errors, 1);
	assert_int_equal(st.rx_frames, 1);
}

/* A frame longer than what was held lands in the spill first and its tail
 * goes to chains popped for it. */
static void test_mrg_long_frame_takes_more_chains(void **state)
{
	(void)state;
	start_mrg();
	uint64_t gpa[16];
	post_rx_bufs(10, 256, gpa); /* 6 held (1536 >= 1530), 4 more in the ring */
	uint8_t frame[2000];
	make_frame(frame, sizeof(frame), 43);
	fake_queue(&fb, frame, sizeof(frame));
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);

	/* 2012 bytes: 7 full chains and 220 in the 8th */
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 8);
	uint32_t id, len;
	used_elem(VIRTIO_NET_RXQ, 7, &id, &len);
	assert_int_equal(id, 7);
	assert_int_equal(len, 2012 - 7 * 256);
	uint8_t got[VIRTIO_NET_HDR_LEN + sizeof(frame)];
	rx_gather(gpa, 256, got, sizeof(got));
	assert_int_equal(get16(got + VIRTIO_NET_HDR_OFF_NUM_BUFS), 8);
	assert_memory_equal(got + VIRTIO_NET_HDR_LEN, frame, sizeof(frame));
}

/* Each mergeable buffer must hold a header: shorter chains are completed
 * empty and counted, the next good one takes the frame. */
static void test_mrg_chain_shorter_than_header(void **state)
{
	(void)state;
	start_mrg();
	uint64_t tiny[2], gpa[8];
	post_rx_bufs(2, VIRTIO_NET_HDR_LEN - 1, tiny);
	post_rx_bufs(8, 256, gpa);
	uint8_t frame[80];
	make_frame(frame, sizeof(frame), 44);
	fake_queue(&fb, frame, sizeof(frame));
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);

	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 3);
	uint32_t id, len;
	used_elem(VIRTIO_NET_RXQ, 0, &id, &len);
	assert_int_equal(len, 0);
	used_elem(VIRTIO_NET_RXQ, 1, &id, &len);
	assert_int_equal(len, 0);
	used_elem(VIRTIO_NET_RXQ, 2, &id, &len);
	assert_int_equal(id, 2);
	assert_int_equal(len, VIRTIO_NET_HDR_LEN + sizeof(frame));
	assert_memory_equal(g.ram + gpa[0] + VIRTIO_NET_HDR_LEN, frame, sizeof(frame));
	assert_int_equal(stats.errors, 2);
}

/* The header split over descriptors of the first chain (a hostile but
 * legal layout): num_buffers still lands in it. */
static void test_mrg_header_split_in_chain(void **state)
{
	(void)state;
	start_mrg();
	uint64_t a, b, gpa[8];
	post_rx(512, &a, &b); /* 7 + 505 */
	post_rx_bufs(4, 512, gpa);
	uint8_t frame[600];
	make_frame(frame, sizeof(frame), 45);
	fake_queue(&fb, frame, sizeof(frame));
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);

	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 2);
	uint8_t got[512];
	rx_read(a, b, got, sizeof(got));
	assert_int_equal(get16(got + VIRTIO_NET_HDR_OFF_NUM_BUFS), 2);
	assert_memory_equal(got + VIRTIO_NET_HDR_LEN, frame, 500);
	assert_memory_equal(g.ram + gpa[0], frame + 500, 100);
}

/* TAP-like backend: its header passes (flags kept when GUEST_CSUM was
 * negotiated), num_buffers is ours whatever the host left there. */
static void test_mrg_vnet_header(void **state)
{
	(void)state;
	start(dev, VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM));
	uint64_t gpa[16];
	post_rx_bufs(16, 128, gpa);
	uint8_t in[VIRTIO_NET_HDR_LEN + 200];
	memset(in, 0, VIRTIO_NET_HDR_LEN);
	in[VIRTIO_NET_HDR_OFF_FLAGS] = VIRTIO_NET_HDR_F_DATA_VALID;
	in[VIRTIO_NET_HDR_OFF_NUM_BUFS] = 0x77;
	in[VIRTIO_NET_HDR_OFF_NUM_BUFS + 1] = 0x77;
	make_frame(in + VIRTIO_NET_HDR_LEN, 200, 46);
	fake_queue(&fb, in, sizeof(in));
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);

	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 2);
	uint8_t got[sizeof(in)];
	rx_gather(gpa, 128, got, sizeof(got));
	assert_int_equal(got[VIRTIO_NET_HDR_OFF_FLAGS], VIRTIO_NET_HDR_F_DATA_VALID);
	assert_int_equal(get16(got + VIRTIO_NET_HDR_OFF_NUM_BUFS), 2);
	assert_memory_equal(got + VIRTIO_NET_HDR_LEN, in + VIRTIO_NET_HDR_LEN, 200);
}

/* Frames the guest queued together go out in one run: one used-ring
 * update and one interrupt for all of them. */
static void test_tx_batch_one_interrupt(void **state)
{
	(void)state;
	uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 }, frame[60];
	make_frame(frame, sizeof(frame), 50);
	for (unsigned i = 0; i < 4; i++)
		post_tx(hdr, frame, sizeof(frame)); /* 3 descriptors each: 12 of 16 */
	dev->ops->queue_notify(dev, VIRTIO_NET_TXQ);
	assert_int_equal(fb.sent, 4);
	assert_int_equal(used_idx(VIRTIO_NET_TXQ), 4);
	assert_int_equal(raised[VIRTIO_NET_TXQ], 1);
	struct virtio_net_stats st;
	virtio_net_get_stats(dev, &st);
	assert_int_equal(st.tx_batches, 1);
	assert_int_equal(st.tx_frames, 4);
}

/* ---- TX with EVENT_IDX -------------------------------------------------- */

#define USED_EVENT(q) (AVAIL(q) + 4 + 2u * QSIZE)
#define AVAIL_EVENT(q) (USED(q) + 4 + 8u * QSIZE)

/* What the driver would see as each frame reaches the host. */
static unsigned irq_at_send[8];
static uint16_t avail_event_at_send[8], used_at_send[8];

static void record_send(unsigned n)
{
	if (n < 8) {
		irq_at_send[n] = raised[VIRTIO_NET_TXQ];
		avail_event_at_send[n] = get16(g.ram + AVAIL_EVENT(VIRTIO_NET_TXQ));
		used_at_send[n] = used_idx(VIRTIO_NET_TXQ);
	}
}

static void start_event_idx(void)
{
	dev->vq[VIRTIO_NET_TXQ].event_idx = true;
	fb.on_send = record_send;
	memset(irq_at_send, 0, sizeof(irq_at_send));
}

/* Each chain is completed as its frame goes to the host, and the
 * interrupt comes as soon as the completion the driver named in
 * used_event is published, not after the rest of the run (Linux frees
 * its sent buffers there; TCP's small queues wait for that). */
static void test_tx_event_idx_interrupt_when_asked(void **state)
{
	(void)state;
	uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 }, frame[60];
	make_frame(frame, sizeof(frame), 51);
	start_event_idx();
	put16(g.ram + USED_EVENT(VIRTIO_NET_TXQ), 1); /* after the second completion */
	for (unsigned i = 0; i < 4; i++)
		post_tx(hdr, frame, sizeof(frame));
	dev->ops->queue_notify(dev, VIRTIO_NET_TXQ);
	assert_int_equal(fb.sent, 4);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(used_at_send[i], i); /* the earlier ones already back */
	assert_int_equal(irq_at_send[1], 0);
	assert_int_equal(irq_at_send[2], 1); /* raised before the third frame went out */
	assert_int_equal(raised[VIRTIO_NET_TXQ], 1); /* and only once */
	struct virtio_net_stats st;
	virtio_net_get_stats(dev, &st);
	assert_int_equal(st.tx_irqs, 1);
	assert_int_equal(st.tx_runs, 1);
	assert_int_equal(st.tx_bytes, 4 * sizeof(frame));
}

/* A used_event the run never reaches: no interrupt at all. */
static void test_tx_event_idx_no_interrupt_unasked(void **state)
{
	(void)state;
	uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 }, frame[60];
	make_frame(frame, sizeof(frame), 52);
	start_event_idx();
	put16(g.ram + USED_EVENT(VIRTIO_NET_TXQ), 9);
	for (unsigned i = 0; i < 3; i++)
		post_tx(hdr, frame, sizeof(frame));
	dev->ops->queue_notify(dev, VIRTIO_NET_TXQ);
	assert_int_equal(fb.sent, 3);
	assert_int_equal(raised[VIRTIO_NET_TXQ], 0);
}

static uint8_t late_frame[60];

static void post_during_send(unsigned n)
{
	record_send(n);
	if (n == 0) {
		uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 };
		post_tx(hdr, late_frame, sizeof(late_frame));
	}
}

/* While a run drains the ring, avail_event stays where it was, so a
 * driver adding frames meanwhile does not kick for them (the run takes
 * them anyway); the pop that finds the ring empty asks for the next
 * kick at the next entry. */
static void test_tx_no_kick_asked_while_draining(void **state)
{
	(void)state;
	uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 }, frame[60];
	make_frame(frame, sizeof(frame), 53);
	make_frame(late_frame, sizeof(late_frame), 54);
	start_event_idx();
	fb.on_send = post_during_send;
	put16(g.ram + AVAIL_EVENT(VIRTIO_NET_TXQ), 0);
	for (unsigned i = 0; i < 3; i++)
		post_tx(hdr, frame, sizeof(frame)); /* + the late one: 12 of 16 descriptors */
	dev->ops->queue_notify(dev, VIRTIO_NET_TXQ);
	assert_int_equal(fb.sent, 4);
	assert_memory_equal(fb.last, late_frame, sizeof(late_frame));
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(avail_event_at_send[i], 0);
	assert_int_equal(get16(g.ram + AVAIL_EVENT(VIRTIO_NET_TXQ)), 4);
	struct virtio_net_stats st;
	virtio_net_get_stats(dev, &st);
	assert_int_equal(st.tx_runs, 1);

	/* the next frame is kicked for, and taken */
	post_tx(hdr, frame, sizeof(frame));
	dev->ops->queue_notify(dev, VIRTIO_NET_TXQ);
	assert_int_equal(fb.sent, 5);
	assert_int_equal(get16(g.ram + AVAIL_EVENT(VIRTIO_NET_TXQ)), 5);
}

/* The transport's budget stops a run early: avail_event is left alone
 * (the transport calls again), and the next run takes the rest. */
static void test_tx_quiet_pop_budget(void **state)
{
	(void)state;
	uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 }, frame[60];
	make_frame(frame, sizeof(frame), 55);
	start_event_idx();
	for (unsigned i = 0; i < 4; i++)
		post_tx(hdr, frame, sizeof(frame));
	struct virtq *q = &dev->vq[VIRTIO_NET_TXQ];
	virtq_budget(q, 2);
	dev->ops->queue_notify(dev, VIRTIO_NET_TXQ);
	assert_true(q->budget_spent);
	virtq_budget(q, 0);
	assert_int_equal(fb.sent, 2);
	assert_int_equal(get16(g.ram + AVAIL_EVENT(VIRTIO_NET_TXQ)), 0);
	dev->ops->queue_notify(dev, VIRTIO_NET_TXQ);
	assert_int_equal(fb.sent, 4);
	assert_int_equal(get16(g.ram + AVAIL_EVENT(VIRTIO_NET_TXQ)), 4);
}

static unsigned irq_at_recv[8];

static void record_recv(unsigned n)
{
	if (n < 8)
		irq_at_recv[n] = raised[VIRTIO_NET_RXQ];
}

/* Receive with EVENT_IDX: the interrupt comes once the frame the driver
 * named in used_event is in, while later frames are still being read. */
static void test_rx_event_idx_interrupt_when_asked(void **state)
{
	(void)state;
	start_mrg();
	dev->vq[VIRTIO_NET_RXQ].event_idx = true;
	fb.on_recv = record_recv;
	put16(g.ram + USED_EVENT(VIRTIO_NET_RXQ), 0); /* after the first frame */
	uint64_t gpa[16];
	post_rx_bufs(16, 256, gpa);
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);
	uint8_t f[4][100];
	for (unsigned i = 0; i < 4; i++) {
		make_frame(f[i], sizeof(f[i]), 60 + i);
		fake_queue(&fb, f[i], sizeof(f[i]));
	}
	unsigned r0 = fb.recvs;
	fb.be.rx_ready(fb.be.rx_ctx);
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 4);
	assert_int_equal(irq_at_recv[r0], 0);
	assert_int_equal(irq_at_recv[r0 + 1], 1); /* before the second frame was read */
	assert_int_equal(raised[VIRTIO_NET_RXQ], 1);
	struct virtio_net_stats st;
	virtio_net_get_stats(dev, &st);
	assert_int_equal(st.rx_irqs, 1);
}

/* A host that never runs dry (here: an endless stream of frames too long
 * for the buffers, each dropped) gets VIRTIO_NET_RX_BUDGET reads per
 * rx_ready, then the event thread moves on. */
static void test_rx_budget_per_wakeup(void **state)
{
	(void)state;
	start_mrg();
	uint64_t gpa[16];
	post_rx_bufs(QSIZE, 128, gpa); /* 2048 bytes, every descriptor */
	dev->ops->queue_notify(dev, VIRTIO_NET_RXQ);
	assert_true(fb.rx_on);
	fb.endless = 100000; /* bytes each endless frame claims */
	fb.recvs = 0;
	fb.be.rx_ready(fb.be.rx_ctx);
	assert_int_equal(fb.recvs, VIRTIO_NET_RX_BUDGET);
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 0);
	struct virtio_net_stats st;
	virtio_net_get_stats(dev, &st);
	assert_int_equal(st.rx_errors, VIRTIO_NET_RX_BUDGET);
	/* the next wakeup starts a new budget, and a frame that fits lands */
	fb.endless = 0;
	uint8_t frame[60];
	make_frame(frame, sizeof(frame), 51);
	fake_queue(&fb, frame, sizeof(frame));
	fb.be.rx_ready(fb.be.rx_ctx);
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 1);
}

/* ---- config and features ----------------------------------------------- */

static void test_config_and_features(void **state)
{
	(void)state;
	uint8_t cfg[VIRTIO_NET_CONFIG_LEN];
	assert_int_equal(dev->config_len, VIRTIO_NET_CONFIG_LEN);
	dev->ops->config_read(dev, 0, cfg, sizeof(cfg));
	static const uint8_t want[8] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, VIRTIO_NET_S_LINK_UP, 0 };
	assert_memory_equal(cfg, want, sizeof(want));
	/* writes change nothing */
	uint8_t junk[6] = { 1, 2, 3, 4, 5, 6 };
	dev->ops->config_write(dev, 0, junk, sizeof(junk));
	dev->ops->config_read(dev, 0, cfg, sizeof(cfg));
	assert_memory_equal(cfg, want, sizeof(want));

	assert_int_equal(dev->device_id, VIRTIO_ID_NET);
	assert_int_equal(dev->num_queues, 2);
	assert_true(dev->host_features & VIRTIO_BIT(VIRTIO_NET_F_MAC));
	assert_true(dev->host_features & VIRTIO_BIT(VIRTIO_NET_F_STATUS));
	assert_true(dev->host_features & VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF));
	assert_false(dev->host_features & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
	assert_false(dev->host_features & VIRTIO_BIT(VIRTIO_NET_F_CSUM)); /* plain backend */
	assert_int_equal(fb.activated_with, dev->features);
}

static void test_random_mac(void **state)
{
	(void)state;
	struct fake_be f2;
	memset(&f2, 0, sizeof(f2));
	f2.be.ops = &fake_ops;
	struct entropy ent = host_entropy();
	struct virtio_dev *d = virtio_net_new_backend(&f2.be, NULL, &ent, &g.m, gate(false), NULL, 0);
	assert_non_null(d);
	uint8_t mac[6];
	d->ops->config_read(d, 0, mac, 6);
	assert_int_equal(mac[0], 0x52);
	assert_int_equal(mac[1], 0x54);
	assert_int_equal(mac[2], 0x00);
	virtio_net_free(d);
	assert_true(f2.freed);
}

/* ---- the parser --------------------------------------------------------- */

static void test_parse_good(void **state)
{
	(void)state;
	struct virtio_net_config c;
	char err[160];

	assert_int_equal(virtio_net_parse("tap=vtap0", &c, err, sizeof(err)), 0);
	assert_int_equal(c.kind, NET_TAP);
	assert_string_equal(c.ifname, "vtap0");
	assert_false(c.mac_set);

	assert_int_equal(virtio_net_parse("tap=vtap0,mac=52:54:00:AB:cd:0f", &c, err, sizeof(err)), 0);
	assert_true(c.mac_set);
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0x0f };
	assert_memory_equal(c.mac, mac, 6);

	assert_int_equal(virtio_net_parse("user", &c, err, sizeof(err)), 0);
	assert_int_equal(c.kind, NET_USER);
	assert_int_equal(c.nr_fwd, 0);

	assert_int_equal(virtio_net_parse("user,hostfwd=tcp::2222-:22,hostfwd=udp:10.1.2.3:5353-:53", &c,
					  err, sizeof(err)),
			 0);
	assert_int_equal(c.nr_fwd, 2);
	assert_false(c.fwd[0].udp);
	assert_int_equal(c.fwd[0].host_addr, 0x7f000001);
	assert_int_equal(c.fwd[0].host_port, 2222);
	assert_int_equal(c.fwd[0].guest_port, 22);
	assert_true(c.fwd[1].udp);
	assert_int_equal(c.fwd[1].host_addr, 0x0a010203);
	assert_int_equal(c.fwd[1].host_port, 5353);
	assert_int_equal(c.fwd[1].guest_port, 53);

	assert_int_equal(virtio_net_parse("user,hostfwd=tcp:255.0.10.199:80-:8080", &c, err, sizeof(err)), 0);
	assert_int_equal(c.fwd[0].host_addr, 0xff000ac7);
	assert_int_equal(virtio_net_parse("user,hostfwd=tcp:0.0.0.0:80-:8080", &c, err, sizeof(err)), 0);
	assert_int_equal(c.fwd[0].host_addr, 0);
}

static void expect_bad(const char *spec, const char *needle)
{
	struct virtio_net_config c;
	char err[160] = "";

	if (virtio_net_parse(spec, &c, err, sizeof(err)) != -1)
		fail_msg("'%s' was accepted", spec);
	if (!strstr(err, needle))
		fail_msg("'%s': '%s' does not mention '%s'", spec, err, needle);
	assert_null(strchr(err, '\n'));
}

static void test_parse_bad(void **state)
{
	(void)state;
	expect_bad("", "expected");
	expect_bad("bogus", "expected");
	expect_bad("tap", "expected");
	expect_bad("tap=", "interface");
	expect_bad("tap=averyveryverylongname", "interface");
	expect_bad("tap=a/b", "interface");
	expect_bad("tap=vtap0,mac=52:54:00:12:34", "mac");
	expect_bad("tap=vtap0,mac=52:54:00:12:34:5g", "mac");
	expect_bad("tap=vtap0,mac=52:54:00:12:34:56:78", "mac");
	expect_bad("tap=vtap0,mac=53:54:00:12:34:56", "mac"); /* multicast */
	expect_bad("tap=vtap0,mac=00:00:00:00:00:00", "mac");
	expect_bad("tap=vtap0,mac=52-54-00-12-34-56", "mac");
	expect_bad("tap=vtap0,mac=52:54:00:12:34:56,mac=52:54:00:12:34:57", "twice");
	expect_bad("tap=vtap0,hostfwd=tcp::2222-:22", "user");
	expect_bad("user,hostfwd=tcp::2222:22", "hostfwd");
	expect_bad("user,hostfwd=sctp::2222-:22", "hostfwd");
	expect_bad("user,hostfwd=tcp::0-:22", "hostfwd");
	expect_bad("user,hostfwd=tcp::70000-:22", "hostfwd");
	expect_bad("user,hostfwd=tcp::2222-:", "hostfwd");
	expect_bad("user,hostfwd=tcp:300.1.1.1:2222-:22", "hostfwd");
	/* The address parser took over from inet_pton: its refusals too. */
	expect_bad("user,hostfwd=tcp:1.2.3:2222-:22", "hostfwd");
	expect_bad("user,hostfwd=tcp:1.2.3.4.5:2222-:22", "hostfwd");
	expect_bad("user,hostfwd=tcp:1.2..4:2222-:22", "hostfwd");
	expect_bad("user,hostfwd=tcp:01.2.3.4:2222-:22", "hostfwd");
	expect_bad("user,hostfwd=tcp:1.2.3.4x:2222-:22", "hostfwd");
	expect_bad("user,hostfwd=tcp:1.2.3.1000:2222-:22", "hostfwd");
	expect_bad("user,hostfwd=tcp::2222-10.0.2.15:22", "hostfwd");
	expect_bad("user,hostfwd=tcp::22x2-:22", "hostfwd");
	expect_bad("user,speed=10", "unknown");
	expect_bad("tap=vtap0,vhost=on", "unknown");
	char many[600] = "user";
	for (int i = 0; i < 9; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), ",hostfwd=tcp::%d-:22", 3000 + i);
	expect_bad(many, "at most 8");
	char huge[2000];
	memset(huge, 'a', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	expect_bad(huge, "too long");
}

/* ---- slirp -------------------------------------------------------------- */

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

/* An ARP request from 10.0.2.15 (guest_mac) for `target`. */
static size_t arp_request(uint8_t *f, uint32_t target)
{
	memset(f, 0, 60);
	memset(f, 0xff, 6);
	memcpy(f + 6, guest_mac, 6);
	f[12] = 0x08, f[13] = 0x06;     /* ARP */
	f[14] = 0, f[15] = 1;           /* Ethernet */
	f[16] = 0x08, f[17] = 0x00;     /* IPv4 */
	f[18] = 6, f[19] = 4, f[20] = 0, f[21] = 1; /* request */
	memcpy(f + 22, guest_mac, 6);
	uint32_t sip = htonl(0x0a00020f), tip = htonl(target);
	memcpy(f + 28, &sip, 4);
	memcpy(f + 38, &tip, 4);
	return 60;
}

static void check_arp_reply(const uint8_t *f, size_t len, uint32_t from)
{
	assert_true(len >= 42);
	assert_memory_equal(f, guest_mac, 6); /* to us */
	assert_int_equal(f[12], 0x08);
	assert_int_equal(f[13], 0x06);
	assert_int_equal(f[21], 2); /* reply */
	uint32_t sip;
	memcpy(&sip, f + 28, 4);
	assert_int_equal(ntohl(sip), from);
	assert_memory_equal(f + 32, guest_mac, 6);
}

static void test_slirp_answers_arp(void **state)
{
	(void)state;
	char err[160];
	struct net_backend *b = net_slirp_new(NULL, 0, NULL, err, sizeof(err));
	assert_non_null(b);
	assert_false(b->vnet_hdr);
	assert_int_equal(b->features, 0);

	uint8_t f[64], got[1600];
	struct iovec out = { f, arp_request(f, 0x0a000202) };
	struct iovec in = { got, sizeof(got) };
	assert_int_equal(b->ops->recv(b, &in, 1), -EAGAIN);
	assert_int_equal(b->ops->send(b, &out, 1), 0);
	ssize_t n = b->ops->recv(b, &in, 1);
	assert_true(n > 0);
	check_arp_reply(got, (size_t)n, 0x0a000202);
	/* the DNS address answers too; a stranger does not */
	out.iov_len = arp_request(f, 0x0a000203);
	assert_int_equal(b->ops->send(b, &out, 1), 0);
	n = b->ops->recv(b, &in, 1);
	assert_true(n > 0);
	check_arp_reply(got, (size_t)n, 0x0a000203);
	out.iov_len = arp_request(f, 0x0a000263);
	assert_int_equal(b->ops->send(b, &out, 1), 0);
	assert_int_equal(b->ops->recv(b, &in, 1), -EAGAIN);
	assert_int_equal(net_slirp_dropped(b), 0);
	b->ops->free(b);
}

/* The device over slirp, guest rings to guest rings. */
static void test_slirp_through_device(void **state)
{
	(void)state;
	assert_int_equal(fake_guest_init(&g, RAM), 0);
	memset(raised, 0, sizeof(raised));
	memset(aidx, 0, sizeof(aidx));
	memset(next_desc, 0, sizeof(next_desc));
	data_top = DATA;

	struct virtio_net_config cfg;
	char err[160];
	assert_int_equal(virtio_net_parse("user,mac=52:54:00:12:34:56", &cfg, err, sizeof(err)), 0);
	struct virtio_dev *d = host_net_new(&cfg, &g.m, gate(false), NULL, err, sizeof(err));
	assert_non_null(d);
	assert_false(d->host_features & VIRTIO_BIT(VIRTIO_NET_F_CSUM));
	start(d, 0);

	uint64_t a, b;
	post_rx(1526, &a, &b);
	d->ops->queue_notify(d, VIRTIO_NET_RXQ);
	uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 }, f[64];
	size_t len = arp_request(f, 0x0a000202);
	post_tx(hdr, f, (uint32_t)len);
	d->ops->queue_notify(d, VIRTIO_NET_TXQ);

	assert_int_equal(used_idx(VIRTIO_NET_TXQ), 1);
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 1);
	uint32_t id, n;
	used_elem(VIRTIO_NET_RXQ, 0, &id, &n);
	assert_true(n >= VIRTIO_NET_HDR_LEN + 42);
	uint8_t got[1600];
	rx_read(a, b, got, n);
	static const uint8_t want_hdr[VIRTIO_NET_HDR_LEN] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	assert_memory_equal(got, want_hdr, VIRTIO_NET_HDR_LEN);
	check_arp_reply(got + VIRTIO_NET_HDR_LEN, n - VIRTIO_NET_HDR_LEN, 0x0a000202);

	virtio_net_free(d);
	fake_guest_fini(&g);
}

/* Runs fn on the loop's thread and waits (slirp is single-threaded). */
struct on_loop {
	void (*fn)(void *);
	void *arg;
	atomic_bool done;
};

static void on_loop_tramp(void *p)
{
	struct on_loop *c = p;
	c->fn(c->arg);
	atomic_store(&c->done, true);
}

static void run_on_loop(struct evloop *l, void (*fn)(void *), void *arg)
{
	struct on_loop c = { fn, arg, false };
	assert_int_equal(evloop_call(l, on_loop_tramp, &c), 0);
	for (int i = 0; i < 2000 && !atomic_load(&c.done); i++)
		usleep(1000);
	assert_true(atomic_load(&c.done));
}

struct fwd_ctx {
	struct net_backend *b;
	atomic_uint ready;
	uint8_t frame[1600];
	ssize_t len;
	atomic_bool syn_seen;
	uint16_t guest_port;
};

static void fwd_rx_ready(void *p)
{
	struct fwd_ctx *c = p;
	struct iovec in = { c->frame, sizeof(c->frame) };
	ssize_t n;
	while ((n = c->b->ops->recv(c->b, &in, 1)) > 0) {
		const uint8_t *f = c->frame;
		/* IPv4 TCP to 10.0.2.15:guest_port with SYN */
		if (n >= 54 && f[12] == 0x08 && f[13] == 0x00 && f[23] == 6 &&
		    f[30] == 10 && f[31] == 0 && f[32] == 2 && f[33] == 15) {
			unsigned ihl = (f[14] & 15u) * 4;
			const uint8_t *tcp = f + 14 + ihl;
			if ((unsigned)((tcp[2] << 8) | tcp[3]) == c->guest_port && (tcp[13] & 0x02))
				atomic_store(&c->syn_seen, true);
		}
		atomic_fetch_add(&c->ready, 1);
	}
}

static void fwd_hook(void *p)
{
	struct fwd_ctx *c = p;
	c->b->rx_ready = fwd_rx_ready;
	c->b->rx_ctx = c;
	c->b->ops->rx_enable(c->b, true);
}

static void fwd_send_arp(void *p)
{
	struct fwd_ctx *c = p;
	uint8_t f[64];
	struct iovec out = { f, arp_request(f, 0x0a000202) };
	assert_int_equal(c->b->ops->send(c->b, &out, 1), 0);
}

static void fwd_free(void *p)
{
	struct fwd_ctx *c = p;
	c->b->ops->free(c->b);
}

static uint16_t free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
	close(s);
	return ntohs(sa.sin_port);
}

/* A host forward: a connection to the host port becomes a SYN to the guest,
 * through slirp's listening socket watched on a running event loop. */
static void test_slirp_hostfwd_reaches_guest(void **state)
{
	(void)state;
	struct evloop *l = evloop_new();
	assert_non_null(l);
	assert_int_equal(evloop_start(l), 0);

	static struct fwd_ctx c;
	memset(&c, 0, sizeof(c));
	c.guest_port = 22;
	uint16_t port = free_port();
	struct net_fwd fwd = { .udp = false, .host_addr = 0x7f000001, .host_port = port, .guest_port = 22 };
	char err[160];
	c.b = net_slirp_new(&fwd, 1, l, err, sizeof(err));
	if (!c.b)
		fail_msg("net_slirp_new: %s", err);
	run_on_loop(l, fwd_hook, &c);
	run_on_loop(l, fwd_send_arp, &c); /* slirp learns the guest's MAC */
	assert_true(atomic_load(&c.ready) >= 1);

	int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int r = connect(s, (struct sockaddr *)&sa, sizeof(sa));
	assert_true(r == 0 || errno == EINPROGRESS);
	for (int i = 0; i < 3000 && !atomic_load(&c.syn_seen); i++)
		usleep(1000);
	close(s);
	assert_true(atomic_load(&c.syn_seen));

	/* a second forward on the same port cannot listen */
	struct net_backend *b2 = net_slirp_new(&fwd, 1, NULL, err, sizeof(err));
	assert_null(b2);
	assert_non_null(strstr(err, "hostfwd tcp 127.0.0.1"));

	run_on_loop(l, fwd_free, &c);
	evloop_free(l);
}

/* ---- TAP ---------------------------------------------------------------- */

static void test_tap_open(void **state)
{
	(void)state;
	char err[160];
	struct net_backend *b = net_tap_open("vigilt%d", NULL, err, sizeof(err));
	if (!b) {
		/* no CAP_NET_ADMIN or no /dev/net/tun here: the message must say why */
		assert_non_null(strstr(err, "tap vigilt%d: "));
		skip();
	}
	assert_true(b->vnet_hdr);
	assert_non_null(strstr(b->name, "tap vigilt"));
	assert_true(b->features & VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4));
	assert_int_equal(b->ops->activate(b, VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) |
						     VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4)),
			 0);
	/* nothing to read on a fresh interface */
	uint8_t buf[2048];
	struct iovec in = { buf, sizeof(buf) };
	assert_int_equal(b->ops->recv(b, &in, 1), -EAGAIN);
	b->ops->free(b);
}

/* The device over a real TAP interface: a frame the guest sends shows up
 * on the interface (seen by a packet socket), and a frame sent out of the
 * interface lands in a guest buffer behind a vnet header. Needs
 * CAP_NET_ADMIN and /dev/net/tun; skipped otherwise. */
#define TEST_ETHERTYPE 0x88b5 /* IEEE local experimental */

static bool is_test_frame(const uint8_t *f, size_t len, const uint8_t *want, size_t wlen)
{
	return len >= wlen && f[12] == (TEST_ETHERTYPE >> 8) && f[13] == (TEST_ETHERTYPE & 0xff) &&
	       !memcmp(f + 14, want + 14, wlen - 14);
}

static void test_tap_through_device(void **state)
{
	(void)state;
	struct virtio_net_config cfg;
	char err[160];
	assert_int_equal(virtio_net_parse("tap=vigilt,mac=52:54:00:12:34:56", &cfg, err, sizeof(err)), 0);
	snprintf(cfg.ifname, sizeof(cfg.ifname), "vgt%u", (unsigned)getpid() % 100000);
	assert_int_equal(fake_guest_init(&g, RAM), 0);
	memset(raised, 0, sizeof(raised));
	memset(aidx, 0, sizeof(aidx));
	memset(next_desc, 0, sizeof(next_desc));
	data_top = DATA;
	struct virtio_dev *d = host_net_new(&cfg, &g.m, gate(false), NULL, err, sizeof(err));
	if (!d) {
		fake_guest_fini(&g);
		assert_non_null(strstr(err, "tap vgt"));
		skip();
	}
	assert_true(d->host_features & VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4));
	start(d, VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM));

	/* bring the interface up and watch it with a packet socket */
	const char *ifname = cfg.ifname;
	int ctl = socket(AF_INET, SOCK_DGRAM, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	assert_int_equal(ioctl(ctl, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	assert_int_equal(ioctl(ctl, SIOCSIFFLAGS, &ifr), 0);
	close(ctl);
	int ps = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	assert_true(ps >= 0);
	struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
				  .sll_ifindex = (int)if_nametoindex(ifname) };
	assert_int_equal(bind(ps, (struct sockaddr *)&ll, sizeof(ll)), 0);
	struct timeval tv = { .tv_sec = 0, .tv_usec = 100000 };
	setsockopt(ps, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

	/* guest -> interface */
	uint8_t frame[100];
	make_frame(frame, sizeof(frame), 21);
	memset(frame, 0xff, 6);
	memcpy(frame + 6, guest_mac, 6);
	frame[12] = TEST_ETHERTYPE >> 8, frame[13] = TEST_ETHERTYPE & 0xff;
	uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 };
	post_tx(hdr, frame, sizeof(frame));
	d->ops->queue_notify(d, VIRTIO_NET_TXQ);
	struct virtio_net_stats st;
	virtio_net_get_stats(d, &st);
	assert_int_equal(st.tx_frames, 1);
	bool seen = false;
	uint8_t buf[2048];
	for (int i = 0; i < 20 && !seen; i++) {
		ssize_t n = recv(ps, buf, sizeof(buf), 0);
		seen = n > 0 && is_test_frame(buf, (size_t)n, frame, sizeof(frame));
	}
	assert_true(seen);

	/* interface -> guest (the kernel may slip in IPv6 traffic of its own:
	 * each buffer that gets something else is replaced) */
	uint64_t a, b;
	post_rx(1526, &a, &b);
	d->ops->queue_notify(d, VIRTIO_NET_RXQ);
	uint8_t out[120];
	make_frame(out, sizeof(out), 22);
	memcpy(out + 6, "\x02\x00\x00\x00\x00\x01", 6);
	out[12] = TEST_ETHERTYPE >> 8, out[13] = TEST_ETHERTYPE & 0xff;
	assert_int_equal(send(ps, out, sizeof(out), 0), (ssize_t)sizeof(out));
	bool got_it = false;
	uint16_t checked = 0;
	for (int i = 0; i < 100 && !got_it; i++) {
		d->ops->queue_notify(d, VIRTIO_NET_RXQ); /* no event loop here: poll by kicking */
		if (used_idx(VIRTIO_NET_RXQ) == checked) {
			usleep(10000);
			continue;
		}
		uint32_t id, len;
		used_elem(VIRTIO_NET_RXQ, checked++, &id, &len);
		uint8_t rx[1526];
		rx_read(a, b, rx, len);
		if (len == VIRTIO_NET_HDR_LEN + sizeof(out) &&
		    is_test_frame(rx + VIRTIO_NET_HDR_LEN, len - VIRTIO_NET_HDR_LEN, out, sizeof(out))) {
			assert_int_equal(rx[1], 0); /* gso_type NONE */
			assert_int_equal(get16(rx + VIRTIO_NET_HDR_OFF_NUM_BUFS), 1);
			got_it = true;
		} else {
			post_rx(1526, &a, &b);
		}
	}
	assert_true(got_it);
	close(ps);
	virtio_net_free(d);
	fake_guest_fini(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tx_strips_header, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_tx_keeps_header_for_vnet_backend, setup_vnet, teardown),
		cmocka_unit_test_setup_teardown(test_tx_header_within_features, setup_vnet, teardown),
		cmocka_unit_test_setup_teardown(test_tx_too_large, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_tx_writable_buffer_refused, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_tx_short_header_refused, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_tx_bad_chain_then_good, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_tx_runaway_avail_needs_reset, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_tx_denied_by_policy, setup_ro, teardown),
		cmocka_unit_test_setup_teardown(test_mrg_frame_spans_chains, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_mrg_batch_one_interrupt, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_mrg_waits_for_enough_buffers, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_mrg_small_ring_gets_what_fits, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_mrg_long_frame_takes_more_chains, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_mrg_chain_shorter_than_header, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_mrg_header_split_in_chain, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_mrg_vnet_header, setup_vnet, teardown),
		cmocka_unit_test_setup_teardown(test_tx_batch_one_interrupt, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_tx_event_idx_interrupt_when_asked, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_tx_event_idx_no_interrupt_unasked, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_tx_no_kick_asked_while_draining, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_tx_quiet_pop_budget, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_rx_event_idx_interrupt_when_asked, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_rx_budget_per_wakeup, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_rx_gets_header_and_frame, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_rx_marks_held_buffers, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_rx_vnet_header_passed_and_sanitised, setup_vnet, teardown),
		cmocka_unit_test_setup_teardown(test_rx_held_until_buffer, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_quiesce_resume, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_rx_frame_too_big_for_buffer, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_rx_readable_buffer_refused, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_rx_bad_chains_bounded, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_rx_reset_forgets_chain, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_config_and_features, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_random_mac, setup_plain, teardown),
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_slirp_answers_arp),
		cmocka_unit_test(test_slirp_through_device),
		cmocka_unit_test(test_slirp_hostfwd_reaches_guest),
		cmocka_unit_test(test_tap_open),
		cmocka_unit_test(test_tap_through_device),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
