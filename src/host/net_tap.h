/* net_tap — the TAP backend of virtio_net: a Linux TAP interface opened
 * through /dev/net/tun with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR and a 12-byte
 * vnet header, so the guest's virtio_net_hdr_v1 passes through unchanged
 * both ways and checksum/TSO offloads reach the host stack. The fd is
 * nonblocking and watched on the VM's event loop while the device has
 * receive buffers. Used only by devices/virtio_net.c. */
#ifndef VIGIL_HOST_NET_TAP_H
#define VIGIL_HOST_NET_TAP_H

#include <stddef.h>

#include "devices/net_backend.h"

struct evloop;

/* Attaches to (or, with CAP_NET_ADMIN, creates) the TAP interface ifname.
 * loop may be NULL (never polled: tests). NULL with a one-line reason in err:
 * "tap vtap0: Operation not permitted". */
struct net_backend *net_tap_open(const char *ifname, struct evloop *loop, char *err, size_t errlen);

/* Names the device the TAP serves ("net0") in its fault report. */
void net_tap_set_device(struct net_backend *b, const char *id);

#endif
