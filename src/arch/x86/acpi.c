#include "arch/x86/acpi.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/aml.h"
#include "arch/x86/layout.h"

/* Tables are laid out byte by byte with explicit little-endian stores rather
 * than packed structs: the offsets below are the spec's, checkable at a
 * glance, and nothing depends on the host's alignment or byte order. */

/* --- Common table header (ACPI 6.5, 5.2.6) --------------------------- */
#define HDR_LEN          36
#define HDR_SIG          0
#define HDR_LENGTH       4
#define HDR_REVISION     8
#define HDR_CHECKSUM     9
#define HDR_OEM_ID       10
#define HDR_OEM_TABLE_ID 16
#define HDR_OEM_REV      24
#define HDR_CREATOR_ID   28
#define HDR_CREATOR_REV  32

#define ACPI_OEM_REVISION     1
#define ACPI_CREATOR_REVISION 1

/* --- RSDP (5.2.5.3) -------------------------------------------------- */
#define RSDP_LEN          36
#define RSDP_V1_LEN       20 /* the part the first checksum covers */
#define RSDP_CHECKSUM     8
#define RSDP_OEM_ID       9
#define RSDP_REVISION     15
#define RSDP_RSDT         16
#define RSDP_LENGTH       20
#define RSDP_XSDT         24
#define RSDP_EXT_CHECKSUM 32

/* --- FADT (5.2.9), revision 6.5 -------------------------------------- */
#define FADT_LEN             276
#define FADT_REVISION        6
#define FADT_MINOR_REVISION  5
#define FADT_FIRMWARE_CTRL   36
#define FADT_DSDT            40
#define FADT_PM_PROFILE      45
#define FADT_SCI_INT         46
#define FADT_SMI_CMD         48
#define FADT_PM1A_EVT_BLK    56
#define FADT_PM1A_CNT_BLK    64
#define FADT_PM1_EVT_LEN     88
#define FADT_PM1_CNT_LEN     89
#define FADT_P_LVL2_LAT      96
#define FADT_P_LVL3_LAT      98
#define FADT_CENTURY         108
#define FADT_IAPC_BOOT_ARCH  109
#define FADT_FLAGS           112
#define FADT_RESET_REG       116
#define FADT_RESET_VALUE     128
#define FADT_MINOR_VERSION   131
#define FADT_X_DSDT          140
#define FADT_X_PM1A_EVT_BLK  148
#define FADT_X_PM1A_CNT_BLK  172
#define FADT_HYPERVISOR_ID   268

/* FADT Flags (table 5.10). */
#define FADT_F_WBINVD        (1u << 0)
#define FADT_F_PROC_C1       (1u << 2)
#define FADT_F_PWR_BUTTON    (1u << 4) /* set: no fixed power button */
#define FADT_F_SLP_BUTTON    (1u << 5) /* set: no fixed sleep button */
#define FADT_F_FIX_RTC       (1u << 6) /* set: no RTC wake status in PM1 */
#define FADT_F_RESET_REG_SUP (1u << 10)

/* IA-PC boot architecture flags (table 5.11). */
#define IAPC_LEGACY_DEVICES   (1u << 0)
#define IAPC_8042             (1u << 1)
#define IAPC_VGA_NOT_PRESENT  (1u << 2)
#define IAPC_CMOS_RTC_ABSENT  (1u << 5)

#define PM1_EVT_LEN 4 /* PM1 status (2) + enable (2) */
#define PM1_CNT_LEN 2

/* Generic Address Structure (5.2.3.2). */
#define GAS_LEN         12
#define GAS_SYSTEM_IO   1
#define GAS_ACCESS_BYTE 1
#define GAS_ACCESS_WORD 2

/* --- FACS (5.2.10) --------------------------------------------------- */
#define FACS_LEN     64
#define FACS_ALIGN   64
#define FACS_VERSION 2
#define FACS_VERSION_OFF 32

/* --- MADT (5.2.12), revision 6 for ACPI 6.5 --------------------------- */
#define MADT_REVISION     6
#define MADT_LAPIC_ADDR   36
#define MADT_FLAGS        40
#define MADT_ENTRIES      44
#define MADT_PCAT_COMPAT  (1u << 0)
#define MADT_LAPIC        0 /* Processor Local APIC, 8 bytes */
#define MADT_IOAPIC       1 /* I/O APIC, 12 bytes */
#define MADT_ISO          2 /* Interrupt Source Override, 10 bytes */
#define MADT_LAPIC_NMI    4 /* Local APIC NMI, 6 bytes */
#define MADT_LAPIC_ENABLED 1u
/* MPS INTI flags: polarity bits 1:0, trigger mode bits 3:2. */
#define MPS_ACTIVE_HIGH   0x1
#define MPS_LEVEL         (0x3 << 2)
#define ISA_IRQ_PIT       0
#define GSI_PIT           2 /* the PIT is wired to IOAPIC pin 2 */
#define MADT_ALL_CPUS     0xFF
#define LINT1             1

#define XSDT_REVISION 1
#define DSDT_REVISION 2 /* 2+: AML integers are 64-bit */

#define TABLE_ALIGN 16

static void put8(uint8_t *p, size_t off, uint8_t v)
{
	p[off] = v;
}

static void put16(uint8_t *p, size_t off, uint16_t v)
{
	p[off] = (uint8_t)v;
	p[off + 1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, size_t off, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[off + i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, size_t off, uint64_t v)
{
	for (unsigned i = 0; i < 8; i++)
		p[off + i] = (uint8_t)(v >> (8 * i));
}

static uint8_t checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)-sum;
}

/* The area being filled: a host copy of the guest range. */
struct area {
	uint8_t *buf;
	size_t used;
};

/* Reserves `len` bytes aligned to `align`; offset into the area, or
 * (size_t)-1 if the area is full. */
static size_t area_alloc(struct area *ar, size_t len, size_t align)
{
	size_t off = (ar->used + align - 1) & ~(align - 1);
	if (off > LAYOUT_ACPI_SIZE || len > LAYOUT_ACPI_SIZE - off)
		return (size_t)-1;
	ar->used = off + len;
	return off;
}

static uint64_t gpa_of(size_t off)
{
	return LAYOUT_ACPI_START + off;
}

static void header(uint8_t *t, const char sig[4], uint32_t len, uint8_t rev)
{
	memcpy(t + HDR_SIG, sig, 4);
	put32(t, HDR_LENGTH, len);
	put8(t, HDR_REVISION, rev);
	memcpy(t + HDR_OEM_ID, ACPI_OEM_ID, 6);
	memcpy(t + HDR_OEM_TABLE_ID, ACPI_OEM_TABLE_ID, 8);
	put32(t, HDR_OEM_REV, ACPI_OEM_REVISION);
	memcpy(t + HDR_CREATOR_ID, ACPI_CREATOR_ID, 4);
	put32(t, HDR_CREATOR_REV, ACPI_CREATOR_REVISION);
}

/* Call last, once the whole table is written. */
static void seal(uint8_t *t, uint32_t len)
{
	t[HDR_CHECKSUM] = 0;
	t[HDR_CHECKSUM] = checksum(t, len);
}

static void gas_io(uint8_t *p, size_t off, uint8_t bits, uint8_t access, uint16_t port)
{
	put8(p, off + 0, GAS_SYSTEM_IO);
	put8(p, off + 1, bits);
	put8(p, off + 2, 0); /* bit offset */
	put8(p, off + 3, access);
	put64(p, off + 4, port);
}

static void build_fadt(uint8_t *t, uint64_t dsdt, uint64_t facs)
{
	header(t, "FACP", FADT_LEN, FADT_REVISION);
	put32(t, FADT_FIRMWARE_CTRL, (uint32_t)facs);
	put32(t, FADT_DSDT, (uint32_t)dsdt);
	put64(t, FADT_X_DSDT, dsdt);
	put8(t, FADT_PM_PROFILE, 0); /* unspecified */
	put16(t, FADT_SCI_INT, IRQ_ACPI_SCI);
	/* SMI_CMD 0: there is no SMM and the machine is always in ACPI mode;
	 * the OS must not try to switch (ACPI_ENABLE/DISABLE stay 0). */
	put32(t, FADT_SMI_CMD, 0);

	put32(t, FADT_PM1A_EVT_BLK, PORT_ACPI_PM1_EVT);
	put32(t, FADT_PM1A_CNT_BLK, PORT_ACPI_PM1_CNT);
	put8(t, FADT_PM1_EVT_LEN, PM1_EVT_LEN);
	put8(t, FADT_PM1_CNT_LEN, PM1_CNT_LEN);
	/* The X_ forms describe the same blocks; ACPICA checks that their bit
	 * widths match the 32-bit lengths. PM1 status/enable and control are
	 * 16-bit registers. */
	gas_io(t, FADT_X_PM1A_EVT_BLK, PM1_EVT_LEN * 8, GAS_ACCESS_WORD, PORT_ACPI_PM1_EVT);
	gas_io(t, FADT_X_PM1A_CNT_BLK, PM1_CNT_LEN * 8, GAS_ACCESS_WORD, PORT_ACPI_PM1_CNT);
	/* No PM timer, no GPE blocks, no PM2: their fields stay 0. */

	/* Latencies above 100 / 1000 us mean "C2 / C3 not supported". */
	put16(t, FADT_P_LVL2_LAT, 101);
	put16(t, FADT_P_LVL3_LAT, 1001);

	/* No VGA. An 8042 (devices/i8042): without this flag Linux marks the
	 * controller firmware-absent and, when PNP finds no PNP0303 either
	 * (i8042.nopnp, Firecracker's command line), never probes it.
	 * LEGACY_DEVICES clear: no ISA devices to enumerate beyond the ones the
	 * OS assumes. CMOS RTC present (bit clear). */
	put8(t, FADT_CENTURY, 0x32); /* CMOS index of the century (devices/rtc_cmos) */
	put16(t, FADT_IAPC_BOOT_ARCH, IAPC_VGA_NOT_PRESENT | IAPC_8042);

	/* WBINVD works and HLT (C1) is supported on every vCPU. There is no
	 * fixed power or sleep button and the PM1 block has no RTC wake
	 * status, so those are declared absent; the reset register is real. */
	put32(t, FADT_FLAGS,
	      FADT_F_WBINVD | FADT_F_PROC_C1 | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON | FADT_F_FIX_RTC |
		      FADT_F_RESET_REG_SUP);
	gas_io(t, FADT_RESET_REG, 8, GAS_ACCESS_BYTE, PORT_ACPI_RESET);
	put8(t, FADT_RESET_VALUE, ACPI_RESET_VALUE);
	put8(t, FADT_MINOR_VERSION, FADT_MINOR_REVISION);
	memcpy(t + FADT_HYPERVISOR_ID, "VIGIL   ", 8);
	seal(t, FADT_LEN);
}

static void build_facs(uint8_t *t)
{
	/* Required when not hardware-reduced. No S4BIOS, no wake vector (no
	 * sleep states but S5), global lock unused by our AML. */
	memcpy(t, "FACS", 4);
	put32(t, 4, FACS_LEN);
	put8(t, FACS_VERSION_OFF, FACS_VERSION);
}

#define PCI_SLOTS       32
#define PRT_ENTRIES     (PCI_SLOTS - 1) /* slots 1-31; 0 is the host bridge */
#define PRT_ALL_FUNCS   0xFFFF           /* _PRT address: any function of the slot */
#define PRT_PIN_INTA    0
#define PCI_IO_HOLE_END (PORT_PCI_CONF + PORT_PCI_CONF_LEN - 1)

/* \_SB.PCI0: the PCI root bridge. Without it in the DSDT, Linux (with
 * ACPI) never scans bus 0. _CRS gives the bridge bus 0, the config ports as
 * its own, all other ports and the 32-bit MMIO window as windows for its
 * devices; _PRT wires each slot's INTA to a GSI. Linux takes a _PRT entry
 * whose source is 0 as a hard-wired GSI, level-triggered and active low; no
 * MADT override is needed (overrides only remap ISA IRQs 0-15). */
static void build_pci0(struct aml *a, const struct acpi_config *cfg)
{
	size_t dev = aml_device_begin(a, "PCI0");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0A03");
	aml_name(a, "_UID");
	aml_integer(a, 0);
	aml_name(a, "_SEG");
	aml_integer(a, 0);
	aml_name(a, "_BBN");
	aml_integer(a, 0);
	/* No _ADR: a device has a _HID or an _ADR, not both (ACPI 6.5, 6.1.5). */

	aml_name(a, "_CRS");
	size_t crs = aml_restemplate_begin(a);
	aml_res_word_bus_number(a, 0, 0);
	aml_res_io16(a, PORT_PCI_CONF, PORT_PCI_CONF, 1, PORT_PCI_CONF_LEN);
	aml_res_word_io(a, 0, PORT_PCI_CONF - 1);
	aml_res_word_io(a, PCI_IO_HOLE_END + 1, 0xFFFF);
	aml_res_dword_memory(a, (uint32_t)cfg->pci_mmio_base,
			     (uint32_t)(cfg->pci_mmio_base + cfg->pci_mmio_size - 1));
	aml_restemplate_end(a, crs);

	/* Entries: {Address, Pin, Source, Source Index}; Source 0 means the
	 * Source Index is a GSI. */
	aml_name(a, "_PRT");
	size_t prt = aml_package_begin(a, PRT_ENTRIES);
	for (unsigned slot = 1; slot < PCI_SLOTS; slot++) {
		size_t e = aml_package_begin(a, 4);
		aml_integer(a, (uint64_t)slot << 16 | PRT_ALL_FUNCS);
		aml_integer(a, PRT_PIN_INTA);
		aml_integer(a, 0);
		aml_integer(a, IRQ_PCI_INTX_BASE + slot % IRQ_PCI_INTX_COUNT);
		aml_end(a, e);
	}
	aml_end(a, prt);
	aml_end(a, dev);
}

/* The i8042's keyboard port. Linux's i8042 PNP driver binds PNP0303 and
 * takes the data and command ports and the IRQ from _CRS; with no PS/2
 * mouse device (PNP0F13) beside it, it sets i8042.noaux and never probes
 * for a mouse. */
static void build_kbd(struct aml *a)
{
	size_t dev = aml_device_begin(a, "KBD");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0303");
	aml_name(a, "_CRS");
	size_t crs = aml_restemplate_begin(a);
	aml_res_io16(a, PORT_I8042_DATA, PORT_I8042_DATA, 1, 1);
	aml_res_io16(a, PORT_I8042_CMD, PORT_I8042_CMD, 1, 1);
	aml_res_irq_noflags(a, IRQ_KBD);
	aml_restemplate_end(a, crs);
	aml_end(a, dev);
}

/* The CMOS RTC (devices/rtc_cmos). Linux's rtc-cmos binds PNP0B00 from
 * ACPI and takes its ports and IRQ from _CRS; without the device it falls
 * back to a platform device at the fixed ports (add_rtc_cmos()). */
static void build_rtc(struct aml *a)
{
	size_t dev = aml_device_begin(a, "RTC");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0B00");
	aml_name(a, "_CRS");
	size_t crs = aml_restemplate_begin(a);
	aml_res_io16(a, PORT_RTC, PORT_RTC, 1, PORT_RTC_LEN);
	aml_res_irq_noflags(a, IRQ_RTC);
	aml_restemplate_end(a, crs);
	aml_end(a, dev);
}

/* The DSDT body: \_S5_, the pvpanic device, the PCI root bridge, the
 * keyboard controller and the RTC. */
static long build_dsdt_aml(uint8_t *buf, size_t cap, const struct acpi_config *cfg)
{
	struct aml a;
	aml_init(&a, buf, cap);

	/* S5 soft-off: {SLP_TYPa, SLP_TYPb, reserved, reserved}; the OS
	 * writes SLP_TYPa | SLP_EN into PM1a_CNT to power off. */
	aml_name(&a, "_S5");
	size_t pkg = aml_package_begin(&a, 4);
	aml_integer(&a, ACPI_SLP_TYP_S5);
	aml_integer(&a, ACPI_SLP_TYP_S5);
	aml_integer(&a, 0);
	aml_integer(&a, 0);
	aml_end(&a, pkg);

	/* pvpanic: Linux's pvpanic driver matches QEMU0001 and takes its
	 * one-byte I/O port from _CRS. */
	size_t sb = aml_scope_begin(&a, "\\_SB");
	size_t dev = aml_device_begin(&a, "PEVT");
	aml_name(&a, "_HID");
	aml_string(&a, "QEMU0001");
	aml_name(&a, "_CRS");
	size_t crs = aml_restemplate_begin(&a);
	aml_res_io16(&a, PORT_PVPANIC, PORT_PVPANIC, 1, 1);
	aml_restemplate_end(&a, crs);
	aml_name(&a, "_STA");
	aml_integer(&a, 0x0F); /* present, enabled, shown, functioning */
	aml_end(&a, dev);
	if (cfg->pci)
		build_pci0(&a, cfg);
	build_kbd(&a);
	build_rtc(&a);
	aml_end(&a, sb);

	return aml_finish(&a);
}

static size_t madt_len(unsigned ncpus)
{
	return MADT_ENTRIES + (size_t)ncpus * 8 + 12 + 2 * 10 + 6;
}

static void madt_iso(uint8_t *e, uint8_t irq, uint32_t gsi, uint16_t flags)
{
	put8(e, 0, MADT_ISO);
	put8(e, 1, 10);
	put8(e, 2, 0); /* bus: ISA */
	put8(e, 3, irq);
	put32(e, 4, gsi);
	put16(e, 8, flags);
}

static void build_madt(uint8_t *t, const struct acpi_config *cfg)
{
	uint32_t len = (uint32_t)madt_len(cfg->ncpus);
	uint8_t *e = t + MADT_ENTRIES;

	header(t, "APIC", len, MADT_REVISION);
	put32(t, MADT_LAPIC_ADDR, (uint32_t)cfg->lapic_addr);
	put32(t, MADT_FLAGS, MADT_PCAT_COMPAT); /* 8259 PICs present */

	for (unsigned i = 0; i < cfg->ncpus; i++, e += 8) {
		put8(e, 0, MADT_LAPIC);
		put8(e, 1, 8);
		put8(e, 2, (uint8_t)i); /* ACPI processor UID */
		put8(e, 3, (uint8_t)i); /* APIC ID */
		put32(e, 4, MADT_LAPIC_ENABLED);
	}

	put8(e, 0, MADT_IOAPIC);
	put8(e, 1, 12);
	put8(e, 2, cfg->ioapic_id);
	put8(e, 3, 0);
	put32(e, 4, (uint32_t)cfg->ioapic_addr);
	put32(e, 8, 0); /* GSI base */
	e += 12;

	/* The PIT's IRQ0 arrives on IOAPIC pin 2; ISA semantics (edge, active
	 * high) are the bus default, so flags are "conforms", as on QEMU. */
	madt_iso(e, ISA_IRQ_PIT, GSI_PIT, 0);
	e += 10;
	/* The SCI is level-triggered active-high, unlike an ISA default. */
	madt_iso(e, IRQ_ACPI_SCI, IRQ_ACPI_SCI, MPS_LEVEL | MPS_ACTIVE_HIGH);
	e += 10;

	/* Every CPU's LINT1 is the NMI input, as on a PC. */
	put8(e, 0, MADT_LAPIC_NMI);
	put8(e, 1, 6);
	put8(e, 2, MADT_ALL_CPUS);
	put16(e, 3, 0);
	put8(e, 5, LINT1);

	seal(t, len);
}

static void build_rsdp(uint8_t *p, uint64_t xsdt)
{
	memcpy(p, "RSD PTR ", 8);
	memcpy(p + RSDP_OEM_ID, ACPI_OEM_ID, 6);
	put8(p, RSDP_REVISION, 2); /* ACPI 2.0+: has XsdtAddress */
	put32(p, RSDP_RSDT, 0);    /* XSDT only */
	put32(p, RSDP_LENGTH, RSDP_LEN);
	put64(p, RSDP_XSDT, xsdt);
	p[RSDP_CHECKSUM] = checksum(p, RSDP_V1_LEN);
	p[RSDP_EXT_CHECKSUM] = checksum(p, RSDP_LEN);
}

static int valid_config(const struct acpi_config *cfg)
{
	if (cfg->ncpus < 1 || cfg->ncpus > VIGIL_MAX_CPUS)
		return 0;
	/* The MADT holds 32-bit addresses (the 64-bit LAPIC override entry
	 * is not worth it for a fixed layout). */
	if (cfg->lapic_addr > UINT32_MAX || cfg->ioapic_addr > UINT32_MAX)
		return 0;
	/* One APIC ID space: keep the IOAPIC clear of the CPUs. */
	if (cfg->ioapic_id < cfg->ncpus)
		return 0;
	/* The PCI window goes in a DWordMemory descriptor. */
	if (cfg->pci && (cfg->pci_mmio_size == 0 || cfg->pci_mmio_base > UINT32_MAX ||
			 cfg->pci_mmio_size > (1ULL << 32) - cfg->pci_mmio_base))
		return 0;
	return 1;
}

int acpi_build(const struct gmem *m, const struct acpi_config *cfg, uint64_t *rsdp)
{
	if (!valid_config(cfg))
		return -EINVAL;
	if (!gmem_valid(m, LAYOUT_ACPI_START, LAYOUT_ACPI_SIZE))
		return -EFAULT;

	struct area ar = { .buf = calloc(1, LAYOUT_ACPI_SIZE) };
	if (!ar.buf)
		return -ENOMEM;
	int ret = -ENOSPC;

	/* The RSDP first, at the start of the area: 16-byte aligned inside
	 * 0xE0000-0xFFFFF, where an OS without a pointer scans for it. */
	size_t rsdp_off = area_alloc(&ar, RSDP_LEN, TABLE_ALIGN);
	size_t xsdt_off = area_alloc(&ar, HDR_LEN + 2 * 8, TABLE_ALIGN);
	size_t fadt_off = area_alloc(&ar, FADT_LEN, TABLE_ALIGN);
	size_t facs_off = area_alloc(&ar, FACS_LEN, FACS_ALIGN);
	size_t madt_off = area_alloc(&ar, madt_len(cfg->ncpus), TABLE_ALIGN);
	size_t dsdt_off = area_alloc(&ar, HDR_LEN, TABLE_ALIGN);
	if (rsdp_off == (size_t)-1 || xsdt_off == (size_t)-1 || fadt_off == (size_t)-1 ||
	    facs_off == (size_t)-1 || madt_off == (size_t)-1 || dsdt_off == (size_t)-1)
		goto out;

	/* The DSDT goes last so its AML can take the rest of the area. */
	long aml_len = build_dsdt_aml(ar.buf + dsdt_off + HDR_LEN, LAYOUT_ACPI_SIZE - ar.used, cfg);
	if (aml_len < 0) {
		ret = (int)aml_len;
		goto out;
	}
	uint32_t dsdt_len = HDR_LEN + (uint32_t)aml_len;
	ar.used = dsdt_off + dsdt_len;
	header(ar.buf + dsdt_off, "DSDT", dsdt_len, DSDT_REVISION);
	seal(ar.buf + dsdt_off, dsdt_len);

	build_facs(ar.buf + facs_off);
	build_fadt(ar.buf + fadt_off, gpa_of(dsdt_off), gpa_of(facs_off));
	build_madt(ar.buf + madt_off, cfg);

	uint8_t *xsdt = ar.buf + xsdt_off;
	header(xsdt, "XSDT", HDR_LEN + 2 * 8, XSDT_REVISION);
	put64(xsdt, HDR_LEN, gpa_of(fadt_off));
	put64(xsdt, HDR_LEN + 8, gpa_of(madt_off));
	seal(xsdt, HDR_LEN + 2 * 8);

	build_rsdp(ar.buf + rsdp_off, gpa_of(xsdt_off));

	/* Only the tables: the rest of the area is fresh guest RAM, zero
	 * already (the machine is built once; a reset ends the process), and
	 * writing it would fault in 32 pages for nothing. The buffer is as
	 * large as the area but only the pages the tables use get touched. */
	ret = gmem_write(m, LAYOUT_ACPI_START, ar.buf, ar.used);
	if (ret == 0)
		*rsdp = gpa_of(rsdp_off);
out:
	free(ar.buf);
	return ret;
}
