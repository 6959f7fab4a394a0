/* The guest's answer where KVM's host MSR path differs (kvm_msr_guest.h). */
#include "kvm/kvm_msr_guest.h"

#include <string.h>

#define MSR_SMI_COUNT 0x34u
#define MSR_FEATURE_CONTROL 0x3au
#define MSR_SPEC_CTRL 0x48u
#define MSR_PRED_CMD 0x49u
#define MSR_UCODE_REV 0x8bu
#define MSR_SMBASE 0x9eu
#define MSR_APIC_BASE 0x1bu
#define MSR_ARCH_CAPABILITIES 0x10au
#define MSR_PLATFORM_INFO 0xceu
#define MSR_MCG_CTL 0x17bu
#define MSR_XFD 0x1c4u
#define MSR_XFD_ERR 0x1c5u
#define MSR_MISC_ENABLE 0x1a0u
#define MSR_MC0_CTL2 0x280u
#define MSR_PERF_CAPABILITIES 0x345u
#define MSR_MC0_CTL 0x400u
#define MSR_VMX_FIRST 0x480u /* IA32_VMX_BASIC */
#define MSR_VMX_LAST 0x491u  /* IA32_VMX_VMFUNC */
#define MSR_XSS 0xda0u
#define MSR_EFER 0xc0000080u
#define MSR_TSC_AUX 0xc0000103u
#define MSR_TSC_RATIO 0xc0000104u
#define MSR_HWCR 0xc0010015u
#define MSR_VM_HSAVE_PA 0xc0010117u
#define MSR_VIRT_SPEC_CTRL 0xc001011fu
#define MSR_DE_CFG 0xc0011029u
#define MCE_BANKS 32u /* KVM_MAX_MCE_BANKS */

#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define EFER_NX (1ull << 11)
#define EFER_SVME (1ull << 12)
#define EFER_FFXSR (1ull << 14)
#define CR0_PG (1ull << 31)
#define APIC_BASE_EXTD (1ull << 10)
#define APIC_BASE_EN (1ull << 11)
#define MISC_ENABLE_EMON (1ull << 7)
#define MISC_ENABLE_PMU_RO ((1ull << 11) | (1ull << 12)) /* BTS and PEBS unavailable */
#define MCG_CTL_P (1ull << 8)
#define MCG_CMCI_P (1ull << 10)
#define HWCR_MCSTATUSWREN (1ull << 18)

struct bit {
	uint32_t function, index;
	uint8_t reg; /* 0 eax .. 3 edx */
	uint8_t bit;
	uint8_t flag;
};

static const struct bit bits[] = {
	{ 0x80000001, 0, 3, 29, MSRG_F_LM },       { 0x80000001, 0, 3, 20, MSRG_F_NX },
	{ 0x80000001, 0, 3, 25, MSRG_F_FFXSR },    { 0x80000001, 0, 3, 27, MSRG_F_RDTSCP },
	{ 0x80000001, 0, 2, 2, MSRG_F_SVM },       { 1, 0, 2, 21, MSRG_F_X2APIC },
	{ 1, 0, 2, 15, MSRG_F_PDCM },              { 7, 0, 3, 26, MSRG_F_SPEC_CTRL },
	{ 7, 0, 3, 29, MSRG_F_ARCH_CAP },          { 7, 0, 2, 22, MSRG_F_RDPID },             { 0xd, 1, 0, 3, MSRG_F_XSAVES },
	{ 0xd, 1, 0, 4, MSRG_F_XFD },              { 0x80000008, 0, 1, 12, MSRG_F_AMD_IBPB },
	{ 0x80000008, 0, 1, 14, MSRG_F_AMD_IBRS }, { 0x80000008, 0, 1, 15, MSRG_F_AMD_STIBP },
	{ 0x80000008, 0, 1, 24, MSRG_F_AMD_SSBD }, { 0x80000008, 0, 1, 25, MSRG_F_VIRT_SSBD },
	{ 0x8000000a, 0, 3, 4, MSRG_F_TSCRATEMSR }, { 7, 0, 1, 1, MSRG_F_TSC_ADJUST },
};

static const struct cpuid_leaf *leaf(const struct cpuid_leaf *l, unsigned n, uint32_t function, uint32_t index)
{
	for (unsigned i = 0; i < n; i++)
		if (l[i].function == function && (!(l[i].flags & CPUID_FLAG_SIGNIFICANT_INDEX) || l[i].index == index))
			return &l[i];
	return NULL;
}

void kvm_msr_guest_init(struct kvm_msr_guest *g, const struct cpuid_leaf *l, unsigned n)
{
	memset(g, 0, sizeof(*g));
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		const struct cpuid_leaf *e = leaf(l, n, bits[i].function, bits[i].index);
		if (!e)
			continue;
		uint32_t regs[4] = { e->eax, e->ebx, e->ecx, e->edx };
		if (regs[bits[i].reg] >> bits[i].bit & 1)
			g->has |= 1u << bits[i].flag;
	}
	const struct cpuid_leaf *e = leaf(l, n, 0x80000008, 0);
	g->maxphyaddr = e && (e->eax & 0xff) ? (uint8_t)(e->eax & 0xff) : 36;
	if ((e = leaf(l, n, 0, 0))) {
		char v[12];
		memcpy(v, &e->ebx, 4);
		memcpy(v + 4, &e->edx, 4);
		memcpy(v + 8, &e->ecx, 4);
		g->amd = !memcmp(v, "AuthenticAMD", 12) || !memcmp(v, "HygonGenuine", 12);
	}
}

static bool has(const struct kvm_msr_guest *g, unsigned f)
{
	return g->has >> f & 1;
}

static bool is_mci_status(uint32_t i)
{
	return i >= MSR_MC0_CTL && i < MSR_MC0_CTL + 4 * MCE_BANKS && (i - MSR_MC0_CTL) % 4 == 1;
}

static bool is_mci_ctl2(uint32_t i)
{
	return i >= MSR_MC0_CTL2 && i < MSR_MC0_CTL2 + MCE_BANKS;
}

/* The MSRs a guest reaches only with the CPUID bit that names them; KVM's
 * host path skips that check both ways. -1: not gated. */
static int cpuid_gate(const struct kvm_msr_guest *g, uint32_t index)
{
	switch (index) {
	case MSR_XSS: return has(g, MSRG_F_XSAVES);
	case MSR_XFD:
	case MSR_XFD_ERR: return has(g, MSRG_F_XFD);
	case MSR_TSC_AUX: return has(g, MSRG_F_RDTSCP) || has(g, MSRG_F_RDPID);
	case MSR_SPEC_CTRL:
		return has(g, MSRG_F_SPEC_CTRL) || has(g, MSRG_F_AMD_STIBP) || has(g, MSRG_F_AMD_IBRS) ||
		       has(g, MSRG_F_AMD_SSBD);
	case MSR_PRED_CMD: return has(g, MSRG_F_SPEC_CTRL) || has(g, MSRG_F_AMD_IBPB);
	case MSR_VIRT_SPEC_CTRL: return has(g, MSRG_F_VIRT_SSBD);
	case MSR_TSC_RATIO: return has(g, MSRG_F_SVM) && has(g, MSRG_F_TSCRATEMSR);
	}
	return -1;
}

unsigned kvm_msr_guest_needs(uint32_t index, bool write)
{
	if (index == MSR_MCG_CTL || is_mci_ctl2(index))
		return MSRG_NEED_MCG_CAP;
	if (!write)
		return 0;
	switch (index) {
	case MSR_EFER: return MSRG_NEED_CUR | MSRG_NEED_CR0;
	case MSR_APIC_BASE:
	case MSR_MISC_ENABLE:
	case MSR_FEATURE_CONTROL:
	case MSR_DE_CFG: return MSRG_NEED_CUR;
	}
	return is_mci_status(index) ? MSRG_NEED_HWCR : 0;
}

static enum kvm_msr_answer check_read(const struct kvm_msr_guest *g, uint32_t index, const struct kvm_msr_state *s)
{
	switch (index) {
	case MSR_SMBASE: return MSRG_GP;
	case MSR_ARCH_CAPABILITIES: return has(g, MSRG_F_ARCH_CAP) ? MSRG_HOST : MSRG_GP;
	case MSR_PERF_CAPABILITIES: return has(g, MSRG_F_PDCM) ? MSRG_HOST : MSRG_GP;
	case MSR_MCG_CTL: return s->mcg_cap & MCG_CTL_P ? MSRG_HOST : MSRG_GP;
	}
	if (is_mci_ctl2(index))
		return s->mcg_cap & MCG_CMCI_P ? MSRG_HOST : MSRG_GP;
	return MSRG_HOST;
}

/* APIC base mode: 0 disabled, 1 xAPIC, 3 x2APIC (2 is invalid for both). */
static unsigned apic_mode(uint64_t base)
{
	return (base & APIC_BASE_EN ? 1u : 0u) | (base & APIC_BASE_EXTD ? 2u : 0u);
}

static bool efer_ok(const struct kvm_msr_guest *g, uint64_t efer, const struct kvm_msr_state *s)
{
	if ((efer & EFER_FFXSR && !has(g, MSRG_F_FFXSR)) || (efer & EFER_SVME && !has(g, MSRG_F_SVM)) ||
	    (efer & (EFER_LME | EFER_LMA) && !has(g, MSRG_F_LM)) || (efer & EFER_NX && !has(g, MSRG_F_NX)))
		return false;
	return !(s->cr0 & CR0_PG) || !((s->cur ^ efer) & EFER_LME);
}

static enum kvm_msr_answer check_write(const struct kvm_msr_guest *g, uint32_t index, uint64_t *value,
				       const struct kvm_msr_state *s)
{
	uint64_t v = *value;
	if (index >= MSR_VMX_FIRST && index <= MSR_VMX_LAST)
		return MSRG_GP; /* read-only to the guest */
	switch (index) {
	case MSR_ARCH_CAPABILITIES:
	case MSR_PERF_CAPABILITIES:
	case MSR_SMBASE:
	case MSR_SMI_COUNT:
	case MSR_PLATFORM_INFO: return MSRG_GP;
	case MSR_UCODE_REV: return MSRG_DROP;
	case MSRG_MSR_TSC: return MSRG_TSC;
	case MSRG_MSR_TSC_ADJUST: return has(g, MSRG_F_TSC_ADJUST) ? MSRG_TSC : MSRG_DROP;
	case MSR_EFER: return efer_ok(g, v, s) ? MSRG_HOST : MSRG_GP;
	case MSR_APIC_BASE: {
		unsigned from = apic_mode(s->cur), to = apic_mode(v);
		return (from == 3 && to == 1) || (from == 0 && to == 3) ? MSRG_GP : MSRG_HOST;
	}
	case MSR_MISC_ENABLE:
		if ((s->cur ^ v) & MISC_ENABLE_PMU_RO)
			return MSRG_GP;
		*value = (v & ~MISC_ENABLE_EMON) | (s->cur & MISC_ENABLE_EMON);
		return MSRG_HOST;
	case MSR_FEATURE_CONTROL: return s->cur & 1 ? MSRG_GP : MSRG_HOST; /* locked */
	case MSR_DE_CFG: return v != s->cur ? MSRG_GP : MSRG_HOST;
	case MSR_VM_HSAVE_PA:
		return (v & 0xfff) || (g->maxphyaddr < 64 && v >> g->maxphyaddr) ? MSRG_GP : MSRG_HOST;
	case MSR_MCG_CTL: return s->mcg_cap & MCG_CTL_P ? MSRG_HOST : MSRG_GP;
	}
	if (is_mci_ctl2(index))
		return s->mcg_cap & MCG_CMCI_P ? MSRG_HOST : MSRG_GP;
	if (is_mci_status(index) && v != 0 && !(g->amd && s->hwcr & HWCR_MCSTATUSWREN))
		return MSRG_GP;
	return MSRG_HOST;
}

enum kvm_msr_answer kvm_msr_guest_check(const struct kvm_msr_guest *g, uint32_t index, bool write, uint64_t *value,
					const struct kvm_msr_state *s)
{
	if (cpuid_gate(g, index) == 0)
		return MSRG_GP;
	return write ? check_write(g, index, value, s) : check_read(g, index, s);
}
