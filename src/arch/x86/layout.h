/* layout — the whole x86 guest physical and port map in one place.
 * Everything that places something in the guest (boot code, table builders,
 * device registration) takes its address from here. */
#ifndef VIGIL_ARCH_X86_LAYOUT_H
#define VIGIL_ARCH_X86_LAYOUT_H

/* --- Guest physical memory ------------------------------------------- */
#define LAYOUT_GDT          0x500ULL     /* boot GDT (64-bit and PVH entry) */
#define LAYOUT_IDT          0x520ULL     /* empty boot IDT */
#define LAYOUT_PVH_INFO     0x6000ULL    /* hvm_start_info + module list */
#define LAYOUT_PVH_MEMMAP   0x6100ULL    /* hvm_memmap_table_entry[] */
#define LAYOUT_ZERO_PAGE    0x7000ULL    /* struct boot_params */
#define LAYOUT_PML4         0x9000ULL    /* identity page tables: PML4, */
#define LAYOUT_PDPT         0xA000ULL    /*   PDPT, */
#define LAYOUT_PD           0xB000ULL    /*   4 PDs of 2 MiB pages = 4 GiB */
#define LAYOUT_CMDLINE      0x20000ULL   /* kernel command line */
#define LAYOUT_CMDLINE_MAX  0x10000ULL
#define LAYOUT_EBDA_START   0x9FC00ULL   /* reserved from here to 1 MiB */
#define LAYOUT_ACPI_START   0xE0000ULL   /* RSDP and ACPI tables */
#define LAYOUT_ACPI_SIZE    0x20000ULL   /* up to 1 MiB */
#define LAYOUT_HIMEM        0x100000ULL  /* kernel loads here */
#define LAYOUT_MEM32_END    0xC0000000ULL /* RAM below the 32-bit hole */
#define LAYOUT_MEM_HIGH     0x100000000ULL /* RAM above 4 GiB */

/* --- 32-bit MMIO hole ------------------------------------------------ */
#define LAYOUT_MMIO32_START 0xC0000000ULL /* PCI BARs (next issue) */
#define LAYOUT_IOAPIC       0xFEC00000ULL
#define LAYOUT_LAPIC        0xFEE00000ULL
#define LAYOUT_KVM_TSS      0xFFFBD000ULL /* 3 pages KVM keeps for VMX */
#define LAYOUT_KVM_IDMAP    0xFFFBC000ULL /* 1 page KVM keeps for VMX */

/* --- Port I/O -------------------------------------------------------- */
#define PORT_COM1           0x3F8
#define PORT_COM1_LEN       8
#define IRQ_COM1            4
#define IRQ_KBD             1 /* i8042 keyboard port */
#define PORT_RTC            0x70 /* index 0x70, data 0x71 */
#define PORT_RTC_LEN        2
#define IRQ_RTC             8
#define PORT_I8042_DATA     0x60
#define PORT_I8042_CMD      0x64
#define PORT_PVPANIC        0x505
#define PORT_PCI_CONF       0xCF8 /* configuration mechanism #1: 0xCF8-0xCFF */
#define PORT_PCI_CONF_LEN   8
#define PORT_ACPI_PM        0x600 /* PM1a event (4), PM1a control (2), reset (1) */
#define PORT_ACPI_PM_LEN    0x10
#define PORT_ACPI_PM1_EVT   (PORT_ACPI_PM + 0x0)
#define PORT_ACPI_PM1_CNT   (PORT_ACPI_PM + 0x4)
#define PORT_ACPI_RESET     (PORT_ACPI_PM + 0x8)
#define ACPI_RESET_VALUE    0x01
#define ACPI_SLP_TYP_S5     5    /* the value _S5 hands to PM1a_CNT.SLP_TYP */
#define IRQ_ACPI_SCI        9
/* PCI INTx: slot s, pin INTA is wired to GSI IRQ_PCI_INTX_BASE + s %
 * IRQ_PCI_INTX_COUNT (the DSDT's _PRT). Same values as devices/pci.h's
 * PCI_INTX_GSI_BASE / PCI_INTX_GSIS, which must stay arch-free. */
#define IRQ_PCI_INTX_BASE   16
#define IRQ_PCI_INTX_COUNT  8

#define VIGIL_MAX_CPUS      64

#endif
