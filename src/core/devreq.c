#include "core/devreq.h"

#include "core/policy.h"

bool dev_request(const struct dev_gate *g, enum req_kind kind, uint64_t bytes)
{
	if (!g || !g->stats)
		return true;
	atomic_fetch_add_explicit(&g->stats->requests, 1, memory_order_relaxed);
	if (policy_decide_request(g->policy, kind, g->read_only) == POLICY_DENY) {
		atomic_fetch_add_explicit(&g->stats->denied, 1, memory_order_relaxed);
		return false;
	}
	atomic_fetch_add_explicit(&g->stats->bytes, bytes, memory_order_relaxed);
	return true;
}
