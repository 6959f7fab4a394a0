/* virtio_rng — the virtio entropy device (virtio 1.x, 5.4): one request
 * queue; every device-writable chain the driver posts is filled with bytes
 * from an entropy source the host passes in (core/entropy.h). Portable device model on the virtio core: a
 * transport takes the returned virtio_dev; queue_notify runs on the VM's
 * event thread. */
#ifndef VIGIL_DEVICES_VIRTIO_RNG_H
#define VIGIL_DEVICES_VIRTIO_RNG_H

#include "core/devreq.h"
#include "core/entropy.h"
#include "core/gmem.h"
#include "virtio/virtio_dev.h"

/* Most bytes one request gets; a longer chain is filled up to this. */
#define VIRTIO_RNG_MAX_REQ (64u * 1024)

/* NULL on ENOMEM. `src` is copied. */
struct virtio_dev *virtio_rng_new(const struct gmem *mem, struct dev_gate gate, const struct entropy *src);
void virtio_rng_free(struct virtio_dev *d);

#endif
