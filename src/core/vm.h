/* vm — the portable model of one virtual machine: its memory map, its two
 * buses, its policy, its per-vCPU monitor counters and its run state.
 * Backends (src/kvm) create the hardware side and point `backend` at it;
 * nothing here knows which backend runs the VM. */
#ifndef VIGIL_CORE_VM_H
#define VIGIL_CORE_VM_H

#include <stdatomic.h>
#include <stdio.h>

#include "core/bus.h"
#include "core/devreq.h"
#include "core/gmem.h"
#include "core/monitor.h"
#include "core/policy.h"
#include "core/vmctl.h"

#define VM_MAX_DEVICES 32

struct vm {
	struct gmem mem;
	struct bus pio;
	struct bus mmio;
	struct policy policy;
	unsigned ncpus;
	struct vcpu_stats *stats; /* ncpus entries */

	FILE *trace; /* --trace: one line per guest access, or NULL */

	struct dev_stats devs[VM_MAX_DEVICES]; /* per-device request counters */
	unsigned nr_devs;

	_Atomic int stop; /* enum vm_stop; VM_RUNNING until the first stop request */
	/* Backend hook: make every vCPU leave guest mode soon. */
	void (*kick)(void *backend);
	void *backend;
};

int vm_init(struct vm *vm, unsigned ncpus);
void vm_fini(struct vm *vm);

/* Records why the VM stops (the first reason wins) and kicks the vCPUs. */
void vm_request_stop(struct vm *vm, enum vm_stop why);

static inline enum vm_stop vm_stop_reason(struct vm *vm)
{
	return (enum vm_stop)atomic_load_explicit(&vm->stop, memory_order_acquire);
}

/* A device's gate to the request path: its counters and the VM's policy.
 * NULL stats when VM_MAX_DEVICES are taken (requests then go uncounted). */
struct dev_gate vm_dev_gate(struct vm *vm, const char *name, bool read_only);

/* The handle devices get instead of the VM. */
struct vmctl vm_ctl(struct vm *vm);

/* Names the device claiming a port or MMIO address, for reports. */
const char *vm_device_name(void *vm, enum policy_space space, uint64_t addr);

#endif
