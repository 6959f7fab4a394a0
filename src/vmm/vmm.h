/* vmm — one vigil process: its configuration, the VM once built, and the
 * control loop on the main thread. Everything that changes the VM — the API,
 * signals, the console's Ctrl-A x, a guest stop — is carried out on the main
 * thread, one request at a time, as Firecracker's VMM thread does: other
 * threads (the API server) hand it a function with vmm_call() and wait. The
 * functions marked "control thread" must only run there (inside vmm_call,
 * or from the control loop itself). */
#ifndef VIGIL_VMM_VMM_H
#define VIGIL_VMM_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/vmctl.h"
#include "vmm/config.h"

struct vmm;
struct vm;

/* Firecracker's InstanceInfo.state. */
enum vmm_state { VMM_NOT_STARTED, VMM_RUNNING, VMM_PAUSED, VMM_STOPPED };

struct vmm *vmm_new(const struct vm_config *initial);
void vmm_free(struct vmm *m);

/* Runs fn(arg) on the control thread and waits for it. From the control
 * thread itself, calls fn directly. -1 if the VMM is shutting down (fn not run). */
int vmm_call(struct vmm *m, void (*fn)(void *arg), void *arg);

/* The control loop: serves vmm_call()s, signals and VM stops until the VM
 * has stopped (or, never started, until asked to quit). Starts the VM first
 * when `start` is set. Returns the process exit status (README's table). */
int vmm_run(struct vmm *m, bool start);

/* --- control thread --------------------------------------------------- */

enum vmm_state vmm_state(const struct vmm *m);
const char *vmm_state_name(enum vmm_state s); /* "Not started", "Running", "Paused", "Stopped" */

/* The configuration; change it only before start (the API's pre-boot calls). */
struct vm_config *vmm_config(struct vmm *m);

/* InstanceStart: validates the configuration, builds the VM and starts its
 * vCPUs. 0, or -1 + err (a second start: "The requested operation is not
 * supported after starting the microVM."). */
int vmm_start(struct vmm *m, char *err, size_t errlen);

/* PATCH /vm. Pausing a paused VM or resuming a running one is a no-op.
 * -1 + err before the start. */
int vmm_pause(struct vmm *m, char *err, size_t errlen);
int vmm_resume(struct vmm *m, char *err, size_t errlen);

/* SendCtrlAltDel: the i8042 keyboard's Ctrl+Alt+Del. -1 + err before start. */
int vmm_ctrl_alt_del(struct vmm *m, char *err, size_t errlen);

/* FlushMetrics: one line to the metrics file if one is configured. */
int vmm_flush_metrics(struct vmm *m, char *err, size_t errlen);

/* GET /vigil/vcpus/{n}/regs: vCPU n's state, read on its own thread
 * (running or paused). -1 + err: not started, no such vCPU, backend error. */
struct vcpu_state;
int vmm_vcpu_state(struct vmm *m, unsigned n, struct vcpu_state *s, char *err, size_t errlen);
/* vCPU n's host thread id, 0 if unknown. */
int vmm_vcpu_tid(struct vmm *m, unsigned n);

/* PUT /policy: takes over p (compiled from s) and s, whatever happens.
 * Before the start the spec becomes the configuration's; after it the
 * compiled policy is swapped into the running VM (cpuid and rtc rules may
 * not change then). The configuration's policy is always the one in force. */
struct policy;
struct policy_spec;
int vmm_set_policy(struct vmm *m, struct policy *p, struct policy_spec *s, char *err, size_t errlen);
/* PUT /vigil/trace: start (a path), switch (another path), stop (enabled
 * false) or refilter (filter; "" for none) the JSON-lines trace, live or
 * before the start (then it is configuration). PUT /vigil/audit: start,
 * switch or stop (path NULL or "") the audit log. 0 or -1 + err (the old
 * state stays). */
struct vmm_trace_req {
	const char *path;   /* NULL: not given */
	const char *filter; /* NULL: not given */
	bool has_enabled, enabled;
};
int vmm_set_trace(struct vmm *m, const struct vmm_trace_req *r, char *err, size_t errlen);
int vmm_set_audit(struct vmm *m, const char *path, char *err, size_t errlen);
/* The trace's counters (vmm/trace.h); false before the start. */
struct vtrace_stats;
bool vmm_trace_stats(struct vmm *m, struct vtrace_stats *st);

/* PUT /snapshot/create: the paused VM into a state file and a memory
 * file (vmm_snapshot.c). -1 + err: not started, not paused, a file that
 * cannot be written, Diff without track_dirty_pages. */
struct vmm_snapshot_create {
	const char *snapshot_path, *mem_file_path;
	bool diff;
};
int vmm_snapshot_create(struct vmm *m, const struct vmm_snapshot_create *r, char *err, size_t errlen);
/* PUT /snapshot/load, on a process where nothing boot-specific is
 * configured: the VM rebuilt from the snapshot, paused unless resume_vm.
 * On any error nothing of it is left and the process can try again. */
struct vmm_snapshot_load {
	const char *snapshot_path;
	const char *mem_path;  /* the File backend (or mem_file_path) */
	const char *uffd_path; /* the Uffd backend's socket */
	bool track_dirty_pages, resume_vm;
	struct { const char *iface_id, *host_dev_name; } net[VMCFG_MAX_NETS]; /* network_overrides */
	unsigned nr_net;
	const char *vsock_uds; /* vsock_override.uds_path, or NULL */
	/* vigil's own: a clone's identity ("vigil_clone") */
	const char *instance_id;
	bool has_cid;
	uint32_t cid;
	struct { const char *iface_id; uint8_t mac[6]; } mac[VMCFG_MAX_NETS];
	unsigned nr_mac;
};
int vmm_snapshot_load(struct vmm *m, const struct vmm_snapshot_load *r, char *err, size_t errlen);
/* The last create's and load's durations, microseconds (0: none yet). */
uint64_t vmm_snapshot_last_us(const struct vmm *m, bool load);
bool vmm_snapshot_last_diff(const struct vmm *m); /* the last create was a Diff */
/* From the start of the last load to vCPU 0's first entry, microseconds
 * (0: no load, or not resumed yet). */
uint64_t vmm_snapshot_first_entry_us(struct vmm *m);

/* The running (or paused) VM, NULL before start: for stats and metrics. */
struct vm *vmm_vm(struct vmm *m);

/* Ask the control loop to stop the VM (or to quit before start) with `why`.
 * Any thread; async-signal-safe. */
void vmm_request_stop(struct vmm *m, enum vm_stop why);

/* Process figures for /metrics. */
uint64_t vmm_uptime_ns(const struct vmm *m);
uint64_t vmm_api_requests(const struct vmm *m);
/* One more API request; failures are counted per call group by
 * metrics_count_api(). */
void vmm_count_api_request(struct vmm *m);

#endif
