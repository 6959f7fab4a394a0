/* long_mode — the 32-bit → 64-bit switch both of vigil-metal's entries make
 * (boot.S for the boot CPU, smp_tramp.S for each application processor),
 * as assembler macros so the two set the same bits. Both use the same GDT
 * layout: 0x08 64-bit code, 0x10 data, 0x18 32-bit code. */
#ifndef VIGIL_METAL_LONG_MODE_H
#define VIGIL_METAL_LONG_MODE_H

#define LM_GDT_CODE64 0x00af9a000000ffff
#define LM_GDT_DATA   0x00cf92000000ffff
#define LM_GDT_CODE32 0x00cf9a000000ffff

/* From 32-bit protected mode with `cr3` (a register or memory operand
 * moved into %eax) the PML4: PAE, SSE state on (OSFXSR, OSXMMEXCPT),
 * EFER.LME and NXE, then paging with EM, CD and NW off and MP, PE, WP on.
 * The caller far-jumps to 0x08 next. Clobbers eax, ecx, edx. */
.macro lm_enter cr3
	mov %cr4, %eax
	or $((1 << 5) | (1 << 9) | (1 << 10)), %eax
	mov %eax, %cr4
	mov \cr3, %eax
	mov %eax, %cr3
	mov $0xC0000080, %ecx
	rdmsr
	or $((1 << 8) | (1 << 11)), %eax
	wrmsr
	mov %cr0, %eax
	and $~((1 << 2) | (1 << 30) | (1 << 29)), %eax
	or $((1 << 31) | (1 << 1) | (1 << 0) | (1 << 16)), %eax
	mov %eax, %cr0
.endm

/* In 64-bit mode: the data selector in ds, es, ss; null in fs, gs. */
.macro lm_data_segments
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	xor %ax, %ax
	mov %ax, %fs
	mov %ax, %gs
.endm

#endif
