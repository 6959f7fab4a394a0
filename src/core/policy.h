/* policy — decides, for every guest access that reaches the VMM and every
 * device request, whether it is provided or denied.
 * Called only from exit_dispatch() and dev_request(); must stay allocation-
 * and syscall-free.
 * The built-in policy: an access that no device claims is denied (reads see
 * all ones, writes are dropped) and counted. */
#ifndef VIGIL_CORE_POLICY_H
#define VIGIL_CORE_POLICY_H

#include <stdbool.h>
#include <stdint.h>

struct bus_range;

enum policy_space { POLICY_PIO, POLICY_MMIO };
enum policy_verdict { POLICY_ALLOW, POLICY_DENY };

struct policy {
	/* Deny even claimed accesses to these port ranges (empty by default);
	 * the hook rules will grow here. */
	unsigned nr_deny_ports;
	struct { uint16_t first, last; } deny_ports[8];
};

/* Device requests (core/devreq.c): writes to a read-only device are denied. */
enum policy_verdict policy_decide_request(const struct policy *p, int req_kind, bool read_only);

enum policy_verdict policy_decide(const struct policy *p, enum policy_space space, uint64_t addr,
				  uint32_t len, bool write, const struct bus_range *claimed);

#endif
