/* The 8254 model (i8254.h). A channel remembers when its count was loaded
 * (or its gate rose); everything else follows from the time elapsed. */
#include "devices/i8254.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { RW_LATCH, RW_LSB, RW_MSB, RW_WORD };

struct chan {
	uint8_t mode, rw;
	uint32_t reload;      /* 1..65536 */
	uint64_t start_ns;
	bool loaded, gate;
	bool write_msb_next, read_msb_next;
	bool latched;
	uint16_t latch;
	bool status_latched;
	uint8_t status;
	uint16_t write_lsb;
	uint64_t fired;       /* channel 0: periods already signalled */
};

struct i8254 {
	pthread_mutex_t lock;
	struct irq_line irq0;
	struct vclock clk;
	struct chan c[3];
	uint8_t port61;
	bool refresh;
};

static uint64_t now(const struct i8254 *p)
{
	return p->clk.mono_ns ? p->clk.mono_ns(p->clk.ctx) : 0;
}

struct i8254 *i8254_new(struct irq_line irq0, const struct vclock *clk)
{
	struct i8254 *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	p->irq0 = irq0;
	if (clk)
		p->clk = *clk;
	for (int i = 0; i < 3; i++) {
		p->c[i].gate = i != 2; /* channels 0 and 1 are gated on; 2 by port 0x61 */
		p->c[i].rw = RW_WORD;
		p->c[i].reload = 65536;
	}
	return p;
}

void i8254_free(struct i8254 *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static uint64_t ticks(const struct chan *c, uint64_t t)
{
	if (!c->loaded || t < c->start_ns)
		return 0;
	uint64_t d = t - c->start_ns;
	/* d * HZ / 1e9 without overflow for the next ~400 years of uptime */
	return (d / 1000000000ull) * I8254_HZ + (d % 1000000000ull) * I8254_HZ / 1000000000ull;
}

static bool periodic(const struct chan *c)
{
	return c->mode == 2 || c->mode == 3;
}

static uint16_t count_at(const struct chan *c, uint64_t t)
{
	if (!c->loaded)
		return 0;
	uint64_t k = ticks(c, t);
	if (periodic(c))
		return (uint16_t)(c->reload - k % c->reload);
	return (uint16_t)((uint64_t)c->reload - k); /* wraps past 0, as the chip does */
}

static bool out_at(const struct chan *c, uint64_t t)
{
	if (!c->loaded)
		return c->mode != 0;
	uint64_t k = ticks(c, t);
	switch (c->mode) {
	case 2: return k % c->reload != c->reload - 1;
	case 3: return k % c->reload < (c->reload + 1) / 2;
	default: return k >= c->reload;
	}
}

static uint64_t ns_of_ticks(uint64_t k)
{
	return (k / I8254_HZ) * 1000000000ull + (k % I8254_HZ) * 1000000000ull / I8254_HZ;
}

uint64_t i8254_next_ns(struct i8254 *p)
{
	pthread_mutex_lock(&p->lock);
	struct chan *c = &p->c[0];
	uint64_t r = I8254_NONE;
	if (c->loaded && c->gate) {
		if (periodic(c))
			r = c->start_ns + ns_of_ticks((c->fired + 1) * c->reload);
		else if (!c->fired)
			r = c->start_ns + ns_of_ticks(c->reload);
	}
	pthread_mutex_unlock(&p->lock);
	return r;
}

void i8254_poll(struct i8254 *p)
{
	pthread_mutex_lock(&p->lock);
	struct chan *c = &p->c[0];
	bool fire = false;
	if (c->loaded && c->gate) {
		uint64_t k = ticks(c, now(p)), periods = k / c->reload;
		if (periodic(c) ? periods > c->fired : (periods && !c->fired)) {
			c->fired = periodic(c) ? periods : 1;
			fire = true;
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (fire) {
		irq_set(&p->irq0, 1);
		irq_set(&p->irq0, 0);
	}
}

static void load(struct chan *c, uint32_t v, uint64_t t)
{
	c->reload = v ? v : 65536;
	c->start_ns = t;
	c->loaded = true;
	c->fired = 0;
}

static void control(struct i8254 *p, uint8_t v, uint64_t t)
{
	unsigned sel = v >> 6;
	if (sel == 3) { /* read-back: bit 5 clear latches counts, bit 4 clear status */
		for (int i = 0; i < 3; i++) {
			if (!(v & (2u << i)))
				continue;
			struct chan *c = &p->c[i];
			if (!(v & 0x20) && !c->latched) {
				c->latch = count_at(c, t);
				c->latched = true;
			}
			if (!(v & 0x10) && !c->status_latched) {
				c->status = (uint8_t)((out_at(c, t) ? 0x80 : 0) | (c->loaded ? 0 : 0x40) | (c->rw << 4) |
						      (c->mode << 1));
				c->status_latched = true;
			}
		}
		return;
	}
	struct chan *c = &p->c[sel];
	unsigned rw = (v >> 4) & 3;
	if (rw == RW_LATCH) {
		if (!c->latched) {
			c->latch = count_at(c, t);
			c->latched = true;
			c->read_msb_next = false;
		}
		return;
	}
	c->rw = (uint8_t)rw;
	c->mode = (v >> 1) & 7;
	if (c->mode > 5)
		c->mode -= 4; /* 6 and 7 are 2 and 3 */
	c->loaded = false; /* a new mode waits for its count */
	c->write_msb_next = c->read_msb_next = false;
	c->latched = c->status_latched = false;
}

static void write_count(struct chan *c, uint8_t v, uint64_t t)
{
	switch (c->rw) {
	case RW_LSB: load(c, v, t); break;
	case RW_MSB: load(c, (uint32_t)v << 8, t); break;
	default:
		if (!c->write_msb_next) {
			c->write_lsb = v;
			c->write_msb_next = true;
			if (c->mode == 0)
				c->loaded = false; /* mode 0 stops counting at the first byte */
		} else {
			load(c, c->write_lsb | (uint32_t)v << 8, t);
			c->write_msb_next = false;
		}
		break;
	}
}

static uint8_t read_count(struct chan *c, uint64_t t)
{
	if (c->status_latched) {
		c->status_latched = false;
		return c->status;
	}
	uint16_t v = c->latched ? c->latch : count_at(c, t);
	uint8_t b;
	switch (c->rw) {
	case RW_LSB: b = (uint8_t)v; c->latched = false; break;
	case RW_MSB: b = (uint8_t)(v >> 8); c->latched = false; break;
	default:
		b = c->read_msb_next ? (uint8_t)(v >> 8) : (uint8_t)v;
		if (c->read_msb_next)
			c->latched = false;
		c->read_msb_next = !c->read_msb_next;
		break;
	}
	return b;
}

void i8254_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8254 *p = dev;
	if (offset > 3 || len != 1) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&p->lock);
	uint64_t t = now(p);
	if (is_write) {
		if (offset == 3)
			control(p, data[0], t);
		else
			write_count(&p->c[offset], data[0], t);
	} else {
		data[0] = offset == 3 ? 0xff : read_count(&p->c[offset], t);
	}
	pthread_mutex_unlock(&p->lock);
}

void i8254_port61_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8254 *p = dev;
	if (offset != 0 || len != 1) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&p->lock);
	uint64_t t = now(p);
	struct chan *c2 = &p->c[2];
	if (is_write) {
		bool gate = data[0] & 1;
		if (gate && !c2->gate && c2->loaded)
			c2->start_ns = t; /* a rising gate restarts the count */
		c2->gate = gate;
		p->port61 = data[0] & 3;
	} else {
		p->refresh = !p->refresh;
		bool out = c2->gate ? out_at(c2, t) : false;
		data[0] = (uint8_t)(p->port61 | (p->refresh ? 0x10 : 0) | (out ? 0x20 : 0));
	}
	pthread_mutex_unlock(&p->lock);
}
