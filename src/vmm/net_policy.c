/* net_policy — see net_policy.h. */
#include "vmm/net_policy.h"

#include "devices/net_filter.h"

int net_policy_check(const struct vm_config *c, const struct policy_spec *s, char *err, size_t errlen)
{
	for (unsigned i = 0; i < c->nr_nets; i++)
		if (net_filter_check(s, c->nets[i].iface_id, c->nets[i].vigil_user, err, errlen) < 0)
			return -1;
	return 0;
}
