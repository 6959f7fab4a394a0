/* svm_state — a vCPU's VMCB: its controls (intercepts, permission maps,
 * nested paging, ASID) and its state save area as the core's
 * struct vcpu_state, both ways. What VMRUN checks (APM vol. 2 15.5.1, and
 * METAL-LAB.md §4 for what QEMU checks) is kept true here: EFER.SVME set,
 * CR0.CD/NW consistent, CR0/CR3/CR4/DR6/DR7 reserved bits clear, LMA
 * matching LME and CR0.PG, the VMRUN intercept on, a non-zero ASID. */
#include <string.h>

#include "arch/x86/cpu_state.h"
#include "svm/svm_int.h"
#include "svm/vmcb.h"

#define CR0_PE (1ull << 0)
#define CR0_ET (1ull << 4)
#define CR0_NW (1ull << 29)
#define CR0_CD (1ull << 30)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
/* CR4's defined bits: VME..LA57 (0-12), FSGSBASE, PCIDE, OSXSAVE (16-18),
 * SMEP, SMAP, PKE, CET (20-23); VMRUN refuses a VMCB with any other. */
#define CR4_DEFINED 0xf71fffull

void svm_vmcb_init(struct svm *s, struct svm_vcpu *v)
{
	uint8_t *c = v->vmcb;
	memset(c, 0, 4096);
	vmcb_w32(c, VMCB_INTERCEPT_MISC1,
		 ICPT_INTR | ICPT_NMI | ICPT_CPUID | ICPT_INVD | ICPT_HLT | ICPT_INVLPGA | ICPT_IOIO | ICPT_MSR |
			 ICPT_SHUTDOWN);
	vmcb_w32(c, VMCB_INTERCEPT_MISC2,
		 ICPT_VMRUN | ICPT_VMMCALL | ICPT_VMLOAD | ICPT_VMSAVE | ICPT_STGI | ICPT_CLGI | ICPT_SKINIT |
			 ICPT_MONITOR | ICPT_MWAIT | ICPT_MWAIT_C);
	vmcb_w64(c, VMCB_IOPM_BASE, (uint64_t)(uintptr_t)s->iopm);
	vmcb_w64(c, VMCB_MSRPM_BASE, (uint64_t)(uintptr_t)s->msrpm);
	/* ASID 0 is the host's; vCPUs each have their own (they run on
	 * distinct host CPUs, but distinct ASIDs cost nothing). */
	vmcb_w32(c, VMCB_ASID, 1 + (s->asids > 1 ? v->id % (s->asids - 1) : 0));
	vmcb_w64(c, VMCB_INT_CTL, INT_CTL_V_INTR_MASKING);
	vmcb_w64(c, VMCB_NP_ENABLE, 1);
	vmcb_w64(c, VMCB_N_CR3, (uint64_t)(uintptr_t)s->npt);
	vmcb_w64(c, VMCB_G_PAT, 0x0007040600070406ull);
	vmcb_w64(c, VMCB_DR6, 0xffff0ff0ull);
	vmcb_w64(c, VMCB_DR7, 0x400ull);
	v->flush_tlb = true;
}

static uint16_t attr_of(const struct x86_seg *g)
{
	return (uint16_t)((g->type & 0xf) | (g->s & 1) << 4 | (g->dpl & 3) << 5 | (g->present & 1) << 7 |
			  (g->l & 1) << 9 | (g->db & 1) << 10 | (g->g & 1) << 11);
}

static void seg_put(uint8_t *c, unsigned off, const struct x86_seg *g)
{
	*(uint16_t *)(c + off) = g->selector;
	*(uint16_t *)(c + off + 2) = attr_of(g);
	*(uint32_t *)(c + off + 4) = g->limit;
	*(uint64_t *)(c + off + 8) = g->base;
}

static void seg_get(const uint8_t *c, unsigned off, struct x86_seg *g)
{
	uint16_t a = *(const uint16_t *)(c + off + 2);
	*g = (struct x86_seg){
		.selector = *(const uint16_t *)(c + off),
		.limit = *(const uint32_t *)(c + off + 4),
		.base = *(const uint64_t *)(c + off + 8),
		.type = a & 0xf, .s = (a >> 4) & 1, .dpl = (a >> 5) & 3, .present = (a >> 7) & 1,
		.l = (a >> 9) & 1, .db = (a >> 10) & 1, .g = (a >> 11) & 1,
	};
}

void svm_state_get(const struct svm_vcpu *v, struct vcpu_state *st)
{
	const uint8_t *c = v->vmcb;
	const uint64_t *g = v->gpr;
	*st = (struct vcpu_state){
		.rax = g[GPR_RAX], .rbx = g[GPR_RBX], .rcx = g[GPR_RCX], .rdx = g[GPR_RDX], .rsi = g[GPR_RSI],
		.rdi = g[GPR_RDI], .rsp = g[GPR_RSP], .rbp = g[GPR_RBP], .r8 = g[GPR_R8], .r9 = g[GPR_R9],
		.r10 = g[GPR_R10], .r11 = g[GPR_R11], .r12 = g[GPR_R12], .r13 = g[GPR_R13], .r14 = g[GPR_R14],
		.r15 = g[GPR_R15],
		.rip = vmcb_r64(c, VMCB_RIP), .rflags = vmcb_r64(c, VMCB_RFLAGS),
		.gdt_base = vmcb_r64(c, VMCB_GDTR + 8), .gdt_limit = (uint16_t)vmcb_r32(c, VMCB_GDTR + 4),
		.idt_base = vmcb_r64(c, VMCB_IDTR + 8), .idt_limit = (uint16_t)vmcb_r32(c, VMCB_IDTR + 4),
		.cr0 = vmcb_r64(c, VMCB_CR0), .cr2 = vmcb_r64(c, VMCB_CR2), .cr3 = vmcb_r64(c, VMCB_CR3),
		.cr4 = vmcb_r64(c, VMCB_CR4), .cr8 = vmcb_r64(c, VMCB_INT_CTL) & 0xf,
		.efer = vmcb_r64(c, VMCB_EFER) & ~EFER_SVME, .apic_base = v->apic_base,
	};
	seg_get(c, VMCB_CS, &st->cs);
	seg_get(c, VMCB_DS, &st->ds);
	seg_get(c, VMCB_ES, &st->es);
	seg_get(c, VMCB_FS, &st->fs);
	seg_get(c, VMCB_GS, &st->gs);
	seg_get(c, VMCB_SS, &st->ss);
	seg_get(c, VMCB_TR, &st->tr);
	seg_get(c, VMCB_LDTR, &st->ldt);
}

void svm_state_set(struct svm_vcpu *v, const struct vcpu_state *st)
{
	uint8_t *c = v->vmcb;
	uint64_t *g = v->gpr;
	g[GPR_RAX] = st->rax; g[GPR_RBX] = st->rbx; g[GPR_RCX] = st->rcx; g[GPR_RDX] = st->rdx;
	g[GPR_RSI] = st->rsi; g[GPR_RDI] = st->rdi; g[GPR_RSP] = st->rsp; g[GPR_RBP] = st->rbp;
	g[GPR_R8] = st->r8; g[GPR_R9] = st->r9; g[GPR_R10] = st->r10; g[GPR_R11] = st->r11;
	g[GPR_R12] = st->r12; g[GPR_R13] = st->r13; g[GPR_R14] = st->r14; g[GPR_R15] = st->r15;
	vmcb_w64(c, VMCB_RIP, st->rip);
	vmcb_w64(c, VMCB_RFLAGS, st->rflags | 2);
	seg_put(c, VMCB_CS, &st->cs);
	seg_put(c, VMCB_DS, &st->ds);
	seg_put(c, VMCB_ES, &st->es);
	seg_put(c, VMCB_FS, &st->fs);
	seg_put(c, VMCB_GS, &st->gs);
	seg_put(c, VMCB_SS, &st->ss);
	seg_put(c, VMCB_TR, &st->tr);
	seg_put(c, VMCB_LDTR, &st->ldt);
	vmcb_w32(c, VMCB_GDTR + 4, st->gdt_limit);
	vmcb_w64(c, VMCB_GDTR + 8, st->gdt_base);
	vmcb_w32(c, VMCB_IDTR + 4, st->idt_limit);
	vmcb_w64(c, VMCB_IDTR + 8, st->idt_base);
	/* CR0: ET reads as one on every CPU since the 486; NW without CD is
	 * refused by VMRUN, so it is dropped rather than failing the entry. */
	uint64_t cr0 = (st->cr0 & 0xffffffffull) | CR0_ET;
	if ((cr0 & CR0_NW) && !(cr0 & CR0_CD))
		cr0 &= ~CR0_NW;
	vmcb_w64(c, VMCB_CR0, cr0);
	vmcb_w64(c, VMCB_CR2, st->cr2);
	vmcb_w64(c, VMCB_CR3, st->cr3);
	vmcb_w64(c, VMCB_CR4, st->cr4 & CR4_DEFINED);
	vmcb_w64(c, VMCB_INT_CTL, (vmcb_r64(c, VMCB_INT_CTL) & ~0xfull) | (st->cr8 & 0xf));
	uint64_t efer = (st->efer & (EFER_SCE | EFER_LME | EFER_NXE | EFER_LMSLE | EFER_FFXSR | EFER_TCE)) |
			EFER_SVME;
	if ((efer & EFER_LME) && (cr0 & CR0_PG))
		efer |= EFER_LMA;
	vmcb_w64(c, VMCB_EFER, efer);
	/* CPL is SS.DPL in protected mode, 0 in real mode */
	*(c + VMCB_CPL) = (cr0 & CR0_PE) ? (st->ss.dpl & 3) : 0;
	v->apic_base = st->apic_base;
	v->has_state = true;
}

/* The state a vCPU has after INIT, as KVM's: real mode at the reset vector. */
void svm_reset_state(struct vcpu_state *st, uint64_t apic_base)
{
	const struct x86_seg data = { .limit = 0xffff, .type = 3, .s = 1, .present = 1 };
	*st = (struct vcpu_state){
		.rip = 0xfff0, .rflags = 2, .cr0 = 0x60000010, .gdt_limit = 0xffff, .idt_limit = 0xffff,
		.rdx = 0x600, .apic_base = apic_base,
	};
	st->cs = (struct x86_seg){ .base = 0xffff0000, .limit = 0xffff, .selector = 0xf000, .type = 0xb, .s = 1,
				   .present = 1 };
	st->ds = st->es = st->fs = st->gs = st->ss = data;
	st->tr = (struct x86_seg){ .limit = 0xffff, .type = 0xb, .present = 1 };
	st->ldt = (struct x86_seg){ .limit = 0xffff, .type = 2, .present = 1 };
}
