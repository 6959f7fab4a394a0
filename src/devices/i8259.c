/* The 8259A pair (i8259.h). */
#include "devices/i8259.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct chip {
	uint8_t irr, isr, imr, base, elcr, level;
	uint8_t icw_step; /* 0: initialized; 2, 3, 4: expecting that ICW */
	bool icw4, single, auto_eoi, read_isr;
};

struct i8259 {
	pthread_mutex_t lock;
	struct chip c[2];
};

struct i8259 *i8259_new(void)
{
	struct i8259 *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	p->c[0].base = 0x08;
	p->c[1].base = 0x70;
	p->c[0].imr = p->c[1].imr = 0xff;
	return p;
}

void i8259_free(struct i8259 *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* The highest-priority request of `c` above what it has in service, or -1. */
static int chip_irq(const struct chip *c)
{
	uint8_t req = c->irr & ~c->imr;
	for (int i = 0; i < 8; i++) {
		if (c->isr & (1u << i))
			return -1; /* something of higher priority is in service */
		if (req & (1u << i))
			return i;
	}
	return -1;
}

/* The slave's INT drives the master's IRQ 2 (level). */
static void cascade(struct i8259 *p)
{
	struct chip *m = &p->c[0];
	if (chip_irq(&p->c[1]) >= 0)
		m->irr |= 1u << 2;
	else if (!(m->isr & (1u << 2)))
		m->irr &= ~(1u << 2);
}

static void set_line(struct chip *c, unsigned i, int level)
{
	uint8_t bit = (uint8_t)(1u << i);
	bool was = c->level & bit;
	if (level)
		c->level |= bit;
	else
		c->level &= ~bit;
	if (c->elcr & bit) {
		if (level)
			c->irr |= bit;
		else
			c->irr &= ~bit;
	} else if (level && !was) {
		c->irr |= bit;
	}
}

void i8259_set_irq(struct i8259 *p, unsigned irq, int level)
{
	if (irq >= 16 || irq == 2)
		return;
	pthread_mutex_lock(&p->lock);
	set_line(&p->c[irq / 8], irq % 8, level);
	cascade(p);
	pthread_mutex_unlock(&p->lock);
}

bool i8259_pending(struct i8259 *p)
{
	pthread_mutex_lock(&p->lock);
	bool r = chip_irq(&p->c[0]) >= 0;
	pthread_mutex_unlock(&p->lock);
	return r;
}

/* INTA on one chip: IRR → ISR (unless auto-EOI); edge requests are consumed. */
static void take(struct chip *c, int i)
{
	uint8_t bit = (uint8_t)(1u << i);
	if (!(c->elcr & bit))
		c->irr &= ~bit;
	if (!c->auto_eoi)
		c->isr |= bit;
}

uint8_t i8259_ack(struct i8259 *p)
{
	pthread_mutex_lock(&p->lock);
	struct chip *m = &p->c[0], *s = &p->c[1];
	int i = chip_irq(m);
	uint8_t v;
	if (i < 0) {
		v = m->base | 7; /* spurious */
	} else if (i == 2) {
		int j = chip_irq(s);
		take(m, 2);
		if (j < 0) {
			v = s->base | 7;
		} else {
			take(s, j);
			v = (uint8_t)(s->base | j);
		}
		cascade(p);
	} else {
		take(m, i);
		v = (uint8_t)(m->base | i);
	}
	pthread_mutex_unlock(&p->lock);
	return v;
}

static void write_port(struct i8259 *p, struct chip *c, unsigned port, uint8_t v)
{
	if (port == 0) {
		if (v & 0x10) { /* ICW1 */
			c->icw_step = 2;
			c->icw4 = v & 1;
			c->single = v & 2;
			c->imr = c->isr = c->irr = 0;
			c->auto_eoi = c->read_isr = false;
			/* an edge input must see a new rising edge after init */
			c->irr = c->level & c->elcr;
		} else if (v & 0x08) { /* OCW3 */
			if (v & 2)
				c->read_isr = v & 1;
		} else { /* OCW2 */
			unsigned cmd = v >> 5;
			if (cmd == 1) { /* non-specific EOI */
				for (int i = 0; i < 8; i++)
					if (c->isr & (1u << i)) {
						c->isr &= ~(1u << i);
						break;
					}
			} else if (cmd == 3) { /* specific EOI */
				c->isr &= ~(1u << (v & 7));
			}
		}
	} else {
		switch (c->icw_step) {
		case 2:
			c->base = v & 0xf8;
			c->icw_step = c->single ? (c->icw4 ? 4 : 0) : 3;
			break;
		case 3:
			c->icw_step = c->icw4 ? 4 : 0;
			break;
		case 4:
			c->auto_eoi = v & 2;
			c->icw_step = 0;
			break;
		default:
			c->imr = v; /* OCW1 */
			break;
		}
	}
	cascade(p);
}

static void chip_io(struct i8259 *p, unsigned which, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	if (offset > 1 || len != 1) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&p->lock);
	struct chip *c = &p->c[which];
	if (is_write)
		write_port(p, c, (unsigned)offset, data[0]);
	else
		data[0] = offset ? c->imr : c->read_isr ? c->isr : c->irr;
	pthread_mutex_unlock(&p->lock);
}

void i8259_master_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	chip_io(dev, 0, offset, data, len, is_write);
}

void i8259_slave_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	chip_io(dev, 1, offset, data, len, is_write);
}

void i8259_elcr_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8259 *p = dev;
	if (offset > 1 || len != 1) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	/* IRQs 0, 1, 2, 8 and 13 are always edge-triggered */
	static const uint8_t writable[2] = { 0xf8, 0xde };
	pthread_mutex_lock(&p->lock);
	if (is_write)
		p->c[offset].elcr = data[0] & writable[offset];
	else
		data[0] = p->c[offset].elcr;
	pthread_mutex_unlock(&p->lock);
}
