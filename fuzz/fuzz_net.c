/* fuzz_net — libFuzzer target for the network policy's packet path
 * (src/devices/net_pkt.c, net_ct.c, net_filter.c): the filter over a fake
 * backend under an allow-list with a redirect, a deny and a connection cap,
 * on user-mode networking or TAP (first input byte). The rest of the input
 * is a sequence of frames, each [flags][len_hi][len_lo][bytes]: flags bit 0
 * says egress (the guest sends) or ingress (the backend delivers), bit 1
 * moves the clock past every timeout, bit 2 swaps the policy. Whatever the
 * bytes, the filter must not read or write outside a frame, every frame it
 * lets through must still parse as it did (same kind), and it may answer
 * only with resets it built. Traps on a broken promise. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_pool.h"
#include "core/policy.h"
#include "devices/net_filter.h"
#include "devices/net_pkt.h"
#include "devices/virtio_net.h"

#define CHECK(x)                                                                                             \
	do {                                                                                                 \
		if (!(x))                                                                                    \
			__builtin_trap();                                                                    \
	} while (0)

struct fake {
	struct net_backend be;
	const uint8_t *q;
	size_t qlen;
	bool have;
	size_t sent_len;
	enum net_pkt_kind sent_kind;
};

static size_t hl(const struct fake *f)
{
	return f->be.vnet_hdr ? VIRTIO_NET_HDR_LEN : 0;
}

static int fk_send(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
	struct fake *f = (struct fake *)b;
	CHECK(iovcnt == 1 || !hl(f) || iovcnt == 2);
	size_t len = 0;
	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	f->sent_len = len;
	if (iovcnt == 1 && len >= hl(f)) {
		struct net_pkt p;
		f->sent_kind = net_pkt_parse((const uint8_t *)iov[0].iov_base + hl(f), len - hl(f), &p);
	}
	return 0;
}

static ssize_t fk_recv(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
	struct fake *f = (struct fake *)b;
	if (!f->have)
		return -EAGAIN;
	f->have = false;
	CHECK(iovcnt == 1);
	if (f->qlen <= iov[0].iov_len)
		memcpy(iov[0].iov_base, f->q, f->qlen);
	return (ssize_t)f->qlen;
}

static void fk_rx_enable(struct net_backend *b, bool on)
{
	(void)b, (void)on;
}

static void fk_free(struct net_backend *b)
{
	(void)b;
}

static const struct net_backend_ops fk_ops = {fk_send, fk_recv, fk_rx_enable, NULL, fk_free};

static uint64_t now;
static uint64_t mono(void *ctx)
{
	(void)ctx;
	return now;
}

static struct policy *make_policy(unsigned variant)
{
	static struct policy_range r8001 = {8001, 8001}, r8003 = {8003, 8003};
	struct policy_rule rules[3] = {
	    {.id = "web",
	     .resource = POL_RES_NET,
	     .verdict = POLICY_PROVIDE,
	     .proto = POL_PROTO_TCP,
	     .dst_ip = 0x0a000202,
	     .dst_prefix = 32,
	     .nranges = 1,
	     .ranges = &r8001},
	    {.id = "moved",
	     .resource = POL_RES_NET,
	     .verdict = POLICY_REDIRECT,
	     .proto = POL_PROTO_ANY,
	     .nranges = 1,
	     .ranges = &r8003,
	     .to_ip = 0x7f000001,
	     .to_port = 8002,
	     .audit = true},
	    {.id = "rest", .resource = POL_RES_NET, .verdict = POLICY_DENY, .audit = true},
	};
	struct policy_spec s = {.mode = variant & 1 ? POLICY_PERMISSIVE : POLICY_ENFORCE,
				.nrules = 3,
				.rules = rules,
				.max_host_connections = 4};
	char err[160];
	struct policy *p = policy_compile(&s, err, sizeof(err));
	CHECK(p);
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t rx[VIRTIO_NET_HDR_LEN + VIRTIO_NET_FRAME_MAX + 1];
	if (size < 1)
		return 0;
	struct fake fk = {.be = {.ops = &fk_ops, .name = "fake", .vnet_hdr = !(data[0] & 1)}};
	bool user = data[0] & 1;
	struct policy_slot slot;
	policy_slot_init(&slot, make_policy(data[0] >> 1));
	struct dev_stats st = {.name = "net0"};
	struct dev_gate g = {.stats = &st, .policy = &slot, .id = "net0"};
	struct net_filter_cfg c = {.user_mode = user,
				   .net = 0x0a000200,
				   .mask = 0xffffff00,
				   .host = 0x0a000202,
				   .dns = 0x0a000203,
				   .guest = 0x0a00020f,
				   .clock = {.mono_ns = mono}};
	char err[80];
	struct net_backend *b = net_filter_new(&fk.be, &g, &c, err, sizeof(err));
	CHECK(b);
	now = 1;
	unsigned swaps = 0;
	for (size_t off = 1; off + 3 <= size;) {
		uint8_t flags = data[off];
		size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
		off += 3;
		if (len > size - off)
			len = size - off;
		/* each frame in its own heap block: ASan sees a step outside */
		uint8_t *fr = malloc(len ? len : 1);
		memcpy(fr, data + off, len);
		off += len;
		if (flags & 2)
			now += 8000ull * 1000000000;
		now += 1000;
		if ((flags & 4) && swaps < 4) {
			policy_free(policy_swap(&slot, make_policy(++swaps)));
		}
		if (flags & 1) {
			struct iovec iov = {fr, len};
			fk.sent_len = 0;
			fk.sent_kind = NET_PKT_BAD;
			CHECK(b->ops->send(b, &iov, 1) == 0 || len > sizeof(rx));
			/* what reaches the host is ARP or readable IPv4, never more than was sent */
			if (fk.sent_len) {
				CHECK(fk.sent_len == len);
				CHECK(fk.sent_kind == NET_PKT_ARP || fk.sent_kind == NET_PKT_IPV4);
			}
		} else {
			fk.q = fr;
			fk.qlen = len;
			fk.have = true;
		}
		/* drain what waits for the guest: resets, or the delivered frame */
		for (int i = 0; i < 40; i++) {
			struct iovec iov = {rx, sizeof(rx)};
			ssize_t r = b->ops->recv(b, &iov, 1);
			if (r == -EAGAIN)
				break;
			CHECK(r >= 0);
			if ((size_t)r < hl(&fk) || (size_t)r >= sizeof(rx))
				continue; /* refused by the device anyway */
			struct net_pkt p;
			enum net_pkt_kind k = net_pkt_parse(rx + hl(&fk), (size_t)r - hl(&fk), &p);
			/* the frame the backend had (maybe rewritten), or a reset of ours */
			CHECK(k == NET_PKT_IPV4 || k == NET_PKT_ARP);
			if ((size_t)r != fk.qlen || (flags & 1))
				CHECK((size_t)r == hl(&fk) + NET_RST_LEN && p.proto == NET_IP_TCP &&
				      (p.tcp_flags & NET_TCP_RST));
		}
		fk.have = false;
		free(fr);
	}
	struct net_filter_stats fs;
	CHECK(net_filter_get_stats(b, &fs));
	CHECK(fs.open_flows <= 4096);
	b->ops->free(b);
	policy_slot_fini(&slot);
	pool_check_idle();
	return 0;
}
