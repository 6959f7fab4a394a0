/* The local APIC model (lapic.h). Registers by offset, as in the SDM's
 * table 11-1; the 256-bit IRR/ISR/TMR as eight 32-bit words, laid out the
 * way the register pages show them. */
#include "devices/lapic.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define R_ID     0x020
#define R_VER    0x030
#define R_TPR    0x080
#define R_APR    0x090
#define R_PPR    0x0a0
#define R_EOI    0x0b0
#define R_RRD    0x0c0
#define R_LDR    0x0d0
#define R_DFR    0x0e0
#define R_SVR    0x0f0
#define R_ISR    0x100
#define R_TMR    0x180
#define R_IRR    0x200
#define R_ESR    0x280
#define R_CMCI   0x2f0
#define R_ICR_LO 0x300
#define R_ICR_HI 0x310
#define R_LVT_TIMER 0x320
#define R_LVT_THERM 0x330
#define R_LVT_PERF  0x340
#define R_LVT_LINT0 0x350
#define R_LVT_LINT1 0x360
#define R_LVT_ERR   0x370
#define R_TMICT  0x380
#define R_TMCCT  0x390
#define R_TDCR   0x3e0

#define LVT_MASKED (1u << 16)
#define SVR_ENABLE (1u << 8)
#define TIMER_ONESHOT 0
#define TIMER_PERIODIC 1
#define TIMER_TSCDL 2

enum { LVT_TIMER, LVT_THERM, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERR, LVT_CMCI, LVT__COUNT };

struct lapic {
	pthread_mutex_t lock; /* irr/tmr: lapic_accept comes from any thread */
	struct vclock clk;
	void (*eoi)(void *ctx, uint8_t vector);
	void *eoi_ctx;
	lapic_ipi_fn ipi_fn;
	void *ipi_ctx;
	bool ipi_out;            /* an IPI for ipi_fn, sent once the lock is dropped */
	struct lapic_ipi out;
	uint32_t id, tpr, ldr, dfr, svr, esr, icr_lo, icr_hi;
	uint32_t lvt[LVT__COUNT];
	uint32_t irr[8], isr[8], tmr[8];
	/* timer */
	uint32_t tmict, tdcr;
	uint64_t start_ns;     /* one-shot / periodic: when the count was loaded */
	bool armed;
	uint64_t deadline_ns;  /* TSC-deadline mode; 0: none */
};

static uint64_t now(const struct lapic *l)
{
	return l->clk.mono_ns ? l->clk.mono_ns(l->clk.ctx) : 0;
}

static void reset(struct lapic *l)
{
	l->tpr = l->ldr = l->esr = l->icr_lo = l->icr_hi = 0;
	l->dfr = 0xffffffffu;
	l->svr = 0xff;
	for (int i = 0; i < LVT__COUNT; i++)
		l->lvt[i] = LVT_MASKED;
	memset(l->irr, 0, sizeof(l->irr));
	memset(l->isr, 0, sizeof(l->isr));
	memset(l->tmr, 0, sizeof(l->tmr));
	l->tmict = l->tdcr = 0;
	l->armed = false;
	l->deadline_ns = 0;
}

struct lapic *lapic_new(uint32_t id, const struct vclock *clk, void (*eoi)(void *ctx, uint8_t vector),
			void *eoi_ctx)
{
	struct lapic *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	pthread_mutex_init(&l->lock, NULL);
	if (clk)
		l->clk = *clk;
	l->eoi = eoi;
	l->eoi_ctx = eoi_ctx;
	l->id = id;
	reset(l);
	return l;
}

void lapic_free(struct lapic *l)
{
	if (!l)
		return;
	pthread_mutex_destroy(&l->lock);
	free(l);
}

static int highest(const uint32_t *bits)
{
	for (int w = 7; w >= 0; w--)
		if (bits[w])
			return w * 32 + 31 - __builtin_clz(bits[w]);
	return -1;
}

static void set_bit(uint32_t *bits, unsigned v) { bits[v / 32] |= 1u << (v % 32); }
static void clr_bit(uint32_t *bits, unsigned v) { bits[v / 32] &= ~(1u << (v % 32)); }
static bool tst_bit(const uint32_t *bits, unsigned v) { return bits[v / 32] & (1u << (v % 32)); }

static uint32_t ppr(const struct lapic *l)
{
	int isrv = highest(l->isr);
	uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;
	return (l->tpr & 0xf0) >= isr_class ? l->tpr & 0xff : isr_class;
}

static void raise_locked(struct lapic *l, uint8_t vector, bool level)
{
	if (vector < 16) {
		l->esr |= 1u << 6; /* received illegal vector */
		return;
	}
	set_bit(l->irr, vector);
	if (level)
		set_bit(l->tmr, vector);
	else
		clr_bit(l->tmr, vector);
}

void lapic_accept(struct lapic *l, uint8_t vector, bool level)
{
	pthread_mutex_lock(&l->lock);
	raise_locked(l, vector, level);
	pthread_mutex_unlock(&l->lock);
}

static unsigned timer_mode(const struct lapic *l)
{
	return (l->lvt[LVT_TIMER] >> 17) & 3;
}

static uint64_t divisor(const struct lapic *l)
{
	unsigned v = ((l->tdcr >> 1) & 4) | (l->tdcr & 3);
	return v == 7 ? 1 : 2ull << v;
}

static uint64_t period_ns(const struct lapic *l)
{
	return (uint64_t)l->tmict * divisor(l);
}

uint64_t lapic_timer_next_ns(const struct lapic *l)
{
	if (timer_mode(l) == TIMER_TSCDL)
		return l->deadline_ns ? l->deadline_ns : LAPIC_NONE;
	if (!l->armed || !l->tmict)
		return LAPIC_NONE;
	return l->start_ns + period_ns(l);
}

/* Fires the timer's vector if it is due (once, however late). */
static void timer_check(struct lapic *l, uint64_t t)
{
	uint64_t next = lapic_timer_next_ns(l);
	if (next == LAPIC_NONE || t < next)
		return;
	if (!(l->lvt[LVT_TIMER] & LVT_MASKED))
		raise_locked(l, (uint8_t)l->lvt[LVT_TIMER], false);
	if (timer_mode(l) == TIMER_TSCDL) {
		l->deadline_ns = 0;
	} else if (timer_mode(l) == TIMER_PERIODIC) {
		uint64_t p = period_ns(l);
		l->start_ns += p * ((t - l->start_ns) / p);
	} else {
		l->armed = false;
	}
}

static uint32_t current_count(const struct lapic *l, uint64_t t)
{
	if (timer_mode(l) == TIMER_TSCDL || !l->armed || !l->tmict)
		return 0;
	uint64_t p = period_ns(l), el = t - l->start_ns;
	if (el >= p) {
		if (timer_mode(l) != TIMER_PERIODIC)
			return 0;
		el %= p;
	}
	return (uint32_t)((p - el) / divisor(l));
}

int lapic_pending(struct lapic *l)
{
	pthread_mutex_lock(&l->lock);
	timer_check(l, now(l));
	int v = highest(l->irr);
	if (v >= 0 && ((uint32_t)v & 0xf0) <= (ppr(l) & 0xf0))
		v = -1;
	if (!(l->svr & SVR_ENABLE))
		v = -1; /* software-disabled: requests are held */
	pthread_mutex_unlock(&l->lock);
	return v;
}

void lapic_ack(struct lapic *l, uint8_t vector)
{
	pthread_mutex_lock(&l->lock);
	clr_bit(l->irr, vector);
	set_bit(l->isr, vector);
	pthread_mutex_unlock(&l->lock);
}

void lapic_set_deadline_ns(struct lapic *l, uint64_t ns)
{
	pthread_mutex_lock(&l->lock);
	l->deadline_ns = ns;
	pthread_mutex_unlock(&l->lock);
}

bool lapic_accepts_extint(const struct lapic *l)
{
	if (!(l->svr & SVR_ENABLE))
		return true;
	uint32_t lint0 = l->lvt[LVT_LINT0];
	return !(lint0 & LVT_MASKED) && ((lint0 >> 8) & 7) == 7;
}

/* ICR: a self IPI by shorthand is delivered here; anything else goes to
 * the backend (ipi_fn) once the lock is dropped. Without one, only fixed
 * IPIs that name this CPU arrive (a single-vCPU machine). */
static void ipi(struct lapic *l)
{
	uint32_t mode = (l->icr_lo >> 8) & 7, shorthand = (l->icr_lo >> 18) & 3;
	uint32_t dest = l->icr_hi >> 24;
	bool logical = l->icr_lo & (1u << 11);
	l->icr_lo &= ~(1u << 12); /* delivered at once: never "send pending" */
	if (shorthand == 1) {
		if (mode == 0)
			raise_locked(l, (uint8_t)l->icr_lo, false);
		return;
	}
	if (!l->ipi_fn) {
		bool self = shorthand == 2 || (shorthand == 0 && !logical && (dest == l->id || dest == 0xff));
		if (mode == 0 && self)
			raise_locked(l, (uint8_t)l->icr_lo, false);
		return;
	}
	l->out = (struct lapic_ipi){ .from = l->id, .vector = (uint8_t)l->icr_lo, .mode = (uint8_t)mode,
				     .shorthand = (uint8_t)shorthand, .dest = (uint8_t)dest, .logical = logical,
				     .assert = l->icr_lo & (1u << 14) };
	l->ipi_out = true;
}

void lapic_set_ipi(struct lapic *l, lapic_ipi_fn fn, void *ctx)
{
	l->ipi_fn = fn;
	l->ipi_ctx = ctx;
}

bool lapic_matches(struct lapic *l, uint8_t dest, bool logical)
{
	pthread_mutex_lock(&l->lock);
	bool r;
	if (!logical) {
		r = dest == 0xff || dest == (uint8_t)l->id;
	} else {
		uint8_t ldr = (uint8_t)(l->ldr >> 24);
		if ((l->dfr >> 28) == 0xf) /* flat */
			r = (ldr & dest) != 0;
		else /* cluster: the high nibbles name the cluster, the low ones a bitmap */
			r = (dest >> 4) == (ldr >> 4) && (dest & ldr & 0xf);
	}
	pthread_mutex_unlock(&l->lock);
	return r;
}

static uint32_t read_reg(struct lapic *l, unsigned r)
{
	switch (r) {
	case R_ID: return l->id << 24;
	case R_VER: return 0x14 | ((LVT__COUNT - 1u) << 16); /* integrated APIC, 7 LVTs */
	case R_TPR: return l->tpr;
	case R_APR: return 0;
	case R_PPR: return ppr(l);
	case R_LDR: return l->ldr;
	case R_DFR: return l->dfr;
	case R_SVR: return l->svr;
	case R_ESR: return l->esr;
	case R_ICR_LO: return l->icr_lo;
	case R_ICR_HI: return l->icr_hi;
	case R_LVT_TIMER: return l->lvt[LVT_TIMER];
	case R_LVT_THERM: return l->lvt[LVT_THERM];
	case R_LVT_PERF: return l->lvt[LVT_PERF];
	case R_LVT_LINT0: return l->lvt[LVT_LINT0];
	case R_LVT_LINT1: return l->lvt[LVT_LINT1];
	case R_LVT_ERR: return l->lvt[LVT_ERR];
	case R_CMCI: return l->lvt[LVT_CMCI];
	case R_TMICT: return l->tmict;
	case R_TMCCT: return current_count(l, now(l));
	case R_TDCR: return l->tdcr;
	default:
		break;
	}
	if (r >= R_ISR && r < R_ISR + 0x80)
		return l->isr[(r - R_ISR) / 16];
	if (r >= R_TMR && r < R_TMR + 0x80)
		return l->tmr[(r - R_TMR) / 16];
	if (r >= R_IRR && r < R_IRR + 0x80)
		return l->irr[(r - R_IRR) / 16];
	return 0;
}

static void write_lvt(struct lapic *l, int i, uint32_t v)
{
	static const uint32_t mask[LVT__COUNT] = {
		[LVT_TIMER] = 0x700ff, [LVT_THERM] = 0x107ff, [LVT_PERF] = 0x107ff, [LVT_LINT0] = 0x1a7ff,
		[LVT_LINT1] = 0x1a7ff, [LVT_ERR] = 0x100ff, [LVT_CMCI] = 0x107ff,
	};
	if (!(l->svr & SVR_ENABLE))
		v |= LVT_MASKED; /* a software-disabled APIC keeps its LVTs masked */
	if (i == LVT_TIMER && ((v >> 17) & 3) != timer_mode(l)) {
		l->armed = false; /* a mode change stops the timer */
		l->deadline_ns = 0;
	}
	l->lvt[i] = v & mask[i];
}

/* Returns the level-triggered vector an EOI retired, or -1. */
static int write_reg(struct lapic *l, unsigned r, uint32_t v)
{
	switch (r) {
	case R_TPR: l->tpr = v & 0xff; break;
	case R_EOI: {
		int vec = highest(l->isr);
		if (vec < 0)
			break;
		clr_bit(l->isr, (unsigned)vec);
		if (tst_bit(l->tmr, (unsigned)vec))
			return vec;
		break;
	}
	case R_LDR: l->ldr = v & 0xff000000u; break;
	case R_DFR: l->dfr = v | 0x0fffffffu; break;
	case R_SVR:
		l->svr = v & 0x13ff;
		if (!(v & SVR_ENABLE))
			for (int i = 0; i < LVT__COUNT; i++)
				l->lvt[i] |= LVT_MASKED;
		break;
	case R_ESR: l->esr = 0; break;
	case R_ICR_HI: l->icr_hi = v & 0xff000000u; break;
	case R_ICR_LO: l->icr_lo = v & ~(1u << 12); ipi(l); break;
	case R_LVT_TIMER: write_lvt(l, LVT_TIMER, v); break;
	case R_LVT_THERM: write_lvt(l, LVT_THERM, v); break;
	case R_LVT_PERF: write_lvt(l, LVT_PERF, v); break;
	case R_LVT_LINT0: write_lvt(l, LVT_LINT0, v); break;
	case R_LVT_LINT1: write_lvt(l, LVT_LINT1, v); break;
	case R_LVT_ERR: write_lvt(l, LVT_ERR, v); break;
	case R_CMCI: write_lvt(l, LVT_CMCI, v); break;
	case R_TMICT:
		if (timer_mode(l) == TIMER_TSCDL)
			break; /* ignored in TSC-deadline mode */
		l->tmict = v;
		l->start_ns = now(l);
		l->armed = v != 0;
		break;
	case R_TDCR: l->tdcr = v & 0xb; break;
	default: break; /* read-only or reserved */
	}
	return -1;
}

void lapic_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct lapic *l = dev;
	if (len != 4 || (offset & 0xf) || offset >= 0x1000) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	unsigned r = (unsigned)offset;
	pthread_mutex_lock(&l->lock);
	if (!is_write) {
		timer_check(l, now(l));
		uint32_t v = read_reg(l, r);
		memcpy(data, &v, 4);
		pthread_mutex_unlock(&l->lock);
		return;
	}
	uint32_t v;
	memcpy(&v, data, 4);
	int eoi = write_reg(l, r, v);
	bool send = l->ipi_out;
	struct lapic_ipi out = l->out;
	l->ipi_out = false;
	pthread_mutex_unlock(&l->lock);
	/* outside the lock: the IOAPIC may deliver again into lapic_accept,
	 * and an IPI may be this LAPIC's own (lapic_matches, lapic_accept) */
	if (eoi >= 0 && l->eoi)
		l->eoi(l->eoi_ctx, (uint8_t)eoi);
	if (send)
		l->ipi_fn(l->ipi_ctx, &out);
}
