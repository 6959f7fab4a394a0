/* cpuid — shapes the CPUID table a vCPU sees from the set the backend
 * supports: APIC IDs and topology for N vCPUs, the hypervisor bit.
 * The entry layout matches KVM's kvm_cpuid_entry2 field for field, but this
 * file does not depend on KVM. */
#ifndef VIGIL_ARCH_X86_CPUID_H
#define VIGIL_ARCH_X86_CPUID_H

#include <stdint.h>

struct cpuid_leaf {
	uint32_t function;
	uint32_t index;
	uint32_t flags;
	uint32_t eax, ebx, ecx, edx;
	uint32_t padding[3];
};

/* Adjusts `leaves` in place for vCPU `cpu` of `ncpus` (one core each, one
 * socket): leaves 0x1, 0x4, 0xB, 0x1F, 0x80000008, 0x8000001E. */
void cpuid_fixup(struct cpuid_leaf *leaves, unsigned n, unsigned cpu, unsigned ncpus);

#endif
