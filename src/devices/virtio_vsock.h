/* virtio_vsock — the virtio socket device (virtio 1.x, 5.10) with a
 * userspace backend that follows Firecracker's host convention: the guest's
 * stream sockets are carried to Unix domain sockets on the host.
 *  - host-initiated: a host client connects to the UDS at `uds_path` and
 *    writes "CONNECT <port>\n"; the device opens a connection to the guest's
 *    port and, once the guest accepts, answers "OK <host_port>\n", after which
 *    the stream is the guest connection. A refused or timed-out connection
 *    closes the host client.
 *  - guest-initiated: a guest connection to CID 2 (the host) port P is
 *    forwarded to the Unix socket "<uds_path>_P"; nobody listening means a
 *    reset for the guest.
 * Stream sockets only (no SEQPACKET feature), up to VSOCK_MAX_CONNS
 * connections, credit flow control both ways. Queues: 0 rx, 1 tx, 2 event
 * (never used: no transport reset events). Config: guest_cid (u64).
 * Threading: every backend fd (the listener, connections, a timer) is
 * watched by the VM's event loop and all work happens in its callbacks and
 * in queue_notify; one device mutex also covers ops->reset/activate, so the
 * transport may call those from a vCPU thread.
 * Counting: every guest TX packet is one REQ_WRITE of its payload length,
 * every RX packet delivered one REQ_READ of its payload length; malformed
 * packets count as errors. */
#ifndef VIGIL_DEVICES_VIRTIO_VSOCK_H
#define VIGIL_DEVICES_VIRTIO_VSOCK_H

#include <stddef.h>
#include <stdint.h>

#include "core/devreq.h"
#include "core/gmem.h"
#include "virtio/virtio_dev.h"

struct evloop;

#define VSOCK_HOST_CID 2
#define VSOCK_MAX_CONNS 256
#define VSOCK_BUF_ALLOC (256u * 1024) /* credit advertised per connection */
#define VSOCK_MAX_PKT (64u * 1024)    /* largest payload in either direction */

struct virtio_vsock_config {
	uint64_t guest_cid;   /* 3 .. 2^32 - 2 */
	char uds_path[108];   /* fits sun_path */
};

/* Parses "cid=N,uds=PATH" (either order; PATH without commas). 0, or -1 with
 * a one-line reason in err. */
int virtio_vsock_parse(const char *spec, struct virtio_vsock_config *cfg, char *err, size_t errlen);

/* Creates the device and starts listening on cfg->uds_path (a stale socket
 * file there is removed first; anything else there, or a missing directory,
 * is an error). Registers its fds with `loop`, which may already run. NULL
 * with a one-line reason in err. */
struct virtio_dev *virtio_vsock_new(const struct virtio_vsock_config *cfg, const struct gmem *mem,
				    struct dev_gate gate, struct evloop *loop, char *err,
				    size_t errlen);

/* Closes every socket and removes the UDS file. Does not touch the loop:
 * call it once the loop can no longer run callbacks (after evloop_free(),
 * or with a loop never started); closing the fds drops them from epoll. */
void virtio_vsock_free(struct virtio_dev *d);

#endif
