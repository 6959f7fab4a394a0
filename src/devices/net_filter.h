/* net_filter — the network policy (issue 7, resource `net`) between a
 * virtio-net device and its host backend, for TAP and user-mode networking
 * alike: a `struct net_backend` over the real one (host_net_new() puts it
 * in), so every frame either way passes it.
 *
 * Per flow, not per packet: a connection-tracking table (devices/net_ct.h)
 * holds the flows the policy let through, so an established flow costs a
 * hash lookup; the first packet of a new flow asks policy_decide_net()
 * once, with the remote end (egress: the destination, ingress: the source)
 * and the direction of whoever opened it. Replies belong to their flow, and
 * so do ICMP errors about its packets (not for a redirected flow). A TCP
 * connection first seen mid-stream is decided in the direction of that
 * packet (user mode: a guest segment the egress rules refuse is taken as
 * inbound if the ingress rules provide that, e.g. an old hostfwd session).
 * When the policy in force changes, each flow is decided again on its next
 * packet.
 *
 *  - deny: the packet is dropped; a refused TCP segment from the guest is
 *    answered with a TCP reset (so connect() fails at once with
 *    ECONNREFUSED); UDP and ICMP are just dropped.
 *  - redirect (user-mode only): the flow's egress packets go to the rule's
 *    `to` (127.0.0.1 is the host's loopback, 10.0.2.2 as slirp sees it),
 *    and the replies come back with the original address — addresses and
 *    ports rewritten with incremental checksum updates. On TAP a redirect
 *    rule is refused by net_filter_check() and, should one reach the
 *    filter, acts as a deny.
 *  - permissive mode: everything is provided, every decision audited.
 *  - user-mode host limits (always on user-mode networking): at most
 *    max_host_connections flows the guest opened (slirp's host sockets) at
 *    once, beyond that new ones are refused as by a deny (rule "limits");
 *    and the host itself — every address of slirp's network but the
 *    guest's (10.0.2.2 is the host's 127.0.0.1, and so is any other unused
 *    one), DNS on 10.0.2.3 apart from port 53, and 0.0.0.0/8, 127.0.0.0/8 —
 *    is reached only where a provide rule naming it (a "dst" other than
 *    0.0.0.0/0) or a redirect says so; else refused (rule "host-loopback").
 *
 * "A net policy is in force" = the policy has a `net` rule for this
 * interface (or for every one), or sets max_host_connections. User-mode
 * networking is filtered always (its host limits hold without a policy:
 * gate->policy NULL or empty); TAP without a net policy passes frames
 * untouched (no copy, no table). When filtering: ARP passes; DHCP passes on user-mode networking; IPv6, other
 * ethertypes (VLAN tags too), IPv4 fragments, IPv4 protocols other than
 * TCP/UDP/ICMP and malformed frames are dropped (the rules speak IPv4 only).
 * Every decision of a new flow is an EV_NET event (audited as the rule
 * says; the host limits always).
 * Threading: the event thread, like every backend call. */
#ifndef VIGIL_DEVICES_NET_FILTER_H
#define VIGIL_DEVICES_NET_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/devreq.h"
#include "core/policy.h"
#include "devices/net_backend.h"

struct net_filter_cfg {
	bool user_mode; /* libslirp: redirects and the host limits apply */
	/* user mode's addresses, host byte order (net_slirp.h) */
	uint32_t net, mask;  /* 10.0.2.0/24 */
	uint32_t host;	     /* 10.0.2.2: the host's 127.0.0.1 */
	uint32_t dns;	     /* 10.0.2.3 */
	uint32_t guest;	     /* 10.0.2.15 */
	struct vclock clock; /* flow timeouts */
};

/* A backend over `inner` that applies the policy of gate->policy (NULL:
 * none; frames pass, but on user mode the host limits hold). Owns inner
 * from here on (frees it with its own free, also when it fails: then NULL
 * and a line in err). */
struct net_backend *net_filter_new(struct net_backend *inner, const struct dev_gate *gate,
				   const struct net_filter_cfg *cfg, char *err, size_t errlen);

struct net_filter_stats {
	uint64_t flows;	       /* new flows decided */
	uint64_t denied;       /* packets dropped by a decision */
	uint64_t resets;       /* TCP resets sent to the guest */
	uint64_t redirected;   /* flows redirected */
	uint64_t limited;      /* flows refused by the host-connection cap */
	uint64_t host_refused; /* flows to the host refused (no rule names it) */
	uint64_t dropped;      /* malformed, fragments, IPv6, other protocols */
	uint64_t evicted;      /* flows pushed out of the full table */
	unsigned open_flows, host_conns;
};
/* false when b is not a filter. */
bool net_filter_get_stats(const struct net_backend *b, struct net_filter_stats *st);

/* Whether spec's net rules can be applied to interface `iface` (a TAP
 * interface when !user_mode): a redirect needs user-mode networking, is
 * for egress, and can reach only 127.0.0.1 of the host's loopback. Call it
 * for every interface before a policy is installed. 0, or -1 with one line
 * naming the rule and the field. */
int net_filter_check(const struct policy_spec *spec, const char *iface, bool user_mode, char *err,
		     size_t errlen);

#endif
