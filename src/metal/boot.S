/* boot — vigil-metal's entry: a multiboot (v1) image that QEMU's -kernel and
 * GRUB's `multiboot` load at 1 MiB and enter in 32-bit protected mode with
 * paging off (EAX = 0x2BADB002, EBX = the info block). It maps the first
 * 4 GiB 1:1 with 2 MiB pages (RAM below, the APIC and firmware MMIO above:
 * those get PCD|PWT), turns on long mode, SSE (the hosted libc's code that
 * the image links, e.g. jansson, uses it at set-up) and calls
 * metal_main(magic, info) in C. Nothing here is vigil's platform logic:
 * src/metal/main.c takes over at once. */
#include "metal/long_mode.h"

#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003 /* modules page-aligned, memory map wanted */

	.section .multiboot, "a"
	.align 4
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)

	.section .bss.boot, "aw", @nobits
	.align 4096
boot_pml4:	.skip 4096
boot_pdpt:	.skip 4096
boot_pd:	.skip 4 * 4096          /* four page directories: 4 GiB */
	.align 16
boot_stack:	.skip 64 * 1024
boot_stack_top:

	.section .rodata.boot, "a"
	.align 8
boot_gdt:
	.quad 0                          /* null */
	.quad LM_GDT_CODE64              /* 0x08: 64-bit code, DPL 0 */
	.quad LM_GDT_DATA                /* 0x10: data */
	.quad LM_GDT_CODE32              /* 0x18: 32-bit code (entry) */
boot_gdt_end:
boot_gdtr:
	.word boot_gdt_end - boot_gdt - 1
	.quad boot_gdt

	.section .text.boot, "ax"
	.code32
	.globl _start
_start:
	cli
	cld
	mov %eax, %edi                   /* multiboot magic: 1st C argument */
	mov %ebx, %esi                   /* info block: 2nd */
	mov $boot_stack_top, %esp

	/* PML4[0] -> PDPT; PDPT[0..3] -> the four PDs. */
	mov $boot_pdpt, %eax
	or $3, %eax
	mov %eax, boot_pml4
	mov $boot_pd, %eax
	or $3, %eax
	mov $boot_pdpt, %ebx
	mov $4, %ecx
1:	mov %eax, (%ebx)
	add $4096, %eax
	add $8, %ebx
	loop 1b

	/* 2048 PD entries of 2 MiB: P|RW|PS, and PCD|PWT from 3 GiB up. */
	xor %eax, %eax                   /* page index */
	mov $boot_pd, %ebx
2:	mov %eax, %edx
	shl $21, %edx                    /* low 32 bits of the address */
	or $0x83, %edx
	cmp $1536, %eax
	jb 3f
	or $0x18, %edx
3:	mov %edx, (%ebx)
	mov %eax, %edx
	shr $11, %edx                    /* bits 32+ of the address */
	mov %edx, 4(%ebx)
	add $8, %ebx
	inc %eax
	cmp $2048, %eax
	jb 2b

	lm_enter $boot_pml4
	lgdt boot_gdtr
	ljmp $0x08, $long_entry

	.code64
long_entry:
	lm_data_segments
	mov $boot_stack_top, %rsp
	fninit
	and $0xffffffff, %edi
	and $0xffffffff, %esi
	call metal_main
4:	cli
	hlt
	jmp 4b
