/* net_slirp — the user-mode backend of virtio_net: libslirp's TCP/IP stack
 * in the VMM process, with QEMU's default network (10.0.2.0/24, gateway and
 * host 10.0.2.2, DNS 10.0.2.3, DHCP hands out 10.0.2.15), outgoing
 * connections made as ordinary host sockets, and host forwards to the
 * guest. Plain Ethernet frames (no vnet header, no offloads). Slirp's
 * sockets and timers are watched on the VM's event loop; frames slirp
 * produces wait in a bounded queue until the device takes them (beyond it
 * they are dropped and counted: slirp's TCP retransmits). Used only by
 * devices/virtio_net.c. */
#ifndef VIGIL_HOST_NET_SLIRP_H
#define VIGIL_HOST_NET_SLIRP_H

#include <stddef.h>
#include <stdint.h>

#include "devices/net_backend.h"
#include "devices/virtio_net.h" /* struct net_fwd */

struct evloop;

#define NET_SLIRP_QUEUE_MAX 256u /* frames waiting for the guest */

/* The network the guest sees (host byte order). libslirp maps the host
 * alias, and every other unused address of the network, to the host's
 * 127.0.0.1; the DNS alias to the host's resolver. */
#define NET_SLIRP_NET   0x0a000200u /* 10.0.2.0 */
#define NET_SLIRP_MASK  0xffffff00u /* /24 */
#define NET_SLIRP_HOST  0x0a000202u /* 10.0.2.2 */
#define NET_SLIRP_DNS   0x0a000203u /* 10.0.2.3 */
#define NET_SLIRP_GUEST 0x0a00020fu /* 10.0.2.15, what DHCP hands out */

/* A slirp network with the given host forwards (to 10.0.2.15). loop may be
 * NULL: then no socket or timer is watched, and only what slirp answers at
 * once to a frame (ARP, DHCP, ...) comes back — enough for tests. NULL with a
 * one-line reason in err ("hostfwd tcp 127.0.0.1:2222: cannot listen"). */
struct net_backend *net_slirp_new(const struct net_fwd *fwd, unsigned nr_fwd, struct evloop *loop,
				  char *err, size_t errlen);

/* Frames dropped because the queue was full or too big. */
uint64_t net_slirp_dropped(const struct net_backend *b);

#endif
