/* virtio_net — see virtio_net.h.
 * Threads: none of its own. queue_notify, activate and reset come from the
 * transport on the event thread, and the backend calls rx_ready there too,
 * so the state below needs no lock. rx_ready may be re-entered from inside
 * backend->send (slirp answers an ARP request at once): the RX path only
 * touches the RX queue and `held`, the TX path only the TX queue and `tx`.
 * RX: popped receive chains wait in `held` until frames fill them (with
 * MRG_RXBUF as many as the largest frame needs, else one); when the ring
 * has too few the backend is told to stop delivering (the frames wait on
 * the host side) until the driver kicks the receive queue. */
#include "devices/virtio_net.h"

#include "core/errmsg.h"
#include "core/snap.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/virtio_dev.h"

#define IOV_MAX_CHAIN (VIRTQ_MAX_CHAIN + 1)
/* Receive chains held at once (MRG_RXBUF: a 64 KiB frame in 256-byte
 * buffers), and their buffers: at most 321 iovs to readv (IOV_MAX 1024). */
#define VNET_RX_HELD_MAX 256u
#define VNET_RX_IOV_MAX  (256u + VIRTQ_MAX_CHAIN)

/* A receive chain popped and not yet used: its buffers are
 * iov[sum of the niov before it, + niov). */
struct vnet_held {
	uint16_t head;
	uint16_t niov;
	uint32_t len; /* writable bytes */
};

struct vnet {
	struct virtio_dev dev; /* first: the ops get &dev */
	struct net_backend *be;
	uint8_t config[VIRTIO_NET_CONFIG_LEN];
	bool active;  /* between activate and reset */
	bool rx_on;   /* the backend was told to deliver */
	bool mrg;     /* VIRTIO_NET_F_MRG_RXBUF negotiated */
	bool quiesced; /* control plane pause: no frame either way */
	bool mac_set;  /* virtio_net_set_mac: a restore keeps this MAC */
	struct virtq_chain chain, tx; /* what virtq_pop fills (RX, TX) */
	/* RX: chains popped and waiting for frames, in ring order */
	unsigned nheld, niov;
	uint64_t held_bytes;
	struct vnet_held held[VNET_RX_HELD_MAX];
	struct iovec iov[VNET_RX_IOV_MAX];
	struct iovec rv[VNET_RX_IOV_MAX + 1]; /* what recv gets: iov, spill last */
	struct virtio_net_stats st;
	/* RX overflow catcher: the last iov entry, so a frame larger than the
	 * guest's buffers is seen as such whatever the backend reports; with
	 * MRG_RXBUF it holds the tail until more chains are popped for it. */
	uint8_t *spill;
};

static struct vnet *to_net(struct virtio_dev *d)
{
	return (struct vnet *)d;
}


static bool running(const struct vnet *n)
{
	return n->active && !n->quiesced && virtio_dev_live(&n->dev);
}

static void set_rx(struct vnet *n, bool on)
{
	if (n->rx_on == on)
		return;
	n->rx_on = on;
	n->be->ops->rx_enable(n->be, on);
}

/* ---- receive ------------------------------------------------------------ */

/* Copies between buf and the bytes [off, off + len) of iov[0, cnt), to the
 * iov when to_iov; returns the bytes copied. */
static size_t iov_copy(const struct iovec *iov, unsigned cnt, size_t off, void *buf, size_t len, bool to_iov)
{
	uint8_t *p = buf;
	size_t done = 0;

	for (unsigned i = 0; i < cnt && done < len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t chunk = iov[i].iov_len - off;
		if (chunk > len - done)
			chunk = len - done;
		uint8_t *q = (uint8_t *)iov[i].iov_base + off;
		if (to_iov)
			memcpy(q, p + done, chunk);
		else
			memcpy(p + done, q, chunk);
		done += chunk;
		off = 0;
	}
	return done;
}

/* Bytes of receive buffer the largest frame the host may hand us needs,
 * header included: a TSO/UFO frame when the guest takes those, else one
 * Ethernet frame with a VLAN tag. Only a goal for how many mergeable
 * buffers to hold: a bigger frame still lands if the ring has room. */
static uint64_t rx_need(const struct vnet *n)
{
	const struct virtio_dev *d = &n->dev;

	if (virtio_has(d, VIRTIO_NET_F_GUEST_TSO4) || virtio_has(d, VIRTIO_NET_F_GUEST_TSO6) ||
	    virtio_has(d, VIRTIO_NET_F_GUEST_UFO))
		return VIRTIO_NET_HDR_LEN + VIRTIO_NET_FRAME_MAX;
	return VIRTIO_NET_HDR_LEN + 1518u;
}

static void rx_forget(struct vnet *n)
{
	n->nheld = 0;
	n->niov = 0;
	n->held_bytes = 0;
}

static void rx_complete(struct vnet *n, unsigned k, uint64_t used);

/* Pops receive chains into `held` until they hold `want` bytes, the ring
 * is empty or our arrays are full (without MRG_RXBUF: one chain). Chains
 * no frame may go to are completed with 0 bytes and counted, at most a
 * ring's worth a call (then as if the ring were empty: a second vCPU can
 * post them as fast as they are completed, and this runs on the event
 * thread outside any kick's budget; their kick starts the next). Returns
 * false when the ring broke (the device then needs a reset). */
static bool rx_fill(struct vnet *n, uint64_t want, unsigned *done)
{
	struct virtq *q = &n->dev.vq[VIRTIO_NET_RXQ];
	uint64_t min = n->mrg ? VIRTIO_NET_HDR_LEN : VIRTIO_NET_HDR_LEN + VIRTIO_NET_ETH_HLEN;
	unsigned max = n->mrg ? VNET_RX_HELD_MAX : 1;
	unsigned bad = 0;

	while (n->held_bytes < want && n->nheld < max && n->niov + VIRTQ_MAX_CHAIN <= VNET_RX_IOV_MAX) {
		int r = virtq_pop(q, &n->chain);
		if (r == 0)
			return true;
		if (r == -EINVAL) {
			virtio_dev_needs_reset(&n->dev);
			rx_forget(n);
			return false;
		}
		if (r == -EBADMSG || n->chain.out_len || n->chain.in_len < min) {
			/* bad chain, device-readable buffers, or too short for a
			 * header (a frame, without MRG_RXBUF). The chains held go
			 * back first, empty: completions stay in ring order, as a
			 * snapshot takes them to be (virtio_pci.c, save). */
			if (r == -EBADMSG)
				n->st.bad_chains++;
			n->st.rx_errors++;
			dev_request_error(&n->dev.gate);
			*done += n->nheld;
			rx_complete(n, n->nheld, 0);
			virtq_push(q, n->chain.head, 0);
			(*done)++;
			if (++bad >= q->size)
				return true;
			continue;
		}
		struct vnet_held *h = &n->held[n->nheld++];
		h->head = n->chain.head;
		h->len = (uint32_t)n->chain.in_len; /* <= UINT32_MAX: virtq_pop checks */
		h->niov = (uint16_t)virtq_chain_iov(&n->chain, true, 0, UINT64_MAX, n->iov + n->niov);
		n->niov += h->niov;
		n->held_bytes += h->len;
	}
	return true;
}

/* Whether to read a frame into what is held now, rather than wait for the
 * driver to post more: the held buffers take the largest frame, or the
 * driver has nothing left to post (every descriptor is ours), or our
 * arrays are full. */
static bool rx_enough(const struct vnet *n, uint64_t need)
{
	if (!n->nheld)
		return false;
	if (!n->mrg || n->held_bytes >= need)
		return true;
	return n->nheld == VNET_RX_HELD_MAX || n->niov + VIRTQ_MAX_CHAIN > VNET_RX_IOV_MAX ||
	       n->niov >= n->dev.vq[VIRTIO_NET_RXQ].size;
}

/* Completes the first k held chains, `used` bytes written over them, and
 * moves the rest to the front. */
static void rx_complete(struct vnet *n, unsigned k, uint64_t used)
{
	struct virtq *q = &n->dev.vq[VIRTIO_NET_RXQ];
	unsigned iovs = 0;
	bool tracking = gmem_tracking(n->dev.mem);

	for (unsigned i = 0; i < k; i++) {
		const struct vnet_held *h = &n->held[i];
		uint32_t w = used < h->len ? (uint32_t)used : h->len;
		/* Diff snapshots: the buffers as popped, not as the
		 * descriptors may name them now. */
		for (unsigned j = 0; tracking && j < h->niov; j++)
			gmem_mark_dirty_host(n->dev.mem, n->iov[iovs + j].iov_base, n->iov[iovs + j].iov_len);
		virtq_push(q, h->head, w);
		used -= w;
		iovs += h->niov;
		n->held_bytes -= h->len;
	}
	n->nheld -= k;
	n->niov -= iovs;
	memmove(n->held, n->held + k, n->nheld * sizeof(n->held[0]));
	memmove(n->iov, n->iov + iovs, n->niov * sizeof(n->iov[0]));
}

/* Raises queue qi's interrupt if the driver wants one for what was
 * completed since the last look (with EVENT_IDX: its used_event among
 * them, checked per frame on both queues), counted in *irqs. */
static void notify(struct vnet *n, unsigned qi, uint64_t *irqs)
{
	struct virtio_dev *d = &n->dev;

	if (virtq_should_notify(&d->vq[qi]) && d->raise) {
		(*irqs)++;
		d->raise(d, qi);
	}
}

/* Moves waiting frames into receive buffers until the backend has none or
 * the guest has posted too few buffers (then the backend stops). With
 * MRG_RXBUF a frame spans as many chains as it needs (num_buffers in its
 * header says how many); without, one chain takes one frame. Without
 * EVENT_IDX at most one interrupt per call; with it, when the driver's
 * used_event is passed. */
static void rx_run(struct vnet *n)
{
	struct iovec *rv = n->rv;
	uint64_t skip = n->be->vnet_hdr ? 0 : VIRTIO_NET_HDR_LEN;
	uint64_t need = n->mrg ? rx_need(n) : UINT64_MAX; /* else: one chain */
	size_t spill = n->mrg ? VIRTIO_NET_HDR_LEN + VIRTIO_NET_FRAME_MAX : 1;
	unsigned done = 0, frames = 0;

	if (!running(n)) {
		set_rx(n, false);
		return;
	}
	for (unsigned budget = VIRTIO_NET_RX_BUDGET; budget; budget--) {
		if (!rx_fill(n, need, &done)) {
			set_rx(n, false);
			break;
		}
		if (!rx_enough(n, need)) {
			/* no buffer, or too few for the largest frame: the
			 * frames wait on the host side for the driver's kick */
			if (n->nheld)
				n->st.rx_waits++;
			set_rx(n, false);
			break;
		}
		/* the held buffers, minus the header when the backend does not
		 * write one, then the spill */
		unsigned cnt = n->niov;
		memcpy(rv, n->iov, cnt * sizeof(rv[0]));
		for (uint64_t s = skip; s && cnt;) {
			if (s < rv[0].iov_len) {
				rv[0].iov_base = (uint8_t *)rv[0].iov_base + s;
				rv[0].iov_len -= s;
				break;
			}
			s -= rv[0].iov_len;
			memmove(rv, rv + 1, --cnt * sizeof(rv[0]));
		}
		rv[cnt].iov_base = n->spill;
		rv[cnt].iov_len = spill;
		ssize_t len = n->be->ops->recv(n->be, rv, (int)cnt + 1);
		if (len == -EAGAIN)
			break; /* keep the chains for the next frame */
		/* bytes of chain the frame takes, header included */
		uint64_t used = (uint64_t)(len < 0 ? 0 : len) + skip;
		if (len >= 0 && n->mrg && used > n->held_bytes && used - n->held_bytes <= spill) {
			/* longer than what was held: more chains, and the tail
			 * that went to the spill is copied into them */
			uint64_t held = n->held_bytes;
			unsigned from = n->niov;
			if (!rx_fill(n, used, &done)) {
				set_rx(n, false);
				break;
			}
			if (n->held_bytes > held)
				iov_copy(n->iov + from, n->niov - from, 0, n->spill,
					 (size_t)((used < n->held_bytes ? used : n->held_bytes) - held), true);
		}
		if (len < 0 || used > n->held_bytes ||
		    (n->be->vnet_hdr && (size_t)len < VIRTIO_NET_HDR_LEN)) {
			/* host error or a frame larger than the buffers: lost,
			 * and the chains wait for the next one */
			n->st.rx_errors++;
			dev_request_error(&n->dev.gate);
			continue;
		}
		uint64_t frame = used - VIRTIO_NET_HDR_LEN;
		if (!dev_request(&n->dev.gate, REQ_READ, frame))
			continue; /* denied (counted): dropped, chains kept */

		/* the chains it took, in order (each holds >= a header) */
		unsigned k = 0;
		for (uint64_t left = used; left; k++)
			left -= left < n->held[k].len ? left : n->held[k].len;
		uint8_t hdr[VIRTIO_NET_HDR_LEN];
		if (n->be->vnet_hdr) {
			iov_copy(n->iov, n->niov, 0, hdr, sizeof(hdr), false);
			if (!virtio_has(&n->dev, VIRTIO_NET_F_GUEST_CSUM))
				hdr[VIRTIO_NET_HDR_OFF_FLAGS] = 0; /* no DATA_VALID either */
		} else {
			memset(hdr, 0, sizeof(hdr));
		}
		hdr[VIRTIO_NET_HDR_OFF_NUM_BUFS] = (uint8_t)k;
		hdr[VIRTIO_NET_HDR_OFF_NUM_BUFS + 1] = (uint8_t)(k >> 8);
		iov_copy(n->iov, n->niov, 0, hdr, sizeof(hdr), true);
		rx_complete(n, k, used);
		if (n->dev.vq[VIRTIO_NET_RXQ].event_idx)
			notify(n, VIRTIO_NET_RXQ, &n->st.rx_irqs); /* the driver's NAPI starts on it while we fill */
		n->st.rx_frames++;
		n->st.rx_bufs += k;
		frames++;
		done += k;
	}
	if (frames) {
		n->st.rx_batches++;
		if (frames > n->st.rx_batch_max)
			n->st.rx_batch_max = frames;
	}
	if (done)
		notify(n, VIRTIO_NET_RXQ, &n->st.rx_irqs);
}

static void on_rx_ready(void *ctx)
{
	rx_run(ctx);
}

/* ---- transmit ----------------------------------------------------------- */

static void tx_bad(struct vnet *n, bool bad_chain)
{
	if (bad_chain)
		n->st.bad_chains++;
	n->st.tx_errors++;
	dev_request_error(&n->dev.gate);
}

/* A TX header may only ask for what the driver negotiated: a partial
 * checksum needs VIRTIO_NET_F_CSUM, each GSO type its HOST_* feature.
 * Anything else would have the host's stack do work (or parse fields)
 * the device never offered to this guest. */
static bool tx_hdr_ok(const struct vnet *n, const uint8_t *hdr)
{
	const struct virtio_dev *d = &n->dev;
	uint8_t flags = hdr[VIRTIO_NET_HDR_OFF_FLAGS], gso = hdr[VIRTIO_NET_HDR_OFF_GSO];

	if (flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
		return false;
	if ((flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !virtio_has(d, VIRTIO_NET_F_CSUM))
		return false;
	if ((gso & VIRTIO_NET_HDR_GSO_ECN) && !virtio_has(d, VIRTIO_NET_F_HOST_ECN))
		return false;
	switch (gso & ~VIRTIO_NET_HDR_GSO_ECN) {
	case VIRTIO_NET_HDR_GSO_NONE: return !(gso & VIRTIO_NET_HDR_GSO_ECN);
	case VIRTIO_NET_HDR_GSO_TCPV4: return virtio_has(d, VIRTIO_NET_F_HOST_TSO4);
	case VIRTIO_NET_HDR_GSO_TCPV6: return virtio_has(d, VIRTIO_NET_F_HOST_TSO6);
	case VIRTIO_NET_HDR_GSO_UDP: return virtio_has(d, VIRTIO_NET_F_HOST_UFO);
	}
	return false;
}

/* Hands the popped chain back the moment its frame is with the host. With
 * EVENT_IDX the driver's used_event says after which completion it wants
 * the interrupt (Linux frees its sent buffers there, and TCP's small
 * queues hold the socket's next frames until then): it is honoured
 * during the run, not only at the end of it. Without EVENT_IDX the flag
 * is only on or off, so one interrupt per run. */
static void tx_complete(struct vnet *n)
{
	struct virtq *q = &n->dev.vq[VIRTIO_NET_TXQ];

	virtq_push(q, n->tx.head, 0);
	if (q->event_idx)
		notify(n, VIRTIO_NET_TXQ, &n->st.tx_irqs);
}

/* Sends what the driver queued, until the ring is empty (or the
 * transport's budget is spent; it then calls again). Chains are popped
 * "quietly": the driver does not kick for frames it adds while the run
 * drains them, the last pop asks for the next kick. */
static void tx_run(struct vnet *n)
{
	struct virtq *q = &n->dev.vq[VIRTIO_NET_TXQ];
	struct iovec iov[IOV_MAX_CHAIN];
	unsigned done = 0;

	if (!running(n))
		return;
	n->st.tx_runs++;
	for (;;) {
		int r = virtq_pop_quiet(q, &n->tx);
		if (r == 0)
			break;
		if (r == -EINVAL) {
			virtio_dev_needs_reset(&n->dev);
			break;
		}
		done++;
		if (r == -EBADMSG) {
			tx_bad(n, true);
			tx_complete(n);
			continue;
		}
		/* Only device-readable buffers; a header and at least an
		 * Ethernet header; at most one TSO frame. */
		if (n->tx.in_len || n->tx.out_len < VIRTIO_NET_HDR_LEN + VIRTIO_NET_ETH_HLEN ||
		    n->tx.out_len > VIRTIO_NET_HDR_LEN + VIRTIO_NET_FRAME_MAX) {
			tx_bad(n, false);
			tx_complete(n);
			continue;
		}
		/* A backend that takes the header (TAP) gets a copy, checked
		 * against what was negotiated: never the guest's own bytes,
		 * which it could change after the check. */
		uint8_t hdr[VIRTIO_NET_HDR_LEN];
		int cnt = 0;
		if (n->be->vnet_hdr) {
			virtq_chain_read(&n->tx, 0, hdr, sizeof(hdr)); /* out_len >= HDR_LEN: checked */
			if (!tx_hdr_ok(n, hdr)) {
				tx_bad(n, false);
				tx_complete(n);
				continue;
			}
			iov[cnt++] = (struct iovec){ .iov_base = hdr, .iov_len = sizeof(hdr) };
		}
		uint64_t frame = n->tx.out_len - VIRTIO_NET_HDR_LEN;
		if (dev_request(&n->dev.gate, REQ_WRITE, frame)) {
			cnt += (int)virtq_chain_iov(&n->tx, false, VIRTIO_NET_HDR_LEN, UINT64_MAX, iov + cnt);
			if (n->be->ops->send(n->be, iov, cnt) < 0) {
				n->st.tx_errors++;
				dev_request_error(&n->dev.gate);
			} else {
				n->st.tx_frames++;
				n->st.tx_bytes += frame;
			}
		}
		tx_complete(n);
	}
	if (done) {
		n->st.tx_batches++;
		notify(n, VIRTIO_NET_TXQ, &n->st.tx_irqs); /* without EVENT_IDX, the run's one */
	}
}

/* ---- virtio_dev ops ----------------------------------------------------- */

static void net_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct vnet *n = to_net(d);

	if (!running(n))
		return;
	if (q == VIRTIO_NET_TXQ) {
		tx_run(n);
	} else if (q == VIRTIO_NET_RXQ) {
		/* New buffers: take what waits, then let the backend deliver. */
		set_rx(n, true);
		rx_run(n);
	}
}

static int net_activate(struct virtio_dev *d)
{
	struct vnet *n = to_net(d);

	if (n->be->ops->activate) {
		int r = n->be->ops->activate(n->be, d->features);
		if (r < 0)
			return r;
	}
	n->active = true;
	n->mrg = virtio_has(d, VIRTIO_NET_F_MRG_RXBUF);
	rx_forget(n);
	return 0;
}

static void net_reset(struct virtio_dev *d)
{
	struct vnet *n = to_net(d);

	n->active = false;
	rx_forget(n); /* the popped chains belong to the old rings */
	set_rx(n, false);
}

/* Frames are handled inline on the event thread, so nothing is in flight
 * between callbacks: quiescing only stops reading the TAP/slirp side (and
 * ignores kicks) until resume. */
static void net_quiesce(struct virtio_dev *d)
{
	struct vnet *n = to_net(d);

	n->quiesced = true;
	set_rx(n, false);
}

static void net_resume(struct virtio_dev *d)
{
	struct vnet *n = to_net(d);

	n->quiesced = false;
	/* Kicks while quiesced were dropped: look at both queues once (those
	 * the driver enabled: popping another breaks the device). */
	if (virtq_enabled(&d->vq[VIRTIO_NET_TXQ]))
		net_queue_notify(d, VIRTIO_NET_TXQ);
	if (virtq_enabled(&d->vq[VIRTIO_NET_RXQ]))
		net_queue_notify(d, VIRTIO_NET_RXQ);
}

static void net_config_read(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len)
{
	memcpy(buf, to_net(d)->config + off, len);
}

static void net_config_write(struct virtio_dev *d, uint32_t off, const void *buf, uint32_t len)
{
	/* mac is read-only for a VERSION_1 driver, status always */
	(void)d, (void)off, (void)buf, (void)len;
}

/* The config space (MAC, link status): what the guest's driver read. */
static int net_save(struct virtio_dev *d, struct snap_writer *w)
{
	snap_put(w, to_net(d)->config, VIRTIO_NET_CONFIG_LEN);
	return 0;
}

static int net_restore(struct virtio_dev *d, struct snap_reader *r)
{
	struct vnet *n = to_net(d);
	uint8_t cfg[VIRTIO_NET_CONFIG_LEN];

	snap_get(r, cfg, sizeof(cfg));
	if (snap_error(r)[0])
		return -1;
	if (cfg[0] & 1)
		return snap_fail(r, "a multicast MAC address");
	if (!n->mac_set)
		memcpy(n->config, cfg, 6);
	memcpy(n->config + 6, cfg + 6, VIRTIO_NET_CONFIG_LEN - 6);
	return 0;
}

void virtio_net_set_mac(struct virtio_dev *d, const uint8_t mac[6])
{
	struct vnet *n = to_net(d);

	memcpy(n->config, mac, 6);
	n->mac_set = true;
}

static const struct virtio_dev_ops net_ops = {
	.save = net_save,
	.restore = net_restore,
	.queue_notify = net_queue_notify,
	.activate = net_activate,
	.reset = net_reset,
	.quiesce = net_quiesce,
	.resume = net_resume,
	.config_read = net_config_read,
	.config_write = net_config_write,
};

/* ---- option parsing ----------------------------------------------------- */

int virtio_net_parse_mac(const char *s, uint8_t mac[6])
{
	for (unsigned i = 0; i < 6; i++) {
		unsigned v = 0;
		for (unsigned k = 0; k < 2; k++) {
			char ch = *s++;
			unsigned x;
			if (ch >= '0' && ch <= '9')
				x = (unsigned)(ch - '0');
			else if (ch >= 'a' && ch <= 'f')
				x = (unsigned)(ch - 'a' + 10);
			else if (ch >= 'A' && ch <= 'F')
				x = (unsigned)(ch - 'A' + 10);
			else
				return -1;
			v = v * 16 + x;
		}
		mac[i] = (uint8_t)v;
		if (*s != (i == 5 ? '\0' : ':'))
			return -1;
		s++;
	}
	if (mac[0] & 1)
		return -1; /* multicast */
	for (unsigned i = 0; i < 6; i++)
		if (mac[i])
			return 0;
	return -1;
}

/* "1".."65535", the whole of [s, end). */
static int parse_port(const char *s, const char *end, uint16_t *port)
{
	unsigned long v = 0;

	if (s == end || end - s > 5)
		return -1;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* A dotted-quad IPv4 address filling [s, end), host byte order: four
 * decimal parts of 1-3 digits, each <= 255, no leading zero (what
 * glibc's inet_pton accepts; here
 * so that parsing stays string work). */
static int parse_ipv4(const char *s, const char *end, uint32_t *out)
{
	uint32_t a = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0, digits = 0;
		const char *first = s;
		while (s < end && *s >= '0' && *s <= '9' && digits < 4) {
			v = v * 10 + (unsigned)(*s++ - '0');
			digits++;
		}
		if (digits == 0 || digits > 3 || v > 255 || (digits > 1 && *first == '0'))
			return -1; /* inet_pton refuses leading zeros too */
		a = a << 8 | v;
		if (part < 3 && (s == end || *s++ != '.'))
			return -1;
	}
	if (s != end)
		return -1;
	*out = a;
	return 0;
}

/* "tcp:[ADDR]:PORT-:GUESTPORT" or the same with udp. */
static int parse_fwd(const char *s, struct net_fwd *f)
{
	if (!strncmp(s, "tcp:", 4))
		f->udp = false;
	else if (!strncmp(s, "udp:", 4))
		f->udp = true;
	else
		return -1;
	s += 4;
	const char *colon = strchr(s, ':');
	if (!colon)
		return -1;
	if (colon == s)
		f->host_addr = 0x7f000001; /* 127.0.0.1 */
	else if (parse_ipv4(s, colon, &f->host_addr) < 0)
		return -1;
	s = colon + 1;
	const char *dash = strchr(s, '-');
	if (!dash || parse_port(s, dash, &f->host_port) < 0 || dash[1] != ':')
		return -1;
	s = dash + 2;
	return parse_port(s, s + strlen(s), &f->guest_port);
}

static bool ifname_ok(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len >= 16 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s <= ' ' || *s == '/' || *s == ':' || *s > '~')
			return false;
	return true;
}

int virtio_net_parse(const char *spec, struct virtio_net_config *cfg, char *err, size_t errlen)
{
	char buf[1024];
	char *save = NULL;

	memset(cfg, 0, sizeof(*cfg));
	if (!spec || strlen(spec) >= sizeof(buf)) {
		errmsg(err, errlen, "--net: %s", spec ? "value too long" : "missing value");
		return -1;
	}
	strcpy(buf, spec);
	char *tok = strtok_r(buf, ",", &save);
	if (!tok) {
		errmsg(err, errlen, "--net: expected tap=IFNAME or user");
		return -1;
	}
	if (!strcmp(tok, "user")) {
		cfg->kind = NET_USER;
	} else if (!strncmp(tok, "tap=", 4)) {
		cfg->kind = NET_TAP;
		if (!ifname_ok(tok + 4)) {
			errmsg(err, errlen, "--net: bad interface name '%s' (1-15 characters)", tok + 4);
			return -1;
		}
		strcpy(cfg->ifname, tok + 4);
	} else {
		errmsg(err, errlen, "--net: expected tap=IFNAME or user, not '%s'", tok);
		return -1;
	}
	while ((tok = strtok_r(NULL, ",", &save))) {
		if (!strncmp(tok, "mac=", 4)) {
			if (cfg->mac_set) {
				errmsg(err, errlen, "--net: mac given twice");
				return -1;
			}
			if (virtio_net_parse_mac(tok + 4, cfg->mac) < 0) {
				errmsg(err, errlen, "--net: bad mac '%s' (want a unicast xx:xx:xx:xx:xx:xx)",
				     tok + 4);
				return -1;
			}
			cfg->mac_set = true;
		} else if (!strncmp(tok, "hostfwd=", 8)) {
			if (cfg->kind != NET_USER) {
				errmsg(err, errlen, "--net: hostfwd needs user networking");
				return -1;
			}
			if (cfg->nr_fwd == VIRTIO_NET_FWD_MAX) {
				errmsg(err, errlen, "--net: at most %u hostfwd rules", VIRTIO_NET_FWD_MAX);
				return -1;
			}
			if (parse_fwd(tok + 8, &cfg->fwd[cfg->nr_fwd]) < 0) {
				errmsg(err, errlen,
				     "--net: bad hostfwd '%s' (want tcp:[ADDR]:PORT-:GUESTPORT)", tok + 8);
				return -1;
			}
			cfg->nr_fwd++;
		} else {
			errmsg(err, errlen, "--net: unknown option '%s'", tok);
			return -1;
		}
	}
	return 0;
}

/* ---- construction ------------------------------------------------------- */

static void random_mac(const struct entropy *ent, uint8_t mac[6])
{
	uint8_t r[3] = { 0 };

	if (!ent || entropy_fill(ent, r, sizeof(r)) < 0) {
		uint64_t x = (uint64_t)(uintptr_t)mac * 0x9e3779b97f4a7c15ULL; /* differs per device */
		x ^= x >> 29;
		r[0] = (uint8_t)x, r[1] = (uint8_t)(x >> 8), r[2] = (uint8_t)(x >> 16);
	}
	mac[0] = 0x52, mac[1] = 0x54, mac[2] = 0x00; /* locally administered, unicast */
	memcpy(mac + 3, r, 3);
}

struct virtio_dev *virtio_net_new_backend(struct net_backend *be, const uint8_t *mac,
					  const struct entropy *ent, const struct gmem *mem,
					  struct dev_gate gate, char *err, size_t errlen)
{
	struct vnet *n = calloc(1, sizeof(*n));
	uint8_t *spill = malloc(VIRTIO_NET_HDR_LEN + VIRTIO_NET_FRAME_MAX);

	if (!n || !spill) {
		errmsg(err, errlen, "net: out of memory");
		free(n);
		free(spill);
		be->ops->free(be);
		return NULL;
	}
	n->be = be;
	n->spill = spill;
	if (mac)
		memcpy(n->config, mac, 6);
	else
		random_mac(ent, n->config);
	n->config[6] = VIRTIO_NET_S_LINK_UP;
	n->config[7] = 0;
	be->rx_ready = on_rx_ready;
	be->rx_ctx = n;

	struct virtio_dev *d = &n->dev;
	d->name = "virtio-net";
	d->device_id = VIRTIO_ID_NET;
	d->host_features = VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_STATUS) |
			   VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) | be->features;
	d->num_queues = 2;
	d->queue_max = VIRTIO_NET_QUEUE_MAX;
	d->config_len = VIRTIO_NET_CONFIG_LEN;
	d->ops = &net_ops;
	d->priv = n;
	d->gate = gate;
	d->mem = mem;
	return d;
}

void virtio_net_free(struct virtio_dev *d)
{
	if (!d)
		return;
	struct vnet *n = to_net(d);
	n->be->ops->free(n->be);
	free(n->spill);
	free(n);
}

void virtio_net_get_stats(const struct virtio_dev *d, struct virtio_net_stats *st)
{
	*st = ((const struct vnet *)d)->st;
}

const struct net_backend *virtio_net_backend(const struct virtio_dev *d)
{
	return ((const struct vnet *)d)->be;
}
