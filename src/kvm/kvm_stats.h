/* kvm_stats — KVM's binary statistics (KVM_GET_STATS_FD) of the VM and of
 * each vCPU: what KVM counted by itself, such as the exits it handled in
 * the kernel and never showed vigil (HLT, CPUID, EPT faults, interrupt
 * windows, most MSRs). The header and descriptors are read once, when the
 * fd is opened; values on demand with one pread of the data block, which
 * is safe from any thread while the vCPUs run (KVM updates the counters,
 * a read copies them). Only the KVM backend uses this. */
#ifndef VIGIL_KVM_STATS_H
#define VIGIL_KVM_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/vcpu.h"

struct kvm_stat_desc {
	const char *name;
	uint32_t offset; /* in the data block, bytes */
	bool cumulative;
};

struct kvm_stats {
	int fd;          /* -1: not open */
	uint32_t data_offset;
	size_t data_size;  /* bytes of the data block vigil reads */
	unsigned n;        /* scalar statistics kept (histograms are left out) */
	struct kvm_stat_desc *d;
	char *names;       /* what d[].name points into */
};

/* Why KVM's statistics cannot be read on this host, or NULL when they
 * can: the capability is missing (or forced off for tests with the
 * environment variable VIGIL_TEST_NO_KVM_STATS=1). */
const char *kvm_stats_unavailable(int kvm_fd);

/* Opens the statistics of a VM or vCPU fd. 0, or -errno. */
int kvm_stats_open(struct kvm_stats *s, int owner_fd);
void kvm_stats_close(struct kvm_stats *s);
/* Calls fn for every scalar statistic with its current value. 0 or -errno. */
int kvm_stats_read(const struct kvm_stats *s, hv_stat_fn fn, void *ctx);

#endif
