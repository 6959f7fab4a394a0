/* virtio_dev — the device half of virtio 1.x, apart from any transport.
 * A device model (virtio_blk, virtio_net, ...) fills a `struct virtio_dev`
 * with its ID, features, queue count, config size and an ops table; a
 * transport (virtio_pci) drives the status/feature/queue handshake, and
 * calls queue_notify() on the VM's event thread when the driver kicks a
 * queue. Devices get guest memory and a request gate, never the VM. */
#ifndef VIGIL_VIRTIO_DEV_H
#define VIGIL_VIRTIO_DEV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/devreq.h"
#include "core/gmem.h"
#include "virtio/virtq.h"

#define VIRTIO_MAX_QUEUES 8

/* Feature bits the core knows (device-specific bits are the device's). */
#define VIRTIO_F_INDIRECT_DESC 28 /* never offered: indirect tables are not walked */
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32
#define VIRTIO_BIT(b) (1ULL << (b))

/* Device status bits. */
#define VIRTIO_S_ACKNOWLEDGE        1
#define VIRTIO_S_DRIVER             2
#define VIRTIO_S_DRIVER_OK          4
#define VIRTIO_S_FEATURES_OK        8
#define VIRTIO_S_DEVICE_NEEDS_RESET 64
#define VIRTIO_S_FAILED             128

/* Virtio device IDs. */
#define VIRTIO_ID_NET     1
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG     4
#define VIRTIO_ID_VSOCK   19

struct virtio_dev;
struct snap_writer;
struct snap_reader;

struct virtio_dev_ops {
	/* The driver kicked queue q. Runs on the VM's event thread; pop with
	 * virtq_pop(), complete with virtq_push() + virtio_dev_used(). */
	void (*queue_notify)(struct virtio_dev *d, unsigned q);
	/* DRIVER_OK: features are final, queues enabled. Start backends.
	 * Nonzero: the device cannot work (it is marked DEVICE_NEEDS_RESET). */
	int (*activate)(struct virtio_dev *d);
	/* The driver reset the device: on return no guest buffer is touched. */
	void (*reset)(struct virtio_dev *d);
	/* Lifecycle for the control plane (pause, snapshot). Called with every
	 * vCPU parked and either on the event thread or with it paused
	 * (evloop_pause), so no queue_notify or backend callback runs
	 * concurrently. quiesce: take no new request; the requests in flight
	 * complete (blk: the backend drains) before it returns. resume: take
	 * requests again, looking once at queues kicked meanwhile. May be NULL
	 * (a device that serves every request inline, on the event thread,
	 * is quiet once that thread is paused). */
	void (*quiesce)(struct virtio_dev *d);
	void (*resume)(struct virtio_dev *d);
	/* Device config space; the core has checked off+len <= config_len. */
	void (*config_read)(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len);
	void (*config_write)(struct virtio_dev *d, uint32_t off, const void *buf, uint32_t len);
	/* Snapshots: the device's own state, written and read inside the
	 * transport's section, after the transport's part. save runs with the
	 * device quiesced (as above). restore runs on a device at its power-on
	 * state after the transport restored features, status and queues and
	 * before activate (when the status has DRIVER_OK); it checks what it
	 * reads (snap_fail) and returns 0 or -1. NULL: nothing of its own. */
	int (*save)(struct virtio_dev *d, struct snap_writer *w);
	int (*restore)(struct virtio_dev *d, struct snap_reader *r);
};

struct virtio_dev {
	/* Filled by the device model before the transport takes it. */
	const char *name;
	uint16_t device_id;
	uint64_t host_features;  /* device bits; the core adds VERSION_1, EVENT_IDX */
	unsigned num_queues;     /* <= VIRTIO_MAX_QUEUES */
	uint16_t queue_max;      /* <= VIRTQ_MAX_SIZE, power of two */
	uint32_t config_len;
	const struct virtio_dev_ops *ops;
	void *priv;
	struct dev_gate gate;    /* request counting and policy (core/devreq.h) */
	const struct gmem *mem;

	/* Owned by the core and the transport. */
	uint64_t features;       /* negotiated, valid from FEATURES_OK */
	struct virtq vq[VIRTIO_MAX_QUEUES];
	_Atomic uint8_t status;
	/* Transport hook: signal the driver (queue q, or -1 for a config change). */
	void (*raise)(struct virtio_dev *d, int q);
	void *transport;
};

static inline bool virtio_has(const struct virtio_dev *d, unsigned bit)
{
	return (d->features >> bit) & 1;
}

/* After virtq_push()es on queue q: interrupts the driver if it asked to be. */
void virtio_dev_used(struct virtio_dev *d, unsigned q);

/* Serves every chain the driver has made available on queue q, in order:
 * a well-formed chain goes to serve(), which returns the bytes it wrote into
 * the chain; a chain the walker rejected is completed with 0 bytes and
 * counted as an error; a broken queue puts the device in
 * DEVICE_NEEDS_RESET. Interrupts the driver once at the end if it asked. For
 * devices that complete each request before taking the next. */
void virtio_dev_serve(struct virtio_dev *d, unsigned q, struct virtq_chain *c,
		      uint32_t (*serve)(struct virtio_dev *d, struct virtq_chain *c));

/* The device's config space changed (e.g. a disk resized). */
void virtio_dev_config_changed(struct virtio_dev *d);

/* The device hit a state it cannot recover from without a reset (the guest
 * broke a queue, a backend died): DEVICE_NEEDS_RESET + config interrupt.
 * The device stops touching its queues until the driver resets it. */
void virtio_dev_needs_reset(struct virtio_dev *d);

/* True while the driver has the device running and it is not broken. */
bool virtio_dev_live(const struct virtio_dev *d);

#endif
