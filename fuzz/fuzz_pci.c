/* fuzz_pci — libFuzzer target for PCI config space and BAR moves
 * (src/devices/pci.c): a host with three functions (BARs of several sizes,
 * one 64-bit, a capability with guest-writable bytes) and a sequence of
 * guest accesses decoded from the input: CONFIG_ADDRESS/CONFIG_DATA reads
 * and writes of any width and offset (BAR sizing and moves, command
 * register, unimplemented slots and functions), and MMIO accesses anywhere
 * in the window. The target checks the host's promises: a BAR handler only
 * sees accesses inside its BAR, and only while its function has memory
 * decoding on and the BAR is decoded; decoded BARs stay inside the window,
 * aligned, and never overlap each other; bar_moved reports what the BAR
 * now decodes. A broken promise traps. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "devices/pci.h"

#define MMIO_BASE 0xC0000000ULL
#define MMIO_SIZE 0x00100000ULL /* 1 MiB: small enough that moves collide */
#define NFN 3

#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)

static struct pci_function fns[NFN];

static void bar_io(void *dev, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_bar *b = dev;
	CHECK(len >= 1 && len <= 8 && off < b->size && len <= b->size - off);
	if (!is_write)
		memset(data, 0x5a, len);
}

static void bar_moved(void *dev, unsigned bar, uint64_t old_addr, uint64_t new_addr)
{
	struct pci_function *fn = dev;
	CHECK(bar < PCI_NUM_BARS && fn->bar[bar].size);
	(void)old_addr;
	if (new_addr)
		CHECK(new_addr == fn->bar[bar].addr && !(new_addr & (fn->bar[bar].size - 1ull)));
}

static void cfg_written(void *dev, uint32_t off, uint32_t len)
{
	(void)dev;
	CHECK(off < PCI_CFG_SIZE && len >= 1 && len <= 4 && off + len <= PCI_CFG_SIZE);
}


/* What check_layout looks at, per BAR: its address, size and whether it
 * is decoded (a BAR not decoded, or unused, as all zero). */
struct bar_view {
	uint64_t addr;
	uint32_t size;
	uint32_t decoded;
};
static struct bar_view checked[NFN][PCI_NUM_BARS]; /* the layout last found good */
static bool have_checked;

/* Decoded BARs: inside the window, aligned, pairwise disjoint. Most steps
 * move nothing (reads, MMIO, CONFIG_ADDRESS), and the check is a pure
 * function of the decoded BARs' addresses and sizes: when those are the
 * layout last found good (this run), it would pass again, and is skipped
 * (324 instrumented pair tests after each of 512 steps were most of a
 * run). Harness code: not instrumented for coverage. */
FUZZ_NOCOV static void check_layout(void)
{
	struct bar_view now[NFN][PCI_NUM_BARS];
	memset(now, 0, sizeof(now));
	for (unsigned i = 0; i < NFN; i++)
		for (unsigned j = 0; j < PCI_NUM_BARS; j++) {
			const struct pci_bar *a = &fns[i].bar[j];
			if (a->size && a->decoded)
				now[i][j] = (struct bar_view){ a->addr, a->size, 1 };
		}
	if (have_checked && memcmp(now, checked, sizeof(now)) == 0)
		return;
	for (unsigned i = 0; i < NFN; i++)
		for (unsigned j = 0; j < PCI_NUM_BARS; j++) {
			const struct bar_view *a = &now[i][j];
			if (!a->decoded)
				continue;
			CHECK(a->addr >= MMIO_BASE && a->addr + a->size <= MMIO_BASE + MMIO_SIZE);
			CHECK(!(a->addr & (a->size - 1ull)));
			for (unsigned k = 0; k < NFN; k++)
				for (unsigned l = 0; l < PCI_NUM_BARS; l++) {
					const struct bar_view *b = &now[k][l];
					if ((k == i && l == j) || !b->decoded)
						continue;
					CHECK(a->addr + a->size <= b->addr || b->addr + b->size <= a->addr);
				}
		}
	memcpy(checked, now, sizeof(now));
	have_checked = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pci_host *h = pci_host_new(MMIO_BASE, MMIO_SIZE);
	static const uint32_t sizes[NFN][3] = { { 0x8000, 0x1000, 0 }, { 0x1000, 0x10000, 0x1000 },
						{ 0x40000, 0, 0x2000 } };
	CHECK(h);
	have_checked = false; /* nothing carried over from the last run */
	for (unsigned i = 0; i < NFN; i++) {
		struct pci_function *fn = &fns[i];
		memset(fn, 0, sizeof(*fn));
		fn->name = "fuzz";
		fn->cfg[0] = 0xf4, fn->cfg[1] = 0x1a; /* vendor */
		fn->cfg[2] = (uint8_t)(0x40 + i);
		fn->cfg[0x0e] = 0;                  /* header type 0 */
		fn->cfg[0x06] = 0x10;               /* status: capability list */
		fn->cfg[0x34] = 0x40;
		fn->cfg[0x40] = 0x09, fn->cfg[0x41] = 0; /* one vendor cap */
		for (unsigned k = 0x44; k < 0x50; k++)
			fn->wmask[k] = 0xff;
		for (unsigned b = 0; b < 3; b++) {
			fn->bar[b].size = sizes[i][b];
			fn->bar[b].fn = bar_io;
			fn->bar[b].dev = &fn->bar[b];
		}
		fn->bar_moved = bar_moved;
		fn->cfg_written = cfg_written;
		fn->dev = fn;
		CHECK(pci_host_add(h, fn) == 0);
	}
	check_layout();

	struct in in = { data, size };
	for (unsigned steps = 0; in.n && steps < 512; steps++) {
		uint8_t op = (uint8_t)take(&in, 1);
		uint8_t b[8];
		uint32_t len = 1u << (op >> 2 & 3);
		switch (op & 3) {
		case 0: { /* CONFIG_ADDRESS: mostly our slots, sometimes anything */
			uint32_t a = (uint32_t)take(&in, 4);
			if (!(op & 0x80))
				a = 0x80000000u | (a & 0x3) << 11 | (a & 0x700) | (a >> 24 & 0xfc);
			memcpy(b, &a, 4);
			pci_host_cfg_io(h, (op & 0x40) ? op >> 4 & 3 : 0, b, (op & 0x40) ? len : 4, true);
			break;
		}
		case 1: { /* CONFIG_DATA write */
			uint64_t v = take(&in, 4);
			memcpy(b, &v, 8);
			pci_host_cfg_io(h, 4 + (op >> 4 & 3), b, len > 4 ? 4 : len, true);
			break;
		}
		case 2: /* CONFIG_DATA read */
			pci_host_cfg_io(h, 4 + (op >> 4 & 3), b, len > 4 ? 4 : len, false);
			break;
		default: { /* MMIO anywhere in the window */
			uint64_t off = take(&in, 3) % (MMIO_SIZE + 8);
			uint64_t v = take(&in, 8);
			memcpy(b, &v, 8);
			if (!(op & 0x40) || off + len <= MMIO_SIZE) {
				pci_host_mmio(h, off, b, len, op & 0x10);
				(void)pci_host_mmio_claims(h, off, len);
			}
		}
		}
		check_layout();
	}
	pci_host_free(h);
	return 0;
}
