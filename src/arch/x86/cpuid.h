/* cpuid — shapes the CPUID table a vCPU sees from the set the backend
 * supports: APIC IDs and topology for N vCPUs, the hypervisor bit.
 * The entry layout matches KVM's kvm_cpuid_entry2 field for field, but this
 * file does not depend on KVM. */
#ifndef VIGIL_ARCH_X86_CPUID_H
#define VIGIL_ARCH_X86_CPUID_H

#include <stdint.h>

struct policy;

struct cpuid_leaf {
	uint32_t function;
	uint32_t index;
	uint32_t flags;
	uint32_t eax, ebx, ecx, edx;
	uint32_t padding[3];
};

/* Adjusts `leaves` in place for vCPU `cpu` of `ncpus` (one core each, one
 * socket): leaves 0x1, 0x4, 0xB, 0x1F, 0x80000008, 0x8000001E, and
 * 0x80000001's CmpLegacy bit (ECX 1) for more than one vCPU of a vendor
 * other than Intel and Zhaoxin, as QEMU does. */
void cpuid_fixup(struct cpuid_leaf *leaves, unsigned n, unsigned cpu, unsigned ncpus);

/* The brand string (leaves 0x80000002-4) when the backend's table has the
 * leaves but leaves them zero (kvm_pvm does): `host_brand` (the host CPU's
 * own, as QEMU's -cpu host shows it), or CPUID_DEFAULT_BRAND when that is
 * NULL or empty, cut to 47 characters. A non-zero string, or a table
 * without all three leaves, is left alone. */
#define CPUID_DEFAULT_BRAND "vigil virtual CPU"
void cpuid_set_brand(struct cpuid_leaf *leaves, unsigned n, const char *host_brand);

#define CPUID_FLAG_SIGNIFICANT_INDEX 1u /* KVM_CPUID_FLAG_SIGNIFCANT_INDEX */

/* How many entries cpuid_apply_policy() may add: one per cpuid rule. */
unsigned cpuid_policy_extra(const struct policy *p);
/* Applies the policy's cpuid rules to every entry (after cpuid_fixup, so a
 * rule has the last word: clearing the hypervisor bit works). A rule for a
 * leaf or subleaf the table lacks adds that entry (zeroes, then the rule),
 * and raises the range's highest leaf (leaf 0, 0x40000000, 0x80000000...
 * EAX) to reach it unless a rule sets that itself. `cap` is the room in
 * `leaves`; returns the new count. */
unsigned cpuid_apply_policy(struct cpuid_leaf *leaves, unsigned n, unsigned cap, const struct policy *p);

#endif
