/* The guest's wall clock and kvmclock. KVM fills kvmclock's wall clock
 * (MSR_KVM_WALL_CLOCK_NEW) from the host's real time, and KVM_SET_CLOCK
 * (even with KVM_CLOCK_REALTIME) only moves the kvmclock counter, which
 * the guest adds back: a guest using kvmclock always boots at the host's
 * date. When the policy redirects the wall clock, the kvmclock features are
 * hidden from CPUID, so Linux reads its boot time from the CMOS RTC, which
 * the board gives the redirected clock. */
#include "kvm/kvm.h"
#include "kvm/kvm_internal.h"

#define KVM_CPUID_FEATURES_LEAF 0x40000001u
#define KVM_FEATURE_CLOCKSOURCE_BIT 0
#define KVM_FEATURE_CLOCKSOURCE2_BIT 3
#define KVM_FEATURE_CLOCKSOURCE_STABLE 24

void kvm_hide_kvmclock(struct kvm_backend *kb)
{
	uint32_t mask = 1u << KVM_FEATURE_CLOCKSOURCE_BIT | 1u << KVM_FEATURE_CLOCKSOURCE2_BIT |
			1u << KVM_FEATURE_CLOCKSOURCE_STABLE;

	/* kb->cpuid is the table every vCPU's is copied from. */
	for (uint32_t i = 0; i < kb->cpuid->nent; i++)
		if (kb->cpuid->entries[i].function == KVM_CPUID_FEATURES_LEAF)
			kb->cpuid->entries[i].eax &= ~mask;
}
