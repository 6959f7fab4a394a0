/* The virtio 1.x PCI transport. BAR0 holds, at fixed offsets, the common
 * configuration, the ISR, the device configuration, one notification
 * address per queue, and the MSI-X table and pending bits. Lifecycle changes
 * (activate, reset) and every write to a queue's fields (size, vector,
 * rings, enable) run on the event thread, where queues are processed, so a
 * device never sees its queues change under it: the vCPU waits for them. */
#include "virtio/virtio_pci.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/le.h"
#include "core/snap.h"

#define BAR_SIZE 0x8000
#define OFF_COMMON 0x0000
#define COMMON_LEN 0x38
#define OFF_ISR 0x1000
#define OFF_DEVICE 0x2000
#define DEVICE_MAX 0x1000
#define OFF_NOTIFY 0x3000
#define NOTIFY_MULT 4
#define OFF_MSIX_TABLE 0x4000
#define OFF_MSIX_PBA 0x5000
#define NO_VECTOR 0xffff

/* PCI config space: virtio vendor capabilities and MSI-X. */
#define CAP_COMMON 0x40
#define CAP_NOTIFY 0x50
#define CAP_ISR 0x64
#define CAP_DEVICE 0x74
#define CAP_MSIX 0x84
#define MSIX_ENABLE 0x8000
#define MSIX_MASKALL 0x4000
#define CMD_INTX_DISABLE 0x400

/* Common configuration layout (virtio 1.x, 4.1.4.3). */
enum {
	CC_DFSELECT = 0x00, CC_DF = 0x04, CC_GFSELECT = 0x08, CC_GF = 0x0c, CC_MSIX_CONFIG = 0x10,
	CC_NUMQ = 0x12, CC_STATUS = 0x14, CC_CFGGEN = 0x15, CC_Q_SELECT = 0x16, CC_Q_SIZE = 0x18,
	CC_Q_MSIX = 0x1a, CC_Q_ENABLE = 0x1c, CC_Q_NOFF = 0x1e, CC_Q_DESC = 0x20, CC_Q_AVAIL = 0x28,
	CC_Q_USED = 0x30,
};

#define NVEC (VIRTIO_MAX_QUEUES + 1)

struct msix_entry {
	uint64_t addr;
	uint32_t data;
	uint32_t ctrl; /* bit 0: masked */
};

struct kick {
	struct virtio_pci *vp;
	unsigned q;
	struct doorbell *db;  /* rung by the transport (a notify write that exited, a turn's rest) */
	struct doorbell *kdb; /* rung by the platform (KVM's ioeventfd): judged first */
};

struct virtio_pci {
	struct pci_function fn;
	struct virtio_dev *dev;
	struct exec ex;
	struct platform_ops plat;
	struct irq_line intx;
	pthread_mutex_t lock; /* everything below */
	uint32_t dfselect, gfselect;
	uint64_t driver_features;
	uint16_t queue_sel;
	uint16_t config_vector;
	uint16_t queue_vector[VIRTIO_MAX_QUEUES];
	uint16_t queue_size[VIRTIO_MAX_QUEUES];
	bool queue_enabled[VIRTIO_MAX_QUEUES];
	uint8_t generation;
	uint8_t isr;
	int intx_level;
	unsigned nvec;
	struct msix_entry msix[NVEC];
	uint64_t pba;
	struct msi *vec[NVEC];
	struct kick kick[VIRTIO_MAX_QUEUES];
	bool bound[VIRTIO_MAX_QUEUES]; /* the platform rings kick[q].db at the notify address */
	/* Activated since the last reset. Touched only where the lifecycle
	 * steps and kicks run (the event thread, or with its loop stopped),
	 * so it needs no lock: DRIVER_OK is stored before activate is posted,
	 * and a kick served in between must not reach a device not yet
	 * activated. */
	bool active;
};

static uint64_t offered(const struct virtio_dev *d)
{
	return d->host_features | VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
}

/* The PCI host stores the guest's config writes (command register, MSI-X
 * control) with atomic byte stores under its own lock, not ours: read them
 * the same way. */
static uint16_t cfg16(const struct virtio_pci *vp, unsigned off)
{
	return (uint16_t)(__atomic_load_n(&vp->fn.cfg[off], __ATOMIC_RELAXED) |
			  __atomic_load_n(&vp->fn.cfg[off + 1], __ATOMIC_RELAXED) << 8);
}

/* ---- interrupts -------------------------------------------------------- */

/* The line follows the ISR, except while INTx is disabled or MSI-X is on
 * (PCI 3.0 §6.8.3.3: a function with MSI-X enabled never asserts INTx):
 * an ISR set before the driver turned MSI-X on must not hold it high. */
static void set_intx(struct virtio_pci *vp)
{
	int level = vp->isr != 0 && !(cfg16(vp, 0x04) & CMD_INTX_DISABLE) && !(cfg16(vp, CAP_MSIX + 2) & MSIX_ENABLE);
	if (level != vp->intx_level) {
		vp->intx_level = level;
		irq_set(&vp->intx, level);
	}
}

static void fire(struct virtio_pci *vp, unsigned vec)
{
	bool masked = (cfg16(vp, CAP_MSIX + 2) & MSIX_MASKALL) || (vp->msix[vec].ctrl & 1);

	if (masked || !vp->vec[vec]) {
		vp->pba |= 1ULL << vec;
		return;
	}
	vp->plat.msi_fire(vp->plat.ctx, vp->vec[vec]);
}

/* vp->lock held. */
static void raise_locked(struct virtio_pci *vp, int q)
{
	if (cfg16(vp, CAP_MSIX + 2) & MSIX_ENABLE) {
		unsigned vec = q < 0 ? vp->config_vector : vp->queue_vector[q];
		if (vec < vp->nvec)
			fire(vp, vec);
	} else {
		vp->isr |= q < 0 ? 2 : 1;
		set_intx(vp);
	}
}

static void raise_irq(struct virtio_dev *d, int q)
{
	struct virtio_pci *vp = d->transport;

	pthread_mutex_lock(&vp->lock);
	raise_locked(vp, q);
	pthread_mutex_unlock(&vp->lock);
}

/* Delivers vectors that became pending while masked, once unmasked. */
static void flush_pending(struct virtio_pci *vp)
{
	for (unsigned v = 0; v < vp->nvec; v++) {
		if (!(vp->pba & (1ULL << v)))
			continue;
		vp->pba &= ~(1ULL << v);
		fire(vp, v);
	}
}

/* ---- lifecycle on the event thread ------------------------------------- */

struct sync_call {
	void (*fn)(void *arg);
	void *arg;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void sync_trampoline(void *arg)
{
	struct sync_call *c = arg;
	c->fn(c->arg);
	pthread_mutex_lock(&c->lock);
	c->done = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* Runs fn(arg) on the event thread and waits; the caller must not hold vp->lock. */
static void call_on_event_thread(struct virtio_pci *vp, void (*fn)(void *arg), void *arg)
{
	struct sync_call c = { .fn = fn, .arg = arg, .lock = PTHREAD_MUTEX_INITIALIZER,
			       .cond = PTHREAD_COND_INITIALIZER };
	int r;
	/* -EAGAIN: the loop's call queue is full. It is running and draining
	 * it, so fn must run there, never here beside it: post again. (No
	 * sleep: a vCPU's filter has no sleep calls, and vigil-metal's libc
	 * no clock.) */
	while ((r = exec_post(&vp->ex, sync_trampoline, &c)) == -EAGAIN)
		;
	if (r < 0) {
		fn(arg); /* -ESRCH: the loop is not running, nobody else touches the queues */
		return;
	}
	pthread_mutex_lock(&c.lock);
	while (!c.done)
		pthread_cond_wait(&c.cond, &c.lock);
	pthread_mutex_unlock(&c.lock);
}

struct step_call {
	struct virtio_pci *vp;
	void (*step)(struct virtio_pci *vp);
};

static void step_trampoline(void *arg)
{
	struct step_call *s = arg;
	s->step(s->vp);
}

static void on_event_thread(struct virtio_pci *vp, void (*step)(struct virtio_pci *vp))
{
	struct step_call s = { vp, step };
	call_on_event_thread(vp, step_trampoline, &s);
}

static void do_reset(struct virtio_pci *vp)
{
	struct virtio_dev *d = vp->dev;

	vp->active = false;
	if (d->ops->reset)
		d->ops->reset(d);
	pthread_mutex_lock(&vp->lock);
	for (unsigned q = 0; q < d->num_queues; q++) {
		virtq_reset(&d->vq[q]);
		vp->queue_enabled[q] = false;
		vp->queue_size[q] = d->queue_max;
		vp->queue_vector[q] = NO_VECTOR;
	}
	vp->config_vector = NO_VECTOR;
	vp->driver_features = 0;
	d->features = 0;
	vp->isr = 0;
	set_intx(vp);
	atomic_store(&d->status, 0);
	pthread_mutex_unlock(&vp->lock);
}

/* One turn of a queue's service: at most VIRTQ_BUDGET chains, then the
 * doorbell is rung again so that every other device's events run first. */
static void turn_end(struct kick *k)
{
	struct virtq *vq = &k->vp->dev->vq[k->q];
	bool more = vq->budget_spent;

	virtq_budget(vq, 0);
	if (more)
		k->vp->ex.ops->doorbell_ring(k->vp->ex.ctx, k->db);
}

static void serve_turn(struct kick *k)
{
	struct virtio_dev *d = k->vp->dev;

	if (!k->vp->active || !virtio_dev_live(d) || !k->vp->queue_enabled[k->q])
		return;
	virtq_budget(&d->vq[k->q], VIRTQ_BUDGET);
	d->ops->queue_notify(d, k->q);
	turn_end(k);
}

static void on_kick(void *ctx)
{
	serve_turn(ctx);
}

/* A notify write the platform caught without an exit: the policy sees it
 * here (at the notify register's home address), as the exit path would
 * have. */
static void on_bound_kick(void *ctx)
{
	struct kick *k = ctx;
	struct virtio_pci *vp = k->vp;
	uint64_t gpa = vp->fn.bar[0].home + OFF_NOTIFY + (uint64_t)k->q * NOTIFY_MULT;

	if (vp->plat.doorbell_taken && !vp->plat.doorbell_taken(vp->plat.ctx, gpa, 2))
		return;
	serve_turn(k);
}

static void do_activate(struct virtio_pci *vp)
{
	struct virtio_dev *d = vp->dev;

	/* Two vCPUs: one stores DRIVER_OK, the other resets (and perhaps sets
	 * DRIVER_OK again) before the first's activate gets here. Once per
	 * DRIVER_OK since the last reset, and only while it holds. */
	if (vp->active || !(atomic_load(&d->status) & VIRTIO_S_DRIVER_OK))
		return;
	vp->active = true;
	if (d->ops->activate && d->ops->activate(d) != 0)
		virtio_dev_needs_reset(d);
	/* Kicks that came before DRIVER_OK were dropped: every queue gets one
	 * turn, budgeted as a kick's is, since a guest can make a ring that
	 * never runs dry before it ever kicks. */
	for (unsigned q = 0; q < d->num_queues; q++)
		serve_turn(&vp->kick[q]);
}

/* ---- common configuration ---------------------------------------------- */

static void common_image(struct virtio_pci *vp, uint8_t *img)
{
	struct virtio_dev *d = vp->dev;
	unsigned q = vp->queue_sel;
	bool qv = q < d->num_queues;
	uint64_t feat = vp->dfselect < 2 ? offered(d) >> (32 * vp->dfselect) : 0;
	uint64_t gfeat = vp->gfselect < 2 ? vp->driver_features >> (32 * vp->gfselect) : 0;

#define PUT(off, v, n) le_store(img + (off), (n), (uint64_t)(v))
	memset(img, 0, COMMON_LEN);
	PUT(CC_DFSELECT, vp->dfselect, 4);
	PUT(CC_DF, (uint32_t)feat, 4);
	PUT(CC_GFSELECT, vp->gfselect, 4);
	PUT(CC_GF, (uint32_t)gfeat, 4);
	PUT(CC_MSIX_CONFIG, vp->config_vector, 2);
	PUT(CC_NUMQ, d->num_queues, 2);
	PUT(CC_STATUS, atomic_load(&d->status), 1);
	PUT(CC_CFGGEN, vp->generation, 1);
	PUT(CC_Q_SELECT, vp->queue_sel, 2);
	if (qv) {
		PUT(CC_Q_SIZE, vp->queue_size[q], 2);
		PUT(CC_Q_MSIX, vp->queue_vector[q], 2);
		PUT(CC_Q_ENABLE, vp->queue_enabled[q], 2);
		PUT(CC_Q_NOFF, q, 2);
		PUT(CC_Q_DESC, d->vq[q].desc_gpa, 8);
		PUT(CC_Q_AVAIL, d->vq[q].avail_gpa, 8);
		PUT(CC_Q_USED, d->vq[q].used_gpa, 8);
	}
#undef PUT
}

static bool vector_ok(const struct virtio_pci *vp, uint16_t v)
{
	return v == NO_VECTOR || v < vp->nvec;
}

/* A vector the driver writes: one the device cannot map reads back as
 * NO_VECTOR (virtio 1.2, 4.1.5.1.2), so the driver sees the refusal and
 * a snapshot never holds a vector the restore would refuse. */
static uint16_t vector_taken(const struct virtio_pci *vp, uint16_t v)
{
	return vector_ok(vp, v) ? v : NO_VECTOR;
}

#define S_KNOWN (VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_DRIVER_OK | VIRTIO_S_FEATURES_OK | \
		 VIRTIO_S_DEVICE_NEEDS_RESET | VIRTIO_S_FAILED)

/* A status write the device refuses: the driver is told to reset. */
static void (*refuse_status(struct virtio_dev *d))(struct virtio_pci *)
{
	atomic_fetch_or(&d->status, VIRTIO_S_DEVICE_NEEDS_RESET);
	dev_request_error(&d->gate);
	return NULL;
}

/* Status writes; returns the lifecycle step to run on the event thread. */
static void (*write_status(struct virtio_pci *vp, uint8_t val))(struct virtio_pci *)
{
	struct virtio_dev *d = vp->dev;
	uint8_t old = atomic_load(&d->status);

	if (val == 0)
		return do_reset;
	/* Only a reset clears status bits (virtio 1.2, 2.1.2), and DRIVER_OK
	 * needs FEATURES_OK — the one the device accepted, so the check comes
	 * after the features' own: a driver that breaks either would have a
	 * live device renegotiate under running backends, or run with no
	 * features. It is told to reset instead, and nothing else changes. */
	if ((old & ~VIRTIO_S_DEVICE_NEEDS_RESET) & ~val)
		return refuse_status(d);
	uint64_t accepted = d->features;
	if ((val & VIRTIO_S_FEATURES_OK) && !(old & VIRTIO_S_FEATURES_OK)) {
		uint64_t f = vp->driver_features;
		if ((f & ~offered(d)) || !(f & VIRTIO_BIT(VIRTIO_F_VERSION_1)))
			val &= (uint8_t)~VIRTIO_S_FEATURES_OK; /* the driver reads it back and gives up */
		else
			accepted = f;
	}
	if ((val & VIRTIO_S_DRIVER_OK) && !(val & VIRTIO_S_FEATURES_OK))
		return refuse_status(d);
	d->features = accepted;
	/* Bits the spec does not define are not kept. NEEDS_RESET is the
	 * device's: another thread may set it meanwhile (a broken queue, a
	 * failed backend), without vp->lock, and it must not be lost. */
	uint8_t keep = (uint8_t)(val & S_KNOWN & ~VIRTIO_S_DEVICE_NEEDS_RESET);
	uint8_t cur = old;
	while (!atomic_compare_exchange_weak(&d->status, &cur, (uint8_t)(keep | (cur & VIRTIO_S_DEVICE_NEEDS_RESET))))
		;
	if ((val & VIRTIO_S_DRIVER_OK) && !(old & VIRTIO_S_DRIVER_OK))
		return do_activate;
	return NULL;
}

static void enable_queue(struct virtio_pci *vp, unsigned q)
{
	struct virtio_dev *d = vp->dev;
	struct virtq *vq = &d->vq[q];

	if (vp->queue_enabled[q])
		return;
	vq->size = vp->queue_size[q];
	vq->event_idx = virtio_has(d, VIRTIO_F_EVENT_IDX);
	if (vq->size > d->queue_max || virtq_enable(vq, d->mem) < 0) {
		/* virtio_dev_needs_reset() without its raise_irq: vp->lock is held */
		atomic_fetch_or(&d->status, VIRTIO_S_DEVICE_NEEDS_RESET);
		dev_request_error(&d->gate);
		raise_locked(vp, -1);
		return;
	}
	vp->queue_enabled[q] = true;
}

static void (*write_common(struct virtio_pci *vp, unsigned off, const uint8_t *data, unsigned len))(struct virtio_pci *)
{
	struct virtio_dev *d = vp->dev;
	uint8_t img[COMMON_LEN];
	unsigned q = vp->queue_sel;
	bool qv = q < d->num_queues;
	bool live = atomic_load(&d->status) & VIRTIO_S_DRIVER_OK;

	common_image(vp, img);
	memcpy(img + off, data, len);
	/* The field the write starts in takes its new value from the image. */
	if (off < CC_DF) vp->dfselect = (uint32_t)le_load(img + CC_DFSELECT, 4);
	else if (off >= CC_GFSELECT && off < CC_GF) vp->gfselect = (uint32_t)le_load(img + CC_GFSELECT, 4);
	else if (off >= CC_GF && off < CC_MSIX_CONFIG) {
		if (vp->gfselect < 2 && !(atomic_load(&d->status) & VIRTIO_S_FEATURES_OK)) {
			unsigned sh = 32 * vp->gfselect;
			vp->driver_features = (vp->driver_features & ~(0xffffffffULL << sh)) |
					      (le_load(img + CC_GF, 4) << sh);
		}
	} else if (off >= CC_MSIX_CONFIG && off < CC_NUMQ) vp->config_vector = vector_taken(vp, (uint16_t)le_load(img + CC_MSIX_CONFIG, 2));
	else if (off == CC_STATUS) return write_status(vp, img[CC_STATUS]);
	else if (off >= CC_Q_SELECT && off < CC_Q_SIZE) vp->queue_sel = (uint16_t)le_load(img + CC_Q_SELECT, 2);
	else if (!qv || vp->queue_enabled[q] || live) {
		/* Queue fields of a missing, enabled or running queue are read-only. */
		if (qv && off >= CC_Q_MSIX && off < CC_Q_ENABLE)
			vp->queue_vector[q] = vector_taken(vp, (uint16_t)le_load(img + CC_Q_MSIX, 2));
	} else if (off >= CC_Q_SIZE && off < CC_Q_MSIX) vp->queue_size[q] = (uint16_t)le_load(img + CC_Q_SIZE, 2);
	else if (off >= CC_Q_MSIX && off < CC_Q_ENABLE) vp->queue_vector[q] = vector_taken(vp, (uint16_t)le_load(img + CC_Q_MSIX, 2));
	else if (off >= CC_Q_ENABLE && off < CC_Q_NOFF) {
		/* Queues are set up after FEATURES_OK (virtio 1.2, 3.1.1; Firecracker
		 * ignores them before it too): the ring format (EVENT_IDX) is the
		 * negotiated one only from then on. */
		if ((img[CC_Q_ENABLE] & 1) && (atomic_load(&d->status) & VIRTIO_S_FEATURES_OK))
			enable_queue(vp, q);
		else if (img[CC_Q_ENABLE] & 1)
			dev_request_error(&d->gate);
	}
	else if (off >= CC_Q_DESC && off < CC_Q_AVAIL) d->vq[q].desc_gpa = le_load(img + CC_Q_DESC, 8);
	else if (off >= CC_Q_AVAIL && off < CC_Q_USED) d->vq[q].avail_gpa = le_load(img + CC_Q_AVAIL, 8);
	else if (off >= CC_Q_USED && off < COMMON_LEN) d->vq[q].used_gpa = le_load(img + CC_Q_USED, 8);
	return NULL;
}

struct queue_write {
	struct virtio_pci *vp;
	unsigned off;
	const uint8_t *data;
	unsigned len;
};

/* On the event thread: queue fields never return a lifecycle step. */
static void queue_write_here(void *arg)
{
	struct queue_write *w = arg;

	pthread_mutex_lock(&w->vp->lock);
	(void)write_common(w->vp, w->off, w->data, w->len);
	pthread_mutex_unlock(&w->vp->lock);
}

/* ---- BAR0 -------------------------------------------------------------- */

static void msix_access(struct virtio_pci *vp, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	unsigned vec = (unsigned)(off / 16), field = (unsigned)(off % 16);
	uint8_t raw[16];

	if (vec >= vp->nvec || field + len > 16) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	struct msix_entry *e = &vp->msix[vec];
	for (unsigned i = 0; i < 8; i++)
		raw[i] = (uint8_t)(e->addr >> (8 * i));
	for (unsigned i = 0; i < 4; i++) {
		raw[8 + i] = (uint8_t)(e->data >> (8 * i));
		raw[12 + i] = (uint8_t)(e->ctrl >> (8 * i));
	}
	if (!is_write) {
		memcpy(data, raw + field, len);
		return;
	}
	bool was_masked = e->ctrl & 1;
	memcpy(raw + field, data, len);
	e->addr = le_load(raw, 8);
	e->data = (uint32_t)le_load(raw + 8, 4);
	e->ctrl = (uint32_t)le_load(raw + 12, 4) & 1;
	/* The route follows an entry that can fire: a write to an unmasked
	 * one, or the unmask after writes to a masked one (drivers program
	 * entries masked). A guest rewriting masked entries in a loop then
	 * costs no route update (KVM_SET_GSI_ROUTING) per write. */
	bool unmasked = was_masked && !(e->ctrl & 1);
	if (vp->vec[vec] && !(e->ctrl & 1) && (field < 12 || unmasked))
		vp->plat.msi_set(vp->plat.ctx, vp->vec[vec], e->addr, e->data);
	if (unmasked && (cfg16(vp, CAP_MSIX + 2) & MSIX_ENABLE))
		flush_pending(vp);
}

static void bar0_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct virtio_pci *vp = opaque;
	struct virtio_dev *d = vp->dev;
	void (*step)(struct virtio_pci *) = NULL;

	if (off >= OFF_NOTIFY && off < OFF_NOTIFY + (uint64_t)d->num_queues * NOTIFY_MULT) {
		/* The platform did not catch this write: ring the same doorbell. */
		if (is_write)
			vp->ex.ops->doorbell_ring(vp->ex.ctx, vp->kick[(off - OFF_NOTIFY) / NOTIFY_MULT].db);
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (off >= OFF_DEVICE && off < OFF_DEVICE + DEVICE_MAX) {
		uint32_t o = (uint32_t)(off - OFF_DEVICE);
		bool in = o < d->config_len && len <= d->config_len - o;
		if (!in) {
			if (!is_write)
				memset(data, 0, len);
		} else if (is_write) {
			if (d->ops->config_write)
				d->ops->config_write(d, o, data, len);
		} else {
			d->ops->config_read(d, o, data, len);
		}
		return;
	}
	if (is_write && off >= CC_Q_SIZE && off < COMMON_LEN && off + len <= COMMON_LEN) {
		/* A queue's size, vector, rings and enable change where the
		 * queue is served, never under the device. */
		struct queue_write w = { vp, (unsigned)off, data, len };
		call_on_event_thread(vp, queue_write_here, &w);
		return;
	}
	pthread_mutex_lock(&vp->lock);
	if (off < COMMON_LEN && off + len <= COMMON_LEN) {
		if (is_write) {
			step = write_common(vp, (unsigned)off, data, len);
		} else {
			uint8_t img[COMMON_LEN];
			common_image(vp, img);
			memcpy(data, img + off, len);
		}
	} else if (off == OFF_ISR && !is_write) {
		memset(data, 0, len);
		data[0] = vp->isr; /* reading acknowledges */
		vp->isr = 0;
		set_intx(vp);
	} else if (off >= OFF_MSIX_TABLE && off < OFF_MSIX_PBA) {
		msix_access(vp, off - OFF_MSIX_TABLE, data, len, is_write);
	} else if (off >= OFF_MSIX_PBA && off + len <= OFF_MSIX_PBA + 8 && !is_write) {
		le_store(data, len, vp->pba >> (8 * (off - OFF_MSIX_PBA)));
	} else if (!is_write) {
		memset(data, 0, len);
	}
	pthread_mutex_unlock(&vp->lock);
	if (step)
		on_event_thread(vp, step);
}

/* ---- PCI function ------------------------------------------------------ */

static void bind_doorbells(struct virtio_pci *vp, uint64_t bar, bool assign)
{
	/* Deassigning looks only at the transport's own records: at teardown
	 * the device itself may already be gone. */
	unsigned n = assign ? vp->dev->num_queues : VIRTIO_MAX_QUEUES;
	for (unsigned q = 0; q < n; q++) {
		if (!vp->plat.doorbell || (!assign && !vp->bound[q]))
			continue;
		uint64_t gpa = bar + OFF_NOTIFY + q * NOTIFY_MULT;
		vp->bound[q] = vp->plat.doorbell(vp->plat.ctx, gpa, 2, vp->kick[q].kdb, assign) == 0 && assign;
	}
}

static void bar_moved(void *opaque, unsigned bar, uint64_t old_addr, uint64_t new_addr)
{
	struct virtio_pci *vp = opaque;
	if (bar != 0)
		return;
	if (old_addr)
		bind_doorbells(vp, old_addr, false);
	if (new_addr) /* 0: not decoded, so no doorbell either */
		bind_doorbells(vp, new_addr, true);
}

static void cfg_written(void *opaque, uint32_t off, uint32_t len)
{
	struct virtio_pci *vp = opaque;

	pthread_mutex_lock(&vp->lock);
	bool msix_ctrl = off <= CAP_MSIX + 3 && off + len > CAP_MSIX + 2;
	if (msix_ctrl && (cfg16(vp, CAP_MSIX + 2) & MSIX_ENABLE))
		flush_pending(vp);
	if ((off <= 0x05 && off + len > 0x04) || msix_ctrl)
		set_intx(vp); /* INTx disable bit, MSI-X enable */
	pthread_mutex_unlock(&vp->lock);
}

static void put_cap(uint8_t *cfg, unsigned at, unsigned next, uint8_t type, uint32_t off, uint32_t len,
		    uint8_t cap_len)
{
	cfg[at] = 0x09; /* vendor-specific */
	cfg[at + 1] = (uint8_t)next;
	cfg[at + 2] = cap_len;
	cfg[at + 3] = type;
	cfg[at + 4] = 0; /* BAR0 */
	for (unsigned i = 0; i < 4; i++) {
		cfg[at + 8 + i] = (uint8_t)(off >> (8 * i));
		cfg[at + 12 + i] = (uint8_t)(len >> (8 * i));
	}
}

static void fill_config_space(struct virtio_pci *vp)
{
	uint8_t *c = vp->fn.cfg;
	uint16_t id = vp->dev->device_id;
	uint32_t class = id == VIRTIO_ID_NET ? 0x020000 : id == VIRTIO_ID_BLOCK ? 0x018000
		       : id == VIRTIO_ID_CONSOLE ? 0x078000 : 0xff0000;

	c[0x00] = 0xf4; c[0x01] = 0x1a;                     /* Red Hat / virtio */
	c[0x02] = (uint8_t)(0x1040 + id); c[0x03] = (uint8_t)((0x1040 + id) >> 8);
	c[0x06] = 0x10;                                     /* capability list */
	c[0x08] = 1;                                        /* revision: modern */
	c[0x09] = (uint8_t)class; c[0x0a] = (uint8_t)(class >> 8); c[0x0b] = (uint8_t)(class >> 16);
	c[0x2c] = 0xf4; c[0x2d] = 0x1a; c[0x2e] = 0x40; c[0x2f] = 0x00;
	c[0x34] = CAP_COMMON;
	put_cap(c, CAP_COMMON, CAP_NOTIFY, 1, OFF_COMMON, COMMON_LEN, 16);
	put_cap(c, CAP_NOTIFY, CAP_ISR, 2, OFF_NOTIFY, vp->dev->num_queues * NOTIFY_MULT, 20);
	c[CAP_NOTIFY + 16] = NOTIFY_MULT;
	/* A device without config space (rng) gets no device capability:
	 * Linux refuses a zero-length one. */
	bool has_cfg = vp->dev->config_len > 0;
	put_cap(c, CAP_ISR, has_cfg ? CAP_DEVICE : CAP_MSIX, 3, OFF_ISR, 1, 16);
	if (has_cfg)
		put_cap(c, CAP_DEVICE, CAP_MSIX, 4, OFF_DEVICE, vp->dev->config_len, 16);
	c[CAP_MSIX] = 0x11;
	c[CAP_MSIX + 1] = 0;
	c[CAP_MSIX + 2] = (uint8_t)(vp->nvec - 1);
	c[CAP_MSIX + 4] = (uint8_t)OFF_MSIX_TABLE; c[CAP_MSIX + 5] = (uint8_t)(OFF_MSIX_TABLE >> 8);
	c[CAP_MSIX + 8] = (uint8_t)OFF_MSIX_PBA; c[CAP_MSIX + 9] = (uint8_t)(OFF_MSIX_PBA >> 8);
	vp->fn.wmask[CAP_MSIX + 3] = (MSIX_ENABLE | MSIX_MASKALL) >> 8;
}

struct virtio_pci *virtio_pci_new(struct virtio_dev *dev, struct pci_host *host, const struct exec *ex,
				  const struct platform_ops *plat,
				  struct irq_line (*intx)(void *ctx, uint32_t gsi), void *intx_ctx, char *err,
				  size_t errlen)
{
	struct virtio_pci *vp = calloc(1, sizeof(*vp));

	if (!vp || dev->num_queues == 0 || dev->num_queues > VIRTIO_MAX_QUEUES || dev->config_len > DEVICE_MAX) {
		snprintf(err, errlen, "%s: cannot create its PCI transport", dev->name);
		free(vp);
		return NULL;
	}
	pthread_mutex_init(&vp->lock, NULL);
	vp->dev = dev;
	vp->ex = *ex;
	vp->plat = *plat;
	vp->nvec = dev->num_queues + 1;
	vp->config_vector = NO_VECTOR;
	for (unsigned i = 0; i < NVEC; i++) {
		vp->msix[i].ctrl = 1; /* masked until the driver sets it up */
	}
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		vp->queue_vector[q] = NO_VECTOR;
		vp->queue_size[q] = dev->queue_max;
		vp->kick[q] = (struct kick){ .vp = vp, .q = q };
	}
	dev->transport = vp;
	dev->raise = raise_irq;
	for (unsigned v = 0; v < vp->nvec && plat->msi_alloc; v++)
		if (plat->msi_alloc(plat->ctx, &vp->vec[v]) < 0)
			vp->vec[v] = NULL; /* stays pending in the PBA: the guest polls or falls back */
	for (unsigned q = 0; q < dev->num_queues; q++) {
		vp->kick[q].db = ex->ops->doorbell_new(ex->ctx, on_kick, &vp->kick[q]);
		if (plat->doorbell)
			vp->kick[q].kdb = ex->ops->doorbell_new(ex->ctx, on_bound_kick, &vp->kick[q]);
		if (!vp->kick[q].db || (plat->doorbell && !vp->kick[q].kdb)) {
			snprintf(err, errlen, "%s: cannot set up queue notifications", dev->name);
			virtio_pci_free(vp);
			return NULL;
		}
	}

	vp->fn.name = dev->name;
	vp->fn.dev = vp;
	vp->fn.cfg_written = cfg_written;
	vp->fn.bar_moved = bar_moved;
	vp->fn.bar[0] = (struct pci_bar){ .size = BAR_SIZE, .fn = bar0_io, .dev = vp };
	fill_config_space(vp);
	int r = pci_host_add(host, &vp->fn);
	if (r < 0) {
		snprintf(err, errlen, "%s: no room on the PCI bus (%s)", dev->name, strerror(-r));
		virtio_pci_free(vp);
		return NULL;
	}
	vp->intx = intx(intx_ctx, vp->fn.gsi);
	bind_doorbells(vp, vp->fn.bar[0].addr, true);
	return vp;
}

void virtio_pci_free(struct virtio_pci *vp)
{
	if (!vp)
		return;
	bind_doorbells(vp, vp->fn.bar[0].addr, false);
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		vp->ex.ops->doorbell_free(vp->ex.ctx, vp->kick[q].db);
		vp->ex.ops->doorbell_free(vp->ex.ctx, vp->kick[q].kdb);
	}
	for (unsigned v = 0; v < NVEC; v++)
		if (vp->vec[v])
			vp->plat.msi_free(vp->plat.ctx, vp->vec[v]);
	pthread_mutex_destroy(&vp->lock);
	free(vp);
}

struct virtio_dev *virtio_pci_device(const struct virtio_pci *vp)
{
	return vp->dev;
}

static void vdev_quiesce(struct vdev *v)
{
	struct virtio_dev *d = ((struct virtio_pci *)v->impl)->dev;
	if (d->ops->quiesce)
		d->ops->quiesce(d);
}

/* A device's resume looks at the queues whose kicks it dropped while
 * quiesced: that look is a budgeted turn per queue too. */
static void vdev_resume(struct vdev *v)
{
	struct virtio_pci *vp = v->impl;
	struct virtio_dev *d = vp->dev;

	if (!d->ops->resume)
		return;
	for (unsigned q = 0; q < d->num_queues; q++)
		virtq_budget(&d->vq[q], VIRTQ_BUDGET);
	d->ops->resume(d);
	for (unsigned q = 0; q < d->num_queues; q++)
		turn_end(&vp->kick[q]);
}

static void vdev_reset(struct vdev *v)
{
	on_event_thread(v->impl, do_reset);
}

/* ---- snapshots ----------------------------------------------------------- */

#define VPCI_SNAP_VERSION 1

/* The transport as the driver programmed it, then each queue's ring
 * indices, then the device's own part. The PCI side (BAR address, command
 * register, MSI-X enable and mask-all) is the PCI host's section. */
static int vdev_save(struct vdev *v, struct snap_writer *w)
{
	struct virtio_pci *vp = v->impl;
	struct virtio_dev *d = vp->dev;

	snap_begin(w, v->id, v->kind, VPCI_SNAP_VERSION);
	pthread_mutex_lock(&vp->lock);
	snap_put_u64(w, offered(d));
	snap_put_u64(w, vp->driver_features);
	snap_put_u64(w, d->features);
	snap_put_u8(w, atomic_load(&d->status));
	snap_put_u8(w, vp->generation);
	snap_put_u8(w, vp->isr);
	snap_put_u32(w, vp->dfselect);
	snap_put_u32(w, vp->gfselect);
	snap_put_u16(w, vp->queue_sel);
	snap_put_u16(w, vp->config_vector);
	snap_put_u16(w, (uint16_t)vp->nvec);
	for (unsigned i = 0; i < vp->nvec; i++) {
		snap_put_u64(w, vp->msix[i].addr);
		snap_put_u32(w, vp->msix[i].data);
		snap_put_u32(w, vp->msix[i].ctrl);
	}
	snap_put_u64(w, vp->pba);
	snap_put_u16(w, (uint16_t)d->num_queues);
	for (unsigned q = 0; q < d->num_queues; q++) {
		const struct virtq *vq = &d->vq[q];
		snap_put_u16(w, vp->queue_size[q]);
		snap_put_u16(w, vp->queue_vector[q]);
		snap_put_u16(w, (uint16_t)q); /* notify offset */
		snap_put_bool(w, vp->queue_enabled[q]);
		snap_put_u64(w, vq->desc_gpa);
		snap_put_u64(w, vq->avail_gpa);
		snap_put_u64(w, vq->used_gpa);
		/* Quiesced devices have nothing in flight; a chain popped and
		 * not completed is one held for later (a receive buffer
		 * waiting for a frame), always the latest popped, since such
		 * devices complete in order. It goes back to the driver's
		 * ring: the restored device pops it again, the guest loses
		 * no buffer. */
		snap_put_u16(w, vq->used_idx);
		snap_put_u16(w, vq->used_idx);
		snap_put_u16(w, vq->signalled);
		snap_put_bool(w, vq->event_idx);
		snap_put_bool(w, vq->broken);
	}
	pthread_mutex_unlock(&vp->lock);
	int r = d->ops->save ? d->ops->save(d, w) : 0;
	snap_end(w);
	return r;
}

struct vq_snap {
	uint16_t size, vector, noff;
	bool enabled, event_idx, broken;
	uint64_t desc, avail, used;
	uint16_t last_avail, used_idx, signalled;
};

/* Reads and checks one queue; the rings are resolved on a scratch virtq,
 * exactly as the driver's enable would, so nothing changes on refusal. */
static int read_queue(struct virtio_pci *vp, struct snap_reader *r, unsigned q, uint64_t features,
		      struct vq_snap *s)
{
	struct virtio_dev *d = vp->dev;

	s->size = snap_get_u16(r);
	s->vector = snap_get_u16(r);
	s->noff = snap_get_u16(r);
	s->enabled = snap_get_bool(r);
	s->desc = snap_get_u64(r);
	s->avail = snap_get_u64(r);
	s->used = snap_get_u64(r);
	s->last_avail = snap_get_u16(r);
	s->used_idx = snap_get_u16(r);
	s->signalled = snap_get_u16(r);
	s->event_idx = snap_get_bool(r);
	s->broken = snap_get_bool(r);
	if (snap_error(r)[0])
		return -1;
	if (!vector_ok(vp, s->vector))
		return snap_fail(r, "queue %u: MSI-X vector %u (the device has %u)", q, s->vector, vp->nvec);
	if (s->noff != q)
		return snap_fail(r, "queue %u: notify offset %u", q, s->noff);
	if (!s->enabled)
		return 0;
	if (s->size > d->queue_max)
		return snap_fail(r, "queue %u: size %u above the device's %u", q, s->size, d->queue_max);
	if (s->event_idx != ((features >> VIRTIO_F_EVENT_IDX) & 1))
		return snap_fail(r, "queue %u: event index does not match the features", q);
	struct virtq t = { .size = s->size, .desc_gpa = s->desc, .avail_gpa = s->avail, .used_gpa = s->used };
	if (virtq_enable(&t, d->mem) < 0)
		return snap_fail(r, "queue %u: size %u or rings 0x%llx/0x%llx/0x%llx outside guest RAM or misaligned",
				 q, s->size,
				 (unsigned long long)s->desc, (unsigned long long)s->avail,
				 (unsigned long long)s->used);
	return 0;
}

static int vdev_restore(struct vdev *v, struct snap_reader *r)
{
	struct virtio_pci *vp = v->impl;
	struct virtio_dev *d = vp->dev;
	struct msix_entry msix[NVEC];
	struct vq_snap qs[VIRTIO_MAX_QUEUES];

	if (snap_open_section(r, v->id, v->kind, VPCI_SNAP_VERSION, NULL) < 0)
		return -1;
	uint64_t was_offered = snap_get_u64(r), drv = snap_get_u64(r), feat = snap_get_u64(r);
	uint8_t status = snap_get_u8(r), gen = snap_get_u8(r), isr = snap_get_u8(r);
	uint32_t dfsel = snap_get_u32(r), gfsel = snap_get_u32(r);
	uint16_t qsel = snap_get_u16(r), cfgvec = snap_get_u16(r), nvec = snap_get_u16(r);
	if (snap_error(r)[0])
		return -1;
	/* Features the driver took must still be there: a device built with
	 * fewer (another backend, another config) is not this one. */
	if (feat & ~offered(d))
		return snap_fail(r, "negotiated features 0x%llx, this device offers 0x%llx (the snapshot's offered 0x%llx)",
				 (unsigned long long)feat, (unsigned long long)offered(d),
				 (unsigned long long)was_offered);
	if (status & ~S_KNOWN)
		return snap_fail(r, "device status 0x%02x", status);
	if ((status & VIRTIO_S_DRIVER_OK) && !(status & VIRTIO_S_FEATURES_OK))
		return snap_fail(r, "device status 0x%02x: DRIVER_OK without FEATURES_OK", status);
	if ((status & VIRTIO_S_FEATURES_OK) && !(feat & VIRTIO_BIT(VIRTIO_F_VERSION_1)))
		return snap_fail(r, "FEATURES_OK without VERSION_1");
	if (isr & ~3u)
		return snap_fail(r, "ISR 0x%02x", isr);
	if (nvec != vp->nvec)
		return snap_fail(r, "%u MSI-X vectors, this device has %u", nvec, vp->nvec);
	if (!vector_ok(vp, cfgvec))
		return snap_fail(r, "config MSI-X vector %u (the device has %u)", cfgvec, vp->nvec);
	for (unsigned i = 0; i < nvec; i++) {
		msix[i].addr = snap_get_u64(r);
		msix[i].data = snap_get_u32(r);
		msix[i].ctrl = snap_get_u32(r);
		if (!snap_error(r)[0] && msix[i].ctrl > 1)
			return snap_fail(r, "MSI-X entry %u: control 0x%x", i, msix[i].ctrl);
	}
	uint64_t pba = snap_get_u64(r);
	uint16_t nq = snap_get_u16(r);
	if (snap_error(r)[0])
		return -1;
	if (pba >> nvec)
		return snap_fail(r, "MSI-X pending bits 0x%llx beyond %u vectors", (unsigned long long)pba, nvec);
	if (nq != d->num_queues)
		return snap_fail(r, "%u queues, this device has %u", nq, d->num_queues);
	for (unsigned q = 0; q < nq; q++)
		if (read_queue(vp, r, q, feat, &qs[q]) < 0)
			return -1;

	pthread_mutex_lock(&vp->lock);
	vp->driver_features = drv;
	d->features = feat;
	vp->generation = gen;
	vp->dfselect = dfsel;
	vp->gfselect = gfsel;
	vp->queue_sel = qsel;
	vp->config_vector = cfgvec;
	for (unsigned i = 0; i < nvec; i++) {
		vp->msix[i] = msix[i];
		/* Where the guest pointed each vector: the platform routes it. */
		if (vp->vec[i] && (msix[i].addr || msix[i].data))
			vp->plat.msi_set(vp->plat.ctx, vp->vec[i], msix[i].addr, msix[i].data);
	}
	vp->pba = pba;
	for (unsigned q = 0; q < nq; q++) {
		struct virtq *vq = &d->vq[q];
		const struct vq_snap *s = &qs[q];
		virtq_reset(vq);
		vp->queue_size[q] = s->size;
		vp->queue_vector[q] = s->vector;
		vp->queue_enabled[q] = false;
		vq->desc_gpa = s->desc;
		vq->avail_gpa = s->avail;
		vq->used_gpa = s->used;
		if (!s->enabled)
			continue;
		/* The driver's enable (checked again: the same path), then
		 * the indices where the device left them. */
		enable_queue(vp, q);
		if (!vp->queue_enabled[q]) {
			pthread_mutex_unlock(&vp->lock);
			return snap_fail(r, "queue %u cannot be enabled", q);
		}
		vq->last_avail = s->last_avail;
		vq->used_idx = s->used_idx;
		vq->signalled = s->signalled;
		vq->broken = s->broken;
	}
	atomic_store(&d->status, status);
	vp->isr = isr;
	set_intx(vp);
	if (cfg16(vp, CAP_MSIX + 2) & MSIX_ENABLE)
		flush_pending(vp);
	pthread_mutex_unlock(&vp->lock);

	if (d->ops->restore && d->ops->restore(d, r) < 0)
		return -1;
	if (snap_error(r)[0])
		return -1;
	if (snap_left(r))
		return snap_fail(r, "%zu bytes the device does not read", snap_left(r));
	/* A running device starts its backends as at DRIVER_OK, and looks at
	 * its queues once; the indices stay as restored. */
	if ((status & VIRTIO_S_DRIVER_OK) && !(status & VIRTIO_S_DEVICE_NEEDS_RESET))
		do_activate(vp); /* here: the event loop is not running, or paused */
	return 0;
}

const struct vdev_ops virtio_pci_vdev_ops = {
	.quiesce = vdev_quiesce,
	.resume = vdev_resume,
	.reset = vdev_reset,
	.save = vdev_save,
	.restore = vdev_restore,
};
