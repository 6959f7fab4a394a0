/* svm_int — what the SVM backend's files share: the backend, its vCPUs,
 * the host's CPUID/MSR instructions and the world switch. */
#ifndef VIGIL_SVM_SVM_INT_H
#define VIGIL_SVM_SVM_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "arch/x86/cpuid.h"
#include "arch/x86/insn_decode.h"
#include "core/gmem.h"
#include "svm/svm.h"

struct vm;
struct vcpu_state;

/* The backend's own counters (hv_ops.stats), per vCPU. */
enum svm_stat {
	ST_EXITS, /* every #VMEXIT: the report's "total svm exits" (KVM's "exits") */
	ST_EXIT_INTR, ST_EXIT_NMI, ST_EXIT_CPUID, ST_EXIT_HLT, ST_EXIT_IOIO, ST_EXIT_MSR,
	ST_EXIT_SHUTDOWN, ST_EXIT_NPF, ST_EXIT_SVM_INSN, ST_EXIT_INVALID, ST_EXIT_OTHER,
	ST_EXIT_VINTR, ST_MSR_EMULATED, ST_MSR_UNKNOWN, ST_IO_STRING, ST_INJECT_GP, ST_INJECT_UD,
	ST_INJECT_PF,
	ST_IRQ_INJECTED, ST_IRQCHIP_ACCESS,
	ST__COUNT
};

/* What the last exit handed to the core still owes the guest when it
 * resumes: a read's value into a register or memory, the RIP step. */
enum { SIPI_RUNNING, SIPI_WAIT, SIPI_GOT };

enum svm_pending { PEND_NONE, PEND_RIP, PEND_HLT, PEND_IO, PEND_MMIO, PEND_MSR };

#define SVM_IO_BUF 4096 /* REP INS/OUTS: at most this many bytes per exit */
#define SVM_MTRR_VAR 8

struct svm_vcpu {
	uint8_t *vmcb;          /* its own 4 KiB page (physical == virtual) */
	uint64_t gpr[GPR__COUNT]; /* rax and rsp live in the VMCB while the guest runs */
	unsigned id;
	bool has_state;         /* a boot state, or set_state: can run */
	bool dead;              /* VMRUN refused it or the guest shut down */
	bool flush_tlb;         /* the next VMRUN flushes this ASID */
	bool halted;            /* in HLT until an interrupt can be taken */
	/* Start-up (atomics: other vCPUs' IPIs write them): SIPI_WAIT after an
	 * INIT (an AP from the start), SIPI_GOT | vector << 8 once a SIPI came
	 * while waiting, SIPI_RUNNING when started (a SIPI then is ignored);
	 * init_req asks this vCPU's own run to drop its state. */
	int sipi_state;
	int init_req;
	uint64_t host_pa;       /* svm_host_save_pa of the host CPU it runs on */
	volatile int kick;

	enum svm_pending pend;
	uint64_t next_rip;
	/* PEND_IO */
	bool io_in, io_str, io_rep;
	uint32_t io_size, io_n;  /* bytes per element, elements this exit */
	uint64_t io_addr;        /* string: first element's linear address */
	int64_t io_step;
	uint64_t io_amask;       /* the address size's mask (16, 32, 64 bits) */
	uint64_t io_lmask;       /* linear addresses: 32 bits outside long mode */
	const struct gmem *io_mem;
	/* PEND_MMIO */
	struct insn_mmio mmio;
	/* PEND_MSR */
	uint8_t msr_fault;
	uint32_t msr_index;
	bool msr_write;
	_Alignas(8) uint8_t buf[SVM_IO_BUF];

	struct lapic *lapic;
	uint64_t tsc_deadline;  /* IA32_TSC_DEADLINE as the guest wrote it */

	struct cpuid_leaf *cpuid;
	unsigned ncpuid;

	/* MSRs the backend models itself (the rest live in the VMCB) */
	uint64_t apic_base, mtrr_def, mtrr_var[2 * SVM_MTRR_VAR], mtrr_fixed[11], tsc_aux, spec_ctrl, debugctl;
	uint64_t unknown_msr_logged;

	uint64_t stats[ST__COUNT];
};

struct svm_msr_trap {
	uint32_t first, last;
	bool read, write;
};

struct svm {
	struct vm *vm;
	unsigned ncpus;
	struct svm_vcpu *vcpus;
	uint64_t *npt;          /* nested PML4 */
	uint64_t npt_pages;     /* table pages it took */
	uint8_t *iopm, *msrpm;
	struct svm_msr_trap *msr_traps; /* the policy's (policy_msr_ranges) */
	unsigned nmsr_traps;
	bool nrips;             /* CPUID 0x8000000A EDX bit 3: nRIP saved on exits */
	bool host_irqs;         /* the host has an IDT: VMRUN with IF=1, INTR exits */
	uint32_t asids;
	struct ioapic *ioapic;
	struct i8259 *pic;
	struct i8254 *pit;
};

/* Host instructions. */
static inline void host_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}
static inline uint64_t host_rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}
static inline void host_wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}
static inline uint64_t host_rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* svm_run.S: one world switch. gprs: enum insn_gpr order, [RAX] and [RSP]
 * unused (the VMCB holds them). host_save: a page the host's
 * VMLOAD/VMSAVE state (FS, GS, TR, LDTR, syscall MSRs) is kept in across
 * the guest's. `sti` nonzero: VMRUN with host IF=1 (physical interrupts
 * then exit as INTR). */
void svm_vmrun(uint64_t vmcb_pa, uint64_t *gprs, uint64_t host_save_pa, int sti);

/* svm_cpu.c: this host CPU's page for svm_vmrun's host state. */
uint64_t svm_host_save_pa(void);

/* svm_npt.c */
int svm_npt_build(struct svm *s, char *err, size_t errlen);

/* svm_cpuid.c: vCPU v's table from the host's CPUID, filtered, shaped by
 * cpuid.h and the policy; and one CPUID exit's answer. */
int svm_cpuid_init(struct svm *s, struct svm_vcpu *v, char *err, size_t errlen);
void svm_cpuid_answer(struct svm_vcpu *v, uint32_t leaf, uint32_t sub, uint32_t r[4]);

/* svm_msr.c */
int svm_msr_init(struct svm *s, char *err, size_t errlen);
bool svm_msr_trapped(const struct svm *s, uint32_t index, bool write);
/* The backend's own model of an MSR: 0, or -1 for #GP. */
int svm_msr_emulate(struct svm *s, struct svm_vcpu *v, uint32_t index, uint64_t *value, bool write);

/* svm_state.c (and a vCPU's state after INIT/reset: real mode at the reset vector) */
void svm_reset_state(struct vcpu_state *st, uint64_t apic_base);
void svm_vmcb_init(struct svm *s, struct svm_vcpu *v);
void svm_state_get(const struct svm_vcpu *v, struct vcpu_state *st);
void svm_state_set(struct svm_vcpu *v, const struct vcpu_state *st);

/* svm_irq.c: the interrupt controllers, their delivery, the host timer */
int svm_irq_init(struct svm *s, char *err, size_t errlen);
void svm_irq_timers(struct svm *s, struct svm_vcpu *v);
bool svm_irq_pio(struct svm *s, uint16_t port, uint8_t *data, uint32_t len, bool write);
bool svm_irq_mmio(struct svm *s, struct svm_vcpu *v, uint64_t gpa, uint8_t *data, uint32_t len, bool write);
void svm_irq_inject(struct svm *s, struct svm_vcpu *v);
bool svm_irq_ready(struct svm *s, struct svm_vcpu *v);
/* When a guest timer of v's is due next on the platform's clock
 * (metal_now_ns; UINT64_MAX: never). */
uint64_t svm_irq_next_ns(struct svm *s, struct svm_vcpu *v);
void svm_irq_tsc_deadline(struct svm_vcpu *v, uint64_t guest_tsc);
uint64_t svm_irq_tsc_deadline_get(const struct svm_vcpu *v);

/* svm_exit.c */
int svm_run(void *hv, unsigned cpu, struct vexit *ex);
void svm_inject(struct svm_vcpu *v, unsigned vector, bool has_err, uint32_t err);

#endif
