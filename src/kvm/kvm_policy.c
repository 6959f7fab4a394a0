/* The KVM side of the policy in force: the MSR filter (kvm_msr_filter.h)
 * programmed from the policy's msr rules, at build and after live swaps. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm/kvm.h"
#include "kvm/kvm_internal.h"
#include "kvm/kvm_msr_filter.h"

static struct kvm_msrf *plan(struct kvm_backend *kb, const struct policy *p, char *err, size_t errlen,
			     char *warn, size_t warnlen)
{
	struct kvm_msrf *f = malloc(sizeof(*f));
	if (!f) {
		snprintf(err, errlen, "out of memory building the MSR filter");
		return NULL;
	}
	if (kvm_msrf_build(f, p, err, errlen, warn, warnlen) < 0) {
		free(f);
		return NULL;
	}
	if (kb && !kvm_msrf_empty(f) && !kb->msr_exits) {
		snprintf(err, errlen,
			 "policy: msr rules need KVM_CAP_X86_USER_SPACE_MSR and KVM_CAP_X86_MSR_FILTER, which this "
			 "host's KVM lacks (see 'vigil check')");
		free(f);
		return NULL;
	}
	return f;
}

int kvm_policy_check(struct kvm_backend *kb, const struct policy *p, char *err, size_t errlen)
{
	char warn[256];
	struct kvm_msrf *f = plan(kb, p, err, errlen, warn, sizeof(warn));
	free(f);
	return f ? 0 : -1;
}

int kvm_apply_policy(struct kvm_backend *kb, const struct policy *p, char *err, size_t errlen)
{
	char warn[256];
	struct kvm_msrf *f = plan(kb, p, err, errlen, warn, sizeof(warn));
	if (!f)
		return -1;
	if (warn[0])
		fprintf(stderr, "vigil: warning: %s\n", warn);
	int r = 0;
	/* No ranges and default allow: KVM drops any filter it had. A host
	 * without the filter has nothing to drop, nor a VM that never had
	 * one: the call waits out KVM's SRCU readers (15 ms seen on this
	 * project's host), which a start-up or a restore need not pay. */
	bool empty = kvm_msrf_empty(f);
	if (kb->msr_exits && (!empty || kb->msr_filter_set)) {
		if (ioctl(kb->vm_fd, KVM_X86_SET_MSR_FILTER, &f->filter) < 0) {
			snprintf(err, errlen, "KVM_X86_SET_MSR_FILTER: %s", strerror(errno));
			r = -1;
		} else {
			kb->msr_filter_set = !empty;
		}
	}
	free(f);
	return r;
}
