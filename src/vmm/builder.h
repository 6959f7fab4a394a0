/* builder — turns a `struct vm_config` into a machine ready to run: the KVM
 * backend, guest RAM, the PC board and its legacy devices, the virtio
 * devices the configuration names (registered under their ids), the ACPI
 * tables, the loaded kernel and the vCPUs; then starts and stops it. The
 * one place that knows the build and teardown order (docs/ARCHITECTURE.md).
 * Used by the control loop (vmm.c) only. */
#ifndef VIGIL_VMM_BUILDER_H
#define VIGIL_VMM_BUILDER_H

#include <stddef.h>

#include "core/vmctl.h"
#include "vmm/config.h"

struct machine;
struct vm;
struct vtrace;

/* Builds everything but starts nothing; `notify(ctx)` is called from any
 * thread when the VM is asked to stop. NULL + a one-line reason in err. */
struct machine *machine_build(const struct vm_config *c, void (*notify)(void *ctx), void *ctx, char *err,
			      size_t errlen);
/* Starts the event thread's work, the console input and the vCPU threads. */
int machine_start(struct machine *mc, char *err, size_t errlen);

/* Pause: vCPUs parked first (none is then inside a device handler), then
 * the devices quiesced and the event thread parked; resume in reverse. */
void machine_pause(struct machine *mc);
void machine_resume(struct machine *mc);

/* The i8042's Ctrl+Alt+Del; -1 + err if the guest cannot receive it. */
int machine_ctrl_alt_del(struct machine *mc, char *err, size_t errlen);

/* PATCH /drives/{id} with path_on_host: the drive's image replaced (or
 * reread after a resize) with the VM paused around it. If the new image
 * does not open, the old one is kept. 0 or -1 + err. */
int machine_update_drive(struct machine *mc, const char *id, const char *path, char *err, size_t errlen);

struct vm *machine_vm(struct machine *mc);
/* The trace and audit writer (vmm/trace.h). */
struct vtrace *machine_trace(struct machine *mc);

/* The policy and the hypervisor. At build, the policy in force in the VM's
 * slot when machine_build() creates the vCPUs gives their CPUID and the
 * MSR filter. After a live swap (PUT /policy), on the control thread:
 * machine_policy_check(mc, p) before policy_swap() finds what KVM cannot
 * do with `p` (too many MSR ranges for its filter, rules only on x2APIC
 * MSRs); machine_policy_changed(mc) after it programs the MSR filter from
 * the policy now in force. CPUID cannot change once the vCPUs exist (the
 * caller refuses such swaps). 0 or -1 + err. */
struct policy;
int machine_policy_check(struct machine *mc, const struct policy *p, char *err, size_t errlen);
int machine_policy_changed(struct machine *mc, char *err, size_t errlen);

/* vCPU i's host thread id (0 before its thread runs). */
int machine_vcpu_tid(struct machine *mc, unsigned i);

/* Asks the VM to stop (any thread but a signal handler). */
void machine_request_stop(struct machine *mc, enum vm_stop why);

/* Waits for the vCPU threads, prints --stats, tears everything down in
 * order and returns why the VM stopped. NULL-safe (VM_STOP_ERROR). */
enum vm_stop machine_finish(struct machine *mc);

#endif
