/* The interrupt controller models a backend without an in-kernel irqchip
 * uses (devices/lapic, ioapic, i8259, i8254), on a clock the test moves:
 * LAPIC priority, EOI and its timer in all three modes; the IOAPIC's edge
 * and level pins with remote IRR; the PIC pair's init, masks, cascade and
 * EOI; the PIT's counts, IRQ 0 and channel 2's OUT on port 0x61. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "devices/i8254.h"
#include "devices/i8259.h"
#include "devices/ioapic.h"
#include "devices/lapic.h"

static uint64_t t_ns;
static uint64_t fake_now(void *ctx)
{
	(void)ctx;
	return t_ns;
}
static const struct vclock clk = { .mono_ns = fake_now };

static void w32(void *dev, void (*io)(void *, uint64_t, uint8_t *, uint32_t, bool), uint64_t off, uint32_t v)
{
	io(dev, off, (uint8_t *)&v, 4, true);
}
static uint32_t r32(void *dev, void (*io)(void *, uint64_t, uint8_t *, uint32_t, bool), uint64_t off)
{
	uint32_t v = 0;
	io(dev, off, (uint8_t *)&v, 4, false);
	return v;
}
static void w8(void *dev, void (*io)(void *, uint64_t, uint8_t *, uint32_t, bool), uint64_t off, uint8_t v)
{
	io(dev, off, &v, 1, true);
}
static uint8_t r8(void *dev, void (*io)(void *, uint64_t, uint8_t *, uint32_t, bool), uint64_t off)
{
	uint8_t v = 0;
	io(dev, off, &v, 1, false);
	return v;
}

static int eois[8], neoi;
static void on_eoi(void *ctx, uint8_t v)
{
	(void)ctx;
	if (neoi < 8)
		eois[neoi++] = v;
}

static void test_lapic_priority(void **state)
{
	(void)state;
	neoi = 0;
	struct lapic *l = lapic_new(0, &clk, on_eoi, NULL);
	assert_non_null(l);
	w32(l, lapic_io, 0xf0, 0x1ff); /* enable */
	assert_int_equal(lapic_pending(l), -1);
	lapic_accept(l, 0x31, false);
	lapic_accept(l, 0x52, true);
	assert_int_equal(lapic_pending(l), 0x52);
	lapic_ack(l, 0x52);
	/* 0x31's class is below the in-service 0x52's: held */
	assert_int_equal(lapic_pending(l), -1);
	assert_int_equal(r32(l, lapic_io, 0xa0), 0x50); /* PPR */
	w32(l, lapic_io, 0xb0, 0);                       /* EOI */
	assert_int_equal(neoi, 1);
	assert_int_equal(eois[0], 0x52); /* level-triggered: reported */
	assert_int_equal(lapic_pending(l), 0x31);
	lapic_ack(l, 0x31);
	w32(l, lapic_io, 0xb0, 0);
	assert_int_equal(neoi, 1); /* edge: not reported */
	/* TPR masks a class */
	w32(l, lapic_io, 0x80, 0x40);
	lapic_accept(l, 0x45, false);
	assert_int_equal(lapic_pending(l), -1);
	w32(l, lapic_io, 0x80, 0x30);
	assert_int_equal(lapic_pending(l), 0x45);
	/* illegal vectors and odd accesses */
	lapic_accept(l, 3, false);
	assert_int_equal(lapic_pending(l), 0x45);
	uint8_t b = 0x77;
	lapic_io(l, 0x21, &b, 1, false);
	assert_int_equal(b, 0);
	/* a self IPI */
	lapic_ack(l, 0x45);
	w32(l, lapic_io, 0xb0, 0);
	w32(l, lapic_io, 0x300, (1u << 18) | 0xe0);
	assert_int_equal(lapic_pending(l), 0xe0);
	lapic_free(l);
}

static void test_lapic_timer(void **state)
{
	(void)state;
	t_ns = 1000;
	struct lapic *l = lapic_new(0, &clk, NULL, NULL);
	w32(l, lapic_io, 0xf0, 0x1ff);
	w32(l, lapic_io, 0x3e0, 0xb);         /* divide by 1 */
	w32(l, lapic_io, 0x320, 0x40);        /* one-shot, vector 0x40 */
	w32(l, lapic_io, 0x380, 500);
	assert_int_equal(lapic_timer_next_ns(l), 1500);
	t_ns = 1200;
	assert_int_equal(r32(l, lapic_io, 0x390), 300);
	assert_int_equal(lapic_pending(l), -1);
	t_ns = 1500;
	assert_int_equal(lapic_pending(l), 0x40);
	lapic_ack(l, 0x40);
	w32(l, lapic_io, 0xb0, 0);
	assert_int_equal(lapic_timer_next_ns(l), LAPIC_NONE);
	assert_int_equal(r32(l, lapic_io, 0x390), 0);
	/* periodic, divide by 2: every 200 ns; late polls fire once */
	w32(l, lapic_io, 0x3e0, 0x0);
	w32(l, lapic_io, 0x320, (1u << 17) | 0x41);
	w32(l, lapic_io, 0x380, 100);
	assert_int_equal(lapic_timer_next_ns(l), 1700);
	t_ns = 2150;
	assert_int_equal(lapic_pending(l), 0x41);
	assert_int_equal(lapic_timer_next_ns(l), 2300);
	assert_int_equal(r32(l, lapic_io, 0x390), 75);
	lapic_ack(l, 0x41);
	w32(l, lapic_io, 0xb0, 0);
	/* masked: counts but does not interrupt */
	w32(l, lapic_io, 0x320, (1u << 17) | (1u << 16) | 0x41);
	t_ns = 2400;
	assert_int_equal(lapic_pending(l), -1);
	/* TSC-deadline mode: TMICT ignored, the deadline fires once */
	w32(l, lapic_io, 0x320, (2u << 17) | 0x42);
	assert_int_equal(lapic_timer_next_ns(l), LAPIC_NONE);
	w32(l, lapic_io, 0x380, 5);
	assert_int_equal(lapic_timer_next_ns(l), LAPIC_NONE);
	lapic_set_deadline_ns(l, 3000);
	assert_int_equal(lapic_timer_next_ns(l), 3000);
	t_ns = 2999;
	assert_int_equal(lapic_pending(l), -1);
	t_ns = 3001;
	assert_int_equal(lapic_pending(l), 0x42);
	assert_int_equal(lapic_timer_next_ns(l), LAPIC_NONE);
	/* ExtINT: a disabled APIC passes the PIC through; enabled, LINT0 decides */
	assert_false(lapic_accepts_extint(l));
	w32(l, lapic_io, 0x350, 0x700);
	assert_true(lapic_accepts_extint(l));
	lapic_free(l);
}

static uint8_t got_vec[16];
static bool got_level[16];
static int ngot;
static void deliver(void *ctx, uint8_t vector, bool level, uint8_t dest, bool logical)
{
	(void)ctx;
	(void)dest;
	(void)logical;
	if (ngot < 16) {
		got_vec[ngot] = vector;
		got_level[ngot++] = level;
	}
}

static void rte(struct ioapic *io, unsigned pin, uint64_t v)
{
	w32(io, ioapic_io, 0, 0x10 + 2 * pin);
	w32(io, ioapic_io, 0x10, (uint32_t)v);
	w32(io, ioapic_io, 0, 0x11 + 2 * pin);
	w32(io, ioapic_io, 0x10, (uint32_t)(v >> 32));
}

static void test_ioapic(void **state)
{
	(void)state;
	ngot = 0;
	struct ioapic *io = ioapic_new(deliver, NULL);
	w32(io, ioapic_io, 0, 1);
	assert_int_equal(r32(io, ioapic_io, 0x10), 0x170011);
	/* masked at reset */
	ioapic_set_irq(io, 4, 1);
	ioapic_set_irq(io, 4, 0);
	assert_int_equal(ngot, 0);
	rte(io, 4, 0x34); /* edge, vector 0x34 */
	ioapic_set_irq(io, 4, 1);
	ioapic_set_irq(io, 4, 1); /* no new edge */
	assert_int_equal(ngot, 1);
	assert_int_equal(got_vec[0], 0x34);
	assert_false(got_level[0]);
	ioapic_set_irq(io, 4, 0);
	ioapic_set_irq(io, 4, 1);
	assert_int_equal(ngot, 2);
	/* level: remote IRR holds it until EOI; still asserted then: again */
	rte(io, 10, (1ull << 15) | 0x3a);
	ioapic_set_irq(io, 10, 1);
	ioapic_set_irq(io, 10, 1);
	assert_int_equal(ngot, 3);
	assert_true(got_level[2]);
	w32(io, ioapic_io, 0, 0x10 + 20);
	assert_true(r32(io, ioapic_io, 0x10) & (1u << 14));
	ioapic_eoi(io, 0x3a);
	assert_int_equal(ngot, 4);
	ioapic_set_irq(io, 10, 0);
	ioapic_eoi(io, 0x3a);
	assert_int_equal(ngot, 4);
	/* unmasking an asserted level pin delivers it */
	rte(io, 11, (1ull << 16) | (1ull << 15) | 0x3b);
	ioapic_set_irq(io, 11, 1);
	assert_int_equal(ngot, 4);
	rte(io, 11, (1ull << 15) | 0x3b);
	assert_int_equal(ngot, 5);
	assert_int_equal(got_vec[4], 0x3b);
	/* hostile: pins and registers out of range */
	ioapic_set_irq(io, 99, 1);
	w32(io, ioapic_io, 0, 0x99);
	w32(io, ioapic_io, 0x10, 0);
	assert_int_equal(r32(io, ioapic_io, 0x10), 0xffffffffu);
	ioapic_free(io);
}

static void pic_init(struct i8259 *p)
{
	w8(p, i8259_master_io, 0, 0x11);
	w8(p, i8259_master_io, 1, 0x20);
	w8(p, i8259_master_io, 1, 0x04);
	w8(p, i8259_master_io, 1, 0x01);
	w8(p, i8259_slave_io, 0, 0x11);
	w8(p, i8259_slave_io, 1, 0x28);
	w8(p, i8259_slave_io, 1, 0x02);
	w8(p, i8259_slave_io, 1, 0x01);
}

static void test_i8259(void **state)
{
	(void)state;
	struct i8259 *p = i8259_new();
	pic_init(p);
	assert_false(i8259_pending(p));
	i8259_set_irq(p, 4, 1);
	assert_true(i8259_pending(p));
	i8259_set_irq(p, 1, 1);
	assert_int_equal(i8259_ack(p), 0x21); /* IRQ 1 first */
	/* IRQ 4 waits while IRQ 1 is in service */
	assert_false(i8259_pending(p));
	w8(p, i8259_master_io, 0, 0x20); /* EOI */
	assert_int_equal(i8259_ack(p), 0x24);
	w8(p, i8259_master_io, 0, 0x20);
	assert_false(i8259_pending(p)); /* edge consumed */
	/* the slave through IRQ 2; masking */
	w8(p, i8259_master_io, 1, 0x00);
	w8(p, i8259_slave_io, 1, 0xfe); /* only IRQ 8 */
	i8259_set_irq(p, 9, 1);
	assert_false(i8259_pending(p));
	i8259_set_irq(p, 8, 1);
	assert_true(i8259_pending(p));
	assert_int_equal(i8259_ack(p), 0x28);
	w8(p, i8259_slave_io, 0, 0x20);
	w8(p, i8259_master_io, 0, 0x20);
	/* OCW3: read the ISR */
	i8259_set_irq(p, 3, 1);
	assert_int_equal(i8259_ack(p), 0x23);
	w8(p, i8259_master_io, 0, 0x0b);
	assert_int_equal(r8(p, i8259_master_io, 0), 0x08);
	w8(p, i8259_master_io, 0, 0x63); /* specific EOI for 3 */
	assert_int_equal(r8(p, i8259_master_io, 0), 0x00);
	/* level via ELCR: stays pending while high */
	w8(p, i8259_elcr_io, 1, 0x08); /* IRQ 11 */
	w8(p, i8259_slave_io, 1, 0x00);
	/* IRQ 9's edge came while masked: latched, it goes first (as KVM's) */
	assert_int_equal(i8259_ack(p), 0x29);
	w8(p, i8259_slave_io, 0, 0x20);
	w8(p, i8259_master_io, 0, 0x20);
	i8259_set_irq(p, 11, 1);
	assert_int_equal(i8259_ack(p), 0x2b);
	w8(p, i8259_slave_io, 0, 0x20);
	w8(p, i8259_master_io, 0, 0x20);
	assert_true(i8259_pending(p));
	i8259_set_irq(p, 11, 0);
	assert_false(i8259_pending(p));
	/* nothing pending: spurious 7 */
	assert_int_equal(i8259_ack(p), 0x27);
	i8259_free(p);
}

static int irq0_edges;
static void pit_irq(void *ctx, uint32_t gsi, int level)
{
	(void)ctx;
	(void)gsi;
	if (level)
		irq0_edges++;
}

static void test_i8254(void **state)
{
	(void)state;
	t_ns = 0;
	irq0_edges = 0;
	struct i8254 *p = i8254_new((struct irq_line){ .set = pit_irq }, &clk);
	assert_int_equal(i8254_next_ns(p), I8254_NONE);
	/* channel 0, mode 2, count 11932 (~10 ms) */
	w8(p, i8254_io, 3, 0x34);
	w8(p, i8254_io, 0, 11932 & 0xff);
	w8(p, i8254_io, 0, 11932 >> 8);
	uint64_t next = i8254_next_ns(p);
	assert_true(next > 9999000 && next < 10001000);
	t_ns = 5000000; /* half way: latch and read */
	w8(p, i8254_io, 3, 0x00);
	uint16_t v = r8(p, i8254_io, 0);
	v |= (uint16_t)(r8(p, i8254_io, 0) << 8);
	assert_true(v > 5900 && v < 6000);
	i8254_poll(p);
	assert_int_equal(irq0_edges, 0);
	t_ns = 35000000; /* three periods late: one interrupt */
	i8254_poll(p);
	assert_int_equal(irq0_edges, 1);
	i8254_poll(p);
	assert_int_equal(irq0_edges, 1);
	next = i8254_next_ns(p);
	assert_true(next > 39990000 && next < 40010000);
	/* mode 0 one-shot */
	w8(p, i8254_io, 3, 0x30);
	w8(p, i8254_io, 0, 0xff);
	w8(p, i8254_io, 0, 0x00);
	t_ns += 1000000;
	i8254_poll(p);
	i8254_poll(p);
	assert_int_equal(irq0_edges, 2);
	assert_int_equal(i8254_next_ns(p), I8254_NONE);
	/* channel 2 through port 0x61: OUT2 rises at terminal count, gate restarts */
	w8(p, i8254_port61_io, 0, 0x00);
	w8(p, i8254_io, 3, 0xb0); /* channel 2, word, mode 0 */
	w8(p, i8254_io, 2, 0xe8);
	w8(p, i8254_io, 2, 0x03); /* 1000 ticks ~ 838 us */
	w8(p, i8254_port61_io, 0, 0x01);
	assert_false(r8(p, i8254_port61_io, 0) & 0x20);
	t_ns += 800000;
	assert_false(r8(p, i8254_port61_io, 0) & 0x20);
	t_ns += 100000;
	assert_true(r8(p, i8254_port61_io, 0) & 0x20);
	assert_int_equal(r8(p, i8254_port61_io, 0) & 0x01, 1);
	/* read-back status of channel 2: OUT high, mode 0, word */
	w8(p, i8254_io, 3, 0xe8);
	assert_int_equal(r8(p, i8254_io, 2), 0x80 | 0x30);
	i8254_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lapic_priority), cmocka_unit_test(test_lapic_timer),
		cmocka_unit_test(test_ioapic),         cmocka_unit_test(test_i8259),
		cmocka_unit_test(test_i8254),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
