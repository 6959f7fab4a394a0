/* The I/O APIC model (ioapic.h): registers 0 (ID), 1 (version), 2
 * (arbitration), 0x10 + 2n / 0x11 + 2n (pin n's redirection entry). */
#include "devices/ioapic.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RTE_MASKED     (1ull << 16)
#define RTE_LEVEL      (1ull << 15)
#define RTE_REMOTE_IRR (1ull << 14)
#define RTE_LOGICAL    (1ull << 11)
#define RTE_RO         (RTE_REMOTE_IRR | (1ull << 12)) /* remote IRR, delivery status */

struct ioapic {
	pthread_mutex_t lock;
	ioapic_deliver_fn deliver;
	void *ctx;
	uint32_t sel, id;
	uint64_t rte[IOAPIC_PINS];
	bool level[IOAPIC_PINS];
};

struct ioapic *ioapic_new(ioapic_deliver_fn deliver, void *ctx)
{
	struct ioapic *io = calloc(1, sizeof(*io));
	if (!io)
		return NULL;
	pthread_mutex_init(&io->lock, NULL);
	io->deliver = deliver;
	io->ctx = ctx;
	for (unsigned i = 0; i < IOAPIC_PINS; i++)
		io->rte[i] = RTE_MASKED;
	return io;
}

void ioapic_free(struct ioapic *io)
{
	if (!io)
		return;
	pthread_mutex_destroy(&io->lock);
	free(io);
}

struct delivery {
	bool go, level, logical;
	uint8_t vector, dest;
};

/* Whether pin i fires now (the lock held); the delivery happens after. */
static struct delivery fire(struct ioapic *io, unsigned i)
{
	uint64_t r = io->rte[i];
	struct delivery d = { 0 };
	if (r & RTE_MASKED)
		return d;
	if (r & RTE_LEVEL) {
		if (r & RTE_REMOTE_IRR)
			return d;
		io->rte[i] |= RTE_REMOTE_IRR;
	}
	d = (struct delivery){ .go = true, .level = r & RTE_LEVEL, .logical = r & RTE_LOGICAL,
			       .vector = (uint8_t)r, .dest = (uint8_t)(r >> 56) };
	return d;
}

static void send(struct ioapic *io, const struct delivery *d)
{
	if (d->go && io->deliver)
		io->deliver(io->ctx, d->vector, d->level, d->dest, d->logical);
}

void ioapic_set_irq(struct ioapic *io, uint32_t pin, int level)
{
	if (pin >= IOAPIC_PINS)
		return;
	struct delivery d = { 0 };
	pthread_mutex_lock(&io->lock);
	bool was = io->level[pin], now = level != 0;
	io->level[pin] = now;
	if (now && ((io->rte[pin] & RTE_LEVEL) || !was))
		d = fire(io, pin);
	pthread_mutex_unlock(&io->lock);
	send(io, &d);
}

void ioapic_eoi(struct ioapic *io, uint8_t vector)
{
	struct delivery d[IOAPIC_PINS];
	unsigned n = 0;
	pthread_mutex_lock(&io->lock);
	for (unsigned i = 0; i < IOAPIC_PINS; i++) {
		if ((uint8_t)io->rte[i] != vector || !(io->rte[i] & RTE_REMOTE_IRR))
			continue;
		io->rte[i] &= ~RTE_REMOTE_IRR;
		if (io->level[i])
			d[n++] = fire(io, i);
	}
	pthread_mutex_unlock(&io->lock);
	for (unsigned i = 0; i < n; i++)
		send(io, &d[i]);
}

static uint32_t read_reg(struct ioapic *io, uint32_t r)
{
	switch (r) {
	case 0: return io->id << 24;
	case 1: return 0x11 | ((IOAPIC_PINS - 1u) << 16); /* version 0x11, 24 entries */
	case 2: return io->id << 24;
	default: break;
	}
	if (r >= 0x10 && r < 0x10 + 2 * IOAPIC_PINS) {
		uint64_t e = io->rte[(r - 0x10) / 2];
		return (r & 1) ? (uint32_t)(e >> 32) : (uint32_t)e;
	}
	return 0xffffffffu;
}

/* Returns the pin whose entry changed, or -1. */
static int write_reg(struct ioapic *io, uint32_t r, uint32_t v)
{
	if (r == 0) {
		io->id = (v >> 24) & 0xf;
		return -1;
	}
	if (r < 0x10 || r >= 0x10 + 2 * IOAPIC_PINS)
		return -1;
	unsigned i = (r - 0x10) / 2;
	uint64_t e = io->rte[i];
	if (r & 1)
		e = (e & 0xffffffffull) | ((uint64_t)v << 32);
	else
		e = (e & 0xffffffff00000000ull) | (e & RTE_RO) | (v & ~(uint32_t)RTE_RO);
	if (!(e & RTE_LEVEL))
		e &= ~RTE_REMOTE_IRR;
	io->rte[i] = e;
	return (int)i;
}

void ioapic_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct ioapic *io = dev;
	uint32_t v = 0;
	if (len != 4 || (offset != 0 && offset != 0x10)) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	struct delivery d = { 0 };
	pthread_mutex_lock(&io->lock);
	if (!is_write) {
		v = offset == 0 ? io->sel : read_reg(io, io->sel);
		pthread_mutex_unlock(&io->lock);
		memcpy(data, &v, 4);
		return;
	}
	memcpy(&v, data, 4);
	if (offset == 0) {
		io->sel = v & 0xff;
	} else {
		int pin = write_reg(io, io->sel, v);
		/* unmasking a level pin that is still asserted delivers it */
		if (pin >= 0 && io->level[pin] && (io->rte[pin] & RTE_LEVEL))
			d = fire(io, (unsigned)pin);
	}
	pthread_mutex_unlock(&io->lock);
	send(io, &d);
}
