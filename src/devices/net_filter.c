/* net_filter — see net_filter.h. */
#include "devices/net_filter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "devices/net_ct.h"
#include "devices/net_pkt.h"
#include "devices/virtio_net.h" /* header length, largest frame */

#define INJ_MAX	    16 /* resets waiting for the guest */
#define RX_DROP_RUN 64 /* dropped ingress frames per recv before yielding */
#define LOOPBACK    0x7f000001u

struct nf {
	struct net_backend be; /* first */
	struct net_backend *in;
	struct dev_gate gate;
	struct net_filter_cfg cfg;
	struct net_ct *ct;
	/* what was derived from the policy in force */
	const struct policy *pol;
	uint64_t swaps, epoch;
	bool active;
	unsigned cap;
	bool rx_on;
	uint8_t inj[INJ_MAX][VIRTIO_NET_HDR_LEN + NET_RST_LEN];
	size_t inj_len[INJ_MAX];
	unsigned inj_head, inj_count;
	struct net_filter_stats st;
	uint8_t tx[VIRTIO_NET_HDR_LEN + VIRTIO_NET_FRAME_MAX];
	uint8_t rx[VIRTIO_NET_HDR_LEN + VIRTIO_NET_FRAME_MAX + 1];
};

static struct nf *to_nf(struct net_backend *b)
{
	return (struct nf *)b;
}

static size_t hdr_len(const struct nf *f)
{
	return f->be.vnet_hdr ? VIRTIO_NET_HDR_LEN : 0;
}

/* ---- the policy in force ------------------------------------------------ */

/* User-mode networking is always filtered: its host limits (the cap on
 * host sockets, the host's own services) hold with or without a policy. */
static void policy_seen(struct nf *f, const struct policy *p)
{
	uint64_t sw = atomic_load_explicit(&f->gate.policy->swaps, memory_order_acquire);

	if (p == f->pol && sw == f->swaps)
		return;
	f->pol = p;
	f->swaps = sw;
	f->epoch++;
	f->active = f->cfg.user_mode;
	f->cap = POLICY_DEFAULT_HOST_CONNS;
	if (!p)
		return;
	const struct policy_spec *s = policy_spec_of(p);
	for (unsigned i = 0; i < s->nrules && !f->active; i++) {
		const struct policy_rule *r = &s->rules[i];
		f->active = r->resource == POL_RES_NET && (!r->iface[0] || !strcmp(r->iface, f->gate.id));
	}
	if (s->max_host_connections) {
		f->active = true;
		f->cap = s->max_host_connections;
	}
}

/* ---- decisions ---------------------------------------------------------- */

struct dec {
	enum policy_verdict effect;
	bool nat;
	uint32_t ip;
	uint16_t port;
	int rule;
	/* for the record */
	struct policy_decision d;
	const char *why; /* a host limit decided: its name */
	enum policy_dir dir;
	uint8_t proto;
	uint32_t rip;
	uint16_t rport;
};

static enum policy_proto pol_proto(uint8_t proto)
{
	switch (proto) {
	case NET_IP_TCP:
		return POL_PROTO_TCP;
	case NET_IP_UDP:
		return POL_PROTO_UDP;
	default:
		return POL_PROTO_ICMP;
	}
}

/* Does a connection to ip:port end on the host itself (user mode)? */
static bool to_host(const struct nf *f, uint32_t ip, uint8_t proto, uint16_t port)
{
	/* slirp sends the limited broadcast to 127.0.0.1 as well */
	if ((ip >> 24) == 127 || (ip >> 24) == 0 || ip == 0xffffffffu)
		return true;
	if ((ip & f->cfg.mask) != f->cfg.net || ip == f->cfg.guest)
		return false;
	/* slirp: the DNS alias goes to the host's resolver, every other
	 * address of its network to the host's 127.0.0.1 */
	return !(ip == f->cfg.dns && port == 53 && proto != NET_IP_ICMP);
}

/* Counts a decision and hands its event to the sink. */
static void account(struct nf *f, const struct dec *out)
{
	const struct policy_decision *d = &out->d;

	f->st.flows++;
	if (out->nat)
		f->st.redirected++;
	if (out->why && !strcmp(out->why, "limits"))
		f->st.limited++;
	else if (out->why)
		f->st.host_refused++;
	if (!ev_wanted(f->gate.ev, d->audit))
		return;
	struct vevent e = {
	    .kind = EV_NET,
	    .vcpu = EV_NO_VCPU,
	    .write = (uint8_t)out->dir,
	    .verdict = (uint8_t)d->verdict,
	    .resource = POL_RES_NET,
	    .enforced = d->enforced,
	    .audit = d->audit,
	    .proto = (uint8_t)pol_proto(out->proto),
	    .count = 1,
	    .addr = out->rip,
	    .value = out->rport,
	    .extra = out->nat ? (uint64_t)out->ip << 16 | out->port : 0,
	    .device = f->gate.id,
	};
	const char *id = out->why ? out->why : d->r ? d->r->id : NULL;
	if (id) {
		e.has_rule = 1;
		snprintf(e.rule, sizeof(e.rule), "%s", id);
	}
	ev_emit(f->gate.ev, &e);
}

/* One decision for a flow opened in `dir` with remote ip:port. `fresh`: a
 * flow not yet counted toward the host-connection cap. `quiet`: the caller
 * accounts for it (or for another decision instead). */
static void judge(struct nf *f, const struct policy *p, enum policy_dir dir, uint8_t proto, uint32_t ip,
		  uint16_t port, bool fresh, uint64_t now, struct dec *out)
{
	struct policy_decision d;
	const char *why = NULL;

	if (p)
		policy_decide_net(p, f->gate.id, dir, pol_proto(proto), ip, port, &d);
	else /* user mode without a policy: only the host limits decide */
		d = (struct policy_decision){ .verdict = POLICY_PROVIDE, .enforced = true, .rule = -1 };
	*out = (struct dec){.rule = d.rule, .dir = dir, .proto = proto, .rip = ip, .rport = port};
	if (d.verdict == POLICY_REDIRECT && (!f->cfg.user_mode || dir != POL_DIR_EGRESS || !d.r)) {
		d.verdict = POLICY_DENY; /* net_filter_check() refuses these */
		d.audit = true;
	} else if (d.verdict == POLICY_REDIRECT) {
		out->nat = true;
		out->ip = d.r->to_ip == LOOPBACK ? f->cfg.host : d.r->to_ip;
		out->port = d.r->to_port ? d.r->to_port : port;
		if (proto == NET_IP_ICMP)
			out->port = port;
	}
	if (f->cfg.user_mode && dir == POL_DIR_EGRESS && d.verdict != POLICY_DENY) {
		if (d.verdict == POLICY_PROVIDE && to_host(f, ip, proto, port) &&
		    !(d.r && d.r->dst_prefix > 0)) {
			why = "host-loopback";
		} else if (fresh) {
			if (net_ct_host_conns(f->ct) >= f->cap)
				net_ct_expire(f->ct, now, 0);
			if (net_ct_host_conns(f->ct) >= f->cap)
				why = "limits";
		}
		if (why) {
			d.verdict = POLICY_DENY;
			d.audit = true;
			out->nat = false;
		}
	}
	out->effect = policy_effect(&d);
	if (out->effect != POLICY_REDIRECT)
		out->nat = false;
	out->d = d;
	out->why = why;
}

static void decide(struct nf *f, const struct policy *p, enum policy_dir dir, uint8_t proto, uint32_t ip,
		   uint16_t port, bool fresh, uint64_t now, struct dec *out)
{
	judge(f, p, dir, proto, ip, port, fresh, now, out);
	account(f, out);
}

/* The first packet we see of a TCP connection that is not its SYN (opened
 * before the policy, or forgotten by the table) does not say who opened it.
 * On user-mode networking, where no TCP segment leaves without a connection
 * slirp accepted, a guest segment the egress rules refuse is taken as part
 * of a connection the host side opened (a hostfwd one) when the ingress
 * rules provide that. Never on TAP: there a crafted segment would leave. */
static void decide_midstream(struct nf *f, const struct policy *p, const struct net_ct_key *k, uint64_t now,
			     struct dec *out, bool *ingress_flow)
{
	struct dec in;

	*ingress_flow = false;
	judge(f, p, POL_DIR_EGRESS, k->proto, k->rip, k->rport, true, now, out);
	if (out->effect == POLICY_DENY) {
		judge(f, p, POL_DIR_INGRESS, k->proto, k->rip, k->rport, false, now, &in);
		if (in.effect == POLICY_PROVIDE) {
			*out = in;
			*ingress_flow = true;
		}
	}
	account(f, out);
}

/* ---- packets ------------------------------------------------------------ */

static void inject_rst(struct nf *f, const uint8_t *frame, const struct net_pkt *p)
{
	if (p->tcp_flags & NET_TCP_RST)
		return; /* never answer a reset */
	if (f->inj_count == INJ_MAX)
		return;
	unsigned i = (f->inj_head + f->inj_count) % INJ_MAX;
	size_t hl = hdr_len(f);
	memset(f->inj[i], 0, hl);
	f->inj_len[i] = hl + net_pkt_build_rst(f->inj[i] + hl, frame, p);
	f->inj_count++;
	f->st.resets++;
}

static void flow_key(const struct net_pkt *p, bool ingress, struct net_ct_key *k)
{
	*k = (struct net_ct_key){.proto = p->proto};
	k->gip = ingress ? p->dst : p->src;
	k->rip = ingress ? p->src : p->dst;
	if (p->proto == NET_IP_ICMP) {
		k->gport = p->icmp_echo ? p->sport : 0; /* the echo identifier */
		return;
	}
	k->gport = ingress ? p->dport : p->sport;
	k->rport = ingress ? p->sport : p->dport;
}

#define SEQ_GEQ(a, b) ((int32_t)((a) - (b)) >= 0)

/* User mode: does this reset end slirp's socket? A host connection counts
 * until slirp has closed its socket, and the guest must not be able to end
 * the count with a segment slirp ignores (outside its window, a wrong
 * checksum). So a reset of the guest's is made one slirp takes: checked as
 * slirp checks it, and its sequence number set to the last one slirp
 * acknowledged (or the one after the guest's SYN), which slirp's window
 * check always lets through (BSD's tcp_input: a reset left of the window is
 * still processed). A reset of slirp's ends its socket when slirp closed
 * the connection (tcp_drop: its next sequence number); one that answers a
 * guest's bad segment (tcp_respond, from the guest's numbers) does not. */
static bool reset_ends(struct net_ct_entry *e, uint8_t *frame, struct net_pkt *p, bool ingress)
{
	if (ingress) {
		if (e->seen & NET_CT_SEEN_RNEXT)
			return p->seq == e->rnext;
		/* slirp's answer to the guest's SYN, before anything else of
		 * its own: the connection refused */
		return (e->seen & NET_CT_SEEN_GSYN) && (p->tcp_flags & NET_TCP_ACK) && p->ack == e->gsyn;
	}
	if (!(e->seen & (NET_CT_SEEN_RACK | NET_CT_SEEN_GSYN)) || !net_pkt_csums_ok(frame, p))
		return false;
	net_pkt_set_seq(frame, p, e->seen & NET_CT_SEEN_RACK ? e->rack : e->gsyn);
	return true;
}

/* User mode: what slirp's side of e has shown, and the guest's FIN counted
 * only once slirp acknowledged it (one slirp dropped would otherwise let
 * the guest end the count while slirp's socket lives on). */
static void follow(struct net_ct_entry *e, const struct net_pkt *p, bool ingress)
{
	uint8_t fl = p->tcp_flags;
	uint32_t end = p->seq + p->tcp_payload + !!(fl & NET_TCP_SYN) + !!(fl & NET_TCP_FIN);

	if (ingress) {
		if (fl & NET_TCP_ACK) {
			e->rack = p->ack;
			e->seen |= NET_CT_SEEN_RACK;
			if ((e->seen & NET_CT_SEEN_GFIN) && SEQ_GEQ(p->ack, e->gfin)) {
				if (!(e->fins & 2))
					e->seen |= NET_CT_SEEN_GFIRST;
				e->fins |= 1;
				e->seen &= (uint8_t)~NET_CT_SEEN_GFIN;
			}
		}
		if (!(e->seen & NET_CT_SEEN_RNEXT) || SEQ_GEQ(end, e->rnext)) {
			e->rnext = end;
			e->seen |= NET_CT_SEEN_RNEXT;
		}
		return;
	}
	if (fl & NET_TCP_SYN) {
		e->gsyn = p->seq + 1;
		e->seen |= NET_CT_SEEN_GSYN;
	}
	/* a FIN slirp has not acknowledged yet: at or after its last ACK */
	if ((fl & NET_TCP_FIN) && (e->seen & NET_CT_SEEN_RACK) && SEQ_GEQ(end - 1, e->rack)) {
		e->gfin = end;
		e->seen |= NET_CT_SEEN_GFIN;
	}
}

/* TCP state from one packet of e; false when the flow ended with it. */
static bool track(struct nf *f, struct net_ct_entry *e, uint8_t *frame, struct net_pkt *p, bool ingress)
{
	if (p->proto != NET_IP_TCP)
		return true;
	bool user = f->cfg.user_mode;
	if (p->tcp_flags & NET_TCP_RST) {
		if (user && !reset_ends(e, frame, p, ingress))
			return true; /* slirp's socket lives on: so does the flow */
		net_ct_del(f->ct, e);
		return false;
	}
	bool from_opener = ingress != e->egress;
	if (e->state == CT_NEW && !from_opener)
		e->state = CT_ESTABLISHED; /* the other side answered */
	if (user)
		follow(e, p, ingress);
	else if (p->tcp_flags & NET_TCP_FIN)
		e->fins |= ingress ? 2 : 1;
	if (user && ingress && (p->tcp_flags & NET_TCP_FIN))
		e->fins |= 2;
	/* Closed both ways: the flow is forgotten soon. A host connection
	 * still counts till then (slirp's socket waits out TIME_WAIT), unless
	 * the guest closed first: slirp then closes its socket on the guest's
	 * ACK of its FIN, which must be one slirp takes (at the guest's next
	 * number, acknowledging all slirp sent, checksums right). */
	if (user && !ingress && e->fins == 3 && (e->seen & NET_CT_SEEN_GFIRST) &&
	    (p->tcp_flags & (NET_TCP_ACK | NET_TCP_SYN | NET_TCP_FIN)) == NET_TCP_ACK && !p->tcp_payload &&
	    p->seq == e->gfin && (e->seen & NET_CT_SEEN_RNEXT) && p->ack == e->rnext && net_pkt_csums_ok(frame, p)) {
		net_ct_del(f->ct, e);
		return false;
	}
	if (e->fins == 3 && e->state != CT_CLOSING)
		e->state = CT_CLOSING;
	return true;
}

enum act { PASS, DROP };

/* One IPv4 TCP/UDP/ICMP packet of the guest (egress) or for it (ingress). */
static enum act flow_packet(struct nf *f, const struct policy *p, uint8_t *frame, struct net_pkt *pk,
			    bool ingress)
{
	uint64_t now = vclock_mono_ns(&f->cfg.clock);
	struct net_ct_key k;

	flow_key(pk, ingress, &k);
	net_ct_expire(f->ct, now, 2);
	struct net_ct_entry *e = net_ct_find(f->ct, &k, ingress);
	if (e && e->state == CT_CLOSING && pk->proto == NET_IP_TCP &&
	    (pk->tcp_flags & (NET_TCP_SYN | NET_TCP_ACK)) == NET_TCP_SYN) {
		net_ct_del(f->ct, e); /* the same ports opened again: a new connection */
		e = NULL;
	}
	struct dec dd;
	bool decided = false;
	if (e && e->epoch != f->epoch) {
		/* decided under another policy: again, in its own direction */
		decide(f, p, e->egress ? POL_DIR_EGRESS : POL_DIR_INGRESS, k.proto, e->key.rip, e->key.rport,
		       false, now, &dd);
		bool same = dd.effect != POLICY_DENY && dd.nat == e->nat &&
			    (!dd.nat || (dd.ip == e->rkey.rip && dd.port == e->rkey.rport));
		if (same) {
			e->epoch = f->epoch;
			e->rule = dd.rule;
		} else {
			/* the new decision holds from here, as for a new flow
			 * (in the direction of this packet's sender) */
			decided = e->egress != ingress;
			net_ct_del(f->ct, e);
			e = NULL;
			if (dd.effect == POLICY_DENY)
				goto deny;
		}
	}
	bool opened_by_remote = ingress;
	if (!e) {
		/* a new flow, opened by this packet's sender */
		bool midstream = f->cfg.user_mode && !ingress && pk->proto == NET_IP_TCP &&
				 !(pk->tcp_flags & (NET_TCP_SYN | NET_TCP_RST));
		if (!decided && midstream)
			decide_midstream(f, p, &k, now, &dd, &opened_by_remote);
		else if (!decided)
			decide(f, p, ingress ? POL_DIR_INGRESS : POL_DIR_EGRESS, k.proto, k.rip, k.rport,
			       true, now, &dd);
		if (dd.effect == POLICY_DENY)
			goto deny;
		if (pk->proto == NET_IP_TCP && (pk->tcp_flags & NET_TCP_RST))
			return PASS; /* nothing to track */
		struct net_ct_key rk = k;
		if (dd.nat) {
			rk.rip = dd.ip;
			rk.rport = dd.port;
		}
		e = net_ct_add(f->ct, &k, &rk, now);
		if (!e)
			goto deny; /* another redirected flow already looks like this one */
		e->egress = !opened_by_remote;
		e->nat = dd.nat;
		e->epoch = f->epoch;
		e->rule = dd.rule;
		e->state =
		    pk->proto == NET_IP_TCP && (pk->tcp_flags & (NET_TCP_SYN | NET_TCP_ACK)) == NET_TCP_SYN
			? CT_NEW
			: CT_ESTABLISHED;
		net_ct_set_host_conn(f->ct, e, f->cfg.user_mode && !opened_by_remote);
	}
	bool nat = e->nat;
	uint32_t nip = ingress ? e->key.rip : e->rkey.rip;
	uint16_t nport = ingress ? e->key.rport : e->rkey.rport;
	if (track(f, e, frame, pk, ingress))
		net_ct_touch(f->ct, e, now);
	if (nat)
		net_pkt_rewrite(frame, pk, !ingress, nip, nport);
	return PASS;
deny:
	f->st.denied++;
	if (f->gate.stats)
		atomic_fetch_add_explicit(&f->gate.stats->denied, 1, memory_order_relaxed);
	if (!ingress && pk->proto == NET_IP_TCP)
		inject_rst(f, frame, pk);
	return DROP;
}

/* An ICMP error about a packet of a flow the policy let through (a port
 * unreachable, "fragmentation needed") belongs to that flow. Not for a
 * redirected flow: its quote would need rewriting too; it is decided as
 * an ICMP flow of its own. */
static bool related(struct nf *f, const uint8_t *frame, const struct net_pkt *pk, bool ingress)
{
	struct net_pkt in;

	if (!net_pkt_icmp_quote(frame, pk, &in))
		return false;
	/* The error's own addresses must be the flow's: one the guest sends
	 * goes back to the quoted packet's sender, from its receiver (else
	 * any destination, any source and any data would pass on a quote);
	 * one for the guest goes to the quoted packet's sender, from anywhere
	 * on the path. */
	if (pk->dst != in.src || (!ingress && pk->src != in.dst))
		return false;
	/* the quoted packet went the other way: from the error's receiver */
	struct net_ct_key k;
	flow_key(&in, !ingress, &k);
	struct net_ct_entry *e = net_ct_find(f->ct, &k, ingress);
	if (!e || e->nat || e->epoch != f->epoch)
		return false;
	net_ct_touch(f->ct, e, vclock_mono_ns(&f->cfg.clock));
	return true;
}

static enum act filter(struct nf *f, const struct policy *p, uint8_t *frame, size_t len, bool ingress)
{
	struct net_pkt pk;

	switch (net_pkt_parse(frame, len, &pk)) {
	case NET_PKT_ARP:
		return PASS;
	case NET_PKT_IPV4:
		break;
	default:
		f->st.dropped++;
		return DROP;
	}
	if (pk.proto != NET_IP_TCP && pk.proto != NET_IP_UDP && pk.proto != NET_IP_ICMP) {
		f->st.dropped++;
		return DROP;
	}
	/* slirp's own DHCP server: no host connection, and the guest needs it.
	 * Only at the addresses slirp answers itself: port 67 anywhere else is
	 * an ordinary datagram slirp sends from a host socket. */
	if (f->cfg.user_mode && pk.proto == NET_IP_UDP &&
	    (ingress ? pk.sport == 67 && pk.dport == 68 && pk.src == f->cfg.host
		     : pk.sport == 68 && pk.dport == 67 && (pk.dst == f->cfg.host || pk.dst == 0xffffffffu)))
		return PASS;
	if (related(f, frame, &pk, ingress))
		return PASS;
	return flow_packet(f, p, frame, &pk, ingress);
}

/* ---- backend ops -------------------------------------------------------- */

/* Whether frames are filtered (false: they pass untouched), and the
 * policy in force in *pp (NULL for none: user mode's host limits alone).
 * When true, leave() follows. */
static bool enter(struct nf *f, const struct policy **pp)
{
	const struct policy *p = f->gate.policy ? policy_enter(f->gate.policy) : NULL;

	*pp = p;
	if (f->gate.policy)
		policy_seen(f, p);
	if (f->active)
		return true;
	if (f->gate.policy)
		policy_leave(f->gate.policy);
	return false;
}

static void leave(struct nf *f)
{
	if (f->gate.policy)
		policy_leave(f->gate.policy);
}

static void kick_rx(struct nf *f)
{
	if (f->inj_count && f->rx_on && f->be.rx_ready)
		f->be.rx_ready(f->be.rx_ctx);
}

/* A partial checksum the host is asked to complete lands where the
 * guest's header says, and csum_start also tells the host's GSO where the
 * TCP or UDP header is. Both must be the ones the filter judged: else the
 * host would write (a port) or segment by bytes it never looked at. */
static bool csum_request_ok(const uint8_t *hdr, const uint8_t *frame, size_t len)
{
	if (!(hdr[VIRTIO_NET_HDR_OFF_FLAGS] & VIRTIO_NET_HDR_F_NEEDS_CSUM))
		return true;
	struct net_pkt pk;
	if (net_pkt_parse(frame, len, &pk) != NET_PKT_IPV4)
		return false;
	unsigned start = hdr[6] | (unsigned)hdr[7] << 8, off = hdr[8] | (unsigned)hdr[9] << 8;
	return start == pk.l4 && ((pk.proto == NET_IP_TCP && off == 16) || (pk.proto == NET_IP_UDP && off == 6));
}

static int nf_send(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
	struct nf *f = to_nf(b);
	const struct policy *p;

	if (!enter(f, &p))
		return f->in->ops->send(f->in, iov, iovcnt);
	/* Our own copy: the guest may change its buffers after the check. */
	size_t len = 0;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > sizeof(f->tx) - len) {
			leave(f);
			return -EMSGSIZE;
		}
		memcpy(f->tx + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	size_t hl = hdr_len(f);
	enum act a = len < hl ? DROP : filter(f, p, f->tx + hl, len - hl, false);
	if (a == PASS && hl && !csum_request_ok(f->tx, f->tx + hl, len - hl)) {
		f->st.dropped++;
		a = DROP;
	}
	leave(f);
	if (a == DROP) {
		kick_rx(f);
		return 0;
	}
	struct iovec one = {.iov_base = f->tx, .iov_len = len};
	return f->in->ops->send(f->in, &one, 1);
}

static ssize_t copy_out(const uint8_t *src, size_t len, const struct iovec *iov, int iovcnt)
{
	size_t off = 0;

	for (int i = 0; i < iovcnt && off < len; i++) {
		size_t chunk = len - off < iov[i].iov_len ? len - off : iov[i].iov_len;
		memcpy(iov[i].iov_base, src + off, chunk);
		off += chunk;
	}
	return (ssize_t)len;
}

static ssize_t nf_recv(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
	struct nf *f = to_nf(b);

	if (f->inj_count) {
		unsigned i = f->inj_head;
		f->inj_head = (f->inj_head + 1) % INJ_MAX;
		f->inj_count--;
		return copy_out(f->inj[i], f->inj_len[i], iov, iovcnt);
	}
	const struct policy *p;
	if (!enter(f, &p))
		return f->in->ops->recv(f->in, iov, iovcnt);
	size_t hl = hdr_len(f);
	struct iovec bounce = {.iov_base = f->rx, .iov_len = sizeof(f->rx)};
	ssize_t r = -EAGAIN;
	for (unsigned n = 0; n < RX_DROP_RUN; n++) {
		r = f->in->ops->recv(f->in, &bounce, 1);
		if (r < 0 || (size_t)r >= sizeof(f->rx) || (size_t)r < hl)
			break; /* an error, or a frame the device refuses anyway */
		if (filter(f, p, f->rx + hl, (size_t)r - hl, true) == PASS) {
			leave(f);
			return copy_out(f->rx, (size_t)r, iov, iovcnt);
		}
		r = -EAGAIN;
	}
	leave(f);
	return r;
}

static void nf_rx_enable(struct net_backend *b, bool on)
{
	struct nf *f = to_nf(b);

	f->rx_on = on;
	f->in->ops->rx_enable(f->in, on);
}

static int nf_activate(struct net_backend *b, uint64_t features)
{
	struct nf *f = to_nf(b);

	return f->in->ops->activate ? f->in->ops->activate(f->in, features) : 0;
}

static void nf_free(struct net_backend *b)
{
	struct nf *f = to_nf(b);

	f->in->ops->free(f->in);
	net_ct_free(f->ct);
	free(f);
}

static const struct net_backend_ops nf_ops = {
    .send = nf_send,
    .recv = nf_recv,
    .rx_enable = nf_rx_enable,
    .activate = nf_activate,
    .free = nf_free,
};

static void on_inner_rx(void *ctx)
{
	struct nf *f = ctx;

	if (f->be.rx_ready)
		f->be.rx_ready(f->be.rx_ctx);
}

struct net_backend *net_filter_new(struct net_backend *inner, const struct dev_gate *gate,
				   const struct net_filter_cfg *cfg, char *err, size_t errlen)
{
	struct nf *f = calloc(1, sizeof(*f));
	struct net_ct *ct = net_ct_new();

	if (!f || !ct) {
		snprintf(err, errlen, "net: out of memory");
		free(f);
		net_ct_free(ct);
		inner->ops->free(inner);
		return NULL;
	}
	f->in = inner;
	f->ct = ct;
	f->gate = *gate;
	f->cfg = *cfg;
	f->active = cfg->user_mode;
	f->cap = POLICY_DEFAULT_HOST_CONNS;
	f->be.ops = &nf_ops;
	f->be.name = inner->name;
	f->be.vnet_hdr = inner->vnet_hdr;
	f->be.features = inner->features;
	inner->rx_ready = on_inner_rx;
	inner->rx_ctx = f;
	return &f->be;
}

bool net_filter_get_stats(const struct net_backend *b, struct net_filter_stats *st)
{
	if (!b || b->ops != &nf_ops)
		return false;
	const struct nf *f = (const struct nf *)b;
	*st = f->st;
	st->evicted = net_ct_evicted(f->ct);
	st->open_flows = net_ct_count(f->ct);
	st->host_conns = net_ct_host_conns(f->ct);
	return true;
}

int net_filter_check(const struct policy_spec *s, const char *iface, bool user_mode, char *err, size_t errlen)
{
	for (unsigned i = 0; i < s->nrules; i++) {
		const struct policy_rule *r = &s->rules[i];
		if (r->resource != POL_RES_NET || r->verdict != POLICY_REDIRECT ||
		    (r->iface[0] && strcmp(r->iface, iface)))
			continue;
		if (!user_mode) {
			snprintf(err, errlen,
				 "policy: rule '%s': redirect needs user-mode networking, and interface '%s' "
				 "is a TAP "
				 "interface (name another one in \"iface\")",
				 r->id, iface);
			return -1;
		}
		if (r->dir != POL_DIR_EGRESS) {
			snprintf(err, errlen,
				 "policy: rule '%s': \"direction\": a redirect is for egress connections",
				 r->id);
			return -1;
		}
		if ((r->to_ip >> 24) == 127 && r->to_ip != LOOPBACK) {
			snprintf(err, errlen,
				 "policy: rule '%s': \"to\": user-mode networking reaches only 127.0.0.1 of "
				 "the host's "
				 "loopback",
				 r->id);
			return -1;
		}
		if (!r->to_ip || (!r->to_port && r->proto != POL_PROTO_ICMP)) {
			snprintf(err, errlen, "policy: rule '%s': \"to\": want HOST:PORT", r->id);
			return -1;
		}
	}
	return 0;
}
