/* kvm_msr_filter — the MSRs a policy wants to see (policy_msr_ranges),
 * turned into KVM's MSR filter (KVM_X86_SET_MSR_FILTER, default allow).
 * A trapped MSR's bit is clear; with KVM_CAP_X86_USER_SPACE_MSR enabled
 * for KVM_MSR_EXIT_REASON_FILTER the guest's RDMSR/WRMSR of it then exits
 * to vigil (KVM_EXIT_X86_RDMSR/WRMSR) instead of raising #GP.
 *
 * What KVM never lets a filter see (KVM's api.rst, KVM_X86_SET_MSR_FILTER):
 *  - the x2APIC registers, MSRs 0x800-0x8ff: always allowed, whatever the
 *    filter says; their behaviour follows the APIC base's x2APIC enable bit;
 *  - MSR accesses made by a nested VM-entry/VM-exit (VMCS fields, the
 *    VMCS's MSR load/store lists);
 *  - anything but the RDMSR/WRMSR instructions (accesses KVM makes itself,
 *    and vigil's own KVM_GET/SET_MSRS, which is how "provide" is served).
 * A rule whose MSRs all lie in 0x800-0x8ff is refused here; one that only
 * overlaps them gets a warning (the x2APIC part goes to KVM). The policy
 * file's reader (vmm/policy_json.c) already refuses both.
 *
 * KVM's limits: at most KVM_MSR_FILTER_MAX_RANGES (16) ranges, each a
 * bitmap of at most KVM_MSR_FILTER_MAX_BITMAP_SIZE bytes (12288 MSRs).
 * Nearby trapped MSRs share a range. A policy that traps most of the MSR
 * space ("deny every MSR but these") gets a default-deny filter whose
 * ranges allow the rest instead, when that fits. One that fits neither
 * way is refused with a message. Only the KVM backend and its tests use this. */
#ifndef VIGIL_KVM_MSR_FILTER_H
#define VIGIL_KVM_MSR_FILTER_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct policy;

#define KVM_MSRF_SPAN (KVM_MSR_FILTER_MAX_BITMAP_SIZE * 8u) /* MSRs one range can cover */
#define KVM_MSRF_X2APIC_FIRST 0x800u
#define KVM_MSRF_X2APIC_LAST 0x8ffu

struct kvm_msrf {
	struct kvm_msr_filter filter; /* ranges[i].bitmap points into bitmaps[i] */
	unsigned nranges;             /* ranges in use in filter */
	uint8_t bitmaps[KVM_MSR_FILTER_MAX_RANGES][KVM_MSR_FILTER_MAX_BITMAP_SIZE];
};

/* Builds the filter for `p` into *f. 0; -1 with one line in err (a rule
 * wholly on x2APIC MSRs, more ranges than KVM takes, out of memory).
 * `warn` (may be NULL) gets a line for rules partly on x2APIC MSRs, else
 * stays "". */
int kvm_msrf_build(struct kvm_msrf *f, const struct policy *p, char *err, size_t errlen, char *warn,
		   size_t warnlen);

/* Whether the filter traps `msr` for a read (write = false) or a write:
 * what KVM will do with it (for tests and reports). */
bool kvm_msrf_traps(const struct kvm_msrf *f, uint32_t msr, bool write);
/* Nothing trapped: setting this filter clears any KVM had. */
bool kvm_msrf_empty(const struct kvm_msrf *f);

#endif
