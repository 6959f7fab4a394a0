/* vsock_backend — the host side of virtio-vsock: host stream endpoints for
 * the guest's connections, without the device naming sockets or fds. The
 * device (src/devices/virtio_vsock.c) keeps the connection state machine and
 * credit accounting; the host implements this (src/host/vsock_uds.c:
 * Firecracker's Unix-socket convention, a listener at PATH for host-initiated
 * connections and PATH_<port> for guest-initiated ones).
 * Threading: every call and every callback on the device context (the
 * event thread); no call blocks. */
#ifndef VIGIL_DEVICES_VSOCK_BACKEND_H
#define VIGIL_DEVICES_VSOCK_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Readiness, as watch() asks for it and the callback reports it. A hang-up
 * or error reports VSOCK_EV_IN (the next recv tells which) and, reported
 * only, VSOCK_EV_HUP: the peer is gone both ways (or the socket failed),
 * whatever was asked for. */
#define VSOCK_EV_IN  1u
#define VSOCK_EV_OUT 2u
#define VSOCK_EV_HUP 4u

struct vsock_stream; /* the backend's */
struct vsock_backend;

typedef void (*vsock_stream_fn)(void *cookie, uint32_t events);

struct vsock_backend_ops {
	/* A stream to the host service for guest-initiated connections to
	 * `port`. *status: 0 connected, 1 in progress (watch for
	 * VSOCK_EV_OUT, then connect_result), or -errno and NULL returned. */
	struct vsock_stream *(*connect)(struct vsock_backend *be, uint32_t port, int *status);
	/* How an in-progress connect ended: 0 or -errno. */
	int (*connect_result)(struct vsock_backend *be, struct vsock_stream *s);
	/* Bytes taken (0: would block), or -errno (the stream is broken). */
	ssize_t (*send)(struct vsock_backend *be, struct vsock_stream *s, const struct iovec *iov, int cnt);
	/* Bytes read (peek: left in the stream), 0 at end of stream, -EAGAIN
	 * when nothing is waiting, another -errno when broken. */
	ssize_t (*recv)(struct vsock_backend *be, struct vsock_stream *s, void *buf, size_t len, bool peek);
	/* No more data towards the host (the peer reads EOF). */
	void (*shutdown_wr)(struct vsock_backend *be, struct vsock_stream *s);
	/* Calls fn(cookie, ready) while s is ready for `events`; 0 stops.
	 * 0 or -errno. */
	int (*watch)(struct vsock_backend *be, struct vsock_stream *s, uint32_t events, vsock_stream_fn fn,
		     void *cookie);
	/* Stops watching and closes. */
	void (*close)(struct vsock_backend *be, struct vsock_stream *s);
	/* Starts taking host clients (once `accept` is set). 0 or -errno. */
	int (*start)(struct vsock_backend *be);
	/* Closes every stream still open and the listener. Not from a
	 * callback. */
	void (*free)(struct vsock_backend *be);
};

struct vsock_backend {
	const struct vsock_backend_ops *ops;
	/* Set by the device: a host client connected. The device owns s from
	 * here (closes it, or watches it for its CONNECT line). */
	void (*accept)(void *ctx, struct vsock_stream *s);
	void *ctx;
};

#endif
