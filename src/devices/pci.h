/* pci — PCI bus 0 behind configuration mechanism #1 (ports 0xCF8-0xCFF):
 * a host bridge at 00:00.0, up to PCI_MAX_SLOTS single-function devices,
 * 32-bit memory BARs placed by vigil in the 32-bit MMIO window, and the
 * dispatch of MMIO accesses in that window to whichever BAR holds them
 * (so a BAR the guest moves needs no change to the VM's buses).
 * Users: the board (registers the two bus ranges), transports such as
 * virtio-pci (describe a function and its BARs). */
#ifndef VIGIL_DEVICES_PCI_H
#define VIGIL_DEVICES_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/bus.h"

#define PCI_MAX_SLOTS 32
#define PCI_NUM_BARS 6
#define PCI_CFG_SIZE 256
/* Legacy INTx: slot s, pin INTA routes to GSI PCI_INTX_GSI_BASE + (s % PCI_INTX_GSIS);
 * the DSDT's _PRT says the same (acpi.c). */
#define PCI_INTX_GSI_BASE 16
#define PCI_INTX_GSIS 8

struct pci_bar {
	uint32_t size;   /* power of two >= 4096; 0 = BAR unused */
	uint64_t addr;   /* current guest address (set by pci_host_add, moved by the guest) */
	uint64_t home;   /* the address pci_host_add gave it: what MMIO rules name */
	bus_io_fn fn;    /* handler; offset is relative to the BAR start */
	void *dev;
	bool decoded;    /* the host decodes it: wholly inside the window and over
			    no other BAR (set by pci_host_add and on every move) */
};

struct pci_function {
	const char *name;
	uint8_t cfg[PCI_CFG_SIZE];   /* config space as the guest reads it; the device fills
					the header (IDs, class, capabilities) before pci_host_add */
	uint8_t wmask[PCI_CFG_SIZE]; /* guest-writable bits beyond the standard header ones
					(command, BARs, interrupt line), e.g. in capabilities */
	struct pci_bar bar[PCI_NUM_BARS];
	/* Optional hooks, called with the host's lock released, one guest
	 * write's hooks at a time (so concurrent moves do not interleave).
	 * bar_moved's addresses are 0 for "not decoded" (a BAR sized with
	 * all ones, moved out of the window or over another BAR). */
	void (*cfg_written)(void *dev, uint32_t off, uint32_t len); /* after a guest write */
	void (*bar_moved)(void *dev, unsigned bar, uint64_t old_addr, uint64_t new_addr);
	void *dev;
	unsigned slot; /* set by pci_host_add */
	uint32_t gsi;  /* INTx GSI, set by pci_host_add */
};

struct pci_host;
struct vdev;
struct snap_writer;
struct snap_reader;

/* A host with a host bridge at slot 0; BARs are placed in [mmio_base, mmio_base + mmio_size). */
struct pci_host *pci_host_new(uint64_t mmio_base, uint64_t mmio_size);
void pci_host_free(struct pci_host *h);

/* Puts `fn` in the next free slot, assigns its BAR addresses (naturally
 * aligned), sets interrupt pin INTA and line. 0, -ENOSPC or -EINVAL. */
int pci_host_add(struct pci_host *h, struct pci_function *fn);

/* Bus handlers: ports 0xCF8..0xCFF, and the MMIO window. */
void pci_host_cfg_io(void *host, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void pci_host_mmio(void *host, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* The name of the function whose enabled BAR holds [offset, offset+len) of
 * the window, or NULL: the bus asks, so that accesses to empty window space
 * count as unclaimed and the others are reported under their device. */
const char *pci_host_mmio_claims(void *host, uint64_t offset, uint32_t len);
/* bus_home_fn of the window: an access inside a BAR the guest moved is
 * judged at that BAR's home (pci_bar.home) plus its offset in it, anything
 * else where it is. */
uint64_t pci_host_mmio_home(void *host, uint64_t offset);

/* Whether the guest has enabled memory decoding for `fn` (command bit 1). */
bool pci_mem_enabled(const struct pci_function *fn);

/* Snapshots (vdev_ops.save/restore; d->impl is the host): CONFIG_ADDRESS
 * and every function's config space. Restore refuses a snapshot whose
 * functions differ from this VM's (slots, IDs), then replays what the
 * guest wrote through the guest's own checked path: BARs the guest moved
 * (their hooks rebind doorbells), the command register, the interrupt
 * line and capability bits (MSI-X enable and mask). Run it before the
 * functions' own restores (the registry's order: the host is registered
 * first). 0 or -1 (snap error set). */
int pci_host_save(struct vdev *d, struct snap_writer *w);
int pci_host_restore(struct vdev *d, struct snap_reader *r);

#endif
