/* net_pkt — reading and rewriting the headers of one Ethernet frame for the
 * network policy (devices/net_filter.c): Ethernet -> IPv4 -> TCP/UDP/ICMP,
 * every length checked against the frame (guest frames are hostile, and so
 * is what the network sends), the Internet checksum, incremental checksum
 * updates for address rewriting (RFC 1624), and the TCP reset the policy
 * answers a refused connection with. Pure byte work: no allocation, no I/O.
 * Used by net_filter.c and the unit tests. */
#ifndef VIGIL_DEVICES_NET_PKT_H
#define VIGIL_DEVICES_NET_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_ETH_HLEN 14u
#define NET_ETH_ARP  0x0806
#define NET_ETH_IPV4 0x0800
#define NET_ETH_IPV6 0x86dd
#define NET_IP_TCP   6
#define NET_IP_UDP   17
#define NET_IP_ICMP  1

#define NET_TCP_FIN 0x01
#define NET_TCP_SYN 0x02
#define NET_TCP_RST 0x04
#define NET_TCP_ACK 0x10

/* What a frame is, as far as the policy cares. */
enum net_pkt_kind {
	NET_PKT_BAD, /* truncated or inconsistent headers */
	NET_PKT_ARP,
	NET_PKT_IPV6,
	NET_PKT_OTHER, /* another ethertype (VLAN tags included) */
	NET_PKT_FRAG,  /* an IPv4 fragment: no (or not all of the) transport header */
	NET_PKT_IPV4,  /* IPv4 with a transport the fields below describe */
};

struct net_pkt {
	enum net_pkt_kind kind;
	uint8_t proto;	       /* IPv4 protocol number */
	uint32_t src, dst;     /* host byte order */
	uint16_t sport, dport; /* TCP/UDP ports; ICMP echo: both the identifier */
	bool icmp_echo;	       /* ICMP echo request or reply (type 8 / 0) */
	uint8_t icmp_type;
	uint8_t tcp_flags;
	uint32_t seq, ack;    /* TCP */
	uint32_t tcp_payload; /* TCP payload bytes */
	size_t l3, l4;	      /* offsets of the IPv4 and transport headers */
	size_t ip_end;	      /* end of the IPv4 datagram (the frame may be padded) */
};

/* Parses frame[0, len). Never reads outside it. Returns p->kind. */
enum net_pkt_kind net_pkt_parse(const uint8_t *frame, size_t len, struct net_pkt *p);

/* An ICMP error (destination unreachable, source quench, time exceeded,
 * parameter problem) carries the start of the datagram it is about: its
 * addresses, protocol and ports (ICMP echo: the identifier in both) go to
 * *inner. false when p is no such error or the quote is cut short. */
bool net_pkt_icmp_quote(const uint8_t *frame, const struct net_pkt *p, struct net_pkt *inner);

/* The Internet checksum (RFC 1071) of buf, folded, not inverted, added to
 * `sum` (a running 32-bit sum). */
uint32_t net_csum_add(uint32_t sum, const void *buf, size_t len);
uint16_t net_csum_fold(uint32_t sum);

/* Rewrites the destination (dnat) or the source (!dnat) address and port
 * of a parsed IPv4 TCP/UDP/ICMP frame in place, updating the IPv4 header
 * checksum and the TCP/UDP checksum (pseudo-header included) incrementally.
 * A UDP checksum of 0 (none) stays 0. ICMP: only the address changes (its
 * checksum covers no pseudo-header); `port` is ignored. */
void net_pkt_rewrite(uint8_t *frame, struct net_pkt *p, bool dnat, uint32_t ip, uint16_t port);

/* Whether the IPv4 header checksum and, for TCP, the segment's checksum
 * (pseudo-header included) are right: what a receiver checks before it
 * acts on a segment. */
bool net_pkt_csums_ok(const uint8_t *frame, const struct net_pkt *p);

/* Rewrites a parsed TCP segment's sequence number in place, its checksum
 * updated incrementally. */
void net_pkt_set_seq(uint8_t *frame, struct net_pkt *p, uint32_t seq);

/* Builds into out (at least NET_RST_LEN bytes) the TCP reset that answers
 * the parsed TCP segment `p` of `frame` as its destination would: the
 * Ethernet and IP addresses and the ports swapped; to a SYN (or a segment
 * without ACK) RST|ACK acknowledging it, else RST with the sequence number
 * it acknowledged (RFC 9293 3.10.7.1). Returns the length. */
#define NET_RST_LEN (NET_ETH_HLEN + 20u + 20u)
size_t net_pkt_build_rst(uint8_t *out, const uint8_t *frame, const struct net_pkt *p);

#endif
