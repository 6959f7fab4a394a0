/* fuzz_virtio — libFuzzer target for the virtio-pci transport with one real
 * device model behind it (built once per device: -DFUZZ_DEV=FUZZ_BLK, _NET,
 * _VSOCK, _RNG, _CONSOLE). The input is a guest driver and a host: a 2-byte
 * header (device options, whether the platform binds doorbells), then a
 * sequence of operations, each an opcode byte and its operands —
 *   PCI config reads/writes through 0xCF8/0xCFC (BAR moves, command register),
 *   BAR0 reads/writes (common config, ISR, device config, notify, MSI-X
 *   table and PBA, or anywhere in the MMIO window),
 *   guest RAM writes and whole descriptor chains posted on a queue,
 *   a driver handshake macro (so the fuzzer reaches DRIVER_OK cheaply),
 *   running what the executor holds (doorbells, timers, block completions),
 *   and host events from the fake backend (block completions with errors,
 *   received frames with their header, vsock host clients and their
 *   "CONNECT <port>" lines, stream readiness, console input).
 * Everything runs on the fuzzer's thread: the fake executor's post() says
 * "not running" so the transport runs lifecycle steps inline, and doorbells
 * and timers wait for an explicit "run" operation, as they would wait for
 * the event thread. ASan catches any access outside guest RAM (one heap
 * block) and UBSan any undefined arithmetic on guest values. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "fuzz_pool.h"
#include "core/clock.h"
#include "core/devreq.h"
#include "core/entropy.h"
#include "core/exec.h"
#include "core/platform.h"
#include "devices/pci.h"
#include "devices/blk_backend.h"
#include "devices/net_backend.h"
#include "devices/vsock_backend.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_console.h"
#include "devices/virtio_net.h"
#include "devices/virtio_rng.h"
#include "devices/virtio_vsock.h"
#include "virtio/virtio_pci.h"

#define FUZZ_BLK 1
#define FUZZ_NET 2
#define FUZZ_VSOCK 3
#define FUZZ_RNG 4
#define FUZZ_CONSOLE 5
#ifndef FUZZ_DEV
#define FUZZ_DEV FUZZ_BLK
#endif

#define MMIO_BASE 0xC0000000ULL
#define MMIO_SIZE 0x01000000ULL
#define RAM_SIZE 0x40000u /* 256 KiB at gpa 0 */
#define QSIZE 16u
#define RING(q) (0x1000u + 0x1000u * (q)) /* desc; avail +0x100, used +0x200 */
#define DATA 0x10000u                      /* where chains point, mostly */
#define MAX_DB (3 * VIRTIO_MAX_QUEUES) /* each queue's and its platform one, and the device's own */
#define MAX_IO 64
#define MAX_STREAMS 32

static uint8_t *ram;
static struct gmem mem;

/* ---- input reader ------------------------------------------------------- */


static void put(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- fake executor ------------------------------------------------------ */

struct doorbell {
	void (*fn)(void *);
	void *arg;
	bool pending, used;
};

struct exec_timer {
	void (*fn)(void *);
	void *arg;
	bool armed;
};

static struct doorbell dbs[MAX_DB];
static struct exec_timer timers[4];
static unsigned ntimers;

static int fx_post(void *ctx, void (*fn)(void *), void *arg)
{
	(void)ctx, (void)fn, (void)arg;
	return -ESRCH;
}

static struct exec_timer *fx_timer_new(void *ctx, void (*fn)(void *), void *arg)
{
	(void)ctx;
	if (ntimers == 4)
		return NULL;
	timers[ntimers] = (struct exec_timer){ fn, arg, false };
	return &timers[ntimers++];
}

static int fx_timer_arm(void *ctx, struct exec_timer *t, uint64_t ms)
{
	(void)ctx;
	t->armed = ms != 0;
	return 0;
}

static void fx_timer_free(void *ctx, struct exec_timer *t)
{
	(void)ctx;
	if (t)
		t->fn = NULL, t->armed = false;
}

static struct doorbell *fx_db_new(void *ctx, void (*fn)(void *), void *arg)
{
	(void)ctx;
	for (unsigned i = 0; i < MAX_DB; i++)
		if (!dbs[i].used) {
			dbs[i] = (struct doorbell){ fn, arg, false, true };
			return &dbs[i];
		}
	return NULL;
}

static void fx_db_ring(void *ctx, struct doorbell *db)
{
	(void)ctx;
	if (!db->used)
		__builtin_trap(); /* rung after free */
	db->pending = true;
}

static void fx_db_free(void *ctx, struct doorbell *db)
{
	(void)ctx;
	if (db)
		db->used = db->pending = false;
}

static const struct exec_ops fx_ops = { fx_post, fx_timer_new, fx_timer_arm, fx_timer_free,
					fx_db_new, fx_db_ring, fx_db_free };
static const struct exec fx = { &fx_ops, NULL };

/* ---- fake platform ------------------------------------------------------ */

struct msi {
	uint64_t addr;
	uint32_t data;
};

static int fp_msi_alloc(void *ctx, struct msi **out)
{
	(void)ctx;
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

static int fp_msi_set(void *ctx, struct msi *m, uint64_t addr, uint32_t data)
{
	(void)ctx;
	m->addr = addr;
	m->data = data;
	return 0;
}

static void fp_msi_fire(void *ctx, struct msi *m)
{
	(void)ctx, (void)m;
}

static void fp_msi_free(void *ctx, struct msi *m)
{
	(void)ctx;
	free(m);
}

static int doorbell_ret;
static int fp_doorbell(void *ctx, uint64_t gpa, uint32_t len, struct doorbell *db, bool assign)
{
	(void)ctx, (void)gpa, (void)len, (void)db, (void)assign;
	return doorbell_ret;
}

static void intx_set(void *ctx, uint32_t gsi, int level)
{
	(void)ctx, (void)gsi, (void)level;
}

static struct irq_line intx(void *ctx, uint32_t gsi)
{
	return (struct irq_line){ .set = intx_set, .ctx = ctx, .gsi = gsi };
}

static uint64_t now_ns;
static uint64_t clk_mono(void *ctx)
{
	(void)ctx;
	return now_ns += 1000000;
}
static int64_t clk_wall(void *ctx)
{
	(void)ctx;
	return 1700000000;
}
static const struct vclock clk __attribute__((unused)) = { clk_mono, clk_wall, NULL };

/* ---- fake backends ------------------------------------------------------ */

#if FUZZ_DEV == FUZZ_BLK
struct fblk {
	struct blk_backend be;
	/* Every job of every queue: the device never has more in flight. */
	struct blk_io *io[VIRTIO_MAX_QUEUES * VIRTIO_BLK_QUEUE_MAX];
	unsigned n;
	unsigned unplugs;
};
static struct fblk fblk;

static void fb_submit(struct blk_backend *be, struct blk_io *io)
{
	struct fblk *b = (struct fblk *)be;
	if (b->n == sizeof(b->io) / sizeof(b->io[0])) /* more than the device's jobs: a bug there */
		__builtin_trap();
	b->io[b->n++] = io;
}

/* Completes the oldest I/O; reads fill their buffers (ASan checks them). */
static void fb_complete(struct fblk *b, int result)
{
	if (!b->n)
		return;
	struct blk_io *io = b->io[0];
	memmove(b->io, b->io + 1, --b->n * sizeof(b->io[0]));
	for (unsigned i = 0; i < io->n; i++) {
		if (io->op == BLK_READ)
			memset(io->iov[i].iov_base, 0xa5, io->iov[i].iov_len);
		else
			for (size_t k = 0; k < io->iov[i].iov_len; k++)
				__asm__ volatile("" ::"r"(((volatile uint8_t *)io->iov[i].iov_base)[k]));
	}
	io->done(io, result);
}

/* A batching backend's end of a run of completions (the device's
 * interrupt decision for every queue that had one). */
static void fb_batch_end(struct fblk *b)
{
	if (b->be.batches && b->be.batch_end)
		b->be.batch_end(b->be.batch_ctx, true);
}

static void fb_drain(struct blk_backend *be)
{
	struct fblk *b = (struct fblk *)be;
	while (b->n)
		fb_complete(b, 0);
	fb_batch_end(b);
}

static void fb_unplug(struct blk_backend *be)
{
	((struct fblk *)be)->unplugs++;
}

static void fb_free(struct blk_backend *be)
{
	fb_drain(be);
}

static const struct blk_backend_ops fb_ops = { .submit = fb_submit, .drain = fb_drain, .free = fb_free,
					       .unplug = fb_unplug };
#endif

#if FUZZ_DEV == FUZZ_NET
struct fnet {
	struct net_backend be;
	/* a TSO frame's worth: long frames reach the mergeable-buffer paths
	 * (tails through the spill, more chains, frames too long for them) */
	uint8_t frame[VIRTIO_NET_HDR_LEN + VIRTIO_NET_FRAME_MAX + 64];
	size_t len;
	bool have, rx_on;
	int send_ret;
};
static struct fnet fnet;

static int fn_send(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
	struct fnet *n = (struct fnet *)be;
	for (int i = 0; i < iovcnt; i++)
		for (size_t k = 0; k < iov[i].iov_len; k++)
			__asm__ volatile("" ::"r"(((volatile const uint8_t *)iov[i].iov_base)[k]));
	return n->send_ret;
}

static ssize_t fn_recv(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
	struct fnet *n = (struct fnet *)be;
	if (!n->have)
		return -EAGAIN;
	n->have = false;
	/* like a TAP: copies what fits, says how long the frame was (a
	 * length past the buffer stands for a frame longer than any) */
	size_t off = 0, len = n->len < sizeof(n->frame) ? n->len : sizeof(n->frame);
	for (int i = 0; i < iovcnt && off < len; i++) {
		size_t k = iov[i].iov_len < len - off ? iov[i].iov_len : len - off;
		memcpy(iov[i].iov_base, n->frame + off, k);
		off += k;
	}
	return (ssize_t)n->len;
}

static void fn_rx_enable(struct net_backend *be, bool on)
{
	((struct fnet *)be)->rx_on = on;
}

static int fn_activate(struct net_backend *be, uint64_t features)
{
	(void)be, (void)features;
	return 0;
}

static void fn_free(struct net_backend *be)
{
	(void)be;
}

static const struct net_backend_ops fn_ops = { fn_send, fn_recv, fn_rx_enable, fn_activate, fn_free };
#endif

#if FUZZ_DEV == FUZZ_VSOCK
struct vsock_stream {
	bool used;
	uint8_t data[64];
	size_t len, pos;
	bool eof;
	int err;        /* recv/send fail with it when set */
	size_t room;    /* send accepts up to this much per call */
	uint32_t watch;
	vsock_stream_fn fn;
	void *cookie;
	int cres;       /* connect_result */
};

struct fvsock {
	struct vsock_backend be;
	struct vsock_stream s[MAX_STREAMS];
	int connect_status; /* 0, 1 (in progress) or -errno */
};
static struct fvsock fvs;

static struct vsock_stream *fv_alloc(struct fvsock *v)
{
	for (unsigned i = 0; i < MAX_STREAMS; i++)
		if (!v->s[i].used) {
			v->s[i] = (struct vsock_stream){ .used = true, .room = 4096 };
			return &v->s[i];
		}
	return NULL;
}

static struct vsock_stream *fv_connect(struct vsock_backend *be, uint32_t port, int *status)
{
	struct fvsock *v = (struct fvsock *)be;
	(void)port;
	if (v->connect_status < 0) {
		*status = v->connect_status;
		return NULL;
	}
	struct vsock_stream *s = fv_alloc(v);
	*status = s ? v->connect_status : -EMFILE;
	return s;
}

static int fv_connect_result(struct vsock_backend *be, struct vsock_stream *s)
{
	(void)be;
	return s->cres;
}

static ssize_t fv_send(struct vsock_backend *be, struct vsock_stream *s, const struct iovec *iov, int cnt)
{
	(void)be;
	if (!s->used)
		__builtin_trap();
	if (s->err)
		return s->err;
	size_t total = 0;
	for (int i = 0; i < cnt; i++) {
		for (size_t k = 0; k < iov[i].iov_len; k++)
			__asm__ volatile("" ::"r"(((volatile const uint8_t *)iov[i].iov_base)[k]));
		total += iov[i].iov_len;
	}
	return (ssize_t)(total < s->room ? total : s->room);
}

static ssize_t fv_recv(struct vsock_backend *be, struct vsock_stream *s, void *buf, size_t len, bool peek)
{
	(void)be;
	if (!s->used)
		__builtin_trap();
	if (s->err)
		return s->err;
	if (s->pos == s->len)
		return s->eof ? 0 : -EAGAIN;
	size_t k = len < s->len - s->pos ? len : s->len - s->pos;
	memcpy(buf, s->data + s->pos, k);
	if (!peek)
		s->pos += k;
	return (ssize_t)k;
}

static void fv_shutdown_wr(struct vsock_backend *be, struct vsock_stream *s)
{
	(void)be, (void)s;
}

static int fv_watch(struct vsock_backend *be, struct vsock_stream *s, uint32_t events, vsock_stream_fn fn,
		    void *cookie)
{
	(void)be;
	if (!s->used)
		__builtin_trap();
	s->watch = events;
	s->fn = fn;
	s->cookie = cookie;
	return 0;
}

static void fv_close(struct vsock_backend *be, struct vsock_stream *s)
{
	(void)be;
	if (!s->used)
		__builtin_trap(); /* closed twice */
	s->used = false;
}

static int fv_start(struct vsock_backend *be)
{
	(void)be;
	return 0;
}

static void fv_free(struct vsock_backend *be)
{
	struct fvsock *v = (struct fvsock *)be;
	for (unsigned i = 0; i < MAX_STREAMS; i++)
		v->s[i].used = false;
}

static const struct vsock_backend_ops fv_ops = { fv_connect, fv_connect_result, fv_send, fv_recv,
						 fv_shutdown_wr, fv_watch, fv_close, fv_start,
						 fv_free };
#endif

#if FUZZ_DEV == FUZZ_RNG
static bool rng_fail;
static int ent_fill(void *ctx, void *buf, size_t len)
{
	(void)ctx;
	if (rng_fail)
		return -EIO;
	memset(buf, 0x5a, len);
	return 0;
}
static const struct entropy ent = { ent_fill, NULL };
#endif

#if FUZZ_DEV == FUZZ_CONSOLE
static void out_write(void *ctx, const uint8_t *buf, size_t len)
{
	(void)ctx;
	for (size_t k = 0; k < len; k++)
		__asm__ volatile("" ::"r"(((volatile const uint8_t *)buf)[k]));
}
#endif

/* ---- the rig ------------------------------------------------------------ */

struct rig {
	struct pci_host *h;
	struct virtio_dev *d;
	struct virtio_pci *vp;
	struct dev_stats stats;
	uint16_t avail_idx[8], next_desc[8];
	/* BAR0's offset in the window as last read from config space: only
	 * a config write (cfg_io) can move it, so reads are saved until one
	 * (two config cycles per BAR access were most of a long run's steps). */
	uint64_t bar0;
	bool bar0_known;
};

static struct virtio_dev *dev_new(struct rig *r, uint8_t opt)
{
	struct dev_gate gate = { .stats = &r->stats, .id = "fuzz", .read_only = opt & 0x10 };
	char err[160] __attribute__((unused));

	r->stats.name = "fuzz";
#if FUZZ_DEV == FUZZ_BLK
	/* The option bits do double duty: the size's also pick 1..8 queues
	 * (VIRTIO_BLK_F_MQ) and whether completions come in batches. */
	fblk = (struct fblk){ .be = { .ops = &fb_ops, .size = 512u * (1 + (opt & 0x0f) * 64),
				      .read_only = opt & 0x20, .batches = opt & 0x01 } };
	struct virtio_blk_config cfg = { .read_only = opt & 0x40, .id = (opt & 0x80) ? "fuzz-disk" : NULL,
					 .path = "fuzz.img", .queues = 1 + ((opt >> 1) & 7), .ex = &fx };
	return virtio_blk_new_backend(&fblk.be, &cfg, &mem, gate, err, sizeof(err));
#elif FUZZ_DEV == FUZZ_NET
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 1, 2, 3 };
	fnet = (struct fnet){ .be = { .ops = &fn_ops, .name = "fuzz", .vnet_hdr = opt & 1,
				      .features = (opt & 2) ? ~0ull : 0 } };
	return virtio_net_new_backend(&fnet.be, mac, NULL, &mem, gate, err, sizeof(err));
#elif FUZZ_DEV == FUZZ_VSOCK
	memset(&fvs, 0, sizeof(fvs));
	fvs.be.ops = &fv_ops;
	return virtio_vsock_new_backend(&fvs.be, 3 + (opt & 7), &fx, &clk, &mem, gate, err, sizeof(err));
#elif FUZZ_DEV == FUZZ_RNG
	rng_fail = false;
	return virtio_rng_new(&mem, gate, &ent);
#else
	return virtio_console_new(&mem, gate, (struct chardev_out){ out_write, NULL }, &clk);
#endif
}

static void dev_free(struct virtio_dev *d)
{
#if FUZZ_DEV == FUZZ_BLK
	virtio_blk_free(d);
#elif FUZZ_DEV == FUZZ_NET
	virtio_net_free(d);
#elif FUZZ_DEV == FUZZ_VSOCK
	virtio_vsock_free(d);
#elif FUZZ_DEV == FUZZ_RNG
	virtio_rng_free(d);
#else
	virtio_console_free(d);
#endif
}

static void cfg_io(struct rig *r, uint8_t off, uint32_t len, uint8_t *b, bool w)
{
	uint8_t a[4];
	put(a, 0x80000000u | 1u << 11 | (off & 0xfc), 4);
	pci_host_cfg_io(r->h, 0, a, 4, true);
	pci_host_cfg_io(r->h, 4 + (off & 3), b, len, w);
	if (w)
		r->bar0_known = false;
}

/* Where BAR0 is now, as an offset in the window (the guest may move it). */
static uint64_t bar0(struct rig *r)
{
	if (r->bar0_known)
		return r->bar0;
	uint8_t b[4] = { 0 };
	cfg_io(r, 0x10, 4, b, false);
	uint64_t a = (b[0] & 0xf0) | (uint64_t)b[1] << 8 | (uint64_t)b[2] << 16 | (uint64_t)b[3] << 24;
	r->bar0 = a >= MMIO_BASE ? a - MMIO_BASE : a;
	r->bar0_known = true;
	return r->bar0;
}

static void bar_io(struct rig *r, uint64_t off, uint32_t len, uint64_t v, bool w)
{
	uint8_t b[8];
	put(b, v, 8);
	pci_host_mmio(r->h, bar0(r) + off, b, len, w);
}

static void run_pending(void)
{
	for (int round = 0; round < 4; round++) {
		for (unsigned i = 0; i < MAX_DB; i++)
			if (dbs[i].used && dbs[i].pending) {
				dbs[i].pending = false;
				dbs[i].fn(dbs[i].arg);
			}
		for (unsigned i = 0; i < ntimers; i++)
			if (timers[i].fn && timers[i].armed) {
				timers[i].armed = false;
				timers[i].fn(timers[i].arg);
			}
	}
}

/* The driver's handshake, with every feature the device offers (or the
 * input's mask of them) and every queue at RING(q). */
static void handshake(struct rig *r, struct in *in)
{
	uint8_t cmd[2] = { 0x06, 0x00 }; /* memory + bus master */
	uint32_t mask = (uint32_t)take(in, 4);
	cfg_io(r, 0x04, 2, cmd, true);
	bar_io(r, 0x14, 1, 0, true);
	bar_io(r, 0x14, 1, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER, true);
	for (uint32_t sel = 0; sel < 2; sel++) {
		bar_io(r, 0x00, 4, sel, true);
		uint8_t f[8] = { 0 };
		pci_host_mmio(r->h, bar0(r) + 0x04, f, 4, false);
		uint32_t feat = (uint32_t)(f[0] | f[1] << 8 | f[2] << 16 | (uint32_t)f[3] << 24);
		bar_io(r, 0x08, 4, sel, true);
		bar_io(r, 0x0c, 4, sel ? feat : feat & ~mask, true);
	}
	bar_io(r, 0x14, 1, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK, true);
	for (unsigned q = 0; q < r->d->num_queues && q < 8; q++) {
		bar_io(r, 0x16, 2, q, true);
		bar_io(r, 0x18, 2, QSIZE, true);
		bar_io(r, 0x1a, 2, q & 1 ? 0xffff : q, true);
		bar_io(r, 0x20, 8, RING(q), true);
		bar_io(r, 0x28, 8, RING(q) + 0x100, true);
		bar_io(r, 0x30, 8, RING(q) + 0x200, true);
		bar_io(r, 0x1c, 2, 1, true);
		r->avail_idx[q] = r->next_desc[q] = 0;
	}
	bar_io(r, 0x14, 1, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK |
				   VIRTIO_S_DRIVER_OK, true);
}

/* A chain of n descriptors on queue q, addresses mostly in RAM, then a
 * notify. The first 16 bytes of each buffer come from the input too, so
 * request headers (blk type/sector, net header, vsock header) are steered. */
static void post_chain(struct rig *r, struct in *in)
{
	uint8_t b0 = (uint8_t)take(in, 1);
	unsigned q = b0 & 7, n = 1 + (b0 >> 3) % 6;
	if (q >= 8)
		return;
	uint16_t head = r->next_desc[q];
	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % QSIZE);
		uint8_t *d = ram + RING(q) + 16u * idx;
		uint8_t kind = (uint8_t)take(in, 1);
		uint64_t gpa = DATA + (take(in, 2) & 0x7ff0u) * 4;
		uint32_t len = (uint32_t)take(in, 2) & 0x1fff;
		if (kind & 0x80) /* raw, hostile values */
			gpa = take(in, 8), len = (uint32_t)take(in, 4);
		put(d, gpa, 8);
		put(d + 8, len, 4);
		put(d + 12, (uint16_t)((i + 1 < n ? VIRTQ_DESC_F_NEXT : 0) | ((kind & 1) ? VIRTQ_DESC_F_WRITE : 0) |
				       ((kind & 0x40) ? VIRTQ_DESC_F_INDIRECT : 0)), 2);
		put(d + 14, (kind & 0x20) ? take(in, 2) : (uint16_t)((idx + 1) % QSIZE), 2);
		if (gpa < RAM_SIZE && (kind & 2)) {
			size_t k = RAM_SIZE - gpa < 16 ? RAM_SIZE - gpa : 16;
			for (size_t j = 0; j < k; j++)
				ram[gpa + j] = (uint8_t)take(in, 1);
		}
	}
	r->next_desc[q] = (uint16_t)((head + n) % QSIZE);
	uint8_t *avail = ram + RING(q) + 0x100;
	put(avail + 4 + 2u * (r->avail_idx[q] % QSIZE), head, 2);
	r->avail_idx[q]++;
	put(avail + 2, r->avail_idx[q], 2);
	bar_io(r, 0x3000 + 4u * q, 2, q, true);
}

static void host_event(struct rig *r, struct in *in)
{
	uint8_t op = (uint8_t)take(in, 1);
#if FUZZ_DEV == FUZZ_BLK
	(void)r;
	/* A run of 1..4 completions, then (batching) its end. */
	for (unsigned i = 0; i <= ((op >> 2) & 3); i++)
		fb_complete(&fblk, (op & 1) ? -EIO : ((op & 2) ? -ENOSPC : 0));
	if (!(op & 0x10))
		fb_batch_end(&fblk);
#elif FUZZ_DEV == FUZZ_NET
	(void)r;
	switch (op & 3) {
	case 0:
	case 1:
		/* op bit 3: up to 128 KiB (TSO frames and longer), else 2 KiB */
		fnet.len = (op & 8) ? take(in, 3) & 0x1ffff : take(in, 2) & 0x7ff;
		for (size_t i = 0; i < 64 && i < fnet.len; i++)
			fnet.frame[i] = (uint8_t)take(in, 1); /* the rest: what the last frames left */
		fnet.have = true;
		if (fnet.rx_on && fnet.be.rx_ready)
			fnet.be.rx_ready(fnet.be.rx_ctx);
		break;
	case 2:
		fnet.send_ret = (op & 4) ? -EIO : 0;
		break;
	default:
		if (fnet.rx_on && fnet.be.rx_ready)
			fnet.be.rx_ready(fnet.be.rx_ctx);
	}
#elif FUZZ_DEV == FUZZ_VSOCK
	(void)r;
	struct vsock_stream *s = &fvs.s[(op >> 3) & 7];
	switch (op & 7) {
	case 0: { /* a host client connects and sends a line */
		struct vsock_stream *c = fv_alloc(&fvs);
		if (!c)
			break;
		static const char line[] = "CONNECT 1234\n";
		if (op & 0x80) {
			memcpy(c->data, line, sizeof(line) - 1);
			c->len = sizeof(line) - 1;
			put(c->data + 8, '0' + (take(in, 1) % 10), 1);
		} else {
			c->len = take(in, 1) % sizeof(c->data);
			for (size_t i = 0; i < c->len; i++)
				c->data[i] = (uint8_t)take(in, 1);
		}
		if (fvs.be.accept)
			fvs.be.accept(fvs.be.ctx, c);
		break;
	}
	case 1: /* data arrives */
		if (s->used) {
			s->len = take(in, 1) % sizeof(s->data);
			s->pos = 0;
			for (size_t i = 0; i < s->len; i++)
				s->data[i] = (uint8_t)take(in, 1);
		}
		break;
	case 2:
		s->eof = true;
		break;
	case 3:
		s->err = (op & 0x80) ? -ECONNRESET : 0;
		s->room = take(in, 2);
		break;
	case 4:
		fvs.connect_status = (op & 0x80) ? -ECONNREFUSED : (op & 0x40) ? 1 : 0;
		s->cres = (op & 0x20) ? -ECONNREFUSED : 0;
		break;
	default: /* readiness; a hang-up whatever is watched (of a watched stream) */
		if (s->used && s->watch && s->fn)
			s->fn(s->cookie, (op & 0x20)   ? VSOCK_EV_IN | VSOCK_EV_HUP
					 : (op & 0x80) ? s->watch
						       : s->watch & ((op & 0x40) ? VSOCK_EV_IN : VSOCK_EV_OUT));
	}
#elif FUZZ_DEV == FUZZ_RNG
	(void)r;
	rng_fail = op & 1;
#else
	uint8_t buf[64];
	size_t n = op % sizeof(buf);
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)take(in, 1);
	virtio_console_rx_push(r->d, buf, n);
#endif
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	char err[160];

	if (size < 2)
		return 0;
	static int trace = -1;
	if (trace < 0)
		trace = getenv("FUZZ_VIRTIO_TRACE") != NULL;
	if (!ram) {
		ram = malloc(RAM_SIZE);
		if (!ram || gmem_add(&mem, 0, RAM_SIZE, ram))
			abort();
	}
	memset(ram, 0, RAM_SIZE);
	memset(dbs, 0, sizeof(dbs));
	ntimers = 0;
	uint8_t opt = (uint8_t)take(&in, 1), plat_opt = (uint8_t)take(&in, 1);
	/* plat_opt bit 2: Diff snapshot tracking, so every completion marks
	 * the buffers its device wrote (virtq_mark_written, net's by host
	 * pointer). */
	if ((plat_opt & 4) && gmem_dirty_track(&mem, true))
		abort();

	static struct rig r;
	memset(&r, 0, sizeof(r));
	r.h = pci_host_new(MMIO_BASE, MMIO_SIZE);
	if (!r.h)
		abort();
	r.d = dev_new(&r, opt);
	if (!r.d)
		abort();
	doorbell_ret = (plat_opt & 2) ? -ENOSPC : 0;
	struct platform_ops plat = { fp_msi_alloc, fp_msi_set, fp_msi_fire, fp_msi_free,
				     (plat_opt & 1) ? fp_doorbell : NULL, NULL, NULL };
	r.vp = virtio_pci_new(r.d, r.h, &fx, &plat, intx, NULL, err, sizeof(err));
	if (!r.vp)
		abort();

	for (unsigned steps = 0; in.n && steps < 256; steps++) {
		uint8_t op = (uint8_t)take(&in, 1);
		switch (op % 10) {
		case 0: { /* PCI config write */
			uint8_t off = (uint8_t)take(&in, 1), b[4];
			uint32_t len = 1u << (op >> 4 & 3);
			put(b, take(&in, 4), 4);
			cfg_io(&r, off, len > 4 ? 4 : len, b, true);
			break;
		}
		case 1: { /* PCI config read */
			uint8_t off = (uint8_t)take(&in, 1), b[4];
			cfg_io(&r, off, 1u << (op >> 4 & 3) > 4 ? 4 : 1u << (op >> 4 & 3), b, false);
			break;
		}
		case 2:
		case 3: { /* BAR0 access */
			static const uint16_t base[8] = { 0, 0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0, 0x7ff8 };
			uint8_t sel = (uint8_t)take(&in, 1);
			uint64_t off = base[sel & 7] + (uint8_t)take(&in, 1);
			uint32_t len = 1u << (op >> 4 & 3);
			if ((sel & 7) == 6)
				off = take(&in, 3); /* anywhere in the window */
			if (op & 0x80)
				len = (uint32_t)(op >> 4 & 7) + 1; /* odd sizes too */
			bar_io(&r, off, len, op % 10 == 2 ? take(&in, 8) : 0, op % 10 == 2);
			break;
		}
		case 4: { /* guest RAM write */
			uint32_t gpa = (uint32_t)take(&in, 3) % RAM_SIZE;
			unsigned n = (unsigned)take(&in, 1) % 32;
			for (unsigned i = 0; i < n && gpa + i < RAM_SIZE; i++)
				ram[gpa + i] = (uint8_t)take(&in, 1);
			break;
		}
		case 5:
			run_pending();
			break;
		case 6:
			host_event(&r, &in);
			break;
		case 7:
			handshake(&r, &in);
			break;
		default:
			post_chain(&r, &in);
			break;
		}
	}
	run_pending();
	if (trace) /* for checking seeds: how far the driver got */
		for (unsigned q = 0; q < r.d->num_queues && q < 8; q++)
			fprintf(stderr, "q%u: status 0x%x used %u of %u posted\n", q,
				(unsigned)atomic_load(&r.d->status),
				(unsigned)(ram[RING(q) + 0x202] | ram[RING(q) + 0x203] << 8), r.avail_idx[q]);
	/* The builder's teardown order: device models (draining their I/O)
	 * before their transports. */
	dev_free(r.d);
	virtio_pci_free(r.vp);
	pci_host_free(r.h);
	gmem_dirty_track(&mem, false);
	pool_check_idle();
	return 0;
}
