/* cpu_state — an x86-64 vCPU's architectural state as the core sees it,
 * whatever backend holds it: general registers, rip/rflags, segments,
 * descriptor tables, control registers, EFER and the APIC base. Read and
 * written on the vCPU's own thread through the mailbox (core/vcpu.h:
 * vcpu_get_state / vcpu_set_state); the backend converts (KVM: REGS + SREGS). */
#ifndef VIGIL_ARCH_X86_CPU_STATE_H
#define VIGIL_ARCH_X86_CPU_STATE_H

#include <stdint.h>

#include "arch/x86/boot.h"

struct vcpu_state {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip, rflags;
	struct x86_seg cs, ds, es, fs, gs, ss, tr, ldt;
	uint64_t gdt_base, idt_base;
	uint16_t gdt_limit, idt_limit;
	uint64_t cr0, cr2, cr3, cr4, cr8;
	uint64_t efer, apic_base;
};

/* Lays the boot vCPU's entry state (arch/x86/boot.h: bzImage or PVH)
 * over `s`, which holds the vCPU's state after reset: segments, tables,
 * control registers, EFER and the registers the protocols name; every other
 * general register zero. APIC base, TR and LDT stay as they were. */
void cpu_state_boot(struct vcpu_state *s, const struct x86_boot_cpu *b);

#endif
