/* svm — the backend's set-up and its struct hv_ops (svm.h): the VM's
 * permission maps and nested tables, a VMCB per vCPU, the boot state, and
 * the operations the core calls between guest entries. The entry itself
 * and the exits are svm_exit.c's. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "arch/x86/cpu_state.h"
#include "core/vm.h"
#include "metal/metal.h"
#include "svm/svm_int.h"
#include "svm/vmcb.h"

#define IOPM_BYTES (12 * 1024)

/* The platform's long-mode IDT of all 256 gates (metal_idt_init; what a
 * loader leaves — the real-mode IVT, base 0 — does not count): only then
 * may the guest run with host IF=1, an INTR exit then followed by `sti`
 * so the host's handler takes the interrupt. */
static bool host_has_idt(void)
{
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} idtr;
	__asm__ volatile("sidt %0" : "=m"(idtr));
	return idtr.base != 0 && idtr.limit == 256 * 16 - 1;
}

struct svm *svm_create(struct vm *vm, unsigned ncpus, char *err, size_t errlen)
{
	if (ncpus == 0 || ncpus != vm->ncpus) {
		snprintf(err, errlen, "svm_create: %u vCPUs for a VM of %u", ncpus, vm->ncpus);
		return NULL;
	}
	struct svm *s = metal_alloc_pages(sizeof(*s), 64);
	struct svm_vcpu *vc = metal_alloc_pages(ncpus * sizeof(*vc), 64);
	uint8_t *iopm = metal_alloc_pages(IOPM_BYTES, 4096);
	if (!s || !vc || !iopm) {
		snprintf(err, errlen, "no memory for the SVM backend");
		return NULL;
	}
	s->vm = vm;
	s->ncpus = ncpus;
	s->vcpus = vc;
	s->iopm = iopm;
	memset(iopm, 0xff, IOPM_BYTES); /* every port exits: devices are vigil's */
	uint32_t r[4];
	host_cpuid(0x8000000a, 0, r);
	s->asids = r[1];
	s->nrips = r[3] & (1u << 3);
	s->host_irqs = host_has_idt();
	if (svm_npt_build(s, err, errlen) < 0 || svm_msr_init(s, err, errlen) < 0)
		return NULL;
	for (unsigned i = 0; i < ncpus; i++) {
		struct svm_vcpu *v = &vc[i];
		v->id = i;
		v->vmcb = metal_alloc_pages(4096, 4096);
		if (!v->vmcb) {
			snprintf(err, errlen, "no memory for vCPU %u's VMCB", i);
			return NULL;
		}
		if (svm_cpuid_init(s, v, err, errlen) < 0)
			return NULL;
		svm_vmcb_init(s, v);
		v->apic_base = 0xfee00800ull | (i == 0 ? 0x100 : 0);
		v->mtrr_def = 0xc06; /* MTRRs and fixed ranges on, default write-back */
		v->sipi_state = i ? SIPI_WAIT : SIPI_RUNNING; /* APs wait for the guest's SIPI */
	}
	if (svm_irq_init(s, err, errlen) < 0)
		return NULL;
	metal_log("SVM: %u vCPU(s), nested paging, %u ASIDs, %s, host interrupts %s", ncpus, s->asids,
		  s->nrips ? "next-RIP saved" : "no next-RIP (instruction lengths by decoding)",
		  s->host_irqs ? "on" : "off (no host IDT)");
	return s;
}

int svm_set_boot_state(struct svm *s, unsigned cpu, const struct x86_boot_cpu *b)
{
	if (cpu >= s->ncpus)
		return -EINVAL;
	struct svm_vcpu *v = &s->vcpus[cpu];
	struct vcpu_state st;
	svm_reset_state(&st, v->apic_base);
	cpu_state_boot(&st, b);
	svm_state_set(v, &st);
	return 0;
}

void svm_break_vmcb(struct svm *s, unsigned cpu)
{
	if (cpu < s->ncpus)
		vmcb_w64(s->vcpus[cpu].vmcb, VMCB_EFER, vmcb_r64(s->vcpus[cpu].vmcb, VMCB_EFER) & ~EFER_SVME);
}

static void hv_kick(void *hv, unsigned cpu)
{
	struct svm *s = hv;
	if (cpu < s->ncpus)
		s->vcpus[cpu].kick = 1;
}

static int hv_get_state(void *hv, unsigned cpu, struct vcpu_state *st)
{
	struct svm *s = hv;
	if (cpu >= s->ncpus)
		return -EINVAL;
	svm_state_get(&s->vcpus[cpu], st);
	return 0;
}

static int hv_set_state(void *hv, unsigned cpu, const struct vcpu_state *st)
{
	struct svm *s = hv;
	if (cpu >= s->ncpus)
		return -EINVAL;
	svm_state_set(&s->vcpus[cpu], st);
	return 0;
}

static int hv_msr(void *hv, unsigned cpu, uint32_t index, uint64_t *value, bool write)
{
	struct svm *s = hv;
	if (cpu >= s->ncpus)
		return -EINVAL;
	return svm_msr_emulate(s, &s->vcpus[cpu], index, value, write) < 0 ? -EINVAL : 0;
}

static void hv_report_crash(void *hv, unsigned cpu, const struct vexit *ex)
{
	struct svm *s = hv;
	if (cpu >= s->ncpus)
		return;
	struct svm_vcpu *v = &s->vcpus[cpu];
	const uint8_t *c = v->vmcb;
	const uint64_t *g = v->gpr;
	metal_log("vCPU %u: %s (reason %#llx) at rip %#llx, exit code %#llx info1 %#llx info2 %#llx", cpu,
		  vexit_reason_name(ex->reason), (unsigned long long)ex->hw_reason,
		  (unsigned long long)vmcb_r64(c, VMCB_RIP), (unsigned long long)vmcb_r64(c, VMCB_EXITCODE),
		  (unsigned long long)vmcb_r64(c, VMCB_EXITINFO1), (unsigned long long)vmcb_r64(c, VMCB_EXITINFO2));
	metal_log("  rax %016llx rbx %016llx rcx %016llx rdx %016llx", (unsigned long long)g[GPR_RAX],
		  (unsigned long long)g[GPR_RBX], (unsigned long long)g[GPR_RCX], (unsigned long long)g[GPR_RDX]);
	metal_log("  rsi %016llx rdi %016llx rsp %016llx rbp %016llx", (unsigned long long)g[GPR_RSI],
		  (unsigned long long)g[GPR_RDI], (unsigned long long)g[GPR_RSP], (unsigned long long)g[GPR_RBP]);
	metal_log("  cr0 %llx cr3 %llx cr4 %llx efer %llx rflags %llx cs %04x", (unsigned long long)vmcb_r64(c, VMCB_CR0),
		  (unsigned long long)vmcb_r64(c, VMCB_CR3), (unsigned long long)vmcb_r64(c, VMCB_CR4),
		  (unsigned long long)vmcb_r64(c, VMCB_EFER), (unsigned long long)vmcb_r64(c, VMCB_RFLAGS),
		  *(const uint16_t *)(c + VMCB_CS));
}

static const char *const stat_names[ST__COUNT] = {
	[ST_EXITS] = "exits",                  [ST_EXIT_INTR] = "exits_intr",         [ST_EXIT_NMI] = "exits_nmi",
	[ST_EXIT_CPUID] = "exits_cpuid",       [ST_EXIT_HLT] = "exits_hlt",
	[ST_EXIT_IOIO] = "exits_ioio",         [ST_EXIT_MSR] = "exits_msr",
	[ST_EXIT_SHUTDOWN] = "exits_shutdown", [ST_EXIT_NPF] = "exits_npf",
	[ST_EXIT_SVM_INSN] = "exits_svm_insn", [ST_EXIT_INVALID] = "exits_invalid",
	[ST_EXIT_OTHER] = "exits_other",       [ST_MSR_EMULATED] = "msr_emulated",
	[ST_MSR_UNKNOWN] = "msr_unknown_gp",   [ST_IO_STRING] = "io_string",
	[ST_INJECT_GP] = "inject_gp",          [ST_INJECT_UD] = "inject_ud",
	[ST_INJECT_PF] = "inject_pf",
	[ST_EXIT_VINTR] = "exits_vintr",       [ST_IRQ_INJECTED] = "irq_injected",
	[ST_IRQCHIP_ACCESS] = "irqchip_accesses",
};

/* The VM's own (cpu -1): what is not per vCPU — the nested tables' size
 * and the policy's MSR ranges; per vCPU: its exits and what it did with
 * them. (KVM's VM statistics hold no exits either, so a report's total
 * counts each exit once.) */
static int hv_stats(void *hv, int cpu, hv_stat_fn fn, void *ctx, const char **why)
{
	struct svm *s = hv;
	(void)why;
	if (cpu < 0) {
		fn(ctx, "npt_table_pages", s->npt_pages, false);
		fn(ctx, "msr_policy_ranges", s->nmsr_traps, false);
		return 0;
	}
	if ((unsigned)cpu >= s->ncpus)
		return -EINVAL;
	for (unsigned k = 0; k < ST__COUNT; k++)
		fn(ctx, stat_names[k], s->vcpus[cpu].stats[k], true);
	return 0;
}

struct hv_ops svm_hv_ops(struct svm *s)
{
	return (struct hv_ops){ .name = "svm", .run = svm_run, .kick = hv_kick, .report_crash = hv_report_crash,
				.get_state = hv_get_state, .set_state = hv_set_state, .msr = hv_msr,
				.stats = hv_stats, .hv = s };
}
