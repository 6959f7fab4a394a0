/* net_ct — the connection-tracking table of the network policy
 * (devices/net_filter.c): flows by their 5-tuple as the guest sees them, so
 * that a flow asks the policy once and every later packet costs a hash
 * lookup. Bounded: a fixed pool of NET_CT_MAX entries; when it is full the
 * least recently used flow is evicted (it is decided again on its next
 * packet). Each entry is hashed under two keys: `key`, what the guest sends
 * (its address and port, the remote's), looked up for egress packets, and
 * `rkey`, what the replies carry once a redirect rewrote the remote
 * (== key without one), looked up for ingress packets. Single-threaded (the
 * event thread); no allocation after net_ct_new(). */
#ifndef VIGIL_DEVICES_NET_CT_H
#define VIGIL_DEVICES_NET_CT_H

#include <stdbool.h>
#include <stdint.h>

#define NET_CT_MAX 4096u

struct net_ct_key {
	uint32_t gip, rip;     /* guest, remote */
	uint16_t gport, rport; /* ICMP echo: gport = identifier, rport = 0 */
	uint8_t proto;
};

enum net_ct_state { CT_NEW, CT_ESTABLISHED, CT_CLOSING };

struct net_ct_entry {
	struct net_ct_key key, rkey;
	bool egress;	  /* the guest opened it */
	bool nat;	  /* redirected: egress dst -> rkey's remote */
	bool host_conn;	  /* counts toward the host-connection cap */
	uint8_t state;	  /* enum net_ct_state */
	uint8_t fins;	  /* 1: guest sent FIN, 2: remote sent FIN */
	/* User mode, TCP: what slirp has shown of its side, so that only what
	 * it takes ends a host connection (net_filter.c, track). */
	uint8_t seen;	  /* NET_CT_SEEN_* */
	uint32_t rack;	  /* the last acknowledgment number slirp sent */
	uint32_t rnext;	  /* the sequence number after slirp's last segment */
	uint32_t gsyn;	  /* the guest's SYN's sequence number + 1 */
	uint32_t gfin;	  /* the guest's FIN's sequence number + 1, awaiting slirp's ACK */
	uint64_t epoch;	  /* the policy it was decided under (net_filter.c) */
	int rule;	  /* the deciding rule's index, -1: default */
	uint64_t last_ns; /* last packet */
	/* table links (indices; NET_CT_NONE ends) */
	uint32_t next[2], prev_lru, next_lru;
};
#define NET_CT_NONE UINT32_MAX
#define NET_CT_SEEN_RACK 1  /* rack is set */
#define NET_CT_SEEN_RNEXT 2 /* rnext is set */
#define NET_CT_SEEN_GSYN 4  /* gsyn is set */
#define NET_CT_SEEN_GFIN 8  /* gfin waits for slirp's acknowledgment */
#define NET_CT_SEEN_GFIRST 16 /* slirp took the guest's FIN before it sent its own */

struct net_ct;

/* NULL when out of memory. */
struct net_ct *net_ct_new(void);
void net_ct_free(struct net_ct *ct);

/* The flow an egress packet (by key) or an ingress packet (by rkey)
 * belongs to, or NULL. */
struct net_ct_entry *net_ct_find(struct net_ct *ct, const struct net_ct_key *k, bool ingress);
/* A new flow (key, rkey: as above). Evicts the least recently used flow
 * that holds no host connection when the table is full. NULL when rkey is
 * another flow's already (two redirected flows would look the same to the
 * remote), or when every flow in a full table holds a host connection. */
struct net_ct_entry *net_ct_add(struct net_ct *ct, const struct net_ct_key *key,
				const struct net_ct_key *rkey, uint64_t now_ns);
void net_ct_del(struct net_ct *ct, struct net_ct_entry *e);
/* A packet of e: most recently used now. */
void net_ct_touch(struct net_ct *ct, struct net_ct_entry *e, uint64_t now_ns);
/* Removes flows idle longer than their timeout: up to `budget` from the
 * least recently used end (0: all of them). */
void net_ct_expire(struct net_ct *ct, uint64_t now_ns, unsigned budget);
/* How idle a flow may be (ns) before it is forgotten. */
uint64_t net_ct_timeout(const struct net_ct_entry *e);

unsigned net_ct_count(const struct net_ct *ct);
/* Flows with host_conn set (the caller sets it right after net_ct_add). */
unsigned net_ct_host_conns(const struct net_ct *ct);
void net_ct_set_host_conn(struct net_ct *ct, struct net_ct_entry *e, bool on);
uint64_t net_ct_evicted(const struct net_ct *ct);

#endif
