/* gdb_stub — the commands of gdb's remote protocol over a target (the VM's
 * vCPUs as threads 1..n, their registers, memory by virtual address, guest
 * debug), pure: no sockets, no threads. gdb_server.c feeds it packets and
 * sends what it answers; the unit tests and the fuzzer feed it a fake
 * target. All-stop: every command but the interrupt arrives with the whole
 * VM stopped. */
#ifndef VIGIL_GDB_STUB_H
#define VIGIL_GDB_STUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/x86/cpu_state.h"
#include "core/vcpu.h"
#include "gdb/gdb_regs.h" /* the target description it serves */

struct vexit;

/* Software breakpoints one client may set; hardware ones are DR0-3. */
#define GDB_MAX_SW_BP 64
#define GDB_MAX_HW_BP 4
/* The most memory one m/M/X packet moves (gdb splits larger reads). */
#define GDB_MAX_MEM 4096

/* What the stub needs of the VM. Every call comes with the VM stopped;
 * cpu is 0-based. 0, or negative on failure. */
struct gdb_target_ops {
	int (*get_regs)(void *t, unsigned cpu, struct vcpu_state *s);
	int (*set_regs)(void *t, unsigned cpu, const struct vcpu_state *s);
	/* Memory by virtual address as vCPU `cpu` sees it (physical when its
	 * paging is off); all of it, or failure. */
	int (*read_mem)(void *t, unsigned cpu, uint64_t addr, void *buf, size_t len);
	int (*write_mem)(void *t, unsigned cpu, uint64_t addr, const void *buf, size_t len);
	int (*set_debug)(void *t, unsigned cpu, const struct vcpu_debug *d);
	void (*kill)(void *t);
};

enum gdb_action {
	GDB_ACT_REPLY,  /* send the reply (maybe empty: "not supported") */
	GDB_ACT_RESUME, /* guest debug applied: resume the VM, no reply until it stops */
	GDB_ACT_DETACH, /* reply OK, then let the VM run free and drop the client */
	GDB_ACT_KILL,   /* the VM is being stopped; drop the client */
};

enum gdb_stop_kind { GDB_STOP_INTERRUPT, GDB_STOP_STEP, GDB_STOP_SWBP, GDB_STOP_HWBP, GDB_STOP_WATCH };

struct gdb_stop {
	unsigned cpu;
	enum gdb_stop_kind kind;
	uint64_t addr;       /* GDB_STOP_WATCH: the watched address */
	unsigned watch_type; /* 2 write, 3 read, 4 access (the Z number) */
};

/* What a VEXIT_DEBUG means to the stub. */
enum gdb_verdict {
	GDB_DBG_STOP,     /* stop the VM and report *stop */
	GDB_DBG_REINJECT, /* an INT3 of the guest's own: hand #BP back */
	GDB_DBG_IGNORE,   /* nothing of ours (e.g. no client): resume */
};

struct gdb_sw_bp {
	uint64_t addr;
	uint8_t orig;
	bool used;
};

struct gdb_hw_bp {
	uint64_t addr;
	unsigned type; /* 1 exec, 2 write, 3 read, 4 access */
	unsigned len;
	bool used;
};

struct gdb_stub {
	const struct gdb_target_ops *ops;
	void *t;
	unsigned ncpus;
	unsigned g_cpu, c_cpu; /* Hg, Hc (0-based) */
	bool no_ack;
	bool attached;
	struct gdb_stop last;  /* for '?' */
	struct gdb_sw_bp sw[GDB_MAX_SW_BP];
	struct gdb_hw_bp hw[GDB_MAX_HW_BP];
	/* The resume in progress: which vCPU steps (or -1). */
	int step_cpu;
	bool gdb_step; /* gdb asked for that step (not only a step-over) */
	/* Continuing from a software breakpoint: that vCPU steps over its
	 * original instruction first, the 0xCC goes back afterwards. */
	int stepover_cpu;
	int stepover_bp;
};

void gdb_stub_init(struct gdb_stub *s, const struct gdb_target_ops *ops, void *t, unsigned ncpus);

/* A client attached (the VM is stopped): the stop it is told about first. */
void gdb_stub_attach(struct gdb_stub *s, unsigned cpu);

/* One packet (decoded, `len` bytes, not NUL-terminated necessarily) in;
 * the reply (`*rlen` bytes, unframed) in `reply` of `cap` >= GDB_REPLY_MIN. */
#define GDB_REPLY_MIN (2 * GDB_MAX_MEM + 64)
enum gdb_action gdb_stub_command(struct gdb_stub *s, const char *pkt, size_t len, char *reply, size_t cap,
				 size_t *rlen);

/* Classifies a VEXIT_DEBUG of vCPU `cpu` (on that vCPU's thread; reads
 * only the breakpoint tables, which change only while the VM is stopped). */
enum gdb_verdict gdb_stub_classify(const struct gdb_stub *s, unsigned cpu, const struct vexit *ex,
				   struct gdb_stop *stop);

/* The VM has stopped for `stop`. Returns true and the stop reply when gdb
 * is to be told; false when the stub resumes on its own (a step over a
 * software breakpoint done: the breakpoint is back, debug reapplied: resume
 * the VM and wait for the next stop). */
bool gdb_stub_stopped(struct gdb_stub *s, const struct gdb_stop *stop, char *reply, size_t cap, size_t *rlen);

/* Removes every breakpoint (original bytes back) and clears guest debug on
 * every vCPU: the VM may then run free. For D, k and a vanished client. */
void gdb_stub_detach(struct gdb_stub *s);

#endif
