/* kvm_msr_guest — what KVM answers a guest's RDMSR/WRMSR where its host
 * path answers differently.
 *
 * A trapped MSR the policy provides (an audited rule, permissive mode)
 * reaches vigil as a KVM_EXIT_X86_RDMSR/WRMSR, and vigil can only finish it
 * through KVM_GET/SET_MSRS. KVM treats those as the host's own accesses
 * (host_initiated): it lets them write MSRs a guest may only read
 * (ARCH_CAPABILITIES, PERF_CAPABILITIES, the VMX capabilities, SMBASE,
 * the microcode revision), skips the CPUID checks a guest gets (EFER.SVME
 * without SVM is nested virtualization the VM was not given; SPEC_CTRL,
 * XSS, TSC_AUX), and skips state checks (EFER.LME toggled under paging, an
 * x2APIC mode change the SDM forbids, a locked FEATURE_CONTROL, MCi_STATUS
 * set without HWCR.McStatusWrEn). A hostile guest under an audit would get
 * all of that. This file is those checks, from Linux 6.1's arch/x86/kvm
 * (x86.c, svm/svm.c, vmx/vmx.c): before the host access, vigil asks what
 * KVM would have told the guest, and gives the guest that.
 *
 * A guest's TSC or TSC_ADJUST write moves the other (SDM vol. 3 17.17.3),
 * where the host path stores it as a restore would (the TSC synchronized
 * with the other vCPUs', TSC_ADJUST without moving the TSC): MSRG_TSC
 * tells the backend to move the TSC offset itself.
 *
 * Not covered (KVM does them differently for the host, with no privilege
 * gained): an MSR KVM lists for saving but does not support reads 0 and
 * takes a write of 0 instead of #GP; Intel's PMU and SGX MSRs.
 * Kernels differ: kvm_pvm faults a guest's RDMSR of ARCH_CAPABILITIES
 * that its CPUID announces, where 6.1 (and this file) gives the value. */
#ifndef VIGIL_KVM_MSR_GUEST_H
#define VIGIL_KVM_MSR_GUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "arch/x86/cpuid.h"

#define MSRG_MSR_TSC 0x10u
#define MSRG_MSR_TSC_ADJUST 0x3bu

/* What the guest's CPUID gives it, read once when vigil sets the table. */
struct kvm_msr_guest {
	uint32_t has;        /* 1 << MSRG_F_* */
	uint8_t maxphyaddr;  /* CPUID 0x80000008 EAX[7:0]; 36 without the leaf, as KVM */
	bool amd;            /* AuthenticAMD or HygonGenuine */
};

enum {
	MSRG_F_LM,
	MSRG_F_NX,
	MSRG_F_FFXSR,
	MSRG_F_RDTSCP,
	MSRG_F_SVM,
	MSRG_F_X2APIC,
	MSRG_F_PDCM,
	MSRG_F_SPEC_CTRL, /* CPUID 7 EDX 26: Intel's IBRS/IBPB */
	MSRG_F_ARCH_CAP,
	MSRG_F_RDPID,
	MSRG_F_XSAVES,
	MSRG_F_XFD,
	MSRG_F_AMD_IBPB,
	MSRG_F_AMD_IBRS,
	MSRG_F_AMD_STIBP,
	MSRG_F_AMD_SSBD,
	MSRG_F_VIRT_SSBD,
	MSRG_F_TSCRATEMSR,
	MSRG_F_TSC_ADJUST,
};

/* State a check needs besides the value: the backend reads it with host
 * accesses first (they change nothing). */
enum {
	MSRG_NEED_CUR = 1,     /* the MSR's current value */
	MSRG_NEED_CR0 = 2,     /* the vCPU's CR0 */
	MSRG_NEED_HWCR = 4,    /* MSR 0xc0010015 */
	MSRG_NEED_MCG_CAP = 8, /* MSR 0x179 */
};

struct kvm_msr_state {
	uint64_t cur, cr0, hwcr, mcg_cap;
};

enum kvm_msr_answer {
	MSRG_HOST, /* the host access gives the guest what KVM would: do it */
	MSRG_GP,   /* KVM would raise #GP */
	MSRG_DROP, /* KVM would take the write and change nothing */
	/* A TSC (0x10) or TSC_ADJUST (0x3b) write: the guest's TSC moves by
	 * the difference between the value and the MSR's current one, and
	 * TSC_ADJUST with it (kvm_set_msr_common in Linux 6.1). */
	MSRG_TSC,
};

void kvm_msr_guest_init(struct kvm_msr_guest *g, const struct cpuid_leaf *l, unsigned n);
/* MSRG_NEED_* for this access (0: the check needs nothing more). */
unsigned kvm_msr_guest_needs(uint32_t index, bool write);
/* The guest's answer. A write KVM would take but alter (MISC_ENABLE's
 * read-only EMON bit) has *value changed to what KVM would store. */
enum kvm_msr_answer kvm_msr_guest_check(const struct kvm_msr_guest *g, uint32_t index, bool write, uint64_t *value,
					const struct kvm_msr_state *s);

#endif
