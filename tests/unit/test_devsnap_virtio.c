/* Snapshots of the virtio-pci transport, with the PCI host's section: a
 * driver (the test, through 0xCF8/0xCFC and BAR0) moves BAR0, enables
 * MSI-X, negotiates, programs a queue and a vector and reaches DRIVER_OK;
 * the device consumes some chains. Saved and restored into a freshly built
 * machine, the new transport must read back the same, point the vector
 * through the platform, bind the doorbells at the moved BAR, activate the
 * device once without resetting it, and carry on the ring indices; hostile
 * sections are refused before anything is activated. Single-threaded: the
 * fake executor says "not running", so lifecycle steps run inline. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/pci.h"
#include "fake_guest.h"
#include "snap_help.h"
#include "virtio/virtio_pci.h"

#define MMIO_BASE 0xC0000000ULL
#define MMIO_SIZE 0x01000000ULL
#define NEW_BAR (MMIO_BASE + 0x100000)
#define NQ 2
#define QMAX 64
#define QSIZE 16

#define B_NOTIFY 0x3000
#define B_TABLE 0x4000
#define CC_GFSELECT 0x08
#define CC_GF 0x0c
#define CC_MSIX_CONFIG 0x10
#define CC_STATUS 0x14
#define CC_CFGGEN 0x15
#define CC_Q_SELECT 0x16
#define CC_Q_SIZE 0x18
#define CC_Q_MSIX 0x1a
#define CC_Q_ENABLE 0x1c
#define CC_Q_DESC 0x20
#define CC_Q_AVAIL 0x28
#define CC_Q_USED 0x30
#define S_OK (VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK | VIRTIO_S_DRIVER_OK)
#define DESC 0x10000ULL
#define AVAIL 0x11000ULL
#define USED 0x12000ULL

/* ---- fakes -------------------------------------------------------------- */

struct doorbell {
	int rung;
};

struct msi {
	int n;
};

struct machine {
	struct fake_guest g;
	struct pci_host *h;
	struct virtio_dev d;
	struct virtio_pci *vp;
	struct vdev pv, vv;
	struct doorbell db[2 * NQ]; /* each queue's, and its platform one */
	unsigned ndb;
	struct msi msi[NQ + 1];
	unsigned nmsi;
	/* records */
	int activate, reset, notify;
	uint32_t own;          /* the device's own state */
	int own_restored;
	uint64_t msi_addr[NQ + 1];
	uint32_t msi_data[NQ + 1];
	int msi_sets;
	uint64_t bound_gpa[NQ];
	bool bound[NQ];
	uint64_t bar;
};

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
	(void)fn, (void)arg;
	return m->ndb < 2 * NQ ? &m->db[m->ndb++] : NULL;
}
static void fx_db_ring(void *ctx, struct doorbell *db)
{
	(void)ctx;
	db->rung++;
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
	m->msi[m->nmsi].n = (int)m->nmsi;
	*out = &m->msi[m->nmsi++];
	return 0;
}
static int fp_set(void *ctx, struct msi *v, uint64_t addr, uint32_t data)
{
	struct machine *m = ctx;
	m->msi_addr[v->n] = addr;
	m->msi_data[v->n] = data;
	m->msi_sets++;
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
	struct machine *m = ctx;
	(void)len;
	unsigned i = (unsigned)(db - m->db), q = i / 2; /* made per queue: the transport's, then this one */
	assert_true(q < NQ && i % 2 == 1);
	m->bound[q] = assign;
	m->bound_gpa[q] = assign ? gpa : 0;
	return 0;
}

static void intx_set(void *ctx, uint32_t gsi, int level)
{
	(void)ctx, (void)gsi, (void)level;
}
static struct irq_line intx(void *ctx, uint32_t gsi)
{
	return (struct irq_line){ .set = intx_set, .ctx = ctx, .gsi = gsi };
}

static struct machine *to_m(struct virtio_dev *d)
{
	return d->priv;
}
static void fk_notify(struct virtio_dev *d, unsigned q)
{
	(void)q;
	to_m(d)->notify++;
}
static int fk_activate(struct virtio_dev *d)
{
	to_m(d)->activate++;
	return 0;
}
static void fk_reset(struct virtio_dev *d)
{
	to_m(d)->reset++;
}
static void fk_cfg_read(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len)
{
	(void)d, (void)off;
	memset(buf, 0, len);
}
static int fk_save(struct virtio_dev *d, struct snap_writer *w)
{
	snap_put_u32(w, to_m(d)->own);
	return 0;
}
static int fk_restore(struct virtio_dev *d, struct snap_reader *r)
{
	struct machine *m = to_m(d);
	m->own = snap_get_u32(r);
	m->own_restored++;
	/* The transport's part is in place before the device's. */
	assert_true(atomic_load(&d->status) == S_OK);
	assert_int_equal(m->activate, 0);
	return snap_error(r)[0] ? -1 : 0;
}
static const struct virtio_dev_ops fk_ops = { .queue_notify = fk_notify, .activate = fk_activate,
					      .reset = fk_reset, .config_read = fk_cfg_read,
					      .save = fk_save, .restore = fk_restore };

static struct machine *build(void)
{
	struct machine *m = calloc(1, sizeof(*m));
	char err[128];
	assert_int_equal(fake_guest_init(&m->g, 1 * MiB), 0);
	m->h = pci_host_new(MMIO_BASE, MMIO_SIZE);
	m->d = (struct virtio_dev){ .name = "fake", .device_id = 1, .num_queues = NQ, .queue_max = QMAX,
				    .config_len = 8, .ops = &fk_ops, .priv = m, .mem = &m->g.m };
	struct exec ex = { &fx_ops, m };
	struct platform_ops plat = { fp_alloc, fp_set, fp_fire, fp_free, fp_doorbell, m, NULL };
	m->vp = virtio_pci_new(&m->d, m->h, &ex, &plat, intx, m, err, sizeof(err));
	assert_non_null(m->vp);
	m->pv = (struct vdev){ .id = "pci-host", .kind = "pci-host", .impl = m->h };
	static const struct vdev_ops pci_ops = { .save = pci_host_save, .restore = pci_host_restore };
	m->pv.ops = &pci_ops;
	m->vv = (struct vdev){ .id = "net1", .kind = "virtio-net", .ops = &virtio_pci_vdev_ops, .impl = m->vp };
	m->bar = MMIO_BASE;
	return m;
}

static void destroy(struct machine *m)
{
	virtio_pci_free(m->vp);
	pci_host_free(m->h);
	fake_guest_fini(&m->g);
	free(m);
}

/* ---- the driver's accesses ---------------------------------------------- */

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
	pci_host_mmio(m->h, m->bar - MMIO_BASE + off, d, len, true);
}

static uint64_t bar_rd(struct machine *m, uint64_t off, uint32_t len)
{
	uint8_t d[8] = { 0 };
	uint64_t v = 0;
	pci_host_mmio(m->h, m->bar - MMIO_BASE + off, d, len, false);
	for (unsigned i = 0; i < len; i++)
		v |= (uint64_t)d[i] << (8 * i);
	return v;
}

/* The whole driver bring-up, and some traffic on queue 0. */
static void drive(struct machine *m)
{
	cfg_wr(m, 0x10, (uint32_t)NEW_BAR, 4);
	m->bar = NEW_BAR;
	cfg_wr(m, 0x04, 0x0006, 2);
	cfg_wr(m, 0x86, 0x8000, 2); /* MSI-X enable */
	bar_wr(m, CC_STATUS, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER, 1);
	bar_wr(m, CC_GFSELECT, 1, 4);
	bar_wr(m, CC_GF, 1, 4); /* VERSION_1 */
	bar_wr(m, CC_GFSELECT, 0, 4);
	bar_wr(m, CC_GF, 1u << VIRTIO_F_EVENT_IDX, 4);
	bar_wr(m, CC_STATUS, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK, 1);
	bar_wr(m, CC_Q_SELECT, 0, 2);
	bar_wr(m, CC_Q_SIZE, QSIZE, 2);
	bar_wr(m, CC_Q_MSIX, 1, 2);
	bar_wr(m, CC_Q_DESC, DESC, 8);
	bar_wr(m, CC_Q_AVAIL, AVAIL, 8);
	bar_wr(m, CC_Q_USED, USED, 8);
	bar_wr(m, CC_Q_ENABLE, 1, 2);
	bar_wr(m, CC_MSIX_CONFIG, 0, 2);
	bar_wr(m, B_TABLE + 16 + 0, 0xfee01000, 8); /* vector 1 */
	bar_wr(m, B_TABLE + 16 + 8, 0x4041, 4);
	bar_wr(m, B_TABLE + 16 + 12, 0, 4); /* unmasked */
	bar_wr(m, CC_STATUS, S_OK, 1);
	assert_int_equal(m->activate, 1);

	/* Five chains made available, four consumed and pushed. */
	uint8_t *ram = m->g.ram;
	for (unsigned i = 0; i < 5; i++) {
		put64(ram + DESC + 16 * i, 0x20000 + 0x100 * i);
		put32(ram + DESC + 16 * i + 8, 0x100);
		put16(ram + DESC + 16 * i + 12, VIRTQ_DESC_F_WRITE);
		put16(ram + AVAIL + 4 + 2 * i, (uint16_t)i);
	}
	put16(ram + AVAIL + 2, 5);
	struct virtq *vq = &m->d.vq[0];
	struct virtq_chain c;
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(virtq_pop(vq, &c), 1);
		virtq_push(vq, c.head, 1);
	}
	(void)virtq_should_notify(vq);
	/* The fifth is held, as a receive buffer waiting for a frame. */
	assert_int_equal(virtq_pop(vq, &c), 1);
	assert_int_equal(vq->last_avail, 5);
	assert_int_equal(vq->used_idx, 4);
	m->own = 0xc0ffee;
}

/* pci-host, then the transport, as the registry orders them. */
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

static int restore_both(struct machine *m, const struct snap_file *f, char *err, size_t errlen)
{
	struct snap_reader *r = snap_open_file(f);
	int rc = m->pv.ops->restore(&m->pv, r);
	if (rc == 0)
		rc = m->vv.ops->restore(&m->vv, r);
	snprintf(err, errlen, "%s", snap_error(r));
	snap_reader_free(r);
	return rc;
}

static void test_transport_round_trip(void **state)
{
	(void)state;
	struct machine *a = build();
	drive(a);
	struct snap_file f = save_both(a);

	struct machine *b = build();
	memcpy(b->g.ram, a->g.ram, 1 * MiB); /* the memory file */
	b->msi_sets = 0;
	char err[SNAP_ERR_MAX];
	assert_int_equal(restore_both(b, &f, err, sizeof(err)), 0);
	b->bar = NEW_BAR;

	/* The device: its own part, then one activation, no reset. */
	assert_int_equal(b->own_restored, 1);
	assert_int_equal(b->own, 0xc0ffee);
	assert_ptr_equal(virtio_pci_device(b->vp), &b->d);
	assert_int_equal(b->activate, 1);
	assert_int_equal(b->reset, 0);
	/* The transport reads back what the driver programmed, at the moved BAR. */
	assert_int_equal(bar_rd(b, CC_STATUS, 1), S_OK);
	bar_wr(b, CC_GFSELECT, 1, 4);
	assert_int_equal(bar_rd(b, CC_GF, 4), 1);
	bar_wr(b, CC_GFSELECT, 0, 4);
	assert_int_equal(bar_rd(b, CC_GF, 4), 1u << VIRTIO_F_EVENT_IDX);
	assert_int_equal(bar_rd(b, CC_CFGGEN, 1), bar_rd(a, CC_CFGGEN, 1));
	assert_int_equal(bar_rd(b, CC_MSIX_CONFIG, 2), 0);
	bar_wr(b, CC_Q_SELECT, 0, 2);
	assert_int_equal(bar_rd(b, CC_Q_SIZE, 2), QSIZE);
	assert_int_equal(bar_rd(b, CC_Q_MSIX, 2), 1);
	assert_int_equal(bar_rd(b, CC_Q_ENABLE, 2), 1);
	assert_true(bar_rd(b, CC_Q_DESC, 8) == DESC);
	assert_true(bar_rd(b, CC_Q_AVAIL, 8) == AVAIL);
	assert_true(bar_rd(b, CC_Q_USED, 8) == USED);
	bar_wr(b, CC_Q_SELECT, 1, 2);
	assert_int_equal(bar_rd(b, CC_Q_ENABLE, 2), 0);
	assert_int_equal(bar_rd(b, CC_Q_SIZE, 2), QMAX);
	assert_true(bar_rd(b, B_TABLE + 16, 8) == 0xfee01000);
	assert_int_equal(bar_rd(b, B_TABLE + 16 + 8, 4), 0x4041);
	assert_int_equal(bar_rd(b, B_TABLE + 16 + 12, 4), 0);
	assert_int_equal(bar_rd(b, B_TABLE + 12, 4), 1); /* vector 0 still masked */
	/* The vector points where the guest said, through the platform. */
	assert_true(b->msi_sets >= 1);
	assert_true(b->msi_addr[1] == 0xfee01000);
	assert_int_equal(b->msi_data[1], 0x4041);
	/* Doorbells at the moved BAR. */
	for (unsigned q = 0; q < NQ; q++) {
		assert_true(b->bound[q]);
		assert_true(b->bound_gpa[q] == NEW_BAR + B_NOTIFY + 4 * q);
	}
	/* The ring goes on where it was: the held fifth chain popped again,
	 * used index 5 after it. */
	struct virtq *vq = &b->d.vq[0];
	assert_int_equal(vq->last_avail, 4);
	assert_int_equal(vq->used_idx, 4);
	assert_int_equal(vq->signalled, a->d.vq[0].signalled);
	assert_true(vq->event_idx);
	struct virtq_chain c;
	assert_int_equal(virtq_pop(vq, &c), 1);
	assert_int_equal(c.head, 4);
	virtq_push(vq, c.head, 1);
	assert_int_equal(get16(b->g.ram + USED + 2), 5);
	assert_int_equal(virtq_pop(vq, &c), 0);

	free(f.buf);
	destroy(a);
	destroy(b);
}

/* Payload offsets of the transport's section (nvec 3): see vdev_save. */
#define O_STATUS 24
#define O_CFGVEC 37
#define O_MSIX(i) (41 + 16 * (i))
#define O_Q0 (41 + 16 * (NQ + 1) + 8 + 2)
#define O_QSIZE (O_Q0 + 0)
#define O_QVEC (O_Q0 + 2)
#define O_QEN (O_Q0 + 6)
#define O_QDESC (O_Q0 + 7)
#define O_QEVIDX (O_Q0 + 37)

static void refused(const struct snap_file *good, size_t off, uint64_t v, unsigned n, const char *want)
{
	struct snap_file h = snap_patch(good, "net1", off, v, n);
	struct machine *b = build();
	char err[SNAP_ERR_MAX];
	assert_int_equal(restore_both(b, &h, err, sizeof(err)), -1);
	if (!strstr(err, want))
		fail_msg("refused with \"%s\", expected \"%s\"", err, want);
	assert_int_equal(b->activate, 0);
	assert_int_equal(b->own_restored, 0);
	free(h.buf);
	destroy(b);
}

static void test_transport_hostile(void **state)
{
	(void)state;
	struct machine *a = build();
	drive(a);
	struct snap_file f = save_both(a);

	/* The offsets are right: the untouched values patch in cleanly. */
	struct snap_file same = snap_patch(&f, "net1", O_QSIZE, QSIZE, 2);
	struct machine *b = build();
	char err[SNAP_ERR_MAX];
	assert_int_equal(restore_both(b, &same, err, sizeof(err)), 0);
	destroy(b);
	free(same.buf);

	refused(&f, O_QSIZE, QMAX * 2, 2, "above the device's 64");
	refused(&f, O_QSIZE, 12, 2, "outside guest RAM");        /* not a power of two */
	refused(&f, O_QDESC, 0x40000000, 8, "outside guest RAM"); /* past the 1 MiB of RAM */
	refused(&f, O_QDESC, DESC + 8, 8, "outside guest RAM");   /* misaligned */
	refused(&f, O_QVEC, 9, 2, "MSI-X vector 9");
	refused(&f, O_CFGVEC, 3, 2, "config MSI-X vector 3");
	refused(&f, O_QEN, 2, 1, "a boolean holds 2");
	refused(&f, O_QEVIDX, 0, 1, "event index");
	refused(&f, O_STATUS, VIRTIO_S_DRIVER_OK, 1, "DRIVER_OK without FEATURES_OK");
	refused(&f, O_MSIX(1) + 12, 0x10, 4, "MSI-X entry 1");
	refused(&f, 16, 1ULL << 40, 8, "negotiated features");
	free(f.buf);
	destroy(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transport_round_trip),
		cmocka_unit_test(test_transport_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
