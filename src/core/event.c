/* Event rings (core/event.h): one single-producer ring per emitting thread,
 * one consumer (the writer, vmm/trace.c).
 *
 * A ring's head is written only by its producer, its tail only by the
 * consumer; a slot is filled before the head moves past it (release) and
 * read before the tail does, so neither side ever waits for the other. A
 * full ring drops the event and counts it, per output, for the writer to
 * report.
 *
 * Audit coalescing lives in the ring's producer side: EV_PENDING slots each
 * hold one audit record still counting identical events. The producer
 * flushes a slot into its ring when a different event needs the slot or
 * the slot's window has passed; the consumer takes a slot whose window has
 * passed itself (a vCPU that was denied once and then went quiet must not
 * hold its record back) and, at the end, every slot. A slot's state says
 * who may touch it: EMPTY and BUSY belong to the producer, TAKING to the
 * consumer, and HELD → BUSY / HELD → TAKING is a compare-and-swap, so a
 * slot is never written by both; a producer that loses the race writes its
 * event uncoalesced. */
#include "core/event.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/devreq.h"

enum { P_EMPTY, P_HELD, P_BUSY, P_TAKING };
enum { D_TRACE, D_AUDIT };

struct evpending {
	_Atomic uint32_t st;
	/* e.t, for the consumer's look before it takes the slot: the producer
	 * may be refilling e meanwhile (a stale look only flushes early). */
	_Atomic uint64_t t;
	struct vevent e;
};

struct evring {
	/* producer side */
	_Atomic uint64_t head;
	_Atomic uint64_t dropped[2]; /* by output: D_TRACE, D_AUDIT */
	_Atomic uint64_t coalesced;
	unsigned evict;
	uint64_t budget_t; /* audit records written in the window starting then */
	unsigned budget_n;
	const void *owner; /* the producing thread's marker */
	char pad1[64];
	/* consumer side */
	_Atomic uint64_t tail;
	uint64_t reported[2];
	char pad2[64];
	char name[24];
	struct evpending pend[EV_PENDING];
	struct vevent slot[];
};

struct evsink {
	_Atomic unsigned flags; /* first: event.h's struct evsink_flags */
	uint64_t gen; /* tells a new sink from a freed one at the same address */
	struct vclock clock;
	_Atomic uint64_t t0;
	unsigned mask;
	uint64_t window;
	_Atomic(const struct evfilter *) filter;
	_Atomic unsigned nrings;
	_Atomic(struct evring *) rings[EV_MAX_RINGS];
	_Atomic uint64_t overflow[2]; /* events of threads that found no ring */
	uint64_t overflow_reported[2];
	unsigned nkept;
	struct evfilter *kept[EVF_MAX_PUBLISH];
};

enum { F_TRACE = EV_WANT_TRACE, F_AUDIT = EV_WANT_AUDIT };
_Static_assert(offsetof(struct evsink, flags) == 0, "event.h reads the flags at the sink's start");

static _Atomic uint64_t sink_gen;

/* --- the owner's side --------------------------------------------------- */

struct evsink *ev_sink_new(const struct evsink_config *c)
{
	unsigned size = c->ring_size ? c->ring_size : EV_DEFAULT_RING;
	if (size < 2 || (size & (size - 1)) || size > (1u << 24) || !c->clock.mono_ns)
		return NULL;
	struct evsink *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->gen = atomic_fetch_add(&sink_gen, 1) + 1;
	s->clock = c->clock;
	s->mask = size - 1;
	s->window = c->window_ns ? c->window_ns : EV_DEFAULT_WINDOW_NS;
	atomic_init(&s->t0, vclock_mono_ns(&s->clock));
	return s;
}

void ev_sink_free(struct evsink *s)
{
	if (!s)
		return;
	unsigned n = atomic_load(&s->nrings);
	for (unsigned i = 0; i < n && i < EV_MAX_RINGS; i++)
		free(atomic_load(&s->rings[i]));
	for (unsigned i = 0; i < s->nkept; i++)
		free(s->kept[i]);
	free(s);
}

void ev_sink_mark_start(struct evsink *s)
{
	atomic_store(&s->t0, vclock_mono_ns(&s->clock));
}

uint64_t ev_sink_now(const struct evsink *s)
{
	uint64_t t0 = atomic_load_explicit(&s->t0, memory_order_relaxed);
	uint64_t now = vclock_mono_ns(&s->clock);
	return now > t0 ? now - t0 : 0;
}

static void set_flag(struct evsink *s, unsigned f, bool on)
{
	if (on)
		atomic_fetch_or(&s->flags, f);
	else
		atomic_fetch_and(&s->flags, ~f);
}

void ev_set_trace(struct evsink *s, bool on)
{
	set_flag(s, F_TRACE, on);
}

void ev_set_audit(struct evsink *s, bool on)
{
	set_flag(s, F_AUDIT, on);
}

bool ev_trace_on(const struct evsink *s)
{
	return s && (atomic_load(&s->flags) & F_TRACE);
}

bool ev_audit_on(const struct evsink *s)
{
	return s && (atomic_load(&s->flags) & F_AUDIT);
}

int ev_set_filter(struct evsink *s, const struct evfilter *f)
{
	struct evfilter *copy = NULL;
	if (f) {
		if (s->nkept == EVF_MAX_PUBLISH || !(copy = malloc(sizeof(*copy))))
			return -1;
		*copy = *f;
		s->kept[s->nkept++] = copy;
	}
	/* The old filter stays allocated: a producer may still be reading it. */
	atomic_store_explicit(&s->filter, copy, memory_order_release);
	return 0;
}

/* --- the producers' side ------------------------------------------------ */

static bool has_addr(const struct vevent *e)
{
	switch (e->kind) {
	case EV_PIO:
	case EV_MMIO:
	case EV_MSR:
	case EV_CPUID:
	case EV_NET:
	case EV_VSOCK:
	case EV_DEBUG:
		return true;
	case EV_DEVREQ:
		return e->addr != EV_NO_SECTOR;
	default:
		return false;
	}
}

bool ev_filter_match(const struct evfilter *f, const struct vevent *e)
{
	if (!f)
		return true;
	if (f->kinds && (e->kind >= 32 || !(f->kinds & (1u << e->kind))))
		return false;
	if (f->ndevices) {
		const char *d = e->device ? e->device : "unclaimed";
		unsigned i;
		for (i = 0; i < f->ndevices && strcmp(f->devices[i], d); i++)
			;
		if (i == f->ndevices)
			return false;
	}
	if (f->nranges) {
		if (!has_addr(e))
			return false;
		unsigned i;
		for (i = 0; i < f->nranges && !(e->addr >= f->ranges[i].first && e->addr <= f->ranges[i].last); i++)
			;
		if (i == f->nranges)
			return false;
	}
	if (f->has_vcpus && (e->vcpu >= 64 || !(f->vcpus & (1ull << e->vcpu))))
		return false;
	return true;
}

static _Thread_local struct {
	const struct evsink *s;
	uint64_t gen;
	struct evring *r;
} tl_ring;
static _Thread_local char tl_owner; /* its address names the thread */

static struct evring *ring_new(const struct evsink *s, unsigned idx, const struct vevent *e)
{
	struct evring *r = calloc(1, sizeof(*r) + ((size_t)s->mask + 1) * sizeof(struct vevent));
	if (!r)
		return NULL;
	r->owner = &tl_owner;
	for (unsigned i = 0; i < EV_PENDING; i++)
		atomic_init(&r->pend[i].st, P_EMPTY);
	if (e->vcpu != EV_NO_VCPU)
		snprintf(r->name, sizeof(r->name), "vcpu%u", (unsigned)e->vcpu);
	else
		snprintf(r->name, sizeof(r->name), "thread%u", idx);
	return r;
}

/* The calling thread's ring: cached, else found by owner, else registered. */
static struct evring *my_ring(struct evsink *s, const struct vevent *e)
{
	if (tl_ring.s == s && tl_ring.gen == s->gen)
		return tl_ring.r;
	struct evring *r = NULL;
	unsigned n = atomic_load_explicit(&s->nrings, memory_order_acquire);
	for (unsigned i = 0; i < n && i < EV_MAX_RINGS && !r; i++) {
		struct evring *c = atomic_load_explicit(&s->rings[i], memory_order_acquire);
		if (c && c->owner == &tl_owner)
			r = c;
	}
	if (!r) {
		unsigned idx = atomic_fetch_add_explicit(&s->nrings, 1, memory_order_acq_rel);
		if (idx < EV_MAX_RINGS && (r = ring_new(s, idx, e)))
			atomic_store_explicit(&s->rings[idx], r, memory_order_release);
	}
	tl_ring.s = s;
	tl_ring.gen = s->gen;
	tl_ring.r = r; /* NULL: this thread's events are counted as lost */
	return r;
}

static void count(_Atomic uint64_t *c)
{
	/* One writer per ring counter: no locked add needed. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1, memory_order_relaxed);
}

static void push(struct evsink *s, struct evring *r, const struct vevent *e)
{
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
	if (h - t > s->mask) {
		count(&r->dropped[e->dest == EV_TO_AUDIT ? D_AUDIT : D_TRACE]);
		return;
	}
	r->slot[h & s->mask] = *e;
	atomic_store_explicit(&r->head, h + 1, memory_order_release);
}

/* A flushed audit record. A guest sweeping many addresses defeats the
 * coalescing; the budget still bounds what it can write: at most
 * EV_AUDIT_MAX_PER_WINDOW records per ring per window, the rest counted as
 * lost (and reported so). */
static void push_audit(struct evsink *s, struct evring *r, const struct vevent *rec, uint64_t now)
{
	if (now - r->budget_t >= s->window) {
		r->budget_t = now;
		r->budget_n = 0;
	}
	if (r->budget_n >= EV_AUDIT_MAX_PER_WINDOW) {
		count(&r->dropped[D_AUDIT]);
		return;
	}
	r->budget_n++;
	push(s, r, rec);
}

/* Identical in everything a record shows but its time: the data written,
 * the width, the remote port or the CPUID subleaf apart make another
 * record (a guest must not hide a value behind a first, harmless one). */
static bool same_event(const struct vevent *a, const struct vevent *b)
{
	return a->kind == b->kind && a->resource == b->resource && a->addr == b->addr && a->write == b->write &&
	       a->len == b->len && a->value == b->value && a->extra == b->extra &&
	       a->verdict == b->verdict && a->enforced == b->enforced && a->vcpu == b->vcpu &&
	       a->proto == b->proto && a->has_rule == b->has_rule && a->device == b->device &&
	       (!a->has_rule || strcmp(a->rule, b->rule) == 0);
}

static bool grab(struct evpending *p)
{
	uint32_t held = P_HELD;
	return atomic_compare_exchange_strong_explicit(&p->st, &held, P_BUSY, memory_order_acquire,
						       memory_order_relaxed);
}

static void coalesce(struct evsink *s, struct evring *r, const struct vevent *e)
{
	struct evpending *empty = NULL;
	bool empty_busy = false;

	for (unsigned i = 0; i < EV_PENDING; i++) {
		struct evpending *p = &r->pend[i];
		uint32_t st = atomic_load_explicit(&p->st, memory_order_acquire);
		if (st == P_EMPTY) {
			if (!empty)
				empty = p;
			continue;
		}
		if (st != P_HELD)
			continue; /* the consumer is taking it */
		bool expired = e->t - p->e.t >= s->window;
		bool same = !expired && same_event(&p->e, e) && p->e.count < UINT32_MAX;
		if (!(same || expired) || !grab(p))
			continue;
		if (same) {
			p->e.count++;
			atomic_store_explicit(&p->st, P_HELD, memory_order_release);
			count(&r->coalesced);
			if (empty && empty_busy) /* an expired slot flushed above: give it back */
				atomic_store_explicit(&empty->st, P_EMPTY, memory_order_release);
			return;
		}
		push_audit(s, r, &p->e, e->t);
		if (!empty) {
			empty = p; /* stays BUSY until refilled below */
			empty_busy = true;
			continue;
		}
		atomic_store_explicit(&p->st, P_EMPTY, memory_order_release);
	}
	if (!empty) {
		/* Every slot holds another event: the next in turn is written out. */
		for (unsigned k = 0; k < EV_PENDING && !empty; k++) {
			struct evpending *p = &r->pend[r->evict++ % EV_PENDING];
			if (grab(p)) {
				push_audit(s, r, &p->e, e->t);
				empty = p; /* stays BUSY until refilled below */
			}
		}
		if (!empty) {
			push_audit(s, r, e, e->t);
			return;
		}
	}
	empty->e = *e;
	atomic_store_explicit(&empty->t, e->t, memory_order_relaxed);
	atomic_store_explicit(&empty->st, P_HELD, memory_order_release);
}

void ev_emit(struct evsink *s, struct vevent *e)
{
	if (!s)
		return;
	unsigned f = atomic_load_explicit(&s->flags, memory_order_relaxed);
	bool trace = f & F_TRACE, audit = (f & F_AUDIT) && e->audit;
	if (!trace && !audit)
		return;
	trace = trace && ev_filter_match(atomic_load_explicit(&s->filter, memory_order_acquire), e);
	if (!trace && !audit)
		return; /* filtered out: costs the test only */
	e->t = ev_sink_now(s);
	if (e->count == 0)
		e->count = 1;
	struct evring *r = my_ring(s, e);
	if (trace) {
		e->dest = EV_TO_TRACE;
		if (r)
			push(s, r, e);
		else
			atomic_fetch_add_explicit(&s->overflow[D_TRACE], 1, memory_order_relaxed);
	}
	if (audit) {
		e->dest = EV_TO_AUDIT;
		if (r)
			coalesce(s, r, e);
		else
			atomic_fetch_add_explicit(&s->overflow[D_AUDIT], 1, memory_order_relaxed);
	}
}

void ev_emit_devreq(struct evsink *s, const char *device, enum req_kind kind, uint64_t sector, uint64_t bytes,
		    const struct policy_decision *d, bool denied)
{
	/* The built-in refusal (a write to a read-only disk) is audited. */
	bool audit = d ? d->audit : denied;
	if (!ev_wanted(s, audit))
		return;
	struct vevent e = {
		.kind = EV_DEVREQ,
		.vcpu = EV_NO_VCPU,
		.write = (uint8_t)kind,
		.verdict = (uint8_t)(d ? d->verdict : denied ? POLICY_DENY : POLICY_PROVIDE),
		.resource = (uint8_t)(d || denied ? POL_RES_DISK : POL_RES__COUNT),
		.enforced = d ? d->enforced : 1,
		.audit = audit,
		.count = 1,
		.addr = sector,
		.value = bytes,
		.device = device,
	};
	if (d && d->r) {
		e.has_rule = 1;
		memcpy(e.rule, d->r->id, sizeof(e.rule));
	}
	ev_emit(s, &e);
}

/* --- the consumer ------------------------------------------------------- */

#define TAIL_STEP 64 /* slots handed back to the producer at a time */

/* What one drain reads of a ring: [tail, head) as it was at the start. */
struct cursor {
	struct evring *r;
	uint64_t t, h;
};

/* The rings' records merged by t (each ring is in t order already), so a
 * batch comes out in time order across vCPUs. */
static size_t drain_rings(struct evsink *s, struct cursor *c, unsigned nc, const struct ev_drain_ops *ops,
			  void *ctx)
{
	size_t n = 0;
	for (;;) {
		struct cursor *best = NULL;
		for (unsigned i = 0; i < nc; i++)
			if (c[i].t != c[i].h &&
			    (!best || c[i].r->slot[c[i].t & s->mask].t < best->r->slot[best->t & s->mask].t))
				best = &c[i];
		if (!best)
			break;
		ops->record(ctx, &best->r->slot[best->t & s->mask]);
		n++;
		if (++best->t % TAIL_STEP == 0)
			atomic_store_explicit(&best->r->tail, best->t, memory_order_release);
	}
	for (unsigned i = 0; i < nc; i++)
		atomic_store_explicit(&c[i].r->tail, c[i].t, memory_order_release);
	return n;
}

size_t ev_drain(struct evsink *s, bool final, const struct ev_drain_ops *ops, void *ctx)
{
	struct cursor c[EV_MAX_RINGS];
	unsigned nc = 0;
	uint64_t now = ev_sink_now(s);
	unsigned nr = atomic_load_explicit(&s->nrings, memory_order_acquire);

	for (unsigned i = 0; i < nr && i < EV_MAX_RINGS; i++) {
		struct evring *r = atomic_load_explicit(&s->rings[i], memory_order_acquire);
		if (r)
			c[nc++] = (struct cursor){ r, atomic_load_explicit(&r->tail, memory_order_relaxed),
						   atomic_load_explicit(&r->head, memory_order_acquire) };
	}
	size_t n = drain_rings(s, c, nc, ops, ctx);
	for (unsigned i = 0; i < nc; i++) {
		struct evring *r = c[i].r;
		for (int d = 0; d < 2; d++) {
			uint64_t lost = atomic_load_explicit(&r->dropped[d], memory_order_relaxed);
			if (lost != r->reported[d] && ops->lost)
				ops->lost(ctx, now, r->name, d == D_AUDIT ? EV_TO_AUDIT : EV_TO_TRACE, lost - r->reported[d]);
			r->reported[d] = lost;
		}
		for (unsigned k = 0; k < EV_PENDING; k++) {
			struct evpending *p = &r->pend[k];
			uint32_t held = P_HELD;
			if (atomic_load_explicit(&p->st, memory_order_acquire) != P_HELD)
				continue;
			if (!final && now - atomic_load_explicit(&p->t, memory_order_relaxed) < s->window)
				continue;
			if (!atomic_compare_exchange_strong_explicit(&p->st, &held, P_TAKING, memory_order_acquire,
								     memory_order_relaxed))
				continue;
			struct vevent copy = p->e;
			atomic_store_explicit(&p->st, P_EMPTY, memory_order_release);
			ops->record(ctx, &copy);
			n++;
		}
	}
	for (int d = 0; d < 2; d++) {
		uint64_t lost = atomic_load_explicit(&s->overflow[d], memory_order_relaxed);
		if (lost != s->overflow_reported[d] && ops->lost)
			ops->lost(ctx, now, "overflow", d == D_AUDIT ? EV_TO_AUDIT : EV_TO_TRACE,
				  lost - s->overflow_reported[d]);
		s->overflow_reported[d] = lost;
	}
	return n;
}

bool ev_sink_needs_drain(const struct evsink *s)
{
	unsigned nr = atomic_load_explicit(&s->nrings, memory_order_acquire);
	for (unsigned i = 0; i < nr && i < EV_MAX_RINGS; i++) {
		struct evring *r = atomic_load_explicit(&s->rings[i], memory_order_acquire);
		if (r && atomic_load_explicit(&r->head, memory_order_relaxed) -
				     atomic_load_explicit(&r->tail, memory_order_relaxed) >
			     s->mask / 2)
			return true;
	}
	return false;
}

void ev_sink_stats(const struct evsink *s, struct ev_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!s)
		return;
	unsigned nr = atomic_load_explicit(&s->nrings, memory_order_acquire);
	for (unsigned i = 0; i < nr && i < EV_MAX_RINGS; i++) {
		struct evring *r = atomic_load_explicit(&s->rings[i], memory_order_acquire);
		if (!r)
			continue;
		st->rings++;
		st->events += atomic_load_explicit(&r->head, memory_order_relaxed);
		st->lost += atomic_load_explicit(&r->dropped[D_TRACE], memory_order_relaxed) +
			    atomic_load_explicit(&r->dropped[D_AUDIT], memory_order_relaxed);
		st->coalesced += atomic_load_explicit(&r->coalesced, memory_order_relaxed);
	}
	st->lost += atomic_load_explicit(&s->overflow[D_TRACE], memory_order_relaxed) +
		    atomic_load_explicit(&s->overflow[D_AUDIT], memory_order_relaxed);
}

const char *ev_kind_name(enum vevent_kind k)
{
	static const char *const names[EV__COUNT] = {
		[EV_PIO] = "pio",       [EV_MMIO] = "mmio",       [EV_MSR] = "msr",
		[EV_CPUID] = "cpuid",   [EV_HLT] = "hlt",         [EV_SHUTDOWN] = "shutdown",
		[EV_SYSTEM_EVENT] = "system_event",               [EV_INTR] = "intr",
		[EV_DEBUG] = "debug",   [EV_ERROR] = "error",     [EV_DEVREQ] = "devreq",
		[EV_NET] = "net",       [EV_VSOCK] = "vsock",     [EV_RTC] = "rtc",
	};
	return (unsigned)k < EV__COUNT && names[k] ? names[k] : "unknown";
}
