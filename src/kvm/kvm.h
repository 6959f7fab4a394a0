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

/* Where guest RAM comes from. Its regions (vm->mem, in order) are laid
 * end to end in a memory file: region 0 at offset 0, region 1 after it. */
enum kvm_ram_kind {
	KVM_RAM_ANON,  /* private anonymous memory (a boot) */
	KVM_RAM_FILE,  /* the memory file `fd`, mapped MAP_PRIVATE: pages are
			* read from it when first touched, copy-on-write, so
			* clones of one snapshot share its page cache */
	KVM_RAM_UFFD,  /* anonymous and untouched: a userfaultfd page server
			* fills it (host/uffd.h registers it after the build) */
};
struct kvm_ram_source {
	enum kvm_ram_kind kind;
	int fd; /* KVM_RAM_FILE: open read-only or read-write; kept by the caller */
};

/* Opens /dev/kvm, checks the API version and the capabilities vigil needs,
 * creates the VM with its irqchip and PIT, and maps `mem_bytes` of RAM
 * into vm->mem from `src` (NULL: KVM_RAM_ANON). Returns NULL with a
 * one-line reason in err (a memory file whose size is not mem_bytes
 * included). */
struct kvm_backend *kvm_backend_create(struct vm *vm, uint64_t mem_bytes, const struct kvm_ram_source *src, char *err,
				       size_t errlen);

/* ---- snapshots (kvm_snap.c) ----
 * The VM's own state: the in-kernel PIC (both), IOAPIC, PIT and kvmclock,
 * as the section "kvm-vm". With the vCPUs parked (or not yet running). */
struct snap_writer;
struct snap_reader;
int kvm_snap_save_vm(struct kvm_backend *kb, struct snap_writer *w, char *err, size_t errlen);
/* After kvm_vcpus_create (LAPICs exist), before any vCPU runs. */
int kvm_snap_load_vm(struct kvm_backend *kb, struct snap_reader *r, char *err, size_t errlen);
/* One vCPU's whole state as the section "cpuN": registers, special and
 * debug registers, XSAVE (FPU, SSE, AVX...), XCRs, the MSRs KVM saves
 * (KVM_GET_MSR_INDEX_LIST), LAPIC, MP state and pending events (vcpu
 * events), TSC. From any one thread while the vCPU is outside KVM_RUN
 * (the builder saves a parked vCPU from the control thread, so the vCPU
 * threads' seccomp lists need no KVM_GET_*), or before its thread starts
 * (load). The save first enters once with immediate_exit set, so that KVM
 * finishes an I/O exit the vCPU was parked in (else the restored guest
 * would repeat the access). */
int kvm_snap_save_vcpu(struct kvm_backend *kb, unsigned cpu, struct snap_writer *w, char *err, size_t errlen);
int kvm_snap_load_vcpu(struct kvm_backend *kb, unsigned cpu, struct snap_reader *r, char *err, size_t errlen);

/* Dirty page tracking of guest RAM by KVM (track_dirty_pages; kvm_dirty.c): on sets
 * KVM_MEM_LOG_DIRTY_PAGES on every RAM slot. 0 or -errno. */
int kvm_dirty_log_enable(struct kvm_backend *kb, bool on);
/* The pages of region `region` (vm->mem's order) the guest wrote since the
 * last call, OR-ed into `bitmap` (one bit per 4 KiB page, region size /
 * 4096 bits, 64-bit words, bit i of word w = page 64*w+i), and KVM's log
 * cleared. 0 or -errno (-ENOENT: tracking is off). */
int kvm_dirty_log_fetch(struct kvm_backend *kb, unsigned region, uint64_t *bitmap);
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
