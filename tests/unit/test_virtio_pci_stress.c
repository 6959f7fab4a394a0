/* Multi-vCPU stress of the virtio 1.x PCI transport (src/virtio/virtio_pci.c),
 * meant for ThreadSanitizer (it is in the Makefile's TSAN_TESTS): one
 * "driver" vCPU thread plays the whole handshake and posts requests in a
 * loop, while other vCPU threads hammer every transport register the guest
 * can reach — status, feature selectors, queue select/size/enable/addresses,
 * MSI-X vectors and table, ISR, device config, notify, PCI config space and
 * the command register — and the real event thread serves the queue of a
 * real device (virtio-rng). The guest may do all of this at once; vigil
 * must have no data race, no crash, and still serve the queue after a clean
 * reset at the end. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/pci.h"
#include "devices/virtio_rng.h"
#include "fake_driver.h"
#include "host/evloop.h"
#include "host/exec_evloop.h"
#include "virtio/virtio_pci.h"

#define MMIO_BASE 0xC0000000ULL
#define MMIO_SIZE 0x01000000ULL
#define SLOT 1
#define GUEST_SIZE (32 * MiB) /* rings for ROUNDS + 1 handshakes */
/* Each handshake lays its rings out in fresh (zero) memory, so no guest
 * write ever races a device read of a ring the device may still hold; the
 * hammers point queues only at SCRATCH, which nobody writes. */
#define RINGS(round) (0x100000ULL + 0x3000ULL * (round))
#define SCRATCH 0x10000ULL
#define QSIZE 16
#define DATA 0x80000u
#define HAMMERS 3
#define ROUNDS 1500
_Static_assert(0x100000ULL + 0x3000ULL * (ROUNDS + 1) <= 32 * 1024 * 1024, "rings fit in guest RAM");

/* Common configuration fields (virtio 1.x 4.1.4.3). */
#define CC_DFSELECT 0x00
#define CC_DF 0x04
#define CC_GFSELECT 0x08
#define CC_GF 0x0c
#define CC_MSIX_CONFIG 0x10
#define CC_STATUS 0x14
#define CC_Q_SELECT 0x16
#define CC_Q_SIZE 0x18
#define CC_Q_MSIX 0x1a
#define CC_Q_ENABLE 0x1c
#define CC_Q_DESC 0x20
#define CC_Q_AVAIL 0x28
#define CC_Q_USED 0x30
#define B_ISR 0x1000
#define B_DEVICE 0x2000
#define B_NOTIFY 0x3000
#define B_TABLE 0x4000
#define B_PBA 0x5000

struct msi {
	atomic_int fired;
};

struct rig {
	struct fake_guest g;
	struct dev_stats stats;
	struct pci_host *h;
	struct evloop *loop;
	struct exec ex;
	struct virtio_dev *d;
	struct virtio_pci *vp;
	pthread_mutex_t cfg_lock; /* the 0xCF8 latch is one per machine: a vCPU's address+data pair */
	atomic_bool stop;
	atomic_int intx;
};

static int fake_fill(void *ctx, void *buf, size_t len)
{
	(void)ctx;
	memset(buf, 0x5a, len);
	return 0;
}
static const struct entropy ent = { fake_fill, NULL };

static int msi_alloc(void *ctx, struct msi **out)
{
	(void)ctx;
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}
static int msi_set(void *ctx, struct msi *m, uint64_t addr, uint32_t data)
{
	(void)ctx, (void)m, (void)addr, (void)data;
	return 0;
}
static void msi_fire(void *ctx, struct msi *m)
{
	(void)ctx;
	atomic_fetch_add(&m->fired, 1);
}
static void msi_free(void *ctx, struct msi *m)
{
	(void)ctx;
	free(m);
}

static void intx_set(void *ctx, uint32_t gsi, int level)
{
	struct rig *r = ctx;
	(void)gsi;
	atomic_store(&r->intx, level);
}
static struct irq_line intx(void *ctx, uint32_t gsi)
{
	return (struct irq_line){ .set = intx_set, .ctx = ctx, .gsi = gsi };
}

/* ---- guest accessors ---------------------------------------------------- */

static uint32_t cfg_rw(struct rig *r, uint32_t off, uint32_t len, uint32_t v, bool w)
{
	uint8_t a[4], b[4];
	put32(a, 0x80000000u | SLOT << 11 | (off & 0xfc));
	put32(b, v);
	pthread_mutex_lock(&r->cfg_lock);
	pci_host_cfg_io(r->h, 0, a, 4, true);
	pci_host_cfg_io(r->h, 4 + (off & 3), b, len, w);
	pthread_mutex_unlock(&r->cfg_lock);
	return get32(b);
}

static uint64_t bar_rw(struct rig *r, uint64_t off, uint32_t len, uint64_t v, bool w)
{
	uint8_t b[8];
	put64(b, v);
	pci_host_mmio(r->h, off, b, len, w); /* BAR0 stays at the window's base */
	return get64(b);
}

static void wr(struct rig *r, uint64_t off, uint32_t len, uint64_t v)
{
	bar_rw(r, off, len, v, true);
}

static uint64_t rd(struct rig *r, uint64_t off, uint32_t len)
{
	return bar_rw(r, off, len, 0, false);
}

/* ---- the driver --------------------------------------------------------- */

static void handshake(struct rig *r, struct fake_vq *q, unsigned round)
{
	wr(r, CC_STATUS, 1, 0);
	wr(r, CC_STATUS, 1, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER);
	wr(r, CC_DFSELECT, 4, 1);
	uint32_t hi = (uint32_t)rd(r, CC_DF, 4);
	wr(r, CC_GFSELECT, 4, 0);
	wr(r, CC_GF, 4, 0);
	wr(r, CC_GFSELECT, 4, 1);
	wr(r, CC_GF, 4, hi);
	wr(r, CC_STATUS, 1, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK);
	uint64_t base = RINGS(round);
	*q = (struct fake_vq){ .ram = r->g.ram, .desc = base, .avail = base + 0x1000, .used = base + 0x2000,
			       .size = QSIZE };
	wr(r, CC_Q_SELECT, 2, 0);
	wr(r, CC_Q_SIZE, 2, QSIZE);
	wr(r, CC_Q_MSIX, 2, 0);
	wr(r, CC_Q_DESC, 8, q->desc);
	wr(r, CC_Q_AVAIL, 8, q->avail);
	wr(r, CC_Q_USED, 8, q->used);
	wr(r, CC_Q_ENABLE, 2, 1);
	wr(r, CC_STATUS, 1, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK | VIRTIO_S_DRIVER_OK);
}

static void post_one(struct rig *r, struct fake_vq *q)
{
	struct fake_seg s = { .gpa = DATA, .len = 64, .write = true };
	fake_vq_post(q, &s, 1);
	wr(r, B_NOTIFY, 2, 0);
}

/* Waits up to 2 s for a completion. */
static bool wait_used(struct fake_vq *q)
{
	uint32_t id, len;
	for (int i = 0; i < 2000; i++) {
		if (fake_vq_used(q, &id, &len))
			return true;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return false;
}

static void *driver(void *arg)
{
	struct rig *r = arg;
	struct fake_vq q;
	for (int round = 0; round < ROUNDS; round++) {
		handshake(r, &q, (unsigned)round);
		for (int i = 0; i < 4; i++)
			post_one(r, &q);
		(void)rd(r, B_ISR, 1);
	}
	atomic_store(&r->stop, true);
	return NULL;
}

/* Every register a guest can write, with values a hostile guest picks. */
static void *hammer(void *arg)
{
	struct rig *r = arg;
	unsigned seed = (unsigned)(uintptr_t)&seed;
	while (!atomic_load(&r->stop)) {
		unsigned x = (unsigned)rand_r(&seed);
		switch (x % 16) {
		case 0: wr(r, CC_Q_SELECT, 2, x >> 8 & 1); break;
		case 1: wr(r, CC_Q_SIZE, 2, 1u << (x >> 8 & 7)); break;
		case 2: wr(r, CC_Q_ENABLE, 2, x >> 8 & 1); break;
		case 3: wr(r, CC_Q_DESC, 8, SCRATCH); break;
		case 4: wr(r, CC_Q_MSIX, 2, x >> 8 & 3); break;
		case 5: wr(r, CC_MSIX_CONFIG, 2, x >> 8 & 3); break;
		case 6: wr(r, CC_STATUS, 1, x >> 8 & 0xff); break;
		case 7: wr(r, CC_GFSELECT, 4, x >> 8 & 1); break;
		case 8: (void)rd(r, B_ISR, 1); break;
		case 9: wr(r, B_NOTIFY, 2, x >> 8 & 1); break;
		case 10: wr(r, B_TABLE + (x >> 8 & 0x3f), 4, x); break;
		case 11: (void)rd(r, B_PBA, 8); break;
		case 12: (void)rd(r, B_DEVICE + (x >> 8 & 7), 1); break;
		case 13: cfg_rw(r, 0x04, 2, (x & 0x100) ? 0x0406 : 0x0006, true); break;
		case 14: cfg_rw(r, 0x84 + 2, 2, (x & 0x100) ? 0x8000 : 0x0000, true); break; /* MSI-X enable */
		default: (void)cfg_rw(r, x >> 8 & 0xfc, 4, 0, false); break;
		}
	}
	return NULL;
}

static void test_concurrent_registers(void **state)
{
	(void)state;
	struct rig *r = calloc(1, sizeof(*r));
	char err[128] = "";
	assert_non_null(r);
	assert_int_equal(fake_guest_init(&r->g, GUEST_SIZE), 0);
	pthread_mutex_init(&r->cfg_lock, NULL);
	r->stats.name = "rng";
	r->h = pci_host_new(MMIO_BASE, MMIO_SIZE);
	r->loop = evloop_new();
	assert_non_null(r->h);
	assert_non_null(r->loop);
	r->ex = evloop_exec(r->loop);
	assert_int_equal(evloop_start(r->loop), 0);
	r->d = virtio_rng_new(&r->g.m, (struct dev_gate){ .stats = &r->stats }, &ent);
	assert_non_null(r->d);
	struct platform_ops plat = { .msi_alloc = msi_alloc, .msi_set = msi_set, .msi_fire = msi_fire,
				     .msi_free = msi_free, .ctx = r };
	r->vp = virtio_pci_new(r->d, r->h, &r->ex, &plat, intx, r, err, sizeof(err));
	assert_non_null(r->vp);
	assert_int_equal(cfg_rw(r, 0x10, 4, 0, false) & ~0xfu, (uint32_t)MMIO_BASE);
	cfg_rw(r, 0x04, 2, 0x0006, true);

	pthread_t drv, ham[HAMMERS];
	assert_int_equal(pthread_create(&drv, NULL, driver, r), 0);
	for (int i = 0; i < HAMMERS; i++)
		assert_int_equal(pthread_create(&ham[i], NULL, hammer, r), 0);
	pthread_join(drv, NULL);
	for (int i = 0; i < HAMMERS; i++)
		pthread_join(ham[i], NULL);

	/* Alone again: a clean reset and handshake, and the queue is served. */
	struct fake_vq q;
	cfg_rw(r, 0x84 + 2, 2, 0x8000, true);
	cfg_rw(r, 0x04, 2, 0x0006, true);
	handshake(r, &q, ROUNDS);
	assert_int_equal(rd(r, CC_STATUS, 1) & VIRTIO_S_DEVICE_NEEDS_RESET, 0);
	post_one(r, &q);
	assert_true(wait_used(&q));

	evloop_stop(r->loop);
	virtio_rng_free(r->d);
	virtio_pci_free(r->vp);
	evloop_free(r->loop);
	pci_host_free(r->h);
	fake_guest_fini(&r->g);
	pthread_mutex_destroy(&r->cfg_lock);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_registers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
