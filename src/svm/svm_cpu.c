/* svm_cpu — is AMD-V there, and turning it on: the CPUID bits, the
 * firmware's VM_CR lock, EFER.SVME and the host-save area. */
#include <stdio.h>

#include "metal/metal.h"
#include "svm/svm_int.h"
#include "svm/vmcb.h"

/* Each host CPU's VM_HSAVE_PA page, and the page svm_vmrun keeps its
 * host VMSAVE state in (vCPU i runs on host CPU i). */
#define SVM_HOST_CPUS 64
static uint8_t *hsave[SVM_HOST_CPUS], *host_state[SVM_HOST_CPUS];

int svm_check_cpu(char *err, size_t errlen)
{
	uint32_t r[4];
	host_cpuid(0x80000000, 0, r);
	uint32_t max = r[0];
	if (max < 0x80000001) {
		snprintf(err, errlen, "this CPU has no AMD-V (no extended CPUID leaves): vigil-metal needs SVM");
		return -1;
	}
	host_cpuid(0x80000001, 0, r);
	if (!(r[2] & (1u << 2))) {
		snprintf(err, errlen,
			 "this CPU has no AMD-V (CPUID 0x80000001 ECX.SVM clear): vigil-metal needs an AMD CPU with "
			 "SVM (under QEMU: -cpu EPYC,+svm,+npt)");
		return -1;
	}
	if (max < 0x8000000a) {
		snprintf(err, errlen, "this CPU reports SVM but no SVM feature leaf (0x8000000A)");
		return -1;
	}
	host_cpuid(0x8000000a, 0, r);
	if (!(r[3] & 1u)) {
		snprintf(err, errlen,
			 "this CPU's AMD-V has no nested paging (CPUID 0x8000000A EDX.NP clear): vigil-metal needs "
			 "it (under QEMU: -cpu EPYC,+svm,+npt)");
		return -1;
	}
	if (host_rdmsr(MSR_VM_CR) & VM_CR_SVMDIS) {
		snprintf(err, errlen,
			 "AMD-V is disabled by the firmware (VM_CR.SVMDIS set): enable SVM in the BIOS setup");
		return -1;
	}
	return 0;
}

int svm_enable_cpu(char *err, size_t errlen)
{
	unsigned c = metal_cpu_index();
	if (c >= SVM_HOST_CPUS) {
		snprintf(err, errlen, "host CPU %u: vigil-metal runs on at most %d", c, SVM_HOST_CPUS);
		return -1;
	}
	if (!hsave[c]) {
		hsave[c] = metal_alloc_pages(4096, 4096);
		host_state[c] = metal_alloc_pages(4096, 4096);
		if (!hsave[c] || !host_state[c]) {
			snprintf(err, errlen, "no memory for the SVM host-save area");
			return -1;
		}
	}
	host_wrmsr(MSR_EFER, host_rdmsr(MSR_EFER) | EFER_SVME);
	if (!(host_rdmsr(MSR_EFER) & EFER_SVME)) {
		snprintf(err, errlen, "EFER.SVME did not stick: SVM cannot be turned on");
		return -1;
	}
	host_wrmsr(MSR_VM_HSAVE_PA, (uint64_t)(uintptr_t)hsave[c]);
	return 0;
}

uint64_t svm_host_save_pa(void)
{
	unsigned c = metal_cpu_index();
	return c < SVM_HOST_CPUS ? (uint64_t)(uintptr_t)host_state[c] : 0;
}
