/* net_ct — see net_ct.h. Two chained hash tables over one pool (chain 0 by
 * key, chain 1 by rkey), a doubly linked LRU list, a free list. */
#include "devices/net_ct.h"

#include <stdlib.h>
#include <string.h>

#define NBUCKETS (2 * NET_CT_MAX) /* a power of two */

/* Idle timeouts: a connection being opened or closed goes quickly, an open
 * TCP connection may sit idle for long (slirp keeps its socket). */
#define S		1000000000ull
/* Never shorter than slirp keeps the host socket of such a flow, since a
 * host connection counts until its flow is forgotten: a connect() it waits
 * for 75 s (TCPTV_KEEP_INIT), TIME_WAIT 10 s (2 MSL), an idle UDP socket
 * 240 s (SO_EXPIRE), a DNS one 10 s (SO_EXPIREFAST). */
#define TMO_TCP_NEW	(90 * S)
#define TMO_TCP_EST	(7200 * S)
#define TMO_TCP_CLOSING (15 * S)
#define TMO_UDP		(250 * S)
#define TMO_DNS		(15 * S) /* one question, one answer: as slirp's own DNS sockets */
#define TMO_OTHER	(30 * S)

struct net_ct {
	struct net_ct_entry e[NET_CT_MAX];
	bool used[NET_CT_MAX];
	uint32_t bucket[2][NBUCKETS];
	uint32_t lru_head, lru_tail; /* head: most recent */
	uint32_t free_head;	     /* through next[0] */
	uint32_t fresh;		     /* e[fresh..NET_CT_MAX) never used yet: not on the free list */
	unsigned count, host_conns;
	uint64_t evicted;
};

static uint32_t hash(const struct net_ct_key *k)
{
	uint64_t h = (uint64_t)k->gip << 32 | k->rip;
	h ^= ((uint64_t)k->gport << 24 | (uint64_t)k->rport << 8 | k->proto) * 0x9e3779b97f4a7c15ull;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (uint32_t)h & (NBUCKETS - 1);
}

static bool same(const struct net_ct_key *a, const struct net_ct_key *b)
{
	return a->gip == b->gip && a->rip == b->rip && a->gport == b->gport && a->rport == b->rport &&
	       a->proto == b->proto;
}

struct net_ct *net_ct_new(void)
{
	struct net_ct *ct = calloc(1, sizeof(*ct));

	if (!ct)
		return NULL;
	memset(ct->bucket, 0xff, sizeof(ct->bucket));
	ct->lru_head = ct->lru_tail = NET_CT_NONE;
	/* Entries are taken from e[fresh++] until the pool has been used once:
	 * no free list threaded through all of them here, which touched the
	 * whole pool (RSS every net device paid, and fuzz_net's cost per run). */
	ct->free_head = NET_CT_NONE;
	ct->fresh = 0;
	return ct;
}

void net_ct_free(struct net_ct *ct)
{
	free(ct);
}

static const struct net_ct_key *key_of(const struct net_ct_entry *e, int chain)
{
	return chain ? &e->rkey : &e->key;
}

static uint32_t lookup(const struct net_ct *ct, const struct net_ct_key *k, int chain)
{
	for (uint32_t i = ct->bucket[chain][hash(k)]; i != NET_CT_NONE; i = ct->e[i].next[chain])
		if (same(key_of(&ct->e[i], chain), k))
			return i;
	return NET_CT_NONE;
}

struct net_ct_entry *net_ct_find(struct net_ct *ct, const struct net_ct_key *k, bool ingress)
{
	uint32_t i = lookup(ct, k, ingress);
	return i == NET_CT_NONE ? NULL : &ct->e[i];
}

static void unchain(struct net_ct *ct, uint32_t idx, int chain)
{
	uint32_t *p = &ct->bucket[chain][hash(key_of(&ct->e[idx], chain))];

	while (*p != NET_CT_NONE && *p != idx)
		p = &ct->e[*p].next[chain];
	if (*p == idx)
		*p = ct->e[idx].next[chain];
}

static void lru_unlink(struct net_ct *ct, uint32_t idx)
{
	struct net_ct_entry *e = &ct->e[idx];

	if (e->prev_lru != NET_CT_NONE)
		ct->e[e->prev_lru].next_lru = e->next_lru;
	else
		ct->lru_head = e->next_lru;
	if (e->next_lru != NET_CT_NONE)
		ct->e[e->next_lru].prev_lru = e->prev_lru;
	else
		ct->lru_tail = e->prev_lru;
}

static void lru_push(struct net_ct *ct, uint32_t idx)
{
	struct net_ct_entry *e = &ct->e[idx];

	e->prev_lru = NET_CT_NONE;
	e->next_lru = ct->lru_head;
	if (ct->lru_head != NET_CT_NONE)
		ct->e[ct->lru_head].prev_lru = idx;
	ct->lru_head = idx;
	if (ct->lru_tail == NET_CT_NONE)
		ct->lru_tail = idx;
}

void net_ct_del(struct net_ct *ct, struct net_ct_entry *e)
{
	uint32_t idx = (uint32_t)(e - ct->e);

	if (idx >= NET_CT_MAX || !ct->used[idx])
		return;
	unchain(ct, idx, 0);
	unchain(ct, idx, 1);
	lru_unlink(ct, idx);
	if (e->host_conn)
		ct->host_conns--;
	ct->used[idx] = false;
	ct->count--;
	e->next[0] = ct->free_head;
	ct->free_head = idx;
}

struct net_ct_entry *net_ct_add(struct net_ct *ct, const struct net_ct_key *key,
				const struct net_ct_key *rkey, uint64_t now_ns)
{
	if (lookup(ct, rkey, 1) != NET_CT_NONE || lookup(ct, key, 0) != NET_CT_NONE)
		return NULL;
	if (ct->free_head == NET_CT_NONE && ct->fresh < NET_CT_MAX) {
		ct->e[ct->fresh].next[0] = NET_CT_NONE;
		ct->free_head = ct->fresh++;
	}
	if (ct->free_head == NET_CT_NONE) {
		/* Full: the least recently used flow that holds no host
		 * connection goes. One that holds one never does: slirp keeps
		 * its socket, and forgetting it would let the guest past the
		 * cap. The walk passes at most the host connections (the cap);
		 * a table of nothing else takes no new flow. */
		uint32_t victim = NET_CT_NONE;
		for (uint32_t i = ct->lru_tail; i != NET_CT_NONE; i = ct->e[i].prev_lru)
			if (!ct->e[i].host_conn) {
				victim = i;
				break;
			}
		if (victim == NET_CT_NONE)
			return NULL;
		net_ct_del(ct, &ct->e[victim]);
		ct->evicted++;
	}
	uint32_t idx = ct->free_head;
	struct net_ct_entry *e = &ct->e[idx];
	ct->free_head = e->next[0];
	memset(e, 0, sizeof(*e));
	e->key = *key;
	e->rkey = *rkey;
	e->rule = -1;
	e->last_ns = now_ns;
	uint32_t h0 = hash(key), h1 = hash(rkey);
	e->next[0] = ct->bucket[0][h0];
	ct->bucket[0][h0] = idx;
	e->next[1] = ct->bucket[1][h1];
	ct->bucket[1][h1] = idx;
	lru_push(ct, idx);
	ct->used[idx] = true;
	ct->count++;
	return e;
}

void net_ct_touch(struct net_ct *ct, struct net_ct_entry *e, uint64_t now_ns)
{
	uint32_t idx = (uint32_t)(e - ct->e);

	e->last_ns = now_ns;
	if (ct->lru_head != idx) {
		lru_unlink(ct, idx);
		lru_push(ct, idx);
	}
}

uint64_t net_ct_timeout(const struct net_ct_entry *e)
{
	if (e->key.proto == 6) {
		if (e->state == CT_ESTABLISHED)
			return TMO_TCP_EST;
		return e->state == CT_CLOSING ? TMO_TCP_CLOSING : TMO_TCP_NEW;
	}
	if (e->key.proto == 17)
		return e->key.rport == 53 ? TMO_DNS : TMO_UDP;
	return TMO_OTHER;
}

static bool expired(const struct net_ct_entry *e, uint64_t now_ns)
{
	return now_ns > e->last_ns && now_ns - e->last_ns > net_ct_timeout(e);
}

void net_ct_expire(struct net_ct *ct, uint64_t now_ns, unsigned budget)
{
	if (!budget) {
		for (uint32_t i = 0; i < NET_CT_MAX; i++)
			if (ct->used[i] && expired(&ct->e[i], now_ns))
				net_ct_del(ct, &ct->e[i]);
		return;
	}
	/* From the idle end: stop at the first one still alive. */
	while (budget-- && ct->lru_tail != NET_CT_NONE && expired(&ct->e[ct->lru_tail], now_ns))
		net_ct_del(ct, &ct->e[ct->lru_tail]);
}

unsigned net_ct_count(const struct net_ct *ct)
{
	return ct->count;
}

unsigned net_ct_host_conns(const struct net_ct *ct)
{
	return ct->host_conns;
}

void net_ct_set_host_conn(struct net_ct *ct, struct net_ct_entry *e, bool on)
{
	if (e->host_conn == on)
		return;
	e->host_conn = on;
	if (on)
		ct->host_conns++;
	else
		ct->host_conns--;
}

uint64_t net_ct_evicted(const struct net_ct *ct)
{
	return ct->evicted;
}
