#include "virtio/virtio_dev.h"

void virtio_dev_used(struct virtio_dev *d, unsigned q)
{
	if (q < d->num_queues && virtq_should_notify(&d->vq[q]) && d->raise)
		d->raise(d, (int)q);
}

void virtio_dev_config_changed(struct virtio_dev *d)
{
	if (d->raise)
		d->raise(d, -1);
}

void virtio_dev_needs_reset(struct virtio_dev *d)
{
	atomic_fetch_or(&d->status, VIRTIO_S_DEVICE_NEEDS_RESET);
	dev_request_error(&d->gate);
	virtio_dev_config_changed(d);
}

bool virtio_dev_live(const struct virtio_dev *d)
{
	uint8_t s = atomic_load(&d->status);
	return (s & VIRTIO_S_DRIVER_OK) && !(s & (VIRTIO_S_DEVICE_NEEDS_RESET | VIRTIO_S_FAILED));
}
