/* The boot vCPU's state as a vcpu_state: what the boot protocols ask for,
 * laid over what the vCPU holds after reset. */
#include "arch/x86/cpu_state.h"

void cpu_state_boot(struct vcpu_state *s, const struct x86_boot_cpu *b)
{
	/* No general register the protocols do not name carries anything:
	 * after reset rdx holds the CPU signature, which no kernel wants. */
	s->rax = s->rbx = s->rcx = s->rdx = s->rsi = s->rdi = s->rsp = s->rbp = 0;
	s->r8 = s->r9 = s->r10 = s->r11 = s->r12 = s->r13 = s->r14 = s->r15 = 0;
	s->rip = b->rip;
	s->rsi = b->rsi;
	s->rbx = b->rbx;
	s->rsp = b->rsp;
	s->rflags = b->rflags ? b->rflags : 2; /* bit 1 always reads as one */
	s->cs = b->cs;
	s->ds = s->es = s->fs = s->gs = s->ss = b->ds;
	s->gdt_base = b->gdt_base;
	s->gdt_limit = b->gdt_limit;
	s->idt_base = b->idt_base;
	s->idt_limit = b->idt_limit;
	s->cr0 = b->cr0;
	s->cr3 = b->cr3;
	s->cr4 = b->cr4;
	s->efer = b->efer;
}
