/* acpi — the guest's static ACPI tables (ACPI 6.5): RSDP, XSDT, FADT, FACS,
 * DSDT and MADT, written into the BIOS area of guest memory before the first
 * vCPU runs. They describe the CPUs and interrupt controllers (MADT), the
 * fixed PM hardware at PORT_ACPI_PM — PM1a event/control, reset register,
 * SCI — (FADT), S5 soft-off, the pvpanic device and, when asked, the PCI
 * root bridge with its windows and INTx routing (DSDT).
 * Used by the VM builder; the boot code hands the RSDP's address to the
 * kernel (boot_params.acpi_rsdp_addr, PVH start_info.rsdp_paddr). */
#ifndef VIGIL_ARCH_X86_ACPI_H
#define VIGIL_ARCH_X86_ACPI_H

#include <stdbool.h>
#include <stdint.h>

#include "core/gmem.h"

struct acpi_config {
	unsigned ncpus;       /* 1..VIGIL_MAX_CPUS; APIC IDs 0..ncpus-1 */
	uint64_t lapic_addr;  /* LAYOUT_LAPIC; must be below 4 GiB */
	uint64_t ioapic_addr; /* LAYOUT_IOAPIC; must be below 4 GiB */
	uint8_t ioapic_id;    /* >= ncpus: after the CPUs' APIC IDs */
	/* PCI bus 0 behind ports 0xCF8-0xCFF: a PNP0A03 root bridge \_SB.PCI0
	 * whose memory window is [pci_mmio_base, pci_mmio_base + pci_mmio_size),
	 * below 4 GiB, and whose slots 1-31 route INTA to GSI
	 * IRQ_PCI_INTX_BASE + slot % IRQ_PCI_INTX_COUNT. false: no PCI in the
	 * DSDT (Linux then never scans PCI). */
	bool pci;
	uint64_t pci_mmio_base;
	uint64_t pci_mmio_size;
	/* The fixed hardware and devices come from layout.h. */
};

/* OEM identity in every table header. */
#define ACPI_OEM_ID       "VIGIL "
#define ACPI_OEM_TABLE_ID "VIGILVM "
#define ACPI_CREATOR_ID   "VGIL"

/* Writes the tables into [LAYOUT_ACPI_START, LAYOUT_ACPI_START +
 * LAYOUT_ACPI_SIZE) through gmem, zeroing the rest of that area, and
 * returns 0 with the RSDP's guest address (LAYOUT_ACPI_START) in *rsdp.
 * Errors: -EINVAL for a bad config, -EFAULT if the area is not one RAM
 * region, -ENOSPC if the tables do not fit, -ENOMEM. Guest memory is
 * untouched on error. */
int acpi_build(const struct gmem *m, const struct acpi_config *cfg, uint64_t *rsdp);

#endif
