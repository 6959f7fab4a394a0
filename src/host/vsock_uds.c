/* vsock_uds — see vsock_uds.h. A stream is a non-blocking AF_UNIX socket;
 * the backend keeps every open one on a list so free() can close what the
 * device still holds. Callbacks reach the device through the evloop watch
 * of each stream (and of the listener). */
#define _GNU_SOURCE
#include "host/vsock_uds.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/errmsg.h"
#include "host/clock.h"
#include "host/exec_evloop.h"
#include "host/fault.h"

struct vsock_stream {
	struct uds *u;
	int fd;
	bool registered;
	vsock_stream_fn fn;
	void *cookie;
	struct vsock_stream *prev, *next;
};

struct uds {
	struct vsock_backend be; /* first: the ops get &be */
	struct evloop *loop;
	char path[108];
	int listen_fd;
	bool listening;
	/* Out of descriptors, a pending client would keep the level-triggered
	 * listener readable and the loop spinning: it is accepted on the
	 * reserve descriptor and closed at once (it sees EOF). Without a
	 * reserve the listener is left alone for a while (retry). */
	int reserve_fd;
	struct exec ex;
	struct exec_timer *retry;
	struct vsock_stream *streams;
};

#define RETRY_MS 100

static struct uds *to_uds(struct vsock_backend *be)
{
	return (struct uds *)be;
}

static struct vsock_stream *stream_new(struct uds *u, int fd)
{
	struct vsock_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->u = u;
	s->fd = fd;
	s->next = u->streams;
	if (u->streams)
		u->streams->prev = s;
	u->streams = s;
	return s;
}

static void stream_unlink(struct uds *u, struct vsock_stream *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		u->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
}

static struct vsock_stream *uds_connect(struct vsock_backend *be, uint32_t port, int *status)
{
	struct uds *u = to_uds(be);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%" PRIu32, u->path, port);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
		*status = -ENAMETOOLONG;
		return NULL;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*status = -errno;
		return NULL;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		*status = 0;
	} else if (errno == EINPROGRESS) {
		*status = 1;
	} else {
		/* Nobody listens at PATH_P (or its backlog is full). */
		*status = -errno;
		close(fd);
		return NULL;
	}
	struct vsock_stream *s = stream_new(u, fd);
	if (!s) {
		close(fd);
		*status = -ENOMEM;
	}
	return s;
}

static int uds_connect_result(struct vsock_backend *be, struct vsock_stream *s)
{
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	(void)be;

	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		return -errno;
	return -soerr;
}

/* The host end of a stream closed while the guest still sends: the
 * device resets that connection (the guest sees RST), the rest go on. */
static void peer_gone(int err)
{
	host_fault("vsock", "a host peer went away mid-stream", err,
		   "its connection is reset, the device and other connections go on");
}

static ssize_t uds_send(struct vsock_backend *be, struct vsock_stream *s, const struct iovec *iov, int cnt)
{
	struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)cnt };
	ssize_t n;
	(void)be;

	do
		n = sendmsg(s->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
		peer_gone(errno);
	return n < 0 ? -errno : n;
}

static ssize_t uds_recv(struct vsock_backend *be, struct vsock_stream *s, void *buf, size_t len, bool peek)
{
	ssize_t n;
	(void)be;

	do
		n = recv(s->fd, buf, len, MSG_DONTWAIT | (peek ? MSG_PEEK : 0));
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == ECONNRESET)
		peer_gone(errno);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n;
}

static void uds_shutdown_wr(struct vsock_backend *be, struct vsock_stream *s)
{
	(void)be;
	shutdown(s->fd, SHUT_WR);
}

static void stream_event(void *ctx, uint32_t events)
{
	struct vsock_stream *s = ctx;
	uint32_t ev = 0;

	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		ev |= VSOCK_EV_IN;
	if (events & (EPOLLHUP | EPOLLERR))
		ev |= VSOCK_EV_HUP;
	if (events & EPOLLOUT)
		ev |= VSOCK_EV_OUT;
	s->fn(s->cookie, ev);
}

static int uds_watch(struct vsock_backend *be, struct vsock_stream *s, uint32_t events, vsock_stream_fn fn,
		     void *cookie)
{
	struct uds *u = to_uds(be);
	uint32_t want = ((events & VSOCK_EV_IN) ? EPOLLIN : 0) | ((events & VSOCK_EV_OUT) ? EPOLLOUT : 0);
	int r = 0;

	s->fn = fn;
	s->cookie = cookie;
	if (!want) {
		if (s->registered)
			evloop_del(u->loop, s->fd);
		s->registered = false;
	} else if (s->registered) {
		r = evloop_mod(u->loop, s->fd, want, stream_event, s);
	} else {
		r = evloop_add(u->loop, s->fd, want, stream_event, s);
		s->registered = r == 0;
	}
	return r;
}

static void uds_close(struct vsock_backend *be, struct vsock_stream *s)
{
	struct uds *u = to_uds(be);

	if (s->registered)
		evloop_del(u->loop, s->fd);
	close(s->fd);
	stream_unlink(u, s);
	free(s);
}

static bool out_of_fds(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

/* A descriptor held only to be given back when accept4 has none (a dup
 * of the listener: no path needed, in a jail too). */
static int reserve(struct uds *u)
{
	return fcntl(u->listen_fd, F_DUPFD_CLOEXEC, 0);
}

/* Takes one pending client on the reserve and closes it; false when there
 * is no reserve or no client could be taken. */
static bool refuse_one(struct uds *u)
{
	if (u->reserve_fd < 0)
		u->reserve_fd = reserve(u);
	if (u->reserve_fd < 0)
		return false;
	close(u->reserve_fd);
	int fd = accept4(u->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		close(fd);
	u->reserve_fd = reserve(u);
	return fd >= 0;
}

static void listen_event(void *ctx, uint32_t events);

static void listen_retry(void *ctx)
{
	struct uds *u = ctx;
	if (!u->listening)
		u->listening = evloop_add(u->loop, u->listen_fd, EPOLLIN, listen_event, u) == 0;
	if (!u->listening)
		u->ex.ops->timer_arm(u->ex.ctx, u->retry, RETRY_MS);
}

static void listen_event(void *ctx, uint32_t events)
{
	struct uds *u = ctx;
	(void)events;

	for (;;) {
		int fd = accept4(u->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (out_of_fds(errno) && refuse_one(u))
				continue;
			if (out_of_fds(errno) && u->retry) {
				evloop_del(u->loop, u->listen_fd);
				u->listening = false;
				u->ex.ops->timer_arm(u->ex.ctx, u->retry, RETRY_MS);
			}
			break;
		}
		struct vsock_stream *s = stream_new(u, fd);
		if (!s) {
			close(fd);
			continue;
		}
		u->be.accept(u->be.ctx, s);
	}
}

static int uds_start(struct vsock_backend *be)
{
	struct uds *u = to_uds(be);
	u->ex = evloop_exec(u->loop);
	u->retry = u->ex.ops->timer_new(u->ex.ctx, listen_retry, u);
	int r = evloop_add(u->loop, u->listen_fd, EPOLLIN, listen_event, u);
	u->listening = r == 0;
	return r;
}

/* Closes everything without the loop, which may be stopped. */
static void uds_free(struct vsock_backend *be)
{
	struct uds *u = to_uds(be);

	if (!be)
		return;
	while (u->streams) {
		struct vsock_stream *s = u->streams;
		if (s->registered)
			evloop_del(u->loop, s->fd);
		close(s->fd);
		stream_unlink(u, s);
		free(s);
	}
	if (u->retry)
		u->ex.ops->timer_free(u->ex.ctx, u->retry);
	if (u->listening)
		evloop_del(u->loop, u->listen_fd);
	if (u->reserve_fd >= 0)
		close(u->reserve_fd);
	if (u->listen_fd >= 0) {
		close(u->listen_fd);
		unlink(u->path);
	}
	free(u);
}

static const struct vsock_backend_ops uds_ops = {
	.connect = uds_connect,
	.connect_result = uds_connect_result,
	.send = uds_send,
	.recv = uds_recv,
	.shutdown_wr = uds_shutdown_wr,
	.watch = uds_watch,
	.close = uds_close,
	.start = uds_start,
	.free = uds_free,
};

static int uds_listen(struct uds *u, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;

	if (strlen(u->path) >= sizeof(sa.sun_path) || !u->path[0]) {
		errmsg(err, errlen, "vsock: uds path empty or too long");
		return -1;
	}
	strcpy(sa.sun_path, u->path);
	if (lstat(u->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			errmsg(err, errlen, "vsock: %s exists and is not a socket", u->path);
			return -1;
		}
		unlink(u->path); /* stale, from an earlier run */
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		errmsg(err, errlen, "vsock: socket: %s", strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == ENOENT)
			errmsg(err, errlen, "vsock: directory of %s does not exist", u->path);
		else
			errmsg(err, errlen, "vsock: bind %s: %s", u->path, strerror(errno));
		close(fd);
		return -1;
	}
	if (listen(fd, 64) < 0) {
		errmsg(err, errlen, "vsock: listen %s: %s", u->path, strerror(errno));
		close(fd);
		unlink(u->path);
		return -1;
	}
	u->listen_fd = fd;
	return 0;
}

struct vsock_backend *vsock_uds_new(const char *path, struct evloop *loop, char *err, size_t errlen)
{
	struct uds *u = calloc(1, sizeof(*u));

	if (!u) {
		errmsg(err, errlen, "vsock: out of memory");
		return NULL;
	}
	u->be.ops = &uds_ops;
	u->loop = loop;
	u->listen_fd = -1;
	snprintf(u->path, sizeof(u->path), "%s", path);
	if (uds_listen(u, err, errlen) < 0) {
		free(u);
		return NULL;
	}
	u->reserve_fd = reserve(u);
	return &u->be;
}

struct virtio_dev *host_vsock_new(const struct virtio_vsock_config *cfg, const struct gmem *mem,
				  struct dev_gate gate, struct evloop *loop, char *err, size_t errlen)
{
	if (!cfg || !loop || cfg->guest_cid < 3 || cfg->guest_cid >= 0xffffffffULL ||
	    !memchr(cfg->uds_path, 0, sizeof(cfg->uds_path))) {
		errmsg(err, errlen, "vsock: bad configuration");
		return NULL;
	}
	struct vsock_backend *be = vsock_uds_new(cfg->uds_path, loop, err, errlen);
	if (!be)
		return NULL;
	struct exec ex = evloop_exec(loop);
	struct vclock clk = host_clock();
	return virtio_vsock_new_backend(be, cfg->guest_cid, &ex, &clk, mem, gate, err, errlen);
}
