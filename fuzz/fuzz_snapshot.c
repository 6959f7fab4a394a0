/* fuzz_snapshot — libFuzzer target for the snapshot state file: the reader
 * (core/snap.c) and the restore of every device that builds without KVM —
 * the legacy devices (uart, rtc, acpi-pm, i8042, pvpanic), the PCI host,
 * and a virtio-pci transport with a small device behind it over a fake
 * platform — then a guest touching the restored devices (port reads,
 * BAR0's common config, queue pops and pushes on restored queues).
 *
 * Input: one mode byte, then the file. Mode bit 0 set: every section CRC
 * and the trailer's are recomputed first, so mutations get past the
 * checksums to the loaders; clear: the bytes as given (the reader's own
 * refusals). Each device restores from its own reader, so one device's
 * refusal does not hide the others'. Seeds (fuzz/corpus-snapshot) are
 * files this target's seed generator wrote:
 *   cc -DFUZZ_SNAPSHOT_SEEDGEN -Isrc fuzz/fuzz_snapshot.c ... > seed
 * (see the Makefile's fuzz-snapshot-seeds). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dev.h"
#include "core/le.h"
#include "core/snap.h"
#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/pci.h"
#include "devices/pvpanic.h"
#include "devices/rtc_cmos.h"
#include "devices/uart_16550.h"
#include "virtio/virtio_pci.h"

#define MMIO_BASE 0xC0000000ULL
#define MMIO_SIZE 0x01000000ULL
#define RAM_SIZE 0x40000u /* 256 KiB at gpa 0 */
#define NQ 2

static uint8_t *ram;
static struct gmem mem;

/* ---- fakes ---------------------------------------------------------------- */

struct doorbell {
	int rung;
};
struct msi {
	uint64_t addr;
	uint32_t data;
};

static struct doorbell dbs[NQ];

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
	(void)ctx, (void)fn;
	return &dbs[(uintptr_t)arg % NQ];
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
static const struct exec fx = { &fx_ops, NULL };

static struct msi msis[NQ + 1];
static unsigned nmsi;
static int fp_alloc(void *ctx, struct msi **out)
{
	(void)ctx;
	*out = &msis[nmsi++ % (NQ + 1)];
	return 0;
}
static int fp_set(void *ctx, struct msi *m, uint64_t addr, uint32_t data)
{
	(void)ctx;
	m->addr = addr;
	m->data = data;
	return 0;
}
static void fp_fire(void *ctx, struct msi *m)
{
	(void)ctx, (void)m;
}
static void fp_free(void *ctx, struct msi *m)
{
	(void)ctx, (void)m;
}
static int fp_doorbell(void *ctx, uint64_t gpa, uint32_t len, struct doorbell *db, bool assign)
{
	(void)ctx, (void)gpa, (void)len, (void)db, (void)assign;
	return 0;
}
static const struct platform_ops plat = { fp_alloc, fp_set, fp_fire, fp_free, fp_doorbell, NULL, NULL };

static void irq_set_none(void *ctx, uint32_t gsi, int level)
{
	(void)ctx, (void)gsi, (void)level;
}
static struct irq_line intx(void *ctx, uint32_t gsi)
{
	return (struct irq_line){ .set = irq_set_none, .ctx = ctx, .gsi = gsi };
}
static void no_stop(void *ctx, enum vm_stop why)
{
	(void)ctx, (void)why;
}
static time_t fixed_now(void)
{
	return 1700000000;
}
static uint64_t mono0(void *ctx)
{
	(void)ctx;
	return 0;
}
static int64_t wall0(void *ctx)
{
	(void)ctx;
	return 1700000000;
}
static const struct vclock clk = { mono0, wall0, NULL };

/* The device behind the transport: serves every chain with 1 byte written
 * when there is room, and keeps a word of its own state. */
struct fdev {
	struct virtio_dev d;
	uint32_t own;
};
static uint32_t fk_serve(struct virtio_dev *d, struct virtq_chain *c)
{
	(void)d;
	uint8_t b = 0xaa;
	return (uint32_t)virtq_chain_write(c, 0, &b, 1);
}
static void fk_notify(struct virtio_dev *d, unsigned q)
{
	struct virtq_chain c;
	if (q < d->num_queues && virtio_dev_live(d))
		virtio_dev_serve(d, q, &c, fk_serve);
}
static void fk_cfg_read(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len)
{
	(void)d, (void)off;
	memset(buf, 0, len);
}
static int fk_save(struct virtio_dev *d, struct snap_writer *w)
{
	snap_put_u32(w, ((struct fdev *)d)->own);
	return 0;
}
static int fk_restore(struct virtio_dev *d, struct snap_reader *r)
{
	((struct fdev *)d)->own = snap_get_u32(r);
	return snap_error(r)[0] ? -1 : 0;
}
static const struct virtio_dev_ops fk_ops = { .queue_notify = fk_notify, .config_read = fk_cfg_read,
					      .save = fk_save, .restore = fk_restore };

/* ---- the machine ------------------------------------------------------------ */

static const struct vdev_ops uart_ops = { .save = uart_16550_save, .restore = uart_16550_restore };
static const struct vdev_ops rtc_ops = { .save = rtc_cmos_save, .restore = rtc_cmos_restore };
static const struct vdev_ops pm_ops = { .save = acpi_pm_save, .restore = acpi_pm_restore };
static const struct vdev_ops kbc_ops = { .save = i8042_save, .restore = i8042_restore };
static const struct vdev_ops pvp_ops = { .save = pvpanic_save, .restore = pvpanic_restore };
static const struct vdev_ops pci_ops = { .save = pci_host_save, .restore = pci_host_restore };

#define NDEV 7

struct machine {
	struct uart_16550 *uart;
	struct rtc_cmos *rtc;
	struct acpi_pm *pm;
	struct i8042 *kbc;
	struct pvpanic *pvp;
	struct pci_host *h;
	struct fdev fd;
	struct virtio_pci *vp;
	struct vdev v[NDEV]; /* in the registry's order: pci-host before the transport */
};

static void build(struct machine *m)
{
	struct vmctl ctl = { .stop = no_stop };
	char err[128];

	memset(m, 0, sizeof(*m));
	nmsi = 0;
	m->uart = uart_16550_new(intx(NULL, 4), (struct chardev_out){ 0 }, &clk);
	m->rtc = rtc_cmos_new_with_clock(intx(NULL, 8), fixed_now);
	m->pm = acpi_pm_new(ctl);
	m->kbc = i8042_new(ctl, intx(NULL, 1));
	m->pvp = pvpanic_new(ctl);
	m->h = pci_host_new(MMIO_BASE, MMIO_SIZE);
	m->fd.d = (struct virtio_dev){ .name = "fake", .device_id = 2, .num_queues = NQ, .queue_max = 16,
				       .config_len = 8, .ops = &fk_ops, .mem = &mem };
	m->vp = virtio_pci_new(&m->fd.d, m->h, &fx, &plat, intx, NULL, err, sizeof(err));
	if (!m->uart || !m->rtc || !m->pm || !m->kbc || !m->pvp || !m->h || !m->vp)
		__builtin_trap();
	m->v[0] = (struct vdev){ .id = "com1", .kind = "uart-16550", .ops = &uart_ops, .impl = m->uart };
	m->v[1] = (struct vdev){ .id = "rtc", .kind = "rtc-cmos", .ops = &rtc_ops, .impl = m->rtc };
	m->v[2] = (struct vdev){ .id = "acpi-pm", .kind = "acpi-pm", .ops = &pm_ops, .impl = m->pm };
	m->v[3] = (struct vdev){ .id = "i8042", .kind = "i8042", .ops = &kbc_ops, .impl = m->kbc };
	m->v[4] = (struct vdev){ .id = "pvpanic", .kind = "pvpanic", .ops = &pvp_ops, .impl = m->pvp };
	m->v[5] = (struct vdev){ .id = "pci-host", .kind = "pci-host", .ops = &pci_ops, .impl = m->h };
	m->v[6] = (struct vdev){ .id = "rootfs", .kind = "virtio-blk", .ops = &virtio_pci_vdev_ops, .impl = m->vp };
}

static void teardown(struct machine *m)
{
	virtio_pci_free(m->vp);
	pci_host_free(m->h);
	uart_16550_free(m->uart);
	rtc_cmos_free(m->rtc);
	acpi_pm_free(m->pm);
	i8042_free(m->kbc);
	pvpanic_free(m->pvp);
}

static uint8_t in8(bus_io_fn fn, void *dev, uint64_t off)
{
	uint8_t v = 0;
	fn(dev, off, &v, 1, false);
	return v;
}

static void out8(bus_io_fn fn, void *dev, uint64_t off, uint8_t v)
{
	fn(dev, off, &v, 1, true);
}

/* A guest touching what was restored. */
static void poke(struct machine *m)
{
	for (unsigned i = 0; i < 8; i++)
		(void)in8(uart_16550_io, m->uart, i);
	for (unsigned i = 0; i < 128; i += 7) {
		out8(rtc_cmos_io, m->rtc, 0, (uint8_t)i);
		(void)in8(rtc_cmos_io, m->rtc, 1);
	}
	(void)in8(rtc_cmos_io, m->rtc, 1);
	for (unsigned i = 0; i < 20; i++)
		(void)in8(i8042_data_io, m->kbc, 0);
	out8(i8042_data_io, m->kbc, 0, 0x00); /* an argument or data for what waits */
	out8(i8042_data_io, m->kbc, 0, 0xf0);
	out8(i8042_data_io, m->kbc, 0, 0x00); /* the scancode set answer indexes a table */
	uint8_t b[8];
	acpi_pm_io(m->pm, 0, b, 8, false);
	/* Config space of every slot, and BAR0 wherever the restore put it. */
	for (unsigned s = 0; s < 3; s++) {
		uint8_t a[4] = { 0x10, (uint8_t)(s << 3), 0, 0x80 };
		pci_host_cfg_io(m->h, 0, a, 4, true);
		pci_host_cfg_io(m->h, 4, b, 4, false);
	}
	uint64_t bar = le_load(b, 4) & ~0xfffULL;
	if (bar >= MMIO_BASE && bar < MMIO_BASE + MMIO_SIZE) {
		for (unsigned off = 0; off < 0x38; off += 2)
			pci_host_mmio(m->h, bar - MMIO_BASE + off, b, 2, false);
		pci_host_mmio(m->h, bar - MMIO_BASE + 0x1000, b, 1, false); /* ISR */
		pci_host_mmio(m->h, bar - MMIO_BASE + 0x5000, b, 8, false); /* PBA */
	}
	/* The restored queues, served as after a kick: one budgeted turn each
	 * (a restored ring may alias itself and never run dry). */
	for (unsigned q = 0; q < NQ; q++) {
		virtq_budget(&m->fd.d.vq[q], VIRTQ_BUDGET);
		fk_notify(&m->fd.d, q);
		virtq_budget(&m->fd.d.vq[q], 0);
	}
}

/* Mode bit 0: recompute every CRC the structure lets us find. */
static void fix_crcs(uint8_t *b, size_t len)
{
	if (len < 32)
		return;
	size_t end = len - 16, off = 16;
	uint32_t nr = 0;
	while (off + 4 <= end && le_load(b + off, 4) == 0x54434553u) {
		size_t start = off, o = off + 4;
		for (unsigned k = 0; k < 2; k++) {
			if (o + 2 > end)
				return;
			o += 2 + le_load(b + o, 2);
		}
		if (o + 12 > end)
			return;
		uint64_t n = le_load(b + o + 4, 8);
		o += 12;
		if (n > end - o || end - o - n < 4)
			return;
		o += n;
		le_store(b + o, 4, snap_crc32(0, b + start, o - start));
		off = o + 4;
		nr++;
	}
	le_store(b + end + 8, 4, nr);
	le_store(b + end + 12, 4, snap_crc32(0, b, end + 12));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ram) {
		ram = calloc(1, RAM_SIZE);
		if (!ram || gmem_add(&mem, 0, RAM_SIZE, ram) != 0)
			__builtin_trap();
	}
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	size_t len = size - 1;
	/* An exact-size copy: ASan sees any read past the file's end. */
	uint8_t *file = malloc(len ? len : 1);
	if (!file)
		return 0;
	memcpy(file, data + 1, len);
	if (mode & 1)
		fix_crcs(file, len);

	char err[SNAP_ERR_MAX];
	struct snap_reader *r = snap_reader_open(file, len, err, sizeof(err));
	if (!r) {
		if (!err[0])
			__builtin_trap(); /* a refusal always says why */
		free(file);
		return 0;
	}
	unsigned n = snap_count(r);
	for (unsigned i = 0; i < n; i++) {
		const char *id, *kind;
		uint32_t ver;
		uint64_t slen;
		if (snap_section_info(r, i, &id, &kind, &ver, &slen) < 0 || strlen(id) > SNAP_ID_MAX)
			__builtin_trap();
	}
	snap_reader_free(r);

	struct machine m;
	build(&m);
	memset(ram, 0, RAM_SIZE);
	for (unsigned i = 0; i < NDEV; i++) {
		r = snap_reader_open(file, len, err, sizeof(err));
		int rc = m.v[i].ops->restore(&m.v[i], r);
		/* 0 exactly when no error was recorded. */
		if ((rc == 0) != (snap_error(r)[0] == 0))
			__builtin_trap();
		snap_reader_free(r);
	}
	poke(&m);
	/* What was restored saves again (and the save reopens). */
	struct snap_writer *w = snap_writer_new();
	for (unsigned i = 0; i < NDEV; i++)
		m.v[i].ops->save(&m.v[i], w);
	const uint8_t *out;
	size_t outlen;
	if (snap_writer_finish(w, &out, &outlen) == 0) {
		r = snap_reader_open(out, outlen, err, sizeof(err));
		if (!r)
			__builtin_trap();
		snap_reader_free(r);
	}
	snap_writer_free(w);
	teardown(&m);
	free(file);
	return 0;
}

#ifdef FUZZ_SNAPSHOT_SEEDGEN
/* Writes a seed to stdout: the mode byte, then a snapshot of a machine a
 * driver brought up (argv[1] "plain": the power-on machine). */
static void cfg_wr(struct pci_host *h, uint32_t off, uint32_t v, uint32_t len)
{
	uint8_t a[4] = { (uint8_t)(off & 0xfc), 1 << 3, 0, 0x80 }, d[4];
	le_store(d, 4, v);
	pci_host_cfg_io(h, 0, a, 4, true);
	pci_host_cfg_io(h, 4 + (off & 3), d, len, true);
}
static void bar_wr(struct pci_host *h, uint64_t bar, uint64_t off, uint64_t v, uint32_t len)
{
	uint8_t d[8];
	le_store(d, 8, v);
	pci_host_mmio(h, bar - MMIO_BASE + off, d, len, true);
}

int main(int argc, char **argv)
{
	struct machine m;
	ram = calloc(1, RAM_SIZE);
	gmem_add(&mem, 0, RAM_SIZE, ram);
	build(&m);
	if (argc < 2 || strcmp(argv[1], "plain") != 0) {
		uint64_t bar = MMIO_BASE + 0x100000;
		uint8_t bytes[] = "hi";
		uart_16550_rx_push(m.uart, bytes, 2);
		out8(uart_16550_io, m.uart, 1, 1);
		out8(uart_16550_io, m.uart, 4, 0x0b);
		out8(rtc_cmos_io, m.rtc, 0, 0x40);
		out8(rtc_cmos_io, m.rtc, 1, 0x55);
		out8(i8042_cmd_io, m.kbc, 0, 0x20);
		out8(i8042_cmd_io, m.kbc, 0, 0x60);
		cfg_wr(m.h, 0x10, (uint32_t)bar, 4);
		cfg_wr(m.h, 0x04, 6, 2);
		cfg_wr(m.h, 0x86, 0x8000, 2);
		bar_wr(m.h, bar, 0x14, 3, 1);
		bar_wr(m.h, bar, 0x08, 1, 4);
		bar_wr(m.h, bar, 0x0c, 1, 4);
		bar_wr(m.h, bar, 0x14, 11, 1);
		bar_wr(m.h, bar, 0x1a, 1, 2);
		bar_wr(m.h, bar, 0x18, 16, 2);
		bar_wr(m.h, bar, 0x20, 0x1000, 8);
		bar_wr(m.h, bar, 0x28, 0x2000, 8);
		bar_wr(m.h, bar, 0x30, 0x3000, 8);
		bar_wr(m.h, bar, 0x1c, 1, 2);
		bar_wr(m.h, bar, 0x4010, 0xfee00000, 8);
		bar_wr(m.h, bar, 0x4018, 0x30, 4);
		bar_wr(m.h, bar, 0x401c, 0, 4);
		bar_wr(m.h, bar, 0x14, 15, 1);
		m.fd.own = 7;
	}
	struct snap_writer *w = snap_writer_new();
	for (unsigned i = 0; i < NDEV; i++)
		m.v[i].ops->save(&m.v[i], w);
	const uint8_t *out;
	size_t outlen;
	if (snap_writer_finish(w, &out, &outlen) < 0)
		return 1;
	putchar(argc > 2 ? 0 : 1);
	fwrite(out, 1, outlen, stdout);
	return 0;
}
#endif
