/* event — what the monitor saw, as fixed-size records: every exit that
 * reaches vigil, every device request, every policy decision. They feed the
 * JSON-lines trace (--trace) and the audit log (--audit).
 *
 * Cost is bounded: each producer thread (a vCPU, a device thread) writes
 * into a lock-free single-producer ring of its own, registered on its first
 * event; one host thread (vmm/trace.c) drains all rings and formats and
 * writes in batches. The producer does no formatting, takes no lock shared
 * with other threads and makes no syscall. A full ring drops the event and
 * counts it; the writer reports how many were lost and on which ring.
 * Audit records of identical events are coalesced by the producer within a
 * short window into one record with a count. */
#ifndef VIGIL_CORE_EVENT_H
#define VIGIL_CORE_EVENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/policy.h"

enum vevent_kind {
	EV_PIO,
	EV_MMIO,
	EV_MSR,
	EV_CPUID,
	EV_HLT,
	EV_SHUTDOWN,
	EV_SYSTEM_EVENT,
	EV_INTR,
	EV_DEBUG,
	EV_ERROR,  /* internal error, failed entry, unknown exit */
	EV_DEVREQ, /* a device request (virtqueue chain) */
	EV_NET,    /* a network flow decision */
	EV_VSOCK,  /* a vsock connection decision */
	EV_RTC,
	EV__COUNT
};

#define EV_NO_VCPU 0xffff

struct vevent {
	uint64_t t;          /* ns since the VM started; filled by ev_emit() */
	uint16_t kind;       /* enum vevent_kind */
	uint16_t vcpu;       /* EV_NO_VCPU for device events */
	uint8_t len;         /* access size (pio, mmio) */
	uint8_t write;       /* pio/mmio/msr write; devreq: enum req_kind */
	uint8_t verdict;     /* enum policy_verdict */
	uint8_t resource;    /* enum policy_resource */
	uint8_t has_rule;    /* a rule decided (rule[] holds its id) */
	uint8_t enforced;
	uint8_t audit;       /* also goes to the audit log */
	uint8_t proto;       /* net: enum policy_proto; vsock: enum policy_vsock_dir */
	uint32_t count;      /* coalesced identical audit events (>= 1) */
	uint64_t addr;       /* port, gpa, msr, cpuid leaf, sector, remote ip, vsock port */
	uint64_t value;      /* data, bytes of a request, remote port */
	uint64_t extra;      /* reason-specific: exit hw reason, sectors, subleaf */
	const char *device;  /* registry id (lives as long as the VM), NULL: unclaimed */
	char rule[POLICY_ID_MAX + 1];
	uint8_t dest;        /* EV_TO_TRACE and/or EV_TO_AUDIT; filled by ev_emit() */
};

/* What the fields hold beyond exits:
 *  EV_DEVREQ: device, write = enum req_kind, addr = first sector
 *             (EV_NO_SECTOR when the device does not know one), value =
 *             bytes, extra = sectors, verdict/resource (POL_RES_DISK for
 *             disks, else POL_RES__COUNT: no resource of the policy);
 *  EV_NET:    device = iface id, write = enum policy_dir, proto = enum
 *             policy_proto, addr = remote IPv4 (host order), value = remote port;
 *  EV_VSOCK:  addr = port, proto = enum policy_vsock_dir, extra = to_port;
 *  EV_CPUID:  addr = leaf, extra = subleaf;
 *  EV_RTC:    addr = the guest's wall time (s) at the decision, extra = its
 *             offset from the host's (s, signed). */
#define EV_NO_SECTOR UINT64_MAX

enum { EV_TO_TRACE = 1, EV_TO_AUDIT = 2 };

struct evsink; /* vmm/trace.c makes it; the core only emits */

/* The sink's first member, visible so that ev_wanted() is inlined into the
 * exit path: a call per exit for one flag test cost more than the test. */
struct evsink_flags {
	_Atomic unsigned flags; /* EV_WANT_TRACE | EV_WANT_AUDIT */
};
enum { EV_WANT_TRACE = 1, EV_WANT_AUDIT = 2 };

/* Is anything listening at all? One relaxed load; false when the sink is
 * NULL. `audit` is whether the decision asks for an audit record. */
static inline bool ev_wanted(const struct evsink *s, bool audit)
{
	if (!s)
		return false;
	unsigned f = atomic_load_explicit(&((const struct evsink_flags *)(const void *)s)->flags,
					  memory_order_relaxed);
	return f & (EV_WANT_TRACE | (audit ? EV_WANT_AUDIT : 0u));
}
/* Hands one event to the calling thread's ring (registering it on first
 * use); filters (kind, device, address range, vCPU) are applied here, so a
 * filtered-out event costs only the test. Never blocks. */
void ev_emit(struct evsink *s, struct vevent *e);

/* One device request (the request path, core/devreq.c): an EV_DEVREQ event
 * when the trace is on, audited when `d` asks for it. d NULL: provided by
 * the built-in default, or denied (`denied`) by it. */
void ev_emit_devreq(struct evsink *s, const char *device, enum req_kind kind, uint64_t sector, uint64_t bytes,
		    const struct policy_decision *d, bool denied);

/* --- the sink's owner (vmm/trace.c, tests) ---------------------------------
 * Threading: ev_emit from any number of threads, each on its own ring
 * (EV_MAX_RINGS; a thread beyond that loses its events, counted as ring
 * "overflow"). A thread's first event allocates its ring (ring_size
 * records, once); every later one allocates nothing. Everything below from one owner thread at a time, except
 * ev_drain, which has one caller (the writer) and runs concurrently with
 * the producers. */
#define EV_MAX_RINGS 128
#define EV_DEFAULT_RING 4096            /* records per ring */
#define EV_DEFAULT_WINDOW_NS 1000000000 /* audit coalescing window */
#define EV_PENDING 4                    /* distinct audit events coalesced at once, per ring */
#define EV_AUDIT_MAX_PER_WINDOW 1024    /* audit records per ring per window; more are counted as lost */

struct evsink_config {
	struct vclock clock;  /* t is mono_ns since ev_sink_mark_start() */
	unsigned ring_size;   /* a power of two >= 2; 0: EV_DEFAULT_RING */
	uint64_t window_ns;   /* 0: EV_DEFAULT_WINDOW_NS */
};

struct evsink *ev_sink_new(const struct evsink_config *c);
/* Not while a producer may still emit. */
void ev_sink_free(struct evsink *s);
/* The VM starts now: t counts from here. Before any producer emits. */
void ev_sink_mark_start(struct evsink *s);
/* ns since the start, on the sink's clock. */
uint64_t ev_sink_now(const struct evsink *s);

void ev_set_trace(struct evsink *s, bool on);
void ev_set_audit(struct evsink *s, bool on);
bool ev_trace_on(const struct evsink *s);
bool ev_audit_on(const struct evsink *s);

/* What the trace keeps (the audit log is never filtered). Each clause that
 * is present must match: a kind in `kinds`, a device in `devices` (an
 * unclaimed access matches "unclaimed"), an addr in one of the ranges, a
 * vCPU in `vcpus` (an event of no vCPU, a device request, matches none). */
#define EVF_MAX_DEVICES 16
#define EVF_MAX_RANGES 16
#define EVF_MAX_PUBLISH 1024 /* filter changes per sink: old filters are kept until ev_sink_free */

struct evfilter {
	uint32_t kinds;  /* bit per enum vevent_kind; 0: every kind */
	unsigned ndevices;
	char devices[EVF_MAX_DEVICES][64 + 1];
	unsigned nranges;
	struct {
		uint64_t first, last; /* inclusive */
	} ranges[EVF_MAX_RANGES];
	bool has_vcpus;
	uint64_t vcpus; /* bit per vCPU 0..63 */
};

/* Publishes a copy of f (NULL: no filter) for the next events. 0, or -1
 * when out of memory or EVF_MAX_PUBLISH filters were published already. */
int ev_set_filter(struct evsink *s, const struct evfilter *f);
/* Whether an event passes f (NULL passes everything). */
bool ev_filter_match(const struct evfilter *f, const struct vevent *e);

struct ev_drain_ops {
	/* One record; e->dest says for which output(s). */
	void (*record)(void *ctx, const struct vevent *e);
	/* `ring` dropped `count` more events meant for `dest` since the last call. */
	void (*lost)(void *ctx, uint64_t t, const char *ring, unsigned dest, uint64_t count);
};

/* Reads every ring, then the coalesced audit records whose window has
 * passed (final: all of them — call it so once every producer has
 * stopped, and nothing is lost at the end). Returns the records handed out. */
size_t ev_drain(struct evsink *s, bool final, const struct ev_drain_ops *ops, void *ctx);
/* Some ring is at least half full: drain soon. */
bool ev_sink_needs_drain(const struct evsink *s);

struct ev_stats {
	uint64_t events;    /* records pushed into rings */
	uint64_t lost;      /* events dropped (full ring, no ring) */
	uint64_t coalesced; /* audit events folded into an earlier record */
	unsigned rings;
};
void ev_sink_stats(const struct evsink *s, struct ev_stats *st);

/* Names for records. */
const char *ev_kind_name(enum vevent_kind k);

#endif
