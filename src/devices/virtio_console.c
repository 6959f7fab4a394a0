/* virtio_console — see virtio_console.h.
 * The receive side keeps at most one popped chain in hand (`held`): to know
 * whether the guest has room, the device must pop, and a chain popped while
 * waiting is kept for the next push rather than returned empty. Everything
 * touching vq[0] happens under `lock`. The transmit side runs only on the
 * event thread and needs no lock. */
#include "devices/virtio_console.h"

#include <errno.h>
#include <pthread.h>

#include "core/deadline.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONSOLE_QUEUE_SIZE 256
#define CONSOLE_RXQ 0
#define CONSOLE_TXQ 1
#define CONSOLE_CONFIG_LEN 12 /* cols, rows (u16), max_nr_ports, emerg_wr (u32) */
#define CONSOLE_CHUNK 4096
#define CONSOLE_MAX_TX (64u * 1024) /* most output bytes taken from one chain */

struct virtio_console {
	struct virtio_dev dev; /* first: the ops get a pointer to it */
	struct chardev_out out;
	struct vclock clk; /* for rx_wait_room deadlines */
	struct virtq_chain txc; /* event thread only */

	pthread_mutex_t lock; /* vq[0], running, held, rxc */
	pthread_cond_t room;
	bool running; /* between activate and reset: the rx queue may be touched */
	bool quiesced; /* a snapshot or pause: the input thread keeps off it */
	bool held;
	struct virtq_chain rxc;
};

static struct virtio_console *to_con(struct virtio_dev *d)
{
	return (struct virtio_console *)d;
}

/* Guest output: each readable chain is one REQ_WRITE of its bytes to `out`. */
static uint32_t con_tx_serve(struct virtio_dev *d, struct virtq_chain *ch)
{
	struct virtio_console *c = (struct virtio_console *)d;
	uint8_t buf[CONSOLE_CHUNK];

	if (ch->in_len != 0) {
		dev_request_error(&d->gate);
		return 0;
	}
	uint32_t len = ch->out_len < CONSOLE_MAX_TX ? (uint32_t)ch->out_len : CONSOLE_MAX_TX;
	if (ch->out_len > CONSOLE_MAX_TX)
		dev_request_error(&d->gate);
	if (!dev_request(&d->gate, REQ_WRITE, len))
		return 0;
	for (uint32_t off = 0; off < len;) {
		size_t n = len - off < sizeof(buf) ? len - off : sizeof(buf);
		n = virtq_chain_read(ch, off, buf, n);
		if (n == 0)
			break;
		chardev_write(&c->out, buf, n);
		off += (uint32_t)n;
	}
	return 0;
}

static void con_tx(struct virtio_console *c)
{
	virtio_dev_serve(&c->dev, CONSOLE_TXQ, &c->txc, con_tx_serve);
}

/* Under lock: a receive chain in hand, popping one if needed. A malformed
 * chain is completed empty and counted; a broken queue needs a reset. At
 * most a ring's worth of malformed chains is taken per call: a second vCPU
 * can post them as fast as they are completed, and this runs under the lock
 * the event thread's kick takes. More than that were posted during the call,
 * so their kick wakes the input thread for the next. */
static bool con_rx_get(struct virtio_console *c)
{
	struct virtio_dev *d = &c->dev;
	struct virtq *vq = &d->vq[CONSOLE_RXQ];
	unsigned bad = 0;

	if (!c->running || c->quiesced || !virtio_dev_live(d))
		return false;
	while (!c->held) {
		int got = virtq_pop(vq, &c->rxc);
		if (got == 0)
			return false;
		if (got == -EINVAL) {
			if (vq->broken)
				virtio_dev_needs_reset(d);
			return false;
		}
		if (got < 0 || c->rxc.out_len != 0 || c->rxc.in_len == 0) {
			dev_request_error(&d->gate);
			virtq_push(vq, c->rxc.head, 0);
			virtio_dev_used(d, CONSOLE_RXQ);
			if (++bad >= vq->size)
				return false;
			continue;
		}
		c->held = true;
	}
	return true;
}

size_t virtio_console_rx_push(struct virtio_dev *d, const uint8_t *buf, size_t len)
{
	struct virtio_console *c = to_con(d);
	struct virtq *vq = &d->vq[CONSOLE_RXQ];
	size_t taken = 0;

	pthread_mutex_lock(&c->lock);
	while (taken < len && con_rx_get(c)) {
		size_t want = len - taken;
		if (want > c->rxc.in_len)
			want = (size_t)c->rxc.in_len;
		uint32_t n = 0;
		if (dev_request(&d->gate, REQ_READ, want))
			n = (uint32_t)virtq_chain_write(&c->rxc, 0, buf + taken, want);
		taken += want;
		c->held = false;
		virtq_push_chain(vq, &c->rxc, n);
		virtio_dev_used(d, CONSOLE_RXQ);
	}
	pthread_mutex_unlock(&c->lock);
	return taken;
}

bool virtio_console_rx_wait_room(struct virtio_dev *d, int timeout_ms)
{
	struct virtio_console *c = to_con(d);
	struct timespec deadline = deadline_after_ms(&c->clk, timeout_ms);
	bool room;

	pthread_mutex_lock(&c->lock);
	while (!(room = con_rx_get(c)) && timeout_ms != 0) {
		int err = timeout_ms < 0 ? pthread_cond_wait(&c->room, &c->lock)
					 : pthread_cond_timedwait(&c->room, &c->lock, &deadline);
		if (err == ETIMEDOUT) {
			room = con_rx_get(c);
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return room;
}

static void con_notify(struct virtio_dev *d, unsigned q)
{
	struct virtio_console *c = to_con(d);

	if (!virtio_dev_live(d))
		return;
	if (q == CONSOLE_TXQ) {
		con_tx(c);
	} else if (q == CONSOLE_RXQ) {
		/* New receive buffers: wake the input thread; it pops them. */
		pthread_mutex_lock(&c->lock);
		pthread_cond_broadcast(&c->room);
		pthread_mutex_unlock(&c->lock);
	}
}

static int con_activate(struct virtio_dev *d)
{
	struct virtio_console *c = to_con(d);

	pthread_mutex_lock(&c->lock);
	c->running = true;
	pthread_cond_broadcast(&c->room);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static void con_reset(struct virtio_dev *d)
{
	struct virtio_console *c = to_con(d);

	/* The transport resets the queues after this returns, while the
	 * status may still read DRIVER_OK: from here until the next activate
	 * the input thread keeps off the rx queue. The held chain belongs to
	 * the old driver instance: drop it. */
	pthread_mutex_lock(&c->lock);
	c->running = false;
	c->held = false;
	pthread_cond_broadcast(&c->room);
	pthread_mutex_unlock(&c->lock);
}

/* The input thread pushes outside the event thread: while the VM is paused
 * (a snapshot reads the queues and guest memory) it must not, or memory
 * and the saved ring indices would disagree. It waits for resume. */
static void con_quiesce(struct virtio_dev *d)
{
	struct virtio_console *c = to_con(d);

	pthread_mutex_lock(&c->lock);
	c->quiesced = true;
	pthread_mutex_unlock(&c->lock);
}

static void con_resume(struct virtio_dev *d)
{
	struct virtio_console *c = to_con(d);

	pthread_mutex_lock(&c->lock);
	c->quiesced = false;
	pthread_cond_broadcast(&c->room);
	pthread_mutex_unlock(&c->lock);
	/* Output the guest queued while paused. */
	if (virtio_dev_live(d))
		con_tx(c);
}

static void con_config_read(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len)
{
	(void)d;
	(void)off;
	memset(buf, 0, len); /* cols = rows = 0, max_nr_ports/emerg_wr unused */
}

static void con_config_write(struct virtio_dev *d, uint32_t off, const void *buf, uint32_t len)
{
	(void)d;
	(void)off;
	(void)buf;
	(void)len; /* emerg_wr is not offered */
}

static const struct virtio_dev_ops con_ops = {
	.queue_notify = con_notify,
	.activate = con_activate,
	.reset = con_reset,
	.quiesce = con_quiesce,
	.resume = con_resume,
	.config_read = con_config_read,
	.config_write = con_config_write,
};

struct virtio_dev *virtio_console_new(const struct gmem *mem, struct dev_gate gate,
				      struct chardev_out out, const struct vclock *clk)
{
	struct virtio_console *c = calloc(1, sizeof(*c));
	pthread_condattr_t attr;

	if (!c)
		return NULL;
	c->dev.name = "virtio-console";
	c->dev.device_id = VIRTIO_ID_CONSOLE;
	c->dev.host_features = 0;
	c->dev.num_queues = 2;
	c->dev.queue_max = CONSOLE_QUEUE_SIZE;
	c->dev.config_len = CONSOLE_CONFIG_LEN;
	c->dev.ops = &con_ops;
	c->dev.priv = c;
	c->dev.gate = gate;
	c->dev.mem = mem;
	c->out = out;
	c->clk = *clk;
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* immune to wall-clock jumps */
	pthread_cond_init(&c->room, &attr);
	pthread_condattr_destroy(&attr);
	return &c->dev;
}

void virtio_console_free(struct virtio_dev *d)
{
	struct virtio_console *c;

	if (!d)
		return;
	c = to_con(d);
	pthread_cond_destroy(&c->room);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
