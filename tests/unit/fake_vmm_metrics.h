/* fake_vmm_metrics — the vmm.h accessors metrics and log read, with a VM
 * and figures a test sets itself. Non-static so they satisfy the linker in
 * place of vmm/vmm.c; include from one test file only (test_metrics.c). */
#ifndef VIGIL_TESTS_FAKE_VMM_METRICS_H
#define VIGIL_TESTS_FAKE_VMM_METRICS_H

#include "core/vm.h"
#include "vmm/vmm.h"

struct vmm {
	struct vm *vm;
	enum vmm_state state;
	uint64_t uptime_ns;
	uint64_t api_requests;
	struct vm_config cfg; /* its policy: what /vigil/stats shows before the start */
};

struct vm_config *vmm_config(struct vmm *m)
{
	return &m->cfg;
}

struct vm *vmm_vm(struct vmm *m)
{
	return m->vm;
}

enum vmm_state vmm_state(const struct vmm *m)
{
	return m->state;
}

const char *vmm_state_name(enum vmm_state s)
{
	switch (s) {
	case VMM_NOT_STARTED:
		return "Not started";
	case VMM_RUNNING:
		return "Running";
	case VMM_PAUSED:
		return "Paused";
	case VMM_STOPPED:
		return "Stopped";
	}
	return "Unknown";
}

uint64_t vmm_uptime_ns(const struct vmm *m)
{
	return m->uptime_ns;
}

uint64_t vmm_api_requests(const struct vmm *m)
{
	return m->api_requests;
}

uint64_t vmm_snapshot_last_us(const struct vmm *m, bool load)
{
	(void)m;
	return load ? 1234 : 5678;
}

bool vmm_snapshot_last_diff(const struct vmm *m)
{
	(void)m;
	return false;
}

uint64_t vmm_snapshot_first_entry_us(struct vmm *m)
{
	(void)m;
	return 0;
}

bool vmm_trace_stats(struct vmm *m, struct vtrace_stats *st)
{
	(void)m;
	(void)st;
	return false;
}

#endif
