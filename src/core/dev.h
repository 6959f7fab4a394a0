/* dev — every device of a VM, legacy and virtio, as a registered object: a
 * stable id (the API's drive_id / iface_id, or a generated one such as
 * "com1"), a kind, request counters, and lifecycle operations the VM calls
 * on all of them at once (pause, resume, reset; save and restore are the
 * slots snapshots will fill). The registry lives in `struct vm`; devices are
 * registered while the VM is built and never removed before it is freed, so
 * readers need no lock. */
#ifndef VIGIL_CORE_DEV_H
#define VIGIL_CORE_DEV_H

#include <stdbool.h>

#include "core/devreq.h"

#define VDEV_ID_MAX 64

struct vdev;
struct snap_writer; /* snapshots (later) */
struct snap_reader;

struct vdev_ops {
	/* Stop taking new work; work in flight completes before it returns
	 * (a disk write lands, a packet is delivered). Called with every vCPU
	 * parked. NULL: nothing to do. */
	void (*quiesce)(struct vdev *d);
	/* Take work again after quiesce. */
	void (*resume)(struct vdev *d);
	/* Back to the power-on state. */
	void (*reset)(struct vdev *d);
	/* Snapshots: write / read the device's state. NULL until implemented. */
	int (*save)(struct vdev *d, struct snap_writer *w);
	int (*restore)(struct vdev *d, struct snap_reader *r);
};

struct vdev {
	char id[VDEV_ID_MAX + 1]; /* unique in the VM */
	const char *kind;         /* "uart-16550", "virtio-blk", ... */
	const struct vdev_ops *ops;
	void *impl;               /* the device model's own object */
	struct dev_stats stats;   /* requests, bytes, errors, denied (stats.name == id) */
};

#endif
