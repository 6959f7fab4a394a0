#define _GNU_SOURCE
/* The network policy over a real libslirp on a running event loop, with a
 * real listening socket on 127.0.0.1: a guest SYN to the provided
 * 10.0.2.2:P is answered by slirp's SYN-ACK (the host's 127.0.0.1:P took
 * the connection); a SYN to 10.0.2.2:R redirected to 127.0.0.1:P is too,
 * with the reply carrying R back; a SYN to a denied port is reset by the
 * filter and reaches no host socket. This is what the lab's netpol boot
 * shows with a Linux guest, without the guest. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/policy.h"
#include "devices/net_filter.h"
#include "devices/net_pkt.h"
#include "host/clock.h"
#include "host/evloop.h"
#include "host/net_slirp.h"

static const uint8_t guest_mac[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x56};

struct ctx {
	struct net_backend *b;
	struct policy_slot slot;
	struct dev_stats st;
	/* the TCP frames the guest got, as parsed */
	atomic_uint ntcp;
	struct net_pkt tcp[16];
	uint8_t frame[2048];
	/* what the loop thread should send */
	uint8_t out[128];
	size_t out_len;
};

static void on_rx(void *p)
{
	struct ctx *c = p;
	struct iovec in = {c->frame, sizeof(c->frame)};
	ssize_t n;
	while ((n = c->b->ops->recv(c->b, &in, 1)) > 0) {
		struct net_pkt k;
		unsigned i = atomic_load(&c->ntcp);
		if (net_pkt_parse(c->frame, (size_t)n, &k) == NET_PKT_IPV4 && k.proto == NET_IP_TCP &&
		    i < 16) {
			c->tcp[i] = k;
			atomic_store(&c->ntcp, i + 1);
		}
	}
}

struct on_loop {
	void (*fn)(struct ctx *);
	struct ctx *c;
	atomic_bool done;
};

static void tramp(void *p)
{
	struct on_loop *o = p;
	o->fn(o->c);
	atomic_store(&o->done, true);
}

static void run_on_loop(struct evloop *l, void (*fn)(struct ctx *), struct ctx *c)
{
	struct on_loop o = {fn, c, false};
	assert_int_equal(evloop_call(l, tramp, &o), 0);
	for (int i = 0; i < 3000 && !atomic_load(&o.done); i++)
		usleep(1000);
	assert_true(atomic_load(&o.done));
}

static void hook(struct ctx *c)
{
	c->b->rx_ready = on_rx;
	c->b->rx_ctx = c;
	c->b->ops->rx_enable(c->b, true);
}

static void send_out(struct ctx *c)
{
	struct iovec v = {c->out, c->out_len};
	assert_int_equal(c->b->ops->send(c->b, &v, 1), 0);
}

static void free_b(struct ctx *c)
{
	c->b->ops->free(c->b);
}

static void put16(uint8_t *b, unsigned v)
{
	b[0] = (uint8_t)(v >> 8), b[1] = (uint8_t)v;
}

static void put32(uint8_t *b, uint32_t v)
{
	put16(b, v >> 16), put16(b + 2, v & 0xffff);
}

static size_t arp_request(uint8_t *f, uint32_t target)
{
	memset(f, 0, 60);
	memset(f, 0xff, 6);
	memcpy(f + 6, guest_mac, 6);
	put16(f + 12, 0x0806);
	put16(f + 14, 1);
	put16(f + 16, 0x0800);
	f[18] = 6, f[19] = 4, f[21] = 1;
	memcpy(f + 22, guest_mac, 6);
	put32(f + 28, NET_SLIRP_GUEST);
	put32(f + 38, target);
	return 60;
}

static size_t syn(uint8_t *f, uint16_t sport, uint32_t dst, uint16_t dport)
{
	memset(f, 0, 14 + 20 + 20);
	memcpy(f, "\x52\x55\x0a\x00\x02\x02", 6);
	memcpy(f + 6, guest_mac, 6);
	put16(f + 12, 0x0800);
	uint8_t *ip = f + 14, *t = ip + 20;
	ip[0] = 0x45, put16(ip + 2, 40), put16(ip + 6, 0x4000), ip[8] = 64, ip[9] = 6;
	put32(ip + 12, NET_SLIRP_GUEST), put32(ip + 16, dst);
	put16(ip + 10, (uint16_t)~net_csum_fold(net_csum_add(0, ip, 20)));
	put16(t, sport), put16(t + 2, dport), put32(t + 4, 1000);
	t[12] = 5 << 4, t[13] = NET_TCP_SYN, put16(t + 14, 64240);
	uint8_t ps[12];
	memcpy(ps, ip + 12, 8);
	ps[8] = 0, ps[9] = 6, put16(ps + 10, 20);
	put16(t + 16, (uint16_t)~net_csum_fold(net_csum_add(net_csum_add(0, ps, 12), t, 20)));
	return 54;
}

static int listener(uint16_t *port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s, 8), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
	*port = ntohs(sa.sin_port);
	return s;
}

/* Waits for the n-th TCP frame to the guest. */
static const struct net_pkt *wait_tcp(struct ctx *c, unsigned n)
{
	for (int i = 0; i < 5000 && atomic_load(&c->ntcp) < n; i++)
		usleep(1000);
	assert_true(atomic_load(&c->ntcp) >= n);
	return &c->tcp[n - 1];
}

static bool accepted(int ls)
{
	struct pollfd p = {.fd = ls, .events = POLLIN};
	if (poll(&p, 1, 3000) != 1)
		return false;
	int a = accept(ls, NULL, NULL);
	if (a < 0)
		return false;
	close(a);
	return true;
}

static struct policy_rule rule(const char *id, enum policy_verdict v, uint32_t dst, uint16_t port)
{
	struct policy_rule r = {.resource = POL_RES_NET,
				.verdict = v,
				.dir = POL_DIR_EGRESS,
				.proto = POL_PROTO_TCP,
				.dst_ip = dst,
				.dst_prefix = dst ? 32 : 0,
				.audit = true};
	snprintf(r.id, sizeof(r.id), "%s", id);
	if (port) {
		r.nranges = 1;
		r.ranges = malloc(sizeof(*r.ranges));
		r.ranges[0] = (struct policy_range){port, port};
	}
	return r;
}

static void test_allow_redirect_deny_through_slirp(void **state)
{
	(void)state;
	uint16_t port, other;
	int ls = listener(&port);
	int ls2 = listener(&other); /* denied: nothing may reach it */
	uint16_t moved = (uint16_t)(port == 65535 ? 1024 : port + 1);

	struct policy_rule r[3] = {
	    rule("web", POLICY_PROVIDE, NET_SLIRP_HOST, port),
	    rule("moved", POLICY_REDIRECT, NET_SLIRP_HOST, moved),
	    rule("rest", POLICY_DENY, 0, 0),
	};
	r[1].to_ip = 0x7f000001;
	r[1].to_port = port;
	struct policy_spec s = {.mode = POLICY_ENFORCE, .nrules = 3, .rules = r};
	char err[200];
	struct policy *p = policy_compile(&s, err, sizeof(err));
	assert_non_null(p);
	for (int i = 0; i < 3; i++)
		free(r[i].ranges);

	static struct ctx c;
	memset(&c, 0, sizeof(c));
	policy_slot_init(&c.slot, p);
	struct evloop *l = evloop_new();
	assert_non_null(l);
	assert_int_equal(evloop_start(l), 0);
	struct net_backend *sl = net_slirp_new(NULL, 0, l, err, sizeof(err));
	assert_non_null(sl);
	struct dev_gate g = {.stats = &c.st, .policy = &c.slot, .id = "net0"};
	struct net_filter_cfg fc = {.user_mode = true,
				    .net = NET_SLIRP_NET,
				    .mask = NET_SLIRP_MASK,
				    .host = NET_SLIRP_HOST,
				    .dns = NET_SLIRP_DNS,
				    .guest = NET_SLIRP_GUEST,
				    .clock = host_clock()};
	c.b = net_filter_new(sl, &g, &fc, err, sizeof(err));
	assert_non_null(c.b);
	run_on_loop(l, hook, &c);
	c.out_len = arp_request(c.out, NET_SLIRP_HOST);
	run_on_loop(l, send_out, &c);

	/* provided: slirp connects to 127.0.0.1:port and answers the SYN */
	c.out_len = syn(c.out, 40000, NET_SLIRP_HOST, port);
	run_on_loop(l, send_out, &c);
	assert_true(accepted(ls));
	const struct net_pkt *k = wait_tcp(&c, 1);
	assert_int_equal(k->tcp_flags, NET_TCP_SYN | NET_TCP_ACK);
	assert_int_equal(k->sport, port);
	assert_int_equal(k->dport, 40000);

	/* redirected: the same server, the reply from the port asked for */
	c.out_len = syn(c.out, 40001, NET_SLIRP_HOST, moved);
	run_on_loop(l, send_out, &c);
	assert_true(accepted(ls));
	k = wait_tcp(&c, 2);
	assert_int_equal(k->tcp_flags, NET_TCP_SYN | NET_TCP_ACK);
	assert_int_equal(k->sport, moved);
	assert_int_equal(k->src, NET_SLIRP_HOST);
	assert_int_equal(k->dport, 40001);

	/* denied: a reset from the filter, the host socket sees nothing */
	c.out_len = syn(c.out, 40002, NET_SLIRP_HOST, other);
	run_on_loop(l, send_out, &c);
	k = wait_tcp(&c, 3);
	assert_int_equal(k->tcp_flags, NET_TCP_RST | NET_TCP_ACK);
	assert_int_equal(k->sport, other);
	assert_int_equal(k->ack, 1001);
	assert_false(accepted(ls2));
	assert_int_equal(atomic_load(&c.st.denied), 1);

	run_on_loop(l, free_b, &c);
	evloop_free(l);
	policy_slot_fini(&c.slot);
	close(ls);
	close(ls2);
}

/* 100 SYNs from consecutive guest ports to TEST-NET-1 (never answers). */
static unsigned flood_next;
static void flood(struct ctx *c)
{
	for (unsigned i = 0; i < 100; i++, flood_next++) {
		c->out_len = syn(c->out, (uint16_t)(20000 + flood_next), 0xc0000201u, 80);
		struct iovec v = {c->out, c->out_len};
		c->b->ops->send(c->b, &v, 1);
	}
}

static void clear_tcp(struct ctx *c)
{
	atomic_store(&c->ntcp, 0);
}

static unsigned open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;
	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* A TCP frame to the guest with these flags, to guest port dport. */
static bool got_tcp(struct ctx *c, uint8_t flags, uint16_t dport)
{
	for (int i = 0; i < 5000; i++) {
		unsigned n = atomic_load(&c->ntcp);
		for (unsigned j = 0; j < n; j++)
			if (c->tcp[j].tcp_flags == flags && c->tcp[j].dport == dport)
				return true;
		usleep(1000);
	}
	return false;
}

/* Without any policy, user-mode networking still holds its host limits: a
 * guest opening connections without end gets at most
 * POLICY_DEFAULT_HOST_CONNS host sockets, the host's own services
 * (10.0.2.2 = its 127.0.0.1) are refused, and hostfwd still comes in. */
static void test_host_limits_without_policy(void **state)
{
	(void)state;
	uint16_t port, fwd_port;
	int ls = listener(&port);
	int probe = listener(&fwd_port); /* a free port for the hostfwd */
	close(probe);
	char err[200];

	static struct ctx c;
	memset(&c, 0, sizeof(c));
	policy_slot_init(&c.slot, NULL);
	struct evloop *l = evloop_new();
	assert_non_null(l);
	assert_int_equal(evloop_start(l), 0);
	struct net_fwd fwd = {.host_addr = 0x7f000001, .host_port = fwd_port, .guest_port = 22};
	struct net_backend *sl = net_slirp_new(&fwd, 1, l, err, sizeof(err));
	assert_non_null(sl);
	struct dev_gate g = {.stats = &c.st, .policy = &c.slot, .id = "net0"};
	struct net_filter_cfg fc = {.user_mode = true,
				    .net = NET_SLIRP_NET,
				    .mask = NET_SLIRP_MASK,
				    .host = NET_SLIRP_HOST,
				    .dns = NET_SLIRP_DNS,
				    .guest = NET_SLIRP_GUEST,
				    .clock = host_clock()};
	c.b = net_filter_new(sl, &g, &fc, err, sizeof(err));
	assert_non_null(c.b);
	run_on_loop(l, hook, &c);
	c.out_len = arp_request(c.out, NET_SLIRP_HOST);
	run_on_loop(l, send_out, &c);

	unsigned before = open_fds();
	flood_next = 0;
	for (unsigned i = 0; i < 30; i++)
		run_on_loop(l, flood, &c);
	unsigned host_sockets = open_fds() - before;
	printf("3000 SYNs: %u host sockets (cap %u)\n", host_sockets, POLICY_DEFAULT_HOST_CONNS);
	assert_true(host_sockets <= POLICY_DEFAULT_HOST_CONNS);

	/* the host's loopback: reset by the filter, nothing reaches it */
	run_on_loop(l, clear_tcp, &c);
	c.out_len = syn(c.out, 40000, NET_SLIRP_HOST, port);
	run_on_loop(l, send_out, &c);
	assert_true(got_tcp(&c, NET_TCP_RST | NET_TCP_ACK, 40000));
	assert_false(accepted(ls));

	/* hostfwd: a host client's connection reaches the guest (its SYN) */
	run_on_loop(l, clear_tcp, &c);
	int cl = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(fwd_port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_true(cl >= 0);
	int r = connect(cl, (struct sockaddr *)&sa, sizeof(sa));
	assert_true(r == 0 || errno == EINPROGRESS);
	assert_true(got_tcp(&c, NET_TCP_SYN, 22));

	close(cl);
	run_on_loop(l, free_b, &c);
	evloop_free(l);
	policy_slot_fini(&c.slot);
	close(ls);
}

/* ---- the host's limits against a hostile guest ---- */

static void ipv4_csum(uint8_t *ip)
{
	ip[10] = ip[11] = 0;
	put16(ip + 10, (uint16_t)~net_csum_fold(net_csum_add(0, ip, 20)));
}

/* A UDP datagram src:sport -> dst:dport with `plen` bytes of payload. */
static size_t udp(uint8_t *f, uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, const char *pay)
{
	size_t plen = strlen(pay);
	memset(f, 0, 14 + 28 + plen);
	memcpy(f, "\x52\x55\x0a\x00\x02\x02", 6);
	memcpy(f + 6, guest_mac, 6);
	put16(f + 12, 0x0800);
	uint8_t *ip = f + 14, *u = ip + 20;
	ip[0] = 0x45, put16(ip + 2, (unsigned)(28 + plen)), ip[8] = 64, ip[9] = 17;
	put32(ip + 12, src), put32(ip + 16, dst);
	ipv4_csum(ip);
	put16(u, sport), put16(u + 2, dport), put16(u + 4, (unsigned)(8 + plen));
	memcpy(u + 8, pay, plen); /* checksum 0: none */
	return 14 + 28 + plen;
}

/* A TCP segment from the guest with the given flags, seq and ack. */
static size_t tcp_seg(uint8_t *f, uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, uint8_t flags,
		      uint32_t seq, uint32_t ack)
{
	size_t n = syn(f, sport, dst, dport);
	uint8_t *ip = f + 14, *t = ip + 20;
	put32(ip + 12, src);
	ipv4_csum(ip);
	t[13] = flags;
	put32(t + 4, seq), put32(t + 8, ack);
	t[16] = t[17] = 0;
	uint8_t ps[12];
	memcpy(ps, ip + 12, 8);
	ps[8] = 0, ps[9] = 6, put16(ps + 10, 20);
	put16(t + 16, (uint16_t)~net_csum_fold(net_csum_add(net_csum_add(0, ps, 12), t, 20)));
	return n;
}

static int udp_listener(uint16_t port)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_true(s >= 0);
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

static bool got_udp(int s, const char *want)
{
	struct pollfd p = {.fd = s, .events = POLLIN};
	char buf[256];
	if (poll(&p, 1, 2000) != 1)
		return false;
	ssize_t n = recv(s, buf, sizeof(buf) - 1, 0);
	if (n < 0)
		return false;
	buf[n] = 0;
	return strcmp(buf, want) == 0;
}

static struct evloop *L;
static void up(struct ctx *c, struct policy *p)
{
	char err[200];
	policy_slot_init(&c->slot, p);
	L = evloop_new();
	assert_non_null(L);
	assert_int_equal(evloop_start(L), 0);
	struct net_backend *sl = net_slirp_new(NULL, 0, L, err, sizeof(err));
	assert_non_null(sl);
	static struct dev_gate g;
	g = (struct dev_gate){.stats = &c->st, .policy = &c->slot, .id = "net0"};
	struct net_filter_cfg fc = {.user_mode = true, .net = NET_SLIRP_NET, .mask = NET_SLIRP_MASK,
				    .host = NET_SLIRP_HOST, .dns = NET_SLIRP_DNS,
				    .guest = NET_SLIRP_GUEST, .clock = host_clock()};
	c->b = net_filter_new(sl, &g, &fc, err, sizeof(err));
	assert_non_null(c->b);
	run_on_loop(L, hook, c);
	c->out_len = arp_request(c->out, NET_SLIRP_HOST);
	run_on_loop(L, send_out, c);
}

static void down(struct ctx *c)
{
	run_on_loop(L, free_b, c);
	evloop_free(L);
	policy_slot_fini(&c->slot);
}

/* The DHCP exemption holds only at the addresses slirp's own server
 * answers (10.0.2.2, 255.255.255.255): UDP 68 -> 67 anywhere else is an
 * ordinary datagram from a host socket, and a policy denying all UDP
 * stops it (reaching the host's 127.0.0.1:67 neither directly nor through
 * an alias; 200 source addresses make no host socket each). */
static void test_dhcp_exemption_any_destination(void **state)
{
	(void)state;
	int s67 = udp_listener(67);
	if (s67 < 0)
		skip(); /* not root */
	struct policy_rule r = rule("deny-all-udp", POLICY_DENY, 0, 0);
	r.proto = POL_PROTO_UDP;
	struct policy_spec s = {.mode = POLICY_ENFORCE, .nrules = 1, .rules = &r, .max_host_connections = 1};
	char err[200];
	struct policy *p = policy_compile(&s, err, sizeof(err));
	assert_non_null(p);
	static struct ctx c;
	memset(&c, 0, sizeof(c));
	up(&c, p);

	/* to the host's 127.0.0.1:67 directly */
	c.out_len = udp(c.out, NET_SLIRP_GUEST, 68, 0x7f000001, 67, "to-127.0.0.1");
	run_on_loop(L, send_out, &c);
	bool direct = got_udp(s67, "to-127.0.0.1");
	/* via an unused address of slirp's network */
	c.out_len = udp(c.out, NET_SLIRP_GUEST, 68, 0x0a000205, 67, "to-10.0.2.5");
	run_on_loop(L, send_out, &c);
	bool alias = got_udp(s67, "to-10.0.2.5");

	/* host sockets: one per guest source address, none counted */
	unsigned before = open_fds();
	for (unsigned i = 0; i < 200; i++) {
		c.out_len = udp(c.out, 0x0b000000u + i, 68, 0xc0000201u, 67, "x");
		run_on_loop(L, send_out, &c);
	}
	unsigned after = open_fds();
	/* control: the same datagram to port 9 is refused by the rule */
	c.out_len = udp(c.out, NET_SLIRP_GUEST, 5000, 0xc0000201u, 9, "y");
	run_on_loop(L, send_out, &c);
	struct net_filter_stats fs;
	assert_true(net_filter_get_stats(c.b, &fs));
	down(&c);
	close(s67);
	assert_false(direct);
	assert_false(alias);
	assert_true(after - before < 4); /* denied by the rule: no host socket each */
	assert_true(fs.denied >= 200);
}

/* With no policy the host's loopback is out of reach: through 10.0.2.2,
 * and through the guest's own address (older libslirps sent it there). */
static void test_guest_address_reaches_host_loopback(void **state)
{
	(void)state;
	uint16_t port;
	int ls = listener(&port);
	static struct ctx c;
	memset(&c, 0, sizeof(c));
	up(&c, NULL); /* no policy: only the host limits */

	c.out_len = syn(c.out, 40010, NET_SLIRP_HOST, port); /* the control: refused */
	run_on_loop(L, send_out, &c);
	bool via_host = accepted(ls);
	c.out_len = syn(c.out, 40011, NET_SLIRP_GUEST, port);
	run_on_loop(L, send_out, &c);
	bool via_guest = accepted(ls);
	down(&c);
	close(ls);
	assert_false(via_host);
	assert_false(via_guest);
}


/* libslirp sends what goes to 255.255.255.255 to the host's 127.0.0.1
 * (sotranslate_out4): it is the host's loopback for the policy too. */
static void test_broadcast_reaches_host_loopback(void **state)
{
	(void)state;
	uint16_t port;
	int ls = listener(&port);
	int us = udp_listener(port);
	static struct ctx c;
	memset(&c, 0, sizeof(c));
	up(&c, NULL); /* no policy: only the host limits */

	c.out_len = udp(c.out, NET_SLIRP_GUEST, 5000, NET_SLIRP_HOST, port, "via-10.0.2.2");
	run_on_loop(L, send_out, &c);
	bool u_host = us >= 0 && got_udp(us, "via-10.0.2.2");
	c.out_len = udp(c.out, NET_SLIRP_GUEST, 5001, 0xffffffffu, port, "via-bcast");
	run_on_loop(L, send_out, &c);
	bool u_bcast = us >= 0 && got_udp(us, "via-bcast");
	c.out_len = syn(c.out, 40012, 0xffffffffu, port);
	run_on_loop(L, send_out, &c);
	bool t_bcast = accepted(ls);
	down(&c);
	close(ls);
	if (us >= 0)
		close(us);
	assert_false(u_host); /* the control: the loopback limit */
	assert_false(u_bcast);
	assert_false(t_bcast);
}

/* A guest reset ends a host connection only as slirp takes it: one far
 * outside slirp's window is given the number slirp acknowledged, so slirp
 * closes the host socket too (the cap of 2 lets all 8 in, one after the
 * other, and none stays open); one with a wrong checksum, which slirp
 * drops, ends nothing (the third connection is refused, the first two stay
 * open). */
static unsigned holds_open(int *fds, unsigned n)
{
	unsigned open = 0;
	for (unsigned i = 0; i < n; i++) {
		struct pollfd p = {.fd = fds[i], .events = POLLIN | POLLRDHUP};
		if (poll(&p, 1, 100) == 0)
			open++;
	}
	return open;
}

static void resets_against_the_cap(bool bad_csum)
{
	uint16_t port;
	int ls = listener(&port);
	struct policy_rule r = rule("host", POLICY_PROVIDE, NET_SLIRP_HOST, port);
	struct policy_spec s = {.mode = POLICY_ENFORCE, .nrules = 1, .rules = &r, .max_host_connections = 2};
	char err[200];
	struct policy *p = policy_compile(&s, err, sizeof(err));
	assert_non_null(p);
	free(r.ranges);
	static struct ctx c;
	memset(&c, 0, sizeof(c));
	up(&c, p);

	int fds[8];
	unsigned nacc = 0;
	for (unsigned i = 0; i < 8; i++) {
		uint16_t sp = (uint16_t)(41000 + i);
		run_on_loop(L, clear_tcp, &c);
		c.out_len = tcp_seg(c.out, NET_SLIRP_GUEST, sp, NET_SLIRP_HOST, port, NET_TCP_SYN, 1000, 0);
		run_on_loop(L, send_out, &c);
		struct pollfd pf = {.fd = ls, .events = POLLIN};
		if (poll(&pf, 1, 2000) != 1)
			break;
		fds[nacc++] = accept(ls, NULL, NULL);
		const struct net_pkt *k = wait_tcp(&c, 1);
		assert_int_equal(k->tcp_flags, NET_TCP_SYN | NET_TCP_ACK);
		uint32_t isn = k->seq;
		c.out_len = tcp_seg(c.out, NET_SLIRP_GUEST, sp, NET_SLIRP_HOST, port, NET_TCP_ACK, 1001, isn + 1);
		run_on_loop(L, send_out, &c);
		/* far outside slirp's receive window */
		c.out_len = tcp_seg(c.out, NET_SLIRP_GUEST, sp, NET_SLIRP_HOST, port, NET_TCP_RST | NET_TCP_ACK,
				    1001 + 0x40000000u, isn + 1);
		if (bad_csum)
			c.out[14 + 20 + 17] ^= 0x55;
		run_on_loop(L, send_out, &c);
	}
	usleep(200000);
	unsigned open = holds_open(fds, nacc);
	struct net_filter_stats fs;
	assert_true(net_filter_get_stats(c.b, &fs));
	down(&c);
	for (unsigned i = 0; i < nacc; i++)
		close(fds[i]);
	close(ls);
	if (bad_csum) {
		assert_int_equal(nacc, 2);
		assert_int_equal(open, 2);
		assert_int_equal(fs.host_conns, 2);
	} else {
		assert_int_equal(nacc, 8);
		assert_int_equal(open, 0);
	}
}

static void test_reset_outside_the_window_closes(void **state)
{
	(void)state;
	resets_against_the_cap(false);
}

static void test_reset_slirp_drops_frees_nothing(void **state)
{
	(void)state;
	resets_against_the_cap(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_allow_redirect_deny_through_slirp),
	    cmocka_unit_test(test_host_limits_without_policy),
	    cmocka_unit_test(test_dhcp_exemption_any_destination),
	    cmocka_unit_test(test_guest_address_reaches_host_loopback),
	    cmocka_unit_test(test_broadcast_reaches_host_loopback),
	    cmocka_unit_test(test_reset_outside_the_window_closes),
	    cmocka_unit_test(test_reset_slirp_drops_frees_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
