/* policy_build — what the builder takes from the policy in force when it
 * builds a VM: a drive's copy-on-write overlay (opened with the image, so
 * blocks an earlier run redirected are read from the first request on) and
 * the guest's wall clock (rtc rules apply at build only). */
#ifndef VIGIL_VMM_POLICY_BUILD_H
#define VIGIL_VMM_POLICY_BUILD_H

#include <stdbool.h>
#include <stdint.h>

#include "core/policy.h"

/* The overlay of the first disk redirect rule for `drive` that names one,
 * or NULL (the pointer lives as long as p). *only: the first rule matching
 * the drive's writes redirects all of them (no sectors) and the mode
 * enforces, so the image itself need not be writable. */
const char *policy_build_overlay(const struct policy *p, const char *drive, bool *only);

/* Whether an rtc rule redirects the guest's wall clock; *offset_s is then
 * how far it runs from the host's, which reads host_now_s now (an epoch
 * rule: the guest's clock starts at the epoch now). The decision is emitted
 * to ev (EV_RTC: addr = the guest's time now, extra = the offset), also in
 * permissive mode, where the guest keeps the host's clock. */
struct evsink;
bool policy_build_rtc(const struct policy *p, int64_t host_now_s, int64_t *offset_s, struct evsink *ev);

/* CPUID rules are applied once, when the vCPUs are made (kvm_vcpus_create);
 * the guest's CPUID instructions never reach vigil. So each cpuid rule's
 * decision is emitted once then (EV_CPUID: addr = leaf, extra = subleaf,
 * enforced false in permissive mode, where the guest sees KVM's values). */
void policy_build_cpuid(const struct policy *p, struct evsink *ev);

#endif
