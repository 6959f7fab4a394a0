/* exit — the one path every VM exit takes.
 * A backend (src/kvm today, a bare-metal SVM backend later) translates its
 * native exit into a `struct vexit` and calls exit_dispatch(), which counts
 * the exit in the monitor, asks the policy, and hands allowed accesses to
 * the device that claimed the address. Nothing here allocates or makes a
 * syscall: it runs on every exit. */
#ifndef VIGIL_CORE_EXIT_H
#define VIGIL_CORE_EXIT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/vmctl.h"

struct vm;
struct vcpu_stats;

enum vexit_reason {
	VEXIT_IO,             /* port I/O */
	VEXIT_MMIO,           /* access to an unbacked guest physical address */
	VEXIT_HLT,            /* HLT with no in-kernel irqchip to park on */
	VEXIT_SHUTDOWN,       /* triple fault */
	VEXIT_SYSTEM_EVENT,   /* backend-reported poweroff/reset/crash */
	VEXIT_INTERNAL_ERROR, /* the backend could not emulate something */
	VEXIT_FAIL_ENTRY,     /* the hardware refused to enter the guest */
	VEXIT_INTR,           /* a host signal kicked the vCPU out */
	VEXIT_MSR,            /* RDMSR / WRMSR the backend's MSR filter sent to vigil */
	VEXIT_DEBUG,          /* single step, breakpoint, watchpoint (guest debug on) */
	VEXIT_UNKNOWN,        /* anything else the backend reports */
	VEXIT__COUNT
};

enum vexit_event { VEXIT_EVENT_POWEROFF, VEXIT_EVENT_RESET, VEXIT_EVENT_CRASH };

struct vexit {
	enum vexit_reason reason;
	/* VEXIT_IO, VEXIT_MMIO */
	bool write;
	uint32_t len;   /* bytes per access: 1, 2, 4 or 8; MMIO 1-8 (KVM cuts an access at a page edge; exit_dispatch takes odd pieces byte by byte) */
	uint32_t count; /* repetitions (REP INS/OUTS); `data` holds len*count bytes */
	uint64_t addr;  /* port or guest physical address */
	uint8_t *data;
	/* VEXIT_MSR: addr is the MSR's index, `data` its 8-byte value (the
	 * guest's on a write; to be filled on a read); set *fault to 1 to
	 * inject #GP instead. */
	uint8_t *fault;
	/* VEXIT_DEBUG: where the guest stopped and why (DR6, the vector) */
	uint64_t pc;
	uint64_t dr6;
	uint32_t exception;
	/* VEXIT_SYSTEM_EVENT */
	enum vexit_event event;
	/* VEXIT_INTERNAL_ERROR, VEXIT_FAIL_ENTRY, VEXIT_UNKNOWN: for the log */
	uint64_t hw_reason;
};

/* Handles one exit of vCPU `cpu`. Returns VM_STOP_NONE to resume the vCPU, or
 * the reason the whole VM must stop. */
enum vm_stop exit_dispatch(struct vm *vm, unsigned cpu, struct vexit *ex);

/* A guest write the hypervisor took without an exit (a queue doorbell KVM
 * caught through an ioeventfd), as the event thread takes it: judged as an
 * MMIO write of `len` bytes at `gpa` (claimed) and traced or audited as
 * one by no vCPU. Several writes between two takes are one. True: carry it
 * out; false: the policy refused it (drop it). */
bool exit_judge_doorbell(struct vm *vm, uint64_t gpa, uint32_t len);

const char *vexit_reason_name(enum vexit_reason r);

#endif
