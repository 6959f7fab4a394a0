/* virtio_rng — see virtio_rng.h. Each chain is one REQ_READ request of the
 * bytes it gets. A chain with a device-readable buffer is not an entropy
 * request: it is counted as an error and completed with 0 bytes, as is a
 * request the policy denies or an entropy source failure. */
#include "devices/virtio_rng.h"

#include <stdlib.h>

#define RNG_QUEUE_SIZE 256
#define RNG_CHUNK 4096

struct virtio_rng {
	struct virtio_dev dev; /* first: the ops get a pointer to it */
	struct virtq_chain chain;
	struct entropy src;
};

/* Fills up to `want` bytes of the chain; returns the bytes written, or -1 if
 * the host could not provide them. */
static long rng_fill(const struct entropy *src, const struct virtq_chain *c, uint32_t want)
{
	uint8_t buf[RNG_CHUNK];
	uint32_t done = 0;

	while (done < want) {
		size_t n = want - done < sizeof(buf) ? want - done : sizeof(buf);
		if (entropy_fill(src, buf, n) < 0)
			return -1;
		done += (uint32_t)virtq_chain_write(c, done, buf, n);
	}
	return done;
}

static uint32_t rng_serve(struct virtio_dev *d, struct virtq_chain *c)
{
	if (c->out_len != 0 || c->in_len == 0) {
		dev_request_error(&d->gate);
		return 0;
	}
	uint32_t want = c->in_len < VIRTIO_RNG_MAX_REQ ? (uint32_t)c->in_len : VIRTIO_RNG_MAX_REQ;
	if (!dev_request(&d->gate, REQ_READ, want))
		return 0;
	long n = rng_fill(&((struct virtio_rng *)d)->src, c, want);
	if (n < 0) {
		dev_request_error(&d->gate);
		return 0;
	}
	return (uint32_t)n;
}

static void rng_notify(struct virtio_dev *d, unsigned q)
{
	struct virtio_rng *r = (struct virtio_rng *)d;

	if (q != 0 || !virtio_dev_live(d))
		return;
	virtio_dev_serve(d, 0, &r->chain, rng_serve);
}

static int rng_activate(struct virtio_dev *d)
{
	(void)d;
	return 0;
}

static void rng_reset(struct virtio_dev *d)
{
	(void)d; /* no state beyond the queue, which the core resets */
}

static void rng_config_read(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len)
{
	(void)d;
	(void)off;
	(void)buf;
	(void)len; /* no config space */
}

static const struct virtio_dev_ops rng_ops = {
	.queue_notify = rng_notify,
	.activate = rng_activate,
	.reset = rng_reset,
	.config_read = rng_config_read,
};

struct virtio_dev *virtio_rng_new(const struct gmem *mem, struct dev_gate gate, const struct entropy *src)
{
	struct virtio_rng *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->dev.name = "virtio-rng";
	r->dev.device_id = VIRTIO_ID_RNG;
	r->dev.host_features = 0;
	r->dev.num_queues = 1;
	r->dev.queue_max = RNG_QUEUE_SIZE;
	r->dev.config_len = 0;
	r->dev.ops = &rng_ops;
	r->dev.priv = r;
	r->dev.gate = gate;
	r->dev.mem = mem;
	r->src = *src;
	return &r->dev;
}

void virtio_rng_free(struct virtio_dev *d)
{
	free(d);
}
