/* The vCPU side of the KVM backend: creation, the boot state, one KVM_RUN
 * per call from the core's vCPU loop (core/vcpu.c), kicks, and the
 * translation of each KVM exit into a `struct vexit` for exit_dispatch(). */
#include <cpuid.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "arch/x86/cpu_state.h"
#include "arch/x86/cpuid.h"
#include "core/exit.h"
#include "kvm/kvm.h"
#include "kvm/kvm_exit.h"
#include "kvm/kvm_internal.h"

#define SIG_KICK SIGUSR1
#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

_Static_assert(sizeof(struct cpuid_leaf) == sizeof(struct kvm_cpuid_entry2), "cpuid layout");

/* The host CPU's brand string (CPUID 0x80000002-4 run here), for a KVM
 * whose supported table leaves it zero; "" when the host has none. */
static void host_brand(char out[49])
{
	unsigned r[12] = { 0 }, max = __get_cpuid_max(0x80000000, NULL);
	memset(out, 0, 49);
	if (max < 0x80000004)
		return;
	for (unsigned k = 0; k < 3; k++)
		__cpuid(0x80000002 + k, r[4 * k], r[4 * k + 1], r[4 * k + 2], r[4 * k + 3]);
	memcpy(out, r, 48);
	/* Intel pads on the left; the guest sees the name as the host has it
	 * minus that padding. */
	size_t lead = strspn(out, " ");
	memmove(out, out + lead, 49 - lead);
}

/* KVM's supported table, shaped for this vCPU (topology, APIC IDs), then
 * the policy's cpuid rules, which have the last word. */
static int vcpu_cpuid(struct kvm_backend *kb, struct kvm_vcpu *v, const struct policy *p)
{
	size_t n = kb->cpuid->nent, cap = n + (p ? cpuid_policy_extra(p) : 0);
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + cap * sizeof(c->entries[0]));
	if (!c)
		return -ENOMEM;
	memcpy(c, kb->cpuid, sizeof(*c) + n * sizeof(c->entries[0]));
	cpuid_fixup((struct cpuid_leaf *)c->entries, (unsigned)n, v->id, kb->vm->ncpus);
	char brand[49];
	host_brand(brand);
	cpuid_set_brand((struct cpuid_leaf *)c->entries, (unsigned)n, brand);
	/* KVM leaves the TSC-deadline bit out of its supported set even when
	 * the in-kernel LAPIC has the timer; without it Linux calibrates the
	 * LAPIC timer against the PIT, which is fragile under nesting. */
	if (ioctl(kb->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
		for (size_t i = 0; i < n; i++)
			if (c->entries[i].function == 1)
				c->entries[i].ecx |= 1u << 24;
	if (p)
		c->nent = cpuid_apply_policy((struct cpuid_leaf *)c->entries, (unsigned)n, (unsigned)cap, p);
	kvm_msr_guest_init(&v->msrg, (const struct cpuid_leaf *)c->entries, c->nent);
	struct kvm_device_attr tsc = { .group = KVM_VCPU_TSC_CTRL, .attr = KVM_VCPU_TSC_OFFSET };
	v->tsc_offset = ioctl(v->fd, KVM_HAS_DEVICE_ATTR, &tsc) == 0;
	int r = ioctl(v->fd, KVM_SET_CPUID2, c);
	free(c);
	return r;
}

/* PC wiring of the local APIC: LINT0 takes the 8259's ExtINT, LINT1 NMI. */
static int vcpu_lapic(struct kvm_vcpu *v)
{
	struct kvm_lapic_state s;
	if (ioctl(v->fd, KVM_GET_LAPIC, &s) < 0)
		return -1;
	uint32_t lint0, lint1;
	memcpy(&lint0, &s.regs[APIC_LVT_LINT0], 4);
	memcpy(&lint1, &s.regs[APIC_LVT_LINT1], 4);
	lint0 = (lint0 & ~0x700u) | (APIC_MODE_EXTINT << 8);
	lint1 = (lint1 & ~0x700u) | (APIC_MODE_NMI << 8);
	memcpy(&s.regs[APIC_LVT_LINT0], &lint0, 4);
	memcpy(&s.regs[APIC_LVT_LINT1], &lint1, 4);
	return ioctl(v->fd, KVM_SET_LAPIC, &s);
}

static void seg_to_kvm(struct kvm_segment *k, const struct x86_seg *s)
{
	*k = (struct kvm_segment){
		.base = s->base, .limit = s->limit, .selector = s->selector, .type = s->type,
		.present = s->present, .dpl = s->dpl, .db = s->db, .s = s->s, .l = s->l, .g = s->g,
		.unusable = !s->present,
	};
}

static void seg_from_kvm(struct x86_seg *s, const struct kvm_segment *k)
{
	*s = (struct x86_seg){
		.base = k->base, .limit = k->limit, .selector = k->selector, .type = k->type,
		.present = k->present, .dpl = k->dpl, .db = k->db, .s = k->s, .l = k->l, .g = k->g,
	};
}

static int vcpu_boot_state(struct kvm_backend *kb, unsigned cpu, const struct x86_boot_cpu *b);

/* KVM serves its paravirtual MSRs and hypercalls whatever CPUID says unless
 * told to enforce it: the guest gets only the features its CPUID names (a
 * wall-clock redirect hides kvmclock there, and the kvmclock MSRs, which
 * carry the host's date, must then fault). Older kernels: not enforced. */
static int vcpu_enforce_pv(struct kvm_backend *kb, struct kvm_vcpu *v)
{
	if (ioctl(kb->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_ENFORCE_PV_FEATURE_CPUID) <= 0)
		return 0;
	struct kvm_enable_cap cap = { .cap = KVM_CAP_ENFORCE_PV_FEATURE_CPUID, .args = { 1 } };
	return ioctl(v->fd, KVM_ENABLE_CAP, &cap);
}

int kvm_vcpus_create(struct kvm_backend *kb, const struct x86_boot_cpu *boot, const struct policy *p, char *err,
		     size_t errlen)
{
	kb->vcpus_made = true;
	for (unsigned i = 0; i < kb->vm->ncpus; i++) {
		struct kvm_vcpu *v = &kb->vcpus[i];
		v->kb = kb;
		v->id = i;
		v->fd = ioctl(kb->vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
		if (v->fd < 0) {
			snprintf(err, errlen, "KVM_CREATE_VCPU %u: %s", i, strerror(errno));
			return -1;
		}
		v->run = mmap(NULL, kb->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
		if (v->run == MAP_FAILED) {
			v->run = NULL;
			snprintf(err, errlen, "mmap of vCPU %u run area: %s", i, strerror(errno));
			return -1;
		}
		if (vcpu_cpuid(kb, v, p) < 0 || vcpu_lapic(v) < 0) {
			snprintf(err, errlen, "vCPU %u setup (CPUID/LAPIC): %s", i, strerror(errno));
			return -1;
		}
		if (vcpu_enforce_pv(kb, v) < 0) {
			snprintf(err, errlen, "vCPU %u: KVM_CAP_ENFORCE_PV_FEATURE_CPUID: %s", i, strerror(errno));
			return -1;
		}
		if (!kb->stats_why && kvm_stats_open(&v->stats, v->fd) < 0)
			kb->stats_why = "KVM_GET_STATS_FD failed on a vCPU";
		/* Application processors stay in wait-for-SIPI until the guest
		 * starts them; only the boot processor gets a boot state. */
		int r;
		if (i == 0 && (r = vcpu_boot_state(kb, i, boot)) < 0) {
			snprintf(err, errlen, "boot vCPU registers: %s", strerror(-r));
			return -1;
		}
	}
	return 0;
}

static struct kvm_vcpu *vcpu_of(void *hv, unsigned cpu)
{
	struct kvm_backend *kb = hv;
	return &kb->vcpus[cpu];
}

static void hv_report_crash(void *hv, unsigned cpu, const struct vexit *ex)
{
	struct kvm_vcpu *v = vcpu_of(hv, cpu);
	struct kvm_regs r;
	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0)
		memset(&r, 0, sizeof(r));
	fprintf(stderr, "vigil: vCPU %u: %s (reason 0x%llx) at rip 0x%llx\n", v->id,
		vexit_reason_name(ex->reason), (unsigned long long)ex->hw_reason,
		(unsigned long long)r.rip);
}

static void on_kick(int sig)
{
	(void)sig; /* only here to make KVM_RUN return EINTR */
}

static void hv_bind(void *hv, unsigned cpu)
{
	struct kvm_vcpu *v = vcpu_of(hv, cpu);
	v->thread = pthread_self();
	atomic_store(&v->bound, true);
}

/* KVM_RUN by the system-call instruction itself: libc's ioctl() is a
 * variadic wrapper that spills its argument registers and goes through
 * errno (thread-local) for the answer, on every exit. The same system
 * call, so the seccomp filter sees nothing new. -errno or >= 0. */
static inline long kvm_run_syscall(int fd)
{
#if defined(__x86_64__)
	long r;
	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "0"((long)SYS_ioctl), "D"((long)fd), "S"((long)KVM_RUN), "d"(0L)
			 : "rcx", "r11", "memory");
	return r;
#else
	return ioctl(fd, KVM_RUN, 0) < 0 ? -errno : 0;
#endif
}

/* KVM_RUN failed (err is its errno): a kick is an exit of its own. */
static __attribute__((noinline, cold)) int run_failed(struct kvm_vcpu *v, int err, struct vexit *ex)
{
	if (err == EINTR || err == EAGAIN) {
		/* Shared with hv_kick on another thread (and with KVM): an
		 * atomic byte store, so neither tears nor races. */
		__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_RELAXED);
		memset(ex, 0, sizeof(*ex));
		ex->reason = VEXIT_INTR;
		return 0;
	}
	fprintf(stderr, "vigil: vCPU %u: KVM_RUN: %s\n", v->id, strerror(err));
	return -err;
}

static int hv_run(void *hv, unsigned cpu, struct vexit *ex)
{
	struct kvm_backend *kb = hv;
	struct kvm_vcpu *v = &kb->vcpus[cpu];

	long r = kvm_run_syscall(v->fd);
	if (__builtin_expect(r < 0, 0))
		return run_failed(v, (int)-r, ex);
	kvm_translate_exit_inline(v->run, kb->run_size, ex);
	return 0;
}

/* immediate_exit covers a vCPU about to enter KVM_RUN; the signal covers one
 * already inside it. */
static void hv_kick(void *hv, unsigned cpu)
{
	struct kvm_vcpu *v = vcpu_of(hv, cpu);
	if (v->run)
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELAXED);
	if (atomic_load(&v->bound))
		pthread_kill(v->thread, SIG_KICK);
}

/* Tells the guest (through kvmclock) that the host held this vCPU, so its
 * soft-lockup watchdog does not fire after a pause. EINVAL when the guest
 * has not set kvmclock up: nothing to tell then. */
static void hv_paused(void *hv, unsigned cpu)
{
	struct kvm_vcpu *v = vcpu_of(hv, cpu);
	ioctl(v->fd, KVM_KVMCLOCK_CTRL, 0);
}

static int hv_get_state(void *hv, unsigned cpu, struct vcpu_state *st)
{
	struct kvm_vcpu *v = vcpu_of(hv, cpu);
	struct kvm_regs r;
	struct kvm_sregs sr;

	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	*st = (struct vcpu_state){
		.rax = r.rax, .rbx = r.rbx, .rcx = r.rcx, .rdx = r.rdx, .rsi = r.rsi, .rdi = r.rdi,
		.rsp = r.rsp, .rbp = r.rbp, .r8 = r.r8, .r9 = r.r9, .r10 = r.r10, .r11 = r.r11,
		.r12 = r.r12, .r13 = r.r13, .r14 = r.r14, .r15 = r.r15, .rip = r.rip, .rflags = r.rflags,
		.gdt_base = sr.gdt.base, .gdt_limit = sr.gdt.limit, .idt_base = sr.idt.base,
		.idt_limit = sr.idt.limit, .cr0 = sr.cr0, .cr2 = sr.cr2, .cr3 = sr.cr3, .cr4 = sr.cr4,
		.cr8 = sr.cr8, .efer = sr.efer, .apic_base = sr.apic_base,
	};
	seg_from_kvm(&st->cs, &sr.cs);
	seg_from_kvm(&st->ds, &sr.ds);
	seg_from_kvm(&st->es, &sr.es);
	seg_from_kvm(&st->fs, &sr.fs);
	seg_from_kvm(&st->gs, &sr.gs);
	seg_from_kvm(&st->ss, &sr.ss);
	seg_from_kvm(&st->tr, &sr.tr);
	seg_from_kvm(&st->ldt, &sr.ldt);
	return 0;
}

/* SREGS is read first, so what vcpu_state does not hold (the pending
 * interrupt bitmap) stays as it was. */
static int hv_set_state(void *hv, unsigned cpu, const struct vcpu_state *st)
{
	struct kvm_vcpu *v = vcpu_of(hv, cpu);
	struct kvm_sregs sr;

	if (ioctl(v->fd, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	seg_to_kvm(&sr.cs, &st->cs);
	seg_to_kvm(&sr.ds, &st->ds);
	seg_to_kvm(&sr.es, &st->es);
	seg_to_kvm(&sr.fs, &st->fs);
	seg_to_kvm(&sr.gs, &st->gs);
	seg_to_kvm(&sr.ss, &st->ss);
	seg_to_kvm(&sr.tr, &st->tr);
	seg_to_kvm(&sr.ldt, &st->ldt);
	sr.gdt.base = st->gdt_base;
	sr.gdt.limit = st->gdt_limit;
	sr.idt.base = st->idt_base;
	sr.idt.limit = st->idt_limit;
	sr.cr0 = st->cr0;
	sr.cr2 = st->cr2;
	sr.cr3 = st->cr3;
	sr.cr4 = st->cr4;
	sr.cr8 = st->cr8;
	sr.efer = st->efer;
	sr.apic_base = st->apic_base;
	struct kvm_regs r = {
		.rax = st->rax, .rbx = st->rbx, .rcx = st->rcx, .rdx = st->rdx, .rsi = st->rsi, .rdi = st->rdi,
		.rsp = st->rsp, .rbp = st->rbp, .r8 = st->r8, .r9 = st->r9, .r10 = st->r10, .r11 = st->r11,
		.r12 = st->r12, .r13 = st->r13, .r14 = st->r14, .r15 = st->r15, .rip = st->rip,
		.rflags = st->rflags,
	};
	if (ioctl(v->fd, KVM_SET_SREGS, &sr) < 0 || ioctl(v->fd, KVM_SET_REGS, &r) < 0)
		return -errno;
	return 0;
}

static uint32_t debug_control(struct kvm_backend *kb, const struct vcpu_debug *d)
{
	uint32_t c = 0;
	if (d->single_step)
		c |= KVM_GUESTDBG_SINGLESTEP;
	if (d->sw_bp)
		c |= KVM_GUESTDBG_USE_SW_BP;
	if (d->hw_bp)
		c |= KVM_GUESTDBG_USE_HW_BP;
	if (!c)
		return 0;
	/* A step that lands in an interrupt handler is not what the user
	 * asked to see: interrupts wait while stepping, where KVM can. */
	int extra = kb->guest_debug2;
	if (d->single_step && extra > 0 && (extra & KVM_GUESTDBG_BLOCKIRQ))
		c |= KVM_GUESTDBG_BLOCKIRQ;
	return c | KVM_GUESTDBG_ENABLE;
}

static int hv_set_debug(void *hv, unsigned cpu, const struct vcpu_debug *d)
{
	struct kvm_vcpu *v = vcpu_of(hv, cpu);
	struct kvm_guest_debug g = { .control = debug_control(v->kb, d) };
	for (int i = 0; i < 4; i++)
		g.arch.debugreg[i] = d->hw_bp ? d->dr[i] : 0;
	g.arch.debugreg[7] = d->hw_bp ? d->dr7 : 0;
	if (ioctl(v->fd, KVM_SET_GUEST_DEBUG, &g) < 0)
		return -errno;
	v->debug = g;
	return 0;
}

/* KVM queues the #BP as the soft exception the INT3 raised (RIP past it). */
static int hv_reinject_bp(void *hv, unsigned cpu)
{
	struct kvm_vcpu *v = vcpu_of(hv, cpu);
	struct kvm_guest_debug g = v->debug;
	g.control |= KVM_GUESTDBG_INJECT_BP;
	return ioctl(v->fd, KVM_SET_GUEST_DEBUG, &g) < 0 ? -errno : 0;
}

/* The boot vCPU's entry state, through the same conversion the API's
 * register writes use, then a clean FPU. */
static int vcpu_boot_state(struct kvm_backend *kb, unsigned cpu, const struct x86_boot_cpu *b)
{
	struct vcpu_state st;
	int r = hv_get_state(kb, cpu, &st);
	if (r < 0)
		return r;
	cpu_state_boot(&st, b);
	if ((r = hv_set_state(kb, cpu, &st)) < 0)
		return r;
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	return ioctl(kb->vcpus[cpu].fd, KVM_SET_FPU, &fpu) < 0 ? -errno : 0;
}

/* One MSR through KVM_GET/SET_MSRS, which return how many MSRs they did:
 * 0 means KVM refused it. */
static int msr_io(struct kvm_vcpu *v, uint32_t index, uint64_t *value, bool write)
{
	_Alignas(8) uint8_t buf[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)] = { 0 };
	struct kvm_msrs *m = (struct kvm_msrs *)buf;
	m->nmsrs = 1;
	m->entries[0].index = index;
	m->entries[0].data = write ? *value : 0;
	int r = ioctl(v->fd, write ? KVM_SET_MSRS : KVM_GET_MSRS, m);
	if (r < 0)
		return -errno;
	if (r != 1)
		return -EIO;
	if (!write)
		*value = m->entries[0].data;
	return 0;
}

/* A guest's TSC or TSC_ADJUST write (MSRG_TSC): KVM's guest path moves
 * the TSC offset by the change and keeps TSC_ADJUST in step; its host path
 * would only store. So the offset is moved here (KVM_VCPU_TSC_OFFSET, Linux
 * 5.16), then TSC_ADJUST stored. Where the attribute is missing the write
 * is stored as the host path stores it. */
static int tsc_write(struct kvm_vcpu *v, uint32_t index, uint64_t value)
{
	uint64_t cur, adjust, offset;
	struct kvm_device_attr a = { .group = KVM_VCPU_TSC_CTRL, .attr = KVM_VCPU_TSC_OFFSET,
				     .addr = (uintptr_t)&offset };

	if (!v->tsc_offset)
		return msr_io(v, index, &value, true);
	if (msr_io(v, index, &cur, false) < 0 || msr_io(v, MSRG_MSR_TSC_ADJUST, &adjust, false) < 0 ||
	    ioctl(v->fd, KVM_GET_DEVICE_ATTR, &a) < 0)
		return -EIO;
	uint64_t delta = value - cur; /* modulo 2^64, as the offset is */
	offset += delta;
	adjust += delta;
	if (ioctl(v->fd, KVM_SET_DEVICE_ATTR, &a) < 0)
		return -EIO;
	return msr_io(v, MSRG_MSR_TSC_ADJUST, &adjust, true);
}

/* An MSR the policy provides: the access KVM would have made for the
 * guest, through KVM's host path once the checks that path skips have
 * passed (kvm_msr_guest.h). Any error is the guest's #GP. */
static int hv_msr(void *hv, unsigned cpu, uint32_t index, uint64_t *value, bool write)
{
	struct kvm_vcpu *v = vcpu_of(hv, cpu);
	struct kvm_msr_state s = { 0 };
	unsigned need = kvm_msr_guest_needs(index, write);
	if ((need & MSRG_NEED_CUR && msr_io(v, index, &s.cur, false) < 0) ||
	    (need & MSRG_NEED_HWCR && msr_io(v, 0xc0010015, &s.hwcr, false) < 0) ||
	    (need & MSRG_NEED_MCG_CAP && msr_io(v, 0x179, &s.mcg_cap, false) < 0))
		return -EIO;
	if (need & MSRG_NEED_CR0) {
		struct kvm_sregs sr;
		if (ioctl(v->fd, KVM_GET_SREGS, &sr) < 0)
			return -errno;
		s.cr0 = sr.cr0;
	}
	switch (kvm_msr_guest_check(&v->msrg, index, write, value, &s)) {
	case MSRG_GP: return -EPERM;
	case MSRG_DROP: return 0;
	case MSRG_TSC: return tsc_write(v, index, *value);
	case MSRG_HOST: break;
	}
	return msr_io(v, index, value, write);
}

static int hv_stats(void *hv, int cpu, hv_stat_fn fn, void *ctx, const char **why)
{
	struct kvm_backend *kb = hv;
	if (kb->stats_why) {
		*why = kb->stats_why;
		return -ENOTSUP;
	}
	if (cpu >= 0 && (unsigned)cpu >= kb->vm->ncpus)
		return -EINVAL;
	return kvm_stats_read(cpu < 0 ? &kb->stats : &kb->vcpus[cpu].stats, fn, ctx);
}

struct hv_ops kvm_hv_ops(struct kvm_backend *kb)
{
	struct sigaction sa = { .sa_handler = on_kick };
	sigemptyset(&sa.sa_mask);
	sigaction(SIG_KICK, &sa, NULL);
	return (struct hv_ops){ .name = "kvm", .bind = hv_bind, .run = hv_run, .kick = hv_kick,
				.paused = hv_paused, .report_crash = hv_report_crash, .get_state = hv_get_state,
				.set_state = hv_set_state, .msr = hv_msr, .stats = hv_stats, .set_debug = hv_set_debug,
				.reinject_bp = hv_reinject_bp, .hv = kb };
}

int kvm_translate(struct kvm_backend *kb, unsigned cpu, uint64_t gva, uint64_t *gpa, bool *valid)
{
	struct kvm_translation t = { .linear_address = gva };
	if (ioctl(vcpu_of(kb, cpu)->fd, KVM_TRANSLATE, &t) < 0)
		return -errno;
	*gpa = t.physical_address;
	*valid = t.valid;
	return 0;
}
