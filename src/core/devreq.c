#include "core/devreq.h"

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
