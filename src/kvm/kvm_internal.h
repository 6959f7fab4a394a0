/* Shared between the KVM backend's files only. */
#ifndef VIGIL_KVM_INTERNAL_H
#define VIGIL_KVM_INTERNAL_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core/vm.h"
#include "kvm/kvm_msr_guest.h"
#include "kvm/kvm_stats.h"

#define KVM_REQUIRED_API 12

struct kvm_vcpu {
	struct kvm_backend *kb;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;     /* the thread running it, once bound */
	_Atomic bool bound;
	struct kvm_guest_debug debug; /* as last set (on its own thread) */
	struct kvm_stats stats; /* fd -1 when KVM keeps none for us */
	struct kvm_msr_guest msrg; /* its CPUID, for the MSRs vigil provides */
	bool tsc_offset; /* KVM_VCPU_TSC_OFFSET can be had (Linux 5.16) */
};

struct kvm_backend {
	struct vm *vm;
	int kvm_fd;
	int vm_fd;
	size_t run_size;
	void *ram_low;
	uint64_t ram_low_size;
	void *ram_high;
	uint64_t ram_high_size;
	struct kvm_cpuid2 *cpuid; /* what KVM supports; copied per vCPU */
	bool msr_exits;           /* user-space MSR exits for the filter are on */
	bool msr_filter_set;      /* a filter with ranges is installed */
	bool vcpus_made;          /* CPUID is fixed from here on */
	bool dirty_log;           /* RAM slots have KVM_MEM_LOG_DIRTY_PAGES (kvm_dirty.c) */
	uint32_t *snap_msrs;      /* the MSRs a snapshot saves (kvm_snap.c), or NULL */
	uint32_t snap_nmsrs;
	struct kvm_stats stats;   /* the VM's; fd -1 when unavailable */
	const char *stats_why;    /* why there are no statistics, or NULL */
	int guest_debug2;         /* KVM_CAP_SET_GUEST_DEBUG2, asked at creation: not from a vCPU */
	struct kvm_vcpu vcpus[];
};

/* Capabilities vigil cannot run without, with the reason. */
struct kvm_cap_need {
	int cap;
	const char *name;
};
extern const struct kvm_cap_need kvm_caps_needed[];

/* Installs the PC's GSI routing (kvm_irq.c); 0 or -errno. */
struct vexit;
/* Decodes the exit KVM left in `run` (run_size bytes mapped) into *ex; an
 * I/O data offset or size that would point past the run area becomes
 * VEXIT_INTERNAL_ERROR (src/kvm/kvm_exit.c). */
void kvm_translate_exit(struct kvm_run *run, size_t run_size, struct vexit *ex);
int kvm_irq_routing_init(struct kvm_backend *kb);
/* The MSR indices a vCPU snapshot saves, listed once at creation (so that
 * a vCPU thread need not ask /dev/kvm); NULL when KVM would not list them
 * (kvm_snap.c). The caller frees. */
uint32_t *kvm_snap_msr_list(struct kvm_backend *kb, uint32_t *n);

#endif
