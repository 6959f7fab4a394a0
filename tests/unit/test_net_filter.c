/* Unit tests for the network policy: the header parser with hostile frames
 * (devices/net_pkt.c), address rewriting and resets checked against an
 * independent checksum, the flow table (devices/net_ct.c), and the filter
 * (devices/net_filter.c) over a fake backend with policies built in C:
 * allow-list, deny with reset, redirect both ways, host-loopback and the
 * connection cap, permissive mode, a live swap, TAP. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "core/policy.h"
#include "devices/net_ct.h"
#include "devices/net_filter.h"
#include "devices/net_pkt.h"
#include "devices/virtio_net.h"

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))
#define GUEST	       IP(10, 0, 2, 15)
#define HOST	       IP(10, 0, 2, 2)

static const uint8_t guest_mac[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
static const uint8_t gw_mac[6] = {0x52, 0x55, 10, 0, 2, 2};

/* ---- frames, and checksums computed the plain way ------------------------ */

static void w16(uint8_t *b, unsigned v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static void w32(uint8_t *b, uint32_t v)
{
	w16(b, v >> 16);
	w16(b + 2, v & 0xffff);
}

static unsigned r16(const uint8_t *b)
{
	return (unsigned)b[0] << 8 | b[1];
}

static uint32_t r32(const uint8_t *b)
{
	return (uint32_t)r16(b) << 16 | r16(b + 2);
}

/* One's complement sum of 16-bit words, the textbook way (no shared code
 * with net_pkt.c): returns the folded sum. */
static unsigned ref_sum(const uint8_t *b, size_t len, unsigned long acc)
{
	for (size_t i = 0; i < len; i++)
		acc += (i & 1) ? b[i] : (unsigned long)b[i] << 8;
	while (acc > 0xffff)
		acc = (acc & 0xffff) + (acc >> 16);
	return (unsigned)acc;
}

static unsigned long pseudo_sum(const uint8_t *ip, unsigned proto, size_t l4len)
{
	uint8_t ps[12];
	memcpy(ps, ip + 12, 8);
	ps[8] = 0;
	ps[9] = (uint8_t)proto;
	w16(ps + 10, (unsigned)l4len);
	return ref_sum(ps, 12, 0);
}

/* A frame's IPv4 and transport checksums verify (sum == 0xffff). */
static void assert_csums_ok(const uint8_t *f)
{
	const uint8_t *ip = f + 14;
	size_t ihl = (ip[0] & 15) * 4u, tot = r16(ip + 2);
	assert_int_equal(ref_sum(ip, ihl, 0), 0xffff);
	unsigned proto = ip[9];
	const uint8_t *l4 = ip + ihl;
	if (proto == 17 && r16(l4 + 6) == 0)
		return;
	if (proto == 6 || proto == 17)
		assert_int_equal(ref_sum(l4, tot - ihl, pseudo_sum(ip, proto, tot - ihl)), 0xffff);
}

static void fix_csums(uint8_t *f)
{
	uint8_t *ip = f + 14;
	size_t ihl = (ip[0] & 15) * 4u, tot = r16(ip + 2);
	w16(ip + 10, 0);
	w16(ip + 10, ~ref_sum(ip, ihl, 0) & 0xffff);
	uint8_t *l4 = ip + ihl;
	unsigned proto = ip[9];
	if (proto == 6 || proto == 17 || proto == 1) {
		uint8_t *c = l4 + (proto == 6 ? 16 : proto == 17 ? 6 : 2);
		w16(c, 0);
		unsigned long ps = proto == 1 ? 0 : pseudo_sum(ip, proto, tot - ihl);
		unsigned v = ~ref_sum(l4, tot - ihl, ps) & 0xffff;
		if (proto == 17 && v == 0)
			v = 0xffff;
		w16(c, v);
	}
}

static size_t eth_ip(uint8_t *f, bool from_guest, unsigned proto, uint32_t src, uint32_t dst, size_t l4len)
{
	memset(f, 0, 14 + 20 + l4len);
	memcpy(f, from_guest ? gw_mac : guest_mac, 6);
	memcpy(f + 6, from_guest ? guest_mac : gw_mac, 6);
	w16(f + 12, 0x0800);
	uint8_t *ip = f + 14;
	ip[0] = 0x45;
	w16(ip + 2, (unsigned)(20 + l4len));
	w16(ip + 4, 0x1234);
	w16(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = (uint8_t)proto;
	w32(ip + 12, src);
	w32(ip + 16, dst);
	return 14 + 20 + l4len;
}

static size_t tcp_frame(uint8_t *f, bool from_guest, uint32_t src, unsigned sport, uint32_t dst,
			unsigned dport, unsigned flags, uint32_t seq, uint32_t ack, size_t payload)
{
	size_t n = eth_ip(f, from_guest, 6, src, dst, 20 + payload);
	uint8_t *t = f + 34;
	w16(t, sport);
	w16(t + 2, dport);
	w32(t + 4, seq);
	w32(t + 8, ack);
	t[12] = 5 << 4;
	t[13] = (uint8_t)flags;
	w16(t + 14, 65535);
	for (size_t i = 0; i < payload; i++)
		t[20 + i] = (uint8_t)(i * 7 + 1);
	fix_csums(f);
	return n;
}

static size_t udp_frame(uint8_t *f, bool from_guest, uint32_t src, unsigned sport, uint32_t dst,
			unsigned dport, size_t payload)
{
	size_t n = eth_ip(f, from_guest, 17, src, dst, 8 + payload);
	uint8_t *u = f + 34;
	w16(u, sport);
	w16(u + 2, dport);
	w16(u + 4, (unsigned)(8 + payload));
	for (size_t i = 0; i < payload; i++)
		u[8 + i] = (uint8_t)(0xa5 ^ i);
	fix_csums(f);
	return n;
}

/* ---- the parser ----------------------------------------------------------- */

static void test_parse_tcp_udp_icmp(void **state)
{
	(void)state;
	uint8_t f[256];
	struct net_pkt p;

	size_t n = tcp_frame(f, true, GUEST, 40000, HOST, 8001, NET_TCP_SYN, 1000, 0, 3);
	assert_int_equal(net_pkt_parse(f, n, &p), NET_PKT_IPV4);
	assert_int_equal(p.proto, 6);
	assert_int_equal(p.src, GUEST);
	assert_int_equal(p.dst, HOST);
	assert_int_equal(p.sport, 40000);
	assert_int_equal(p.dport, 8001);
	assert_int_equal(p.tcp_flags, NET_TCP_SYN);
	assert_int_equal(p.seq, 1000);
	assert_int_equal(p.tcp_payload, 3);

	n = udp_frame(f, true, GUEST, 5353, IP(10, 0, 2, 3), 53, 10);
	assert_int_equal(net_pkt_parse(f, n, &p), NET_PKT_IPV4);
	assert_int_equal(p.dport, 53);

	n = eth_ip(f, true, 1, GUEST, IP(1, 1, 1, 1), 8);
	f[34] = 8; /* echo request */
	w16(f + 38, 0x77);
	assert_int_equal(net_pkt_parse(f, n, &p), NET_PKT_IPV4);
	assert_true(p.icmp_echo);
	assert_int_equal(p.sport, 0x77);

	/* Ethernet padding after the datagram is fine */
	n = tcp_frame(f, true, GUEST, 1, HOST, 2, NET_TCP_SYN, 0, 0, 0);
	assert_int_equal(net_pkt_parse(f, n + 6, &p), NET_PKT_IPV4);
	assert_int_equal(p.ip_end, n);
}

static void test_parse_other_ethertypes(void **state)
{
	(void)state;
	uint8_t f[64] = {0};
	struct net_pkt p;

	w16(f + 12, 0x0806);
	assert_int_equal(net_pkt_parse(f, 42, &p), NET_PKT_ARP);
	w16(f + 12, 0x86dd);
	assert_int_equal(net_pkt_parse(f, 54, &p), NET_PKT_IPV6);
	w16(f + 12, 0x8100); /* a VLAN tag: the filter drops what it cannot see into */
	assert_int_equal(net_pkt_parse(f, 60, &p), NET_PKT_OTHER);
	assert_int_equal(net_pkt_parse(f, 13, &p), NET_PKT_BAD);
	assert_int_equal(net_pkt_parse(NULL, 0, &p), NET_PKT_BAD);
}

static void test_parse_malformed(void **state)
{
	(void)state;
	uint8_t f[256], g[256];
	struct net_pkt p;
	size_t n = tcp_frame(f, true, GUEST, 40000, HOST, 80, NET_TCP_SYN, 1, 0, 0);

	/* every truncation of a good frame */
	for (size_t len = 0; len < n; len++) {
		uint8_t *c = malloc(len ? len : 1); /* exact size: ASan sees any overread */
		memcpy(c, f, len);
		assert_int_equal(net_pkt_parse(c, len, &p), NET_PKT_BAD);
		free(c);
	}
	/* bad version, IHL below 5, IHL past the frame */
	memcpy(g, f, n), g[14] = 0x65;
	assert_int_equal(net_pkt_parse(g, n, &p), NET_PKT_BAD);
	memcpy(g, f, n), g[14] = 0x44;
	assert_int_equal(net_pkt_parse(g, n, &p), NET_PKT_BAD);
	memcpy(g, f, n), g[14] = 0x4f;
	assert_int_equal(net_pkt_parse(g, n, &p), NET_PKT_BAD);
	/* total length past the frame, below the header */
	memcpy(g, f, n), w16(g + 16, (unsigned)(n - 14 + 1));
	assert_int_equal(net_pkt_parse(g, n, &p), NET_PKT_BAD);
	memcpy(g, f, n), w16(g + 16, 19);
	assert_int_equal(net_pkt_parse(g, n, &p), NET_PKT_BAD);
	/* TCP data offset below 5 or past the datagram */
	memcpy(g, f, n), g[34 + 12] = 4 << 4;
	assert_int_equal(net_pkt_parse(g, n, &p), NET_PKT_BAD);
	memcpy(g, f, n), g[34 + 12] = 6 << 4;
	assert_int_equal(net_pkt_parse(g, n, &p), NET_PKT_BAD);
	/* total length cutting the TCP header short */
	memcpy(g, f, n), w16(g + 16, 20 + 19);
	assert_int_equal(net_pkt_parse(g, n, &p), NET_PKT_BAD);
	/* fragments: more-fragments, or an offset */
	memcpy(g, f, n), w16(g + 20, 0x2000);
	assert_int_equal(net_pkt_parse(g, n, &p), NET_PKT_FRAG);
	memcpy(g, f, n), w16(g + 20, 0x0001);
	assert_int_equal(net_pkt_parse(g, n, &p), NET_PKT_FRAG);
	memcpy(g, f, n), w16(g + 20, 0x4000); /* DF alone is no fragment */
	assert_int_equal(net_pkt_parse(g, n, &p), NET_PKT_IPV4);
	/* UDP length below 8 or past the datagram */
	n = udp_frame(f, true, GUEST, 1, HOST, 2, 4);
	memcpy(g, f, n), w16(g + 38, 7);
	assert_int_equal(net_pkt_parse(g, n, &p), NET_PKT_BAD);
	memcpy(g, f, n), w16(g + 38, 13);
	assert_int_equal(net_pkt_parse(g, n, &p), NET_PKT_BAD);
	/* ICMP shorter than its 8-byte header */
	n = eth_ip(f, true, 1, GUEST, HOST, 7);
	assert_int_equal(net_pkt_parse(f, n, &p), NET_PKT_BAD);
	/* random garbage behind an IPv4 ethertype: never a crash */
	srand(7);
	for (int i = 0; i < 20000; i++) {
		size_t len = (size_t)(rand() % 80);
		uint8_t *c = malloc(len ? len : 1);
		for (size_t k = 0; k < len; k++)
			c[k] = (uint8_t)rand();
		if (len > 14) {
			c[12] = 8, c[13] = 0;
			c[14] = (uint8_t)(0x40 | (c[14] & 15));
		}
		net_pkt_parse(c, len, &p);
		free(c);
	}
}

/* ---- rewriting and resets --------------------------------------------------- */

static void test_rewrite_keeps_checksums(void **state)
{
	(void)state;
	uint8_t f[256];
	struct net_pkt p;

	for (int i = 0; i < 200; i++) {
		uint32_t dst = (uint32_t)rand() * 2654435761u, nip = (uint32_t)rand() * 40503u;
		unsigned dport = (unsigned)rand() & 0xffff, nport = (unsigned)rand() & 0xffff;
		size_t n = tcp_frame(f, true, GUEST, 40000 + (unsigned)i, dst, dport, NET_TCP_ACK,
				     (uint32_t)rand(), (uint32_t)rand(), (size_t)(i % 9));
		net_pkt_parse(f, n, &p);
		net_pkt_rewrite(f, &p, true, nip, (uint16_t)nport);
		assert_int_equal(r32(f + 30), nip);
		assert_int_equal(r16(f + 36), nport);
		assert_csums_ok(f);
		/* and the source way (a reply) */
		net_pkt_parse(f, n, &p);
		net_pkt_rewrite(f, &p, false, dst, (uint16_t)dport);
		assert_int_equal(r32(f + 26), dst);
		assert_int_equal(r16(f + 34), dport);
		assert_csums_ok(f);

		n = udp_frame(f, true, GUEST, 999, dst, dport, (size_t)(i % 5));
		net_pkt_parse(f, n, &p);
		net_pkt_rewrite(f, &p, true, nip, (uint16_t)nport);
		assert_csums_ok(f);
		assert_int_not_equal(r16(f + 40), 0);
	}
	/* a UDP datagram without a checksum keeps none */
	size_t n = udp_frame(f, true, GUEST, 999, HOST, 53, 4);
	w16(f + 40, 0);
	net_pkt_parse(f, n, &p);
	net_pkt_rewrite(f, &p, true, IP(1, 2, 3, 4), 5353);
	assert_int_equal(r16(f + 40), 0);
	assert_int_equal(ref_sum(f + 14, 20, 0), 0xffff);
}

static void test_rst_answers_syn_and_ack(void **state)
{
	(void)state;
	uint8_t f[128], r[NET_RST_LEN];
	struct net_pkt p, q;

	size_t n = tcp_frame(f, true, GUEST, 40000, HOST, 8005, NET_TCP_SYN, 0xfffffff0u, 0, 0);
	net_pkt_parse(f, n, &p);
	assert_int_equal(net_pkt_build_rst(r, f, &p), NET_RST_LEN);
	assert_memory_equal(r, guest_mac, 6);
	assert_memory_equal(r + 6, gw_mac, 6);
	assert_int_equal(net_pkt_parse(r, sizeof(r), &q), NET_PKT_IPV4);
	assert_int_equal(q.src, HOST);
	assert_int_equal(q.dst, GUEST);
	assert_int_equal(q.sport, 8005);
	assert_int_equal(q.dport, 40000);
	assert_int_equal(q.tcp_flags, NET_TCP_RST | NET_TCP_ACK);
	assert_int_equal(q.ack, 0xfffffff1u);
	assert_csums_ok(r);

	/* a segment with ACK and data: RST with the sequence it acknowledged */
	n = tcp_frame(f, true, GUEST, 40000, HOST, 8005, NET_TCP_ACK | NET_TCP_FIN, 5, 777, 10);
	net_pkt_parse(f, n, &p);
	net_pkt_build_rst(r, f, &p);
	net_pkt_parse(r, sizeof(r), &q);
	assert_int_equal(q.tcp_flags, NET_TCP_RST);
	assert_int_equal(q.seq, 777);
	assert_csums_ok(r);
}

/* ---- the flow table ------------------------------------------------------------ */

static struct net_ct_key key(uint32_t n)
{
	return (struct net_ct_key){
	    .gip = GUEST, .gport = (uint16_t)n, .rip = IP(1, 2, 3, 4) + (n >> 16), .rport = 80, .proto = 6};
}

static void test_ct_find_evict_expire(void **state)
{
	(void)state;
	struct net_ct *ct = net_ct_new();
	struct net_ct_key k = key(1), rk = k;
	rk.rip = HOST, rk.rport = 8002;

	struct net_ct_entry *e = net_ct_add(ct, &k, &rk, 0);
	assert_non_null(e);
	assert_ptr_equal(net_ct_find(ct, &k, false), e);
	assert_ptr_equal(net_ct_find(ct, &rk, true), e);
	assert_null(net_ct_find(ct, &k, true)); /* replies come from the redirect target */
	/* another flow that would look the same to the target: refused */
	struct net_ct_key k2 = key(1);
	k2.rip = IP(9, 9, 9, 9);
	assert_null(net_ct_add(ct, &k2, &rk, 0));
	net_ct_del(ct, e);
	assert_null(net_ct_find(ct, &k, false));
	assert_int_equal(net_ct_count(ct), 0);

	/* full: the least recently used goes */
	for (uint32_t i = 0; i < NET_CT_MAX; i++) {
		struct net_ct_key ki = key(i);
		assert_non_null(net_ct_add(ct, &ki, &ki, i));
	}
	struct net_ct_key k0 = key(0);
	net_ct_touch(ct, net_ct_find(ct, &k0, false), NET_CT_MAX); /* 0 used again: 1 is the oldest now */
	struct net_ct_key kn = key(NET_CT_MAX);
	assert_non_null(net_ct_add(ct, &kn, &kn, NET_CT_MAX));
	assert_int_equal(net_ct_count(ct), NET_CT_MAX);
	assert_int_equal(net_ct_evicted(ct), 1);
	struct net_ct_key k1 = key(1);
	assert_null(net_ct_find(ct, &k1, false));
	assert_non_null(net_ct_find(ct, &k0, false));

	/* full of host connections but one: that one goes, not the oldest */
	struct net_ct_key kx = key(5);
	struct net_ct_entry *ex = net_ct_find(ct, &kx, false);
	for (uint32_t i = 0; i <= NET_CT_MAX; i++) {
		struct net_ct_key ki = key(i);
		struct net_ct_entry *ei = net_ct_find(ct, &ki, false);
		if (ei && ei != ex)
			net_ct_set_host_conn(ct, ei, true);
	}
	struct net_ct_key ky = key(NET_CT_MAX + 1);
	assert_non_null(net_ct_add(ct, &ky, &ky, NET_CT_MAX + 1));
	assert_null(net_ct_find(ct, &kx, false));
	struct net_ct_key kold = key(2); /* the oldest, a host connection: kept */
	assert_non_null(net_ct_find(ct, &kold, false));
	assert_int_equal(net_ct_host_conns(ct), NET_CT_MAX - 1);

	/* idle flows time out (a TCP flow being opened: 90 s, longer than
	 * slirp waits for a connect()) */
	net_ct_expire(ct, 89ull * 1000000000, 0);
	assert_int_equal(net_ct_count(ct), NET_CT_MAX);
	net_ct_expire(ct, 91ull * 1000000000, 0);
	assert_int_equal(net_ct_count(ct), 0);
	net_ct_free(ct);
}

/* ---- the filter over a fake backend ------------------------------------------ */

struct fake {
	struct net_backend be;
	unsigned sent;
	uint8_t last[VIRTIO_NET_HDR_LEN + 2048];
	size_t last_len;
	unsigned nq;
	uint8_t q[8][VIRTIO_NET_HDR_LEN + 2048];
	size_t qlen[8];
	bool freed;
};

static int fake_send(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
	struct fake *f = (struct fake *)b;
	size_t len = 0;
	for (int i = 0; i < iovcnt; i++) {
		memcpy(f->last + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	f->last_len = len;
	f->sent++;
	return 0;
}

static ssize_t fake_recv(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
	struct fake *f = (struct fake *)b;
	if (!f->nq)
		return -EAGAIN;
	size_t len = f->qlen[0];
	assert_int_equal(iovcnt, 1);
	assert_true(iov[0].iov_len >= len);
	memcpy(iov[0].iov_base, f->q[0], len);
	f->nq--;
	memmove(f->q[0], f->q[1], sizeof(f->q[0]) * f->nq);
	memmove(f->qlen, f->qlen + 1, sizeof(f->qlen[0]) * f->nq);
	return (ssize_t)len;
}

static void fake_rx_enable(struct net_backend *b, bool on)
{
	(void)b, (void)on;
}

static void fake_free(struct net_backend *b)
{
	((struct fake *)b)->freed = true;
}

static const struct net_backend_ops fake_ops = {fake_send, fake_recv, fake_rx_enable, NULL, fake_free};

static uint64_t now_ns;
static uint64_t fake_mono(void *ctx)
{
	(void)ctx;
	return now_ns;
}

struct env {
	struct fake fk;
	struct policy_slot slot;
	struct dev_stats st;
	struct net_backend *nf;
	uint8_t rx[VIRTIO_NET_HDR_LEN + 2048];
};

static struct policy_rule net_rule(const char *id, enum policy_verdict v, enum policy_proto proto,
				   uint32_t dst, unsigned prefix, unsigned port)
{
	struct policy_rule r = {.resource = POL_RES_NET,
				.verdict = v,
				.dir = POL_DIR_EGRESS,
				.proto = proto,
				.dst_ip = dst,
				.dst_prefix = prefix,
				.audit = v != POLICY_PROVIDE};
	snprintf(r.id, sizeof(r.id), "%s", id);
	if (port) {
		r.nranges = 1;
		r.ranges = malloc(sizeof(*r.ranges));
		r.ranges[0] = (struct policy_range){port, port};
	}
	return r;
}

static struct policy *compile(struct policy_rule *rules, unsigned n, enum policy_mode mode, unsigned cap)
{
	struct policy_spec s = {.mode = mode, .nrules = n, .rules = rules, .max_host_connections = cap};
	char err[200];
	struct policy *p = policy_compile(&s, err, sizeof(err));
	if (!p)
		fail_msg("compile: %s", err);
	for (unsigned i = 0; i < n; i++)
		free(rules[i].ranges);
	return p;
}

/* The lab's allow-list: 8001 provided, 8003 redirected to 127.0.0.1:8002,
 * everything else denied. */
static struct policy *allow_list(void)
{
	struct policy_rule r[3] = {
	    net_rule("web", POLICY_PROVIDE, POL_PROTO_TCP, HOST, 32, 8001),
	    net_rule("moved", POLICY_REDIRECT, POL_PROTO_TCP, HOST, 32, 8003),
	    net_rule("rest", POLICY_DENY, POL_PROTO_ANY, 0, 0, 0),
	};
	r[1].to_ip = 0x7f000001;
	r[1].to_port = 8002;
	return compile(r, 3, POLICY_ENFORCE, 0);
}

static struct evsink *sink; /* set by the audit test */

static struct env *env_new(struct policy *p, bool user)
{
	struct env *e = calloc(1, sizeof(*e));
	e->fk.be.ops = &fake_ops;
	e->fk.be.name = "fake";
	e->fk.be.vnet_hdr = !user;
	policy_slot_init(&e->slot, p ? p : policy_default());
	struct dev_gate g = {.stats = &e->st, .policy = &e->slot, .id = "net1", .ev = sink};
	struct net_filter_cfg c = {.user_mode = user,
				   .net = IP(10, 0, 2, 0),
				   .mask = 0xffffff00,
				   .host = HOST,
				   .dns = IP(10, 0, 2, 3),
				   .guest = GUEST,
				   .clock = {.mono_ns = fake_mono}};
	char err[100];
	e->nf = net_filter_new(&e->fk.be, &g, &c, err, sizeof(err));
	assert_non_null(e->nf);
	now_ns = 1;
	return e;
}

static void env_free(struct env *e)
{
	e->nf->ops->free(e->nf);
	assert_true(e->fk.freed);
	policy_slot_fini(&e->slot);
	free(e);
}

static size_t hl(const struct env *e)
{
	return e->fk.be.vnet_hdr ? VIRTIO_NET_HDR_LEN : 0;
}

/* The virtio-net header tx() sends (TAP): a test's NEEDS_CSUM request. */
static uint8_t tx_hdr[VIRTIO_NET_HDR_LEN];

/* The guest sends frame f; returns whether the backend got it. */
static bool tx(struct env *e, const uint8_t *f, size_t n)
{
	uint8_t hdr[VIRTIO_NET_HDR_LEN];
	memcpy(hdr, tx_hdr, sizeof(hdr));
	struct iovec iov[2] = {{hdr, hl(e)}, {(void *)f, n}};
	unsigned before = e->fk.sent;
	assert_int_equal(e->nf->ops->send(e->nf, hl(e) ? iov : iov + 1, hl(e) ? 2 : 1), 0);
	return e->fk.sent > before;
}

/* The backend has frame f for the guest; returns what the guest gets
 * (without the header), or 0. */
static size_t rx(struct env *e, const uint8_t *f, size_t n)
{
	if (f) {
		memset(e->fk.q[e->fk.nq], 0, hl(e));
		memcpy(e->fk.q[e->fk.nq] + hl(e), f, n);
		e->fk.qlen[e->fk.nq++] = n + hl(e);
	}
	struct iovec iov = {e->rx, sizeof(e->rx)};
	ssize_t r = e->nf->ops->recv(e->nf, &iov, 1);
	if (r < 0)
		return 0;
	assert_true((size_t)r >= hl(e));
	memmove(e->rx, e->rx + hl(e), (size_t)r - hl(e));
	return (size_t)r - hl(e);
}

static const uint8_t *sent(const struct env *e)
{
	return e->fk.last + hl(e);
}

static void test_allow_list_asks_once(void **state)
{
	(void)state;
	struct policy *p = allow_list();
	struct env *e = env_new(p, true);
	uint8_t f[256];

	size_t n = tcp_frame(f, true, GUEST, 40000, HOST, 8001, NET_TCP_SYN, 100, 0, 0);
	assert_true(tx(e, f, n));
	assert_memory_equal(sent(e), f, n); /* untouched */
	n = tcp_frame(f, false, HOST, 8001, GUEST, 40000, NET_TCP_SYN | NET_TCP_ACK, 500, 101, 0);
	assert_int_equal(rx(e, f, n), n);
	for (int i = 0; i < 5; i++) {
		n = tcp_frame(f, true, GUEST, 40000, HOST, 8001, NET_TCP_ACK, 101, 501, 10);
		assert_true(tx(e, f, n));
	}
	assert_int_equal(policy_rule_hits(p, 0), 1); /* one decision for the flow */
	struct net_filter_stats st;
	assert_true(net_filter_get_stats(e->nf, &st));
	assert_int_equal(st.flows, 1);
	assert_int_equal(st.open_flows, 1);
	assert_int_equal(st.host_conns, 1);
	/* ARP passes; IPv6 does not while a net policy is in force */
	uint8_t arp[42] = {0};
	w16(arp + 12, 0x0806);
	assert_true(tx(e, arp, sizeof(arp)));
	uint8_t v6[54] = {0};
	w16(v6 + 12, 0x86dd);
	assert_false(tx(e, v6, sizeof(v6)));
	assert_int_equal(rx(e, v6, sizeof(v6)), 0);
	/* DHCP passes the final deny */
	n = udp_frame(f, true, 0, 68, 0xffffffff, 67, 20);
	assert_true(tx(e, f, n));
	env_free(e);
}

static void test_deny_resets_syn(void **state)
{
	(void)state;
	struct env *e = env_new(allow_list(), true);
	uint8_t f[256];

	size_t n = tcp_frame(f, true, GUEST, 40001, HOST, 8005, NET_TCP_SYN, 1000, 0, 0);
	assert_false(tx(e, f, n));
	size_t r = rx(e, NULL, 0);
	assert_int_equal(r, NET_RST_LEN);
	struct net_pkt q;
	assert_int_equal(net_pkt_parse(e->rx, r, &q), NET_PKT_IPV4);
	assert_int_equal(q.tcp_flags, NET_TCP_RST | NET_TCP_ACK);
	assert_int_equal(q.ack, 1001);
	assert_int_equal(q.src, HOST);
	assert_int_equal(q.sport, 8005);
	assert_csums_ok(e->rx);
	assert_int_equal(rx(e, NULL, 0), 0); /* just the one */
	assert_int_equal(atomic_load(&e->st.denied), 1);
	/* UDP: dropped, no answer */
	n = udp_frame(f, true, GUEST, 5000, IP(8, 8, 8, 8), 53, 10);
	assert_false(tx(e, f, n));
	assert_int_equal(rx(e, NULL, 0), 0);
	env_free(e);
}

static void test_redirect_both_ways(void **state)
{
	(void)state;
	struct policy *p = allow_list();
	struct env *e = env_new(p, true);
	uint8_t f[256];

	size_t n = tcp_frame(f, true, GUEST, 40002, HOST, 8003, NET_TCP_SYN, 7, 0, 0);
	assert_true(tx(e, f, n));
	assert_int_equal(r32(sent(e) + 30), HOST); /* 127.0.0.1 is the host alias in slirp */
	assert_int_equal(r16(sent(e) + 36), 8002);
	assert_int_equal(r16(sent(e) + 34), 40002);
	assert_csums_ok(sent(e));
	/* the target answers: the guest sees the address it asked for */
	n = tcp_frame(f, false, HOST, 8002, GUEST, 40002, NET_TCP_SYN | NET_TCP_ACK, 99, 8, 0);
	assert_int_equal(rx(e, f, n), n);
	assert_int_equal(r16(e->rx + 34), 8003);
	assert_int_equal(r32(e->rx + 26), HOST);
	assert_csums_ok(e->rx);
	n = tcp_frame(f, true, GUEST, 40002, HOST, 8003, NET_TCP_ACK, 8, 100, 50);
	assert_true(tx(e, f, n));
	assert_int_equal(r16(sent(e) + 36), 8002);
	assert_csums_ok(sent(e));
	assert_int_equal(policy_rule_hits(p, 1), 1);
	struct net_filter_stats st;
	net_filter_get_stats(e->nf, &st);
	assert_int_equal(st.redirected, 1);
	/* a reset ends the flow */
	n = tcp_frame(f, true, GUEST, 40002, HOST, 8003, NET_TCP_RST | NET_TCP_ACK, 58, 100, 0);
	assert_true(tx(e, f, n));
	net_filter_get_stats(e->nf, &st);
	assert_int_equal(st.open_flows, 0);
	env_free(e);
}

static void test_host_loopback_needs_a_rule(void **state)
{
	(void)state;
	struct policy_rule r[1] = {net_rule("all", POLICY_PROVIDE, POL_PROTO_ANY, 0, 0, 0)};
	struct env *e = env_new(compile(r, 1, POLICY_ENFORCE, 0), true);
	uint8_t f[256];

	size_t n = tcp_frame(f, true, GUEST, 40003, IP(93, 184, 216, 34), 80, NET_TCP_SYN, 1, 0, 0);
	assert_true(tx(e, f, n));
	n = tcp_frame(f, true, GUEST, 40003, HOST, 22, NET_TCP_SYN, 1, 0, 0);
	assert_false(tx(e, f, n)); /* "any" does not name the host */
	assert_int_equal(rx(e, NULL, 0), NET_RST_LEN);
	n = tcp_frame(f, true, GUEST, 40004, IP(10, 0, 2, 77), 22, NET_TCP_SYN, 1, 0, 0);
	assert_false(tx(e, f, n)); /* slirp maps this one to 127.0.0.1 too */
	n = tcp_frame(f, true, GUEST, 40005, IP(127, 0, 0, 1), 22, NET_TCP_SYN, 1, 0, 0);
	assert_false(tx(e, f, n));
	n = udp_frame(f, true, GUEST, 40006, IP(10, 0, 2, 3), 53, 12);
	assert_true(tx(e, f, n)); /* DNS is */
	n = udp_frame(f, true, GUEST, 40006, IP(10, 0, 2, 3), 5353, 12);
	assert_false(tx(e, f, n)); /* but not the resolver's other ports */
	struct net_filter_stats st;
	net_filter_get_stats(e->nf, &st);
	assert_int_equal(st.host_refused, 4);
	env_free(e);
}

static void test_host_connection_cap(void **state)
{
	(void)state;
	struct policy_rule r[1] = {net_rule("all", POLICY_PROVIDE, POL_PROTO_ANY, 0, 0, 0)};
	struct env *e = env_new(compile(r, 1, POLICY_ENFORCE, 2), true);
	uint8_t f[256];

	for (unsigned i = 0; i < 2; i++) {
		size_t n = tcp_frame(f, true, GUEST, 41000 + i, IP(1, 1, 1, 1), 443, NET_TCP_SYN, 1, 0, 0);
		assert_true(tx(e, f, n));
	}
	size_t n = tcp_frame(f, true, GUEST, 41002, IP(1, 1, 1, 1), 443, NET_TCP_SYN, 1, 0, 0);
	assert_false(tx(e, f, n));
	assert_int_equal(rx(e, NULL, 0), NET_RST_LEN);
	struct net_filter_stats st;
	net_filter_get_stats(e->nf, &st);
	assert_int_equal(st.limited, 1);
	/* packets of the flows held still pass */
	n = tcp_frame(f, false, IP(1, 1, 1, 1), 443, GUEST, 41000, NET_TCP_SYN | NET_TCP_ACK, 0, 2, 0);
	assert_int_equal(rx(e, f, n), n);
	n = tcp_frame(f, true, GUEST, 41000, IP(1, 1, 1, 1), 443, NET_TCP_ACK, 2, 1, 5);
	assert_true(tx(e, f, n));
	/* one closes (FIN both ways, each acknowledged): room for a new one
	 * once slirp's socket has waited out TIME_WAIT */
	n = tcp_frame(f, true, GUEST, 41000, IP(1, 1, 1, 1), 443, NET_TCP_ACK | NET_TCP_FIN, 7, 1, 0);
	assert_true(tx(e, f, n));
	n = tcp_frame(f, false, IP(1, 1, 1, 1), 443, GUEST, 41000, NET_TCP_ACK | NET_TCP_FIN, 1, 8, 0);
	assert_int_equal(rx(e, f, n), n);
	n = tcp_frame(f, true, GUEST, 41002, IP(1, 1, 1, 1), 443, NET_TCP_SYN, 1, 0, 0);
	assert_false(tx(e, f, n));
	assert_int_equal(rx(e, NULL, 0), NET_RST_LEN);
	now_ns += 16ull * 1000000000;
	assert_true(tx(e, f, n));
	/* the closed one's ports opened again: a new connection, over the cap */
	n = tcp_frame(f, true, GUEST, 41000, IP(1, 1, 1, 1), 443, NET_TCP_SYN, 99, 0, 0);
	assert_false(tx(e, f, n));
	assert_int_equal(rx(e, NULL, 0), NET_RST_LEN);
	/* idle ones time out */
	now_ns += 7201ull * 1000000000;
	n = tcp_frame(f, true, GUEST, 41003, IP(1, 1, 1, 1), 443, NET_TCP_SYN, 1, 0, 0);
	assert_true(tx(e, f, n));
	env_free(e);
}

/* User mode: a host connection ends only as slirp's socket does. Host
 * 1.1.1.1:443, cap 1; each case leaves the slot taken (a second SYN is
 * refused) or frees it. */
static bool cap_free(struct env *e, unsigned sport)
{
	uint8_t f[256];
	size_t n = tcp_frame(f, true, GUEST, sport, IP(1, 1, 1, 1), 443, NET_TCP_SYN, 1, 0, 0);
	bool ok = tx(e, f, n);
	if (!ok)
		assert_int_equal(rx(e, NULL, 0), NET_RST_LEN);
	return ok;
}

static struct env *one_open(void)
{
	struct policy_rule r[1] = {net_rule("all", POLICY_PROVIDE, POL_PROTO_ANY, 0, 0, 0)};
	struct env *e = env_new(compile(r, 1, POLICY_ENFORCE, 1), true);
	uint8_t f[256];
	size_t n = tcp_frame(f, true, GUEST, 42000, IP(1, 1, 1, 1), 443, NET_TCP_SYN, 100, 0, 0);
	assert_true(tx(e, f, n));
	n = tcp_frame(f, false, IP(1, 1, 1, 1), 443, GUEST, 42000, NET_TCP_SYN | NET_TCP_ACK, 5000, 101, 0);
	assert_int_equal(rx(e, f, n), n);
	n = tcp_frame(f, true, GUEST, 42000, IP(1, 1, 1, 1), 443, NET_TCP_ACK, 101, 5001, 10);
	assert_true(tx(e, f, n));
	return e;
}

/* A segment of the flow one_open() opened, from the guest (returns whether
 * it passed) or from slirp (it must reach the guest). */
static bool from_guest(struct env *e, unsigned flags, uint32_t seq, uint32_t ack)
{
	uint8_t f[256];
	size_t n = tcp_frame(f, true, GUEST, 42000, IP(1, 1, 1, 1), 443, flags, seq, ack, 0);
	return tx(e, f, n);
}

static void from_slirp(struct env *e, unsigned flags, uint32_t seq, uint32_t ack)
{
	uint8_t f[256];
	size_t n = tcp_frame(f, false, IP(1, 1, 1, 1), 443, GUEST, 42000, flags, seq, ack, 0);
	assert_int_equal(rx(e, f, n), n);
}

static void test_host_connection_ends_as_slirp_ends_it(void **state)
{
	(void)state;
	uint8_t f[256];

	/* a guest reset: sent on with the number slirp acknowledged last, so
	 * that slirp takes it whatever its own; then the slot is free */
	struct env *e = one_open();
	assert_true(from_guest(e, NET_TCP_RST, 0x40000000, 0));
	struct net_pkt k;
	assert_int_equal(net_pkt_parse(sent(e), 54, &k), NET_PKT_IPV4);
	assert_int_equal(k.seq, 101);
	assert_true(net_pkt_csums_ok(sent(e), &k));
	assert_true(cap_free(e, 42001));
	env_free(e);

	/* one with a wrong checksum (slirp drops it): the slot stays taken */
	e = one_open();
	size_t n = tcp_frame(f, true, GUEST, 42000, IP(1, 1, 1, 1), 443, NET_TCP_RST, 111, 0, 0);
	f[34 + 16] ^= 1;
	tx(e, f, n);
	assert_false(cap_free(e, 42001));
	env_free(e);

	/* slirp's answer to a bad segment (its number is the guest's): taken;
	 * slirp's own close (its next number, 5001): free */
	e = one_open();
	from_slirp(e, NET_TCP_RST, 777, 0);
	assert_false(cap_free(e, 42001));
	from_slirp(e, NET_TCP_RST, 5001, 0);
	assert_true(cap_free(e, 42001));
	env_free(e);

	/* FINs both ways, but the guest's never acknowledged by slirp (a FIN
	 * it dropped): taken; acknowledged, closed: free after TIME_WAIT */
	e = one_open();
	assert_true(from_guest(e, NET_TCP_FIN | NET_TCP_ACK, 111, 5001));
	from_slirp(e, NET_TCP_FIN | NET_TCP_ACK, 5001, 111);
	now_ns += 20ull * 1000000000;
	assert_false(cap_free(e, 42001));
	from_slirp(e, NET_TCP_ACK, 5002, 112);
	assert_false(cap_free(e, 42001)); /* TIME_WAIT still */
	now_ns += 16ull * 1000000000;
	assert_true(cap_free(e, 42001));
	env_free(e);

	/* the guest closes first: slirp takes its FIN, sends its own, and
	 * closes its socket on the guest's last ACK (no TIME_WAIT on slirp's
	 * side): free at once; one at another number ends nothing */
	e = one_open();
	assert_true(from_guest(e, NET_TCP_FIN | NET_TCP_ACK, 111, 5001));
	from_slirp(e, NET_TCP_ACK, 5001, 112);
	from_slirp(e, NET_TCP_FIN | NET_TCP_ACK, 5001, 112);
	assert_true(from_guest(e, NET_TCP_ACK, 112, 5000));
	assert_false(cap_free(e, 42001));
	assert_true(from_guest(e, NET_TCP_ACK, 112, 5002));
	assert_true(cap_free(e, 42002));
	env_free(e);

	/* a FIN behind what slirp acknowledged is an old one: it ends nothing */
	e = one_open();
	assert_true(from_guest(e, NET_TCP_FIN | NET_TCP_ACK, 50, 5001));
	from_slirp(e, NET_TCP_FIN | NET_TCP_ACK, 5001, 111);
	now_ns += 20ull * 1000000000;
	assert_false(cap_free(e, 42001));
	env_free(e);
}

/* A UDP flow through slirp is remembered as long as slirp keeps its socket
 * (240 s idle): the cap holds until then. */
static void test_udp_host_connection_outlives_slirps_socket(void **state)
{
	(void)state;
	struct policy_rule r[1] = {net_rule("all", POLICY_PROVIDE, POL_PROTO_ANY, 0, 0, 0)};
	struct env *e = env_new(compile(r, 1, POLICY_ENFORCE, 1), true);
	uint8_t f[256];
	size_t n = udp_frame(f, true, GUEST, 5000, IP(1, 1, 1, 1), 9999, 4);
	assert_true(tx(e, f, n));
	now_ns += 241ull * 1000000000;
	n = udp_frame(f, true, GUEST, 5001, IP(1, 1, 1, 1), 9999, 4);
	assert_false(tx(e, f, n));
	now_ns += 10ull * 1000000000;
	assert_true(tx(e, f, n));
	env_free(e);
}

static void test_permissive_provides(void **state)
{
	(void)state;
	struct policy_rule r[1] = {net_rule("none", POLICY_DENY, POL_PROTO_ANY, 0, 0, 0)};
	struct policy *p = compile(r, 1, POLICY_PERMISSIVE, 0);
	struct env *e = env_new(p, true);
	uint8_t f[256];

	size_t n = tcp_frame(f, true, GUEST, 40010, IP(1, 1, 1, 1), 80, NET_TCP_SYN, 1, 0, 0);
	assert_true(tx(e, f, n));
	assert_int_equal(rx(e, NULL, 0), 0);
	assert_int_equal(policy_rule_hits(p, 0), 1);
	env_free(e);
}

/* A policy without a net rule. */
static struct policy *msr_only(void)
{
	struct policy_rule r[1] = {{.resource = POL_RES_MSR, .verdict = POLICY_DENY, .id = "m"}};
	r[0].nranges = 1;
	r[0].ranges = malloc(sizeof(*r[0].ranges));
	r[0].ranges[0] = (struct policy_range){0x10, 0x10};
	return compile(r, 1, POLICY_ENFORCE, 0);
}

static void test_no_net_policy_tap_untouched_user_limited(void **state)
{
	(void)state;
	for (int i = 0; i < 2; i++) {
		/* TAP: nothing to filter without a net policy */
		struct env *e = env_new(i ? msr_only() : NULL, false);
		uint8_t f[256];
		uint8_t v6[54] = {0};
		w16(v6 + 12, 0x86dd);
		assert_true(tx(e, v6, sizeof(v6)));
		size_t n = tcp_frame(f, true, GUEST, 40020, HOST, 22, NET_TCP_SYN, 1, 0, 0);
		assert_true(tx(e, f, n));
		assert_int_equal(rx(e, v6, sizeof(v6)), sizeof(v6));
		struct net_filter_stats st;
		net_filter_get_stats(e->nf, &st);
		assert_int_equal(st.flows, 0);
		env_free(e);

		/* user mode: its host limits hold without a net policy too */
		e = env_new(i ? msr_only() : NULL, true);
		assert_false(tx(e, v6, sizeof(v6)));
		n = tcp_frame(f, true, GUEST, 40020, HOST, 22, NET_TCP_SYN, 1, 0, 0);
		assert_false(tx(e, f, n)); /* the host's loopback: no rule names it */
		n = tcp_frame(f, true, GUEST, 40021, IP(1, 1, 1, 1), 80, NET_TCP_SYN, 1, 0, 0);
		assert_true(tx(e, f, n));
		net_filter_get_stats(e->nf, &st);
		assert_int_equal(st.flows, 2);
		assert_int_equal(st.host_refused, 1);
		assert_int_equal(st.host_conns, 1);
		env_free(e);
	}
}

static void test_swap_decides_again(void **state)
{
	(void)state;
	struct policy *p = allow_list();
	struct env *e = env_new(p, true);
	uint8_t f[256];

	size_t n = tcp_frame(f, true, GUEST, 40030, HOST, 8001, NET_TCP_SYN, 1, 0, 0);
	assert_true(tx(e, f, n));
	struct policy_rule r[2] = {
	    net_rule("web-off", POLICY_DENY, POL_PROTO_TCP, HOST, 32, 8001),
	    net_rule("rest", POLICY_DENY, POL_PROTO_ANY, 0, 0, 0),
	};
	struct policy *old = policy_swap(&e->slot, compile(r, 2, POLICY_ENFORCE, 0));
	n = tcp_frame(f, true, GUEST, 40030, HOST, 8001, NET_TCP_ACK, 2, 1, 4);
	assert_false(tx(e, f, n)); /* the open flow is refused now, and reset */
	assert_int_equal(rx(e, NULL, 0), NET_RST_LEN);
	policy_free(old);
	env_free(e);
}

static void test_tap_refuses_redirect(void **state)
{
	(void)state;
	struct policy *p = allow_list();
	char err[256];

	assert_int_equal(net_filter_check(policy_spec_of(p), "net1", true, err, sizeof(err)), 0);
	assert_int_equal(net_filter_check(policy_spec_of(p), "net1", false, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'moved'"));
	assert_non_null(strstr(err, "user-mode"));

	/* should one reach a TAP filter anyway, it denies; frames keep their header */
	struct env *e = env_new(p, false);
	uint8_t f[256];
	size_t n = tcp_frame(f, true, GUEST, 40040, HOST, 8003, NET_TCP_SYN, 1, 0, 0);
	assert_false(tx(e, f, n));
	assert_int_equal(rx(e, NULL, 0), NET_RST_LEN);
	n = tcp_frame(f, true, GUEST, 40041, HOST, 8001, NET_TCP_SYN, 1, 0, 0);
	assert_true(tx(e, f, n));
	assert_int_equal(e->fk.last_len, n + VIRTIO_NET_HDR_LEN);
	/* no host limits on TAP: the host alias is just an address there */
	struct net_filter_stats st;
	net_filter_get_stats(e->nf, &st);
	assert_int_equal(st.host_conns, 0);
	env_free(e);

	struct policy_rule r[1] = {net_rule("lo", POLICY_REDIRECT, POL_PROTO_TCP, 0, 0, 80)};
	r[0].to_ip = IP(127, 0, 0, 2);
	r[0].to_port = 80;
	p = compile(r, 1, POLICY_ENFORCE, 0);
	assert_int_equal(net_filter_check(policy_spec_of(p), "net1", true, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "\"to\""));
	policy_free(p);
}

/* An ICMP error (port unreachable) about a packet of an allowed flow reaches
 * the guest although ingress is denied; one about no flow does not. */
static size_t icmp_unreach(uint8_t *f, const uint8_t *quoted, size_t qlen)
{
	size_t n = eth_ip(f, false, 1, IP(8, 8, 8, 8), GUEST, 8 + qlen);
	uint8_t *ic = f + 34;
	ic[0] = 3, ic[1] = 3; /* port unreachable */
	memcpy(ic + 8, quoted + 14, qlen);
	fix_csums(f);
	return n;
}

static void test_icmp_errors_follow_their_flow(void **state)
{
	(void)state;
	struct policy_rule r[3] = {
	    net_rule("dns", POLICY_PROVIDE, POL_PROTO_UDP, IP(8, 8, 8, 8), 32, 53),
	    net_rule("rest", POLICY_DENY, POL_PROTO_ANY, 0, 0, 0),
	    net_rule("no-ingress", POLICY_DENY, POL_PROTO_ANY, 0, 0, 0),
	};
	r[2].dir = POL_DIR_INGRESS;
	struct env *e = env_new(compile(r, 3, POLICY_ENFORCE, 0), true);
	uint8_t q[128], f[256];

	size_t qn = udp_frame(q, true, GUEST, 5000, IP(8, 8, 8, 8), 53, 12);
	assert_true(tx(e, q, qn));
	size_t n = icmp_unreach(f, q, 28);
	assert_int_equal(rx(e, f, n), n);
	/* the same error about another port: no flow, ingress denied */
	uint8_t q2[128];
	size_t q2n = udp_frame(q2, true, GUEST, 5001, IP(8, 8, 8, 8), 53, 12);
	n = icmp_unreach(f, q2, 28);
	assert_int_equal(rx(e, f, n), 0);
	/* a quote cut short is no quote */
	n = icmp_unreach(f, q, 27);
	assert_int_equal(rx(e, f, n), 0);
	(void)q2n;
	/* an error for the guest sent to another address is not the flow's */
	n = icmp_unreach(f, q, 28);
	w32(f + 30, GUEST + 1);
	fix_csums(f);
	assert_int_equal(rx(e, f, n), 0);
	env_free(e);
}

/* User mode: a table filled with flows of no host connection (segments
 * taken as inbound flows) evicts those, never a host connection, which
 * slirp keeps open: the cap on host connections holds however full. */
static void test_host_connection_cap_survives_a_full_table(void **state)
{
	(void)state;
	struct policy_rule r[2] = {
	    net_rule("web", POLICY_PROVIDE, POL_PROTO_TCP, IP(8, 8, 8, 8), 32, 80),
	    net_rule("rest", POLICY_DENY, POL_PROTO_ANY, 0, 0, 0),
	};
	struct env *e = env_new(compile(r, 2, POLICY_ENFORCE, 0), true);
	uint8_t f[256];
	unsigned passed = 0, sport = 1;
	struct net_filter_stats st;

	for (int round = 0; round < 3; round++) {
		for (unsigned i = 0; i < 300; i++) {
			size_t n = tcp_frame(f, true, GUEST, sport++, IP(8, 8, 8, 8), 80, NET_TCP_SYN, 1, 0, 0);
			passed += tx(e, f, n);
			while (rx(e, NULL, 0)) {
			}
		}
		for (unsigned i = 0; i < NET_CT_MAX; i++) {
			size_t n = tcp_frame(f, true, GUEST, 20000 + (i % 40000), IP(9, 9, (i >> 8) & 255, i & 255),
					     1000 + round, NET_TCP_ACK, 1, 1, 0);
			tx(e, f, n);
			while (rx(e, NULL, 0)) {
			}
		}
		net_filter_get_stats(e->nf, &st);
		assert_int_equal(st.host_conns, 256);
	}
	assert_int_equal(passed, 256);
	assert_true(st.evicted > 0);
	env_free(e);
}

/* TAP with checksum offload: a partial checksum must be the TCP or UDP
 * checksum of the packet judged. One aimed elsewhere (at the destination
 * port: the host would write a port the policy never saw) is dropped. */
static void test_partial_checksum_where_judged(void **state)
{
	(void)state;
	struct policy_rule r[2] = {
	    net_rule("https", POLICY_PROVIDE, POL_PROTO_TCP, IP(8, 8, 8, 8), 32, 443),
	    net_rule("rest", POLICY_DENY, POL_PROTO_ANY, 0, 0, 0),
	};
	struct env *e = env_new(compile(r, 2, POLICY_ENFORCE, 0), false);
	uint8_t f[256];
	const struct { unsigned start, off; bool pass; } cases[] = {
		{ 34, 16, true }, { 34, 2, false }, { 34, 6, false }, { 30, 16, false }, { 54, 16, false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = tcp_frame(f, true, GUEST, 40000 + (unsigned)i, IP(8, 8, 8, 8), 443, NET_TCP_SYN, 1, 0, 0);
		memset(tx_hdr, 0, sizeof(tx_hdr));
		tx_hdr[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		tx_hdr[6] = (uint8_t)cases[i].start, tx_hdr[8] = (uint8_t)cases[i].off;
		assert_int_equal(tx(e, f, n), cases[i].pass);
	}
	/* UDP's checksum is at 6; an ARP frame has none to complete */
	memset(tx_hdr, 0, sizeof(tx_hdr));
	tx_hdr[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM, tx_hdr[6] = 34, tx_hdr[8] = 6;
	struct policy_rule u[1] = { net_rule("dns", POLICY_PROVIDE, POL_PROTO_UDP, IP(8, 8, 8, 8), 32, 53) };
	struct env *e2 = env_new(compile(u, 1, POLICY_ENFORCE, 0), false);
	size_t n = udp_frame(f, true, GUEST, 5000, IP(8, 8, 8, 8), 53, 12);
	assert_true(tx(e2, f, n));
	tx_hdr[8] = 16;
	assert_false(tx(e2, f, n));
	memset(tx_hdr, 0, sizeof(tx_hdr));
	env_free(e2);
	env_free(e);
}

/* An ICMP error the guest sends about a flow's packet goes back to where
 * that packet came from, from the guest: one to any other address, or
 * from a spoofed source, quoting the flow, is no part of it and is denied
 * (else any data would leave to any address behind a quote). */
static void test_guest_icmp_errors_go_to_the_flow_only(void **state)
{
	(void)state;
	struct policy_rule r[2] = {
	    net_rule("dns", POLICY_PROVIDE, POL_PROTO_UDP, IP(8, 8, 8, 8), 32, 53),
	    net_rule("rest", POLICY_DENY, POL_PROTO_ANY, 0, 0, 0),
	};
	struct env *e = env_new(compile(r, 2, POLICY_ENFORCE, 0), false);
	uint8_t q[128], f[512];

	size_t n = udp_frame(q, true, GUEST, 5000, IP(8, 8, 8, 8), 53, 12);
	assert_true(tx(e, q, n));
	udp_frame(q, false, IP(8, 8, 8, 8), 53, GUEST, 5000, 12); /* the reply the guest "refuses" */
	const struct { uint32_t src, dst; bool pass; } cases[] = {
		{ GUEST, IP(8, 8, 8, 8), true },
		{ GUEST, IP(6, 6, 6, 6), false },
		{ IP(1, 2, 3, 4), IP(8, 8, 8, 8), false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = eth_ip(f, true, 1, cases[i].src, cases[i].dst, 8 + 28 + 200);
		uint8_t *ic = f + 34;
		ic[0] = 3, ic[1] = 3;
		memcpy(ic + 8, q + 14, 28);
		memset(ic + 8 + 28, 'X', 200);
		fix_csums(f);
		assert_int_equal(tx(e, f, n), cases[i].pass);
	}
	env_free(e);
}

/* A connection the host side opened before the policy (a hostfwd one): the
 * guest's next segment is no SYN and the egress rules refuse it. On
 * user-mode networking it is taken as the ingress flow it is, unless the
 * ingress rules refuse that too; on TAP it is refused. */
static void test_midstream_segment_of_an_inbound_connection(void **state)
{
	(void)state;
	for (int variant = 0; variant < 3; variant++) {
		struct policy_rule r[2] = {
		    net_rule("rest", POLICY_DENY, POL_PROTO_ANY, 0, 0, 0),
		    net_rule("no-ingress", POLICY_DENY, POL_PROTO_ANY, 0, 0, 0),
		};
		r[1].dir = POL_DIR_INGRESS;
		struct env *e = env_new(compile(r, variant == 1 ? 2 : 1, POLICY_ENFORCE, 0), variant != 2);
		uint8_t f[256];
		size_t n = tcp_frame(f, true, GUEST, 22, HOST, 50000, NET_TCP_ACK | 0x08, 10, 20, 30);
		bool passed = tx(e, f, n);
		assert_int_equal(passed, variant == 0);
		if (passed) {
			/* and the flow is the inbound one from here on */
			n = tcp_frame(f, false, HOST, 50000, GUEST, 22, NET_TCP_ACK, 20, 40, 5);
			assert_int_equal(rx(e, f, n), n);
			struct net_filter_stats st;
			net_filter_get_stats(e->nf, &st);
			assert_int_equal(st.flows, 1);
			assert_int_equal(st.host_conns, 0);
		} else {
			assert_int_equal(rx(e, NULL, 0), NET_RST_LEN);
		}
		env_free(e);
	}
}

/* ---- audit records -------------------------------------------------------- */

#define MAX_EV 16
static struct vevent evs[MAX_EV];
static unsigned nev;

static void on_record(void *ctx, const struct vevent *e)
{
	(void)ctx;
	if (nev < MAX_EV)
		evs[nev++] = *e;
}

static void on_lost(void *ctx, uint64_t t, const char *ring, unsigned dest, uint64_t count)
{
	(void)ctx, (void)t, (void)ring, (void)dest, (void)count;
	fail_msg("lost events");
}

static void test_decisions_are_audited(void **state)
{
	(void)state;
	struct evsink_config c = {.clock = {.mono_ns = fake_mono}};
	sink = ev_sink_new(&c);
	assert_non_null(sink);
	ev_sink_mark_start(sink);
	ev_set_audit(sink, true);
	struct env *e = env_new(allow_list(), true);
	uint8_t f[256];

	size_t n = tcp_frame(f, true, GUEST, 40050, HOST, 8001, NET_TCP_SYN, 1, 0, 0);
	assert_true(tx(e, f, n)); /* provide: not audited */
	n = tcp_frame(f, true, GUEST, 40051, HOST, 8005, NET_TCP_SYN, 1, 0, 0);
	assert_false(tx(e, f, n));
	n = tcp_frame(f, true, GUEST, 40052, HOST, 8003, NET_TCP_SYN, 1, 0, 0);
	assert_true(tx(e, f, n));
	for (int i = 0; i < 5; i++) { /* one flow, one record */
		n = tcp_frame(f, true, GUEST, 40052, HOST, 8003, NET_TCP_ACK, 2, 1, 3);
		assert_true(tx(e, f, n));
	}
	nev = 0;
	ev_drain(sink, true, &(struct ev_drain_ops){on_record, on_lost}, NULL);
	assert_int_equal(nev, 2);
	unsigned deny = evs[0].verdict == POLICY_DENY ? 0 : 1, redir = 1 - deny;
	assert_int_equal(evs[deny].kind, EV_NET);
	assert_int_equal(evs[deny].verdict, POLICY_DENY);
	assert_string_equal(evs[deny].rule, "rest");
	assert_int_equal(evs[deny].addr, HOST);
	assert_int_equal(evs[deny].value, 8005);
	assert_int_equal(evs[deny].proto, POL_PROTO_TCP);
	assert_int_equal(evs[deny].write, POL_DIR_EGRESS);
	assert_true(evs[deny].enforced);
	assert_true(evs[deny].dest & EV_TO_AUDIT);
	assert_string_equal(evs[deny].device, "net1");
	assert_int_equal(evs[redir].verdict, POLICY_REDIRECT);
	assert_string_equal(evs[redir].rule, "moved");
	assert_int_equal(evs[redir].value, 8003);
	env_free(e);

	/* the host limits are audited under their own names */
	struct policy_rule r[1] = {net_rule("all", POLICY_PROVIDE, POL_PROTO_ANY, 0, 0, 0)};
	e = env_new(compile(r, 1, POLICY_ENFORCE, 1), true);
	n = tcp_frame(f, true, GUEST, 40060, HOST, 22, NET_TCP_SYN, 1, 0, 0);
	assert_false(tx(e, f, n));
	n = tcp_frame(f, true, GUEST, 40061, IP(1, 1, 1, 1), 80, NET_TCP_SYN, 1, 0, 0);
	assert_true(tx(e, f, n));
	n = tcp_frame(f, true, GUEST, 40062, IP(1, 1, 1, 1), 80, NET_TCP_SYN, 1, 0, 0);
	assert_false(tx(e, f, n));
	nev = 0;
	ev_drain(sink, true, &(struct ev_drain_ops){on_record, on_lost}, NULL);
	assert_int_equal(nev, 2);
	assert_string_equal(evs[0].rule, evs[0].value == 22 ? "host-loopback" : "limits");
	assert_string_equal(evs[1].rule, evs[1].value == 22 ? "host-loopback" : "limits");
	assert_int_not_equal(evs[0].value, evs[1].value);
	env_free(e);
	ev_sink_free(sink);
	sink = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_tcp_udp_icmp),
	    cmocka_unit_test(test_parse_other_ethertypes),
	    cmocka_unit_test(test_parse_malformed),
	    cmocka_unit_test(test_rewrite_keeps_checksums),
	    cmocka_unit_test(test_rst_answers_syn_and_ack),
	    cmocka_unit_test(test_ct_find_evict_expire),
	    cmocka_unit_test(test_allow_list_asks_once),
	    cmocka_unit_test(test_deny_resets_syn),
	    cmocka_unit_test(test_redirect_both_ways),
	    cmocka_unit_test(test_host_loopback_needs_a_rule),
	    cmocka_unit_test(test_host_connection_cap),
	    cmocka_unit_test(test_host_connection_ends_as_slirp_ends_it),
	    cmocka_unit_test(test_udp_host_connection_outlives_slirps_socket),
	    cmocka_unit_test(test_permissive_provides),
	    cmocka_unit_test(test_no_net_policy_tap_untouched_user_limited),
	    cmocka_unit_test(test_swap_decides_again),
	    cmocka_unit_test(test_tap_refuses_redirect),
	    cmocka_unit_test(test_decisions_are_audited),
	    cmocka_unit_test(test_icmp_errors_follow_their_flow),
	    cmocka_unit_test(test_guest_icmp_errors_go_to_the_flow_only),
	    cmocka_unit_test(test_host_connection_cap_survives_a_full_table),
	    cmocka_unit_test(test_partial_checksum_where_judged),
	    cmocka_unit_test(test_midstream_segment_of_an_inbound_connection),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
