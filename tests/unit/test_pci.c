/* Unit tests for the PCI host (devices/pci.c): configuration mechanism #1
 * driven through the port handler the way a guest drives 0xCF8/0xCFC, BAR
 * sizing and moves, and MMIO dispatch through the window. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/exit.h"
#include "core/policy.h"
#include "core/vm.h"
#include "devices/pci.h"
#include "policy_spec_build.h"

#define WIN_BASE 0xC0000000ULL
#define WIN_SIZE 0x100000ULL /* 1 MiB */

/* ---- a fake device ------------------------------------------------------ */

struct fake_dev {
	struct pci_function fn;
	uint8_t regs[2][0x4000]; /* backing of BAR 0 and BAR 1 */
	unsigned moves;
	unsigned last_bar;
	uint64_t last_old, last_new;
	unsigned writes;
	uint32_t last_off, last_len;
};

static void bar_io(struct fake_dev *d, unsigned bar, uint64_t off, uint8_t *data, uint32_t len,
		   bool is_write)
{
	assert_true(off + len <= sizeof(d->regs[bar]));
	if (is_write)
		memcpy(d->regs[bar] + off, data, len);
	else
		memcpy(data, d->regs[bar] + off, len);
}

static void bar0_io(void *dev, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	bar_io(dev, 0, off, data, len, is_write);
}

static void bar1_io(void *dev, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	bar_io(dev, 1, off, data, len, is_write);
}

static void on_moved(void *dev, unsigned bar, uint64_t old_addr, uint64_t new_addr)
{
	struct fake_dev *d = dev;
	d->moves++;
	d->last_bar = bar;
	d->last_old = old_addr;
	d->last_new = new_addr;
}

static void on_written(void *dev, uint32_t off, uint32_t len)
{
	struct fake_dev *d = dev;
	d->writes++;
	d->last_off = off;
	d->last_len = len;
}

/* A virtio-like function: IDs 0x1af4:0x1041, a capability pointer, BAR 0
 * of 16 KiB and BAR 2 of 4 KiB, one guest-writable byte at 0x40. */
static void fake_init(struct fake_dev *d)
{
	memset(d, 0, sizeof(*d));
	struct pci_function *fn = &d->fn;
	fn->name = "fake";
	fn->cfg[0x00] = 0xf4;
	fn->cfg[0x01] = 0x1a;
	fn->cfg[0x02] = 0x41;
	fn->cfg[0x03] = 0x10;
	fn->cfg[0x0B] = 0xFF; /* class */
	fn->cfg[0x34] = 0x40;
	fn->cfg[0x40] = 0x09; /* a vendor capability */
	fn->cfg[0x42] = 0x5A;
	fn->cfg[0x43] = 0xA5;
	fn->wmask[0x42] = 0xFF;
	fn->bar[0] = (struct pci_bar){ .size = 0x4000, .fn = bar0_io, .dev = d };
	fn->bar[2] = (struct pci_bar){ .size = 0x1000, .fn = bar1_io, .dev = d };
	fn->bar_moved = on_moved;
	fn->cfg_written = on_written;
	fn->dev = d;
}

/* ---- guest-side helpers ------------------------------------------------- */

static uint32_t cfa(unsigned bus, unsigned slot, unsigned func, unsigned reg)
{
	return 1u << 31 | bus << 16 | slot << 11 | func << 8 | (reg & 0xFC);
}

static void outl(struct pci_host *h, uint16_t port, uint32_t v)
{
	uint8_t d[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	pci_host_cfg_io(h, port - 0xCF8u, d, 4, true);
}

static uint32_t in_n(struct pci_host *h, uint16_t port, uint32_t len)
{
	uint8_t d[4] = { 0x11, 0x22, 0x33, 0x44 };
	pci_host_cfg_io(h, port - 0xCF8u, d, len, false);
	uint32_t v = 0;
	for (uint32_t i = 0; i < len; i++)
		v |= (uint32_t)d[i] << (8 * i);
	return v;
}

static void out_n(struct pci_host *h, uint16_t port, uint32_t v, uint32_t len)
{
	uint8_t d[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	pci_host_cfg_io(h, port - 0xCF8u, d, len, true);
}

static uint32_t cfg_read(struct pci_host *h, unsigned slot, unsigned reg, uint32_t len)
{
	outl(h, 0xCF8, cfa(0, slot, 0, reg));
	return in_n(h, (uint16_t)(0xCFC + (reg & 3)), len);
}

static void cfg_write(struct pci_host *h, unsigned slot, unsigned reg, uint32_t v, uint32_t len)
{
	outl(h, 0xCF8, cfa(0, slot, 0, reg));
	out_n(h, (uint16_t)(0xCFC + (reg & 3)), v, len);
}

static uint32_t mmio_read32(struct pci_host *h, uint64_t gpa)
{
	uint8_t d[4];
	pci_host_mmio(h, gpa - WIN_BASE, d, 4, false);
	return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}

static void mmio_write32(struct pci_host *h, uint64_t gpa, uint32_t v)
{
	uint8_t d[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	pci_host_mmio(h, gpa - WIN_BASE, d, 4, true);
}

/* ---- fixture ------------------------------------------------------------ */

struct fixture {
	struct pci_host *h;
	struct fake_dev d;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->h = pci_host_new(WIN_BASE, WIN_SIZE);
	assert_non_null(f->h);
	fake_init(&f->d);
	assert_int_equal(pci_host_add(f->h, &f->d.fn), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	pci_host_free(f->h);
	free(f);
	return 0;
}

/* ---- tests -------------------------------------------------------------- */

static void test_enumeration(void **state)
{
	struct fixture *f = *state;
	struct pci_host *h = f->h;

	/* 00:00.0 is the host bridge. */
	assert_int_equal(cfg_read(h, 0, 0x00, 4), 0x00081b36);
	assert_int_equal(cfg_read(h, 0, 0x08, 4) >> 8, 0x060000);
	assert_int_equal(cfg_read(h, 0, 0x3D, 1), 0); /* no interrupt pin */
	/* The added device took slot 1. */
	assert_int_equal(f->d.fn.slot, 1);
	assert_int_equal(cfg_read(h, 1, 0x00, 4), 0x10411af4);
	/* Empty slot, other functions, other buses: all ones. */
	assert_int_equal(cfg_read(h, 2, 0x00, 4), 0xFFFFFFFF);
	assert_int_equal(cfg_read(h, 31, 0x00, 4), 0xFFFFFFFF);
	outl(h, 0xCF8, cfa(0, 1, 1, 0));
	assert_int_equal(in_n(h, 0xCFC, 4), 0xFFFFFFFF);
	outl(h, 0xCF8, cfa(1, 1, 0, 0));
	assert_int_equal(in_n(h, 0xCFC, 4), 0xFFFFFFFF);
	/* Enable bit clear: nothing is addressed. */
	outl(h, 0xCF8, cfa(0, 1, 0, 0) & ~(1u << 31));
	assert_int_equal(in_n(h, 0xCFC, 4), 0xFFFFFFFF);
	/* ... and writes are dropped. */
	outl(h, 0xCF8, cfa(0, 1, 0, 0x3C) & ~(1u << 31));
	out_n(h, 0xCFC, 0x77, 1);
	assert_int_equal(cfg_read(h, 1, 0x3C, 1), f->d.fn.gsi);
}

static void test_config_address_latch(void **state)
{
	struct fixture *f = *state;
	struct pci_host *h = f->h;

	/* Linux's type 1 probe: a byte to 0xCFB, then CONFIG_ADDRESS must
	 * read back what was written. */
	out_n(h, 0xCFB, 0x01, 1);
	outl(h, 0xCF8, 0x80000000);
	assert_int_equal(in_n(h, 0xCF8, 4), 0x80000000);
	/* Reserved bits 30:24 and 1:0 read 0. */
	outl(h, 0xCF8, 0xFFFFFFFF);
	assert_int_equal(in_n(h, 0xCF8, 4), 0x80FFFFFC);
	/* Byte and word reads of 0xCF8..0xCFB are not CONFIG_ADDRESS. */
	assert_int_equal(in_n(h, 0xCF8, 1), 0xFF);
	assert_int_equal(in_n(h, 0xCFA, 2), 0xFFFF);
}

static void test_partial_reads(void **state)
{
	struct fixture *f = *state;
	struct pci_host *h = f->h;

	outl(h, 0xCF8, cfa(0, 1, 0, 0));
	assert_int_equal(in_n(h, 0xCFC, 1), 0xf4);
	assert_int_equal(in_n(h, 0xCFD, 1), 0x1a);
	assert_int_equal(in_n(h, 0xCFE, 1), 0x41);
	assert_int_equal(in_n(h, 0xCFF, 1), 0x10);
	assert_int_equal(in_n(h, 0xCFC, 2), 0x1af4);
	assert_int_equal(in_n(h, 0xCFE, 2), 0x1041);
	/* Unaligned but inside the dword is fine; a word at 0xCFF or a
	 * dword at 0xCFE would leave it. */
	assert_int_equal(in_n(h, 0xCFD, 2), 0x411a);
	assert_int_equal(in_n(h, 0xCFF, 2), 0xFFFF);
	assert_int_equal(in_n(h, 0xCFE, 4), 0xFFFFFFFF);
	/* Odd widths are refused too. */
	assert_int_equal(in_n(h, 0xCFC, 3), 0xFFFFFF);
}

static void test_bar_sizing(void **state)
{
	struct fixture *f = *state;
	struct pci_host *h = f->h;
	uint32_t bar0 = cfg_read(h, 1, 0x10, 4);

	assert_int_equal(bar0, f->d.fn.bar[0].addr);
	assert_true(bar0 >= WIN_BASE && bar0 + 0x4000 <= WIN_BASE + WIN_SIZE);
	assert_int_equal(bar0 % 0x4000, 0);
	assert_int_equal(bar0 & 0xF, 0); /* 32-bit non-prefetchable memory */

	/* Sizing the way an OS does: all ones, read, restore. */
	cfg_write(h, 1, 0x04, 0, 2); /* decoding off while sizing */
	cfg_write(h, 1, 0x10, 0xFFFFFFFF, 4);
	assert_int_equal(cfg_read(h, 1, 0x10, 4), ~(0x4000u - 1));
	cfg_write(h, 1, 0x10, bar0, 4);
	assert_int_equal(cfg_read(h, 1, 0x10, 4), bar0);
	assert_int_equal(f->d.fn.bar[0].addr, bar0);

	cfg_write(h, 1, 0x18, 0xFFFFFFFF, 4);
	assert_int_equal(cfg_read(h, 1, 0x18, 4), 0xFFFFF000);

	/* Unused BARs read 0 and ignore writes (so they size to 0). */
	cfg_write(h, 1, 0x14, 0xFFFFFFFF, 4);
	assert_int_equal(cfg_read(h, 1, 0x14, 4), 0);
	cfg_write(h, 1, 0x24, 0xFFFFFFFF, 4);
	assert_int_equal(cfg_read(h, 1, 0x24, 4), 0);
	/* No expansion ROM. */
	cfg_write(h, 1, 0x30, 0xFFFFFFFF, 4);
	assert_int_equal(cfg_read(h, 1, 0x30, 4), 0);
}

static void test_bar_move(void **state)
{
	struct fixture *f = *state;
	struct pci_host *h = f->h;
	uint64_t old = f->d.fn.bar[0].addr;
	uint64_t new = WIN_BASE + 0x80000;

	cfg_write(h, 1, 0x04, 0x0002, 2); /* memory decoding on */
	assert_true(pci_mem_enabled(&f->d.fn));
	mmio_write32(h, old + 0x10, 0xCAFEF00D);
	assert_int_equal(f->d.regs[0][0x10], 0x0D);
	assert_int_equal(mmio_read32(h, old + 0x10), 0xCAFEF00D);

	unsigned moves = f->d.moves;
	cfg_write(h, 1, 0x10, (uint32_t)new, 4);
	assert_int_equal(f->d.moves, moves + 1);
	assert_int_equal(f->d.last_bar, 0);
	assert_int_equal(f->d.last_old, old);
	assert_int_equal(f->d.last_new, new);
	assert_int_equal(f->d.fn.bar[0].addr, new);
	assert_int_equal(f->d.last_off, 0x10);
	assert_int_equal(f->d.last_len, 4);

	/* The device answers at the new place only. */
	assert_int_equal(mmio_read32(h, new + 0x10), 0xCAFEF00D);
	assert_int_equal(mmio_read32(h, old + 0x10), 0xFFFFFFFF);
	mmio_write32(h, old + 0x20, 0x12345678);
	assert_int_equal(f->d.regs[0][0x20], 0);

	/* Rewriting the same address is not a move. */
	cfg_write(h, 1, 0x10, (uint32_t)new, 4);
	assert_int_equal(f->d.moves, moves + 1);

	/* A byte write to the BAR's top byte moves it too — here out of the
	 * 1 MiB window: config space holds the address, but the BAR is not
	 * decoded there (its device hears "moved to 0"), nor anywhere. */
	cfg_write(h, 1, 0x13, 0xC1, 1);
	assert_int_equal(cfg_read(h, 1, 0x10, 4), 0xC1080000);
	assert_int_equal(f->d.last_new, 0);
	assert_int_equal(f->d.last_old, new);
	assert_int_equal(f->d.moves, moves + 2);
	assert_false(f->d.fn.bar[0].decoded);
	assert_int_equal(mmio_read32(h, new + 0x10), 0xFFFFFFFF);

	/* Back in the window: decoded again, the device hears the address. */
	cfg_write(h, 1, 0x10, (uint32_t)new, 4);
	assert_int_equal(f->d.last_old, 0);
	assert_int_equal(f->d.last_new, new);
	assert_true(f->d.fn.bar[0].decoded);
	/* An access straddling the BAR's end does not reach it. */
	assert_int_equal(mmio_read32(h, new + 0x4000 - 2), 0xFFFFFFFF);

	/* Onto its BAR2 (another BAR): not decoded, and BAR2 still answers
	 * where it is — a guest cannot take over another's registers. */
	uint64_t bar1 = f->d.fn.bar[2].addr;
	assert_true(f->d.fn.bar[2].size);
	cfg_write(h, 1, 0x10, (uint32_t)bar1, 4);
	assert_false(f->d.fn.bar[0].decoded);
	assert_int_equal(f->d.last_new, 0);
	mmio_write32(h, bar1 + 0x10, 0x11223344);
	assert_int_equal(f->d.regs[1][0x10], 0x44);
	assert_int_equal(f->d.regs[0][0x10], 0x0D); /* BAR0's registers untouched */
}

static void test_mem_disabled(void **state)
{
	struct fixture *f = *state;
	struct pci_host *h = f->h;
	uint64_t bar0 = f->d.fn.bar[0].addr;

	memset(f->d.regs[0], 0x42, 16);
	/* Command starts at 0: no decoding. */
	assert_false(pci_mem_enabled(&f->d.fn));
	assert_int_equal(mmio_read32(h, bar0), 0xFFFFFFFF);
	mmio_write32(h, bar0 + 4, 0);
	assert_int_equal(f->d.regs[0][4], 0x42);

	cfg_write(h, 1, 0x04, 0x0006, 2);
	assert_int_equal(mmio_read32(h, bar0), 0x42424242);
	cfg_write(h, 1, 0x04, 0x0004, 2);
	assert_int_equal(mmio_read32(h, bar0), 0xFFFFFFFF);

	/* Nothing but the window's BARs answers. */
	cfg_write(h, 1, 0x04, 0x0002, 2);
	assert_int_equal(mmio_read32(h, WIN_BASE + WIN_SIZE - 4), 0xFFFFFFFF);
}

static void test_command_status_wmask(void **state)
{
	struct fixture *f = *state;
	struct pci_host *h = f->h;

	/* Only IO, MEM, MASTER and INTx-disable are writable. */
	cfg_write(h, 1, 0x04, 0xFFFF, 2);
	assert_int_equal(cfg_read(h, 1, 0x04, 2), 0x0407);
	/* Status: capability list (cfg[0x34] != 0), writes ignored. */
	cfg_write(h, 1, 0x06, 0xFFFF, 2);
	assert_int_equal(cfg_read(h, 1, 0x06, 2), 0x0010);
	/* The host bridge has no capabilities. */
	assert_int_equal(cfg_read(h, 0, 0x06, 2), 0);

	/* IDs and class are read-only. */
	cfg_write(h, 1, 0x00, 0, 4);
	assert_int_equal(cfg_read(h, 1, 0x00, 4), 0x10411af4);
	cfg_write(h, 1, 0x08, 0, 4);
	assert_int_equal(cfg_read(h, 1, 0x0B, 1), 0xFF);

	/* In the capability: 0x42 is writable, 0x43 is not. */
	unsigned writes = f->d.writes;
	cfg_write(h, 1, 0x42, 0x1234, 2);
	assert_int_equal(cfg_read(h, 1, 0x42, 1), 0x34);
	assert_int_equal(cfg_read(h, 1, 0x43, 1), 0xA5);
	assert_int_equal(f->d.writes, writes + 1);
	assert_int_equal(f->d.last_off, 0x42);
	assert_int_equal(f->d.last_len, 2);
	assert_int_equal(f->d.fn.cfg[0x42], 0x34);
}

static void test_interrupt(void **state)
{
	struct fixture *f = *state;
	struct pci_host *h = f->h;

	assert_int_equal(f->d.fn.gsi, PCI_INTX_GSI_BASE + 1 % PCI_INTX_GSIS);
	assert_int_equal(cfg_read(h, 1, 0x3C, 1), f->d.fn.gsi);
	assert_int_equal(cfg_read(h, 1, 0x3D, 1), 1);
	/* Line is writable, pin is not. */
	cfg_write(h, 1, 0x3C, 0x0B0A, 2);
	assert_int_equal(cfg_read(h, 1, 0x3C, 1), 0x0A);
	assert_int_equal(cfg_read(h, 1, 0x3D, 1), 1);

	/* Slot 8 wraps around to the first GSI of the block. */
	struct fake_dev *more = calloc(8, sizeof(*more));
	assert_non_null(more);
	for (unsigned i = 0; i < 8; i++) {
		fake_init(&more[i]);
		more[i].fn.bar[0].size = 0;
		more[i].fn.bar[2].size = 0;
		assert_int_equal(pci_host_add(h, &more[i].fn), 0);
		assert_int_equal(more[i].fn.slot, 2 + i);
	}
	assert_int_equal(more[6].fn.gsi, PCI_INTX_GSI_BASE);
	assert_int_equal(cfg_read(h, 8, 0x3C, 1), PCI_INTX_GSI_BASE);
	assert_int_equal(more[7].fn.gsi, PCI_INTX_GSI_BASE + 1);
	free(more); /* the host never touches its functions again */
}

static void test_reset_port_and_junk(void **state)
{
	struct fixture *f = *state;
	struct pci_host *h = f->h;

	outl(h, 0xCF8, cfa(0, 1, 0, 0x3C));
	/* The 0xCF9 "reset control" byte some OSes write: ignored. */
	out_n(h, 0xCF9, 0x06, 1);
	out_n(h, 0xCF9, 0x0E, 1);
	assert_int_equal(in_n(h, 0xCF9, 1), 0xFF);
	assert_int_equal(in_n(h, 0xCF8, 4), cfa(0, 1, 0, 0x3C)); /* latch intact */
	out_n(h, 0xCFA, 0x0000, 2);
	assert_int_equal(in_n(h, 0xCF8, 4), cfa(0, 1, 0, 0x3C));
	assert_int_equal(in_n(h, 0xCFC, 1), f->d.fn.gsi);
}

static void test_hostile_register(void **state)
{
	struct fixture *f = *state;
	struct pci_host *h = f->h;

	/* The last dword of config space, in every width and offset. */
	f->d.fn.cfg[0xFC] = 1;
	f->d.fn.cfg[0xFF] = 4;
	outl(h, 0xCF8, cfa(0, 1, 0, 0xFC));
	assert_int_equal(in_n(h, 0xCFC, 4), 0x04000001);
	assert_int_equal(in_n(h, 0xCFF, 1), 4);
	assert_int_equal(in_n(h, 0xCFE, 2), 0x0400);
	out_n(h, 0xCFC, 0xFFFFFFFF, 4); /* read-only: no wmask */
	assert_int_equal(in_n(h, 0xCFC, 4), 0x04000001);
	/* Low bits of the register number are not part of it. */
	outl(h, 0xCF8, cfa(0, 1, 0, 0) | 3);
	assert_int_equal(in_n(h, 0xCFC, 4), 0x10411af4);
	/* The data port at offsets past it. */
	uint8_t d[8];
	memset(d, 0, sizeof(d));
	pci_host_cfg_io(h, 4, d, 8, false);
	assert_int_equal(d[7], 0xFF);
	pci_host_cfg_io(h, 8, d, 1, true);
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static void test_window_exhaustion(void **state)
{
	(void)state;
	/* 64 KiB: room for a 16 KiB + 4 KiB device, then a 32 KiB one. */
	struct pci_host *h = pci_host_new(WIN_BASE, 0x10000);
	assert_non_null(h);
	struct fake_dev *d = calloc(4, sizeof(*d));
	assert_non_null(d);
	for (unsigned i = 0; i < 4; i++)
		fake_init(&d[i]);

	assert_int_equal(pci_host_add(h, &d[0].fn), 0);
	assert_int_equal(d[0].fn.bar[0].addr, WIN_BASE);
	assert_int_equal(d[0].fn.bar[2].addr, WIN_BASE + 0x4000);

	d[1].fn.bar[0].size = 0x8000;
	d[1].fn.bar[2].size = 0;
	assert_int_equal(pci_host_add(h, &d[1].fn), 0);
	assert_int_equal(d[1].fn.bar[0].addr, align_up(WIN_BASE + 0x5000, 0x8000));
	/* The window is full now. */
	d[2].fn.bar[2].size = 0;
	assert_int_equal(pci_host_add(h, &d[2].fn), -ENOSPC);
	assert_int_equal(d[2].fn.slot, 0); /* untouched */
	assert_int_equal(cfg_read(h, 3, 0x00, 4), 0xFFFFFFFF);

	/* Bad sizes. */
	d[3].fn.bar[0].size = 0x3000;
	assert_int_equal(pci_host_add(h, &d[3].fn), -EINVAL);
	d[3].fn.bar[0].size = 0x800;
	assert_int_equal(pci_host_add(h, &d[3].fn), -EINVAL);
	d[3].fn.bar[0].size = 0x1000;
	d[3].fn.bar[0].fn = NULL;
	assert_int_equal(pci_host_add(h, &d[3].fn), -EINVAL);

	/* Slots run out: 31 functions without BARs fit, the 32nd doesn't. */
	pci_host_free(h);
	h = pci_host_new(WIN_BASE, 0x10000);
	assert_non_null(h);
	struct pci_function *fns = calloc(PCI_MAX_SLOTS, sizeof(*fns));
	assert_non_null(fns);
	for (unsigned i = 0; i < PCI_MAX_SLOTS - 1; i++)
		assert_int_equal(pci_host_add(h, &fns[i]), 0);
	assert_int_equal(fns[30].slot, 31);
	assert_int_equal(pci_host_add(h, &fns[31]), -ENOSPC);

	/* Windows that don't fit 32-bit BARs. */
	assert_null(pci_host_new(0xFFFFF000, 0x2000));
	assert_null(pci_host_new(WIN_BASE, 0));

	pci_host_free(h);
	free(fns);
	free(d);
}

/* ---- hooks run without the host lock -------------------------------------- */

/* A hook that calls back into the host (as a device taking its own lock,
 * then touching config space, might) from another thread; it finishes only
 * if the host lock is free. The wait is bounded so a regression fails
 * instead of hanging the suite. */
static struct pci_host *reenter_host;
static unsigned reenter_ok, reenter_calls;
static pthread_mutex_t reenter_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reenter_cond = PTHREAD_COND_INITIALIZER;
static bool reenter_done;
static pthread_t threads[8];
static unsigned nthreads;

static void *reenter_thread(void *arg)
{
	(void)arg;
	uint8_t d[4];
	uint8_t a[4] = { 0x00, 0x08, 0x00, 0x80 }; /* 00:01.0, register 0 */
	pci_host_cfg_io(reenter_host, 0, a, 4, true);
	pci_host_cfg_io(reenter_host, 4, d, 4, false);
	pci_host_mmio(reenter_host, 0xFFFF0, d, 4, false);
	pthread_mutex_lock(&reenter_lock);
	reenter_done = true;
	pthread_cond_signal(&reenter_cond);
	pthread_mutex_unlock(&reenter_lock);
	return NULL;
}

static void reenter(void)
{
	struct timespec ts;
	assert_true(nthreads < 8);
	reenter_calls++;
	reenter_done = false;
	assert_int_equal(pthread_create(&threads[nthreads++], NULL, reenter_thread, NULL), 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 2;
	pthread_mutex_lock(&reenter_lock);
	while (!reenter_done && pthread_cond_timedwait(&reenter_cond, &reenter_lock, &ts) == 0)
		;
	if (reenter_done)
		reenter_ok++;
	pthread_mutex_unlock(&reenter_lock);
}

static void reenter_io(void *dev, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	(void)dev, (void)off, (void)is_write;
	reenter();
	memset(data, 0, len);
}

static void reenter_moved(void *dev, unsigned bar, uint64_t old_addr, uint64_t new_addr)
{
	(void)dev, (void)bar, (void)old_addr, (void)new_addr;
	reenter();
}

static void reenter_written(void *dev, uint32_t off, uint32_t len)
{
	(void)dev, (void)off, (void)len;
	reenter();
}

static void test_hooks_unlocked(void **state)
{
	struct fixture *f = *state;
	struct pci_host *h = f->h;
	f->d.fn.bar[0].fn = reenter_io;
	f->d.fn.bar_moved = reenter_moved;
	f->d.fn.cfg_written = reenter_written;
	reenter_host = h;
	reenter_ok = reenter_calls = nthreads = 0;

	cfg_write(h, 1, 0x04, 0x0002, 2);                   /* cfg_written */
	cfg_write(h, 1, 0x10, (uint32_t)WIN_BASE + 0x8000, 4); /* bar_moved + cfg_written */
	mmio_read32(h, WIN_BASE + 0x8000);                  /* BAR handler */
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL); /* a stuck one runs once the lock is dropped */
	assert_int_equal(reenter_calls, 4);
	assert_int_equal(reenter_ok, 4);
}

/* ---- concurrent vCPUs ----------------------------------------------------- */

/* Two vCPUs move one BAR: the first move's bar_moved hook is slow (it
 * rebinds doorbells). The second write must wait for it before it changes
 * config space, or its hook could run first and the two would rebind in
 * the wrong order (ioeventfds left live at an address the transport thinks
 * unbound). Seen here as: while the first hook runs, BAR 0 still reads the
 * first move's address; then the hooks come in the order of the moves. */
static struct pci_host *order_host;
static atomic_int order_in_hook, order_release, order_n;
static uint64_t order_log[4][2];

static void order_moved(void *dev, unsigned bar, uint64_t old_addr, uint64_t new_addr)
{
	(void)dev, (void)bar;
	int n = atomic_fetch_add(&order_n, 1);
	if (n < 4) {
		order_log[n][0] = old_addr;
		order_log[n][1] = new_addr;
	}
	if (n == 0) {
		atomic_store(&order_in_hook, 1);
		for (int i = 0; i < 5000 && !atomic_load(&order_release); i++)
			usleep(1000);
	}
}

static void *order_second_move(void *arg)
{
	(void)arg;
	cfg_write(order_host, 1, 0x10, (uint32_t)WIN_BASE + 0xC000, 4);
	return NULL;
}

static void *order_first_move(void *arg)
{
	(void)arg;
	cfg_write(order_host, 1, 0x10, (uint32_t)WIN_BASE + 0x8000, 4);
	return NULL;
}

/* A deny on BAR 0's addresses (where vigil put it) holds after the guest
 * moves the BAR: the policy judges an access by the BAR's home plus its
 * offset in it, and what is at the home now by its own home. */
static void test_moved_bar_judged_at_home(void **state)
{
	struct fixture *f = *state;
	struct pci_host *h = f->h;
	uint64_t home = f->d.fn.bar[0].addr, moved = WIN_BASE + 0x80000;
	struct vm vm;
	assert_int_equal(vm_init(&vm, 1), 0);
	assert_int_equal(bus_add_sparse(&vm.mmio, WIN_BASE, WIN_SIZE, "pci-mmio", pci_host_mmio,
					pci_host_mmio_claims, h), 0);
	assert_int_equal(bus_set_home(&vm.mmio, WIN_BASE, pci_host_mmio_home), 0);
	struct policy_spec s = { .mode = POLICY_ENFORCE };
	sb_range(sb_add(&s, "no-bar0", POL_RES_MMIO, POLICY_DENY), home, home + 0x3fff);
	char err[128];
	struct policy *pol = policy_compile(&s, err, sizeof(err));
	assert_non_null(pol);
	policy_free(policy_swap(&vm.policy, pol));

	cfg_write(h, 1, 0x04, 0x0002, 2); /* memory decoding on */
	cfg_write(h, 1, 0x10, (uint32_t)moved, 4);
	assert_int_equal(f->d.fn.bar[0].addr, moved);
	assert_int_equal(pci_host_mmio_home(h, moved + 0x10 - WIN_BASE), home + 0x10);
	assert_int_equal(pci_host_mmio_home(h, 0x1234), WIN_BASE + 0x1234); /* in no BAR */
	uint8_t d[4] = { 1, 2, 3, 4 };
	struct vexit ex = { .reason = VEXIT_MMIO, .write = true, .addr = moved + 0x10, .len = 4, .count = 1, .data = d };
	assert_int_equal(exit_dispatch(&vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(f->d.regs[0][0x10], 0); /* denied */
	assert_int_equal(policy_rule_hits(pol, 0), 1);
	/* BAR 2 moved onto BAR 0's home: its own rules (none) hold there. */
	uint64_t bar2_home = f->d.fn.bar[2].addr;
	cfg_write(h, 1, 0x18, (uint32_t)home, 4);
	assert_int_equal(f->d.fn.bar[2].addr, home);
	ex.addr = home + 0x10;
	assert_int_equal(exit_dispatch(&vm, 0, &ex), VM_STOP_NONE);
	assert_int_equal(f->d.regs[1][0x10], 1);
	assert_int_equal(pci_host_mmio_home(h, home + 0x10 - WIN_BASE), bar2_home + 0x10);
	vm_fini(&vm);
	policy_spec_free(&s);
}

static void test_moves_hooked_in_order(void **state)
{
	struct fixture *f = *state;
	struct pci_host *h = f->h;
	pthread_t a, b;

	cfg_write(h, 1, 0x04, 0x0002, 2); /* memory decoding on */
	cfg_write(h, 1, 0x10, 0, 4);      /* BAR 0 off */
	f->d.fn.bar_moved = order_moved;
	order_host = h;
	atomic_store(&order_in_hook, 0);
	atomic_store(&order_release, 0);
	atomic_store(&order_n, 0);

	assert_int_equal(pthread_create(&a, NULL, order_first_move, NULL), 0);
	for (int i = 0; i < 5000 && !atomic_load(&order_in_hook); i++)
		usleep(1000);
	assert_true(atomic_load(&order_in_hook));
	assert_int_equal(pthread_create(&b, NULL, order_second_move, NULL), 0);
	usleep(100 * 1000); /* the second write has had time to run, if it can */
	uint32_t mid = cfg_read(h, 1, 0x10, 4);
	atomic_store(&order_release, 1);
	pthread_join(a, NULL);
	pthread_join(b, NULL);

	assert_int_equal(mid, (uint32_t)WIN_BASE + 0x8000);
	assert_int_equal(atomic_load(&order_n), 2);
	assert_int_equal(order_log[0][0], 0);
	assert_int_equal(order_log[0][1], WIN_BASE + 0x8000);
	assert_int_equal(order_log[1][0], WIN_BASE + 0x8000);
	assert_int_equal(order_log[1][1], WIN_BASE + 0xC000);
	assert_int_equal(cfg_read(h, 1, 0x10, 4), (uint32_t)WIN_BASE + 0xC000);
}

struct race {
	struct fixture *f;
	bool stop; /* atomic */
	unsigned bad;
};

static void *mmio_reader(void *arg)
{
	struct race *r = arg;
	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		/* Wherever BAR 0 is, each of its two places reads the device's
		 * value or all ones, never anything else. */
		uint32_t a = mmio_read32(r->f->h, WIN_BASE + 0x8000);
		uint32_t b = mmio_read32(r->f->h, WIN_BASE + 0xC000);
		if ((a != 0x42424242 && a != 0xFFFFFFFF) || (b != 0x42424242 && b != 0xFFFFFFFF))
			r->bad++;
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	struct fixture *f = *state;
	struct pci_host *h = f->h;
	struct race r = { .f = f };
	pthread_t t[2];

	memset(f->d.regs[0], 0x42, sizeof(f->d.regs[0]));
	cfg_write(h, 1, 0x04, 0x0002, 2);
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, mmio_reader, &r), 0);
	for (unsigned i = 0; i < 2000; i++) {
		cfg_write(h, 1, 0x10, (uint32_t)(WIN_BASE + (i & 1 ? 0x8000 : 0xC000)), 4);
		cfg_write(h, 1, 0x04, i & 2 ? 0 : 2, 2);
		assert_int_equal(cfg_read(h, 1, 0x00, 4), 0x10411af4);
	}
	__atomic_store_n(&r.stop, true, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(r.bad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_enumeration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_address_latch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_sizing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_moved_bar_judged_at_home, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mem_disabled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_status_wmask, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_port_and_junk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_register, setup, teardown),
		cmocka_unit_test(test_window_exhaustion),
		cmocka_unit_test_setup_teardown(test_hooks_unlocked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_moves_hooked_in_order, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
