/* net_policy — whether a policy's `net` rules fit the VM's interfaces: a
 * redirect needs user-mode networking (devices/net_filter.h). Called
 * wherever a policy is about to be installed (the builder, PUT /policy on
 * a running VM), so a policy that cannot be applied is refused as a whole
 * and the old one stays. */
#ifndef VIGIL_VMM_NET_POLICY_H
#define VIGIL_VMM_NET_POLICY_H

#include <stddef.h>

#include "core/policy.h"
#include "vmm/config.h"

/* 0, or -1 with one line naming the rule, the field and the interface. */
int net_policy_check(const struct vm_config *c, const struct policy_spec *s, char *err, size_t errlen);

#endif
