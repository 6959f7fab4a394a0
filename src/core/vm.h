/* vm — the portable model of one virtual machine: its memory map, its two
 * buses, its policy, its per-vCPU monitor counters, its device registry and
 * its vCPUs' run state (core/vcpu.h). Backends (src/kvm) create the
 * hardware side and hand the core their `struct hv_ops`; nothing here knows
 * which backend runs the VM. */
#ifndef VIGIL_CORE_VM_H
#define VIGIL_CORE_VM_H

#include <stdatomic.h>
#include <stdio.h>

#include "core/bus.h"
#include "core/dev.h"
#include "core/devreq.h"
#include "core/exit.h"
#include "core/gmem.h"
#include "core/monitor.h"
#include "core/policy.h"
#include "core/vcpu.h"
#include "core/vmctl.h"

#define VM_MAX_DEVICES 32

struct vm {
	struct gmem mem;
	struct bus pio;
	struct bus mmio;
	struct policy_slot policy; /* the policy in force (core/policy.h) */
	unsigned ncpus;
	struct vcpu_stats *stats; /* ncpus entries */

	struct evsink *ev; /* trace and audit (core/event.h), or NULL */
	/* VEXIT_DEBUG goes here (the gdb stub), else it is ignored. */
	enum vm_stop (*on_debug)(void *ctx, unsigned cpu, const struct vexit *ex);
	void *on_debug_ctx;

	struct vdev devs[VM_MAX_DEVICES]; /* the device registry (core/dev.h) */
	unsigned nr_devs;

	_Atomic int stop; /* enum vm_stop; VM_STOP_NONE until the first stop request */
	struct vcpus vcpus; /* run state, mailboxes, the backend's ops */
};

int vm_init(struct vm *vm, unsigned ncpus);
void vm_fini(struct vm *vm);

/* Records why the VM stops (the first reason wins), kicks the vCPUs out of
 * the guest and wakes the control loop. Not from a signal handler. */
void vm_request_stop(struct vm *vm, enum vm_stop why);

static inline enum vm_stop vm_stop_reason(struct vm *vm)
{
	return (enum vm_stop)atomic_load_explicit(&vm->stop, memory_order_acquire);
}

/* Registers a device under a unique id; NULL when the id is taken, too
 * long, or VM_MAX_DEVICES are registered. Build time only. */
struct vdev *vm_dev_add(struct vm *vm, const char *id, const char *kind, const struct vdev_ops *ops,
			void *impl);
struct vdev *vm_dev_find(struct vm *vm, const char *id);

/* A device's gate to the request path: its counters and the VM's policy. */
struct dev_gate vm_dev_gate(struct vm *vm, struct vdev *d, bool read_only);

/* Every registered device's quiesce / resume, in registration order
 * (resume in reverse). */
void vm_devs_quiesce(struct vm *vm);
void vm_devs_resume(struct vm *vm);

/* The handle devices get instead of the VM. */
struct vmctl vm_ctl(struct vm *vm);

/* Names the device claiming a port or MMIO address, for reports: the id of
 * the device that owns it (a PCI BAR: the device behind the BAR). */
const char *vm_device_name(void *vm, enum policy_space space, uint64_t addr);

#endif
