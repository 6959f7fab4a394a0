/* smp_tramp — where an application processor starts after SIPI: 16-bit
 * real mode at SMP_TRAMP (the SIPI vector's page). Copied there by smp.c,
 * so every address below is the copy's (TR()). It loads its own GDT, goes
 * through protected mode into long mode on the boot CPU's page tables (the
 * same 4 GiB 1:1 map) and calls metal_ap_main(cpu) on the stack smp.c left
 * in the block's tail. Runs one AP at a time: the tail is rewritten for
 * each. */
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
	mov %cr4, %eax
	or $((1 << 5) | (1 << 9) | (1 << 10)), %eax  /* PAE, OSFXSR, OSXMMEXCPT */
	mov %eax, %cr4
	mov TR(smp_tramp_cr3), %eax
	mov %eax, %cr3
	mov $0xC0000080, %ecx
	rdmsr
	or $((1 << 8) | (1 << 11)), %eax  /* LME, NXE */
	wrmsr
	mov %cr0, %eax
	and $~((1 << 2) | (1 << 30) | (1 << 29)), %eax
	or $((1 << 31) | (1 << 1) | (1 << 0) | (1 << 16)), %eax
	mov %eax, %cr0
	ljmp $0x08, $TR(tramp64)

	.code64
tramp64:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	xor %ax, %ax
	mov %ax, %fs
	mov %ax, %gs
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
	.quad 0x00af9a000000ffff         /* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff         /* 0x10: data */
	.quad 0x00cf9a000000ffff         /* 0x18: 32-bit code */
tramp_gdtr:
	.word tramp_gdtr - tramp_gdt - 1
	.long TR(tramp_gdt)
	.align 8
smp_tramp_cr3:	.quad 0
smp_tramp_stack:	.quad 0
smp_tramp_cpu:	.long 0
smp_tramp_end:
	.section .note.GNU-stack, "", @progbits
