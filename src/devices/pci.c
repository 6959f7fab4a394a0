#include "devices/pci.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/dev.h"
#include "core/snap.h"

/* Type 0 configuration header (PCI Local Bus 3.0, 6.1). */
#define PCI_VENDOR_ID      0x00
#define PCI_DEVICE_ID      0x02
#define PCI_COMMAND        0x04
#define PCI_STATUS         0x06
#define PCI_CLASS_PROG     0x09
#define PCI_BAR0           0x10
#define PCI_BAR_END        0x28 /* one past BAR5 */
#define PCI_ROM            0x30
#define PCI_CAP_PTR        0x34
#define PCI_INT_LINE       0x3C
#define PCI_INT_PIN        0x3D

#define PCI_CMD_IO         (1u << 0)
#define PCI_CMD_MEM        (1u << 1)
#define PCI_CMD_MASTER     (1u << 2)
#define PCI_CMD_INTX_OFF   (1u << 10)
#define PCI_CMD_WMASK      (PCI_CMD_IO | PCI_CMD_MEM | PCI_CMD_MASTER | PCI_CMD_INTX_OFF)
#define PCI_STATUS_CAPS    (1u << 4)
#define PCI_PIN_INTA       1

/* CONFIG_ADDRESS (mechanism #1): enable 31, reserved 30:24 (read 0),
 * bus 23:16, device 15:11, function 10:8, register 7:2, 1:0 read 0. */
#define CFA_ENABLE         (1u << 31)
#define CFA_MASK           (CFA_ENABLE | 0x00FFFFFCu)
#define CFA_BUS(a)         (((a) >> 16) & 0xFF)
#define CFA_SLOT(a)        (((a) >> 11) & 0x1F)
#define CFA_FUNC(a)        (((a) >> 8) & 0x7)
#define CFA_REG(a)         ((a) & 0xFC)
#define CFG_ADDR_LEN       4 /* 0xCF8..0xCFB */
#define CFG_DATA           4 /* 0xCFC..0xCFF */

/* The host bridge at 00:00.0: Red Hat's "QEMU PCIe host bridge" IDs. */
#define BRIDGE_VENDOR      0x1b36
#define BRIDGE_DEVICE      0x0008
#define CLASS_HOST_BRIDGE  0x060000

#define BAR_MIN_SIZE       4096u

struct pci_host {
	pthread_mutex_t lock; /* config space, CONFIG_ADDRESS, BAR addresses, slots */
	uint32_t cfa;         /* latched CONFIG_ADDRESS */
	uint64_t mmio_base, mmio_end; /* window [base, end) */
	/* Config writes one at a time, each with its hooks: taken before
	 * `lock` and held until the hooks ran, so hooks see the moves in the
	 * order they were made (two vCPUs moving one BAR X->0 and 0->Y must
	 * not rebind at Y, then unbind what X had and forget Y). */
	pthread_mutex_t hook_lock;
	uint64_t next;        /* bump allocator for BARs */
	struct pci_function bridge;
	struct pci_function *slot[PCI_MAX_SLOTS];
	/* Slots are filled in order and never emptied: 1..nr_slots-1 are
	 * taken, and the per-access BAR search stops there. */
	unsigned nr_slots;
};

/* Hooks to run once the lock is dropped. */
struct pending {
	struct pci_function *fn;
	uint32_t off, len;
	bool moved;
	unsigned bar;
	uint64_t old_addr, new_addr;
};

/* Config bytes are read without the lock by pci_mem_enabled(), so every
 * store the guest causes is an atomic byte store. */
static void cfg_set(struct pci_function *fn, uint32_t off, uint8_t v)
{
	__atomic_store_n(&fn->cfg[off], v, __ATOMIC_RELAXED);
}

static uint8_t cfg_get(const struct pci_function *fn, uint32_t off)
{
	return __atomic_load_n(&fn->cfg[off], __ATOMIC_RELAXED);
}

static void cfg_put32(struct pci_function *fn, uint32_t off, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		cfg_set(fn, off + i, (uint8_t)(v >> (8 * i)));
}

static uint32_t cfg_get32(const struct pci_function *fn, uint32_t off)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < 4; i++)
		v |= (uint32_t)cfg_get(fn, off + i) << (8 * i);
	return v;
}

bool pci_mem_enabled(const struct pci_function *fn)
{
	return cfg_get(fn, PCI_COMMAND) & PCI_CMD_MEM;
}

struct pci_host *pci_host_new(uint64_t mmio_base, uint64_t mmio_size)
{
	/* BARs are 32-bit: the whole window must sit below 4 GiB. */
	if (mmio_size == 0 || mmio_base > UINT32_MAX || mmio_size > (1ULL << 32) - mmio_base)
		return NULL;
	struct pci_host *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	if (pthread_mutex_init(&h->lock, NULL) != 0) {
		free(h);
		return NULL;
	}
	pthread_mutex_init(&h->hook_lock, NULL);
	h->mmio_base = mmio_base;
	h->mmio_end = mmio_base + mmio_size;
	h->next = mmio_base;

	struct pci_function *b = &h->bridge;
	b->name = "host-bridge";
	b->cfg[PCI_VENDOR_ID] = (uint8_t)BRIDGE_VENDOR;
	b->cfg[PCI_VENDOR_ID + 1] = (uint8_t)(BRIDGE_VENDOR >> 8);
	b->cfg[PCI_DEVICE_ID] = (uint8_t)BRIDGE_DEVICE;
	b->cfg[PCI_DEVICE_ID + 1] = (uint8_t)(BRIDGE_DEVICE >> 8);
	b->cfg[PCI_CLASS_PROG] = (uint8_t)CLASS_HOST_BRIDGE;
	b->cfg[PCI_CLASS_PROG + 1] = (uint8_t)(CLASS_HOST_BRIDGE >> 8);
	b->cfg[PCI_CLASS_PROG + 2] = (uint8_t)(CLASS_HOST_BRIDGE >> 16);
	h->slot[0] = b;
	return h;
}

void pci_host_free(struct pci_host *h)
{
	if (!h)
		return;
	pthread_mutex_destroy(&h->hook_lock);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

static bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

int pci_host_add(struct pci_host *h, struct pci_function *fn)
{
	uint64_t addr[PCI_NUM_BARS] = { 0 };

	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		const struct pci_bar *b = &fn->bar[i];
		if (b->size && (!is_pow2(b->size) || b->size < BAR_MIN_SIZE || !b->fn))
			return -EINVAL;
	}

	pthread_mutex_lock(&h->lock);
	unsigned s = 1;
	while (s < PCI_MAX_SLOTS && h->slot[s])
		s++;
	if (s == PCI_MAX_SLOTS) {
		pthread_mutex_unlock(&h->lock);
		return -ENOSPC;
	}
	/* Place every BAR before committing any: a refusal changes nothing. */
	uint64_t next = h->next;
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		uint64_t size = fn->bar[i].size;
		if (!size)
			continue;
		uint64_t a = (next + size - 1) & ~(size - 1);
		if (a < next || a > h->mmio_end || size > h->mmio_end - a) {
			pthread_mutex_unlock(&h->lock);
			return -ENOSPC;
		}
		addr[i] = a;
		next = a + size;
	}
	h->next = next;

	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		fn->bar[i].addr = addr[i];
		fn->bar[i].home = addr[i];
		fn->bar[i].decoded = fn->bar[i].size != 0;
		/* 32-bit, non-prefetchable memory: type bits all 0. */
		cfg_put32(fn, PCI_BAR0 + 4 * i, (uint32_t)addr[i]);
	}
	cfg_put32(fn, PCI_ROM, 0);
	fn->slot = s;
	fn->gsi = PCI_INTX_GSI_BASE + s % PCI_INTX_GSIS;
	cfg_set(fn, PCI_INT_LINE, (uint8_t)fn->gsi);
	cfg_set(fn, PCI_INT_PIN, PCI_PIN_INTA);
	h->slot[s] = fn;
	h->nr_slots = s + 1;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

/* The function CONFIG_ADDRESS selects, or NULL. Lock held. */
static struct pci_function *selected(const struct pci_host *h)
{
	uint32_t a = h->cfa;
	if (!(a & CFA_ENABLE) || CFA_BUS(a) != 0 || CFA_FUNC(a) != 0)
		return NULL;
	return h->slot[CFA_SLOT(a)];
}

/* One config byte as the guest reads it. Lock held. */
static uint8_t cfg_read8(const struct pci_function *fn, uint32_t off)
{
	if (off >= PCI_BAR0 && off < PCI_BAR_END) {
		if (!fn->bar[(off - PCI_BAR0) / 4].size)
			return 0;
	} else if (off >= PCI_ROM && off < PCI_ROM + 4) {
		return 0;
	} else if (off == PCI_STATUS) {
		uint8_t v = cfg_get(fn, off);
		return cfg_get(fn, PCI_CAP_PTR) ? (uint8_t)(v | PCI_STATUS_CAPS) : v;
	}
	return cfg_get(fn, off);
}

/* Whether BAR `bi` of `self` at [a, a+size) can be decoded: wholly inside
 * the window, and over no other BAR that is. A guest may write any address;
 * one that would land on RAM, outside the window or on another device's
 * registers (to take its doorbells) is simply not decoded. Lock held. */
static bool bar_decodable(const struct pci_host *h, const struct pci_function *self, unsigned bi, uint64_t a,
			  uint64_t size)
{
	if (a < h->mmio_base || a > h->mmio_end || size > h->mmio_end - a)
		return false;
	for (unsigned s = 1; s < h->nr_slots; s++) {
		const struct pci_function *fn = h->slot[s];
		for (unsigned j = 0; fn && j < PCI_NUM_BARS; j++) {
			const struct pci_bar *b = &fn->bar[j];
			if ((fn == self && j == bi) || !b->size || !b->decoded)
				continue;
			if (a < b->addr + b->size && b->addr < a + size)
				return false;
		}
	}
	return true;
}

/* Writes `len` bytes of `v` at `off` (all inside one dword). Lock held;
 * fills in which hooks to run. */
static void cfg_write(struct pci_host *h, struct pci_function *fn, uint32_t off, uint32_t len, uint32_t v,
		      struct pending *p)
{
	uint32_t reg = off & ~3u;

	if (reg >= PCI_BAR0 && reg < PCI_BAR_END) {
		unsigned i = (reg - PCI_BAR0) / 4;
		struct pci_bar *b = &fn->bar[i];
		if (!b->size)
			return;
		uint32_t old = cfg_get32(fn, reg), merged = old;
		for (uint32_t k = 0; k < len; k++) {
			uint32_t shift = 8 * (off - reg + k);
			merged = (merged & ~(0xFFu << shift)) | ((v >> (8 * k)) & 0xFFu) << shift;
		}
		/* Low bits below the size read 0: all ones reads back ~(size-1). */
		uint32_t val = merged & ~(b->size - 1);
		if (val != old) {
			bool was = b->decoded;
			cfg_put32(fn, reg, val);
			b->addr = val;
			b->decoded = bar_decodable(h, fn, i, val, b->size);
			*p = (struct pending){ .fn = fn, .moved = true, .bar = i, .old_addr = was ? old : 0,
					       .new_addr = b->decoded ? val : 0 };
		}
	} else if (reg == PCI_ROM) {
		/* No expansion ROM. */
	} else {
		for (uint32_t k = 0; k < len; k++) {
			uint32_t o = off + k;
			uint8_t mask;
			if (o == PCI_COMMAND)
				mask = (uint8_t)PCI_CMD_WMASK;
			else if (o == PCI_COMMAND + 1)
				mask = (uint8_t)(PCI_CMD_WMASK >> 8);
			else if (o == PCI_STATUS || o == PCI_STATUS + 1 || o == PCI_INT_PIN)
				mask = 0; /* write-1-to-clear status bits: nothing to clear */
			else if (o == PCI_INT_LINE)
				mask = 0xFF;
			else
				mask = fn->wmask[o];
			uint8_t b = (uint8_t)(v >> (8 * k));
			cfg_set(fn, o, (uint8_t)((cfg_get(fn, o) & ~mask) | (b & mask)));
		}
	}
	p->fn = fn;
	p->off = off;
	p->len = len;
}

/* A write's hooks, once `lock` is dropped, with hook_lock still held
 * from before the write. The function's hooks and `dev` do not change
 * after pci_host_add. */
static void run_hooks(const struct pending *p)
{
	if (!p->fn)
		return;
	if (p->moved && p->fn->bar_moved && p->old_addr != p->new_addr)
		p->fn->bar_moved(p->fn->dev, p->bar, p->old_addr, p->new_addr);
	if (p->fn->cfg_written)
		p->fn->cfg_written(p->fn->dev, p->off, p->len);
}

static void fill_ones(uint8_t *data, uint32_t len)
{
	memset(data, 0xFF, len);
}

void pci_host_cfg_io(void *host, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_host *h = host;

	if (offset < CFG_ADDR_LEN) {
		/* Only a whole dword at 0xCF8 is CONFIG_ADDRESS; byte and word
		 * accesses (0xCF9 as a reset port, a mechanism #2 probe) are
		 * not ours. */
		if (offset != 0 || len != 4) {
			if (!is_write)
				fill_ones(data, len);
			return;
		}
		pthread_mutex_lock(&h->lock);
		if (is_write)
			h->cfa = (uint32_t)(data[0] | data[1] << 8 | data[2] << 16 | (uint32_t)data[3] << 24) &
				 CFA_MASK;
		else
			for (unsigned i = 0; i < 4; i++)
				data[i] = (uint8_t)(h->cfa >> (8 * i));
		pthread_mutex_unlock(&h->lock);
		return;
	}

	uint64_t k = offset - CFG_DATA;
	if (k >= 4 || (len != 1 && len != 2 && len != 4) || k + len > 4) {
		if (!is_write)
			fill_ones(data, len);
		return;
	}

	struct pending p = { 0 };
	if (is_write)
		pthread_mutex_lock(&h->hook_lock);
	pthread_mutex_lock(&h->lock);
	struct pci_function *fn = selected(h);
	uint32_t off = CFA_REG(h->cfa) + (uint32_t)k; /* <= 0xFF, and off + len <= 0x100 */
	if (!fn) {
		if (!is_write)
			fill_ones(data, len);
	} else if (is_write) {
		uint32_t v = 0;
		for (uint32_t i = 0; i < len; i++)
			v |= (uint32_t)data[i] << (8 * i);
		cfg_write(h, fn, off, len, v, &p);
	} else {
		for (uint32_t i = 0; i < len; i++)
			data[i] = cfg_read8(fn, off + i);
	}
	pthread_mutex_unlock(&h->lock);
	if (is_write) {
		run_hooks(&p);
		pthread_mutex_unlock(&h->hook_lock);
	}
}

/* With the lock held: the enabled, decoding BAR holding [addr, addr+len),
 * and its function's name in *name; NULL when none does. */
static const struct pci_bar *bar_at(const struct pci_host *h, uint64_t addr, uint32_t len, const char **name)
{
	for (unsigned s = 1; s < h->nr_slots; s++) {
		const struct pci_function *fn = h->slot[s];
		if (!fn || !pci_mem_enabled(fn))
			continue;
		for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
			const struct pci_bar *b = &fn->bar[i];
			if (!b->size || !b->addr || !b->decoded || addr < b->addr)
				continue;
			uint64_t o = addr - b->addr;
			if (o < b->size && len <= b->size - o) {
				*name = fn->name;
				return b;
			}
		}
	}
	return NULL;
}

/* The BAR holding [addr, addr+len): its handler, snapshotted under the
 * lock so that it can be called without it, and the name of the function
 * that owns it (NULL when none does). */
static const char *find_bar(struct pci_host *h, uint64_t addr, uint32_t len, bus_io_fn *io, void **dev,
			    uint64_t *bar_off)
{
	const char *found = NULL;

	pthread_mutex_lock(&h->lock);
	const struct pci_bar *b = bar_at(h, addr, len, &found);
	if (b) {
		*io = b->fn;
		*dev = b->dev;
		*bar_off = addr - b->addr;
	}
	pthread_mutex_unlock(&h->lock);
	return b ? found : NULL;
}

void pci_host_mmio(void *host, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_host *h = host;
	bus_io_fn io;
	void *dev;
	uint64_t bar_off;

	if (find_bar(h, h->mmio_base + offset, len, &io, &dev, &bar_off))
		io(dev, bar_off, data, len, is_write);
	else if (!is_write)
		fill_ones(data, len);
}

uint64_t pci_host_mmio_home(void *host, uint64_t offset)
{
	struct pci_host *h = host;
	uint64_t gpa = h->mmio_base + offset;
	const char *name;

	pthread_mutex_lock(&h->lock);
	const struct pci_bar *b = bar_at(h, gpa, 1, &name);
	uint64_t home = b ? b->home + (gpa - b->addr) : gpa;
	pthread_mutex_unlock(&h->lock);
	return home;
}

const char *pci_host_mmio_claims(void *host, uint64_t offset, uint32_t len)
{
	struct pci_host *h = host;
	bus_io_fn io;
	void *dev;
	uint64_t bar_off;

	return find_bar(h, h->mmio_base + offset, len, &io, &dev, &bar_off);
}

/* ---- snapshots ---------------------------------------------------------- */

/* Version 2 adds which BARs decode: a BAR the guest wrote over another
 * (or one left where another has since moved away) holds an address it
 * does not decode, so config space alone does not say which of two BARs
 * on one address answers. */
#define PCI_SNAP_VERSION 2

int pci_host_save(struct vdev *d, struct snap_writer *w)
{
	struct pci_host *h = d->impl;

	pthread_mutex_lock(&h->lock);
	snap_begin(w, d->id, d->kind, PCI_SNAP_VERSION);
	snap_put_u32(w, h->cfa);
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
		const struct pci_function *fn = h->slot[s];
		snap_put_bool(w, fn != NULL);
		if (!fn)
			continue;
		uint8_t cfg[PCI_CFG_SIZE];
		for (unsigned i = 0; i < PCI_CFG_SIZE; i++)
			cfg[i] = cfg_get(fn, i);
		snap_put(w, cfg, sizeof(cfg));
		uint8_t decoded = 0;
		for (unsigned i = 0; i < PCI_NUM_BARS; i++)
			decoded |= (uint8_t)(fn->bar[i].size && fn->bar[i].decoded) << i;
		snap_put_u8(w, decoded);
	}
	snap_end(w);
	pthread_mutex_unlock(&h->lock);
	return 0;
}

/* One write as the guest makes it through 0xCFC: the same masks, BAR
 * checks and hooks (doorbells follow a BAR). */
static void guest_write(struct pci_host *h, struct pci_function *fn, uint32_t off, uint32_t len, uint32_t v)
{
	struct pending p = { 0 };

	pthread_mutex_lock(&h->hook_lock);
	pthread_mutex_lock(&h->lock);
	cfg_write(h, fn, off, len, v, &p);
	pthread_mutex_unlock(&h->lock);
	run_hooks(&p);
	pthread_mutex_unlock(&h->hook_lock);
}

static uint32_t ld32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Stops BAR `bi` decoding where it is, as a move to an address it cannot
 * decode would: its doorbells go with it. */
static void undecode(struct pci_host *h, struct pci_function *fn, unsigned bi)
{
	pthread_mutex_lock(&h->hook_lock);
	pthread_mutex_lock(&h->lock);
	struct pci_bar *b = &fn->bar[bi];
	struct pending p = { .fn = fn, .moved = true, .bar = bi, .old_addr = b->decoded ? b->addr : 0,
			     .off = PCI_BAR0 + 4 * bi, .len = 4 };
	b->decoded = false;
	pthread_mutex_unlock(&h->lock);
	run_hooks(&p);
	pthread_mutex_unlock(&h->hook_lock);
}

/* Puts the moved BARs back: all out of the way first (as a guest sizing
 * them, so two that swapped places never overlap on the way), then those
 * that decoded, so that each decodes again, then the rest. A value the guest's
 * own write could not have left, or a decoding BAR this VM cannot decode
 * (outside the window, over another), is refused. */
static int restore_bars(struct pci_host *h, struct snap_reader *r, const uint8_t *const cfg[],
			const uint8_t decoded[], bool have_decoded)
{
	for (unsigned pass = 0; pass < 3; pass++)
		for (unsigned s = 1; s < PCI_MAX_SLOTS; s++) {
			struct pci_function *fn = h->slot[s];
			for (unsigned i = 0; fn && i < PCI_NUM_BARS; i++) {
				uint32_t off = PCI_BAR0 + 4 * i, want = ld32(cfg[s] + off);
				bool dec = !have_decoded || (decoded[s] >> i & 1);
				/* Pass 0 also moves out a BAR that stays put but must
				 * not decode: one that decodes may need its place. */
				bool here = want == cfg_get32(fn, off);
				if (!fn->bar[i].size || (pass == 0 && here && dec) || (pass > 0 && here) ||
				    (pass == 1 && !dec) || (pass == 2 && dec))
					continue;
				guest_write(h, fn, off, 4, pass == 0 ? 0xFFFFFFFFu : want);
				if (pass && cfg_get32(fn, off) != want)
					return snap_fail(r, "slot %u BAR%u: 0x%08x is not a value the BAR can hold", s, i,
							 want);
			}
		}
	if (!have_decoded)
		return 0;
	for (unsigned s = 1; s < PCI_MAX_SLOTS; s++)
		for (unsigned i = 0; h->slot[s] && i < PCI_NUM_BARS; i++) {
			struct pci_function *fn = h->slot[s];
			bool want = decoded[s] >> i & 1;
			if (!fn->bar[i].size) {
				if (want)
					return snap_fail(r, "slot %u BAR%u: decoding in the snapshot, but not implemented", s,
							 i);
				continue;
			}
			if (want && !fn->bar[i].decoded)
				return snap_fail(r, "slot %u BAR%u: decoding at 0x%08x in the snapshot, which is outside "
						    "the window or over another BAR here",
						 s, i, cfg_get32(fn, PCI_BAR0 + 4 * i));
			if (!want && fn->bar[i].decoded)
				undecode(h, fn, i);
		}
	return 0;
}

int pci_host_restore(struct vdev *d, struct snap_reader *r)
{
	struct pci_host *h = d->impl;
	const uint8_t *cfg[PCI_MAX_SLOTS] = { 0 };
	uint8_t decoded[PCI_MAX_SLOTS] = { 0 };
	uint32_t version = 0;

	if (snap_open_section(r, d->id, d->kind, PCI_SNAP_VERSION, &version) < 0)
		return -1;
	uint32_t cfa = snap_get_u32(r);
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
		bool present = snap_get_bool(r);
		if (snap_error(r)[0])
			return -1;
		/* The function set does not change after the build: this VM's
		 * builder made it from the same config. */
		if (present != (h->slot[s] != NULL))
			return snap_fail(r, "slot %u is %s in the snapshot but %s in this VM", s,
					 present ? "used" : "empty", h->slot[s] ? "used" : "empty");
		if (present && !(cfg[s] = snap_get_blob(r, PCI_CFG_SIZE)))
			return -1;
		if (present && version >= 2)
			decoded[s] = snap_get_u8(r);
		if (snap_error(r)[0])
			return -1;
		/* Vendor, device and subsystem IDs say which function it is. */
		if (present && (ld32(cfg[s]) != cfg_get32(h->slot[s], 0) || ld32(cfg[s] + 0x2c) != cfg_get32(h->slot[s], 0x2c)))
			return snap_fail(r, "slot %u holds %08x in the snapshot, %08x (%s) in this VM", s, ld32(cfg[s]),
					 cfg_get32(h->slot[s], 0), h->slot[s]->name);
	}
	if (snap_left(r) != 0)
		return snap_fail(r, "%zu bytes after the last slot", snap_left(r));
	if (cfa & ~CFA_MASK)
		return snap_fail(r, "CONFIG_ADDRESS 0x%08x has reserved bits set", cfa);

	if (restore_bars(h, r, cfg, decoded, version >= 2) < 0)
		return -1;
	/* Then every other byte the guest can write: the command register,
	 * the interrupt line, capability bits (MSI-X enable and mask). */
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
		struct pci_function *fn = h->slot[s];
		if (!fn)
			continue;
		guest_write(h, fn, PCI_COMMAND, 2, (uint32_t)cfg[s][PCI_COMMAND] | (uint32_t)cfg[s][PCI_COMMAND + 1] << 8);
		guest_write(h, fn, PCI_INT_LINE, 1, cfg[s][PCI_INT_LINE]);
		for (uint32_t o = PCI_CAP_PTR + 4; o < PCI_CFG_SIZE; o++)
			if (fn->wmask[o] && o != PCI_INT_LINE && o != PCI_INT_PIN)
				guest_write(h, fn, o, 1, cfg[s][o]);
	}
	pthread_mutex_lock(&h->lock);
	h->cfa = cfa;
	pthread_mutex_unlock(&h->lock);
	return 0;
}
