/* kvm — the Type II backend: runs a `struct vm` on Linux KVM.
 * It owns /dev/kvm, the VM and vCPU file descriptors, guest RAM mappings,
 * the in-kernel irqchip and PIT. It enters the guest once per call from the
 * core's vCPU loop (core/vcpu.c) and translates each KVM exit into a
 * `struct vexit`; this is the only directory that includes <linux/kvm.h>. */
#ifndef VIGIL_KVM_KVM_H
#define VIGIL_KVM_KVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "arch/x86/boot.h"
#include "core/irq.h"
#include "core/platform.h"
#include "core/vm.h"

struct kvm_backend;

/* Opens /dev/kvm, checks the API version and the capabilities vigil needs,
 * creates the VM with its irqchip and PIT, and maps `mem_bytes` of RAM
 * into vm->mem. Returns NULL with a one-line reason in err. */
struct kvm_backend *kvm_backend_create(struct vm *vm, uint64_t mem_bytes, char *err, size_t errlen);
void kvm_backend_destroy(struct kvm_backend *kb);

/* An interrupt line into the in-kernel IOAPIC/PIC. */
struct irq_line kvm_irq_line(struct kvm_backend *kb, uint32_t gsi);

/* MSI routes through irqfds, and ioeventfds ringing doorbells made by
 * evloop_exec() (host/exec_evloop.h), for device transports. */
struct platform_ops kvm_platform_ops(struct kvm_backend *kb);

/* Creates the vCPUs; the boot vCPU starts from `boot`, the others wait for
 * the guest's INIT/SIPI. Each gets KVM's CPUID table shaped for it
 * (arch/x86/cpuid.h) with the policy's cpuid rules applied last. */
int kvm_vcpus_create(struct kvm_backend *kb, const struct x86_boot_cpu *boot, const struct policy *p, char *err,
		     size_t errlen);

/* The KVM side of a policy: its msr rules become KVM's MSR filter
 * (kvm_msr_filter.h; what KVM never lets a filter see is listed there).
 * Called at build and again after every live swap, from the control
 * thread; KVM hands the new filter to running vCPUs itself. CPUID is fixed
 * once the vCPUs exist (kvm_vcpus_create). 0, or -1 with one line in err
 * (more ranges than KVM's filter takes, a rule only on x2APIC MSRs, a
 * host without user-space MSR exits); a warning goes to stderr.
 * kvm_policy_check() finds the same errors without applying anything;
 * with kb NULL (no VM: `vigil policy check`) all but the host's lack. */
int kvm_apply_policy(struct kvm_backend *kb, const struct policy *p, char *err, size_t errlen);
int kvm_policy_check(struct kvm_backend *kb, const struct policy *p, char *err, size_t errlen);

/* Hides kvmclock from the guest's CPUID (kvm_clock.c), so that its wall
 * clock comes from the CMOS RTC: for a policy's rtc redirect. Before
 * kvm_vcpus_create. */
void kvm_hide_kvmclock(struct kvm_backend *kb);

/* The core's view of this backend (core/vcpu.h): run once, kick, the
 * kvmclock pause notice, crash reports. The core runs the loop. */
struct hv_ops kvm_hv_ops(struct kvm_backend *kb);

/* KVM_TRANSLATE of `gva` on vCPU `cpu` (KVM's own page walk): for the
 * test that holds vigil's walker (arch/x86/pagewalk.h) against it. On the
 * vCPU's thread or while it is not running. 0 or -errno. */
int kvm_translate(struct kvm_backend *kb, unsigned cpu, uint64_t gva, uint64_t *gpa, bool *valid);

/* `vigil check`: prints what this host's KVM offers; 0 if vigil can run. */
int kvm_check(FILE *out);

/* True if this host's KVM is kvm_pvm (guest ring 0 is emulated). */
int kvm_host_is_pvm(void);

#endif
