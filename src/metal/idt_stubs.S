/* idt_stubs — the host's 256 interrupt entry points: each pushes a dummy
 * error code where the CPU pushes none, then its vector, and joins
 * idt_common, which saves the registers the C ABI lets a callee clobber and
 * calls metal_idt_dispatch(frame). Only general registers are saved: the
 * image's C code never touches SSE (-mgeneral-regs-only). */
	.text
	.code64

.macro STUB v
	.align 16
idt_stub_\v:
	.if (\v == 8) || (\v >= 10 && \v <= 14) || (\v == 17) || (\v == 21) || (\v == 29) || (\v == 30)
	.else
	pushq $0
	.endif
	pushq $\v
	jmp idt_common
.endm

	.globl metal_idt_stubs
	.align 16
metal_idt_stubs:
.altmacro
.set i, 0
.rept 256
	STUB %i
	.set i, i + 1
.endr

idt_common:
	push %rax
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %r8
	push %r9
	push %r10
	push %r11
	push %rbx
	push %rbp
	mov %rsp, %rdi
	mov %rsp, %rbx
	and $-16, %rsp
	cld
	call metal_idt_dispatch
	mov %rbx, %rsp
	pop %rbp
	pop %rbx
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rax
	add $16, %rsp              /* vector, error code */
	iretq
	.section .note.GNU-stack, "", @progbits
