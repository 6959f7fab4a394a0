/* svm_irq — the guest's interrupt controllers under SVM: what KVM's
 * in-kernel irqchip is to the hosted build, here the portable models
 * (devices/lapic, ioapic, i8259, i8254), served in the backend, and their
 * delivery: before each VMRUN the highest pending vector (local APIC
 * first, then the 8259 through LINT0's virtual wire) is injected with
 * EVENTINJ when the guest can take it, or an interrupt window is asked
 * for (V_IRQ with the VINTR intercept) when it cannot. A HLT waits here
 * for the next interrupt. The platform's host tick (an INTR exit) takes
 * the CPU out of a guest that never exits, so guest timers still fire. */
#include <stdio.h>

#include "arch/x86/layout.h"
#include "core/vm.h"
#include "devices/i8254.h"
#include "devices/i8259.h"
#include "devices/ioapic.h"
#include "devices/lapic.h"
#include "metal/metal.h"
#include "svm/svm_int.h"
#include "svm/vmcb.h"

#define RFLAGS_IF (1ull << 9)

/* The models' clock is the platform's (metal_now_ns, the TSC in ns).
 * SVM_TSC, the raw counter a TSC deadline is given in, is the unit test's
 * seam. */
#ifndef SVM_TSC
#define SVM_TSC() metal_rdtsc()
#endif

static uint64_t clock_ns(void *ctx)
{
	(void)ctx;
	return metal_now_ns();
}

static void pit_irq(void *ctx, uint32_t gsi, int level)
{
	struct svm *s = ctx;
	(void)gsi;
	i8259_set_irq(s->pic, 0, level);
	ioapic_set_irq(s->ioapic, 2, level); /* the MADT's override: IRQ 0 is GSI 2 */
}

/* An interrupt message (IOAPIC entry or MSI) to the vCPUs its destination
 * names: physical, an APIC ID or 0xFF for all; logical, a mask matched
 * against each LAPIC's LDR in its DFR's model (Linux's flat mode names
 * vCPU 1 as 0x02). Lowest priority goes to the first match only; a
 * destination that names nobody is dropped, as hardware drops it. */
static void deliver(struct svm *s, uint8_t vector, bool level, uint8_t dest, bool logical, bool lowest)
{
	for (unsigned i = 0; i < s->ncpus; i++) {
		if (!lapic_matches(s->vcpus[i].lapic, dest, logical))
			continue;
		lapic_accept(s->vcpus[i].lapic, vector, level);
		if (lowest)
			return;
	}
}

static void ioapic_deliver(void *ctx, uint8_t vector, bool level, uint8_t dest, bool logical)
{
	deliver(ctx, vector, level, dest, logical, false);
}

/* An IPI one vCPU's LAPIC sends: to every vCPU it names (the sender too,
 * unless "all excluding self"). INIT and SIPI are taken by the target's
 * own run (its VMCB is its CPU's), the next time it looks; a fixed IPI
 * waits in the target's LAPIC, taken at its next entry or HLT check (the
 * host tick bounds that at 1 ms). */
static void route_ipi(void *ctx, const struct lapic_ipi *p)
{
	struct svm *s = ctx;
	for (unsigned i = 0; i < s->ncpus; i++) {
		struct svm_vcpu *t = &s->vcpus[i];
		bool self = i == p->from;
		bool hit = p->shorthand == 2 || (p->shorthand == 3 && !self) ||
			   (p->shorthand == 0 && lapic_matches(t->lapic, p->dest, p->logical));
		if (!hit)
			continue;
		switch (p->mode) {
		case 0: case 1: /* fixed, lowest priority (to each: one target is as good) */
			lapic_accept(t->lapic, p->vector, false);
			break;
		case 5: /* INIT (a deassert does nothing): waits for a SIPI from now */
			if (p->assert && !self) {
				__atomic_store_n(&t->sipi_state, SIPI_WAIT, __ATOMIC_RELEASE);
				__atomic_store_n(&t->init_req, 1, __ATOMIC_RELEASE);
			}
			break;
		case 6: { /* start-up: only a waiting vCPU takes it (Linux sends two) */
			int want = SIPI_WAIT;
			if (!self)
				__atomic_compare_exchange_n(&t->sipi_state, &want, SIPI_GOT | p->vector << 8, false,
							    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
			break;
		}
		default: /* SMI, NMI, ExtINT by IPI: not modelled */
			break;
		}
	}
}

static void lapic_eoi(void *ctx, uint8_t vector)
{
	struct svm *s = ctx;
	ioapic_eoi(s->ioapic, vector);
}

static void line_set(void *ctx, uint32_t gsi, int level)
{
	struct svm *s = ctx;
	ioapic_set_irq(s->ioapic, gsi, level);
	if (gsi < 16)
		i8259_set_irq(s->pic, gsi, level);
}

struct irq_line svm_irq_line(struct svm *s, uint32_t gsi)
{
	return (struct irq_line){ .set = line_set, .ctx = s, .gsi = gsi };
}

void svm_msi(struct svm *s, uint64_t addr, uint32_t data)
{
	/* Address 19:12 the destination, bit 2 its mode; data 10:8 the
	 * delivery mode (fixed or lowest priority only), 15 the trigger. */
	unsigned mode = (data >> 8) & 7;
	uint8_t dest = (uint8_t)(addr >> 12);
	if ((addr >> 20) != 0xfee || (mode != 0 && mode != 1))
		return;
	deliver(s, (uint8_t)data, data & (1u << 15), dest, addr & (1u << 2), mode == 1);
}

/* The models' ports and pages are served here, in the backend, as KVM
 * serves its in-kernel irqchip's: the core never sees those accesses on
 * KVM, so here too it neither counts nor polices them, and a vCPU's LAPIC
 * page is its own (the bus could not tell vCPUs apart). true: served. */
bool svm_irq_pio(struct svm *s, uint16_t port, uint8_t *data, uint32_t len, bool write)
{
	static const struct {
		uint16_t base, len;
		void (*fn)(void *, uint64_t, uint8_t *, uint32_t, bool);
		unsigned dev; /* 0 pic, 1 pit */
	} r[] = {
		{ 0x20, 2, i8259_master_io, 0 }, { 0xa0, 2, i8259_slave_io, 0 }, { 0x4d0, 2, i8259_elcr_io, 0 },
		{ 0x40, 4, i8254_io, 1 },        { 0x61, 1, i8254_port61_io, 1 },
	};
	for (unsigned i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		if (port < r[i].base || (uint32_t)port + len > (uint32_t)r[i].base + r[i].len)
			continue;
		r[i].fn(r[i].dev ? (void *)s->pit : (void *)s->pic, port - r[i].base, data, len, write);
		return true;
	}
	return false;
}

bool svm_irq_mmio(struct svm *s, struct svm_vcpu *v, uint64_t gpa, uint8_t *data, uint32_t len, bool write)
{
	if (gpa >= LAYOUT_LAPIC && gpa + len <= LAYOUT_LAPIC + 0x1000) {
		lapic_io(v->lapic, gpa - LAYOUT_LAPIC, data, len, write);
		return true;
	}
	if (gpa >= LAYOUT_IOAPIC && gpa + len <= LAYOUT_IOAPIC + 0x1000) {
		ioapic_io(s->ioapic, gpa - LAYOUT_IOAPIC, data, len, write);
		return true;
	}
	return false;
}

int svm_irq_init(struct svm *s, char *err, size_t errlen)
{
	struct vclock clk = { .mono_ns = clock_ns };
	s->ioapic = ioapic_new(ioapic_deliver, s);
	s->pic = i8259_new();
	s->pit = i8254_new((struct irq_line){ .set = pit_irq, .ctx = s }, &clk);
	if (!s->ioapic || !s->pic || !s->pit)
		goto nomem;
	for (unsigned i = 0; i < s->ncpus; i++) {
		if (!(s->vcpus[i].lapic = lapic_new(i, &clk, lapic_eoi, s)))
			goto nomem;
		lapic_set_ipi(s->vcpus[i].lapic, route_ipi, s);
	}
	return 0;
nomem:
	snprintf(err, errlen, "no memory for the interrupt controller models");
	return -1;
}

/* The vector vCPU v would take now: local APIC first, then the 8259 (vCPU
 * 0 only, through the virtual wire). -1: none. `take`: acknowledge it. */
static int next_vector(struct svm *s, struct svm_vcpu *v, bool take)
{
	int vec = lapic_pending(v->lapic);
	if (vec >= 0) {
		if (take)
			lapic_ack(v->lapic, (uint8_t)vec);
		return vec;
	}
	if (v->id == 0 && lapic_accepts_extint(v->lapic) && i8259_pending(s->pic))
		return take ? i8259_ack(s->pic) : 0x100; /* a vector, not yet known */
	return -1;
}

void svm_irq_timers(struct svm *s, struct svm_vcpu *v)
{
	if (v->id == 0)
		i8254_poll(s->pit);
}

void svm_irq_inject(struct svm *s, struct svm_vcpu *v)
{
	uint8_t *c = v->vmcb;
	uint64_t ctl = vmcb_r64(c, VMCB_INT_CTL) & ~(INT_CTL_V_IRQ | (0xfull << 16) | INT_CTL_V_IGN_TPR);
	uint32_t misc = vmcb_r32(c, VMCB_INTERCEPT_MISC1) & ~ICPT_VINTR;
	svm_irq_timers(s, v);
	bool busy = vmcb_r64(c, VMCB_EVENTINJ) & EVT_VALID; /* an event is being (re)delivered */
	if (!busy && next_vector(s, v, false) >= 0) {
		bool open = (vmcb_r64(c, VMCB_RFLAGS) & RFLAGS_IF) && !(vmcb_r64(c, VMCB_INT_SHADOW) & 1);
		if (open) {
			int vec = next_vector(s, v, true);
			if (vec >= 0) {
				vmcb_w64(c, VMCB_EVENTINJ, (uint64_t)(uint8_t)vec | EVT_TYPE_INTR | EVT_VALID);
				v->stats[ST_IRQ_INJECTED]++;
			}
		} else {
			/* a window: exit (VINTR) as soon as the guest can take one */
			ctl |= INT_CTL_V_IRQ | (0xfull << 16) | INT_CTL_V_IGN_TPR;
			misc |= ICPT_VINTR;
		}
	}
	vmcb_w64(c, VMCB_INT_CTL, ctl);
	vmcb_w32(c, VMCB_INTERCEPT_MISC1, misc);
}

uint64_t svm_irq_next_ns(struct svm *s, struct svm_vcpu *v)
{
	uint64_t a = lapic_timer_next_ns(v->lapic), b = v->id == 0 ? i8254_next_ns(s->pit) : I8254_NONE;
	return a < b ? a : b;
}

bool svm_irq_ready(struct svm *s, struct svm_vcpu *v)
{
	svm_irq_timers(s, v);
	return (vmcb_r64(v->vmcb, VMCB_RFLAGS) & RFLAGS_IF) && next_vector(s, v, false) >= 0;
}

/* The TSC-deadline MSR: the guest's TSC value, kept, and handed to the
 * LAPIC as a time. */
void svm_irq_tsc_deadline(struct svm_vcpu *v, uint64_t guest_tsc)
{
	v->tsc_deadline = guest_tsc;
	if (!guest_tsc) {
		lapic_set_deadline_ns(v->lapic, 0);
		return;
	}
	uint64_t host_tsc = guest_tsc - vmcb_r64(v->vmcb, VMCB_TSC_OFFSET), now = SVM_TSC(), hz = metal_tsc_hz();
	uint64_t t = metal_now_ns();
	if (host_tsc > now && hz) {
		uint64_t d = host_tsc - now;
		if (d > hz * 3600)
			d = hz * 3600; /* an hour is as good as never */
		t += d / hz * 1000000000ull + d % hz * 1000000000ull / hz;
	}
	lapic_set_deadline_ns(v->lapic, t ? t : 1);
}

uint64_t svm_irq_tsc_deadline_get(const struct svm_vcpu *v)
{
	return lapic_timer_next_ns(v->lapic) == LAPIC_NONE ? 0 : v->tsc_deadline;
}
