/* net_tap — see net_tap.h. */
#define _GNU_SOURCE
#include "host/net_tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "devices/virtio_net.h" /* feature bits, header length */
#include "host/evloop.h"
#include "host/fault.h"

struct tap {
	struct net_backend be; /* first */
	int fd;
	struct evloop *loop;
	bool registered; /* in the event loop (for EPOLLERR at least), from the first rx_enable */
	bool polling;    /* ... and for EPOLLIN */
	bool dead; /* the interface went away: never polled or written again */
	char name[32];
	char who[64]; /* "net0 (tap vtap0)": the fault report's subject */
};

static struct tap *to_tap(struct net_backend *b)
{
	return (struct tap *)b;
}

#define GONE "TAP device gone"
#define GONE_THEN "the device stops sending and receiving, the VM goes on"

/* The interface was deleted under us (the descriptor reports EPOLLERR and
 * EBADFD): stop watching it, or epoll spins, and stop writing to it. Said
 * once, counted once (host/fault.h); the frames the guest sends after it
 * are the device's tx_errors. */
static void tap_gone(struct tap *t, int err)
{
	if (t->dead)
		return;
	if (t->registered)
		evloop_del(t->loop, t->fd);
	t->registered = t->polling = false;
	t->dead = true;
	host_fault(t->who, GONE, err, GONE_THEN);
}

static void on_tap(void *ctx, uint32_t events)
{
	struct tap *t = ctx;

	if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) {
		tap_gone(t, 0);
		return;
	}
	if (t->be.rx_ready)
		t->be.rx_ready(t->be.rx_ctx);
}

/* What a TAP descriptor whose interface was deleted fails with. Not EIO:
 * that is an interface set down, which may come back up. */
static bool gone_errno(int e)
{
	return e == EBADFD || e == ENODEV;
}

static int tap_send(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
	struct tap *t = to_tap(b);
	if (t->dead)
		return -ENODEV;
	ssize_t r = writev(t->fd, iov, iovcnt);
	if (r < 0 && gone_errno(errno)) {
		int e = errno;
		tap_gone(t, e);
		return -e;
	}
	return r < 0 ? -errno : 0;
}

static ssize_t tap_recv(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
	struct tap *t = to_tap(b);
	if (t->dead)
		return -EAGAIN;
	ssize_t r = readv(t->fd, iov, iovcnt);

	if (r < 0 && gone_errno(errno)) {
		tap_gone(t, errno);
		return -EAGAIN;
	}
	if (r < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (r == 0)
		return -EAGAIN;
	return r;
}

/* Once the device starts, the descriptor stays in the event loop, so that
 * an interface deleted while the guest has no receive buffer posted is seen
 * at once, not at the guest's next send. With rx off it is watched for
 * EPOLLPRI, which a TAP never reports: a deletion wakes its readers with
 * EPOLLIN | EPOLLPRI and poll then says EPOLLERR, while with a mask of 0
 * epoll would drop that wake-up; frames waiting do not make it spin. */
static void tap_rx_enable(struct net_backend *b, bool on)
{
	struct tap *t = to_tap(b);

	if (!t->loop || t->dead || (t->registered && t->polling == on))
		return;
	uint32_t ev = on ? EPOLLIN : EPOLLPRI;
	int r = t->registered ? evloop_mod(t->loop, t->fd, ev, on_tap, t) : evloop_add(t->loop, t->fd, ev, on_tap, t);
	if (r == 0) {
		t->registered = true;
		t->polling = on;
	}
}

/* The guest's receive offloads become the interface's: the kernel then
 * hands us only what the guest can take (partial checksums, TSO frames). */
static int tap_activate(struct net_backend *b, uint64_t features)
{
	struct tap *t = to_tap(b);
	unsigned off = 0;

	if (features & (1ULL << VIRTIO_NET_F_GUEST_CSUM)) {
		off |= TUN_F_CSUM;
		if (features & (1ULL << VIRTIO_NET_F_GUEST_TSO4))
			off |= TUN_F_TSO4;
		if (features & (1ULL << VIRTIO_NET_F_GUEST_TSO6))
			off |= TUN_F_TSO6;
	}
	if (ioctl(t->fd, TUNSETOFFLOAD, (unsigned long)off) < 0) {
		int e = errno;
		fprintf(stderr, "vigil: %s: TUNSETOFFLOAD: %s\n", t->name, strerror(e));
		return -e;
	}
	return 0;
}

static void tap_free(struct net_backend *b)
{
	struct tap *t = to_tap(b);

	if (t->registered)
		evloop_del(t->loop, t->fd);
	close(t->fd);
	free(t);
}

static const struct net_backend_ops tap_ops = {
	.send = tap_send,
	.recv = tap_recv,
	.rx_enable = tap_rx_enable,
	.activate = tap_activate,
	.free = tap_free,
};

static struct net_backend *tap_fail(int fd, char *err, size_t errlen, const char *ifname,
				    const char *what, int e)
{
	if (err && errlen)
		snprintf(err, errlen, "tap %s: %s%s%s", ifname, what, *what ? ": " : "", strerror(e));
	if (fd >= 0)
		close(fd);
	return NULL;
}

struct net_backend *net_tap_open(const char *ifname, struct evloop *loop, char *err, size_t errlen)
{
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return tap_fail(-1, err, errlen, ifname, "/dev/net/tun", errno);

	unsigned int features = 0;
	if (ioctl(fd, TUNGETFEATURES, &features) == 0 && !(features & IFF_VNET_HDR))
		return tap_fail(fd, err, errlen, ifname, "no IFF_VNET_HDR", EOPNOTSUPP);

	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (strlen(ifname) >= sizeof(ifr.ifr_name))
		return tap_fail(fd, err, errlen, ifname, "", ENAMETOOLONG);
	strcpy(ifr.ifr_name, ifname);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		return tap_fail(fd, err, errlen, ifname, "", errno);

	int hdr = VIRTIO_NET_HDR_LEN;
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0)
		return tap_fail(fd, err, errlen, ifname, "TUNSETVNETHDRSZ", errno);
	/* No receive offloads until the guest says which it takes. */
	if (ioctl(fd, TUNSETOFFLOAD, 0UL) < 0)
		return tap_fail(fd, err, errlen, ifname, "TUNSETOFFLOAD", errno);

	struct tap *t = calloc(1, sizeof(*t));
	if (!t)
		return tap_fail(fd, err, errlen, ifname, "", ENOMEM);
	t->fd = fd;
	t->loop = loop;
	snprintf(t->name, sizeof(t->name), "tap %s", ifr.ifr_name);
	snprintf(t->who, sizeof(t->who), "%s", t->name);
	t->be.ops = &tap_ops;
	t->be.name = t->name;
	t->be.vnet_hdr = true;
	t->be.features = (1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_GUEST_CSUM) |
			 (1ULL << VIRTIO_NET_F_GUEST_TSO4) | (1ULL << VIRTIO_NET_F_GUEST_TSO6) |
			 (1ULL << VIRTIO_NET_F_HOST_TSO4) | (1ULL << VIRTIO_NET_F_HOST_TSO6);
	return &t->be;
}

void net_tap_set_device(struct net_backend *b, const char *id)
{
	struct tap *t = to_tap(b);
	snprintf(t->who, sizeof(t->who), "%s (%s)", id, t->name);
}
