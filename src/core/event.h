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
};

struct evsink; /* vmm/trace.c makes it; the core only emits */

/* Is anything listening at all? One relaxed load; false when the sink is
 * NULL. `audit` is whether the decision asks for an audit record. */
bool ev_wanted(const struct evsink *s, bool audit);
/* Hands one event to the calling thread's ring (registering it on first
 * use); filters (kind, device, address range, vCPU) are applied here, so a
 * filtered-out event costs only the test. Never blocks. */
void ev_emit(struct evsink *s, struct vevent *e);

#endif
