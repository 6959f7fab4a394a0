/* net_backend — the host side of a virtio-net device: where its frames go
 * and come from. The device (src/devices/virtio_net.c) calls it; the host
 * implements it (src/host/net_tap.c, src/host/net_slirp.c) and tests plug
 * in a fake. Its own header so that host/ includes the device side's
 * interface, never the other way round.
 * Threading: every call, and rx_ready, on the VM's event thread. */
#ifndef VIGIL_DEVICES_NET_BACKEND_H
#define VIGIL_DEVICES_NET_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct net_backend;

struct net_backend_ops {
	/* One frame to the host: iov holds it whole, the 12-byte header in
	 * front when b->vnet_hdr. 0 or -errno; the frame is gone either way.
	 * May call b->rx_ready before it returns (slirp answers at once). */
	int (*send)(struct net_backend *b, const struct iovec *iov, int iovcnt);
	/* Takes the next waiting frame into iov (the header in front when
	 * b->vnet_hdr). Returns the frame's full length — more than the iov
	 * holds when it did not fit, and then it is lost — or -EAGAIN when none
	 * is waiting, or another -errno (a host error; that frame is lost). */
	ssize_t (*recv)(struct net_backend *b, const struct iovec *iov, int iovcnt);
	/* Whether the device wants rx_ready calls. Off while the guest has
	 * posted no receive buffer: frames then wait on the host side (the TAP
	 * fd is not polled; slirp holds a bounded queue). */
	void (*rx_enable)(struct net_backend *b, bool on);
	/* DRIVER_OK with the negotiated features (TAP: TUNSETOFFLOAD).
	 * 0 or -errno. May be NULL. */
	int (*activate)(struct net_backend *b, uint64_t features);
	void (*free)(struct net_backend *b);
};

struct net_backend {
	const struct net_backend_ops *ops;
	const char *name;   /* "tap vtap0", "user" */
	bool vnet_hdr;      /* frames carry the virtio_net_hdr_v1 both ways */
	uint64_t features;  /* VIRTIO_NET_F_ offload bits it can carry */
	/* Set by the device: "frames may be waiting, call recv". Called on the
	 * event thread, only while rx is enabled. */
	void (*rx_ready)(void *ctx);
	void *rx_ctx;
};

#endif
