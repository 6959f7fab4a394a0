/* devreq — the request path of device models: every request a device takes
 * from the guest (a virtqueue chain: a disk read, a packet, a vsock message)
 * passes through dev_request(), which counts it in the monitor and asks the
 * policy, exactly as exits pass through exit_dispatch(). Lock-free: devices
 * call it from their own threads. */
#ifndef VIGIL_CORE_DEVREQ_H
#define VIGIL_CORE_DEVREQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct policy_slot;
struct policy_decision;
struct evsink;

enum req_kind { REQ_READ, REQ_WRITE, REQ_FLUSH, REQ_OTHER };

struct dev_stats {
	const char *name;
	_Atomic uint64_t requests;
	_Atomic uint64_t bytes;
	_Atomic uint64_t errors; /* malformed requests, host I/O errors */
	_Atomic uint64_t denied; /* refused by the policy */
};

/* What a device holds instead of the VM's monitor and policy. */
struct dev_gate {
	struct dev_stats *stats;
	struct policy_slot *policy; /* the VM's policy in force */
	const char *id;             /* the device's registry id (drive_id, iface_id...) */
	bool read_only;             /* the policy denies REQ_WRITE */
	struct evsink *ev;          /* the VM's trace and audit sink (core/event.h), or NULL */
};

/* Counts one request of `bytes` and returns whether the policy provides it;
 * a denied request must be completed with an error the guest can see.
 * Traced (one EV_DEVREQ event, no sector) when the trace is on. */
bool dev_request(const struct dev_gate *g, enum req_kind kind, uint64_t bytes);

/* A disk request on [sector, sector + nsectors) of the gate's drive: counts
 * it, asks the policy (policy_decide_disk), emits its EV_DEVREQ record when
 * someone listens (addr = sector, extra = nsectors, value = bytes) and
 * returns what happens (policy_effect: provide, redirect or deny; a denied
 * request must complete with an error and touch nothing). *out (may be
 * NULL) gets the decision with `r` cleared: the rule is only valid while
 * deciding. For a redirect, the rule's overlay path is copied into
 * overlay[overlay_len] (may be NULL; "" when the path does not fit). */
int dev_request_disk(const struct dev_gate *g, enum req_kind kind, uint64_t sector, uint64_t nsectors,
		     uint64_t bytes, struct policy_decision *out, char *overlay, size_t overlay_len);

/* A vsock connection decision (policy_decide_vsock) for the gate's device:
 * counted as denied when refused, EV_VSOCK emitted when someone listens
 * (addr = port, extra = the port used, proto = direction). Returns the
 * effect; *to_port gets the port to use (the redirect target, else port). */
int dev_decide_vsock(const struct dev_gate *g, int dir, uint32_t port, uint32_t *to_port);

/* Counts a request the device could not carry out (bad request, host error). */
static inline void dev_request_error(const struct dev_gate *g)
{
	if (g && g->stats)
		atomic_fetch_add_explicit(&g->stats->errors, 1, memory_order_relaxed);
}

#endif
