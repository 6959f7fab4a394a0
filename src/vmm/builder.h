/* builder — turns a `struct vm_config` into a machine ready to run: the KVM
 * backend, guest RAM, the PC board and its legacy devices, the virtio
 * devices the configuration names (registered under their ids), the ACPI
 * tables, the loaded kernel and the vCPUs; then starts and stops it. The
 * one place that knows the build and teardown order (docs/ARCHITECTURE.md).
 * Used by the control loop (vmm.c) only. */
#ifndef VIGIL_VMM_BUILDER_H
#define VIGIL_VMM_BUILDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/vmctl.h"
#include "vmm/config.h"

struct machine;
struct vm;
struct vtrace;

/* A snapshot to restore instead of a kernel to boot (PUT /snapshot/load). */
struct snap_reader;
struct snap_writer;
struct machine_restore {
	struct snap_reader *r; /* the checked state file */
	int mem_fd;            /* the File backend's memory file, else -1 */
	const char *uffd_path; /* the Uffd backend's socket, else NULL */
	/* A clone's identity (vigil_clone): kept over the snapshot's. */
	bool has_cid;
	uint32_t cid;
	struct { const char *iface_id; uint8_t mac[6]; } mac[VMCFG_MAX_NETS];
	unsigned nr_mac;
};

/* Builds everything but starts nothing; `notify(ctx)` is called from any
 * thread when the VM is asked to stop. With `rs`, the same machine is built
 * from the snapshot's configuration, RAM comes from its memory and every
 * vCPU, device and counter takes the snapshot's state: no kernel is loaded.
 * NULL + a one-line reason in err (nothing is left half-built). */
struct machine *machine_build(const struct vm_config *c, void (*notify)(void *ctx), void *ctx,
			      const struct machine_restore *rs, char *err, size_t errlen);
/* Starts the event thread's work, the console input and the vCPU threads;
 * `paused`: every vCPU parks before its first guest entry (as after
 * machine_pause). */
int machine_start(struct machine *mc, bool paused, char *err, size_t errlen);

/* PUT /snapshot/create, with the machine paused: the state of every vCPU,
 * the interrupt controllers, every device and the counters into w
 * (builder_snap.c). 0 or -1 + err. */
int machine_save(struct machine *mc, struct snap_writer *w, char *err, size_t errlen);
/* Guest RAM into the memory file fd (truncated first): Full writes every
 * page that is not zero (the rest are holes); diff only the pages written
 * since the last snapshot (the guest's, from KVM's log, and vigil's own),
 * and needs track_dirty_pages. *bytes: what was written. After either, the
 * next Diff counts from here. 0 or -1 + err. */
int machine_save_memory(struct machine *mc, int fd, bool diff, uint64_t *bytes, char *err, size_t errlen);

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
/* Before a live swap too: opens the copy-on-write overlay `p` gives each
 * drive (the build opens those of the first policy), so no redirected
 * write opens a file on a block worker. 0 or -1 + err ("drive ID: overlay ..."). */
int machine_open_overlays(struct machine *mc, const struct policy *p, char *err, size_t errlen);
int machine_policy_changed(struct machine *mc, char *err, size_t errlen);

/* CLOCK_MONOTONIC (ns) when vCPU 0's loop began its first entry; 0 before. */
uint64_t machine_first_entry_ns(struct machine *mc);
/* vCPU i's host thread id (0 before its thread runs). */
int machine_vcpu_tid(struct machine *mc, unsigned i);

/* Asks the VM to stop (any thread but a signal handler). */
void machine_request_stop(struct machine *mc, enum vm_stop why);

/* Waits for the vCPU threads, prints --stats, tears everything down in
 * order and returns why the VM stopped. NULL-safe (VM_STOP_ERROR). */
enum vm_stop machine_finish(struct machine *mc);

#endif
