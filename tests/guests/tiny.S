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
 *   pioloop   256 Ki reads of a claimed port, then S5 (bench/policy.py)
 *   peek      map a kernel half (0xffffffff80000000 -> gpa 0, one 2 MiB
 *             page), print, put 0x1234abcd in r12 and spin: for the
 *             introspection calls and the core dump
 *   msr       with a #GP handler: RDMSR 0x10 (prints the value or "gp"),
 *             WRMSR 0xc0000102 (prints "ok" or "gp"), then S5
 *   msrpriv   with a #GP handler, the MSR accesses KVM lets only its host
 *             make, or checks only for a guest (msrpriv_tab): one line each,
 *             "tiny: msrpriv r|w INDEX gp|ok|VALUE", then S5
 *   tscwrite  with a #GP handler: the TSC written 2^40 ahead, then
 *             TSC_ADJUST 2^40 back; says whether each write moved the
 *             other as on hardware, and whether any took a #GP
 *   wallclock with a #GP handler: WRMSR MSR_KVM_WALL_CLOCK_NEW (gpa
 *             0x300000) whatever CPUID says; "tiny: kvmclock gp", or
 *             "tiny: kvmclock sec=" and the host seconds KVM wrote there
 *   msrloop   RDMSR 0x10 over and over: "." when read, "G" on #GP (a
 *             policy swapped live changes what it prints)
 *   cpuid     CPUID 1's hypervisor bit, and CPUID 0x40000010 checked
 *             against 0x76696731 ("vig1", what the test policy redirects)
 *   hammer    reads the unclaimed port 0x1234 200000 times as fast as it
 *             can (the audit log coalesces it), then S5
 *   spin      count in memory forever, a dot now and then (gdb's target)
 *   idle      print, then HLT with interrupts off forever: a VM that stays
 *             up at no CPU cost (bench/density.py)
 *   snapcount a count in memory, r12 and r13, printed "c=XXXX ok" each
 *             turn, forever (snapshots: it must go on after a restore)
 *   snap      count in memory, r12 and r13, reporting to ports 0x510/0x514
 *             (tests/kvm_snap_check.c: state carried across a snapshot)
 *   timer     ten PIT ticks through the 8259 taken in HLT, "tiny: timer ok"
 *   memtouch  write one word in each 4 KiB page of guest RAM from 16 MiB
 *             to 208 MiB (192 MiB made resident: tests/jail.sh's memory
 *             limit must stop it), "tiny: touched", then S5 */
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
#elif defined(ACTION_flood)
	/* Prints without pause, never reading anything (tests/native.sh: a
	 * stdout nobody reads, the console file's cap). */
1:	lea flood_line(%rip), %rsi
	call puts
	jmp 1b
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
#elif defined(ACTION_spin)
	/* For gdb (tests/gdb.sh): a counter in memory, bumped at spin_loop
	 * (a fixed address for a breakpoint, from nm), and a dot every 64 Ki
	 * turns, so a guest that runs on after detach can be seen to. */
	.globl spin_loop, spin_count
1:	xor %ecx, %ecx
spin_loop:
	incq spin_count(%rip)
	inc %ecx
	cmp $0x10000, %ecx
	jne spin_loop
	mov $'.', %al
	call putc
	jmp 1b
	.balign 8
spin_count:
	.quad 0
#elif defined(ACTION_memtouch)
	mov $(16 << 20), %rdi
1:	movq %rdi, (%rdi)
	add $4096, %rdi
	cmp $(208 << 20), %rdi
	jb 1b
	lea touched(%rip), %rsi
	call puts
	jmp poweroff
	.pushsection .data
touched: .asciz "tiny: touched\n"
	.popsection
#elif defined(ACTION_pioloop)
	/* bench/policy.py: 256 Ki port reads of COM1's scratch register (a
	 * claimed port, served by the UART), one exit each, then S5. */
	mov $0x40000, %ecx
1:	mov $(COM1 + 7), %dx
	in %dx, %al
	dec %ecx
	jnz 1b
	jmp poweroff
#elif defined(ACTION_peek)
	/* Where Linux has its kernel: PML4[511] -> PDPT[510] -> PD[0], a 2 MiB
	 * page at gpa 0, so a virtual address differs from its physical one.
	 * Identity-mapped here, so lea gives physical addresses. */
	mov %cr3, %rax
	and $~0xfff, %rax
	lea peek_pdpt(%rip), %rbx
	lea peek_pd(%rip), %rcx
	lea 3(%rbx), %rdx
	mov %rdx, 511*8(%rax)
	lea 3(%rcx), %rdx
	mov %rdx, 510*8(%rbx)
	movq $0x83, (%rcx)         /* P | W | PS */
	mov %rax, %cr3
	lea peek_msg(%rip), %rsi
	call puts
	mov $0x1234abcd, %r12
	cli
1:	jmp 1b
	.pushsection .data
	.balign 4096
peek_pdpt: .fill 512, 8, 0
peek_pd: .fill 512, 8, 0
peek_msg: .asciz "tiny: peek\n"
	.popsection
#elif defined(ACTION_msr)
	call gp_setup
	xor %r15d, %r15d           /* the #GP handler sets it */
	mov $0x10, %ecx            /* IA32_TIME_STAMP_COUNTER */
	rdmsr
	test %r15d, %r15d
	jz 1f
	lea msr_read_gp(%rip), %rsi
	call puts
	jmp 2f
1:	mov %eax, %eax
	shl $32, %rdx
	or %rdx, %rax
	push %rax
	lea msr_read_val(%rip), %rsi
	call puts
	pop %rax
	call puthex_nl
2:	xor %r15d, %r15d
	mov $0xc0000102, %ecx      /* IA32_KERNEL_GS_BASE: harmless here */
	mov $0x1234, %eax
	xor %edx, %edx
	wrmsr
	test %r15d, %r15d
	jz 3f
	lea msr_write_gp(%rip), %rsi
	call puts
	jmp poweroff
3:	lea msr_write_ok(%rip), %rsi
	call puts
	jmp poweroff
#elif defined(ACTION_wallclock)
	call gp_setup
	xor %r15d, %r15d
	mov $0x4b564d00, %ecx
	mov $0x300000, %eax
	xor %edx, %edx
	wrmsr
	lea wall_gp(%rip), %rsi
	test %r15d, %r15d
	jnz 1f
	lea wall_sec(%rip), %rsi
	call puts
	mov 0x300004, %eax        /* struct pvclock_wall_clock: version, sec, nsec */
	call puthex_nl
	jmp poweroff
1:	call puts
	jmp poweroff

	.data
wall_gp: .asciz "tiny: kvmclock gp\n"
wall_sec: .asciz "tiny: kvmclock sec="
	.text
#elif defined(ACTION_tscwrite)
	call gp_setup
	xor %r15d, %r15d
	mov $1, %rbx
	shl $40, %rbx              /* the jump J: 2^40 cycles */
	mov $0x3b, %ecx
	call rdmsr64
	mov %rax, %r12             /* A0: TSC_ADJUST before */
	mov $0x10, %ecx            /* the TSC read as an MSR: kvm_pvm's RDTSC */
	call rdmsr64               /* does not show the guest's offset */
	mov %rax, %r13             /* T0 */
	add %rbx, %rax
	mov $0x10, %ecx
	call wrmsr64               /* TSC = T0 + J */
	mov $0x10, %ecx
	call rdmsr64
	sub %r13, %rax
	sub %rbx, %rax             /* T1 - T0 - J: a little if it moved */
	lea tsc_moved(%rip), %rsi
	call say_small
	mov $0x3b, %ecx
	call rdmsr64
	mov %rax, %r14             /* A1 */
	sub %r12, %rax
	neg %rax
	add %rbx, %rax             /* J - (A1 - A0): a little if it moved */
	lea tsc_adjusted(%rip), %rsi
	call say_small
	mov %r14, %rax
	sub %rbx, %rax
	mov $0x3b, %ecx
	call wrmsr64               /* TSC_ADJUST = A1 - J */
	mov $0x10, %ecx
	call rdmsr64
	sub %r13, %rax             /* T2 - T0: a little if the TSC came back */
	lea tsc_back(%rip), %rsi
	call say_small
	lea tsc_gp_no(%rip), %rsi
	test %r15d, %r15d
	jz 1f
	lea tsc_gp_yes(%rip), %rsi
1:	call puts
	jmp poweroff
/* rdmsr64: MSR ECX into RAX (0 on #GP); wrmsr64: RAX into MSR ECX. */
rdmsr64:
	xor %eax, %eax
	xor %edx, %edx
	rdmsr
	shl $32, %rdx
	mov %eax, %eax
	or %rdx, %rax
	ret
wrmsr64:
	mov %rax, %rdx
	shr $32, %rdx
	wrmsr
	ret
/* say_small: puts RSI, then "yes" if RAX is in [0, 2^36) (2^36 cycles:
 * half a minute and more for the exits between), else "no". */
say_small:
	push %rax
	call puts
	pop %rax
	lea tsc_no(%rip), %rsi
	shr $36, %rax
	jnz 1f
	lea tsc_yes(%rip), %rsi
1:	jmp puts

	.data
tsc_moved: .asciz "tiny: tsc write moved the tsc "
tsc_adjusted: .asciz "tiny: tsc write moved tsc_adjust "
tsc_back: .asciz "tiny: tsc_adjust write moved the tsc back "
tsc_yes: .asciz "yes\n"
tsc_no: .asciz "no\n"
tsc_gp_no: .asciz "tiny: tsc no gp\n"
tsc_gp_yes: .asciz "tiny: tsc gp\n"
	.text
#elif defined(ACTION_msrpriv)
	call gp_setup
	lea msrpriv_tab(%rip), %r12
1:	mov (%r12), %r13d          /* the MSR; 0 ends the table */
	test %r13d, %r13d
	jz poweroff
	lea msrpriv_pre(%rip), %rsi
	call puts
	mov 4(%r12), %r14d         /* 0 read, 1 write, 2 set bits, 3 clear bits */
	mov $'r', %al
	test %r14d, %r14d
	jz 2f
	mov $'w', %al
2:	call putc
	mov $' ', %al
	call putc
	mov %r13, %rax
	call puthex
	mov $' ', %al
	call putc
	xor %r15d, %r15d
	mov %r13d, %ecx
	cmp $2, %r14d
	jb 3f
	rdmsr                      /* read-modify-write */
	shl $32, %rdx
	or %rdx, %rax
	mov 8(%r12), %rbx
	cmp $3, %r14d
	je 4f
	or %rbx, %rax
	jmp 5f
4:	not %rbx
	and %rbx, %rax
	jmp 5f
3:	test %r14d, %r14d
	jz 6f
	mov 8(%r12), %rax
5:	mov %rax, %rdx
	shr $32, %rdx
	mov %r13d, %ecx
	wrmsr
	test %r15d, %r15d
	jnz 7f
	lea msrpriv_ok(%rip), %rsi
	call puts
	jmp 8f
6:	rdmsr
	test %r15d, %r15d
	jnz 7f
	shl $32, %rdx
	mov %eax, %eax
	or %rdx, %rax
	call puthex_nl
	jmp 8f
7:	lea msrpriv_gp(%rip), %rsi
	call puts
8:	add $16, %r12
	jmp 1b

	.data
	.balign 8
/* index, what, value: a guest may never write the capability MSRs or
 * SMBASE; its microcode-revision write changes nothing; EFER.SVME needs
 * SVM in CPUID; EFER.LME cannot change under paging; x2APIC cannot go
 * back to xAPIC without disabling; MC0_STATUS takes only 0. The last two
 * are plain MSRs. */
msrpriv_tab:
	.long 0x10a, 1
	.quad 0
	.long 0x345, 1
	.quad 0
	.long 0x9e, 1
	.quad 0x30000
	.long 0x9e, 0
	.quad 0
	.long 0x8b, 1
	.quad 0x4141414100000000
	.long 0x8b, 0
	.quad 0
	.long 0xc0000080, 2
	.quad 0x1000
	.long 0xc0000080, 3
	.quad 0x100
	.long 0xc0000080, 0
	.quad 0
	.long 0x1b, 2
	.quad 0x400
	.long 0x1b, 3
	.quad 0x400
	.long 0x1b, 0
	.quad 0
	.long 0x401, 1
	.quad 1
	.long 0xc0000102, 1
	.quad 0x1234
	.long 0xc0000102, 0
	.quad 0
	.long 0, 0
	.quad 0
msrpriv_pre: .asciz "tiny: msrpriv "
msrpriv_ok: .asciz "ok\n"
msrpriv_gp: .asciz "gp\n"
	.text
#elif defined(ACTION_msrloop)
	call gp_setup
1:	xor %r15d, %r15d
	mov $0x10, %ecx
	rdmsr
	mov $'.', %al
	test %r15d, %r15d
	jz 2f
	mov $'G', %al
2:	call putc
	mov $0x4000, %ecx           /* a pause between reads: each is an exit */
3:	dec %ecx
	jnz 3b
	jmp 1b
#elif defined(ACTION_cpuid)
	mov $1, %eax
	xor %ecx, %ecx
	cpuid
	lea cpuid_hv_set(%rip), %rsi
	bt $31, %ecx
	jc 1f
	lea cpuid_hv_clear(%rip), %rsi
1:	call puts
	mov $0x40000010, %eax
	xor %ecx, %ecx
	cpuid
	cmp $0x76696731, %eax
	jne 2f
	lea cpuid_ok(%rip), %rsi
	call puts
	jmp poweroff
2:	push %rax
	lea cpuid_bad(%rip), %rsi
	call puts
	pop %rax
	call puthex_nl
	jmp poweroff
#elif defined(ACTION_brand)
	/* tests/native.sh: the brand string (CPUID 0x80000002-4) and
	 * 0x80000001 ECX's CmpLegacy bit, as the guest sees them. */
	sub $64, %rsp
	mov %rsp, %rdi
	mov $0x80000002, %r8d
1:	mov %r8d, %eax
	xor %ecx, %ecx
	cpuid
	mov %eax, (%rdi)
	mov %ebx, 4(%rdi)
	mov %ecx, 8(%rdi)
	mov %edx, 12(%rdi)
	add $16, %rdi
	inc %r8d
	cmp $0x80000005, %r8d
	jne 1b
	movb $0, (%rdi)
	lea brand_is(%rip), %rsi
	call puts
	mov %rsp, %rsi
	call puts
	mov $0x80000001, %eax
	xor %ecx, %ecx
	cpuid
	lea brand_nocmp(%rip), %rsi
	bt $1, %ecx
	jnc 2f
	lea brand_cmp(%rip), %rsi
2:	call puts
	jmp poweroff
#elif defined(ACTION_snap)
	/* tests/kvm_snap_check.c: state a snapshot must carry. CR4 changed
	 * (OSFXSR), marks in FS base and KERNEL_GS_BASE (MSRs), then a count
	 * in memory at 0x200000 and in r12, r13 stepped by 3 each turn, and
	 * every 256 turns r12 out to port 0x510, r13 to 0x514, and a word read
	 * from port 0x518 written back to 0x51c. (No SSE:
	 * kvm_pvm emulates ring 0, and its emulator has none; the test puts
	 * its own marks in the XMM registers.) */
	mov %cr4, %rax
	or $0x600, %rax            /* OSFXSR | OSXMMEXCPT */
	mov %rax, %cr4
	mov $0xc0000100, %ecx      /* FS base */
	mov $0x5a5a0000, %eax
	xor %edx, %edx
	wrmsr
	mov $0xc0000102, %ecx      /* KERNEL_GS_BASE */
	mov $0x6b6b0000, %eax
	wrmsr
	xor %r12d, %r12d
	mov $7, %r13d
	movq $0, 0x200000
1:	incq 0x200000
	inc %r12
	add $3, %r13
	test $0xff, %r12b
	jnz 1b
	mov %r12d, %eax
	mov $0x510, %dx
	out %eax, %dx
	mov %r13d, %eax
	mov $0x514, %dx
	out %eax, %dx
	mov $0x518, %dx            /* a token from the host, echoed back */
	in %dx, %eax
	mov $0x51c, %dx
	out %eax, %dx
	jmp 1b
#elif defined(ACTION_snapcount)
	/* Snapshots (tests/snapshot.sh): a count kept three ways — in memory,
	 * in r12 and (times 3) in r13 — printed as "c=XXXX ok" (hex) after a delay
	 * each turn, "BAD" when the three disagree: a restore that lost a
	 * register or a page shows, and the numbers go on from the snapshot. */
	movq $0, snap_count(%rip)
	xor %r12, %r12
	xor %r13, %r13
1:	mov $0x3000, %ecx
2:	dec %ecx
	jnz 2b
	incq snap_count(%rip)
	inc %r12
	add $3, %r13
	mov $'c', %al
	call putc
	mov $'=', %al
	call putc
	mov $12, %cl
3:	mov %r12, %rax
	shr %cl, %rax
	and $0xf, %eax
	lea hexdigits(%rip), %rbx
	mov (%rbx,%rax), %al
	push %rcx
	call putc
	pop %rcx
	sub $4, %cl
	jns 3b
	mov snap_count(%rip), %rax
	cmp %r12, %rax
	jne 4f
	lea (%rax,%rax,2), %rax
	cmp %r13, %rax
	jne 4f
	lea snap_ok(%rip), %rsi
	call puts
	jmp 1b
4:	lea snap_bad(%rip), %rsi
	call puts
	jmp 1b
	.data
	.balign 8
snap_count: .quad 0
hexdigits: .ascii "0123456789abcdef"
snap_ok: .asciz " ok\n"
snap_bad: .asciz " BAD\n"
	.text
#elif defined(ACTION_idle)
	/* bench/density.py: "tiny: hello" (above) shows the guest ran; then it
	 * sleeps in HLT with interrupts off, so 100 of them cost no CPU and
	 * touch no more memory than this. */
	cli
1:	hlt
	jmp 1b
#elif defined(ACTION_timer)
	/* The PIT's IRQ 0 through the 8259 (virtual wire): ten ticks at 100 Hz
	 * taken in HLT, then "tiny: timer ok" and S5. A backend without the
	 * interrupt path never wakes the HLT: the test's timeout ends it. */
	mov $0x11, %al             /* ICW1: edge, cascade, ICW4 */
	out %al, $0x20
	out %al, $0xa0
	mov $0x20, %al             /* ICW2: vectors 0x20 and 0x28 */
	out %al, $0x21
	mov $0x28, %al
	out %al, $0xa1
	mov $4, %al                /* ICW3: the slave on IRQ 2 */
	out %al, $0x21
	mov $2, %al
	out %al, $0xa1
	mov $1, %al                /* ICW4: 8086 mode */
	out %al, $0x21
	out %al, $0xa1
	mov $0xfe, %al             /* only IRQ 0 */
	out %al, $0x21
	mov $0xff, %al
	out %al, $0xa1
	lea timer_handler(%rip), %rax
	lea timer_idt(%rip), %rdi
	mov %ax, 0x20 * 16(%rdi)
	mov %cs, %cx
	mov %cx, 0x20 * 16 + 2(%rdi)
	movw $0x8e00, 0x20 * 16 + 4(%rdi)
	shr $16, %rax
	mov %ax, 0x20 * 16 + 6(%rdi)
	shr $16, %rax
	mov %eax, 0x20 * 16 + 8(%rdi)
	lidt timer_idtr(%rip)
	mov $0x34, %al             /* PIT channel 0, mode 2, 11932: 100 Hz */
	out %al, $0x43
	mov $(11932 & 0xff), %al
	out %al, $0x40
	mov $(11932 >> 8), %al
	out %al, $0x40
	xor %r15d, %r15d
	sti
1:	hlt
	cmp $10, %r15d
	jb 1b
	cli
	lea timer_ok(%rip), %rsi
	call puts
	jmp poweroff
timer_handler:
	push %rax
	inc %r15d
	mov $0x20, %al             /* non-specific EOI */
	out %al, $0x20
	pop %rax
	iretq
	.pushsection .data
	.balign 16
timer_idt: .fill 48 * 16, 1, 0
timer_idtr: .word 48 * 16 - 1
	.quad timer_idt
timer_ok: .asciz "tiny: timer ok\n"
	.popsection
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
#if defined(ACTION_flood)
flood_line: .asciz "tiny: flood flood flood flood flood flood flood flood flood\n"
#endif
	.balign 8
idt_empty: .word 0
	.quad 0

#if defined(ACTION_msr) || defined(ACTION_cpuid) || defined(ACTION_msrloop) || defined(ACTION_msrpriv) || defined(ACTION_wallclock)
	.text
/* puthex_nl: RAX as 16 hex digits, then a newline; puthex without it. */
puthex_nl:
	call puthex
	mov $'\n', %al
	jmp putc
puthex:
	mov %rax, %rbx
	mov $16, %ecx
1:	rol $4, %rbx
	mov %bl, %al
	and $0xf, %al
	add $'0', %al
	cmp $'9', %al
	jbe 2f
	add $('a' - '9' - 1), %al
2:	push %rcx
	call putc
	pop %rcx
	dec %ecx
	jnz 1b
	ret
#endif

#if defined(ACTION_msr) || defined(ACTION_msrloop) || defined(ACTION_msrpriv) || defined(ACTION_tscwrite) || defined(ACTION_wallclock)
/* gp_setup: an IDT whose only gate, vector 13, is gp_handler: a #GP from
 * RDMSR/WRMSR sets R15 and resumes after the 2-byte instruction. */
gp_setup:
	lea gp_handler(%rip), %rax
	lea idt(%rip), %rdi
	mov %ax, 13 * 16(%rdi)         /* offset 15:0 */
	mov %cs, %cx
	mov %cx, 13 * 16 + 2(%rdi)     /* selector */
	movw $0x8e00, 13 * 16 + 4(%rdi) /* present, DPL 0, 64-bit interrupt gate */
	shr $16, %rax
	mov %ax, 13 * 16 + 6(%rdi)     /* offset 31:16 */
	shr $16, %rax
	mov %eax, 13 * 16 + 8(%rdi)    /* offset 63:32 */
	lidt idtr(%rip)
	ret
gp_handler:
	add $8, %rsp                   /* the error code */
	addq $2, (%rsp)                /* past RDMSR / WRMSR */
	mov $1, %r15d
	iretq

	.data
	.balign 16
idt:	.fill 32 * 16, 1, 0
idtr:	.word 32 * 16 - 1
	.quad idt
#endif

#if defined(ACTION_msr)
	.data
msr_read_gp: .asciz "tiny: msr read gp\n"
msr_read_val: .asciz "tiny: msr read 0x"
msr_write_gp: .asciz "tiny: msr write gp\n"
msr_write_ok: .asciz "tiny: msr write ok\n"
#endif

#if defined(ACTION_brand)
	.data
brand_is: .asciz "tiny: brand '"
brand_cmp: .asciz "'\ntiny: cmp_legacy 1\n"
brand_nocmp: .asciz "'\ntiny: cmp_legacy 0\n"
#endif

#if defined(ACTION_cpuid)
	.data
cpuid_hv_set: .asciz "tiny: cpuid hypervisor bit set\n"
cpuid_hv_clear: .asciz "tiny: cpuid hypervisor bit clear\n"
cpuid_ok: .asciz "tiny: cpuid redirect ok\n"
cpuid_bad: .asciz "tiny: cpuid redirect FAILED eax=0x"
#endif
