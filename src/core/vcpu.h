/* vcpu — the vCPU run loop, in the portable core. One loop per vCPU enters
 * the guest through the backend (`struct hv_ops`: run once, kick, get/set
 * state), hands every exit to exit_dispatch(), and between two entries
 * serves its mailbox: pause (park until resumed), and "run this function on
 * this vCPU's thread" (how another thread reads or changes its registers,
 * which a backend only allows from the thread that runs it).
 * The VM's run state (not started → running ⇄ paused → stopped) lives here;
 * why it stopped stays apart, in vm->stop. */
#ifndef VIGIL_CORE_VCPU_H
#define VIGIL_CORE_VCPU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;
struct vexit;
struct vcpu_state; /* the architecture's (arch/x86/cpu_state.h) */

/* Guest debug of one vCPU (the gdb stub): what the backend intercepts.
 * All false: the guest runs as if no debugger were there. */
struct vcpu_debug {
	bool single_step; /* a VEXIT_DEBUG after each instruction */
	bool sw_bp;       /* INT3 (#BP) exits to vigil instead of the guest */
	bool hw_bp;       /* dr[0..3] and dr7 are the host's, for the guest */
	uint64_t dr[4];
	uint64_t dr7;
};
/* One of the hypervisor's own counters (hv_ops.stats). `cumulative`: a
 * count that only grows (exits of a kind); else an instant value or a peak. */
typedef void (*hv_stat_fn)(void *ctx, const char *name, uint64_t value, bool cumulative);

/* What the core needs of a hypervisor backend (KVM today, SVM later). */
struct hv_ops {
	const char *name; /* "kvm": labels the backend's own counters in reports */
	/* First call on the vCPU's own thread, before its first run (KVM:
	 * remembers the thread, so that kick can signal it). */
	void (*bind)(void *hv, unsigned cpu);
	/* Enters the guest on vCPU `cpu` until it exits; fills *ex. 0, or
	 * -errno on a backend failure (the VM then stops with an error).
	 * A kick makes it return 0 with ex->reason == VEXIT_INTR. */
	int (*run)(void *hv, unsigned cpu, struct vexit *ex);
	/* Makes vCPU `cpu` leave the guest soon (from any thread). */
	void (*kick)(void *hv, unsigned cpu);
	/* The vCPU was parked by the host for a while (KVM: kvmclock's pause
	 * notice, so the guest's watchdogs do not fire). On the vCPU's thread. */
	void (*paused)(void *hv, unsigned cpu);
	/* Logs a crash of `cpu` (registers at the fault). On the vCPU's thread. */
	void (*report_crash)(void *hv, unsigned cpu, const struct vexit *ex);
	/* Reads / writes the vCPU's architectural state. On its own thread
	 * (the core calls them through the mailbox). 0 or -errno. */
	int (*get_state)(void *hv, unsigned cpu, struct vcpu_state *s);
	int (*set_state)(void *hv, unsigned cpu, const struct vcpu_state *s);
	/* An MSR access the filter sent to vigil that the policy provides:
	 * carried out as the hypervisor itself would (KVM: KVM_GET/SET_MSRS).
	 * On the vCPU's thread. 0, or -errno (the guest then gets #GP). */
	int (*msr)(void *hv, unsigned cpu, uint32_t index, uint64_t *value, bool write);
	/* Guest debug of vCPU `cpu` (NULL: the backend has none). On its own
	 * thread (the core calls it through the mailbox: vcpu_set_debug). */
	int (*set_debug)(void *hv, unsigned cpu, const struct vcpu_debug *d);
	/* Hands the #BP of the last VEXIT_DEBUG back to the guest (an INT3
	 * that is not the debugger's), on the vCPU's own thread, in the exit's
	 * handling. 0 or -errno. */
	int (*reinject_bp)(void *hv, unsigned cpu);
	/* The hypervisor's own statistics — what it counted without vigil, such
	 * as the exits it handled in the kernel (KVM: binary statistics) — of
	 * the VM (cpu -1) or of vCPU `cpu`: fn once per scalar statistic. Any
	 * thread, while the vCPUs run. 0; -ENOTSUP with *why naming what the
	 * host lacks; another -errno. NULL: the backend keeps none. */
	int (*stats)(void *hv, int cpu, hv_stat_fn fn, void *ctx, const char **why);
	void *hv;
};

enum vm_run_state { VMS_NOT_STARTED, VMS_RUNNING, VMS_PAUSED, VMS_STOPPED };

/* One vCPU's mailbox; guarded by vcpus.lock. */
struct vcpu_mbox {
	void (*fn)(void *arg, unsigned cpu); /* pending call, or NULL */
	void *arg;
	uint64_t calls_done;
	bool parked;
	bool running; /* the loop has started and not yet ended */
	bool started; /* the loop has started (and may have ended since) */
};

struct vcpus {
	struct hv_ops hv;
	_Atomic int state;          /* enum vm_run_state */
	_Atomic bool pause_req;
	unsigned nr_parked;
	/* Nonzero while a pause or a call is outstanding: the one load a vCPU
	 * makes per exit to know whether its mailbox needs a look. */
	_Atomic unsigned pending;
	pthread_mutex_t lock;       /* mailboxes, parking, pause/resume */
	pthread_cond_t cond;        /* any change of the above */
	unsigned nr_loops;          /* vCPU loops running */
	unsigned n;
	struct vcpu_mbox *mbox;     /* n entries */
	/* Called when the VM is asked to stop (any thread but a signal
	 * handler): the control loop's wake-up. */
	void (*notify)(void *ctx);
	void *notify_ctx;
};

int vcpus_init(struct vm *vm, const struct hv_ops *hv);
void vcpus_fini(struct vm *vm);

/* The loop of vCPU `cpu`: run it on a thread of its own (the host layer
 * starts the threads). Returns when the VM stops. */
void vcpu_loop(struct vm *vm, unsigned cpu);

/* Waits until the first `n` vCPU loops have started (each may have ended
 * since): once the VM is said to run, every vCPU takes calls. */
void vcpus_wait_started(struct vm *vm, unsigned n);

enum vm_run_state vm_run_state(struct vm *vm);
/* Marks the VM running (before the vCPU threads start). */
void vm_mark_running(struct vm *vm);

/* Parks every vCPU and returns once all are parked (or the VM stopped).
 * Harmless when already paused; after a vcpu_request_pause() it waits for
 * that pause to complete. Not from a vCPU thread. */
void vm_pause(struct vm *vm);
/* Lets every parked vCPU run again. Harmless when running. */
void vm_resume(struct vm *vm);

/* Runs fn(arg, cpu) on vCPU `cpu`'s thread between two guest entries (or
 * while it is parked) and waits for it. -1 if that vCPU's loop is not
 * running. Not from a vCPU thread. */
int vcpu_run_on(struct vm *vm, unsigned cpu, void (*fn)(void *arg, unsigned cpu), void *arg);

/* The state of vCPU `cpu`, read or written on its own thread between two
 * guest entries (or while parked), the VM running or paused. 0; -1 when the
 * vCPU's loop is not running; -errno from the backend. Not from a vCPU. */
int vcpu_get_state(struct vm *vm, unsigned cpu, struct vcpu_state *s);
int vcpu_set_state(struct vm *vm, unsigned cpu, const struct vcpu_state *s);

/* Sets vCPU `cpu`'s guest debug on its own thread (core/vcpu.h
 * struct vcpu_debug). 0; -1 when its loop is not running; -ENOSYS when the
 * backend has no guest debug; -errno from it. Not from a vCPU thread. */
int vcpu_set_debug(struct vm *vm, unsigned cpu, const struct vcpu_debug *d);

/* From a vCPU thread, in an exit's handling (where vm_pause may not be
 * called): asks every vCPU, this one included, to park before its next
 * guest entry. The VM is then paused as by vm_pause(), which (called from
 * another thread) waits for the parking to finish; vm_resume() ends it.
 * Nothing when the VM is not running or a pause is already asked for. */
void vcpu_request_pause(struct vm *vm);

/* Kicks every vCPU out of the guest and wakes parked ones (a stop). */
void vcpus_wake_all(struct vm *vm);

#endif
