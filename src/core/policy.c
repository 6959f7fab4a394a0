#include "core/policy.h"

#include "core/bus.h"
#include "core/devreq.h"

enum policy_verdict policy_decide(const struct policy *p, enum policy_space space, uint64_t addr,
				  uint32_t len, bool write, const struct bus_range *claimed)
{
	if (!claimed)
		return POLICY_DENY;
	if (space == POLICY_PIO) {
		for (unsigned i = 0; i < p->nr_deny_ports; i++)
			if (addr <= p->deny_ports[i].last && addr + len - 1 >= p->deny_ports[i].first)
				return POLICY_DENY;
	}
	return POLICY_ALLOW;
}

enum policy_verdict policy_decide_request(const struct policy *p, int req_kind, bool read_only)
{
	(void)p;
	return read_only && req_kind == REQ_WRITE ? POLICY_DENY : POLICY_ALLOW;
}
