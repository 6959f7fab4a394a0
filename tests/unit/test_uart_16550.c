#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/uart_16550.h"
#include "host/clock.h"

#define THR 0
#define RBR 0
#define DLL 0
#define IER 1
#define DLM 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

struct rec {
	uint8_t out[256];
	size_t nout;
	int level;
	int nset; /* irq_set() calls */
};

static void rec_irq(void *ctx, uint32_t gsi, int level)
{
	struct rec *r = ctx;

	assert_int_equal(gsi, 4);
	assert_int_not_equal(level, r->level); /* only level changes */
	r->level = level;
	r->nset++;
}

static void rec_out(void *ctx, const uint8_t *buf, size_t len)
{
	struct rec *r = ctx;

	assert_true(r->nout + len <= sizeof(r->out));
	memcpy(r->out + r->nout, buf, len);
	r->nout += len;
}

struct fix {
	struct rec rec;
	struct uart_16550 *u;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct vclock clk = host_clock();

	assert_non_null(f);
	f->u = uart_16550_new((struct irq_line){ .set = rec_irq, .ctx = &f->rec, .gsi = 4 },
	                      (struct chardev_out){ .write = rec_out, .ctx = &f->rec }, &clk);
	assert_non_null(f->u);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	uart_16550_free(f->u);
	free(f);
	return 0;
}

static void wr(struct uart_16550 *u, uint64_t reg, uint8_t v)
{
	uart_16550_io(u, reg, &v, 1, true);
}

static uint8_t rd(struct uart_16550 *u, uint64_t reg)
{
	uint8_t v = 0x5a;

	uart_16550_io(u, reg, &v, 1, false);
	return v;
}

static void test_thr_output(void **state)
{
	struct fix *f = *state;

	wr(f->u, THR, 'h');
	wr(f->u, THR, 'i');
	assert_int_equal(f->rec.nout, 2);
	assert_memory_equal(f->rec.out, "hi", 2);
	assert_int_equal(rd(f->u, LSR), 0x60); /* THRE|TEMT, no data */
	assert_int_equal(f->rec.nset, 0);
}

static void test_dlab_divisor(void **state)
{
	struct fix *f = *state;

	wr(f->u, LCR, 0x83);
	wr(f->u, DLL, 0x01);
	wr(f->u, DLM, 0x02);
	assert_int_equal(rd(f->u, DLL), 0x01);
	assert_int_equal(rd(f->u, DLM), 0x02);
	assert_int_equal(rd(f->u, LCR), 0x83);
	assert_int_equal(f->rec.nout, 0); /* DLL writes are not output */
	wr(f->u, LCR, 0x03);
	assert_int_equal(rd(f->u, IER), 0x00); /* DLM did not leak into IER */
	wr(f->u, THR, 'x');
	assert_int_equal(f->rec.nout, 1);
	wr(f->u, LCR, 0x83);
	assert_int_equal(rd(f->u, DLL), 0x01);
	assert_int_equal(rd(f->u, DLM), 0x02);
}

static void test_rx_order(void **state)
{
	struct fix *f = *state;

	wr(f->u, FCR, 0x07);
	assert_int_equal(rd(f->u, LSR) & 0x01, 0);
	assert_int_equal(uart_16550_rx_push(f->u, (const uint8_t *)"abc", 3), 3);
	assert_int_equal(rd(f->u, LSR), 0x61);
	assert_int_equal(rd(f->u, RBR), 'a');
	assert_int_equal(rd(f->u, RBR), 'b');
	assert_int_equal(rd(f->u, LSR), 0x61);
	assert_int_equal(rd(f->u, RBR), 'c');
	assert_int_equal(rd(f->u, LSR), 0x60);
	assert_int_equal(rd(f->u, RBR), 0); /* empty FIFO */
}

static void test_rx_full(void **state)
{
	struct fix *f = *state;
	uint8_t buf[20];

	for (int i = 0; i < 20; i++)
		buf[i] = (uint8_t)('A' + i);
	/* Without FIFOs there is one holding register. */
	assert_int_equal(uart_16550_rx_push(f->u, buf, 3), 1);
	wr(f->u, FCR, 0x01); /* enabling FIFOs resets them */
	assert_int_equal(rd(f->u, LSR) & 0x01, 0);
	assert_int_equal(uart_16550_rx_push(f->u, buf, 20), 16);
	assert_int_equal(uart_16550_rx_push(f->u, buf + 16, 4), 0);
	assert_int_equal(rd(f->u, RBR), 'A');
	assert_int_equal(uart_16550_rx_push(f->u, buf + 16, 4), 1);
	for (int i = 1; i < 17; i++)
		assert_int_equal(rd(f->u, RBR), 'A' + i);
	assert_int_equal(rd(f->u, LSR) & 0x01, 0);
	assert_int_equal(rd(f->u, LSR) & 0x02, 0); /* host pushes never overrun */
}

static void test_rx_irq(void **state)
{
	struct fix *f = *state;

	wr(f->u, FCR, 0x01);
	wr(f->u, MCR, 0x08); /* OUT2 */
	wr(f->u, IER, 0x01);
	assert_int_equal(f->rec.nset, 0);
	assert_int_equal(rd(f->u, IIR), 0xc1);
	assert_int_equal(uart_16550_rx_push(f->u, (const uint8_t *)"xy", 2), 2);
	assert_int_equal(f->rec.level, 1);
	assert_int_equal(f->rec.nset, 1);
	assert_int_equal(rd(f->u, IIR), 0xc4);
	assert_int_equal(rd(f->u, IIR), 0xc4); /* reading IIR does not ack data */
	assert_int_equal(rd(f->u, RBR), 'x');
	assert_int_equal(f->rec.level, 1);
	assert_int_equal(rd(f->u, RBR), 'y');
	assert_int_equal(f->rec.level, 0);
	assert_int_equal(f->rec.nset, 2);
	assert_int_equal(rd(f->u, IIR), 0xc1);
}

static void test_out2_gates(void **state)
{
	struct fix *f = *state;

	wr(f->u, IER, 0x01);
	assert_int_equal(uart_16550_rx_push(f->u, (const uint8_t *)"x", 1), 1);
	assert_int_equal(f->rec.nset, 0);
	assert_int_equal(rd(f->u, IIR), 0x04); /* pending, but OUT2 is off */
	wr(f->u, MCR, 0x0b);
	assert_int_equal(f->rec.level, 1);
	wr(f->u, MCR, 0x03);
	assert_int_equal(f->rec.level, 0);
	wr(f->u, MCR, 0x0b);
	assert_int_equal(f->rec.level, 1);
	assert_int_equal(f->rec.nset, 3);
}

static void test_thre(void **state)
{
	struct fix *f = *state;

	wr(f->u, MCR, 0x08);
	wr(f->u, IER, 0x02);
	assert_int_equal(f->rec.level, 1);
	assert_int_equal(rd(f->u, IIR), 0x02);
	assert_int_equal(f->rec.level, 0); /* reading IIR acknowledged it */
	assert_int_equal(rd(f->u, IIR), 0x01);
	wr(f->u, IER, 0x02); /* no rising edge: stays quiet */
	assert_int_equal(rd(f->u, IIR), 0x01);
	wr(f->u, THR, 'a'); /* sent at once: THR empty again */
	assert_int_equal(f->rec.level, 1);
	assert_int_equal(rd(f->u, LSR), 0x60);
	wr(f->u, IER, 0x00);
	assert_int_equal(f->rec.level, 0);
	assert_int_equal(rd(f->u, IIR), 0x01);
	/* The 8250 driver's THRE test: toggling ETBEI re-arms THRE. */
	wr(f->u, IER, 0x02);
	assert_int_equal(rd(f->u, IIR), 0x02);
	wr(f->u, IER, 0x00);
	wr(f->u, IER, 0x02);
	assert_int_equal(rd(f->u, IIR), 0x02);
	assert_int_equal(f->rec.level, 0);
	/* Without ETBEI a THR write arms nothing. */
	wr(f->u, IER, 0x00);
	wr(f->u, THR, 'b');
	assert_int_equal(rd(f->u, IIR), 0x01);
	assert_int_equal(f->rec.level, 0);
	assert_memory_equal(f->rec.out, "ab", 2);
}

static void test_priority(void **state)
{
	struct fix *f = *state;

	wr(f->u, MCR, 0x18); /* loopback, OUT2 */
	wr(f->u, IER, 0x0f);
	assert_int_equal(f->rec.level, 1);
	/* Entering loopback dropped CTS and DSR: a modem status change,
	 * below THRE in priority. */
	assert_int_equal(rd(f->u, IIR), 0x02);
	assert_int_equal(rd(f->u, IIR), 0x00);
	assert_int_equal(rd(f->u, MSR), 0x80 | 0x03);
	assert_int_equal(rd(f->u, IIR), 0x01);
	assert_int_equal(f->rec.level, 0);
	wr(f->u, THR, 'a'); /* lands in RX; no FIFO: one byte holds */
	assert_int_equal(rd(f->u, IIR), 0x04);
	wr(f->u, THR, 'b'); /* overrun */
	assert_int_equal(rd(f->u, IIR), 0x06);
	assert_int_equal(rd(f->u, LSR), 0x63);
	assert_int_equal(rd(f->u, LSR), 0x61);
	assert_int_equal(rd(f->u, IIR), 0x04);
	assert_int_equal(rd(f->u, RBR), 'a');
	assert_int_equal(rd(f->u, IIR), 0x02);
	assert_int_equal(rd(f->u, IIR), 0x01);
	assert_int_equal(f->rec.level, 0);
	assert_int_equal(f->rec.nout, 0);
}

static void test_loopback(void **state)
{
	struct fix *f = *state;

	assert_int_equal(rd(f->u, MSR), 0xb0); /* DCD|DSR|CTS: a ready peer */
	wr(f->u, FCR, 0x01);
	wr(f->u, MCR, 0x1a); /* what the 8250 probe writes */
	assert_int_equal(rd(f->u, MSR) & 0xf0, 0x90);
	wr(f->u, MCR, 0x15); /* DTR, OUT1 -> DSR, RI */
	assert_int_equal(rd(f->u, MSR) & 0xf0, 0x60);
	wr(f->u, THR, 'z');
	wr(f->u, THR, 'q');
	assert_int_equal(f->rec.nout, 0);
	/* The line is disconnected: host input is taken and lost. */
	assert_int_equal(uart_16550_rx_push(f->u, (const uint8_t *)"hh", 2), 2);
	assert_int_equal(rd(f->u, RBR), 'z');
	assert_int_equal(rd(f->u, RBR), 'q');
	assert_int_equal(rd(f->u, LSR) & 0x01, 0);
	wr(f->u, MCR, 0x00);
	assert_int_equal(rd(f->u, MSR), 0xb0 | 0x0d); /* CTS, DCD changed; RI fell */
	assert_int_equal(rd(f->u, MSR), 0xb0);
	wr(f->u, THR, 'o');
	assert_int_equal(f->rec.nout, 1);
	assert_int_equal(f->rec.out[0], 'o');
}

static void test_8250_probe(void **state)
{
	struct fix *f = *state;

	wr(f->u, IER, 0x00);
	assert_int_equal(rd(f->u, IER), 0x00);
	wr(f->u, IER, 0xff);
	assert_int_equal(rd(f->u, IER), 0x0f); /* no XScale UUE bit */
	wr(f->u, IER, 0x00);
	wr(f->u, FCR, 0x01);
	assert_int_equal(rd(f->u, IIR) >> 6, 3); /* 16550A */
	wr(f->u, LCR, 0xbf); /* no EFR behind LCR=0xbf */
	assert_int_not_equal(rd(f->u, IIR), 0);
	wr(f->u, LCR, 0x00);
	wr(f->u, FCR, 0x00);
	assert_int_equal(rd(f->u, IIR), 0x01);
	wr(f->u, SCR, 0xa5);
	assert_int_equal(rd(f->u, SCR), 0xa5);
}

struct waiter {
	struct uart_16550 *u;
	int timeout_ms;
	bool result;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;

	w->result = uart_16550_rx_wait_room(w->u, w->timeout_ms);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_wait_room(void **state)
{
	struct fix *f = *state;
	uint8_t buf[16] = { 0 };

	assert_true(uart_16550_rx_wait_room(f->u, 0));
	wr(f->u, FCR, 0x01);
	assert_int_equal(uart_16550_rx_push(f->u, buf, 16), 16);
	assert_false(uart_16550_rx_wait_room(f->u, 0));
	double t0 = now_s();
	assert_false(uart_16550_rx_wait_room(f->u, 50));
	assert_true(now_s() - t0 >= 0.045);

	/* FCR clear wakes a waiter with a long timeout. */
	struct waiter w = { .u = f->u, .timeout_ms = 10000, .result = false };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
	nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000000L }, NULL);
	t0 = now_s();
	wr(f->u, FCR, 0x03);
	pthread_join(t, NULL);
	assert_true(w.result);
	assert_true(now_s() - t0 < 5.0);
	assert_int_equal(rd(f->u, LSR) & 0x01, 0);

	/* So does an RBR read, even with no limit. */
	assert_int_equal(uart_16550_rx_push(f->u, buf, 16), 16);
	w = (struct waiter){ .u = f->u, .timeout_ms = -1, .result = false };
	assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
	nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000000L }, NULL);
	rd(f->u, RBR);
	pthread_join(t, NULL);
	assert_true(w.result);
}

static void test_hostile(void **state)
{
	struct fix *f = *state;
	uint8_t d[8];

	/* Offsets past the 8 registers: reads all-ones, writes ignored. */
	memset(d, 0, sizeof(d));
	uart_16550_io(f->u, 8, d, 4, false);
	assert_memory_equal(d, "\xff\xff\xff\xff", 4);
	uart_16550_io(f->u, UINT64_MAX, d, 8, false);
	assert_memory_equal(d, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
	d[0] = 'X';
	uart_16550_io(f->u, 1000, d, 1, true);
	uart_16550_io(f->u, UINT64_MAX, d, 1, true);
	uart_16550_io(f->u, 0, d, 0, true); /* zero length: nothing */
	uart_16550_io(f->u, 0, d, 0, false);
	assert_int_equal(f->rec.nout, 0);

	/* A wide access is a byte access to its first byte. */
	memset(d, 0, sizeof(d));
	uart_16550_io(f->u, 5, d, 2, false);
	assert_int_equal(d[0], 0x60);
	assert_int_equal(d[1], 0xff);
	memcpy(d, "AB\0\0", 4);
	uart_16550_io(f->u, 0, d, 4, true);
	assert_int_equal(f->rec.nout, 1);
	assert_int_equal(f->rec.out[0], 'A');
	memcpy(d, "\x01\x02\x0f\x0f", 4);
	uart_16550_io(f->u, 1, d, 4, true);
	assert_int_equal(rd(f->u, IER), 0x01);

	/* Garbage everywhere, then the device still works. */
	for (unsigned reg = 0; reg < 8; reg++)
		for (unsigned v = 0; v < 256; v += 17) {
			if (reg == 3)
				continue;
			wr(f->u, reg, (uint8_t)v);
			rd(f->u, reg);
		}
	wr(f->u, LCR, 0x03);
	wr(f->u, MCR, 0x00);
	wr(f->u, FCR, 0x07);
	size_t before = f->rec.nout;
	wr(f->u, THR, '!');
	assert_int_equal(f->rec.nout, before + 1);
	assert_int_equal(uart_16550_rx_push(f->u, (const uint8_t *)"k", 1), 1);
	assert_int_equal(rd(f->u, RBR), 'k');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_thr_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dlab_divisor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_irq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out2_gates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thre, setup, teardown),
		cmocka_unit_test_setup_teardown(test_priority, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loopback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_8250_probe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_room, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
