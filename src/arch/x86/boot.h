/* boot — puts a Linux kernel into guest memory and says how to enter it.
 * Two protocols: a bzImage through the Linux x86 64-bit boot protocol
 * (Documentation/arch/x86/boot.rst), and an ELF vmlinux through its PVH entry
 * note (Xen's HVM direct boot ABI). Both write the command line, place the
 * initrd, hand over the e820 map and the ACPI RSDP, and build the CPU state
 * of the boot vCPU, which the backend loads into its registers. */
#ifndef VIGIL_ARCH_X86_BOOT_H
#define VIGIL_ARCH_X86_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "core/gmem.h"

struct boot_config {
	const uint8_t *kernel;
	size_t kernel_len;
	const uint8_t *initrd; /* NULL for none */
	size_t initrd_len;
	const char *cmdline;
	uint64_t rsdp; /* guest address of the ACPI RSDP */
};

/* One x86 segment register as the CPU caches it. */
struct x86_seg {
	uint64_t base;
	uint32_t limit;
	uint16_t selector;
	uint8_t type, present, dpl, db, s, l, g;
};

/* The boot vCPU's state at the kernel's first instruction. */
struct x86_boot_cpu {
	uint64_t rip, rsi, rbx, rsp, rflags;
	uint64_t cr0, cr3, cr4, efer;
	struct x86_seg cs, ds; /* ds is also loaded into es, fs, gs, ss */
	uint64_t gdt_base, idt_base;
	uint16_t gdt_limit, idt_limit;
};

enum boot_kind { BOOT_BZIMAGE, BOOT_PVH };

struct boot_result {
	enum boot_kind kind;
	struct x86_boot_cpu cpu;
	uint64_t kernel_end; /* first byte above the loaded kernel */
	uint64_t initrd_addr;
};

/* Loads the kernel (format detected from its bytes) and everything it needs.
 * Returns 0, or -1 with a one-line reason in err. */
int boot_load(const struct gmem *m, const struct boot_config *cfg, struct boot_result *res, char *err,
	      size_t errlen);

/* --- shared by the two protocols (boot_common.c) --- */
int boot_bzimage_load(const struct gmem *m, const struct boot_config *cfg, struct boot_result *res,
		      char *err, size_t errlen);
int boot_pvh_load(const struct gmem *m, const struct boot_config *cfg, struct boot_result *res,
		  char *err, size_t errlen);
int boot_write_cmdline(const struct gmem *m, const char *cmdline, size_t max, char *err, size_t errlen);
int boot_place_initrd(const struct gmem *m, const struct boot_config *cfg, uint64_t above, uint64_t limit,
		      uint64_t *addr, char *err, size_t errlen);
void boot_cpu_long_mode(const struct gmem *m, struct x86_boot_cpu *cpu);
void boot_cpu_protected_mode(const struct gmem *m, struct x86_boot_cpu *cpu);
uint64_t boot_low_ram_end(const struct gmem *m);

#endif
