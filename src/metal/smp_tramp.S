/* smp_tramp — where an application processor starts after SIPI: 16-bit
 * real mode at SMP_TRAMP (the SIPI vector's page). Copied there by smp.c,
 * so every address below is the copy's (TR()). It loads its own GDT, goes
 * through protected mode into long mode on the boot CPU's page tables (the
 * same 4 GiB 1:1 map) and calls metal_ap_main(cpu) on the stack smp.c left
 * in the block's tail. Runs one AP at a time: the tail is rewritten for
 * each. */
#include "metal/long_mode.h"

#define SMP_TRAMP 0x8000
#define TR(x) ((x) - smp_tramp_start + SMP_TRAMP)

	.section .rodata, "a"
	.globl smp_tramp_start, smp_tramp_end, smp_tramp_cr3, smp_tramp_stack, smp_tramp_cpu
	.code16
smp_tramp_start:
	cli
	cld
	xor %ax, %ax
	mov %ax, %ds
	lgdtl TR(tramp_gdtr)
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $0x18, $TR(tramp32)

	.code32
tramp32:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	lm_enter TR(smp_tramp_cr3)
	ljmp $0x08, $TR(tramp64)

	.code64
tramp64:
	lm_data_segments
	mov TR(smp_tramp_stack), %rsp
	mov TR(smp_tramp_cpu), %edi
	fninit
	movabs $metal_ap_main, %rax
	call *%rax
1:	cli
	hlt
	jmp 1b

	.align 8
tramp_gdt:
	.quad 0
	.quad LM_GDT_CODE64              /* 0x08: 64-bit code */
	.quad LM_GDT_DATA                /* 0x10: data */
	.quad LM_GDT_CODE32              /* 0x18: 32-bit code */
tramp_gdtr:
	.word tramp_gdtr - tramp_gdt - 1
	.long TR(tramp_gdt)
	.align 8
smp_tramp_cr3:	.quad 0
smp_tramp_stack:	.quad 0
smp_tramp_cpu:	.long 0
smp_tramp_end:
	.section .note.GNU-stack, "", @progbits
