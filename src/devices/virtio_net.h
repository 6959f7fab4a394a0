/* virtio_net — a virtio 1.x network device (device ID 1): one receive queue
 * (0) and one transmit queue (1), MAC and link status in config space,
 * mergeable receive buffers (a frame over several chains), no control
 * queue.
 * Used by the board/CLI: virtio_net_parse() reads a --net option value,
 * host_net_new() (src/host/net_open.h) opens the host side (a TAP
 * interface, or a user-mode libslirp network) and hands it to
 * virtio_net_new_backend(), which returns a `struct virtio_dev` for a
 * transport; virtio_net_free() after the transport let go.
 * The device talks to the host side through `struct net_backend`
 * (devices/net_backend.h);
 * src/host/net_tap.c and src/host/net_slirp.c implement it, and tests plug
 * in a fake. Everything runs on the VM's event thread: queue kicks, the
 * backend's "frames are waiting" callback, activate and reset. Every frame
 * goes through dev_request(): REQ_WRITE for a frame the guest sends,
 * REQ_READ for one delivered to it. */
#ifndef VIGIL_DEVICES_VIRTIO_NET_H
#define VIGIL_DEVICES_VIRTIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/devreq.h"
#include "core/entropy.h"
#include "core/gmem.h"
#include "devices/net_backend.h"

struct virtio_dev;

/* Feature bits (virtio 1.x 5.1.3). */
#define VIRTIO_NET_F_CSUM       0  /* driver may send partially checksummed frames */
#define VIRTIO_NET_F_GUEST_CSUM 1  /* driver accepts partially checksummed frames */
#define VIRTIO_NET_F_MAC        5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_HOST_TSO4  11
#define VIRTIO_NET_F_HOST_TSO6  12
#define VIRTIO_NET_F_HOST_ECN   13 /* never offered */
#define VIRTIO_NET_F_HOST_UFO   14 /* never offered */
#define VIRTIO_NET_F_GUEST_UFO  10 /* never offered */
#define VIRTIO_NET_F_MRG_RXBUF  15 /* always offered */
#define VIRTIO_NET_F_STATUS     16

#define VIRTIO_NET_S_LINK_UP 1

/* struct virtio_net_hdr_v1: flags, gso_type, hdr_len, gso_size,
 * csum_start, csum_offset, num_buffers — 12 bytes in front of every frame
 * on both queues (VERSION_1 always has num_buffers). */
#define VIRTIO_NET_HDR_LEN          12u
#define VIRTIO_NET_HDR_OFF_FLAGS    0u
#define VIRTIO_NET_HDR_OFF_NUM_BUFS 10u
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_OFF_GSO      1u
#define VIRTIO_NET_HDR_GSO_NONE     0
#define VIRTIO_NET_HDR_GSO_TCPV4    1
#define VIRTIO_NET_HDR_GSO_UDP      3
#define VIRTIO_NET_HDR_GSO_TCPV6    4
#define VIRTIO_NET_HDR_GSO_ECN      0x80

#define VIRTIO_NET_RXQ 0
#define VIRTIO_NET_TXQ 1
/* The largest ring offered. 1024 was tried (without indirect descriptors
 * a TSO frame takes ~19 transmit descriptors, so 256 hold only ~13); one
 * lab run showed no gain and user-mode networking at 0.34x, so not kept. */
#define VIRTIO_NET_QUEUE_MAX  256u
/* Frames one rx_ready call moves at most: one busy TAP must not keep the
 * event thread from everything else (its fd stays readable, so the loop
 * comes back to it). */
#define VIRTIO_NET_RX_BUDGET  256u
#define VIRTIO_NET_CONFIG_LEN 8u /* mac[6], status (le16) */
#define VIRTIO_NET_ETH_HLEN   14u
/* Largest frame (header excluded) either way: a 64 KiB TSO frame plus an
 * Ethernet header and a VLAN tag. */
#define VIRTIO_NET_FRAME_MAX  (65536u + 18u)
#define VIRTIO_NET_FWD_MAX    8u

/* ---- configuration ------------------------------------------------------ */

/* A user-mode host forward: connections to host_addr:host_port go to the
 * guest's 10.0.2.15:guest_port. host_addr in host byte order. */
struct net_fwd {
	bool udp;
	uint32_t host_addr;
	uint16_t host_port, guest_port;
};

struct virtio_net_config {
	enum { NET_TAP, NET_USER } kind;
	char ifname[16]; /* tap=IFNAME */
	uint8_t mac[6];
	bool mac_set;
	unsigned nr_fwd; /* user: hostfwd rules */
	struct net_fwd fwd[VIRTIO_NET_FWD_MAX];
};

/* Parses the --net value: "tap=IFNAME[,mac=MAC]" or
 * "user[,mac=MAC][,hostfwd=PROTO:[ADDR]:PORT-:GUESTPORT]..." (PROTO tcp or
 * udp, ADDR a dotted IPv4 address, empty for 127.0.0.1; at most 8 rules).
 * MAC is six hex pairs joined by ':', unicast and not all zero.
 * 0, or -1 with a one-line reason in err. */
int virtio_net_parse(const char *spec, struct virtio_net_config *cfg, char *err, size_t errlen);
/* A MAC as xx:xx:xx:xx:xx:xx (hex digits, either case), unicast and not
 * all zero: 0, or -1. The one parser of --net mac=, guest_mac and a
 * clone's guest_macs. */
int virtio_net_parse_mac(const char *s, uint8_t mac[6]);

/* A device over a backend the caller made (host_net_new, tests: a fake);
 * the device owns it from here on, and frees it with ops->free (also on
 * failure). mac NULL: a random 52:54:00:xx:xx:xx from `ent` (NULL, or when
 * it fails: bytes derived from the device's address, still unicast). */
struct virtio_dev *virtio_net_new_backend(struct net_backend *be, const uint8_t *mac,
					  const struct entropy *ent, const struct gmem *mem,
					  struct dev_gate gate, char *err, size_t errlen);

/* A clone's MAC (network_overrides at snapshot load): call it after the
 * device is built and before its snapshot is restored; the config space
 * then shows `mac` instead of the snapshot's. A Linux guest reads the MAC
 * at probe only: its interface keeps the old one until it is set again
 * (ip link set ... address) or the driver is reloaded. */
void virtio_net_set_mac(struct virtio_dev *d, const uint8_t mac[6]);

/* Frees the backend (its fds leave the event loop) and the device. Call it
 * on the event thread, or after evloop_stop() (no callback may run during
 * it), and before evloop_free(). NULL is fine. */
void virtio_net_free(struct virtio_dev *d);

/* Counters (for the monitor and tests). */
struct virtio_net_stats {
	uint64_t tx_frames, rx_frames;
	uint64_t tx_errors;  /* malformed TX chains, host send errors */
	uint64_t rx_errors;  /* malformed RX chains, frames too big for a buffer */
	uint64_t bad_chains; /* -EBADMSG from the walker, both queues */
	/* batching: frames / rx_batches is frames per wakeup */
	uint64_t rx_batches;   /* receive runs that delivered at least one frame */
	uint64_t rx_batch_max; /* most frames one run delivered */
	uint64_t rx_bufs;      /* receive chains used (> rx_frames with MRG_RXBUF) */
	uint64_t rx_waits;     /* runs that stopped for want of buffers, some held */
	uint64_t tx_batches;   /* transmit runs that sent at least one frame */
	uint64_t tx_runs;      /* transmit runs (a kick, or the budget's re-ring) */
	uint64_t tx_irqs;      /* transmit queue interrupts raised */
	uint64_t tx_bytes;     /* frame bytes sent, headers excluded */
	uint64_t rx_irqs;      /* receive queue interrupts raised */
};
void virtio_net_get_stats(const struct virtio_dev *d, struct virtio_net_stats *st);
/* The backend the device talks to (host_net_new's: the policy's filter
 * over TAP or slirp), for its counters. */
const struct net_backend *virtio_net_backend(const struct virtio_dev *d);

#endif
