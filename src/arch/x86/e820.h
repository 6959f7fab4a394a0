/* e820 — the guest's physical memory map in the BIOS e820 format, as the
 * Linux boot protocol (boot_params.e820_table) and the PVH start info memmap
 * hand it to the kernel. Built by the x86 boot code from the gmem RAM regions;
 * nothing else needs it. */
#ifndef VIGIL_ARCH_X86_E820_H
#define VIGIL_ARCH_X86_E820_H

#include <stdint.h>

#include "core/gmem.h"

/* One entry exactly as struct boot_params lays it out (20 bytes). */
struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

#define E820_RAM      1
#define E820_RESERVED 2
#define E820_ACPI     3

/* Fills `out` with the guest's memory map: every RAM region of `m` as
 * E820_RAM, except the legacy BIOS area [LAYOUT_EBDA_START, LAYOUT_HIMEM),
 * which is always one E820_RESERVED entry (EBDA, VGA window, option ROMs and
 * the BIOS area holding the ACPI tables — where a PC keeps them and where
 * Linux looks for them). Entries are sorted by address, never overlap, and
 * adjacent RAM is merged. Returns the number of entries, or -ENOSPC if more
 * than `max` are needed. */
int e820_build(const struct gmem *m, struct e820_entry *out, unsigned max);

#endif
