/* net_pkt — see net_pkt.h. */
#include "devices/net_pkt.h"

#include <string.h>

static uint16_t be16(const uint8_t *b)
{
	return (uint16_t)(b[0] << 8 | b[1]);
}

static uint32_t be32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static void put16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static void put32(uint8_t *b, uint32_t v)
{
	put16(b, (uint16_t)(v >> 16));
	put16(b + 2, (uint16_t)v);
}

static enum net_pkt_kind transport(const uint8_t *f, struct net_pkt *p)
{
	size_t avail = p->ip_end - p->l4;
	const uint8_t *h = f + p->l4;

	switch (p->proto) {
	case NET_IP_TCP: {
		if (avail < 20)
			return NET_PKT_BAD;
		size_t doff = (size_t)(h[12] >> 4) * 4;
		if (doff < 20 || doff > avail)
			return NET_PKT_BAD;
		p->sport = be16(h);
		p->dport = be16(h + 2);
		p->seq = be32(h + 4);
		p->ack = be32(h + 8);
		p->tcp_flags = h[13];
		p->tcp_payload = (uint32_t)(avail - doff);
		return NET_PKT_IPV4;
	}
	case NET_IP_UDP: {
		if (avail < 8)
			return NET_PKT_BAD;
		uint16_t ulen = be16(h + 4);
		if (ulen < 8 || ulen > avail)
			return NET_PKT_BAD;
		p->sport = be16(h);
		p->dport = be16(h + 2);
		return NET_PKT_IPV4;
	}
	case NET_IP_ICMP:
		if (avail < 8)
			return NET_PKT_BAD;
		p->icmp_type = h[0];
		p->icmp_echo = h[0] == 0 || h[0] == 8;
		if (p->icmp_echo)
			p->sport = p->dport = be16(h + 4);
		return NET_PKT_IPV4;
	}
	return NET_PKT_IPV4; /* another protocol: no ports */
}

enum net_pkt_kind net_pkt_parse(const uint8_t *f, size_t len, struct net_pkt *p)
{
	memset(p, 0, sizeof(*p));
	p->kind = NET_PKT_BAD;
	if (!f || len < NET_ETH_HLEN)
		return p->kind;
	uint16_t type = be16(f + 12);
	if (type == NET_ETH_ARP)
		return p->kind = NET_PKT_ARP;
	if (type == NET_ETH_IPV6)
		return p->kind = NET_PKT_IPV6;
	if (type != NET_ETH_IPV4)
		return p->kind = NET_PKT_OTHER;

	p->l3 = NET_ETH_HLEN;
	if (len - p->l3 < 20)
		return p->kind;
	const uint8_t *ip = f + p->l3;
	size_t ihl = (size_t)(ip[0] & 15) * 4;
	size_t tot = be16(ip + 2);
	if ((ip[0] >> 4) != 4 || ihl < 20 || tot < ihl || tot > len - p->l3)
		return p->kind;
	p->ip_end = p->l3 + tot;
	p->l4 = p->l3 + ihl;
	p->proto = ip[9];
	p->src = be32(ip + 12);
	p->dst = be32(ip + 16);
	uint16_t frag = be16(ip + 6);
	if (frag & 0x3fff) /* MF or an offset: the transport header is not whole here */
		return p->kind = NET_PKT_FRAG;
	return p->kind = transport(f, p);
}

bool net_pkt_icmp_quote(const uint8_t *f, const struct net_pkt *p, struct net_pkt *in)
{
	memset(in, 0, sizeof(*in));
	if (p->kind != NET_PKT_IPV4 || p->proto != NET_IP_ICMP ||
	    !(p->icmp_type == 3 || p->icmp_type == 4 || p->icmp_type == 11 || p->icmp_type == 12))
		return false;
	size_t q = p->l4 + 8, avail = p->ip_end - q; /* parse() saw 8 bytes of ICMP header */
	const uint8_t *ip = f + q;
	if (avail < 20)
		return false;
	size_t ihl = (size_t)(ip[0] & 15) * 4;
	if ((ip[0] >> 4) != 4 || ihl < 20 || avail < ihl + 8)
		return false;
	in->kind = NET_PKT_IPV4;
	in->proto = ip[9];
	in->src = be32(ip + 12);
	in->dst = be32(ip + 16);
	in->l3 = q;
	in->l4 = q + ihl;
	const uint8_t *l4 = ip + ihl;
	if (in->proto == NET_IP_ICMP) {
		in->icmp_type = l4[0];
		in->icmp_echo = l4[0] == 0 || l4[0] == 8;
		if (in->icmp_echo)
			in->sport = in->dport = be16(l4 + 4);
	} else {
		in->sport = be16(l4);
		in->dport = be16(l4 + 2);
	}
	return true;
}

uint32_t net_csum_add(uint32_t sum, const void *buf, size_t len)
{
	const uint8_t *b = buf;

	for (; len > 1; b += 2, len -= 2) {
		sum += be16(b);
		sum = (sum & 0xffff) + (sum >> 16);
	}
	if (len)
		sum += (uint32_t)b[0] << 8;
	return (sum & 0xffff) + (sum >> 16);
}

uint16_t net_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). */
static void csum_update16(uint8_t *csum, uint16_t old, uint16_t new)
{
	uint32_t s = (uint32_t)(uint16_t)~be16(csum) + (uint16_t)~old + new;
	put16(csum, (uint16_t)~net_csum_fold(s));
}

static void csum_update32(uint8_t *csum, uint32_t old, uint32_t new)
{
	csum_update16(csum, (uint16_t)(old >> 16), (uint16_t)(new >> 16));
	csum_update16(csum, (uint16_t)old, (uint16_t) new);
}

void net_pkt_rewrite(uint8_t *f, struct net_pkt *p, bool dnat, uint32_t ip, uint16_t port)
{
	uint8_t *iph = f + p->l3, *l4 = f + p->l4;
	uint32_t old_ip = dnat ? p->dst : p->src;

	put32(iph + (dnat ? 16 : 12), ip);
	csum_update32(iph + 10, old_ip, ip);
	if (p->proto == NET_IP_TCP || p->proto == NET_IP_UDP) {
		uint8_t *csum = l4 + (p->proto == NET_IP_TCP ? 16 : 6);
		uint8_t *pp = l4 + (dnat ? 2 : 0);
		uint16_t old_port = be16(pp);
		put16(pp, port);
		if (p->proto == NET_IP_TCP || be16(csum)) {
			csum_update32(csum, old_ip, ip);
			csum_update16(csum, old_port, port);
			if (p->proto == NET_IP_UDP && !be16(csum))
				put16(csum, 0xffff); /* 0 would mean "no checksum" */
		}
		if (dnat)
			p->dport = port;
		else
			p->sport = port;
	}
	if (dnat)
		p->dst = ip;
	else
		p->src = ip;
}

bool net_pkt_csums_ok(const uint8_t *f, const struct net_pkt *p)
{
	const uint8_t *iph = f + p->l3;
	if (net_csum_fold(net_csum_add(0, iph, p->l4 - p->l3)) != 0xffff)
		return false;
	if (p->proto != NET_IP_TCP)
		return true;
	size_t len = p->ip_end - p->l4;
	uint8_t ph[12];
	memcpy(ph, iph + 12, 8); /* source and destination */
	ph[8] = 0;
	ph[9] = NET_IP_TCP;
	put16(ph + 10, (uint16_t)len);
	return net_csum_fold(net_csum_add(net_csum_add(0, ph, sizeof(ph)), f + p->l4, len)) == 0xffff;
}

void net_pkt_set_seq(uint8_t *f, struct net_pkt *p, uint32_t seq)
{
	uint8_t *tcp = f + p->l4;
	put32(tcp + 4, seq);
	csum_update32(tcp + 16, p->seq, seq);
	p->seq = seq;
}

size_t net_pkt_build_rst(uint8_t *out, const uint8_t *frame, const struct net_pkt *p)
{
	uint8_t *ip = out + NET_ETH_HLEN, *tcp = ip + 20;

	memset(out, 0, NET_RST_LEN);
	memcpy(out, frame + 6, 6); /* back to the sender */
	memcpy(out + 6, frame, 6);
	put16(out + 12, NET_ETH_IPV4);

	ip[0] = 0x45;
	put16(ip + 2, 40);
	put16(ip + 6, 0x4000); /* DF */
	ip[8] = 64;
	ip[9] = NET_IP_TCP;
	put32(ip + 12, p->dst);
	put32(ip + 16, p->src);
	put16(ip + 10, (uint16_t)~net_csum_fold(net_csum_add(0, ip, 20)));

	put16(tcp, p->dport);
	put16(tcp + 2, p->sport);
	if (p->tcp_flags & NET_TCP_ACK) {
		put32(tcp + 4, p->ack);
		tcp[13] = NET_TCP_RST;
	} else {
		uint32_t len =
		    p->tcp_payload + !!(p->tcp_flags & NET_TCP_SYN) + !!(p->tcp_flags & NET_TCP_FIN);
		put32(tcp + 8, p->seq + len);
		tcp[13] = NET_TCP_RST | NET_TCP_ACK;
	}
	tcp[12] = 5 << 4;
	uint8_t pseudo[12];
	memcpy(pseudo, ip + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = NET_IP_TCP;
	put16(pseudo + 10, 20);
	uint32_t sum = net_csum_add(net_csum_add(0, pseudo, sizeof(pseudo)), tcp, 20);
	put16(tcp + 16, (uint16_t)~net_csum_fold(sum));
	return NET_RST_LEN;
}
