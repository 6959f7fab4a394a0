/* svm — the AMD-V backend of vigil-metal: what KVM is to the hosted build.
 * It runs the portable VM (core/vm.h) under SVM with nested paging on the
 * bare machine and fills the core's `struct hv_ops` (core/vcpu.h), so every
 * exit goes through the same exit_dispatch(), monitor and policy as on KVM.
 * Guest RAM is the VM's gmem regions (core/gmem.h), whose host addresses
 * are physical (vigil-metal maps memory 1:1), so the nested page tables map
 * guest-physical → those addresses, 2 MiB pages where aligned.
 * Needs from the platform only src/metal/metal.h (pages, log, clock).
 * Threading: none; each vCPU is driven by the loop on its own host CPU. */
#ifndef VIGIL_SVM_SVM_H
#define VIGIL_SVM_SVM_H

#include <stddef.h>
#include <stdint.h>

#include "arch/x86/boot.h"
#include "core/irq.h"
#include "core/vcpu.h"

struct vm;
struct svm;

/* Checks this CPU: AMD-V present (CPUID 0x80000001 ECX bit 2), nested
 * paging (0x8000000A EDX bit 0), not disabled by the firmware (VM_CR
 * SVMDIS). -1 with one line for the user ("this CPU has no AMD-V", ...). */
int svm_check_cpu(char *err, size_t errlen);

/* Turns SVM on on the calling host CPU (EFER.SVME, its host-save area).
 * Once per host CPU, before it runs a vCPU. -1 with a reason. */
int svm_enable_cpu(char *err, size_t errlen);

/* The backend for `vm` (its RAM mapped, its policy in force: the MSR
 * permission map and the CPUID table follow it): nested page tables, one
 * VMCB per vCPU, the I/O permission map, and the guest's interrupt
 * controllers (LAPIC, IOAPIC, PIC, PIT) on the VM's buses. The guest runs
 * with host interrupts enabled (so a host tick takes the CPU back) only if
 * the platform's 256-gate IDT (metal_idt_init) is loaded by then. NULL
 * with a reason. */
struct svm *svm_create(struct vm *vm, unsigned ncpus, char *err, size_t errlen);

/* vCPU `cpu`'s first state: the boot loader's (arch/x86/boot.h) for the
 * boot vCPU; the others wait for INIT/SIPI. */
int svm_set_boot_state(struct svm *s, unsigned cpu, const struct x86_boot_cpu *b);

/* For tests: makes vCPU `cpu`'s next VMRUN fail its consistency checks
 * (the guest's EFER.SVME cleared, which the architecture requires set), so
 * the refused entry's path runs on the machine itself. */
void svm_break_vmcb(struct svm *s, unsigned cpu);

/* The core's hypervisor operations over this backend (hv_ops.hv = s). */
struct hv_ops svm_hv_ops(struct svm *s);

/* An interrupt line for device models (pc_config.irq): gsi into the
 * backend's interrupt controller models. */
struct irq_line svm_irq_line(struct svm *s, uint32_t gsi);

/* An MSI message (address 0xFEExxxxx, data: vector, delivery mode,
 * trigger) delivered into the vCPUs' local APIC models: what a platform's
 * platform_ops.msi_fire calls for virtio-pci's MSI-X. Fixed and
 * lowest-priority delivery; other modes, and addresses outside the
 * interrupt window, are dropped. Any thread. (An addition to the first
 * contract: on KVM, MSIs go to its irqchip; here to the backend's models.) */
void svm_msi(struct svm *s, uint64_t addr, uint32_t data);

#endif
