/* Tiny self-checking guests: minimal bzImages entered through the 64-bit
 * boot protocol, a few dozen instructions each, so they run at usable speed
 * even where guest ring-0 code is emulated (kvm_pvm runs only 64-bit guest
 * code). Built once per ACTION by the Makefile (`make guests`):
 *   poweroff  print, probe an unclaimed port (must read all ones), ACPI S5
 *   echo      echo COM1 input back until a newline, then ACPI S5
 *   kbdreset  i8042 reset (0xFE to port 0x64)
 *   acpireset the FADT reset register
 *   panic     pvpanic "panicked"
 *   triple    load an empty IDT and trap: a triple fault
 *   hang      spin with interrupts off (the host must stop vigil)
 *   wild      hostile: MMIO to nowhere, rep outs, odd widths, then S5
 *   hammer    reads the unclaimed port 0x1234 200000 times as fast as it
 *             can (the audit log coalesces it), then S5 */
#define COM1 0x3f8
#define LSR (COM1 + 5)
#define PM1A_CNT 0x604
#define S5 ((5 << 10) | (1 << 13))

/* The real-mode setup part: just a setup header (boot protocol 2.12). */
	.section .setup, "a"
	.org 0x1f1
	.byte 1                   /* setup_sects: setup is 2 sectors */
	.org 0x1fe
	.word 0xaa55
	.byte 0xeb, hdr_end - hdr_start /* jump over the header */
hdr_start:
	.ascii "HdrS"
	.word 0x020c              /* protocol 2.12 */
	.org 0x211
	.byte 0x01                /* loadflags: LOADED_HIGH */
	.org 0x22c
	.long 0x7fffffff          /* initrd_addr_max */
	.org 0x236
	.word 0x0001              /* xloadflags: XLF_KERNEL_64 */
	.long 255                 /* cmdline_size */
	.org 0x258
	.quad 0x100000            /* pref_address */
	.long 0x10000             /* init_size */
hdr_end:
	.org 0x400

	.text
	.code32
startup_32:                       /* unused: vigil enters at +0x200 */
	hlt
	.org 0x200
	.code64
	.globl _start
_start:
	mov $0x90000, %esp
	lea hello(%rip), %rsi
	call puts

#if defined(ACTION_poweroff)
	mov $0x1234, %dx          /* no device claims this port */
	in %dx, %al
	cmp $0xff, %al
	jne fail
	mov $0x1234, %dx
	in %dx, %ax
	cmp $0xffff, %ax
	jne fail
	lea denied_ok(%rip), %rsi
	call puts
	jmp poweroff
#elif defined(ACTION_echo)
1:	mov $LSR, %dx
2:	in %dx, %al
	test $1, %al              /* data ready */
	jz 2b
	mov $COM1, %dx
	in %dx, %al
	call putc
	cmp $'\n', %al
	jne 1b
	jmp poweroff
#elif defined(ACTION_kbdreset)
	mov $0xfe, %al
	out %al, $0x64
	jmp fail
#elif defined(ACTION_acpireset)
	mov $0x608, %dx
	mov $1, %al
	out %al, %dx
	jmp fail
#elif defined(ACTION_panic)
	mov $0x505, %dx
	mov $1, %al
	out %al, %dx
	jmp fail
#elif defined(ACTION_triple)
	lidt idt_empty(%rip)
	int3
	jmp fail
#elif defined(ACTION_hang)
	cli
1:	jmp 1b
#elif defined(ACTION_wild)
	mov $0xd0000000, %ebx      /* MMIO hole: nobody home */
	movl $0xdeadbeef, (%rbx)
	mov (%rbx), %eax
	cmp $0xffffffff, %eax
	jne fail
	mov $0x80, %dx
	lea hello(%rip), %rsi
	mov $8, %ecx
	rep outsb                  /* REP OUTS to an unclaimed port */
	mov $COM1 + 7, %dx         /* scratch register, word access */
	mov $0x5a5a, %ax
	out %ax, %dx
	lea denied_ok(%rip), %rsi
	call puts
	jmp poweroff
#elif defined(ACTION_count)
1:	mov $0x4000, %ecx         /* a dot per 16 Ki turns: progress you can watch */
2:	dec %ecx
	jnz 2b
	mov $'.', %al
	call putc
	jmp 1b
#elif defined(ACTION_hammer)
	mov $200000, %ecx
1:	mov $0x1234, %dx
	in %dx, %al
	dec %ecx
	jnz 1b
	lea denied_ok(%rip), %rsi
	call puts
	jmp poweroff
#elif defined(ACTION_cad)
	lea waiting(%rip), %rsi
	call puts
1:	mov $0x2000, %ecx          /* poll the i8042 gently: each IN is an exit */
2:	dec %ecx
	jnz 2b
	in $0x64, %al
	test $1, %al               /* output buffer full */
	jz 1b
	in $0x60, %al
	cmp $0x53, %al             /* Del's make code (after 0xe0), set 1 */
	jne 1b
	lea got_cad(%rip), %rsi
	call puts
	jmp poweroff
#else
#error "define ACTION_<name>"
#endif

poweroff:
	mov $PM1A_CNT, %dx
	mov $S5, %ax
	out %ax, %dx
fail:
	lea failed(%rip), %rsi
	call puts
	cli
1:	hlt
	jmp 1b

/* putc: AL to COM1 once the transmitter is empty. */
putc:
	push %rax
	mov $LSR, %dx
1:	in %dx, %al
	test $0x20, %al
	jz 1b
	pop %rax
	mov $COM1, %dx
	out %al, %dx
	ret

/* puts: the NUL-terminated string at ESI. */
puts:
	lodsb
	test %al, %al
	jz 1f
	call putc
	jmp puts
1:	ret

	.data
hello:	.asciz "tiny: hello\n"
denied_ok: .asciz "tiny: denied ok\n"
failed:	.asciz "tiny: FAILED\n"
waiting: .asciz "tiny: waiting for ctrl-alt-del\n"
got_cad: .asciz "tiny: got ctrl-alt-del\n"
	.balign 8
idt_empty: .word 0
	.quad 0
