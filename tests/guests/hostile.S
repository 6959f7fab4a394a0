/* A hostile tiny guest (issue 11): one bzImage, many attacks. The kernel
 * command line picks one ("attack=N", appended with --cmdline); the guest
 * runs it and, if it is still alive and every check it can make from inside
 * held, prints "hostile: ok" and powers off (ACPI S5). A check that fails
 * prints "hostile: FAILED". What vigil counted is asserted from outside,
 * in --stats, by tests/hostile.sh, which holds the list of attacks and what
 * each expects.
 *
 * The virtio attacks use a minimal virtio-pci driver for virtio-rng (one
 * queue of 8, rings at fixed guest addresses): vigil's transport keeps the
 * common config at BAR0 + 0, the notify doorbells at BAR0 + 0x3000 (4 bytes
 * per queue) and the MSI-X table at BAR0 + 0x4000 (src/virtio/virtio_pci.c). */
#define COM1 0x3f8
#define LSR (COM1 + 5)
#define PM1A_CNT 0x604
#define S5 ((5 << 10) | (1 << 13))

#define Q_DESC  0x200000
#define Q_AVAIL 0x201000
#define Q_USED  0x202000
#define BUF     0x210000
#define SCRATCH 0x400000       /* 4 MiB of REP INS/OUTS room */

#define RNG_ID   0x10441af4    /* virtio 1.x rng: device 0x1040 + 4 */
#define VSOCK_ID 0x10531af4    /* virtio 1.x vsock: 0x1040 + 19 */
#define NET_ID   0x10411af4    /* virtio 1.x net: 0x1040 + 1 */
#define BLK_ID   0x10421af4    /* virtio 1.x block: 0x1040 + 2 */
#define BLK_DATA 0x240000      /* one sector's buffer, 4 KiB aligned */

/* common config offsets (virtio 1.2, 4.1.4.3) */
#define CC_GFSELECT 0x08
#define CC_GF       0x0c
#define CC_MSIXCFG  0x10
#define CC_NUMQ     0x12
#define CC_STATUS   0x14
#define CC_QSEL     0x16
#define CC_QSIZE    0x18
#define CC_QMSIX    0x1a
#define CC_QENABLE  0x1c
#define CC_QDESC    0x20
#define CC_QAVAIL   0x28
#define CC_QUSED    0x30
#define NOTIFY      0x3000
#define MSIX_TABLE  0x4000
#define NEEDS_RESET 0x40
#define NATTACKS 55         /* entries of the table at the end */

	.section .setup, "a"
	.org 0x1f1
	.byte 1
	.org 0x1fe
	.word 0xaa55
	.byte 0xeb, hdr_end - hdr_start
hdr_start:
	.ascii "HdrS"
	.word 0x020c
	.org 0x211
	.byte 0x01
	.org 0x22c
	.long 0x7fffffff
	.org 0x236
	.word 0x0001
	.long 255
	.org 0x258
	.quad 0x100000
	.long 0x10000
hdr_end:
	.org 0x400

/* desc I, ADDR, LEN, FLAGS, NEXT: one descriptor of the rng queue. */
.macro desc i, addr, len, flags, next
	movabs $\addr, %rax
	mov %rax, Q_DESC + 16 * \i
	movl $\len, Q_DESC + 16 * \i + 8
	movw $\flags, Q_DESC + 16 * \i + 12
	movw $\next, Q_DESC + 16 * \i + 14
.endm
/* post HEAD: into the avail ring, bump its index, ring the doorbell. */
.macro post head
	movzwl Q_AVAIL + 2, %eax
	mov %eax, %ecx
	and $7, %ecx
	movw $\head, Q_AVAIL + 4(, %rcx, 2)
	inc %eax
	mov %ax, Q_AVAIL + 2
	movw $0, NOTIFY(%rbx)
.endm
/* expect_used N, LEN: the used index reaches N, its last entry says LEN. */
.macro expect_used n, len
	mov $\n, %ecx
	call wait_used
	cmpl $\len, Q_USED + 4 + 8 * ((\n - 1) & 7) + 4
	jne fail
.endm
/* good_request: a well-formed 64-byte request must still be served. */
.macro good_request
	call vsetup
	desc 0, BUF, 64, 2, 0
	post 0
	expect_used 1, 64
.endm

	.text
	.code32
startup_32:
	hlt
	.org 0x200
	.code64
	.globl _start
_start:
	mov $0x90000, %esp
	mov %rsi, %rbp             /* the zero page */
	mov $0x12345678, %r14d     /* xorshift state */
	lea hello(%rip), %rsi
	call puts
	/* "attack=" on the command line, then its decimal number */
	mov 0x228(%rbp), %esi
1:	cmpb $0, (%rsi)
	je fail
	cmpl $0x61747461, (%rsi)   /* "atta" */
	jne 2f
	cmpw $0x6b63, 4(%rsi)      /* "ck" */
	jne 2f
	cmpb $'=', 6(%rsi)
	je 3f
2:	inc %rsi
	jmp 1b
3:	add $7, %rsi
	xor %ecx, %ecx
4:	movzbl (%rsi), %eax
	sub $'0', %eax
	cmp $9, %eax
	ja 5f
	imul $10, %ecx
	add %eax, %ecx
	inc %rsi
	jmp 4b
5:	cmp $1, %ecx
	jb fail
	cmp $NATTACKS, %ecx
	ja fail
	lea attacks(%rip), %rdx
	movslq -4(%rdx, %rcx, 4), %rax
	add %rdx, %rax
	jmp *%rax

/* ---- descriptor and ring attacks: each chain is refused (written 0) --- */
a_desc_loop_self:
	call vsetup
	desc 0, BUF, 64, 3, 0
	post 0
	expect_used 1, 0
	jmp ok
a_desc_loop_pair:
	call vsetup
	desc 0, BUF, 64, 3, 1
	desc 1, BUF + 64, 64, 3, 0
	post 0
	expect_used 1, 0
	jmp ok
a_desc_addr_oob:
	call vsetup
	desc 0, 0x7ffffffff000, 4096, 2, 0
	post 0
	expect_used 1, 0
	jmp ok
a_desc_len_huge:
	call vsetup
	desc 0, BUF, 0xffffffff, 2, 0
	post 0
	expect_used 1, 0
	jmp ok
a_desc_len_zero:
	call vsetup
	desc 0, BUF, 0, 2, 0
	post 0
	expect_used 1, 0
	jmp ok
a_desc_next_oob:
	call vsetup
	desc 0, BUF, 64, 3, 200
	post 0
	expect_used 1, 0
	jmp ok
a_desc_indirect:
	call vsetup
	desc 0, BUF, 64, 6, 0
	post 0
	expect_used 1, 0
	jmp ok
a_desc_readable:
	call vsetup
	desc 0, BUF, 64, 0, 0
	post 0
	expect_used 1, 0
	jmp ok
a_desc_in_mmio:
	call vsetup
	desc 0, 0xc0000000, 64, 2, 0
	post 0
	expect_used 1, 0
	jmp ok
a_avail_runaway:                   /* more entries than the ring holds */
	call vsetup
	movw $100, Q_AVAIL + 2
	movw $0, NOTIFY(%rbx)
	call wait_nr
	jmp ok
a_avail_head_oob:
	call vsetup
	movw $0xffff, Q_AVAIL + 4
	movw $1, Q_AVAIL + 2
	movw $0, NOTIFY(%rbx)
	expect_used 1, 0
	jmp ok
a_buf_alias_desc:                  /* the device fills the descriptor table */
	call vsetup
	desc 0, Q_DESC, 128, 2, 0
	post 0
	expect_used 1, 128
	post 0                     /* now a chain of random bytes */
	call delay
	jmp ok
a_buf_alias_used:
	call vsetup
	desc 0, Q_USED, 64, 2, 0
	post 0
	call delay
	jmp ok
a_buf_alias_avail:
	call vsetup
	desc 0, Q_AVAIL, 64, 2, 0
	post 0
	call delay
	jmp ok
a_ring_rewrite:                    /* descriptors scribbled while served */
	call vsetup
	mov $3000, %r12d
1:	desc 0, BUF, 64, 2, 0
	post 0
	call rnd
	mov %eax, Q_DESC + 8
	call rnd
	mov %eax, Q_DESC + 12
	call rnd
	mov %ax, Q_AVAIL + 4
	dec %r12d
	jnz 1b
	call delay
	jmp ok
a_used_over_desc:
	call vinit
	mov $8, %ax
	mov $Q_DESC, %r9
	mov $Q_AVAIL, %r10
	mov $Q_DESC, %r11
	call vqueue
	call vlive
	desc 0, BUF, 64, 2, 0
	post 0
	call delay
	jmp ok

/* ---- status and queue games ------------------------------------------ */
a_status_clear:                    /* clear bits without a reset */
	call vsetup
	movb $0x0b, CC_STATUS(%rbx) /* DRIVER_OK cleared */
	call wait_nr
	movb $0, CC_STATUS(%rbx)   /* a reset clears NEEDS_RESET */
	cmpb $0, CC_STATUS(%rbx)
	jne fail
	good_request
	jmp ok
a_driver_ok_early:
	call rng
	movb $0, CC_STATUS(%rbx)
	movb $3, CC_STATUS(%rbx)
	movb $7, CC_STATUS(%rbx)   /* DRIVER_OK without FEATURES_OK */
	call wait_nr
	testb $4, CC_STATUS(%rbx)
	jnz fail
	jmp ok
a_features_unoffered:
	call rng
	movb $0, CC_STATUS(%rbx)
	movb $3, CC_STATUS(%rbx)
	movl $0, CC_GFSELECT(%rbx)
	movl $0xffffffff, CC_GF(%rbx)
	movl $1, CC_GFSELECT(%rbx)
	movl $0xffffffff, CC_GF(%rbx)
	movb $0x0b, CC_STATUS(%rbx)
	testb $8, CC_STATUS(%rbx)  /* FEATURES_OK must not stick */
	jnz fail
	movb $0x0f, CC_STATUS(%rbx)
	call wait_nr
	jmp ok
a_qsize_npot:
	call vinit
	mov $3, %ax
	call vqueue_std
	call wait_nr
	jmp ok
a_qsize_huge:
	call vinit
	mov $0x8000, %ax
	call vqueue_std
	call wait_nr
	jmp ok
a_qaddr_oob:
	call vinit
	mov $8, %ax
	movabs $0x7ffffff00000, %r9
	mov $Q_AVAIL, %r10
	mov $Q_USED, %r11
	call vqueue
	call wait_nr
	jmp ok
a_queue_reprogram_live:            /* a running queue's fields are read-only */
	call vsetup
	movw $4, CC_QSIZE(%rbx)
	movl $0x7000000, CC_QDESC(%rbx)
	movw $0, CC_QENABLE(%rbx)
	movw $1, CC_QENABLE(%rbx)
	cmpw $8, CC_QSIZE(%rbx)
	jne fail
	cmpl $Q_DESC, CC_QDESC(%rbx)
	jne fail
	desc 0, BUF, 64, 2, 0
	post 0
	expect_used 1, 64
	jmp ok
a_qselect_oob:
	call vinit
	movw $99, CC_QSEL(%rbx)
	movw $8, CC_QSIZE(%rbx)
	movw $1, CC_QENABLE(%rbx)
	cmpw $0, CC_QSIZE(%rbx)
	jne fail
	movw $0xffff, CC_QSEL(%rbx)
	cmpw $0, CC_QENABLE(%rbx)
	jne fail
	cmpw $1, CC_NUMQ(%rbx)
	jne fail
	good_request
	jmp ok
a_notify_storm:
	call vsetup
	mov $200000, %ecx
1:	movw $0, NOTIFY(%rbx)
	dec %ecx
	jnz 1b
	good_request
	jmp ok
a_notify_bad:
	call vsetup
	movw $0xffff, NOTIFY(%rbx)
	movl $7, NOTIFY(%rbx)
	movb $0, NOTIFY + 1(%rbx)
	mov $NOTIFY + 4, %ecx
1:	movw $0, (%rbx, %rcx)
	add $4, %ecx
	cmp $0x4000, %ecx
	jb 1b
	good_request
	jmp ok

/* ---- MSI-X --------------------------------------------------------- */
a_msix_storm:
	call rng
	call msix_on
	call vsetup
	movw $0, CC_QMSIX(%rbx)
	mov $10000, %r12d
1:	call rnd
	mov %r12d, %ecx
	and $1, %ecx
	shl $4, %ecx               /* entry 0 or 1 */
	movl $0xfee00000, MSIX_TABLE(%rbx, %rcx)
	movl $0, MSIX_TABLE + 4(%rbx, %rcx)
	and $0x7f, %eax
	add $0x40, %eax            /* fixed delivery, vectors 0x40..0xbf */
	mov %eax, MSIX_TABLE + 8(%rbx, %rcx)
	mov %r12d, %eax
	shr $1, %eax
	and $1, %eax
	mov %eax, MSIX_TABLE + 12(%rbx, %rcx) /* mask, unmask */
	dec %r12d
	jnz 1b
	desc 0, BUF, 64, 2, 0
	post 0
	expect_used 1, 64
	jmp ok
a_msix_vector_oob:
	call rng
	call msix_on
	call vsetup
	movw $0x1234, CC_QMSIX(%rbx)
	movw $0x7fff, CC_MSIXCFG(%rbx)
	movl $0, MSIX_TABLE + 12(%rbx)
	desc 0, BUF, 64, 2, 0
	post 0
	expect_used 1, 64
	jmp ok
a_msix_table_oob:
	call rng
	call msix_on
	mov $MSIX_TABLE, %ecx
1:	call rnd
	mov %al, (%rbx, %rcx)
	movzbl (%rbx, %rcx), %eax
	inc %ecx
	cmp $0x5010, %ecx
	jb 1b
	movl $0xffffffff, MSIX_TABLE + 14(%rbx) /* across an entry */
	movq $-1, MSIX_TABLE + 0xff8(%rbx)
	mov MSIX_TABLE + 0xffc(%rbx), %eax
	movl $0, MSIX_TABLE + 12(%rbx)
	good_request
	jmp ok

/* ---- BAR moves ------------------------------------------------------ */
a_bar_onto_ram:
	call rng
	movl $0x5a5a5a5a, 0x300000
	mov %ebx, %r12d
	mov $0x300000, %ecx
	call set_bar
	cmpl $0x5a5a5a5a, 0x300000 /* RAM stays RAM */
	jne fail
	movl $0xa5a5a5a5, 0x300014
	cmpl $0xa5a5a5a5, 0x300014
	jne fail
	mov %r12d, %ecx
	call set_bar
	good_request
	jmp ok
a_bar_over_other:
	mov $VSOCK_ID, %edi
	call find
	mov %ebx, %r12d            /* vsock's BAR0 */
	cmpw $3, CC_NUMQ(%rbx)
	jne fail
	call rng
	mov %ebx, %r11d
	mov %r12d, %ecx
	call set_bar               /* rng BAR0 on top of vsock's */
	mov %r12d, %eax
	cmpw $3, CC_NUMQ(%rax)     /* still vsock's */
	jne fail
	mov %r11d, %ecx
	call set_bar
	good_request
	jmp ok
a_bar_outside_window:
	call rng
	mov %ebx, %r12d
	mov $0xfee00000, %ecx      /* the local APIC */
	call set_bar
	cmpw $0xffff, CC_NUMQ(%r12) /* nothing decoded at the old place */
	jne fail
	mov $0x08000000, %ecx      /* guest RAM */
	call set_bar
	mov $0xfffff000, %ecx
	call set_bar
	mov %r12d, %ecx
	call set_bar
	good_request
	jmp ok
a_bar_storm:
	call rng
	mov %ebx, %r12d
	mov $200, %r11d
1:	lea 0x10000000(%r12), %ecx
	test $1, %r11d
	jz 2f
	mov %r12d, %ecx
2:	call set_bar
	dec %r11d
	jnz 1b
	mov %r12d, %ecx
	call set_bar
	good_request
	jmp ok

/* ---- PCI configuration space ---------------------------------------- */
a_pci_cfg_storm:                   /* every register of bus 0: save, all ones, restore */
	mov $0x80000000, %r12d
1:	mov %r12d, %eax
	call pcird
	mov %eax, %r11d
	mov %r12d, %eax
	mov $0xffffffff, %ecx
	call pciwr
	mov %r12d, %eax
	call pcird
	mov %r12d, %eax
	mov %r11d, %ecx
	call pciwr
	add $4, %r12d
	cmp $0x80010000, %r12d
	jb 1b
	mov $0x80010000, %r12d     /* buses 1..255: nobody home */
2:	mov %r12d, %eax
	call pcird
	cmp $0xffffffff, %eax
	jne fail
	add $0x800, %r12d
	cmp $0x81000000, %r12d
	jb 2b
	good_request
	jmp ok
a_pci_cfg_odd:
	mov $0xcf9, %dx
	mov $0, %al
	out %al, %dx
	mov $0xcfa, %dx
	mov $0x1234, %ax
	out %ax, %dx
	mov $0xcfb, %dx
	in %dx, %al
	mov $0xcfd, %dx
	in %dx, %al
	mov $0xcfe, %dx
	in %dx, %ax
	mov $0xcff, %dx
	mov $0x55, %al
	out %al, %dx
	mov $0xcfd, %dx
	in %dx, %eax               /* a dword at an odd port */
	mov $0x80000000, %eax      /* the host bridge still answers */
	call pcird
	cmp $0x00081b36, %eax
	jne fail
	good_request
	jmp ok

/* ---- exit storms on the platform devices ----------------------------- */
a_uart_storm:
	mov $40000, %r12d
1:	call rnd
	mov %eax, %ecx
	shr $8, %ecx
	and $7, %ecx
	jz 2f                      /* not the data register: no garbage out */
	lea COM1(%rcx), %edx
	out %al, %dx
2:	lea COM1(%rcx), %edx
	in %dx, %al
	dec %r12d
	jnz 1b
	mov $COM1 + 3, %dx         /* back to 8N1, no loopback, no interrupts */
	mov $0x80, %al
	out %al, %dx
	mov $COM1, %dx
	mov $1, %al
	out %al, %dx
	mov $COM1 + 1, %dx
	xor %al, %al
	out %al, %dx
	mov $COM1 + 3, %dx
	mov $3, %al
	out %al, %dx
	mov $COM1 + 1, %dx
	xor %al, %al
	out %al, %dx
	mov $COM1 + 4, %dx
	mov $3, %al
	out %al, %dx
	jmp ok
a_rtc_storm:
	mov $40000, %r12d
1:	call rnd
	out %al, $0x70
	shr $8, %eax
	test $1, %r12d
	jz 2f
	out %al, $0x71
2:	in $0x71, %al
	dec %r12d
	jnz 1b
	jmp ok
a_i8042_storm:
	mov $20, %r12d
1:	xor %ecx, %ecx
2:	mov %cl, %al
	out %al, $0x64             /* commands 0x00..0xef: no reset pulses */
	call rnd
	or $1, %al                 /* an output-port write keeps reset high */
	out %al, $0x60
	in $0x60, %al
	in $0x64, %al
	inc %ecx
	cmp $0xf0, %ecx
	jb 2b
	dec %r12d
	jnz 1b
	mov $0x60, %al             /* write the command byte back: sane */
	out %al, $0x64
	mov $0x45, %al
	out %al, $0x60
	jmp ok
a_acpi_pm_storm:
	mov $40000, %r12d
1:	call rnd
	mov %eax, %ecx
	shr $8, %ecx
	and $0xf, %ecx
	lea 0x600(%rcx), %edx
	cmp $0x605, %edx
	jne 2f
	and $~0x20, %al            /* never SLP_EN */
2:	cmp $0x608, %edx
	jne 3f
	or $2, %al                 /* never the reset value */
3:	out %al, %dx
	in %dx, %al
	dec %r12d
	jnz 1b
	jmp ok
a_pvpanic_storm:
	mov $40000, %r12d
	mov $0x505, %dx
1:	in %dx, %al
	dec %r12d
	jnz 1b
	in %dx, %al
	cmp $3, %al
	jne fail
	in %dx, %ax
	in %dx, %eax
	xor %al, %al
	out %al, %dx
	mov $2, %al                /* crash loaded: noted, not a stop */
	out %al, %dx
	mov $0x506, %dx
	mov $1, %al
	out %al, %dx               /* past the register */
	jmp ok

/* ---- probing -------------------------------------------------------- */
a_port_in_all:
	xor %ecx, %ecx
1:	mov %ecx, %edx
	in %dx, %al
	inc %ecx
	cmp $0x10000, %ecx
	jb 1b
	jmp ok
a_port_out_all:
	xor %ecx, %ecx
1:	mov %ecx, %edx
	mov %ecx, %eax
	and $~7, %eax
	cmp $COM1, %eax
	je 2f
	xor %al, %al
	out %al, %dx
2:	inc %ecx
	cmp $0x10000, %ecx
	jb 1b
	jmp ok
a_port_wide_all:
	xor %ecx, %ecx
1:	mov %ecx, %edx
	in %dx, %ax
	in %dx, %eax
	inc %ecx
	cmp $0x10000, %ecx
	jb 1b
	jmp ok
a_msr_read_probe:
	call gp_setup
	xor %r15d, %r15d
	xor %ecx, %ecx
	mov $0x2000, %r12d
	call rdmsr_range
	mov $0x40000000, %ecx
	mov $0x200, %r12d
	call rdmsr_range
	mov $0x4b564d00, %ecx
	mov $0x100, %r12d
	call rdmsr_range
	mov $0xc0000000, %ecx
	mov $0x1000, %r12d
	call rdmsr_range
	mov $0xc0010000, %ecx
	mov $0x1000, %r12d
	call rdmsr_range
	test %r15d, %r15d          /* some must have been refused */
	jz fail
	jmp ok
a_msr_write_probe:
	call gp_setup
	xor %r15d, %r15d
	mov $0x2000, %ecx
	mov $0x1000, %r12d
	call wrmsr_range
	mov $0xc0011000, %ecx
	mov $0x100, %r12d
	call wrmsr_range
	test %r15d, %r15d
	jz fail
	jmp ok
a_rep_ins_huge:
	mov $SCRATCH, %edi
	mov $0x1234, %dx
	mov $0x200000, %ecx
	cld
	rep insb
	cmpl $0xffffffff, SCRATCH + 0x1ffffc
	jne fail
	mov $SCRATCH, %edi
	mov $0x100000, %ecx
	rep insw
	jmp ok
a_rep_outs_huge:
	mov $SCRATCH, %esi
	mov $0x80, %dx
	mov $0x20000, %ecx         /* OUTS exits once an element: 256 Ki exits */
	cld
	rep outsw
	mov $SCRATCH, %esi
	mov $0x20000, %ecx
	rep outsl
	jmp ok
a_rep_ins_mmio:                    /* string I/O aimed at MMIO */
	mov $0xd0000000, %edi
	mov $0x1234, %dx
	mov $0x4000, %ecx
	cld
	rep insb
	call rng
	mov %rbx, %rsi
	mov $0x80, %dx
	mov $0x100, %ecx
	rep outsb                  /* from the common config */
	jmp ok
a_mmio_odd:
	call rng
	mov (%rbx), %rax           /* 8 bytes of common config */
	mov 0x34(%rbx), %rax       /* across its end */
	mov 0x13(%rbx), %ax        /* odd */
	mov 0x7ffe(%rbx), %eax     /* across the BAR's end */
	movw $0x1234, 0x15(%rbx)   /* config generation (read-only) and a half */
	movl $0xffffffff, 0x17(%rbx)
	mov $0x1000, %ecx
1:	movzbl (%rbx, %rcx), %eax
	add $0x41, %ecx
	cmp $0x8000, %ecx
	jb 1b
	good_request
	jmp ok
a_mmio_hole_storm:
	mov $40000, %r12d
1:	call rnd
	and $0x0ffffffc, %eax
	add $0xe0000000, %eax
	mov %eax, %ecx
	movl $0xdeadbeef, (%rcx)
	mov (%rcx), %eax
	dec %r12d
	jnz 1b
	jmp ok
a_vsock_flood:                     /* 3,000 connection requests to a host port nobody serves */
	mov $Q_DESC, %edi
	mov $0x23000, %ecx
	xor %eax, %eax
	cld
	rep stosb                  /* both queues' rings and the header */
	mov $VSOCK_ID, %edi
	call find
	call vinit_found
	mov $8, %ax                /* rx: enabled, never given a buffer */
	mov $0x220000, %r9
	mov $0x221000, %r10
	mov $0x222000, %r11
	call vqueue
	movw $1, CC_QSEL(%rbx)     /* tx at the usual rings */
	movw $8, CC_QSIZE(%rbx)
	movl $Q_DESC, CC_QDESC(%rbx)
	movl $Q_AVAIL, CC_QAVAIL(%rbx)
	movl $Q_USED, CC_QUSED(%rbx)
	movw $1, CC_QENABLE(%rbx)
	call vlive
	movq $3, BUF               /* src_cid */
	movq $2, BUF + 8           /* dst_cid: the host */
	movl $1234, BUF + 20       /* dst_port */
	movw $1, BUF + 28          /* type: stream */
	movw $1, BUF + 30          /* op: request */
	movl $65536, BUF + 36      /* buf_alloc */
	xor %r12d, %r12d
1:	lea 5000(%r12), %eax
	mov %eax, BUF + 16         /* a new src_port each time */
	desc 0, BUF, 44, 0, 0
	movzwl Q_AVAIL + 2, %eax
	mov %eax, %ecx
	and $7, %ecx
	movw $0, Q_AVAIL + 4(, %rcx, 2)
	inc %eax
	mov %ax, Q_AVAIL + 2
	movw $1, NOTIFY + 4(%rbx)
	mov %eax, %ecx
	call wait_used
	inc %r12d
	cmp $3000, %r12d
	jb 1b
	jmp ok
a_net_idle:                        /* virtio-net live, rx buffers posted, then idle for ever */
	mov $Q_DESC, %edi
	mov $0x3000, %ecx
	xor %eax, %eax
	cld
	rep stosb
	mov $NET_ID, %edi
	call find
	call vinit_found
	mov $8, %ax
	call vqueue_std            /* rx: queue 0 */
	call vlive
	desc 0, BUF, 2048, 2, 0
	desc 1, BUF + 2048, 2048, 2, 0
	post 0
	post 1
	lea net_live(%rip), %rsi
	call puts
	mov $LSR, %dx
1:	in %dx, %al                /* the host stops us (SIGTERM) */
	jmp 1b
a_vsock_peer_gone:                 /* stream to a host peer that hangs up mid-way */
	mov $Q_DESC, %edi
	mov $0x23000, %ecx
	xor %eax, %eax
	cld
	rep stosb
	mov $VSOCK_ID, %edi
	call find
	call vinit_found
	mov $8, %ax                /* rx: 8 buffers of 4 KiB */
	mov $0x220000, %r9
	mov $0x221000, %r10
	mov $0x222000, %r11
	call vqueue
	movw $1, CC_QSEL(%rbx)
	movw $8, CC_QSIZE(%rbx)
	movl $Q_DESC, CC_QDESC(%rbx)
	movl $Q_AVAIL, CC_QAVAIL(%rbx)
	movl $Q_USED, CC_QUSED(%rbx)
	movw $1, CC_QENABLE(%rbx)
	call vlive
	xor %ecx, %ecx
1:	mov %ecx, %eax
	shl $12, %eax
	add $0x230000, %eax
	mov %ecx, %edx
	shl $4, %edx
	mov %rax, 0x220000(%rdx)
	movl $4096, 0x220008(%rdx)
	movw $2, 0x22000c(%rdx)
	mov %cx, 0x221004(, %rcx, 2)
	inc %ecx
	cmp $8, %ecx
	jb 1b
	movw $8, 0x221002
	movw $0, NOTIFY(%rbx)
	movq $3, BUF
	movq $2, BUF + 8
	movl $5000, BUF + 16       /* src_port */
	movl $1234, BUF + 20       /* dst_port: the test's listener */
	movw $1, BUF + 28          /* stream */
	movw $1, BUF + 30          /* request */
	movl $65536, BUF + 36
	desc 0, BUF, 44, 0, 0
	call vsock_tx
	mov $200000, %r8d          /* the response */
	mov $LSR, %dx
2:	cmpw $0, 0x222002
	jne 3f
	in %dx, %al
	dec %r8d
	jnz 2b
	jmp fail
3:	movw $5, BUF + 30          /* rw */
	movl $1024, BUF + 24       /* len */
	xor %r12d, %r12d
4:	desc 0, BUF, 44 + 1024, 0, 0
	call vsock_tx
	inc %r12d
	cmp $2000, %r12d
	jb 4b
	jmp ok
/* vsock_tx: post descriptor 0 on the tx queue (1), wait for it. */
vsock_tx:
	movzwl Q_AVAIL + 2, %eax
	mov %eax, %ecx
	and $7, %ecx
	movw $0, Q_AVAIL + 4(, %rcx, 2)
	inc %eax
	mov %ax, Q_AVAIL + 2
	movw $1, NOTIFY + 4(%rbx)
	mov %eax, %ecx
	jmp wait_used
/* 55: a disk the host makes fail (tests/faults.sh: a FUSE image with EIO on
 * a byte range). Eight one-sector writes (sector i filled with 0xa0 + i),
 * then eight reads; prints each request's status ("blk: w=00110000
 * r=00110000": 0 OK, 1 IOERR) and X for a read that said OK with other
 * bytes than were written. The guest goes on after each error. */
a_blk_faults:
	mov $Q_DESC, %edi
	mov $0x3000, %ecx
	xor %eax, %eax
	cld
	rep stosb
	mov $BLK_ID, %edi
	call find
	call vinit_found
	mov $8, %ax
	call vqueue_std
	call vlive
	desc 0, BUF, 16, 1, 1      /* header: type, reserved, sector */
	desc 1, BLK_DATA, 512, 1, 2
	desc 2, BUF + 16, 1, 2, 0  /* status, device-written */
	lea blk_w(%rip), %rsi
	call puts
	xor %r12d, %r12d
1:	movq $1, BUF               /* VIRTIO_BLK_T_OUT */
	mov %r12, BUF + 8
	lea 0xa0(%r12), %eax
	mov $BLK_DATA, %edi
	mov $512, %ecx
	rep stosb
	call blk_submit
	add $'0', %al
	call putc
	inc %r12d
	cmp $8, %r12d
	jb 1b
	lea blk_r(%rip), %rsi
	call puts
	movw $3, Q_DESC + 16 + 12  /* the data buffer is device-written now */
	xor %r12d, %r12d
2:	movq $0, BUF               /* VIRTIO_BLK_T_IN */
	mov %r12, BUF + 8
	mov $BLK_DATA, %edi
	mov $512, %ecx
	xor %eax, %eax
	rep stosb
	call blk_submit
	test %al, %al
	jnz 3f
	lea 0xa0(%r12), %eax
	mov $BLK_DATA, %edi
	mov $512, %ecx
	repe scasb
	mov $0, %eax
	je 3f
	mov $'X' - '0', %eax
3:	add $'0', %al
	call putc
	inc %r12d
	cmp $8, %r12d
	jb 2b
	mov $'\n', %al
	call putc
	jmp ok
/* blk_submit: descriptor 0's chain on queue 0, waited for; AL = its status. */
blk_submit:
	movb $0xff, BUF + 16
	movzwl Q_AVAIL + 2, %eax
	mov %eax, %ecx
	and $7, %ecx
	movw $0, Q_AVAIL + 4(, %rcx, 2)
	inc %eax
	mov %ax, Q_AVAIL + 2
	movw $0, NOTIFY(%rbx)
	mov %eax, %ecx
	call wait_used
	movzbl BUF + 16, %eax
	ret
a_console_flood:                   /* print without end: the host must stop us */
	lea flood(%rip), %rsi
	call puts
	jmp a_console_flood

/* ---- the verdict ----------------------------------------------------- */
ok:
	lea ok_msg(%rip), %rsi
	call puts
	jmp poweroff
fail:
	lea failed(%rip), %rsi
	call puts
poweroff:
	mov $PM1A_CNT, %dx
	mov $S5, %ax
	out %ax, %dx
	cli
1:	hlt
	jmp 1b

/* ---- helpers ---------------------------------------------------------- */
putc:
	push %rax
	push %rdx
	mov $LSR, %dx
1:	in %dx, %al
	test $0x20, %al
	jz 1b
	mov 8(%rsp), %rax
	mov $COM1, %dx
	out %al, %dx
	pop %rdx
	pop %rax
	ret
puts:
	lodsb
	test %al, %al
	jz 1f
	call putc
	jmp puts
1:	ret

/* rnd: EAX = the next xorshift32 of R14D. */
rnd:
	mov %r14d, %eax
	shl $13, %eax
	xor %eax, %r14d
	mov %r14d, %eax
	shr $17, %eax
	xor %eax, %r14d
	mov %r14d, %eax
	shl $5, %eax
	xor %eax, %r14d
	mov %r14d, %eax
	ret

/* delay: let the event thread catch up: 5,000 reads of COM1's LSR (each
 * an exit; a plain loop can be emulated one instruction at a time under
 * kvm_pvm, and PAUSE exits too). */
delay:
	push %rdx
	mov $5000, %ecx
	mov $LSR, %dx
1:	in %dx, %al
	dec %ecx
	jnz 1b
	pop %rdx
	ret

/* pcird: EAX = CONFIG_ADDRESS -> EAX. pciwr: EAX = address, ECX = value. */
pcird:
	mov $0xcf8, %dx
	out %eax, %dx
	mov $0xcfc, %dx
	in %dx, %eax
	ret
pciwr:
	mov $0xcf8, %dx
	out %eax, %dx
	mov $0xcfc, %dx
	mov %ecx, %eax
	out %eax, %dx
	ret

/* find: EDI = device:vendor -> R13D its CONFIG_ADDRESS, RBX its BAR0
 * (memory decoding and bus mastering on). */
find:
	mov $0x80000000, %r13d
1:	mov %r13d, %eax
	call pcird
	cmp %edi, %eax
	je 2f
	add $0x800, %r13d
	cmp $0x80010000, %r13d
	jb 1b
	jmp fail
2:	lea 0x10(%r13), %eax
	call pcird
	and $~0xf, %eax
	mov %eax, %ebx
	lea 4(%r13), %eax
	mov $6, %ecx
	call pciwr
	ret
rng:
	mov $RNG_ID, %edi
	jmp find

/* set_bar: BAR0 of the function at R13D to ECX. */
set_bar:
	lea 0x10(%r13), %eax
	jmp pciwr

/* msix_on: MSI-X enable in the capability at 0x84 (message control). */
msix_on:
	lea 0x84(%r13), %eax
	call pcird
	or $0x80000000, %eax
	mov %eax, %ecx
	lea 0x84(%r13), %eax
	jmp pciwr

/* vinit: reset, ACKNOWLEDGE | DRIVER, VERSION_1 only, FEATURES_OK. */
vinit:
	call rng
vinit_found:
	movb $0, CC_STATUS(%rbx)
	movb $3, CC_STATUS(%rbx)
	movl $1, CC_GFSELECT(%rbx)
	movl $1, CC_GF(%rbx)
	movl $0, CC_GFSELECT(%rbx)
	movl $0, CC_GF(%rbx)
	movb $0x0b, CC_STATUS(%rbx)
	testb $8, CC_STATUS(%rbx)
	jz fail
	ret
/* vqueue: queue 0 of AX entries at R9 (desc), R10 (avail), R11 (used), enabled. */
vqueue_std:
	mov $Q_DESC, %r9
	mov $Q_AVAIL, %r10
	mov $Q_USED, %r11
vqueue:
	movw $0, CC_QSEL(%rbx)
	mov %ax, CC_QSIZE(%rbx)
	mov %r9, %rax
	mov %eax, CC_QDESC(%rbx)
	shr $32, %rax
	mov %eax, CC_QDESC + 4(%rbx)
	mov %r10d, CC_QAVAIL(%rbx)
	movl $0, CC_QAVAIL + 4(%rbx)
	mov %r11d, CC_QUSED(%rbx)
	movl $0, CC_QUSED + 4(%rbx)
	movw $1, CC_QENABLE(%rbx)
	ret
vlive:
	movb $0x0f, CC_STATUS(%rbx)
	ret
/* vsetup: zeroed rings, a live rng with one queue of 8. */
vsetup:
	mov $Q_DESC, %edi
	mov $0x3000, %ecx
	xor %eax, %eax
	cld
	rep stosb
	call vinit
	mov $8, %ax
	call vqueue_std
	jmp vlive

/* wait_used: the used index reaches CX, or fail. */
wait_used:
	push %rdx
	mov $LSR, %dx
	mov $200000, %r8d          /* each turn an exit: a few seconds at most */
1:	cmpw %cx, Q_USED + 2
	je 2f
	in %dx, %al
	dec %r8d
	jnz 1b
	jmp fail
2:	pop %rdx
	ret
/* wait_nr: the device sets NEEDS_RESET, or fail. */
wait_nr:
	mov $200000, %r8d          /* each read an exit */
1:	testb $NEEDS_RESET, CC_STATUS(%rbx)
	jnz 3f
	dec %r8d
	jnz 1b
	jmp fail
3:	ret

/* gp_setup: an IDT whose vector 13 counts #GPs in R15 and skips the
 * 2-byte RDMSR/WRMSR (the pattern of tiny.S's msr action). */
gp_setup:
	lea gp_handler(%rip), %rax
	lea idt(%rip), %rdi
	mov %ax, 13 * 16(%rdi)
	mov %cs, %cx
	mov %cx, 13 * 16 + 2(%rdi)
	movw $0x8e00, 13 * 16 + 4(%rdi)
	shr $16, %rax
	mov %ax, 13 * 16 + 6(%rdi)
	shr $16, %rax
	mov %eax, 13 * 16 + 8(%rdi)
	lidt idtr(%rip)
	ret
gp_handler:
	add $8, %rsp
	addq $2, (%rsp)
	inc %r15d
	iretq
/* rdmsr_range / wrmsr_range: R12D MSRs from ECX. */
rdmsr_range:
	push %rcx
	rdmsr
	pop %rcx
	inc %ecx
	dec %r12d
	jnz rdmsr_range
	ret
wrmsr_range:
	xor %eax, %eax
	xor %edx, %edx
	wrmsr
	inc %ecx
	dec %r12d
	jnz wrmsr_range
	ret

	.data
/* The attacks, by number (1-based): tests/hostile.sh names each. */
	.balign 4
attacks:
	.long a_desc_loop_self - attacks      /* 1 */
	.long a_desc_loop_pair - attacks
	.long a_desc_addr_oob - attacks
	.long a_desc_len_huge - attacks
	.long a_desc_len_zero - attacks       /* 5 */
	.long a_desc_next_oob - attacks
	.long a_desc_indirect - attacks
	.long a_desc_readable - attacks
	.long a_desc_in_mmio - attacks
	.long a_avail_runaway - attacks       /* 10 */
	.long a_avail_head_oob - attacks
	.long a_buf_alias_desc - attacks
	.long a_buf_alias_used - attacks
	.long a_buf_alias_avail - attacks
	.long a_ring_rewrite - attacks        /* 15 */
	.long a_used_over_desc - attacks
	.long a_status_clear - attacks
	.long a_driver_ok_early - attacks
	.long a_features_unoffered - attacks
	.long a_qsize_npot - attacks          /* 20 */
	.long a_qsize_huge - attacks
	.long a_qaddr_oob - attacks
	.long a_queue_reprogram_live - attacks
	.long a_qselect_oob - attacks
	.long a_notify_storm - attacks        /* 25 */
	.long a_notify_bad - attacks
	.long a_msix_storm - attacks
	.long a_msix_vector_oob - attacks
	.long a_msix_table_oob - attacks
	.long a_bar_onto_ram - attacks        /* 30 */
	.long a_bar_over_other - attacks
	.long a_bar_outside_window - attacks
	.long a_bar_storm - attacks
	.long a_pci_cfg_storm - attacks
	.long a_pci_cfg_odd - attacks         /* 35 */
	.long a_uart_storm - attacks
	.long a_rtc_storm - attacks
	.long a_i8042_storm - attacks
	.long a_acpi_pm_storm - attacks
	.long a_pvpanic_storm - attacks       /* 40 */
	.long a_port_in_all - attacks
	.long a_port_out_all - attacks
	.long a_port_wide_all - attacks
	.long a_msr_read_probe - attacks
	.long a_msr_write_probe - attacks     /* 45 */
	.long a_rep_ins_huge - attacks
	.long a_rep_outs_huge - attacks
	.long a_rep_ins_mmio - attacks
	.long a_mmio_odd - attacks
	.long a_mmio_hole_storm - attacks     /* 50 */
	.long a_vsock_flood - attacks
	.long a_console_flood - attacks
	.long a_net_idle - attacks
	.long a_vsock_peer_gone - attacks
	.long a_blk_faults - attacks
attacks_end:

hello:	.asciz "hostile: hello\n"
blk_w:	.asciz "blk: w="
blk_r:	.asciz " r="
ok_msg:	.asciz "hostile: ok\n"
net_live: .asciz "hostile: net live\n"
failed:	.asciz "hostile: FAILED\n"
flood:	.asciz "hostile: flood flood flood flood flood flood flood flood flood\n"
	.balign 16
idt:	.fill 32 * 16, 1, 0
idtr:	.word 32 * 16 - 1
	.quad idt
