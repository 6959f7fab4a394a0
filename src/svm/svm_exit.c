/* svm_exit — entering the guest and what each #VMEXIT becomes. Exits the
 * backend finishes itself (CPUID, the MSRs it models, host interrupts,
 * SVM instructions → #UD) loop straight back into the guest, as KVM
 * handles its in-kernel exits; the rest become a struct vexit for
 * exit_dispatch, and what that exit still owes the guest (a read's value,
 * the step past the instruction, a #GP) is paid at the next entry, as
 * KVM_RUN does. Without NRIPS (QEMU) next-RIP comes from EXITINFO2 (I/O),
 * the architectural lengths (CPUID, RDMSR/WRMSR 2, HLT 1) or the decoder
 * (MMIO). */
#include <errno.h>
#include <string.h>

#include "arch/x86/cpu_state.h"
#include "arch/x86/pagewalk.h"
#include "core/vm.h"
#include "metal/metal.h"
#include "svm/svm_int.h"
#include "svm/vmcb.h"

#define EXC_UD 6
#define EXC_GP 13
#define EXC_PF 14
#define RFLAGS_DF (1ull << 10)
#define RFLAGS_AC (1ull << 18)
#define CR0_PG (1ull << 31)
#define CR0_WP (1ull << 16)
#define CR4_OSXSAVE (1ull << 18)
#define CR4_PKE (1ull << 22)
#define CR4_SMAP (1ull << 21)
#define CR4_LA57 (1ull << 12)
#define PF_P 1u
#define PF_W 2u
#define PF_U 4u
#define PF_RSVD 8u

void svm_inject(struct svm_vcpu *v, unsigned vector, bool has_err, uint32_t err)
{
	uint64_t e = vector | EVT_TYPE_EXC | EVT_VALID;
	if (has_err)
		e |= EVT_ERR_VALID | (uint64_t)err << 32;
	vmcb_w64(v->vmcb, VMCB_EVENTINJ, e);
	v->stats[vector == EXC_GP ? ST_INJECT_GP : vector == EXC_PF ? ST_INJECT_PF : ST_INJECT_UD]++;
}

static uint64_t rip(const struct svm_vcpu *v)
{
	return vmcb_r64(v->vmcb, VMCB_RIP);
}

static void set_rip(struct svm_vcpu *v, uint64_t r)
{
	vmcb_w64(v->vmcb, VMCB_RIP, r);
	vmcb_w64(v->vmcb, VMCB_INT_SHADOW, 0); /* stepping past the instruction ends an STI/MOV SS shadow */
}

/* Where the intercepted instruction of `len` bytes ends. */
static uint64_t next_rip(const struct svm *s, const struct svm_vcpu *v, unsigned len)
{
	uint64_t n = s->nrips ? vmcb_r64(v->vmcb, VMCB_NRIP) : 0;
	return n ? n : rip(v) + len;
}

static struct pw_regs pw_of(const struct svm_vcpu *v)
{
	return (struct pw_regs){ .cr0 = vmcb_r64(v->vmcb, VMCB_CR0), .cr3 = vmcb_r64(v->vmcb, VMCB_CR3),
				 .cr4 = vmcb_r64(v->vmcb, VMCB_CR4), .efer = vmcb_r64(v->vmcb, VMCB_EFER) };
}

static enum insn_mode mode_of(const struct svm_vcpu *v)
{
	if (!(vmcb_r64(v->vmcb, VMCB_CR0) & 1))
		return INSN_MODE16;
	uint16_t cs = *(const uint16_t *)(v->vmcb + VMCB_CS + 2);
	if ((vmcb_r64(v->vmcb, VMCB_EFER) & EFER_LMA) && (cs & (1u << 9)))
		return INSN_MODE64;
	return (cs & (1u << 10)) ? INSN_MODE32 : INSN_MODE16;
}

/* An update of a register used as an address of `amask` width. */
static uint64_t put_masked(uint64_t old, uint64_t val, uint64_t amask)
{
	if (amask == ~0ull)
		return val;
	if (amask == 0xffffffffull)
		return val & amask;
	return (old & ~0xffffull) | (val & 0xffff);
}

/* --- completing the last exit --- */

static void complete_io(struct svm_vcpu *v)
{
	uint64_t *g = v->gpr;
	if (!v->io_str) {
		if (v->io_in) {
			uint64_t x = 0;
			memcpy(&x, v->buf, v->io_size);
			g[GPR_RAX] = v->io_size == 4 ? x : v->io_size == 2 ? (g[GPR_RAX] & ~0xffffull) | x
									 : (g[GPR_RAX] & ~0xffull) | x;
		}
		set_rip(v, v->next_rip);
		return;
	}
	unsigned idx = v->io_in ? GPR_RDI : GPR_RSI;
	if (v->io_in) {
		struct pw_regs pw = pw_of(v);
		const struct gmem *m = v->io_mem;
		for (uint32_t i = 0; i < v->io_n; i++) {
			uint64_t a = v->io_addr + (uint64_t)((int64_t)i * v->io_step);
			if (pw_write(m, &pw, a & v->io_lmask, v->buf + (size_t)i * v->io_size, v->io_size) != 0) {
				svm_inject(v, EXC_GP, true, 0);
				return;
			}
		}
	}
	g[idx] = put_masked(g[idx], g[idx] + (uint64_t)((int64_t)v->io_n * v->io_step), v->io_amask);
	if (v->io_rep) {
		g[GPR_RCX] = put_masked(g[GPR_RCX], g[GPR_RCX] - v->io_n, v->io_amask);
		if (g[GPR_RCX] & v->io_amask)
			return; /* RIP stays: the REP goes on with the next exit */
	}
	set_rip(v, v->next_rip);
}

static void complete(struct svm_vcpu *v)
{
	switch (v->pend) {
	case PEND_NONE:
		break;
	case PEND_RIP:
	case PEND_HLT:
		set_rip(v, v->next_rip);
		break;
	case PEND_IO:
		complete_io(v);
		break;
	case PEND_MMIO:
		if (!v->mmio.write) {
			unsigned gi = v->mmio.high8 ? v->mmio.reg - 4 : v->mmio.reg;
			uint64_t x = 0;
			memcpy(&x, v->buf, v->mmio.size);
			v->gpr[gi] = insn_load_result(&v->mmio, v->gpr[gi], x);
		}
		set_rip(v, v->next_rip);
		break;
	case PEND_MSR:
		if (v->msr_fault) {
			svm_inject(v, EXC_GP, true, 0);
			break;
		}
		if (!v->msr_write) {
			uint64_t x;
			memcpy(&x, v->buf, 8);
			v->gpr[GPR_RAX] = (uint32_t)x;
			v->gpr[GPR_RDX] = x >> 32;
		}
		set_rip(v, v->next_rip);
		break;
	}
	v->pend = PEND_NONE;
}

/* --- the exits --- */

static void do_cpuid(struct svm *s, struct svm_vcpu *v)
{
	uint32_t leaf = (uint32_t)v->gpr[GPR_RAX], sub = (uint32_t)v->gpr[GPR_RCX], r[4];
	svm_cpuid_answer(v, leaf, sub, r);
	uint64_t cr4 = vmcb_r64(v->vmcb, VMCB_CR4);
	if (leaf == 1 && (cr4 & CR4_OSXSAVE))
		r[2] |= 1u << 27;
	if (leaf == 7 && sub == 0 && (cr4 & CR4_PKE))
		r[2] |= 1u << 4;
	if (leaf == 0xd && sub < 2 && r[0] | r[1] | r[2] | r[3]) {
		/* the save area's size for the XCR0 in force, the guest's own */
		uint32_t h[4];
		host_cpuid(0xd, sub, h);
		r[1] = h[1];
	}
	v->gpr[GPR_RAX] = r[0];
	v->gpr[GPR_RBX] = r[1];
	v->gpr[GPR_RCX] = r[2];
	v->gpr[GPR_RDX] = r[3];
	set_rip(v, next_rip(s, v, 2));
}

/* Whether the CPU could make this data access to [a, a+size) of a string
 * I/O's buffer: 0; 1 with *cr2 and *err of the #PF it would raise (not
 * present, a supervisor page from CPL 3, a read-only page written from
 * CPL 3 or with CR0.WP, a user page under SMAP, reserved bits); -1 for a
 * non-canonical address or tables outside guest RAM (#GP). */
static int string_access(const struct svm_vcpu *v, const struct gmem *m, const struct pw_regs *pw, uint64_t a,
			 uint32_t size, bool write, uint64_t *cr2, uint32_t *err)
{
	if (!(pw->cr0 & CR0_PG))
		return 0;
	bool user = *(const uint8_t *)(v->vmcb + VMCB_CPL) == 3;
	bool smap = (pw->cr4 & CR4_SMAP) && !user && !(vmcb_r64(v->vmcb, VMCB_RFLAGS) & RFLAGS_AC);
	uint32_t code = (write ? PF_W : 0) | (user ? PF_U : 0);
	uint64_t last = (a + size - 1) & v->io_lmask;
	for (int k = 0; k < 2; k++) {
		uint64_t p = k ? last & ~0xfffull : a;
		if (k && (last >> 12) == (a >> 12))
			break;
		if (pw->efer & EFER_LMA) {
			unsigned top = (pw->cr4 & CR4_LA57) ? 56 : 47;
			uint64_t hi = p >> top;
			if (hi != 0 && hi != (~0ull >> top))
				return -1;
		}
		struct pw_result r;
		int e = pw_translate(m, pw, p, &r);
		*cr2 = p;
		if (e == PW_NOT_PRESENT) {
			*err = code;
			return 1;
		}
		if (e == PW_RESERVED) {
			*err = code | PF_P | PF_RSVD;
			return 1;
		}
		if (e < 0)
			return -1;
		if ((user && !r.user) || (write && !r.writable && (user || (pw->cr0 & CR0_WP))) || (smap && r.user)) {
			*err = code | PF_P;
			return 1;
		}
	}
	return 0;
}

/* The elements of a string I/O the CPU would reach before its first
 * fault: a fault on the first is raised now (#PF with CR2, or #GP) and 0
 * returned; one on a later element ends this exit's part there, and the
 * REP faults on it at the next. */
static uint32_t string_elements(struct svm_vcpu *v, const struct pw_regs *pw, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		uint64_t a = (v->io_addr + (uint64_t)((int64_t)i * v->io_step)) & v->io_lmask, cr2;
		uint32_t err;
		int r = string_access(v, v->io_mem, pw, a, v->io_size, v->io_in, &cr2, &err);
		if (r == 0)
			continue;
		if (i == 0) {
			if (r > 0) {
				vmcb_w64(v->vmcb, VMCB_CR2, cr2);
				svm_inject(v, EXC_PF, true, err);
			} else {
				svm_inject(v, EXC_GP, true, 0);
			}
		}
		return i;
	}
	return n;
}

/* 0 with ex filled for the core; 1 when the backend finished it. */
static int do_ioio(struct svm *s, struct svm_vcpu *v, struct vexit *ex)
{
	uint64_t info = vmcb_r64(v->vmcb, VMCB_EXITINFO1);
	uint32_t size = (info & (1u << 4)) ? 1 : (info & (1u << 5)) ? 2 : 4;
	v->io_in = info & IOIO_IN;
	v->io_size = size;
	v->io_str = info & IOIO_STR;
	v->next_rip = vmcb_r64(v->vmcb, VMCB_EXITINFO2);
	*ex = (struct vexit){ .reason = VEXIT_IO, .write = !v->io_in, .len = size, .count = 1,
			      .addr = (info >> 16) & 0xffff, .data = v->buf };
	if (!v->io_str) {
		memcpy(v->buf, &v->gpr[GPR_RAX], size);
		v->pend = PEND_IO;
		if (svm_irq_pio(s, (uint16_t)ex->addr, v->buf, size, ex->write)) {
			v->stats[ST_IRQCHIP_ACCESS]++;
			complete(v);
			return 1;
		}
		return 0;
	}
	v->stats[ST_IO_STRING]++;
	uint64_t amask = (info & (1u << 7)) ? 0xffff : (info & (1u << 8)) ? 0xffffffffull : ~0ull;
	v->io_rep = info & IOIO_REP;
	v->io_amask = amask;
	uint64_t count = v->io_rep ? v->gpr[GPR_RCX] & amask : 1;
	if (count == 0) {
		set_rip(v, v->next_rip);
		return 1;
	}
	v->io_n = count < SVM_IO_BUF / size ? (uint32_t)count : SVM_IO_BUF / size;
	v->io_step = (vmcb_r64(v->vmcb, VMCB_RFLAGS) & RFLAGS_DF) ? -(int64_t)size : (int64_t)size;
	enum insn_mode mode = mode_of(v);
	unsigned seg = v->io_in ? 0 : (unsigned)((info >> 10) & 7); /* INS: ES; OUTS: DS or the override */
	if (seg > 5)
		seg = 3;
	uint64_t base = (mode == INSN_MODE64 && seg < 4) ? 0 : vmcb_r64(v->vmcb, VMCB_ES + 16 * seg + 8);
	uint64_t off = v->gpr[v->io_in ? GPR_RDI : GPR_RSI];
	/* Element i sits at base + (off + i*step) within the address size;
	 * kept as base + off and stepped, the wrap is ignored (no guest
	 * relies on a string I/O buffer wrapping its segment). */
	v->io_addr = base + (off & amask);
	v->io_lmask = mode == INSN_MODE64 ? ~0ull : 0xffffffffull;
	v->io_mem = &s->vm->mem;
	struct pw_regs pw = pw_of(v);
	if (!(v->io_n = string_elements(v, &pw, v->io_n)))
		return 1;
	if (!v->io_in) {
		for (uint32_t i = 0; i < v->io_n; i++) {
			uint64_t a = v->io_addr + (uint64_t)((int64_t)i * v->io_step);
			if (pw_read(&s->vm->mem, &pw, a & v->io_lmask, v->buf + (size_t)i * size, size) != 0) {
				/* outside guest RAM: #GP here, or on it at the next exit */
				if (i == 0) {
					svm_inject(v, EXC_GP, true, 0);
					return 1;
				}
				v->io_n = i;
				break;
			}
		}
	}
	ex->count = v->io_n;
	v->pend = PEND_IO;
	return 0;
}

static int do_msr(struct svm *s, struct svm_vcpu *v, struct vexit *ex)
{
	uint32_t index = (uint32_t)v->gpr[GPR_RCX];
	bool write = vmcb_r64(v->vmcb, VMCB_EXITINFO1) & 1;
	uint64_t value = write ? ((v->gpr[GPR_RDX] << 32) | (uint32_t)v->gpr[GPR_RAX]) : 0;
	v->next_rip = next_rip(s, v, 2);
	if (svm_msr_trapped(s, index, write)) {
		memcpy(v->buf, &value, 8);
		v->msr_fault = 0;
		v->msr_write = write;
		v->msr_index = index;
		*ex = (struct vexit){ .reason = VEXIT_MSR, .write = write, .addr = index, .len = 8, .count = 1,
				      .data = v->buf, .fault = &v->msr_fault };
		v->pend = PEND_MSR;
		return 0;
	}
	if (svm_msr_emulate(s, v, index, &value, write) < 0) {
		svm_inject(v, EXC_GP, true, 0);
		return 1;
	}
	if (!write) {
		v->gpr[GPR_RAX] = (uint32_t)value;
		v->gpr[GPR_RDX] = value >> 32;
	}
	set_rip(v, v->next_rip);
	return 1;
}

/* The faulting instruction, fetched through the guest's page tables: as
 * many of its 15 possible bytes as translate. */
static size_t fetch(struct svm *s, struct svm_vcpu *v, enum insn_mode mode, uint8_t *b)
{
	uint64_t ip = rip(v), cs_base = vmcb_r64(v->vmcb, VMCB_CS + 8), lin;
	if (mode == INSN_MODE64)
		lin = ip;
	else
		lin = (cs_base + (ip & (mode == INSN_MODE16 && !(vmcb_r64(v->vmcb, VMCB_CR0) & 1) ? 0xffff
												 : 0xffffffffull))) &
		      0xffffffffull;
	struct pw_regs pw = pw_of(v);
	if (pw_read(&s->vm->mem, &pw, lin, b, INSN_MAX_LEN) == 0)
		return INSN_MAX_LEN;
	size_t n = 0;
	while (n < INSN_MAX_LEN && pw_read(&s->vm->mem, &pw, lin + n, b + n, 1) == 0)
		n++;
	return n;
}

static int do_npf(struct svm *s, struct svm_vcpu *v, struct vexit *ex)
{
	uint64_t gpa = vmcb_r64(v->vmcb, VMCB_EXITINFO2), info = vmcb_r64(v->vmcb, VMCB_EXITINFO1);
	if (gmem_valid(&s->vm->mem, gpa, 1) || (info & (1ull << 33))) {
		/* RAM is always mapped: only a guest page table in a hole gets here */
		metal_log("vCPU %u: nested page fault at gpa %#llx (error %#llx) during the guest's page walk",
			  v->id, (unsigned long long)gpa, (unsigned long long)info);
		*ex = (struct vexit){ .reason = VEXIT_INTERNAL_ERROR, .hw_reason = SVM_EXIT_NPF };
		return 0;
	}
	enum insn_mode mode = mode_of(v);
	uint8_t b[INSN_MAX_LEN];
	size_t n = fetch(s, v, mode, b);
	if (insn_decode_mmio(b, n, mode, &v->mmio) < 0) {
		metal_log("vCPU %u: MMIO at gpa %#llx by an instruction vigil-metal does not emulate "
			  "(rip %#llx: %02x %02x %02x %02x %02x %02x, %zu byte(s) readable)",
			  v->id, (unsigned long long)gpa, (unsigned long long)rip(v), b[0], b[1], b[2], b[3], b[4],
			  b[5], n);
		*ex = (struct vexit){ .reason = VEXIT_INTERNAL_ERROR, .hw_reason = SVM_EXIT_NPF };
		return 0;
	}
	const struct insn_mmio *d = &v->mmio;
	memset(v->buf, 0, 8);
	if (d->write) {
		unsigned gi = d->high8 ? d->reg - 4 : d->reg;
		uint64_t x = insn_store_value(d, v->gpr[gi]);
		memcpy(v->buf, &x, d->size);
	}
	v->next_rip = rip(v) + d->len;
	v->pend = PEND_MMIO;
	if (svm_irq_mmio(s, v, gpa, v->buf, d->size, d->write)) {
		v->stats[ST_IRQCHIP_ACCESS]++;
		complete(v);
		return 1;
	}
	*ex = (struct vexit){ .reason = VEXIT_MMIO, .write = d->write, .len = d->size, .count = 1, .addr = gpa,
			      .data = v->buf };
	return 0;
}

static int handle_exit(struct svm *s, struct svm_vcpu *v, struct vexit *ex)
{
	uint8_t *c = v->vmcb;
	uint64_t code = vmcb_r64(c, VMCB_EXITCODE);
	/* VMEXIT_INVALID is -1 in the 64-bit field; QEMU's TCG writes it as a
	 * 32-bit -1 (0xffffffff), which is no exit code either. */
	if (code == 0xffffffffull)
		code = SVM_EXIT_INVALID;
	v->stats[ST_EXITS]++;

	/* An event cut short by this exit is delivered again on the next entry;
	 * but a software interrupt (INTn) or INT3/INTO is not: RIP still
	 * points at its instruction, which runs again (without NRIPS there is
	 * no next-RIP to push for a re-injected one). */
	uint64_t ii = vmcb_r64(c, VMCB_EXITINTINFO);
	unsigned itype = (ii >> 8) & 7, ivec = ii & 0xff;
	bool soft = itype == 4 || (itype == 3 && (ivec == 3 || ivec == 4));
	vmcb_w64(c, VMCB_EVENTINJ, (ii & EVT_VALID) && !soft ? ii : 0);

	switch (code) {
	case SVM_EXIT_INTR:
		v->stats[ST_EXIT_INTR]++;
		if (s->host_irqs)
			__asm__ volatile("sti; nop; cli" ::: "memory"); /* the host's handler runs here */
		return 1;
	case SVM_EXIT_NMI:
		v->stats[ST_EXIT_NMI]++;
		return 1;
	case SVM_EXIT_CPUID:
		v->stats[ST_EXIT_CPUID]++;
		do_cpuid(s, v);
		return 1;
	case SVM_EXIT_HLT:
		v->stats[ST_EXIT_HLT]++;
		*ex = (struct vexit){ .reason = VEXIT_HLT };
		v->next_rip = next_rip(s, v, 1);
		v->pend = PEND_HLT;
		return 0;
	case SVM_EXIT_VINTR:
		/* the window asked for is open: the next entry injects */
		v->stats[ST_EXIT_VINTR]++;
		return 1;
	case SVM_EXIT_IOIO:
		v->stats[ST_EXIT_IOIO]++;
		return do_ioio(s, v, ex);
	case SVM_EXIT_MSR:
		v->stats[ST_EXIT_MSR]++;
		return do_msr(s, v, ex);
	case SVM_EXIT_SHUTDOWN:
		v->stats[ST_EXIT_SHUTDOWN]++;
		v->dead = true; /* the VMCB's state is undefined after a shutdown */
		*ex = (struct vexit){ .reason = VEXIT_SHUTDOWN, .hw_reason = code };
		return 0;
	case SVM_EXIT_NPF:
		v->stats[ST_EXIT_NPF]++;
		return do_npf(s, v, ex);
	case SVM_EXIT_VMRUN: case SVM_EXIT_VMMCALL: case SVM_EXIT_VMLOAD: case SVM_EXIT_VMSAVE:
	case SVM_EXIT_STGI: case SVM_EXIT_CLGI: case SVM_EXIT_SKINIT: case SVM_EXIT_INVLPGA:
	case SVM_EXIT_MONITOR: case SVM_EXIT_MWAIT: case SVM_EXIT_MWAIT_C:
		/* no nested virtualization, no MONITOR/MWAIT (CPUID says so) */
		v->stats[ST_EXIT_SVM_INSN]++;
		svm_inject(v, EXC_UD, false, 0);
		return 1;
	case SVM_EXIT_INVD:
		v->stats[ST_EXIT_OTHER]++;
		set_rip(v, next_rip(s, v, 2)); /* dropping the caches would lose the host's writes */
		return 1;
	case SVM_EXIT_INVALID:
		v->stats[ST_EXIT_INVALID]++;
		v->dead = true; /* the save area now holds the host's state (METAL-LAB §4) */
		metal_log("vCPU %u: VMRUN refused the VMCB (VMEXIT_INVALID: a consistency check failed)", v->id);
		*ex = (struct vexit){ .reason = VEXIT_FAIL_ENTRY, .hw_reason = code };
		return 0;
	default:
		v->stats[ST_EXIT_OTHER]++;
		v->dead = true;
		metal_log("vCPU %u: unexpected #VMEXIT %#llx (info1 %#llx info2 %#llx)", v->id, (unsigned long long)code,
			  (unsigned long long)vmcb_r64(c, VMCB_EXITINFO1), (unsigned long long)vmcb_r64(c, VMCB_EXITINFO2));
		*ex = (struct vexit){ .reason = VEXIT_UNKNOWN, .hw_reason = code };
		return 0;
	}
}

/* HLT: the vCPU sleeps until it has an interrupt to take (with IF clear,
 * never: the "hang" the core's stop or the platform's tick ends). Spins
 * while a guest timer is due within 2 ms — the host's tick (1 kHz) is too
 * coarse to wake it on time — and otherwise sleeps in the host's HLT
 * until that tick. 0 woken; -1 kicked. */
static int svm_halt_wait(struct svm *s, struct svm_vcpu *v)
{
	while (!svm_irq_ready(s, v)) {
		if (v->kick)
			return -1;
		if (s->host_irqs && svm_irq_next_ns(s, v) > metal_now_ns() + 2000000ull)
			__asm__ volatile("sti; hlt; cli" ::: "memory");
		else
			__asm__ volatile("pause");
	}
	v->halted = false;
	return 0;
}

/* Wait-for-SIPI (an AP before the guest starts it, any vCPU after INIT):
 * a SIPI with vector V starts it in real mode at V:0000, i.e. V << 12.
 * 0 started; -1 kicked first. */
static int svm_sipi_wait(struct svm_vcpu *v)
{
	int st;
	while (((st = __atomic_load_n(&v->sipi_state, __ATOMIC_ACQUIRE)) & 0xff) != SIPI_GOT) {
		if (v->kick)
			return -1;
		__asm__ volatile("pause");
	}
	__atomic_store_n(&v->sipi_state, SIPI_RUNNING, __ATOMIC_RELEASE);
	__atomic_store_n(&v->init_req, 0, __ATOMIC_RELAXED); /* the INIT before this SIPI is done */
	unsigned vec = (unsigned)st >> 8 & 0xff;
	struct vcpu_state s;
	svm_reset_state(&s, v->apic_base);
	s.cs.selector = (uint16_t)(vec << 8);
	s.cs.base = (uint64_t)vec << 12;
	s.rip = 0;
	s.rdx = 0;
	svm_state_set(v, &s);
	vmcb_w64(v->vmcb, VMCB_EVENTINJ, 0);
	return 0;
}

int svm_run(void *hv, unsigned cpu, struct vexit *ex)
{
	struct svm *s = hv;
	if (cpu >= s->ncpus)
		return -EINVAL;
	struct svm_vcpu *v = &s->vcpus[cpu];
	memset(ex, 0, sizeof(*ex));
	if (v->dead) {
		metal_log("vCPU %u: cannot run again (its VMCB is void)", cpu);
		return -EIO;
	}
	if (__atomic_exchange_n(&v->init_req, 0, __ATOMIC_ACQUIRE)) {
		/* INIT: whatever it was doing, it now waits for a SIPI */
		v->has_state = false;
		v->pend = PEND_NONE;
		v->halted = false;
	}
	if ((!v->has_state || __atomic_load_n(&v->sipi_state, __ATOMIC_ACQUIRE) != SIPI_RUNNING) &&
	    svm_sipi_wait(v) < 0) {
		v->kick = 0;
		ex->reason = VEXIT_INTR;
		return 0;
	}
	if (v->pend == PEND_HLT)
		v->halted = true;
	complete(v);
	if (v->halted && svm_halt_wait(s, v) < 0) {
		v->kick = 0;
		ex->reason = VEXIT_INTR; /* still halted: the wait goes on at the next run */
		return 0;
	}
	uint8_t *c = v->vmcb;
	if (!v->host_pa)
		v->host_pa = svm_host_save_pa(); /* a vCPU stays on its host CPU */
	uint64_t host = v->host_pa;
	for (;;) {
		if (v->kick) {
			v->kick = 0;
			ex->reason = VEXIT_INTR;
			return 0;
		}
		svm_irq_inject(s, v);
		vmcb_w64(c, VMCB_RAX, v->gpr[GPR_RAX]);
		vmcb_w64(c, VMCB_RSP, v->gpr[GPR_RSP]);
		c[VMCB_TLB_CONTROL] = v->flush_tlb ? 1 : 0;
		v->flush_tlb = false;
		vmcb_w32(c, VMCB_CLEAN, 0); /* everything reloaded: nothing is cached as clean */
		svm_vmrun((uint64_t)(uintptr_t)c, v->gpr, host, s->host_irqs);
		v->gpr[GPR_RAX] = vmcb_r64(c, VMCB_RAX);
		v->gpr[GPR_RSP] = vmcb_r64(c, VMCB_RSP);
		if (!handle_exit(s, v, ex))
			return 0;
	}
}
