/* svm_run — the world switch (svm_int.h: svm_vmrun).
 *   rdi: guest VMCB physical address   rsi: gprs[16]
 *   rdx: host-state page                ecx: nonzero: run with host IF=1
 * VMRUN swaps rax, rsp, rip and rflags itself; the 14 other general
 * registers are the guest's from here to the VMSAVE and are put back in
 * gprs[]. GIF stays clear from CLGI to STGI, so a physical interrupt is
 * held (or exits the guest as INTR) and never runs on guest registers. */
	.text
	.code64
	.globl svm_vmrun
	.type svm_vmrun, @function
svm_vmrun:
	push %rbp
	push %rbx
	push %r12
	push %r13
	push %r14
	push %r15
	push %rsi               /* 24(%rsp) after the two below */
	push %rdi               /* 16(%rsp) */
	push %rdx               /*  8(%rsp) */
	push %rcx               /*  0(%rsp) */
	mov %rdx, %rax
	vmsave %rax             /* the host's FS/GS/TR/LDTR/syscall MSRs */
	clgi
	cmpl $0, (%rsp)
	je 1f
	sti
1:	mov %rsi, %rax
	mov 1*8(%rax), %rcx
	mov 2*8(%rax), %rdx
	mov 3*8(%rax), %rbx
	mov 5*8(%rax), %rbp
	mov 6*8(%rax), %rsi
	mov 7*8(%rax), %rdi
	mov 8*8(%rax), %r8
	mov 9*8(%rax), %r9
	mov 10*8(%rax), %r10
	mov 11*8(%rax), %r11
	mov 12*8(%rax), %r12
	mov 13*8(%rax), %r13
	mov 14*8(%rax), %r14
	mov 15*8(%rax), %r15
	mov 16(%rsp), %rax
	vmload %rax
	vmrun %rax
	vmsave %rax
	push %rax               /* now 32(%rsp): gprs */
	mov 32(%rsp), %rax
	mov %rcx, 1*8(%rax)
	mov %rdx, 2*8(%rax)
	mov %rbx, 3*8(%rax)
	mov %rbp, 5*8(%rax)
	mov %rsi, 6*8(%rax)
	mov %rdi, 7*8(%rax)
	mov %r8, 8*8(%rax)
	mov %r9, 9*8(%rax)
	mov %r10, 10*8(%rax)
	mov %r11, 11*8(%rax)
	mov %r12, 12*8(%rax)
	mov %r13, 13*8(%rax)
	mov %r14, 14*8(%rax)
	mov %r15, 15*8(%rax)
	add $8, %rsp
	mov 8(%rsp), %rax
	vmload %rax             /* the host's state back */
	cli
	stgi
	add $32, %rsp
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbx
	pop %rbp
	ret
	.size svm_vmrun, . - svm_vmrun
	.section .note.GNU-stack, "", @progbits
