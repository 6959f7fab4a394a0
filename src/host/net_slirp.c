/* net_slirp — see net_slirp.h.
 * Event loop integration: after everything that may change what slirp wants
 * to watch (a frame in, a socket or timer event), slirp_pollfds_fill() lists
 * its sockets and a timeout; the sockets are put on the evloop with the
 * events slirp asked for (the difference to the last list, so a quiet
 * network costs no epoll_ctl), and one timerfd is armed at the earliest of
 * the timeout and slirp's own timers. When any of them fires, one poll()
 * with a zero timeout over the whole list gives slirp_pollfds_poll() its
 * answers, expired timers run, and the list is refilled. Everything runs on
 * the event thread. */
#define _GNU_SOURCE
#include "host/net_slirp.h"

#include <errno.h>
#include <poll.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "host/dl.h"
#include "host/evloop.h"

/* libslirp (and glib under it) is loaded when the first user-mode network
 * is made: a VM without one carries neither (host/dl.h). */
static struct {
	__typeof__(slirp_new) *new;
	__typeof__(slirp_cleanup) *cleanup;
	__typeof__(slirp_input) *input;
	__typeof__(slirp_pollfds_fill) *pollfds_fill;
	__typeof__(slirp_pollfds_poll) *pollfds_poll;
	__typeof__(slirp_add_hostfwd) *add_hostfwd;
} lib;
static struct dl_lib slirp_lib = { .soname = "libslirp.so.0" };

static int load_slirp(char *err, size_t errlen)
{
	const struct dl_sym syms[] = {
		{ (void **)&lib.new, "slirp_new" },
		{ (void **)&lib.cleanup, "slirp_cleanup" },
		{ (void **)&lib.input, "slirp_input" },
		{ (void **)&lib.pollfds_fill, "slirp_pollfds_fill" },
		{ (void **)&lib.pollfds_poll, "slirp_pollfds_poll" },
		{ (void **)&lib.add_hostfwd, "slirp_add_hostfwd" },
	};
	char why[200];
	if (dl_load(&slirp_lib, syms, sizeof(syms) / sizeof(syms[0]), why, sizeof(why)) < 0)
		return snprintf(err, errlen, "user net: %s (install libslirp0)", why), -1;
	return 0;
}

#define GUEST_ERRORS_LOGGED 8 /* then only counted: the guest controls them */

struct stimer {
	struct stimer *next;
	SlirpTimerCb cb;
	void *opaque;
	int64_t expire_ms;
	bool armed;
};

struct watched {
	int fd;
	uint32_t events; /* EPOLL* */
};

struct frame {
	size_t len;
	uint8_t data[];
};

struct sl {
	struct net_backend be; /* first */
	Slirp *slirp;
	struct evloop *loop;
	int tfd;
	struct stimer *timers;
	struct pollfd *pfd; /* slirp's last fill; get_revents indexes it */
	unsigned npfd, pfd_cap;
	struct watched *w; /* what is on the evloop now */
	unsigned nw, w_cap;
	struct frame *q[NET_SLIRP_QUEUE_MAX];
	unsigned qhead, qcount;
	bool rx_on;
	uint64_t dropped;
	uint64_t guest_errors;
	uint8_t tx[VIRTIO_NET_FRAME_MAX];
};

static struct sl *to_sl(struct net_backend *b)
{
	return (struct sl *)b;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- slirp callbacks ---------------------------------------------------- */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct sl *s = opaque;

	if (len > VIRTIO_NET_FRAME_MAX || s->qcount == NET_SLIRP_QUEUE_MAX) {
		s->dropped++;
		return (ssize_t)len; /* dropped: slirp's TCP retransmits */
	}
	struct frame *f = malloc(sizeof(*f) + len);
	if (!f) {
		s->dropped++;
		return (ssize_t)len;
	}
	f->len = len;
	memcpy(f->data, buf, len);
	s->q[(s->qhead + s->qcount) % NET_SLIRP_QUEUE_MAX] = f;
	s->qcount++;
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	struct sl *s = opaque;

	if (s->guest_errors++ < GUEST_ERRORS_LOGGED)
		fprintf(stderr, "vigil: user net: guest error: %s\n", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
	(void)opaque;
	return now_ns();
}

static void arm_timerfd(struct sl *s, int64_t deadline_ms);

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct sl *s = opaque;
	struct stimer *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->cb = cb;
	t->opaque = cb_opaque;
	t->next = s->timers;
	s->timers = t;
	return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
	struct sl *s = opaque;

	for (struct stimer **p = &s->timers; *p; p = &(*p)->next)
		if (*p == timer) {
			*p = ((struct stimer *)timer)->next;
			free(timer);
			return;
		}
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	struct stimer *t = timer;

	t->expire_ms = expire_ms;
	t->armed = true;
	arm_timerfd(opaque, expire_ms);
}

static void cb_register_poll_fd(int fd, void *opaque)
{
	(void)fd, (void)opaque; /* watched from the next fill on */
}

/* Called before slirp closes fd: drop it now, as the number may come back
 * as another socket before the next fill. */
static void cb_unregister_poll_fd(int fd, void *opaque)
{
	struct sl *s = opaque;

	for (unsigned i = 0; i < s->nw; i++)
		if (s->w[i].fd == fd) {
			evloop_del(s->loop, fd);
			s->w[i] = s->w[--s->nw];
			return;
		}
}

static void cb_notify(void *opaque)
{
	(void)opaque; /* only guestfwd sockets use it; none here */
}

static const SlirpCb slirp_cbs = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_register_poll_fd,
	.unregister_poll_fd = cb_unregister_poll_fd,
	.notify = cb_notify,
};

/* ---- polling ------------------------------------------------------------ */

static int add_poll(int fd, int events, void *opaque)
{
	struct sl *s = opaque;

	if (s->npfd == s->pfd_cap) {
		unsigned cap = s->pfd_cap ? 2 * s->pfd_cap : 16;
		struct pollfd *p = realloc(s->pfd, cap * sizeof(*p));
		if (!p)
			return -1; /* not watched this round */
		s->pfd = p;
		s->pfd_cap = cap;
	}
	short ev = 0;
	if (events & SLIRP_POLL_IN)
		ev |= POLLIN;
	if (events & SLIRP_POLL_OUT)
		ev |= POLLOUT;
	if (events & SLIRP_POLL_PRI)
		ev |= POLLPRI;
	s->pfd[s->npfd] = (struct pollfd){ .fd = fd, .events = ev };
	return (int)s->npfd++;
}

static int get_revents(int idx, void *opaque)
{
	struct sl *s = opaque;

	if (idx < 0 || (unsigned)idx >= s->npfd)
		return 0;
	short r = s->pfd[idx].revents;
	int ev = 0;
	if (r & POLLIN)
		ev |= SLIRP_POLL_IN;
	if (r & POLLOUT)
		ev |= SLIRP_POLL_OUT;
	if (r & POLLPRI)
		ev |= SLIRP_POLL_PRI;
	if (r & POLLERR)
		ev |= SLIRP_POLL_ERR;
	if (r & POLLHUP)
		ev |= SLIRP_POLL_HUP;
	return ev;
}

static void set_timerfd(struct sl *s, int64_t deadline_ms)
{
	struct itimerspec its = { 0 };

	if (deadline_ms != INT64_MAX) {
		int64_t ns = deadline_ms * 1000000;
		if (ns <= 0)
			ns = 1; /* 0 would disarm */
		its.it_value.tv_sec = ns / 1000000000;
		its.it_value.tv_nsec = ns % 1000000000;
	}
	timerfd_settime(s->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* A slirp timer moved: fire no later than deadline_ms. */
static void arm_timerfd(struct sl *s, int64_t deadline_ms)
{
	if (!s->loop || s->tfd < 0)
		return;
	struct itimerspec cur;
	if (timerfd_gettime(s->tfd, &cur) == 0 && (cur.it_value.tv_sec || cur.it_value.tv_nsec)) {
		/* armed already: keep it if it is earlier (cur is relative) */
		int64_t cur_ms = now_ns() / 1000000 + (int64_t)cur.it_value.tv_sec * 1000 +
				 cur.it_value.tv_nsec / 1000000;
		if (cur_ms <= deadline_ms)
			return;
	}
	set_timerfd(s, deadline_ms);
}

static void on_event(void *ctx, uint32_t events);

/* Puts slirp's current wishes on the evloop. */
static void sync_watches(struct sl *s)
{
	for (unsigned i = 0; i < s->nw;) {
		bool keep = false;
		for (unsigned k = 0; k < s->npfd && !keep; k++)
			keep = s->pfd[k].fd == s->w[i].fd && s->pfd[k].events;
		if (keep) {
			i++;
			continue;
		}
		evloop_del(s->loop, s->w[i].fd);
		s->w[i] = s->w[--s->nw];
	}
	for (unsigned k = 0; k < s->npfd; k++) {
		uint32_t ev = 0;
		if (s->pfd[k].events & POLLIN)
			ev |= EPOLLIN;
		if (s->pfd[k].events & POLLOUT)
			ev |= EPOLLOUT;
		if (s->pfd[k].events & POLLPRI)
			ev |= EPOLLPRI;
		if (!ev)
			continue;
		int fd = s->pfd[k].fd;
		unsigned i = 0;
		while (i < s->nw && s->w[i].fd != fd)
			i++;
		if (i < s->nw) {
			if (s->w[i].events != ev) {
				if (evloop_mod(s->loop, fd, ev, on_event, s) == -ENOENT)
					evloop_add(s->loop, fd, ev, on_event, s);
				s->w[i].events = ev;
			}
			continue;
		}
		if (s->nw == s->w_cap) {
			unsigned cap = s->w_cap ? 2 * s->w_cap : 16;
			struct watched *p = realloc(s->w, cap * sizeof(*p));
			if (!p)
				continue; /* still polled on the next timeout */
			s->w = p;
			s->w_cap = cap;
		}
		int r = evloop_add(s->loop, fd, ev, on_event, s);
		if (r == -EEXIST)
			r = evloop_mod(s->loop, fd, ev, on_event, s);
		if (r == 0)
			s->w[s->nw++] = (struct watched){ fd, ev };
	}
}

/* Refills slirp's wishes and arms the timerfd. */
static void refresh(struct sl *s)
{
	uint32_t timeout = UINT32_MAX;

	s->npfd = 0;
	lib.pollfds_fill(s->slirp, &timeout, add_poll, s);
	if (!s->loop)
		return;
	sync_watches(s);
	int64_t now = now_ns() / 1000000;
	int64_t deadline = timeout == UINT32_MAX ? INT64_MAX : now + timeout;
	for (struct stimer *t = s->timers; t; t = t->next)
		if (t->armed && t->expire_ms < deadline)
			deadline = t->expire_ms;
	set_timerfd(s, deadline);
}

/* Hands queued frames to the device while it takes them. */
static void deliver(struct sl *s)
{
	while (s->qcount && s->rx_on && s->be.rx_ready) {
		unsigned before = s->qcount;
		s->be.rx_ready(s->be.rx_ctx);
		if (s->qcount >= before)
			break;
	}
}

static void run_timers(struct sl *s)
{
	int64_t now = now_ns() / 1000000;

	/* A callback may free or re-arm any timer: rescan after each. */
	for (unsigned guard = 0; guard < 64; guard++) {
		struct stimer *t = s->timers;
		while (t && !(t->armed && t->expire_ms <= now))
			t = t->next;
		if (!t)
			return;
		t->armed = false;
		t->cb(t->opaque);
	}
}

/* One of slirp's sockets is ready. */
static void on_event(void *ctx, uint32_t events)
{
	struct sl *s = ctx;

	(void)events;
	int r = s->npfd ? poll(s->pfd, s->npfd, 0) : 0;
	lib.pollfds_poll(s->slirp, r < 0, get_revents, s);
	run_timers(s);
	refresh(s);
	deliver(s);
}

static void on_timer(void *ctx, uint32_t events)
{
	struct sl *s = ctx;
	uint64_t ticks;

	if (read(s->tfd, &ticks, sizeof(ticks)) < 0) {
		/* EAGAIN: already consumed */
	}
	on_event(ctx, events);
}

/* ---- backend ops -------------------------------------------------------- */

static int sl_send(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
	struct sl *s = to_sl(b);
	size_t len = 0;

	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > sizeof(s->tx) - len)
			return -EMSGSIZE;
		memcpy(s->tx + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	lib.input(s->slirp, s->tx, (int)len);
	refresh(s); /* a new socket (DNS, a connect) to watch */
	deliver(s);
	return 0;
}

static ssize_t sl_recv(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
	struct sl *s = to_sl(b);

	if (!s->qcount)
		return -EAGAIN;
	struct frame *f = s->q[s->qhead];
	s->qhead = (s->qhead + 1) % NET_SLIRP_QUEUE_MAX;
	s->qcount--;
	size_t off = 0;
	for (int i = 0; i < iovcnt && off < f->len; i++) {
		size_t chunk = f->len - off < iov[i].iov_len ? f->len - off : iov[i].iov_len;
		memcpy(iov[i].iov_base, f->data + off, chunk);
		off += chunk;
	}
	ssize_t len = (ssize_t)f->len;
	free(f);
	return len;
}

static void sl_rx_enable(struct net_backend *b, bool on)
{
	to_sl(b)->rx_on = on;
}

static void sl_free(struct net_backend *b)
{
	struct sl *s = to_sl(b);

	if (s->loop) {
		for (unsigned i = 0; i < s->nw; i++)
			evloop_del(s->loop, s->w[i].fd);
		s->nw = 0;
		if (s->tfd >= 0)
			evloop_del(s->loop, s->tfd);
	}
	if (s->slirp)
		lib.cleanup(s->slirp);
	if (s->tfd >= 0)
		close(s->tfd);
	while (s->timers) {
		struct stimer *t = s->timers;
		s->timers = t->next;
		free(t);
	}
	while (s->qcount) {
		free(s->q[s->qhead]);
		s->qhead = (s->qhead + 1) % NET_SLIRP_QUEUE_MAX;
		s->qcount--;
	}
	free(s->pfd);
	free(s->w);
	free(s);
}

static const struct net_backend_ops slirp_ops = {
	.send = sl_send,
	.recv = sl_recv,
	.rx_enable = sl_rx_enable,
	.free = sl_free,
};

static struct in_addr ip4(uint32_t host_order)
{
	return (struct in_addr){ .s_addr = htonl(host_order) };
}

struct net_backend *net_slirp_new(const struct net_fwd *fwd, unsigned nr_fwd, struct evloop *loop,
				  char *err, size_t errlen)
{
	if (load_slirp(err, errlen) < 0)
		return NULL;
	struct sl *s = calloc(1, sizeof(*s));

	if (!s) {
		snprintf(err, errlen, "user net: out of memory");
		return NULL;
	}
	s->tfd = -1;
	s->loop = loop;
	s->be.ops = &slirp_ops;
	s->be.name = "user";
	s->be.vnet_hdr = false;
	s->be.features = 0;

	SlirpConfig c;
	memset(&c, 0, sizeof(c));
	c.version = 1;
	c.in_enabled = true;
	c.vnetwork = ip4(NET_SLIRP_NET);
	c.vnetmask = ip4(NET_SLIRP_MASK);
	c.vhost = ip4(NET_SLIRP_HOST);
	c.vdhcp_start = ip4(NET_SLIRP_GUEST);
	c.vnameserver = ip4(NET_SLIRP_DNS);
	c.vhostname = "vigil";
	s->slirp = lib.new(&c, &slirp_cbs, s);
	if (!s->slirp) {
		snprintf(err, errlen, "user net: cannot start libslirp");
		sl_free(&s->be);
		return NULL;
	}
	for (unsigned i = 0; i < nr_fwd; i++) {
		const struct net_fwd *f = &fwd[i];
		errno = 0;
		if (lib.add_hostfwd(s->slirp, f->udp, ip4(f->host_addr), f->host_port,
				      ip4(NET_SLIRP_GUEST), f->guest_port) < 0) {
			char a[INET_ADDRSTRLEN];
			struct in_addr ia = ip4(f->host_addr);
			inet_ntop(AF_INET, &ia, a, sizeof(a));
			snprintf(err, errlen, "user net: hostfwd %s %s:%u: cannot listen (%s)",
				 f->udp ? "udp" : "tcp", a, f->host_port,
				 errno ? strerror(errno) : "address in use?");
			sl_free(&s->be);
			return NULL;
		}
	}
	if (!loop) {
		refresh(s);
		return &s->be;
	}
	/* The loop may be running already: slirp is touched only on its
	 * thread from here on. The timerfd fires at once, and the first
	 * round there puts slirp's sockets (the host forwards) on the loop. */
	s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->tfd >= 0)
		set_timerfd(s, 0);
	int r = s->tfd < 0 ? -errno : evloop_add(loop, s->tfd, EPOLLIN, on_timer, s);
	if (r < 0) {
		snprintf(err, errlen, "user net: timer: %s", strerror(-r));
		sl_free(&s->be);
		return NULL;
	}
	return &s->be;
}

uint64_t net_slirp_dropped(const struct net_backend *b)
{
	return ((const struct sl *)b)->dropped;
}
