/* svm_cpuid — the CPUID table a vCPU sees. KVM hands the hosted build its
 * supported set (KVM_GET_SUPPORTED_CPUID); here the set is the host CPU's
 * own CPUID, less what the backend does not virtualize (SVM itself, VMX,
 * MONITOR/MWAIT, x2APIC (the LAPIC model is xAPIC only), machine checks, thermal and performance monitoring). Then the
 * same shaping as on KVM: cpuid_fixup (topology, the hypervisor bit),
 * cpuid_set_brand, and the policy's cpuid rules, which have the last word. */
#include <stdio.h>
#include <string.h>

#include "core/vm.h"
#include "metal/metal.h"
#include "svm/svm_int.h"

#define CPUID_CAP 160

struct table {
	struct cpuid_leaf *l;
	unsigned n, cap;
};

static void add(struct table *t, uint32_t fn, uint32_t idx, bool indexed)
{
	if (t->n >= t->cap)
		return;
	struct cpuid_leaf *l = &t->l[t->n++];
	uint32_t r[4];
	host_cpuid(fn, idx, r);
	*l = (struct cpuid_leaf){ .function = fn, .index = idx,
				  .flags = indexed ? CPUID_FLAG_SIGNIFICANT_INDEX : 0,
				  .eax = r[0], .ebx = r[1], .ecx = r[2], .edx = r[3] };
}

/* Leaves 0xB / 0x1F: subleaves until the level type (ECX 15:8) is 0. */
static void add_topology(struct table *t, uint32_t fn)
{
	for (uint32_t i = 0; i < 8; i++) {
		add(t, fn, i, true);
		if (!((t->l[t->n - 1].ecx >> 8) & 0xff))
			break;
	}
}

/* Cache leaves (4, 0x8000001D): subleaves until the cache type is 0. */
static void add_caches(struct table *t, uint32_t fn)
{
	for (uint32_t i = 0; i < 8; i++) {
		add(t, fn, i, true);
		if (!(t->l[t->n - 1].eax & 0x1f))
			break;
	}
}

/* The hypervisor leaves: a signature of vigil-metal's own (KVM's would make
 * a guest look for kvmclock) and 0x40000010, the timing leaf VMware
 * defined and other hypervisors copy: the TSC's and the APIC bus's rates
 * in kHz, for a guest that would otherwise calibrate against the PIT
 * (which fails when every port read is a slow exit, as under QEMU). */
static void hypervisor_leaves(struct table *t)
{
	if (t->n + 2 > t->cap)
		return;
	struct cpuid_leaf *l = &t->l[t->n++];
	*l = (struct cpuid_leaf){ .function = 0x40000000, .eax = 0x40000010 };
	memcpy(&l->ebx, "Vigi", 4);
	memcpy(&l->ecx, "lMet", 4);
	memcpy(&l->edx, "al\0\0", 4);
	t->l[t->n++] = (struct cpuid_leaf){ .function = 0x40000010, .eax = (uint32_t)(metal_tsc_hz() / 1000),
					    .ebx = 1000000 /* the LAPIC model's bus: 1 GHz */ };
}

static void host_table(struct table *t)
{
	uint32_t r[4];
	host_cpuid(0, 0, r);
	uint32_t max = r[0] > 0x1f ? 0x1f : r[0];
	for (uint32_t fn = 0; fn <= max; fn++) {
		switch (fn) {
		case 0x4: add_caches(t, fn); break;
		case 0xb: case 0x1f: add_topology(t, fn); break;
		case 0x7: {
			host_cpuid(7, 0, r);
			uint32_t subs = r[0] > 3 ? 3 : r[0];
			for (uint32_t i = 0; i <= subs; i++)
				add(t, fn, i, true);
			break;
		}
		case 0xd: {
			host_cpuid(0xd, 0, r);
			uint64_t comps = r[0] | ((uint64_t)r[3] << 32);
			for (uint32_t i = 0; i < 64; i++)
				if (i < 2 || (comps & (1ull << i)))
					add(t, fn, i, true);
			break;
		}
		case 0xf: case 0x10: case 0x12: case 0x14: case 0x17: case 0x18: case 0x1d:
			add(t, fn, 0, true); /* zeroed below: not virtualized */
			break;
		default:
			add(t, fn, 0, false);
		}
	}
	host_cpuid(0x80000000, 0, r);
	uint32_t emax = r[0] > 0x80000021 ? 0x80000021 : r[0];
	for (uint32_t fn = 0x80000000; fn <= emax; fn++) {
		if (fn == 0x8000001d)
			add_caches(t, fn);
		else
			add(t, fn, 0, fn == 0x80000020);
	}
}

/* What the guest must not see: features this backend does not give it. */
static void filter(struct cpuid_leaf *l, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct cpuid_leaf *e = &l[i];
		switch (e->function) {
		case 0x1:
			/* DTES64, MONITOR, DS-CPL, VMX, SMX, EST, TM2, xTPR, PDCM,
			 * x2APIC, OSXSAVE (set from the guest's CR4); the TSC-deadline
			 * timer is the LAPIC model's, whatever the host has */
			e->ecx &= ~((1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 7) | (1u << 8) |
				    (1u << 14) | (1u << 15) | (1u << 21) | (1u << 27));
			e->ecx |= 1u << 24;
			e->edx |= 1u << 9; /* the LAPIC model */
			/* MCE, MCA, DS, ACPI (thermal), TM, PBE */
			e->edx &= ~((1u << 7) | (1u << 14) | (1u << 21) | (1u << 22) | (1u << 29) | (1u << 31));
			break;
		case 0x7:
			if (e->index == 0) {
				/* SGX, PQM, PQE, Intel PT */
				e->ebx &= ~((1u << 2) | (1u << 12) | (1u << 15) | (1u << 25));
				/* WAITPKG, OSPKE (from CR4) */
				e->ecx &= ~((1u << 5) | (1u << 4));
				/* ARCH_CAPABILITIES, CORE_CAPABILITIES (MSRs not modelled) */
				e->edx &= ~((1u << 29) | (1u << 30));
			}
			break;
		case 0x5: case 0x6: case 0xa: case 0xf: case 0x10: case 0x12: case 0x14: case 0x17: case 0x18:
		case 0x1d: case 0x8000000a: case 0x8000001b: case 0x8000001f: case 0x80000020: case 0x80000022:
			e->eax = e->ebx = e->ecx = e->edx = 0;
			break;
		case 0x80000001:
			/* SVM, IBS, SKINIT, WDT, PerfCtrCore, PerfCtrNB, PerfCtrL2, MONITORX */
			e->ecx &= ~((1u << 2) | (1u << 10) | (1u << 12) | (1u << 13) | (1u << 23) | (1u << 24) |
				    (1u << 28) | (1u << 29));
			break;
		case 0x80000008:
			e->ebx &= ~(1u << 25); /* VIRT_SSBD: its MSR (VIRT_SPEC_CTRL) is not modelled */
			break;
		case 0x80000021:
			e->eax &= ~(1u << 8); /* AutoIBRS: an EFER bit the EFER model refuses */
			break;
		case 0x80000007:
			e->eax = e->ebx = e->ecx = 0;
			e->edx &= 1u << 8; /* invariant TSC only: no power management */
			break;
		default:
			break;
		}
	}
}

int svm_cpuid_init(struct svm *s, struct svm_vcpu *v, char *err, size_t errlen)
{
	const struct policy *p = policy_enter(&s->vm->policy);
	unsigned extra = p ? cpuid_policy_extra(p) : 0;
	struct table t = { .cap = CPUID_CAP + extra };
	t.l = metal_alloc_pages(t.cap * sizeof(*t.l), 64);
	if (!t.l) {
		policy_leave(&s->vm->policy);
		snprintf(err, errlen, "no memory for vCPU %u's CPUID table", v->id);
		return -1;
	}
	host_table(&t);
	if (t.n > CPUID_CAP - 2)
		t.n = CPUID_CAP - 2;
	hypervisor_leaves(&t);
	filter(t.l, t.n);
	cpuid_fixup(t.l, t.n, v->id, s->ncpus);
	cpuid_set_brand(t.l, t.n, NULL);
	if (p)
		t.n = cpuid_apply_policy(t.l, t.n, t.cap, p);
	policy_leave(&s->vm->policy);
	v->cpuid = t.l;
	v->ncpuid = t.n;
	return 0;
}

void svm_cpuid_answer(struct svm_vcpu *v, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	r[0] = r[1] = r[2] = r[3] = 0; /* a leaf the table lacks reads as zeroes, as on AMD */
	for (unsigned i = 0; i < v->ncpuid; i++) {
		const struct cpuid_leaf *e = &v->cpuid[i];
		if (e->function != leaf || ((e->flags & CPUID_FLAG_SIGNIFICANT_INDEX) && e->index != sub))
			continue;
		r[0] = e->eax;
		r[1] = e->ebx;
		r[2] = e->ecx;
		r[3] = e->edx;
		return;
	}
}
