#include "arch/x86/cpuid.h"

#include <string.h>

#include "core/policy.h"

#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_80000001_ECX_CMP_LEGACY (1u << 1)
#define CPUID_1_EDX_HTT (1u << 28)
#define TOPO_LEVEL_SMT 1u
#define TOPO_LEVEL_CORE 2u

static unsigned bits_for(unsigned n)
{
	unsigned b = 0;
	while ((1u << b) < n)
		b++;
	return b;
}

/* Leaves 0xB and 0x1F: SMT level of one thread, core level of ncpus. */
static void fix_topology(struct cpuid_leaf *l, unsigned cpu, unsigned ncpus)
{
	l->edx = cpu; /* x2APIC ID */
	switch (l->index) {
	case 0:
		l->eax = 0;
		l->ebx = 1;
		l->ecx = (TOPO_LEVEL_SMT << 8) | 0;
		break;
	case 1:
		l->eax = bits_for(ncpus);
		l->ebx = ncpus;
		l->ecx = (TOPO_LEVEL_CORE << 8) | 1;
		break;
	default:
		l->eax = 0;
		l->ebx = 0;
		l->ecx = l->index & 0xff; /* level type 0: invalid, ends the walk */
		break;
	}
}

/* Leaf 0's vendor, EBX-EDX-ECX: "GenuineIntel" and Zhaoxin's read
 * CmpLegacy as "no threads" and Linux then drops the multi-core
 * information, so only other vendors (AMD, Hygon) get the bit. */
static bool legacy_cmp_vendor(const struct cpuid_leaf *leaves, unsigned n)
{
	static const char *const no[] = { "GenuineIntel", "CentaurHauls", "  Shanghai  " };
	for (unsigned i = 0; i < n; i++) {
		if (leaves[i].function != 0)
			continue;
		char v[12];
		memcpy(v, &leaves[i].ebx, 4);
		memcpy(v + 4, &leaves[i].edx, 4);
		memcpy(v + 8, &leaves[i].ecx, 4);
		for (unsigned k = 0; k < sizeof(no) / sizeof(no[0]); k++)
			if (!memcmp(v, no[k], 12))
				return false;
		return true;
	}
	return false;
}

void cpuid_fixup(struct cpuid_leaf *leaves, unsigned n, unsigned cpu, unsigned ncpus)
{
	bool cmp_legacy = ncpus > 1 && legacy_cmp_vendor(leaves, n);
	for (unsigned i = 0; i < n; i++) {
		struct cpuid_leaf *l = &leaves[i];
		switch (l->function) {
		case 0x1:
			l->ebx = (l->ebx & 0x0000ffffu) | (cpu << 24) | ((ncpus & 0xff) << 16);
			l->ecx |= CPUID_1_ECX_HYPERVISOR;
			if (ncpus > 1)
				l->edx |= CPUID_1_EDX_HTT;
			break;
		case 0x4:
			/* Cores per package - 1 in EAX[31:26]; every cache is
			 * private except the last level, which all vCPUs share. */
			if (l->eax & 0x1f) {
				unsigned level = (l->eax >> 5) & 0x7;
				unsigned sharing = level >= 3 ? ncpus - 1 : 0;
				l->eax = (l->eax & 0x3ff) | ((sharing & 0xfff) << 14) |
					 (((ncpus - 1) & 0x3f) << 26);
			}
			break;
		case 0xB:
		case 0x1F:
			fix_topology(l, cpu, ncpus);
			break;
		case 0x80000001:
			/* AMD's "core multi-processing legacy mode": the logical
			 * processor count of leaf 1 counts cores, as QEMU sets it
			 * for non-Intel vendors with more than one. */
			if (cmp_legacy)
				l->ecx |= CPUID_80000001_ECX_CMP_LEGACY;
			break;
		case 0x80000008:
			/* AMD: NC = cores - 1, ApicIdCoreIdSize. */
			l->ecx = (l->ecx & ~0xf0ffu) | ((ncpus - 1) & 0xff) | (bits_for(ncpus) << 12);
			break;
		case 0x8000001E:
			l->eax = cpu; /* extended APIC ID */
			l->ebx = cpu & 0xff; /* core ID, one thread per core */
			l->ecx = 0;
			break;
		}
	}
}

void cpuid_set_brand(struct cpuid_leaf *leaves, unsigned n, const char *host_brand)
{
	struct cpuid_leaf *b[3] = { NULL, NULL, NULL };
	bool empty = true;
	for (unsigned i = 0; i < n; i++) {
		uint32_t f = leaves[i].function;
		if (f < 0x80000002 || f > 0x80000004)
			continue;
		b[f - 0x80000002] = &leaves[i];
		empty = empty && !(leaves[i].eax | leaves[i].ebx | leaves[i].ecx | leaves[i].edx);
	}
	if (!b[0] || !b[1] || !b[2] || !empty)
		return;
	/* 48 bytes, NUL-terminated: at most 47 characters of the name. */
	char s[48] = { 0 };
	const char *from = host_brand && host_brand[0] ? host_brand : CPUID_DEFAULT_BRAND;
	size_t len = strnlen(from, sizeof(s) - 1);
	memcpy(s, from, len);
	for (unsigned k = 0; k < 3; k++) {
		memcpy(&b[k]->eax, s + 16 * k, 4);
		memcpy(&b[k]->ebx, s + 16 * k + 4, 4);
		memcpy(&b[k]->ecx, s + 16 * k + 8, 4);
		memcpy(&b[k]->edx, s + 16 * k + 12, 4);
	}
}

unsigned cpuid_policy_extra(const struct policy *p)
{
	const struct policy_spec *s = policy_spec_of(p);
	unsigned n = 0;
	for (unsigned i = 0; i < s->nrules; i++)
		n += s->rules[i].resource == POL_RES_CPUID;
	return n;
}

/* Whether an entry answers CPUID(leaf, subleaf) the way KVM looks it up:
 * an entry without a significant index answers every subleaf. */
static bool answers(const struct cpuid_leaf *l, uint32_t leaf, uint32_t subleaf)
{
	return l->function == leaf && (!(l->flags & CPUID_FLAG_SIGNIFICANT_INDEX) || l->index == subleaf);
}

static struct cpuid_leaf *find(struct cpuid_leaf *leaves, unsigned n, uint32_t leaf, uint32_t subleaf)
{
	for (unsigned i = 0; i < n; i++)
		if (answers(&leaves[i], leaf, subleaf))
			return &leaves[i];
	return NULL;
}

/* Leaf ranges start at multiples of 0x10000000 (0, 0x40000000,
 * 0x80000000, 0xC0000000); their first leaf's EAX is the highest one. */
static void raise_max(struct cpuid_leaf *leaves, unsigned n, uint32_t leaf)
{
	struct cpuid_leaf *b = find(leaves, n, leaf & 0xf0000000u, 0);
	if (b && b->eax < leaf)
		b->eax = leaf;
}

unsigned cpuid_apply_policy(struct cpuid_leaf *leaves, unsigned n, unsigned cap, const struct policy *p)
{
	const struct policy_spec *s = policy_spec_of(p);
	/* Permissive mode computes (and counts) each redirect but the guest
	 * keeps what the hypervisor would have answered. */
	bool enforce = s->mode == POLICY_ENFORCE;

	for (unsigned i = 0; enforce && i < s->nrules && n < cap; i++) {
		const struct policy_rule *r = &s->rules[i];
		uint32_t sub = r->has_subleaf ? r->subleaf : 0;
		if (r->resource != POL_RES_CPUID || find(leaves, n, r->leaf, sub))
			continue;
		leaves[n++] = (struct cpuid_leaf){
			.function = r->leaf,
			.index = sub,
			.flags = r->has_subleaf ? CPUID_FLAG_SIGNIFICANT_INDEX : 0,
		};
		raise_max(leaves, n, r->leaf);
	}
	for (unsigned i = 0; i < n; i++) {
		uint32_t regs[4] = { leaves[i].eax, leaves[i].ebx, leaves[i].ecx, leaves[i].edx };
		if (policy_cpuid(p, leaves[i].function, leaves[i].index, regs) < 0 || !enforce)
			continue;
		leaves[i].eax = regs[0];
		leaves[i].ebx = regs[1];
		leaves[i].ecx = regs[2];
		leaves[i].edx = regs[3];
	}
	return n;
}
