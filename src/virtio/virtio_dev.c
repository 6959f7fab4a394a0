#include "virtio/virtio_dev.h"

#include <errno.h>

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

void virtio_dev_serve(struct virtio_dev *d, unsigned q, struct virtq_chain *c,
		      uint32_t (*serve)(struct virtio_dev *d, struct virtq_chain *c))
{
	struct virtq *vq = &d->vq[q];
	bool pushed = false;
	int got;

	while ((got = virtq_pop(vq, c)) != 0) {
		if (got == -EINVAL) {
			if (vq->broken)
				virtio_dev_needs_reset(d);
			break;
		}
		uint32_t written = 0;
		if (got < 0)
			dev_request_error(&d->gate);
		else
			written = serve(d, c);
		virtq_push_chain(vq, c, written);
		pushed = true;
	}
	if (pushed)
		virtio_dev_used(d, q);
}
