/* Unit tests for virtio-net's snapshots behind the virtio-pci transport,
 * with state a guest shaped on purpose: the restored VM must go on as the
 * original does. Single-threaded: the fake executor says "not running", so
 * lifecycle steps run inline; a doorbell ring runs its callback at once. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/net_backend.h"
#include "devices/pci.h"
#include "devices/virtio_net.h"
#include "fake_driver.h"
#include "fake_guest.h"
#include "snap_help.h"
#include "virtio/virtio_pci.h"

#define MMIO_BASE 0xC0000000ULL
#define MMIO_SIZE 0x01000000ULL
#define NQ 2
#define QSIZE 16

#define B_NOTIFY 0x3000
#define CC_GFSELECT 0x08
#define CC_GF 0x0c
#define CC_STATUS 0x14
#define CC_Q_SELECT 0x16
#define CC_Q_SIZE 0x18
#define CC_Q_ENABLE 0x1c
#define CC_Q_DESC 0x20
#define CC_Q_AVAIL 0x28
#define CC_Q_USED 0x30
#define S_OK (VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK | VIRTIO_S_DRIVER_OK)

struct doorbell {
	void (*fn)(void *);
	void *arg;
};
struct msi {
	int n;
};

struct fnet {
	struct net_backend be;
	bool frame; /* a 100-byte frame waits */
};

struct machine {
	struct fake_guest g;
	struct pci_host *h;
	struct virtio_dev *d;
	struct fnet *nb;
	struct virtio_pci *vp;
	struct vdev pv, vv;
	struct doorbell db[2 * NQ]; /* each queue's, and its platform one */
	unsigned ndb;
	struct msi msi[NQ + 1];
	unsigned nmsi;
};

/* ---- fakes -------------------------------------------------------------- */

static int fx_post(void *ctx, void (*fn)(void *), void *arg)
{
	(void)ctx, (void)fn, (void)arg;
	return -ESRCH;
}
static struct exec_timer *fx_timer_new(void *ctx, void (*fn)(void *), void *arg)
{
	(void)ctx, (void)fn, (void)arg;
	return NULL;
}
static int fx_timer_arm(void *ctx, struct exec_timer *t, uint64_t ms)
{
	(void)ctx, (void)t, (void)ms;
	return 0;
}
static void fx_timer_free(void *ctx, struct exec_timer *t)
{
	(void)ctx, (void)t;
}
static struct doorbell *fx_db_new(void *ctx, void (*fn)(void *), void *arg)
{
	struct machine *m = ctx;
	if (m->ndb == 2 * NQ)
		return NULL;
	m->db[m->ndb] = (struct doorbell){ fn, arg };
	return &m->db[m->ndb++];
}
static void fx_db_ring(void *ctx, struct doorbell *db)
{
	(void)ctx;
	db->fn(db->arg); /* as the event loop would, at once */
}
static void fx_db_free(void *ctx, struct doorbell *db)
{
	(void)ctx, (void)db;
}
static const struct exec_ops fx_ops = { fx_post, fx_timer_new, fx_timer_arm, fx_timer_free,
					fx_db_new, fx_db_ring, fx_db_free };

static int fp_alloc(void *ctx, struct msi **out)
{
	struct machine *m = ctx;
	if (m->nmsi == NQ + 1)
		return -ENOSPC;
	*out = &m->msi[m->nmsi++];
	return 0;
}
static int fp_set(void *ctx, struct msi *v, uint64_t addr, uint32_t data)
{
	(void)ctx, (void)v, (void)addr, (void)data;
	return 0;
}
static void fp_fire(void *ctx, struct msi *v)
{
	(void)ctx, (void)v;
}
static void fp_free(void *ctx, struct msi *v)
{
	(void)ctx, (void)v;
}
static int fp_doorbell(void *ctx, uint64_t gpa, uint32_t len, struct doorbell *db, bool assign)
{
	(void)ctx, (void)gpa, (void)len, (void)db, (void)assign;
	return -ENOSYS; /* the notify writes reach bar0_io, which rings the doorbell */
}
static void intx_set(void *ctx, uint32_t gsi, int level)
{
	(void)ctx, (void)gsi, (void)level;
}
static struct irq_line intx(void *ctx, uint32_t gsi)
{
	return (struct irq_line){ .set = intx_set, .ctx = ctx, .gsi = gsi };
}

static int nb_send(struct net_backend *b, const struct iovec *iov, int n)
{
	(void)b, (void)iov, (void)n;
	return 0;
}
static ssize_t nb_recv(struct net_backend *b, const struct iovec *iov, int n)
{
	struct fnet *f = (struct fnet *)b;
	if (!f->frame)
		return -EAGAIN;
	f->frame = false;
	uint8_t fr[100];
	memset(fr, 0xab, sizeof(fr));
	size_t done = 0;
	for (int i = 0; i < n && done < sizeof(fr); i++) {
		size_t k = iov[i].iov_len < sizeof(fr) - done ? iov[i].iov_len : sizeof(fr) - done;
		memcpy(iov[i].iov_base, fr + done, k);
		done += k;
	}
	return (ssize_t)sizeof(fr);
}
static void nb_rx_enable(struct net_backend *b, bool on)
{
	(void)b, (void)on;
}
static void nb_free(struct net_backend *b)
{
	free(b);
}
static const struct net_backend_ops nb_ops = { .send = nb_send, .recv = nb_recv, .rx_enable = nb_rx_enable,
					       .free = nb_free };

static struct dev_stats stats;

static struct machine *build(void)
{
	struct machine *m = calloc(1, sizeof(*m));
	char err[128];
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 1, 2, 3 };
	assert_int_equal(fake_guest_init(&m->g, 1 * MiB), 0);
	m->h = pci_host_new(MMIO_BASE, MMIO_SIZE);
	m->nb = calloc(1, sizeof(*m->nb));
	m->nb->be.ops = &nb_ops;
	m->nb->be.name = "fake";
	m->d = virtio_net_new_backend(&m->nb->be, mac, NULL, &m->g.m, (struct dev_gate){ .stats = &stats }, err,
				      sizeof(err));
	assert_non_null(m->d);
	struct exec ex = { &fx_ops, m };
	struct platform_ops plat = { fp_alloc, fp_set, fp_fire, fp_free, fp_doorbell, m, NULL };
	m->vp = virtio_pci_new(m->d, m->h, &ex, &plat, intx, m, err, sizeof(err));
	assert_non_null(m->vp);
	m->pv = (struct vdev){ .id = "pci-host", .kind = "pci-host", .impl = m->h };
	static const struct vdev_ops pci_ops = { .save = pci_host_save, .restore = pci_host_restore };
	m->pv.ops = &pci_ops;
	m->vv = (struct vdev){ .id = "eth0", .kind = "virtio-net", .ops = &virtio_pci_vdev_ops, .impl = m->vp };
	return m;
}

static void destroy(struct machine *m)
{
	virtio_pci_free(m->vp);
	virtio_net_free(m->d);
	pci_host_free(m->h);
	fake_guest_fini(&m->g);
	free(m);
}

static void cfg_wr(struct machine *m, uint32_t off, uint32_t v, uint32_t len)
{
	uint8_t a[4] = { (uint8_t)(off & 0xfc), 1 << 3, 0, 0x80 };
	uint8_t d[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	pci_host_cfg_io(m->h, 0, a, 4, true);
	pci_host_cfg_io(m->h, 4 + (off & 3), d, len, true);
}

static void bar_wr(struct machine *m, uint64_t off, uint64_t v, uint32_t len)
{
	uint8_t d[8];
	for (unsigned i = 0; i < 8; i++)
		d[i] = (uint8_t)(v >> (8 * i));
	pci_host_mmio(m->h, off, d, len, true);
}

/* Bring-up with VERSION_1, EVENT_IDX and MRG_RXBUF; the receive queue
 * and (tx) the transmit queue at FAKE_RING(q). */
static void bring_up(struct machine *m, struct fake_vq *rx, bool tx)
{
	cfg_wr(m, 0x04, 0x0006, 2);
	bar_wr(m, CC_STATUS, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER, 1);
	bar_wr(m, CC_GFSELECT, 1, 4);
	bar_wr(m, CC_GF, 1, 4);
	bar_wr(m, CC_GFSELECT, 0, 4);
	bar_wr(m, CC_GF, (1u << VIRTIO_F_EVENT_IDX) | (1u << VIRTIO_NET_F_MRG_RXBUF), 4);
	bar_wr(m, CC_STATUS, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK, 1);
	bar_wr(m, CC_Q_SELECT, 0, 2);
	bar_wr(m, CC_Q_SIZE, QSIZE, 2);
	bar_wr(m, CC_Q_DESC, FAKE_DESC(0), 8);
	bar_wr(m, CC_Q_AVAIL, FAKE_AVAIL(0), 8);
	bar_wr(m, CC_Q_USED, FAKE_USED(0), 8);
	bar_wr(m, CC_Q_ENABLE, 1, 2);
	if (tx) {
		bar_wr(m, CC_Q_SELECT, 1, 2);
		bar_wr(m, CC_Q_SIZE, QSIZE, 2);
		bar_wr(m, CC_Q_DESC, FAKE_DESC(1), 8);
		bar_wr(m, CC_Q_AVAIL, FAKE_AVAIL(1), 8);
		bar_wr(m, CC_Q_USED, FAKE_USED(1), 8);
		bar_wr(m, CC_Q_ENABLE, 1, 2);
	}
	bar_wr(m, CC_STATUS, S_OK, 1);
	*rx = (struct fake_vq){ .ram = m->g.ram, .desc = FAKE_DESC(0), .avail = FAKE_AVAIL(0),
				.used = FAKE_USED(0), .size = QSIZE };
}

static struct snap_file save_both(struct machine *m)
{
	struct snap_writer *w = snap_writer_new();
	const uint8_t *b;
	struct snap_file f;
	assert_int_equal(m->pv.ops->save(&m->pv, w), 0);
	assert_int_equal(m->vv.ops->save(&m->vv, w), 0);
	assert_int_equal(snap_writer_finish(w, &b, &f.len), 0);
	f.buf = malloc(f.len);
	memcpy(f.buf, b, f.len);
	snap_writer_free(w);
	return f;
}

static void restore_both(struct machine *m, const struct snap_file *f)
{
	struct snap_reader *r = snap_open_file(f);
	assert_int_equal(m->pv.ops->restore(&m->pv, r), 0);
	if (m->vv.ops->restore(&m->vv, r) != 0)
		fail_msg("restore: %s", snap_error(r));
	snap_reader_free(r);
}

static void frame(struct machine *m)
{
	m->nb->frame = true;
	m->nb->be.rx_ready(m->nb->be.rx_ctx);
}

/* With MRG_RXBUF the device holds receive chains until a frame fills
 * them, and the transport saves the ring as if the chains held were the
 * latest popped (virtio_pci.c, save). A bad chain (device-readable) posted
 * between good ones must not break that: the guest posts A (short, good),
 * B (bad), C (good) and kicks; A goes back empty before B, C is held. The
 * original and a copy restored from a snapshot then put the next frame in
 * C, and the copy completes neither A nor B again. */
static void test_bad_chain_between_held(void **state)
{
	(void)state;
	struct machine *a = build();
	struct fake_vq rx;
	bring_up(a, &rx, true);

	static const struct fake_seg A = { 0x40000, 256, true };   /* good, < one frame's 1530 */
	static const struct fake_seg B = { 0x41000, 64, false };   /* bad: device-readable */
	static const struct fake_seg C = { 0x42000, 2048, true };  /* good */
	uint16_t ha = fake_vq_post(&rx, &A, 1), hb = fake_vq_post(&rx, &B, 1), hc = fake_vq_post(&rx, &C, 1);
	bar_wr(a, B_NOTIFY + 0, 0, 2); /* kick the receive queue */

	uint32_t id, len;
	assert_true(fake_vq_used(&rx, &id, &len));
	assert_int_equal(id, ha); /* A back empty, then B */
	assert_int_equal(len, 0);
	assert_true(fake_vq_used(&rx, &id, &len));
	assert_int_equal(id, hb);
	assert_int_equal(len, 0);
	assert_false(fake_vq_used(&rx, &id, &len));
	struct virtq *vq = &a->d->vq[VIRTIO_NET_RXQ];
	assert_int_equal(vq->last_avail, 3); /* C held */
	assert_int_equal(vq->used_idx, 2);

	/* Pause (quiesce) and snapshot; the memory file is a copy of RAM. */
	a->vv.ops->quiesce(&a->vv);
	struct snap_file f = save_both(a);
	struct machine *b = build();
	memcpy(b->g.ram, a->g.ram, 1 * MiB);
	restore_both(b, &f);
	a->vv.ops->resume(&a->vv);

	frame(a);
	assert_true(fake_vq_used(&rx, &id, &len));
	assert_int_equal(id, hc);
	assert_int_equal(len, 112);

	/* The restored VM, reading the same used ring from its index 2. */
	struct fake_vq rb = { .ram = b->g.ram, .desc = FAKE_DESC(0), .avail = FAKE_AVAIL(0), .used = FAKE_USED(0),
			      .size = QSIZE, .used_seen = 2 };
	frame(b);
	assert_true(fake_vq_used(&rb, &id, &len));
	assert_int_equal(id, hc);
	assert_int_equal(len, 112);
	assert_false(fake_vq_used(&rb, &id, &len));
	free(f.buf);
	destroy(a);
	destroy(b);
}

/* A driver that enables the receive queue only: a pause's resume looks at
 * the enabled queues only, as the restored copy does, and both stay live. */
static void test_resume_disabled_txq(void **state)
{
	(void)state;
	struct machine *a = build();
	struct fake_vq rx;
	bring_up(a, &rx, false);
	assert_int_equal(atomic_load(&a->d->status), S_OK);
	a->vv.ops->quiesce(&a->vv);
	struct snap_file f = save_both(a);
	struct machine *b = build();
	memcpy(b->g.ram, a->g.ram, 1 * MiB);
	restore_both(b, &f);
	a->vv.ops->resume(&a->vv);
	assert_int_equal(atomic_load(&a->d->status), S_OK);
	assert_int_equal(atomic_load(&b->d->status), S_OK);
	free(f.buf);
	destroy(a);
	destroy(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_chain_between_held),
		cmocka_unit_test(test_resume_disabled_txq),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
