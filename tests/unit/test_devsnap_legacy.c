/* Snapshots of the legacy devices and the PCI host: each is driven into a
 * state a guest would leave (through its port handler), saved, restored
 * into a fresh device, and the fresh one must answer the guest the same
 * way; a hostile section (a value no guest write can make) is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/pci.h"
#include "devices/pvpanic.h"
#include "devices/rtc_cmos.h"
#include "devices/uart_16550.h"
#include "snap_help.h"

/* ---- recorders ---------------------------------------------------------- */

struct irq_rec {
	int calls;
	int level;
};

static void irq_rec_set(void *ctx, uint32_t gsi, int level)
{
	struct irq_rec *r = ctx;
	(void)gsi;
	r->calls++;
	r->level = level;
}

static struct irq_line irq_line(struct irq_rec *r)
{
	return (struct irq_line){ .set = irq_rec_set, .ctx = r, .gsi = 4 };
}

static void no_stop(void *ctx, enum vm_stop why)
{
	(void)ctx, (void)why;
}

static struct vmctl ctl(void)
{
	return (struct vmctl){ .stop = no_stop };
}

static void out8(bus_io_fn fn, void *dev, uint64_t off, uint8_t v)
{
	fn(dev, off, &v, 1, true);
}

static uint8_t in8(bus_io_fn fn, void *dev, uint64_t off)
{
	uint8_t v = 0x5a;
	fn(dev, off, &v, 1, false);
	return v;
}

static int64_t w_none(void *ctx)
{
	(void)ctx;
	return 0;
}
static uint64_t m_none(void *ctx)
{
	(void)ctx;
	return 0;
}
static const struct vclock clk = { .mono_ns = m_none, .wall_s = w_none };

/* ---- uart --------------------------------------------------------------- */

static const struct vdev_ops uart_ops = { .save = uart_16550_save, .restore = uart_16550_restore };

static void test_uart(void **state)
{
	(void)state;
	struct irq_rec ia = { 0 }, ib = { 0 };
	struct uart_16550 *a = uart_16550_new(irq_line(&ia), (struct chardev_out){ 0 }, &clk);
	struct uart_16550 *b = uart_16550_new(irq_line(&ib), (struct chardev_out){ 0 }, &clk);
	struct vdev va = { .id = "com1", .kind = "uart-16550", .ops = &uart_ops, .impl = a };
	struct vdev vb = { .id = "com1", .kind = "uart-16550", .ops = &uart_ops, .impl = b };

	out8(uart_16550_io, a, 3, 0x80); /* DLAB */
	out8(uart_16550_io, a, 0, 0x01); /* 115200 */
	out8(uart_16550_io, a, 1, 0x00);
	out8(uart_16550_io, a, 3, 0x03); /* 8n1 */
	out8(uart_16550_io, a, 2, 0x01); /* FIFOs on */
	out8(uart_16550_io, a, 1, 0x01); /* RX interrupts */
	out8(uart_16550_io, a, 4, 0x0b); /* DTR RTS OUT2 */
	out8(uart_16550_io, a, 7, 0x77);
	assert_int_equal(uart_16550_rx_push(a, (const uint8_t *)"xabc", 4), 4);
	assert_int_equal(in8(uart_16550_io, a, 0), 'x'); /* the FIFO does not start at 0 */
	assert_int_equal(ia.level, 1);

	struct snap_file f = snap_save1(&va);
	char err[SNAP_ERR_MAX];
	assert_int_equal(snap_restore1(&vb, &f, err, sizeof(err)), 0);
	assert_true(ib.calls > 0 && ib.level == 1); /* the line is driven to the registers' level */
	assert_int_equal(in8(uart_16550_io, b, 3), 0x03);
	assert_int_equal(in8(uart_16550_io, b, 1), 0x01);
	assert_int_equal(in8(uart_16550_io, b, 4), 0x0b);
	assert_int_equal(in8(uart_16550_io, b, 7), 0x77);
	assert_int_equal(in8(uart_16550_io, b, 2) & 0xcf, 0xc4); /* FIFOs, RX data pending */
	assert_int_equal(in8(uart_16550_io, b, 5) & 0x01, 0x01);
	assert_int_equal(in8(uart_16550_io, b, 0), 'a');
	assert_int_equal(in8(uart_16550_io, b, 0), 'b');
	assert_int_equal(in8(uart_16550_io, b, 0), 'c');
	assert_int_equal(in8(uart_16550_io, b, 5) & 0x01, 0);
	assert_int_equal(ib.level, 0);
	out8(uart_16550_io, b, 3, 0x83);
	assert_int_equal(in8(uart_16550_io, b, 0), 0x01); /* the divisor too */

	/* Payload: dll dlm ier lcr mcr scr msr fifo thr ovr count bytes... */
	struct snap_file h = snap_patch(&f, "com1", 10, 17, 1);
	SNAP_REFUSED(&vb, &h, "receive FIFO");
	free(h.buf);
	h = snap_patch(&f, "com1", 2, 0x10, 1);
	SNAP_REFUSED(&vb, &h, "reserved register bits");
	free(h.buf);
	h = snap_patch(&f, "com1", 7, 2, 1);
	SNAP_REFUSED(&vb, &h, "a boolean holds 2");
	free(h.buf);
	free(f.buf);
	uart_16550_free(a);
	uart_16550_free(b);
}

/* ---- rtc ---------------------------------------------------------------- */

static time_t host_now;
static time_t now_fn(void)
{
	return host_now;
}

static uint8_t cmos_rd(struct rtc_cmos *r, uint8_t i)
{
	out8(rtc_cmos_io, r, 0, i);
	return in8(rtc_cmos_io, r, 1);
}

static void cmos_wr(struct rtc_cmos *r, uint8_t i, uint8_t v)
{
	out8(rtc_cmos_io, r, 0, i);
	out8(rtc_cmos_io, r, 1, v);
}

/* The guest's time as it reads it (binary mode, 24 h). */
static time_t guest_time(struct rtc_cmos *r)
{
	struct tm tm = { .tm_sec = cmos_rd(r, 0), .tm_min = cmos_rd(r, 2), .tm_hour = cmos_rd(r, 4),
			 .tm_mday = cmos_rd(r, 7), .tm_mon = cmos_rd(r, 8) - 1,
			 .tm_year = cmos_rd(r, 0x32) * 100 + cmos_rd(r, 9) - 1900 };
	return timegm(&tm);
}

static const struct vdev_ops rtc_ops = { .save = rtc_cmos_save, .restore = rtc_cmos_restore };

static void test_rtc(void **state)
{
	(void)state;
	struct irq_rec ir = { 0 };
	struct rtc_cmos *a = rtc_cmos_new_with_clock(irq_line(&ir), now_fn);
	struct vdev va = { .id = "rtc", .kind = "rtc-cmos", .ops = &rtc_ops, .impl = a };

	host_now = 1700000000;
	cmos_wr(a, 0x0b, 0x86); /* SET, binary, 24 h */
	/* The guest sets 2030-01-02 03:04:05. */
	cmos_wr(a, 0, 5), cmos_wr(a, 2, 4), cmos_wr(a, 4, 3), cmos_wr(a, 7, 2), cmos_wr(a, 8, 1);
	cmos_wr(a, 9, 30), cmos_wr(a, 0x32, 20);
	cmos_wr(a, 0x0b, 0x06);
	cmos_wr(a, 0x40, 0x99); /* plain CMOS RAM */
	const time_t set = 1893553445; /* 2030-01-02T03:04:05Z */
	assert_true(guest_time(a) == set);
	host_now += 100;
	assert_true(guest_time(a) == set + 100);
	out8(rtc_cmos_io, a, 0, 0x40); /* the index the guest left */
	struct snap_file f = snap_save1(&va);

	/* A later host clock: the guest clock ran on (battery-backed). */
	struct rtc_cmos *b = rtc_cmos_new_with_clock(irq_line(&ir), now_fn);
	struct vdev vb = { .id = "rtc", .kind = "rtc-cmos", .ops = &rtc_ops, .impl = b };
	host_now += 1000;
	char err[SNAP_ERR_MAX];
	assert_int_equal(snap_restore1(&vb, &f, err, sizeof(err)), 0);
	assert_int_equal(in8(rtc_cmos_io, b, 1), 0x99); /* the index came back */
	assert_true(guest_time(b) == set + 1100);
	assert_int_equal(cmos_rd(b, 0x0b), 0x06);

	/* A host whose clock is behind the saving host's: no step back. */
	struct rtc_cmos *c = rtc_cmos_new_with_clock(irq_line(&ir), now_fn);
	struct vdev vc = { .id = "rtc", .kind = "rtc-cmos", .ops = &rtc_ops, .impl = c };
	host_now = 1600000000;
	assert_int_equal(snap_restore1(&vc, &f, err, sizeof(err)), 0);
	assert_true(guest_time(c) == set + 100);
	host_now += 7;
	assert_true(guest_time(c) == set + 107);

	/* Payload: ram[128] index offset guest_then. */
	struct snap_file h = snap_patch(&f, "rtc", 128, 200, 1);
	SNAP_REFUSED(&vc, &h, "CMOS index 200");
	free(h.buf);
	h = snap_patch(&f, "rtc", 129, (uint64_t)INT64_MAX, 8);
	SNAP_REFUSED(&vc, &h, "out of range");
	free(h.buf);
	free(f.buf);
	rtc_cmos_free(a);
	rtc_cmos_free(b);
	rtc_cmos_free(c);
}

/* ---- acpi-pm, pvpanic --------------------------------------------------- */

static const struct vdev_ops pm_ops = { .save = acpi_pm_save, .restore = acpi_pm_restore };
static const struct vdev_ops pvp_ops = { .save = pvpanic_save, .restore = pvpanic_restore };

static void test_pm_pvpanic(void **state)
{
	(void)state;
	struct acpi_pm *a = acpi_pm_new(ctl()), *b = acpi_pm_new(ctl());
	struct vdev va = { .id = "acpi-pm", .kind = "acpi-pm", .ops = &pm_ops, .impl = a };
	struct vdev vb = { .id = "acpi-pm", .kind = "acpi-pm", .ops = &pm_ops, .impl = b };
	uint8_t en[2] = { 0x20, 0x01 }, cnt[2] = { 0x02, 0x0c }; /* BM_RLD, SLP_TYP 3 */

	acpi_pm_io(a, 2, en, 2, true);
	acpi_pm_io(a, 4, cnt, 2, true);
	struct snap_file f = snap_save1(&va);
	char err[SNAP_ERR_MAX];
	assert_int_equal(snap_restore1(&vb, &f, err, sizeof(err)), 0);
	uint8_t rd[2];
	acpi_pm_io(b, 2, rd, 2, false);
	assert_int_equal(rd[0] | rd[1] << 8, 0x0120);
	acpi_pm_io(b, 4, rd, 2, false);
	assert_int_equal(rd[0] | rd[1] << 8, 0x0c03);
	struct snap_file h = snap_patch(&f, "acpi-pm", 4, 0x2000, 2); /* SLP_EN is a trigger, not state */
	SNAP_REFUSED(&vb, &h, "PM1 control");
	free(h.buf);
	free(f.buf);
	acpi_pm_free(a);
	acpi_pm_free(b);

	struct pvpanic *p = pvpanic_new(ctl()), *q = pvpanic_new(ctl());
	struct vdev vp = { .id = "pvpanic", .kind = "pvpanic", .ops = &pvp_ops, .impl = p };
	struct vdev vq = { .id = "pvpanic", .kind = "pvpanic", .ops = &pvp_ops, .impl = q };
	out8(pvpanic_io, p, 0, PVPANIC_CRASH_LOADED);
	f = snap_save1(&vp);
	assert_false(pvpanic_crash_loaded(q));
	assert_int_equal(snap_restore1(&vq, &f, err, sizeof(err)), 0);
	assert_true(pvpanic_crash_loaded(q));
	h = snap_patch(&f, "pvpanic", 0, 3, 1);
	SNAP_REFUSED(&vq, &h, "a boolean holds 3");
	free(h.buf);
	free(f.buf);
	pvpanic_free(p);
	pvpanic_free(q);
}

/* ---- i8042 -------------------------------------------------------------- */

static const struct vdev_ops kbc_ops = { .save = i8042_save, .restore = i8042_restore };

static void test_i8042(void **state)
{
	(void)state;
	struct irq_rec ir = { 0 };
	struct i8042 *a = i8042_new(ctl(), irq_line(&ir)), *b = i8042_new(ctl(), irq_line(&ir));
	struct vdev va = { .id = "i8042", .kind = "i8042", .ops = &kbc_ops, .impl = a };
	struct vdev vb = { .id = "i8042", .kind = "i8042", .ops = &kbc_ops, .impl = b };

	out8(i8042_data_io, a, 0, 0xf0); /* keyboard: set scancode set... */
	assert_int_equal(in8(i8042_data_io, a, 0), 0xfa);
	out8(i8042_data_io, a, 0, 3); /* ...3 */
	assert_int_equal(in8(i8042_data_io, a, 0), 0xfa);
	out8(i8042_data_io, a, 0, 0xf2); /* identify: 3 bytes queued */
	assert_int_equal(in8(i8042_data_io, a, 0), 0xfa);
	out8(i8042_cmd_io, a, 0, 0x60); /* write command byte: waits for data */
	struct snap_file f = snap_save1(&va);

	char err[SNAP_ERR_MAX];
	assert_int_equal(snap_restore1(&vb, &f, err, sizeof(err)), 0);
	assert_int_equal(in8(i8042_cmd_io, b, 0), I8042_STR_UNLOCK | I8042_STR_SYS | I8042_STR_CMD | I8042_STR_OBF);
	assert_int_equal(in8(i8042_data_io, b, 0), 0xab);
	assert_int_equal(in8(i8042_data_io, b, 0), 0x41); /* translated ID: XLATE kept */
	out8(i8042_data_io, b, 0, 0x05);                   /* the pending 0x60's data */
	out8(i8042_cmd_io, b, 0, 0x20);
	assert_int_equal(in8(i8042_data_io, b, 0), 0x05);
	out8(i8042_data_io, b, 0, 0xf0); /* the keyboard kept set 3 (untranslated now) */
	assert_int_equal(in8(i8042_data_io, b, 0), 0xfa);
	out8(i8042_data_io, b, 0, 0);
	assert_int_equal(in8(i8042_data_io, b, 0), 0xfa);
	assert_int_equal(in8(i8042_data_io, b, 0), 3);

	/* Payload: ctr outp pending last_cmd last_out count q[2] kbd(pending set leds typ last scanning). */
	struct snap_file h = snap_patch(&f, "i8042", 2, 0x20, 1);
	SNAP_REFUSED(&vb, &h, "cannot be waiting");
	free(h.buf);
	h = snap_patch(&f, "i8042", 5, 40, 1);
	SNAP_REFUSED(&vb, &h, "output queue");
	free(h.buf);
	h = snap_patch(&f, "i8042", 6 + 2 + 1, 7, 1);
	SNAP_REFUSED(&vb, &h, "scancode set 7");
	free(h.buf);
	free(f.buf);
	i8042_free(a);
	i8042_free(b);
}

/* ---- pci host ----------------------------------------------------------- */

#define WIN_BASE 0xC0000000ULL
#define WIN_SIZE 0x100000ULL

struct fdev {
	struct pci_function fn;
	uint8_t regs[0x1000];
	unsigned moves;
	uint64_t last_new;
};

static void fdev_io(void *dev, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct fdev *d = dev;
	if (is_write)
		memcpy(d->regs + off, data, len);
	else
		memcpy(data, d->regs + off, len);
}

static void fdev_moved(void *dev, unsigned bar, uint64_t old_addr, uint64_t new_addr)
{
	struct fdev *d = dev;
	(void)bar, (void)old_addr;
	d->moves++;
	d->last_new = new_addr;
}

static void fdev_init(struct fdev *d, uint16_t device)
{
	memset(d, 0, sizeof(*d));
	d->fn.name = "fdev";
	d->fn.cfg[0] = 0xf4, d->fn.cfg[1] = 0x1a;
	d->fn.cfg[2] = (uint8_t)device, d->fn.cfg[3] = (uint8_t)(device >> 8);
	d->fn.cfg[0x34] = 0x40;
	d->fn.wmask[0x43] = 0xc0; /* an MSI-X-like control byte */
	d->fn.bar[0] = (struct pci_bar){ .size = 0x1000, .fn = fdev_io, .dev = d };
	d->fn.bar_moved = fdev_moved;
	d->fn.dev = d;
}

static void cfg_wr(struct pci_host *h, unsigned slot, uint32_t off, uint32_t v, uint32_t len)
{
	uint8_t a[4] = { (uint8_t)(off & 0xfc), (uint8_t)(slot << 3), 0, 0x80 };
	uint8_t d[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	pci_host_cfg_io(h, 0, a, 4, true);
	pci_host_cfg_io(h, 4 + (off & 3), d, len, true);
}

static uint32_t cfg_rd(struct pci_host *h, unsigned slot, uint32_t off)
{
	uint8_t a[4] = { (uint8_t)(off & 0xfc), (uint8_t)(slot << 3), 0, 0x80 }, d[4];
	pci_host_cfg_io(h, 0, a, 4, true);
	pci_host_cfg_io(h, 4, d, 4, false);
	return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}

static uint8_t mmio_rd(struct pci_host *h, uint64_t gpa)
{
	uint8_t v = 0;
	pci_host_mmio(h, gpa - WIN_BASE, &v, 1, false);
	return v;
}

static const struct vdev_ops pci_ops = { .save = pci_host_save, .restore = pci_host_restore };

static void test_pci_host(void **state)
{
	(void)state;
	struct pci_host *ha = pci_host_new(WIN_BASE, WIN_SIZE), *hb = pci_host_new(WIN_BASE, WIN_SIZE);
	struct fdev a1, a2, b1, b2;
	fdev_init(&a1, 0x1041), fdev_init(&a2, 0x1042), fdev_init(&b1, 0x1041), fdev_init(&b2, 0x1042);
	assert_int_equal(pci_host_add(ha, &a1.fn), 0);
	assert_int_equal(pci_host_add(ha, &a2.fn), 0);
	assert_int_equal(pci_host_add(hb, &b1.fn), 0);
	assert_int_equal(pci_host_add(hb, &b2.fn), 0);
	uint32_t bar1 = cfg_rd(ha, 1, 0x10), bar2 = cfg_rd(ha, 2, 0x10);

	/* The guest swaps the two BARs (sizing in between, as Linux does),
	 * enables memory decoding and sets the capability bits. */
	cfg_wr(ha, 1, 0x10, 0xffffffff, 4);
	cfg_wr(ha, 2, 0x10, bar1, 4);
	cfg_wr(ha, 1, 0x10, bar2, 4);
	cfg_wr(ha, 1, 0x04, 0x0006, 2);
	cfg_wr(ha, 2, 0x04, 0x0406, 2);
	cfg_wr(ha, 1, 0x43, 0x80, 1);
	cfg_wr(ha, 1, 0x3c, 0x0b, 1);
	struct vdev va = { .id = "pci-host", .kind = "pci-host", .ops = &pci_ops, .impl = ha };
	struct vdev vb = { .id = "pci-host", .kind = "pci-host", .ops = &pci_ops, .impl = hb };
	cfg_wr(ha, 2, 0x00, 0, 4); /* leaves CONFIG_ADDRESS at slot 2 */
	struct snap_file f = snap_save1(&va);

	char err[SNAP_ERR_MAX];
	b1.regs[0] = 0x11, b2.regs[0] = 0x22;
	assert_int_equal(snap_restore1(&vb, &f, err, sizeof(err)), 0);
	uint8_t cfa[4];
	pci_host_cfg_io(hb, 0, cfa, 4, false);
	assert_int_equal(cfa[1], 2 << 3);
	assert_int_equal(cfg_rd(hb, 1, 0x10), bar2);
	assert_int_equal(cfg_rd(hb, 2, 0x10), bar1);
	assert_int_equal(cfg_rd(hb, 1, 0x04) & 0xffff, 0x0006);
	assert_int_equal(cfg_rd(hb, 2, 0x04) & 0xffff, 0x0406);
	assert_int_equal(cfg_rd(hb, 1, 0x40) >> 24, 0x80);
	assert_int_equal(cfg_rd(hb, 1, 0x3c) & 0xff, 0x0b);
	/* The BARs decode where the guest put them, and their hooks heard. */
	assert_int_equal(mmio_rd(hb, bar2), 0x11);
	assert_int_equal(mmio_rd(hb, bar1), 0x22);
	assert_true(b1.moves > 0 && b1.last_new == bar2);
	assert_true(b2.moves > 0 && b2.last_new == bar1);

	/* Another function in slot 2, or none: refused. */
	struct pci_host *hc = pci_host_new(WIN_BASE, WIN_SIZE);
	struct fdev c1, c2;
	fdev_init(&c1, 0x1041), fdev_init(&c2, 0x1043);
	pci_host_add(hc, &c1.fn);
	struct vdev vc = { .id = "pci-host", .kind = "pci-host", .ops = &pci_ops, .impl = hc };
	SNAP_REFUSED(&vc, &f, "slot 2 is used in the snapshot but empty");
	pci_host_add(hc, &c2.fn);
	SNAP_REFUSED(&vc, &f, "slot 2 holds");
	/* Payload: cfa(4), then per slot a bool and 256 bytes. */
	struct snap_file h = snap_patch(&f, "pci-host", 0, 0x7f000000, 4);
	SNAP_REFUSED(&vb, &h, "reserved bits");
	free(h.buf);
	free(f.buf);
	pci_host_free(ha);
	pci_host_free(hb);
	pci_host_free(hc);
}

/* Two BARs on one address: the one the guest placed there first decodes,
 * the other holds the address and does not. A restore writes slots in
 * order, so without the snapshot saying which decodes, slot 1 would take
 * slot 2's place. A snapshot claiming what a guest could not leave is
 * refused. */
static void test_pci_host_overlap(void **state)
{
	(void)state;
	struct pci_host *ha = pci_host_new(WIN_BASE, WIN_SIZE), *hb = pci_host_new(WIN_BASE, WIN_SIZE);
	struct fdev a1, a2, b1, b2;
	fdev_init(&a1, 0x1041), fdev_init(&a2, 0x1042), fdev_init(&b1, 0x1041), fdev_init(&b2, 0x1042);
	pci_host_add(ha, &a1.fn), pci_host_add(ha, &a2.fn);
	pci_host_add(hb, &b1.fn), pci_host_add(hb, &b2.fn);
	const uint32_t x = (uint32_t)WIN_BASE + 0x80000;
	cfg_wr(ha, 2, 0x10, x, 4); /* slot 2 decodes at x */
	cfg_wr(ha, 1, 0x10, x, 4); /* slot 1 holds x, does not decode */
	cfg_wr(ha, 1, 0x04, 0x0002, 2);
	cfg_wr(ha, 2, 0x04, 0x0002, 2);
	a1.regs[0] = 0x11, a2.regs[0] = 0x22;
	assert_int_equal(mmio_rd(ha, x), 0x22);
	struct vdev va = { .id = "pci-host", .kind = "pci-host", .ops = &pci_ops, .impl = ha };
	struct vdev vb = { .id = "pci-host", .kind = "pci-host", .ops = &pci_ops, .impl = hb };
	struct snap_file f = snap_save1(&va);

	char err[SNAP_ERR_MAX];
	b1.regs[0] = 0x11, b2.regs[0] = 0x22;
	assert_int_equal(snap_restore1(&vb, &f, err, sizeof(err)), 0);
	assert_int_equal(cfg_rd(hb, 1, 0x10), x);
	assert_int_equal(cfg_rd(hb, 2, 0x10), x);
	assert_int_equal(mmio_rd(hb, x), 0x22);
	assert_int_equal(b2.last_new, x);
	assert_int_equal(b1.last_new, 0); /* its doorbells unbound */

	/* Payload: cfa(4); per slot a bool, 256 config bytes, the decoding
	 * BARs (slot 0 is the host bridge). */
	const size_t slot1 = 4 + 258, slot2 = slot1 + 258;
	struct pci_host *hc = pci_host_new(WIN_BASE, WIN_SIZE);
	struct fdev c1, c2;
	fdev_init(&c1, 0x1041), fdev_init(&c2, 0x1042);
	pci_host_add(hc, &c1.fn), pci_host_add(hc, &c2.fn);
	struct vdev vc = { .id = "pci-host", .kind = "pci-host", .ops = &pci_ops, .impl = hc };
	struct snap_file both = snap_patch(&f, "pci-host", slot1 + 257, 1, 1);
	SNAP_REFUSED(&vc, &both, "slot 2 BAR0: decoding at 0xc0080000 in the snapshot, which is outside the window or over another BAR");
	struct snap_file odd = snap_patch(&f, "pci-host", slot2 + 1 + 0x10, x | 0x10, 4);
	SNAP_REFUSED(&vc, &odd, "slot 2 BAR0: 0xc0080010 is not a value the BAR can hold");
	struct snap_file out = snap_patch(&f, "pci-host", slot2 + 1 + 0x10, 0x1000, 4);
	SNAP_REFUSED(&vc, &out, "slot 2 BAR0: decoding at 0x00001000");
	free(both.buf), free(odd.buf), free(out.buf), free(f.buf);
	pci_host_free(ha), pci_host_free(hb), pci_host_free(hc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uart),
		cmocka_unit_test(test_rtc),
		cmocka_unit_test(test_pm_pvpanic),
		cmocka_unit_test(test_i8042),
		cmocka_unit_test(test_pci_host),
		cmocka_unit_test(test_pci_host_overlap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
