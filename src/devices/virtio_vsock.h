/* virtio_vsock — the virtio socket device (virtio 1.x, 5.10). Portable:
 * the connection state machine and credit flow control live here; host
 * streams come from a vsock_backend (devices/vsock_backend.h). The Linux
 * backend (src/host/vsock_uds.c, built by host_vsock_new()) follows
 * Firecracker's host convention: the guest's stream sockets are carried to
 * Unix domain sockets on the host.
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
 * Threading: backend callbacks and the deadline timer run on the device
 * context (the event thread), as does queue_notify; one device mutex also
 * covers ops->reset/activate, so the transport may call those from a vCPU
 * thread.
 * Counting: every guest TX packet is one REQ_WRITE of its payload length,
 * every RX packet delivered one REQ_READ of its payload length; malformed
 * packets count as errors. */
#ifndef VIGIL_DEVICES_VIRTIO_VSOCK_H
#define VIGIL_DEVICES_VIRTIO_VSOCK_H

#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/devreq.h"
#include "core/exec.h"
#include "core/gmem.h"
#include "devices/vsock_backend.h"
#include "virtio/virtio_dev.h"

#define VSOCK_HOST_CID 2
#define VSOCK_MAX_CONNS 256
#define VSOCK_BUF_ALLOC (256u * 1024) /* credit advertised per connection */
#define VSOCK_MAX_PKT (64u * 1024)    /* largest payload in either direction */

struct virtio_vsock_config {
	uint64_t guest_cid;   /* 3 .. 2^32 - 2 */
	char uds_path[108];   /* fits sun_path */
};

/* Parses "cid=N,uds=PATH" (either order; PATH without commas). 0, or -1 with
 * a one-line reason in err. (virtio_vsock_parse.c) */
int virtio_vsock_parse(const char *spec, struct virtio_vsock_config *cfg, char *err, size_t errlen);

/* The device over `be`, which it owns from here on (freed with ops->free,
 * also on failure); it sets be->accept and starts the backend. Deadlines
 * are timed with a timer on `ex` and `clk`'s monotonic time (both copied).
 * The executor may already run. NULL with a one-line reason in err. */
struct virtio_dev *virtio_vsock_new_backend(struct vsock_backend *be, uint64_t guest_cid,
					    const struct exec *ex, const struct vclock *clk,
					    const struct gmem *mem, struct dev_gate gate, char *err,
					    size_t errlen);

/* A clone's CID (vsock_override at snapshot load): call it after the device
 * is built and before its snapshot is restored; the restore then keeps it
 * instead of the snapshot's. The restore sends the guest
 * VIRTIO_VSOCK_EVENT_TRANSPORT_RESET on its event queue, and Linux's
 * driver re-reads guest_cid when it handles that event
 * (virtio_vsock_update_guest_cid), so the guest uses the new CID from then
 * on. -1 for a CID outside 3..2^32-2. */
int virtio_vsock_set_cid(struct virtio_dev *d, uint64_t cid);

/* Frees the backend (closes every host stream; the UDS backend removes its
 * socket file), the timer and the device. Call it once the executor can no
 * longer run callbacks but still exists: after evloop_stop(), before
 * evloop_free() (or with a loop never started). */
void virtio_vsock_free(struct virtio_dev *d);

#endif
