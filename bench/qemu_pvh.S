/* A PVH entry for the tiny guests, so QEMU can boot the same guest code as
 * vigil (bench/snapshot.py). The tiny guests are flat bzImages that start
 * in 64-bit mode at +0x200, the way vigil enters them; QEMU enters a bzImage
 * through its real-mode setup code, which they do not have. An ELF with
 * Xen's PHYS32_ENTRY note is booted by QEMU in 32-bit protected mode with
 * paging off: this stub maps the first GiB 1:1, enters long mode and jumps
 * to the tiny guest's _start, linked after it by bench/qemu_pvh.ld. */
	.section .note.pvh, "a", @note
	.balign 4
	.long 4                    /* name size: "Xen\0" */
	.long 4                    /* descriptor size */
	.long 18                   /* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long pvh_start

	.section .pvh_text, "ax"
	.code32
	.globl pvh_start
pvh_start:
	cli
	lgdt gdt_desc
	mov %cr4, %eax
	or $0x20, %eax             /* PAE */
	mov %eax, %cr4
	mov $pml4, %eax
	mov %eax, %cr3
	mov $0xc0000080, %ecx      /* EFER */
	rdmsr
	or $0x100, %eax            /* LME */
	wrmsr
	mov %cr0, %eax
	or $0x80000001, %eax       /* PG | PE */
	mov %eax, %cr0
	ljmp $0x08, $long64
	.code64
long64:
	mov $0x10, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	jmp _start

	.section .pvh_data, "aw"
	.balign 4096
pml4:	.quad pdpt + 3
	.fill 511, 8, 0
pdpt:	.quad pd + 3
	.fill 511, 8, 0
pd:
	i = 0
	.rept 512
	.quad (i << 21) | 0x83     /* P | W | PS: 2 MiB pages */
	i = i + 1
	.endr
	.balign 8
gdt:	.quad 0
	.quad 0x00af9a000000ffff   /* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff   /* 0x10: data */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt
