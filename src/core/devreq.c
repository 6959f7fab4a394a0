#include "core/devreq.h"

#include <string.h>

#include "core/event.h"
#include "core/policy.h"

/* Counting and deciding are apart: a gate without counters still asks the
 * policy (it used to provide everything, a write to a read-only disk too). */
bool dev_request(const struct dev_gate *g, enum req_kind kind, uint64_t bytes)
{
	if (!g)
		return false;
	struct dev_stats *st = g->stats;
	if (st)
		atomic_fetch_add_explicit(&st->requests, 1, memory_order_relaxed);
	if (g->read_only && kind == REQ_WRITE) {
		if (st)
			atomic_fetch_add_explicit(&st->denied, 1, memory_order_relaxed);
		ev_emit_devreq(g->ev, g->id, kind, EV_NO_SECTOR, bytes, NULL, true);
		return false;
	}
	if (st)
		atomic_fetch_add_explicit(&st->bytes, bytes, memory_order_relaxed);
	ev_emit_devreq(g->ev, g->id, kind, EV_NO_SECTOR, bytes, NULL, false);
	return true;
}

static void count_denied(const struct dev_gate *g)
{
	if (g->stats)
		atomic_fetch_add_explicit(&g->stats->denied, 1, memory_order_relaxed);
}

/* The record of one device decision; only built when someone listens. */
static void emit(const struct dev_gate *g, enum vevent_kind kind, enum policy_resource res, uint8_t sub,
		 uint64_t addr, uint64_t value, uint64_t extra, const struct policy_decision *d)
{
	if (!ev_wanted(g->ev, d->audit))
		return;
	struct vevent e = {
		.kind = (uint16_t)kind,
		.vcpu = EV_NO_VCPU,
		.write = kind == EV_DEVREQ ? sub : 0,
		.proto = kind == EV_VSOCK ? sub : 0,
		.verdict = (uint8_t)d->verdict,
		.resource = (uint8_t)res,
		.enforced = d->enforced,
		.audit = d->audit,
		.count = 1,
		.addr = addr,
		.value = value,
		.extra = extra,
		.device = g->id,
	};
	if (d->r) {
		e.has_rule = 1;
		memcpy(e.rule, d->r->id, sizeof(e.rule));
	}
	ev_emit(g->ev, &e);
}

int dev_request_disk(const struct dev_gate *g, enum req_kind kind, uint64_t sector, uint64_t nsectors,
		     uint64_t bytes, struct policy_decision *out, char *overlay, size_t overlay_len)
{
	struct policy_decision d;

	if (overlay && overlay_len)
		overlay[0] = '\0';
	if (!g) {
		if (out)
			*out = (struct policy_decision){ .verdict = POLICY_DENY, .enforced = true, .rule = -1 };
		return POLICY_DENY;
	}
	if (g->stats)
		atomic_fetch_add_explicit(&g->stats->requests, 1, memory_order_relaxed);
	if (g->policy) {
		const struct policy *p = policy_enter(g->policy);
		policy_decide_disk(p, g->id ? g->id : "", kind, sector, nsectors, g->read_only, &d);
		if (policy_effect(&d) == POLICY_REDIRECT && overlay && overlay_len && d.r && d.r->overlay) {
			size_t n = strlen(d.r->overlay);
			if (n < overlay_len)
				memcpy(overlay, d.r->overlay, n + 1);
		}
		emit(g, EV_DEVREQ, POL_RES_DISK, (uint8_t)kind, sector, bytes, nsectors, &d);
		policy_leave(g->policy);
	} else {
		/* No policy (a unit test's bare gate): the built-in defaults. */
		bool ro = g->read_only && kind == REQ_WRITE;
		d = (struct policy_decision){ .verdict = ro ? POLICY_DENY : POLICY_PROVIDE, .enforced = true,
					      .audit = ro, .rule = -1 };
		emit(g, EV_DEVREQ, POL_RES_DISK, (uint8_t)kind, sector, bytes, nsectors, &d);
	}
	d.r = NULL;
	enum policy_verdict eff = policy_effect(&d);
	if (eff == POLICY_DENY)
		count_denied(g);
	else if (g->stats)
		atomic_fetch_add_explicit(&g->stats->bytes, bytes, memory_order_relaxed);
	if (out)
		*out = d;
	return (int)eff;
}

int dev_decide_vsock(const struct dev_gate *g, int dir, uint32_t port, uint32_t *to_port)
{
	struct policy_decision d = { .verdict = POLICY_PROVIDE, .enforced = true, .rule = -1 };

	*to_port = port;
	if (!g || !g->policy)
		return POLICY_PROVIDE;
	const struct policy *p = policy_enter(g->policy);
	policy_decide_vsock(p, (enum policy_vsock_dir)dir, port, &d);
	enum policy_verdict eff = policy_effect(&d);
	if (eff == POLICY_REDIRECT && d.r)
		*to_port = d.r->to_vport;
	emit(g, EV_VSOCK, POL_RES_VSOCK, (uint8_t)dir, port, 0, eff == POLICY_REDIRECT ? *to_port : port, &d);
	policy_leave(g->policy);
	if (eff == POLICY_DENY)
		count_denied(g);
	return (int)eff;
}
