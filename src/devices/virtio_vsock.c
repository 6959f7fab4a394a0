/* virtio_vsock — see virtio_vsock.h.
 *
 * A connection is keyed by (local_port, peer_port): the host-side port and
 * the guest's port. Its life:
 *   HOST_LINE  a host client connected to the UDS; reading "CONNECT <port>\n"
 *   HOST_REQ   REQUEST queued/sent to the guest, waiting for RESPONSE
 *   GUEST_CONN the guest asked for host port P; connecting to PATH_P
 *   OPEN       data flows both ways
 *   DEAD       host socket closed; an RST for the guest is pending, then free
 * Packets for the guest are produced only in rx_flush(), from per-connection
 * pending flags and readable host sockets, so the receive queue having no
 * buffer never loses anything: the flags wait, and host streams are not read
 * (their VSOCK_EV_IN interest is dropped once they report data) until the
 * guest kicks the rx queue.
 * A flush sends at most a ring's worth of packets; the device's doorbell
 * brings the rest on a later turn of the event thread.
 * Host streams come from a vsock_backend (devices/vsock_backend.h; on Linux
 * src/host/vsock_uds.c), timers from the executor, time from the clock. 
 *
 * Flow control (5.10.6.3): the guest may have at most VSOCK_BUF_ALLOC bytes
 * in flight towards a host socket (rx_cnt - fwd_cnt); what the socket does
 * not take at once waits in a per-connection ring of that size. fwd_cnt, the
 * bytes handed to the host socket, rides on every packet we send, and a
 * CREDIT_UPDATE goes out on its own when the guest's view of our free space
 * drops under one packet. Towards the guest we never send more than its
 * buf_alloc - (tx_cnt - fwd_cnt). */
#include "devices/virtio_vsock.h"

#include "core/errmsg.h"
#include "core/snap.h"
#include "core/policy.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define RXQ 0
#define TXQ 1
#define VSOCK_QUEUE_SIZE 256
#define VSOCK_CONFIG_LEN 8

#define VSOCK_TYPE_STREAM 1
enum {
	OP_REQUEST = 1,
	OP_RESPONSE = 2,
	OP_RST = 3,
	OP_SHUTDOWN = 4,
	OP_RW = 5,
	OP_CREDIT_UPDATE = 6,
	OP_CREDIT_REQUEST = 7,
};
#define SHUT_F_RCV 1  /* the sender will receive no more */
#define SHUT_F_SEND 2 /* the sender will send no more */

#define LINE_MAX_LEN 32                      /* "CONNECT 4294967295\n" fits */
#define RING_CAP (VSOCK_BUF_ALLOC + LINE_MAX_LEN) /* credit data + the "OK" line */
/* Packets a flush sends before it lets the event thread serve others: a
 * guest with a huge buf_alloc and a second vCPU refilling the receive ring
 * could otherwise keep one flush going as long as host services send. */
#define RX_FLUSH_BUDGET VSOCK_QUEUE_SIZE
#define HANDSHAKE_MS 2000                    /* CONNECT line, REQUEST, connect() */
#define CLOSE_MS 5000                        /* waiting for the guest's last word */
#define TICK_MS 200
#define MAX_RST 64
#define EPHEMERAL_BASE (1u << 30)

struct vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
} __attribute__((packed));
#define HDR_LEN ((uint32_t)sizeof(struct vsock_hdr))
_Static_assert(sizeof(struct vsock_hdr) == 44, "virtio_vsock_hdr layout");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "headers are little-endian");

enum conn_state { CS_FREE, CS_HOST_LINE, CS_HOST_REQ, CS_GUEST_CONN, CS_OPEN, CS_DEAD };

/* Packets owed to the guest. */
#define P_REQUEST 1u
#define P_RESPONSE 2u
#define P_SHUTDOWN 4u
#define P_CREDIT 8u
#define P_RST 16u

struct vsock;

struct vsock_conn {
	struct vsock *v;
	enum conn_state state;
	struct vsock_stream *s; /* the host end, NULL once closed */
	uint32_t events;        /* VSOCK_EV_ watched on s */
	uint32_t local_port, peer_port;
	unsigned pending;
	uint64_t deadline; /* ms on CLOCK_MONOTONIC, 0: none */
	bool host_readable, host_eof, wr_shut;
	bool guest_shut_send, guest_shut_rcv;
	/* host -> guest */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	/* guest -> host */
	uint32_t rx_cnt, fwd_cnt, fwd_sent;
	uint8_t *ring;
	uint32_t ring_head, ring_len, ring_nocredit; /* the first ring_nocredit bytes are ours */
	char line[LINE_MAX_LEN];
	unsigned line_len;
};

struct rst_reply {
	uint32_t src_port, dst_port; /* as seen from the host */
};

struct vsock {
	struct virtio_dev dev; /* first: the ops get a pointer to it */
	pthread_mutex_t lock;
	struct vsock_backend *be;
	struct exec ex;
	struct vclock clk;
	struct exec_timer *timer; /* the deadline tick */
	uint64_t guest_cid;
	bool cid_set;         /* virtio_vsock_set_cid: a restore keeps this CID */
	bool reset_owed;      /* a restore: TRANSPORT_RESET waits for an event buffer */
	bool timer_armed;
	uint32_t next_port;

	bool rx_held, rx_stalled, rx_pushed;
	struct virtq_chain rxc, txc;
	/* A flush sends at most RX_FLUSH_BUDGET packets; one cut there rings
	 * `more` for the rest, and the next starts at connection rx_from. */
	unsigned rx_sent, rx_from;
	struct doorbell *more;

	struct rst_reply rst[MAX_RST];
	unsigned rst_head, nr_rst;

	struct vsock_conn conns[VSOCK_MAX_CONNS];
	/* Slots at conns_hi and above are free: the per-packet and per-flush
	 * walks stop there instead of crossing every slot. */
	unsigned conns_hi;
	uint8_t pkt[VSOCK_MAX_PKT];
};


static uint64_t now_ms(const struct vsock *v)
{
	return vclock_mono_ns(&v->clk) / 1000000u;
}

/* ---- connections ------------------------------------------------------ */

static struct vsock_conn *conn_find(struct vsock *v, uint32_t local, uint32_t peer)
{
	for (unsigned i = 0; i < v->conns_hi; i++) {
		struct vsock_conn *c = &v->conns[i];
		if (c->state != CS_FREE && c->state != CS_HOST_LINE && c->local_port == local &&
		    c->peer_port == peer)
			return c;
	}
	return NULL;
}

static struct vsock_conn *conn_alloc(struct vsock *v, struct vsock_stream *st)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &v->conns[i];
		if (c->state == CS_FREE) {
			memset(c, 0, sizeof(*c));
			c->v = v;
			c->s = st;
			if (i >= v->conns_hi)
				v->conns_hi = i + 1;
			return c;
		}
	}
	return NULL;
}

/* A tick every TICK_MS while any deadline is set (timer_event re-arms). */
static void timer_arm(struct vsock *v)
{
	if (v->timer_armed)
		return;
	if (v->ex.ops->timer_arm(v->ex.ctx, v->timer, TICK_MS) == 0)
		v->timer_armed = true;
}

static void conn_deadline(struct vsock_conn *c, unsigned ms)
{
	c->deadline = now_ms(c->v) + ms;
	timer_arm(c->v);
}

static void conn_close_fd(struct vsock_conn *c)
{
	struct vsock_backend *be = c->v->be;

	if (!c->s)
		return;
	be->ops->close(be, c->s);
	c->s = NULL;
	c->events = 0;
}

static void conn_free(struct vsock_conn *c)
{
	conn_close_fd(c);
	free(c->ring);
	c->ring = NULL;
	c->state = CS_FREE;
	struct vsock *v = c->v;
	while (v->conns_hi && v->conns[v->conns_hi - 1].state == CS_FREE)
		v->conns_hi--;
}

/* Host side gone or the stream broken: close it; the guest gets an RST if
 * it knows the connection. */
static void conn_reset(struct vsock_conn *c)
{
	bool guest_knows = c->state == CS_OPEN || c->state == CS_GUEST_CONN ||
			   (c->state == CS_HOST_REQ && !(c->pending & P_REQUEST));

	conn_close_fd(c);
	if (!guest_knows) {
		conn_free(c);
		return;
	}
	free(c->ring);
	c->ring = NULL;
	c->ring_len = 0;
	c->state = CS_DEAD;
	c->pending = P_RST;
	c->deadline = 0;
}

static void rst_reply(struct vsock *v, const struct vsock_hdr *h)
{
	if (h->op == OP_RST)
		return; /* never answer a reset with a reset */
	if (v->nr_rst == MAX_RST) {
		dev_request_error(&v->dev.gate);
		return;
	}
	v->rst[(v->rst_head + v->nr_rst++) % MAX_RST] =
		(struct rst_reply){ .src_port = h->dst_port, .dst_port = h->src_port };
}

static uint32_t peer_credit(const struct vsock_conn *c)
{
	uint32_t used = c->tx_cnt - c->peer_fwd_cnt;
	return used >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - used;
}

static void conn_event(void *ctx, uint32_t events);

/* The readiness interest c's state calls for. Input stays watched while
 * the guest has no receive buffers, except on a stream already known to be
 * readable (it would report again at once, for ever): so running out of
 * buffers and getting more changes the interest of the streams with data
 * waiting only, not of every open one. */
static uint32_t conn_want(const struct vsock_conn *c)
{
	uint32_t want = 0;

	/* A device that is not live serves nothing until its reset: a
	 * readable stream or a hang-up would report again at once, for ever. */
	if (!virtio_dev_live(&c->v->dev))
		return 0;
	switch (c->state) {
	case CS_HOST_LINE:
		return VSOCK_EV_IN;
	case CS_GUEST_CONN:
		return VSOCK_EV_OUT;
	case CS_OPEN:
		if (!c->host_eof && !c->guest_shut_rcv && !(c->v->rx_stalled && c->host_readable) &&
		    peer_credit(c) > 0)
			want |= VSOCK_EV_IN;
		if (c->ring_len)
			want |= VSOCK_EV_OUT;
		return want;
	default:
		return 0;
	}
}

/* Brings c's readiness interest in line with its state; a stream not
 * watched at all cannot spin on a hang-up. A failure resets the connection. */
static void conn_apply_events(struct vsock_conn *c)
{
	struct vsock_backend *be = c->v->be;
	uint32_t want;

	if (!c->s)
		return;
	want = conn_want(c);
	if (want == c->events)
		return;
	int r = be->ops->watch(be, c->s, want, conn_event, c);
	if (r < 0) {
		conn_reset(c);
		return;
	}
	c->events = want;
}

/* ---- guest -> host data ----------------------------------------------- */

static void credit_check(struct vsock_conn *c)
{
	uint32_t seen_used = c->rx_cnt - c->fwd_sent; /* in flight, as the guest sees it */
	uint32_t seen_free = seen_used >= VSOCK_BUF_ALLOC ? 0 : VSOCK_BUF_ALLOC - seen_used;

	if (c->fwd_cnt != c->fwd_sent && seen_free < VSOCK_MAX_PKT)
		c->pending |= P_CREDIT;
}

/* Bytes left the ring (or went straight out): account those that were
 * guest data. */
static void host_wrote(struct vsock_conn *c, uint32_t n)
{
	uint32_t ours = n < c->ring_nocredit ? n : c->ring_nocredit;

	c->ring_nocredit -= ours;
	c->fwd_cnt += n - ours;
}

/* Bytes the host end took (0: full for now), or -errno. */
static ssize_t host_send(struct vsock_conn *c, struct iovec *iov, int cnt)
{
	return c->v->be->ops->send(c->v->be, c->s, iov, cnt);
}

static bool ring_put(struct vsock_conn *c, const uint8_t *p, uint32_t n)
{
	if (!c->ring && !(c->ring = malloc(RING_CAP)))
		return false;
	if (n > RING_CAP - c->ring_len)
		return false;
	uint32_t tail = (c->ring_head + c->ring_len) % RING_CAP;
	uint32_t first = n < RING_CAP - tail ? n : RING_CAP - tail;
	memcpy(c->ring + tail, p, first);
	memcpy(c->ring, p + first, n - first);
	c->ring_len += n;
	return true;
}

/* Whether both directions are done, after the ring drained. */
static void conn_check_done(struct vsock_conn *c)
{
	if (c->state != CS_OPEN || c->ring_len)
		return;
	if (c->guest_shut_send && c->guest_shut_rcv) {
		/* The guest closed: it waits for our RST (5.10.6.5). */
		conn_close_fd(c);
		c->state = CS_DEAD;
		c->pending = P_RST;
		c->deadline = 0;
		return;
	}
	if (c->guest_shut_send && !c->wr_shut) {
		c->v->be->ops->shutdown_wr(c->v->be, c->s);
		c->wr_shut = true;
	}
	if (c->guest_shut_send && c->host_eof && !c->deadline)
		conn_deadline(c, CLOSE_MS); /* both ways done: the guest should close */
}

/* Writes what the ring holds. False if the host socket failed (reset). */
static bool ring_flush(struct vsock_conn *c)
{
	while (c->ring_len) {
		uint32_t first = RING_CAP - c->ring_head;
		struct iovec iov[2];
		int cnt = 1;
		if (first >= c->ring_len) {
			first = c->ring_len;
		} else {
			iov[1] = (struct iovec){ c->ring, c->ring_len - first };
			cnt = 2;
		}
		iov[0] = (struct iovec){ c->ring + c->ring_head, first };
		ssize_t n = host_send(c, iov, cnt);
		if (n < 0) {
			conn_reset(c);
			return false;
		}
		if (n == 0)
			break;
		c->ring_head = (c->ring_head + (uint32_t)n) % RING_CAP;
		c->ring_len -= (uint32_t)n;
		host_wrote(c, (uint32_t)n);
	}
	if (!c->ring_len)
		c->ring_head = 0;
	credit_check(c);
	conn_check_done(c);
	return true;
}

/* Guest RW payload (already in v->pkt) for an OPEN connection. */
static void guest_data(struct vsock_conn *c, uint32_t len)
{
	struct vsock *v = c->v;
	uint32_t off = 0;

	if (c->guest_shut_send || c->wr_shut) {
		dev_request_error(&v->dev.gate); /* data after its own SHUTDOWN */
		return;
	}
	if (c->ring_len - c->ring_nocredit + len > VSOCK_BUF_ALLOC) {
		/* The guest overran the credit we gave it. */
		dev_request_error(&v->dev.gate);
		conn_reset(c);
		return;
	}
	c->rx_cnt += len;
	if (!c->ring_len && len) {
		struct iovec iov = { v->pkt, len };
		ssize_t n = host_send(c, &iov, 1);
		if (n < 0) {
			conn_reset(c);
			return;
		}
		off = (uint32_t)n;
		host_wrote(c, off);
	}
	if (off < len && !ring_put(c, v->pkt + off, len - off)) {
		conn_reset(c);
		return;
	}
	credit_check(c);
}

/* ---- guest TX --------------------------------------------------------- */

static void guest_connect(struct vsock *v, const struct vsock_hdr *h)
{
	struct vsock_conn *c = conn_alloc(v, NULL);
	int status;

	if (!c) {
		rst_reply(v, h);
		return;
	}
	c->local_port = h->dst_port;
	c->peer_port = h->src_port;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	/* The policy: a denied port is refused like one nobody listens at; a
	 * redirected one reaches the host service of another port while the
	 * guest keeps talking to the port it asked for. */
	uint32_t to = h->dst_port;
	if (dev_decide_vsock(&v->dev.gate, POL_VSOCK_G2H, h->dst_port, &to) == POLICY_DENY) {
		c->state = CS_GUEST_CONN;
		conn_reset(c);
		return;
	}
	c->s = v->be->ops->connect(v->be, to, &status);
	if (status == 0) {
		c->state = CS_OPEN;
		c->pending = P_RESPONSE;
	} else if (status == 1) {
		c->state = CS_GUEST_CONN;
		conn_deadline(c, HANDSHAKE_MS);
	} else {
		/* Nobody listens at the host port (or the host refused). */
		c->state = CS_GUEST_CONN;
		conn_reset(c);
	}
}

static void tx_packet(struct vsock *v, const struct virtq_chain *ch)
{
	const struct dev_gate *gate = &v->dev.gate;
	struct vsock_hdr h;
	struct vsock_conn *c;

	if (ch->out_len < HDR_LEN || virtq_chain_read(ch, 0, &h, HDR_LEN) != HDR_LEN) {
		dev_request_error(gate);
		return;
	}
	/* Spoofed or misdirected: drop without an answer. */
	if (h.src_cid != v->guest_cid || h.dst_cid != VSOCK_HOST_CID) {
		dev_request_error(gate);
		return;
	}
	c = conn_find(v, h.dst_port, h.src_port);
	if (h.len > VSOCK_MAX_PKT || h.len > ch->out_len - HDR_LEN || h.type != VSOCK_TYPE_STREAM) {
		/* Unknown type: reset (5.10.6.6). A lying length breaks the
		 * stream, so its connection goes too. */
		dev_request_error(gate);
		if (c && c->state != CS_DEAD && h.op != OP_RST)
			conn_reset(c);
		else if (!c)
			rst_reply(v, &h);
		return;
	}
	if (h.op < OP_REQUEST || h.op > OP_CREDIT_REQUEST) {
		dev_request_error(gate);
		return;
	}
	if (!dev_request(gate, REQ_WRITE, h.len)) {
		if (c && c->state != CS_DEAD)
			conn_reset(c);
		else if (!c)
			rst_reply(v, &h);
		return;
	}
	if (!c) {
		if (h.op == OP_REQUEST)
			guest_connect(v, &h);
		else
			rst_reply(v, &h);
		return;
	}
	if (c->state == CS_DEAD) {
		if (h.op == OP_RST || h.op == OP_REQUEST)
			conn_free(c); /* crossed resets, or the guest forgot it */
		if (h.op == OP_REQUEST)
			guest_connect(v, &h);
		return; /* anything else was in flight before our RST: drop */
	}
	c->peer_buf_alloc = h.buf_alloc;
	c->peer_fwd_cnt = h.fwd_cnt;

	switch (h.op) {
	case OP_REQUEST: /* duplicate */
		dev_request_error(gate);
		conn_reset(c);
		break;
	case OP_RESPONSE:
		if (c->state == CS_HOST_REQ && !(c->pending & P_REQUEST)) {
			char ok[LINE_MAX_LEN];
			int n = snprintf(ok, sizeof(ok), "OK %" PRIu32 "\n", c->local_port);
			c->state = CS_OPEN;
			c->deadline = 0;
			if (!ring_put(c, (const uint8_t *)ok, (uint32_t)n)) {
				conn_reset(c);
				break;
			}
			c->ring_nocredit = (uint32_t)n;
			ring_flush(c);
		} else {
			dev_request_error(gate);
			conn_reset(c);
		}
		break;
	case OP_RST:
		conn_free(c);
		break;
	case OP_SHUTDOWN:
		if (c->state != CS_OPEN) {
			conn_reset(c);
			break;
		}
		c->guest_shut_rcv |= (h.flags & SHUT_F_RCV) != 0;
		c->guest_shut_send |= (h.flags & SHUT_F_SEND) != 0;
		if (c->guest_shut_send && c->guest_shut_rcv && c->ring_len)
			conn_deadline(c, CLOSE_MS); /* give the host socket time to drain */
		conn_check_done(c);
		break;
	case OP_RW:
		if (c->state != CS_OPEN) {
			dev_request_error(gate);
			conn_reset(c);
			break;
		}
		if (h.len && virtq_chain_read(ch, HDR_LEN, v->pkt, h.len) != h.len) {
			dev_request_error(gate);
			conn_reset(c);
			break;
		}
		guest_data(c, h.len);
		break;
	case OP_CREDIT_UPDATE:
		break; /* taken above */
	case OP_CREDIT_REQUEST:
		c->pending |= P_CREDIT;
		break;
	}
}

/* ---- guest RX --------------------------------------------------------- */

/* A receive chain in hand; false (and rx_stalled) when the guest has none.
 * At most a ring's worth of malformed chains a call: a second vCPU can post
 * them as fast as they are completed, and this runs on the event thread
 * outside any kick's budget (host data, the transmit queue's kick). More
 * than that were posted during the call: their kick clears rx_stalled. */
static bool rx_chain(struct vsock *v)
{
	struct virtq *q = &v->dev.vq[RXQ];
	unsigned bad = 0;

	while (!v->rx_held) {
		int got = virtq_pop(q, &v->rxc);
		if (got == 0 || got == -EINVAL) {
			if (got == -EINVAL && q->broken)
				virtio_dev_needs_reset(&v->dev);
			v->rx_stalled = true;
			return false;
		}
		/* A receive buffer must hold a header and at least one data
		 * byte: with header-only buffers a readable host socket could
		 * never be drained, and its level-triggered wake-ups would spin. */
		if (got < 0 || v->rxc.out_len || v->rxc.in_len <= HDR_LEN) {
			dev_request_error(&v->dev.gate);
			virtq_push(q, v->rxc.head, 0);
			v->rx_pushed = true;
			if (++bad >= q->size) {
				v->rx_stalled = true;
				return false;
			}
			continue;
		}
		v->rx_held = true;
	}
	return true;
}

static void rx_send(struct vsock *v, const struct vsock_hdr *h, const uint8_t *data, uint32_t len)
{
	virtq_chain_write(&v->rxc, 0, h, HDR_LEN);
	if (len)
		virtq_chain_write(&v->rxc, HDR_LEN, data, len);
	virtq_push_chain(&v->dev.vq[RXQ], &v->rxc, HDR_LEN + len);
	v->rx_held = false;
	v->rx_pushed = true;
	v->rx_sent++;
}

static struct vsock_hdr conn_hdr(struct vsock_conn *c, uint16_t op)
{
	struct vsock_hdr h = {
		.src_cid = VSOCK_HOST_CID,
		.dst_cid = c->v->guest_cid,
		.src_port = c->local_port,
		.dst_port = c->peer_port,
		.type = VSOCK_TYPE_STREAM,
		.op = op,
		.buf_alloc = VSOCK_BUF_ALLOC,
		.fwd_cnt = c->fwd_cnt,
	};
	c->fwd_sent = c->fwd_cnt;
	c->pending &= ~P_CREDIT; /* every header carries our credit */
	return h;
}

/* Sends a control packet of c's; false when no rx buffer. */
static bool conn_ctl(struct vsock_conn *c, unsigned flag, uint16_t op, uint32_t flags)
{
	struct vsock *v = c->v;

	if (!rx_chain(v))
		return false;
	struct vsock_hdr h = conn_hdr(c, op);
	h.flags = flags;
	c->pending &= ~flag;
	(void)dev_request(&v->dev.gate, REQ_READ, 0); /* protocol: counted, not refusable */
	rx_send(v, &h, NULL, 0);
	return true;
}

/* Host data for the guest; true if a packet went out or the connection
 * changed state. */
static bool conn_read_host(struct vsock_conn *c)
{
	struct vsock *v = c->v;

	if (!rx_chain(v))
		return false;
	uint32_t max = (uint32_t)(v->rxc.in_len - HDR_LEN);
	uint32_t credit = peer_credit(c);
	if (max > credit)
		max = credit;
	if (max > VSOCK_MAX_PKT)
		max = VSOCK_MAX_PKT;
	if (max == 0)
		return false; /* no credit: conn_rx_one checked, kept for safety */
	ssize_t n = v->be->ops->recv(v->be, c->s, v->pkt, max, false);
	if (n < 0) {
		c->host_readable = false;
		if (n == -EAGAIN)
			return false;
		conn_reset(c);
		return true;
	}
	if (n == 0) {
		/* The host client will send no more (it may still read). */
		c->host_readable = false;
		c->host_eof = true;
		c->pending |= P_SHUTDOWN;
		conn_check_done(c);
		return true;
	}
	if (!dev_request(&v->dev.gate, REQ_READ, (uint64_t)n)) {
		conn_reset(c);
		return true;
	}
	struct vsock_hdr h = conn_hdr(c, OP_RW);
	h.len = (uint32_t)n;
	c->tx_cnt += (uint32_t)n;
	rx_send(v, &h, v->pkt, (uint32_t)n);
	return true;
}

/* At most one packet for c; true on progress. Control packets that must
 * precede data go first, SHUTDOWN only after all data read before the EOF. */
static bool conn_rx_one(struct vsock_conn *c)
{
	struct vsock *v = c->v;

	switch (c->state) {
	case CS_FREE:
	case CS_HOST_LINE:
		return false;
	case CS_DEAD:
		if (!(c->pending & P_RST))
			return false;
		if (!conn_ctl(c, P_RST, OP_RST, 0))
			return false;
		conn_free(c);
		return true;
	default:
		break;
	}
	if (c->state == CS_HOST_REQ) /* nothing but the REQUEST before the answer */
		return (c->pending & P_REQUEST) && conn_ctl(c, P_REQUEST, OP_REQUEST, 0);
	if (c->state != CS_OPEN)
		return false;
	if (c->pending & P_RESPONSE)
		return conn_ctl(c, P_RESPONSE, OP_RESPONSE, 0);
	if (c->host_readable && !c->host_eof && !c->guest_shut_rcv &&
	    peer_credit(c) > 0 && conn_read_host(c))
		return true;
	if (v->rx_stalled)
		return false;
	if (c->pending & P_SHUTDOWN)
		return conn_ctl(c, P_SHUTDOWN, OP_SHUTDOWN, SHUT_F_SEND);
	if (c->pending & P_CREDIT)
		return conn_ctl(c, P_CREDIT, OP_CREDIT_UPDATE, 0);
	return false;
}

/* Produces the packets the guest is owed, as far as rx buffers go and at
 * most RX_FLUSH_BUDGET of them: past that the doorbell brings the rest, on
 * a later turn of the event thread, starting with the connection the cut
 * left waiting. */
static void rx_produce(struct vsock *v)
{
	bool progress = true;

	v->rx_sent = 0;
	while (progress && !v->rx_stalled && v->rx_sent < RX_FLUSH_BUDGET) {
		progress = false;
		while (v->nr_rst && v->rx_sent < RX_FLUSH_BUDGET && rx_chain(v)) {
			struct rst_reply r = v->rst[v->rst_head];
			struct vsock_hdr h = {
				.src_cid = VSOCK_HOST_CID,
				.dst_cid = v->guest_cid,
				.src_port = r.src_port,
				.dst_port = r.dst_port,
				.type = VSOCK_TYPE_STREAM,
				.op = OP_RST,
				.buf_alloc = VSOCK_BUF_ALLOC,
			};
			v->rst_head = (v->rst_head + 1) % MAX_RST;
			v->nr_rst--;
			(void)dev_request(&v->dev.gate, REQ_READ, 0);
			rx_send(v, &h, NULL, 0);
			progress = true;
		}
		for (unsigned k = 0; k < v->conns_hi && !v->rx_stalled; k++) {
			unsigned i = (v->rx_from + k) % v->conns_hi;
			if (v->rx_sent >= RX_FLUSH_BUDGET) {
				v->rx_from = i;
				break;
			}
			if (conn_rx_one(&v->conns[i]))
				progress = true;
		}
	}
	if (v->rx_sent >= RX_FLUSH_BUDGET && !v->rx_stalled)
		v->ex.ops->doorbell_ring(v->ex.ctx, v->more);
	if (v->rx_pushed) {
		v->rx_pushed = false;
		virtio_dev_used(&v->dev, RXQ);
	}
}

/* The packets owed, then every stream's interest brought in line with
 * its state (none while the device is not live). */
static void rx_flush(struct vsock *v)
{
	if (virtio_dev_live(&v->dev))
		rx_produce(v);
	for (unsigned i = 0; i < v->conns_hi; i++)
		if (v->conns[i].state != CS_FREE)
			conn_apply_events(&v->conns[i]);
}

/* The rest of a flush cut at its budget. */
static void rx_more(void *arg)
{
	struct vsock *v = arg;

	pthread_mutex_lock(&v->lock);
	rx_flush(v);
	pthread_mutex_unlock(&v->lock);
}

/* ---- host side -------------------------------------------------------- */

static uint32_t alloc_port(struct vsock *v)
{
	for (unsigned tries = 0; tries <= VSOCK_MAX_CONNS; tries++) {
		uint32_t p = v->next_port++;
		if (v->next_port < EPHEMERAL_BASE || v->next_port == UINT32_MAX)
			v->next_port = EPHEMERAL_BASE;
		bool used = false;
		for (unsigned i = 0; i < v->conns_hi && !used; i++)
			used = v->conns[i].state != CS_FREE && v->conns[i].local_port == p;
		if (!used)
			return p;
	}
	return 0;
}

/* "CONNECT <port>\n" from a host client. Reads only up to the newline: what
 * follows is stream data for the guest. */
static void host_line(struct vsock_conn *c)
{
	struct vsock *v = c->v;
	char buf[LINE_MAX_LEN];
	size_t room = sizeof(c->line) - c->line_len;
	ssize_t n = v->be->ops->recv(v->be, c->s, buf, room, true);

	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		conn_free(c);
		return;
	}
	char *nl = memchr(buf, '\n', (size_t)n);
	size_t take = nl ? (size_t)(nl - buf) + 1 : (size_t)n;
	if (v->be->ops->recv(v->be, c->s, c->line + c->line_len, take, false) != (ssize_t)take) {
		conn_free(c);
		return;
	}
	c->line_len += (unsigned)take;
	if (!nl) {
		if (c->line_len == sizeof(c->line))
			conn_free(c); /* no newline in a line's worth: not our protocol */
		return;
	}
	c->line[c->line_len - 1] = 0;
	const char *num = c->line + 8;
	char *stop;
	errno = 0;
	unsigned long port = strtoul(num, &stop, 10);
	if (strncmp(c->line, "CONNECT ", 8) || *num < '0' || *num > '9' || errno ||
	    (*stop && strcmp(stop, "\r")) || port > UINT32_MAX || !virtio_dev_live(&v->dev)) {
		conn_free(c);
		return;
	}
	/* The policy: a denied guest port closes the host client (what a
	 * refused connection does) before the guest hears of it; a redirect
	 * asks the guest for the other port. */
	uint32_t to = (uint32_t)port;
	if (dev_decide_vsock(&v->dev.gate, POL_VSOCK_H2G, (uint32_t)port, &to) == POLICY_DENY) {
		conn_free(c);
		return;
	}
	uint32_t local = alloc_port(v);
	if (!local) {
		conn_free(c);
		return;
	}
	c->local_port = local;
	c->peer_port = to;
	c->state = CS_HOST_REQ;
	c->pending = P_REQUEST;
	conn_deadline(c, HANDSHAKE_MS);
}

static void guest_conn_done(struct vsock_conn *c)
{
	if (c->v->be->ops->connect_result(c->v->be, c->s) != 0) {
		conn_reset(c);
		return;
	}
	c->state = CS_OPEN;
	c->pending |= P_RESPONSE;
	c->deadline = 0;
}

static void conn_event(void *ctx, uint32_t events)
{
	struct vsock_conn *c = ctx;
	struct vsock *v = c->v;

	pthread_mutex_lock(&v->lock);
	/* A stale event for a slot reused since: harmless, every step below
	 * is non-blocking and rechecks. */
	if (c->s) {
		switch (c->state) {
		case CS_HOST_LINE:
			host_line(c);
			break;
		case CS_GUEST_CONN:
			guest_conn_done(c);
			break;
		case CS_OPEN: {
			/* A hang-up or an error is reported whether it was asked
			 * for or not (epoll always reports them). With only
			 * VSOCK_EV_OUT asked for (data for the host waiting, the
			 * guest not reading), a peer gone both ways leaves the
			 * socket never writable and the event firing again at
			 * once: the write it calls for fails and resets, and a
			 * connection it leaves with data still waiting is reset.
			 * Only the backend's own word counts as a hang-up: an
			 * input event after the interest dropped IN may be one
			 * fetched before the drop, in the same round. */
			bool hup = events & VSOCK_EV_HUP;
			if (((events & VSOCK_EV_OUT) || hup) && c->ring_len && !ring_flush(c))
				break;
			if (c->state != CS_OPEN)
				break;
			if (hup && c->ring_len) {
				conn_reset(c);
				break;
			}
			if ((c->events & VSOCK_EV_IN) && (events & VSOCK_EV_IN))
				c->host_readable = true;
			break;
		}
		default:
			break;
		}
	}
	rx_flush(v);
	pthread_mutex_unlock(&v->lock);
}

/* A host client connected (backend callback). */
static void on_accept(void *ctx, struct vsock_stream *st)
{
	struct vsock *v = ctx;

	pthread_mutex_lock(&v->lock);
	struct vsock_conn *c = virtio_dev_live(&v->dev) ? conn_alloc(v, st) : NULL;
	if (!c) {
		v->be->ops->close(v->be, st); /* guest not running, or table full */
	} else {
		c->state = CS_HOST_LINE;
		conn_deadline(c, HANDSHAKE_MS);
		conn_apply_events(c);
	}
	pthread_mutex_unlock(&v->lock);
}

static void timer_event(void *ctx)
{
	struct vsock *v = ctx;
	uint64_t now = now_ms(v);
	bool any = false;

	pthread_mutex_lock(&v->lock);
	v->timer_armed = false; /* one-shot: it fired */
	for (unsigned i = 0; i < v->conns_hi; i++) {
		struct vsock_conn *c = &v->conns[i];
		if (c->state == CS_FREE || !c->deadline)
			continue;
		if (c->deadline > now) {
			any = true;
			continue;
		}
		c->deadline = 0;
		if (c->state == CS_HOST_LINE)
			conn_free(c);
		else
			conn_reset(c);
	}
	if (any)
		timer_arm(v);
	rx_flush(v);
	pthread_mutex_unlock(&v->lock);
}

/* ---- virtio ops ------------------------------------------------------- */

/* One guest packet; the device writes nothing back into TX chains. */
static uint32_t tx_serve(struct virtio_dev *d, struct virtq_chain *c)
{
	tx_packet((struct vsock *)d, c);
	return 0;
}

#define EVQ 2
#define VSOCK_EVENT_TRANSPORT_RESET 0 /* virtio 1.2, 5.10.6.6 */

/* The guest's sockets to the host died with the old process: tells its
 * driver so (it resets every connected socket and reads guest_cid again)
 * on the first event buffer it posts. At most a ring's worth of bad
 * buffers a call, as rx_chain. */
static void send_reset(struct vsock *v)
{
	struct virtq *q = &v->dev.vq[EVQ];
	struct virtq_chain c;
	uint8_t ev[4] = { VSOCK_EVENT_TRANSPORT_RESET, 0, 0, 0 };

	if (!v->reset_owed)
		return;
	for (unsigned bad = 0; bad < q->size; bad++) {
		int r = virtq_pop(q, &c);
		if (r == 0)
			return; /* no buffer yet: the next kick of the event queue */
		if (r == -EINVAL) {
			virtio_dev_needs_reset(&v->dev);
			return;
		}
		if (r == 1 && c.in_len >= sizeof(ev) && virtq_chain_write(&c, 0, ev, sizeof(ev)) == sizeof(ev)) {
			virtq_push_chain(q, &c, sizeof(ev));
			v->reset_owed = false;
			virtio_dev_used(&v->dev, EVQ);
			return;
		}
		/* A bad or too small buffer: answered empty, the next one tried. */
		dev_request_error(&v->dev.gate);
		virtq_push(q, c.head, 0);
		virtio_dev_used(&v->dev, EVQ);
	}
}

static void vsock_notify(struct virtio_dev *d, unsigned q)
{
	struct vsock *v = (struct vsock *)d;

	pthread_mutex_lock(&v->lock);
	if (!virtio_dev_live(d))
		goto out;
	send_reset(v);
	if (q == RXQ) {
		v->rx_stalled = false; /* new buffers: read host sockets again */
	} else if (q == TXQ) {
		virtio_dev_serve(d, TXQ, &v->txc, tx_serve);
	}
	/* q == 2, the event queue: the buffers wait for events we never send. */
	rx_flush(v);
out:
	pthread_mutex_unlock(&v->lock);
}

static void vsock_drop_all(struct vsock *v)
{
	for (unsigned i = 0; i < v->conns_hi; i++)
		if (v->conns[i].state != CS_FREE)
			conn_free(&v->conns[i]);
	v->rx_held = false;
	v->rx_stalled = false;
	v->rx_pushed = false;
	v->nr_rst = 0;
	v->rst_head = 0;
}

static int vsock_activate(struct virtio_dev *d)
{
	struct vsock *v = (struct vsock *)d;

	pthread_mutex_lock(&v->lock);
	v->rx_stalled = false;
	pthread_mutex_unlock(&v->lock);
	return 0;
}

static void vsock_reset(struct virtio_dev *d)
{
	struct vsock *v = (struct vsock *)d;

	/* The guest's sockets are gone: so are the host ends. */
	pthread_mutex_lock(&v->lock);
	vsock_drop_all(v);
	v->reset_owed = false; /* a new driver has no sockets to reset */
	pthread_mutex_unlock(&v->lock);
}

static void vsock_config_read(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len)
{
	struct vsock *v = (struct vsock *)d;
	uint8_t cfg[VSOCK_CONFIG_LEN];

	memcpy(cfg, &v->guest_cid, sizeof(cfg));
	if (off < sizeof(cfg) && len <= sizeof(cfg) - off)
		memcpy(buf, cfg + off, len);
}

static void vsock_config_write(struct virtio_dev *d, uint32_t off, const void *buf, uint32_t len)
{
	(void)d;
	(void)off;
	(void)buf;
	(void)len; /* guest_cid is read-only */
}

static int vsock_save(struct virtio_dev *d, struct snap_writer *w)
{
	snap_put_u64(w, ((struct vsock *)d)->guest_cid);
	return 0;
}

/* Host connections do not survive the process: the table starts empty and
 * the guest is told with a transport reset (send_reset). */
static int vsock_restore(struct virtio_dev *d, struct snap_reader *r)
{
	struct vsock *v = (struct vsock *)d;
	uint64_t cid = snap_get_u64(r);

	if (snap_error(r)[0])
		return -1;
	if (cid < 3 || cid >= 0xffffffffULL)
		return snap_fail(r, "guest CID %llu", (unsigned long long)cid);
	pthread_mutex_lock(&v->lock);
	vsock_drop_all(v);
	if (!v->cid_set)
		v->guest_cid = cid;
	v->reset_owed = true;
	pthread_mutex_unlock(&v->lock);
	return 0;
}

int virtio_vsock_set_cid(struct virtio_dev *d, uint64_t cid)
{
	struct vsock *v = (struct vsock *)d;

	if (cid < 3 || cid >= 0xffffffffULL)
		return -1;
	pthread_mutex_lock(&v->lock);
	v->guest_cid = cid;
	v->cid_set = true;
	pthread_mutex_unlock(&v->lock);
	return 0;
}

static const struct virtio_dev_ops vsock_ops = {
	.save = vsock_save,
	.restore = vsock_restore,
	.queue_notify = vsock_notify,
	.activate = vsock_activate,
	.reset = vsock_reset,
	.config_read = vsock_config_read,
	.config_write = vsock_config_write,
};

/* ---- lifetime --------------------------------------------------------- */

struct virtio_dev *virtio_vsock_new_backend(struct vsock_backend *be, uint64_t guest_cid,
					    const struct exec *ex, const struct vclock *clk,
					    const struct gmem *mem, struct dev_gate gate, char *err,
					    size_t errlen)
{
	struct vsock *v;

	if (guest_cid < 3 || guest_cid >= 0xffffffffULL) {
		errmsg(err, errlen, "vsock: bad configuration");
		be->ops->free(be);
		return NULL;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		errmsg(err, errlen, "vsock: out of memory");
		be->ops->free(be);
		return NULL;
	}
	v->dev.name = "virtio-vsock";
	v->dev.device_id = VIRTIO_ID_VSOCK;
	v->dev.host_features = 0; /* stream only: no VIRTIO_VSOCK_F_SEQPACKET */
	v->dev.num_queues = 3;
	v->dev.queue_max = VSOCK_QUEUE_SIZE;
	v->dev.config_len = VSOCK_CONFIG_LEN;
	v->dev.ops = &vsock_ops;
	v->dev.priv = v;
	v->dev.gate = gate;
	v->dev.mem = mem;
	v->be = be;
	v->ex = *ex;
	v->clk = *clk;
	v->guest_cid = guest_cid;
	v->next_port = EPHEMERAL_BASE;
	pthread_mutex_init(&v->lock, NULL);

	v->timer = ex->ops->timer_new(ex->ctx, timer_event, v);
	if (!v->timer) {
		errmsg(err, errlen, "vsock: cannot create its timer");
		goto fail;
	}
	v->more = ex->ops->doorbell_new(ex->ctx, rx_more, v);
	if (!v->more) {
		errmsg(err, errlen, "vsock: cannot create its doorbell");
		goto fail;
	}
	be->accept = on_accept;
	be->ctx = v;
	int r = be->ops->start(be);
	if (r < 0) {
		errmsg(err, errlen, "vsock: event loop: %s", strerror(-r));
		goto fail;
	}
	return &v->dev;
fail:
	be->ops->free(be);
	if (v->timer)
		ex->ops->timer_free(ex->ctx, v->timer);
	ex->ops->doorbell_free(ex->ctx, v->more);
	pthread_mutex_destroy(&v->lock);
	free(v);
	return NULL;
}

void virtio_vsock_free(struct virtio_dev *d)
{
	struct vsock *v = (struct vsock *)d;

	if (!d)
		return;
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		free(v->conns[i].ring);
	v->be->ops->free(v->be); /* closes the streams still open, the listener */
	v->ex.ops->timer_free(v->ex.ctx, v->timer);
	v->ex.ops->doorbell_free(v->ex.ctx, v->more);
	pthread_mutex_destroy(&v->lock);
	free(v);
}
