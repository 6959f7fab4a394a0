/* svm_msr — the guest's MSRs. Every RDMSR/WRMSR exits (the permission map
 * is all ones): on bare metal an MSR the guest reached directly would be
 * the host's own. Those a policy rule names (policy_msr_ranges: denied,
 * redirected or audited) go to the core as VEXIT_MSR, as KVM's filter
 * sends them; the rest the backend models here — the syscall, segment-base
 * and PAT MSRs through the VMCB (VMLOAD/VMSAVE switch them), the TSC
 * through the VMCB's offset, the APIC base, MTRRs as all-RAM-write-back,
 * the AMD configuration MSRs Linux reads — and anything else is #GP,
 * counted and logged the first few times. */
#include <stdio.h>
#include <string.h>

#include "core/vm.h"
#include "metal/metal.h"
#include "svm/svm_int.h"
#include "svm/vmcb.h"

#define MSRPM_BYTES 8192

struct trap_ctx {
	struct svm *s;
	unsigned n;
	bool fill;
};

static void on_range(void *ctx, uint32_t first, uint32_t last, bool read, bool write)
{
	struct trap_ctx *c = ctx;
	if (c->fill)
		c->s->msr_traps[c->n] = (struct svm_msr_trap){ first, last, read, write };
	c->n++;
}

int svm_msr_init(struct svm *s, char *err, size_t errlen)
{
	s->msrpm = metal_alloc_pages(MSRPM_BYTES, 4096);
	if (!s->msrpm) {
		snprintf(err, errlen, "no memory for the MSR permission map");
		return -1;
	}
	memset(s->msrpm, 0xff, MSRPM_BYTES);
	const struct policy *p = policy_enter(&s->vm->policy);
	struct trap_ctx c = { .s = s };
	if (p)
		policy_msr_ranges(p, on_range, &c);
	if (c.n) {
		s->msr_traps = metal_alloc_pages(c.n * sizeof(*s->msr_traps), 64);
		if (!s->msr_traps) {
			policy_leave(&s->vm->policy);
			snprintf(err, errlen, "no memory for the policy's MSR list");
			return -1;
		}
		c.n = 0;
		c.fill = true;
		policy_msr_ranges(p, on_range, &c);
	}
	s->nmsr_traps = c.n;
	policy_leave(&s->vm->policy);
	return 0;
}

bool svm_msr_trapped(const struct svm *s, uint32_t index, bool write)
{
	for (unsigned i = 0; i < s->nmsr_traps; i++) {
		const struct svm_msr_trap *t = &s->msr_traps[i];
		if (index >= t->first && index <= t->last)
			return write ? t->write : t->read;
	}
	return false;
}

/* PAT: every byte a defined memory type (0, 1, 4, 5, 6, 7). */
static bool pat_ok(uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		unsigned t = (v >> (8 * i)) & 0xff;
		if (t == 2 || t == 3 || t > 7)
			return false;
	}
	return true;
}

static bool canonical(uint64_t a)
{
	return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}

/* A segment base in the VMCB (segment layout: base at +8). */
static uint64_t *seg_base(struct svm_vcpu *v, unsigned seg)
{
	return (uint64_t *)(v->vmcb + seg + 8);
}

#define EFER_WRITABLE (EFER_SCE | EFER_LME | EFER_NXE | EFER_LMSLE | EFER_FFXSR | EFER_TCE)

/* The VMCB's MSRs: index → offset (0: not one of them). */
static unsigned vmcb_msr(uint32_t index)
{
	switch (index) {
	case 0x174: return VMCB_SYSENTER_CS;
	case 0x175: return VMCB_SYSENTER_ESP;
	case 0x176: return VMCB_SYSENTER_EIP;
	case 0xc0000081: return VMCB_STAR;
	case 0xc0000082: return VMCB_LSTAR;
	case 0xc0000083: return VMCB_CSTAR;
	case 0xc0000084: return VMCB_SFMASK;
	case 0xc0000102: return VMCB_KERNEL_GS_BASE;
	default: return 0;
	}
}

int svm_msr_emulate(struct svm *s, struct svm_vcpu *v, uint32_t index, uint64_t *value, bool write)
{
	(void)s;
	uint64_t x = write ? *value : 0;
	unsigned off = vmcb_msr(index);
	v->stats[ST_MSR_EMULATED]++;
	if (off) {
		if (write) {
			if ((index == 0xc0000082 || index == 0xc0000083 || index == 0xc0000102 || index == 0x175 ||
			     index == 0x176) && !canonical(x))
				return -1;
			vmcb_w64(v->vmcb, off, x);
		} else {
			*value = vmcb_r64(v->vmcb, off);
		}
		return 0;
	}
	switch (index) {
	case 0x10: /* TSC: the guest's is the host's plus the VMCB's offset */
		if (write)
			vmcb_w64(v->vmcb, VMCB_TSC_OFFSET, x - host_rdtsc());
		else
			*value = host_rdtsc() + vmcb_r64(v->vmcb, VMCB_TSC_OFFSET);
		return 0;
	case 0x1b: /* APIC base: BSP bit, enable, base; kept, not acted on */
		if (write) {
			if (x & ~0xffffff900ull) /* BSP, enable, base below 64 GiB; no x2APIC */
				return -1;
			v->apic_base = (x & ~0x100ull) | (v->id == 0 ? 0x100 : 0);
		} else {
			*value = v->apic_base;
		}
		return 0;
	case 0x8b:  /* AMD patch level: none */
	case 0x179: /* MCG_CAP: no banks */
	case 0x17a: /* MCG_STATUS */
	case 0xc0010010: /* SYSCFG: no SME/SEV, no MTRR extensions */
	case 0xc001001f: /* NB_CFG */
	case 0xc0010015: /* HWCR */
	case 0xc0011029: /* DE_CFG */
		if (!write)
			*value = index == 0xc0011029 ? 2 : 0; /* DE_CFG: LFENCE serializing */
		return 0;
	case 0x1d9: /* DEBUGCTL: kept, not acted on (no LBR virtualization) */
		if (write) {
			if (x & ~0x3full)
				return -1;
			v->debugctl = x;
		} else {
			*value = v->debugctl;
		}
		return 0;
	case 0x6e0: /* TSC_DEADLINE → the LAPIC model's timer */
		if (write)
			svm_irq_tsc_deadline(v, x);
		else
			*value = svm_irq_tsc_deadline_get(v);
		return 0;
	case 0x48: /* SPEC_CTRL: remembered; the host runs no other code to protect */
		if (write)
			v->spec_ctrl = x;
		else
			*value = v->spec_ctrl;
		return 0;
	case 0x49: /* PRED_CMD: write-only barrier */
		return write ? 0 : -1;
	case 0xfe: /* MTRRCAP: 8 variable, fixed, WC; no SMRR */
		if (write)
			return -1;
		*value = 0x500 | SVM_MTRR_VAR;
		return 0;
	case 0x2ff: /* MTRRdefType */
		if (write) {
			if (x & ~0xcffull)
				return -1;
			v->mtrr_def = x;
		} else {
			*value = v->mtrr_def;
		}
		return 0;
	case 0x277: /* PAT → the VMCB's guest PAT */
		if (write) {
			if (!pat_ok(x))
				return -1;
			vmcb_w64(v->vmcb, VMCB_G_PAT, x);
		} else {
			*value = vmcb_r64(v->vmcb, VMCB_G_PAT);
		}
		return 0;
	case MSR_EFER:
		if (write) {
			uint64_t cur = vmcb_r64(v->vmcb, VMCB_EFER);
			if (x & ~(EFER_WRITABLE | EFER_LMA))
				return -1;
			/* LMA is the CPU's to set; SVME stays on (VMRUN requires it) */
			x = (x & EFER_WRITABLE) | (cur & EFER_LMA) | EFER_SVME;
			vmcb_w64(v->vmcb, VMCB_EFER, x);
		} else {
			*value = vmcb_r64(v->vmcb, VMCB_EFER) & ~EFER_SVME;
		}
		return 0;
	case 0xc0000100: /* FS base */
	case 0xc0000101: /* GS base */
		if (write) {
			if (!canonical(x))
				return -1;
			*seg_base(v, index == 0xc0000100 ? VMCB_FS : VMCB_GS) = x;
		} else {
			*value = *seg_base(v, index == 0xc0000100 ? VMCB_FS : VMCB_GS);
		}
		return 0;
	case 0xc0000103: /* TSC_AUX (RDTSCP's; RDTSCP is not intercepted: kept only) */
		if (write) {
			if (x >> 32)
				return -1;
			v->tsc_aux = x;
		} else {
			*value = v->tsc_aux;
		}
		return 0;
	default:
		break;
	}
	if (index >= 0x200 && index < 0x200 + 2 * SVM_MTRR_VAR) {
		if (write)
			v->mtrr_var[index - 0x200] = x;
		else
			*value = v->mtrr_var[index - 0x200];
		return 0;
	}
	static const uint32_t fixed[11] = { 0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f };
	for (unsigned i = 0; i < 11; i++) {
		if (index != fixed[i])
			continue;
		if (write)
			v->mtrr_fixed[i] = x;
		else
			*value = v->mtrr_fixed[i];
		return 0;
	}
	v->stats[ST_MSR_EMULATED]--;
	v->stats[ST_MSR_UNKNOWN]++;
	if (v->unknown_msr_logged++ < 8)
		metal_log("vCPU %u: %s of unknown MSR %#x: #GP", v->id, write ? "WRMSR" : "RDMSR", index);
	return -1;
}
