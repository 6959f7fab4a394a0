/* i8042 + ps2_kbd: Linux's probe sequence byte by byte (drivers/input/serio/
 * i8042.c, then atkbd.c), Ctrl+Alt+Del as the guest reads it, the reset
 * line, and hostile byte streams. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "devices/i8042.h"
#include "devices/ps2_kbd.h"

_Static_assert(IRQ_KBD == 1, "the keyboard is ISA IRQ 1");

#define DATA 0
#define CMD  1

struct rec {
	int stops;
	enum vm_stop last;
	int pulses;  /* rising edges on the line */
	int level;   /* current level */
	int bad_gsi; /* set() calls for any other line */
};

static struct rec rec;

static void rec_stop(void *ctx, enum vm_stop why)
{
	(void)ctx;
	rec.stops++;
	rec.last = why;
}

static void rec_irq(void *ctx, uint32_t gsi, int level)
{
	(void)ctx;
	if (gsi != IRQ_KBD)
		rec.bad_gsi++;
	if (level && !rec.level)
		rec.pulses++;
	rec.level = level;
}

static struct i8042 *kbd_new(void)
{
	memset(&rec, 0, sizeof(rec));
	rec.last = VM_STOP_NONE;
	struct i8042 *k =
	    i8042_new((struct vmctl){.stop = rec_stop}, (struct irq_line){.set = rec_irq, .gsi = IRQ_KBD});
	assert_non_null(k);
	return k;
}

static void out(struct i8042 *k, int port, uint8_t v)
{
	(port == CMD ? i8042_cmd_io : i8042_data_io)(k, 0, &v, 1, true);
}

static uint8_t in(struct i8042 *k, int port)
{
	uint8_t v = 0x5a;

	(port == CMD ? i8042_cmd_io : i8042_data_io)(k, 0, &v, 1, false);
	return v;
}

/* Reads exactly `n` bytes the way Linux does (status, then data) and checks
 * that the output buffer is empty afterwards. */
static void expect(struct i8042 *k, const uint8_t *want, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t s = in(k, CMD);
		assert_true(s & I8042_STR_OBF);
		assert_false(s & I8042_STR_AUXDATA);
		assert_int_equal(in(k, DATA), want[i]);
	}
	assert_false(in(k, CMD) & I8042_STR_OBF);
	assert_int_equal(rec.level, 0); /* every raise was a pulse */
}

#define EXPECT(k, ...)                                                                                       \
	do {                                                                                                 \
		const uint8_t w_[] = {__VA_ARGS__};                                                          \
		expect(k, w_, sizeof(w_));                                                                   \
	} while (0)

static void expect_empty(struct i8042 *k)
{
	assert_false(in(k, CMD) & I8042_STR_OBF);
}

/* Controller command with one data byte (0x60, 0xd1...). */
static void cmd_arg(struct i8042 *k, uint8_t cmd, uint8_t arg)
{
	out(k, CMD, cmd);
	out(k, DATA, arg);
}

static void test_boot_state(void **state)
{
	struct i8042 *k = kbd_new();

	(void)state;
	assert_int_equal(in(k, CMD), I8042_STR_UNLOCK | I8042_STR_SYS);
	assert_int_equal(in(k, DATA), 0x00); /* empty buffer: nothing new, no crash */
	assert_int_equal(in(k, DATA), 0x00);
	out(k, CMD, 0x20);
	assert_int_equal(in(k, CMD), I8042_STR_UNLOCK | I8042_STR_SYS | I8042_STR_CMD | I8042_STR_OBF);
	EXPECT(k, I8042_CTR_BOOT);
	assert_true(I8042_CTR_BOOT & I8042_CTR_XLATE); /* so Linux keeps translation */
	assert_int_equal(in(k, DATA), I8042_CTR_BOOT); /* empty again: last byte repeats */
	/* Wider reads: the byte, then all-ones. */
	uint8_t d[4] = {0};
	i8042_cmd_io(k, 0, d, 4, false);
	assert_memory_equal(d, "\x1c\xff\xff\xff", 4); /* + CMD: last write was a command */
	i8042_cmd_io(k, 0, d, 0, false);
	assert_int_equal(rec.stops, 0);
	assert_int_equal(rec.bad_gsi, 0);
	i8042_free(k);
}

/* i8042_platform_init, i8042_controller_check/selftest/init, then the aux
 * probe as it runs without PNP (i8042.nopnp), then enabling the port. */
static void test_linux_controller_probe(void **state)
{
	struct i8042 *k = kbd_new();

	(void)state;
	cmd_arg(k, 0xd1, 0xdf); /* A20 on via the output port: no reset */
	out(k, CMD, 0xff);	/* "null command for SMM firmware": pulses nothing */
	assert_int_equal(rec.stops, 0);
	expect_empty(k); /* i8042_flush */

	out(k, CMD, 0xaa);
	EXPECT(k, 0x55);

	/* Two equal CTR reads, then CTR |= KBDDIS, &= ~KBDINT written back. */
	out(k, CMD, 0x20);
	EXPECT(k, 0x65);
	out(k, CMD, 0x20);
	EXPECT(k, 0x65);
	assert_true(in(k, CMD) & I8042_STR_UNLOCK); /* no "Keylock active" warning */
	cmd_arg(k, 0x60, 0x74);
	assert_false(in(k, CMD) & I8042_STR_CMD); /* data write */
	int pulses = rec.pulses;
	out(k, CMD, 0x20);
	EXPECT(k, 0x74);
	assert_int_equal(rec.pulses, pulses); /* interrupt now disabled */

	/* i8042_check_aux: loopback unanswered, interface test says broken. */
	cmd_arg(k, 0xd3, 0x5a);
	expect_empty(k);
	out(k, CMD, 0xa9);
	EXPECT(k, 0x02); /* not 0x00/0xfa/0xff: Linux gives up on aux */
	/* The bit-assignment test would fail too: 0xa8 leaves AUXDIS set. */
	out(k, CMD, 0xa7);
	out(k, CMD, 0xa8);
	out(k, CMD, 0x20);
	EXPECT(k, 0x74);

	out(k, CMD, 0xab);
	EXPECT(k, 0x00);
	out(k, CMD, 0xd0);
	EXPECT(k, 0xdf); /* the output port as written */

	/* i8042_enable_kbd_port: KBDINT on, KBDDIS off. */
	cmd_arg(k, 0x60, 0x65);
	pulses = rec.pulses;
	out(k, CMD, 0x20);
	EXPECT(k, 0x65);
	assert_int_equal(rec.pulses, pulses + 1);

	/* 0xad/0xae toggle the command byte's disable bit. */
	out(k, CMD, 0xad);
	out(k, CMD, 0x20);
	EXPECT(k, 0x75);
	out(k, CMD, 0xae);
	out(k, CMD, 0x20);
	EXPECT(k, 0x65);
	assert_int_equal(rec.stops, 0);
	i8042_free(k);
}

/* Sends a keyboard byte and checks the reply, one IRQ pulse per byte. */
static void kbd_cmd(struct i8042 *k, uint8_t b, const uint8_t *want, size_t n)
{
	int pulses = rec.pulses;

	out(k, DATA, b);
	expect(k, want, n);
	assert_int_equal(rec.pulses, pulses + (int)n);
}

#define KBD(k, b, ...)                                                                                       \
	do {                                                                                                 \
		const uint8_t w_[] = {__VA_ARGS__};                                                          \
		kbd_cmd(k, b, w_, sizeof(w_));                                                               \
	} while (0)

/* atkbd_connect: probe (get ID, deactivate), set LEDs and rate, activate;
 * a reset as atkbd.reset=1 does; all through the translating controller. */
static void test_atkbd_probe(void **state)
{
	struct i8042 *k = kbd_new();

	(void)state;
	KBD(k, 0xff, 0xfa, 0xaa);
	KBD(k, 0xf2, 0xfa, 0xab, 0x41); /* 0x83 as the translating 8042 passes it */
	KBD(k, 0xf5, 0xfa);
	KBD(k, 0xed, 0xfa);
	KBD(k, 0x07, 0xfa); /* LED argument */
	KBD(k, 0xf3, 0xfa);
	KBD(k, 0x00, 0xfa); /* typematic argument */
	KBD(k, 0xf4, 0xfa);
	KBD(k, 0xf6, 0xfa);
	KBD(k, 0xee, 0xee);
	KBD(k, 0x01, 0xfe); /* not a command */
	KBD(k, 0xfe, 0xfe); /* resend: the last byte sent */
	KBD(k, 0xf4, 0xfa);
	KBD(k, 0xfe, 0xfa);
	/* A command while an argument is awaited: taken as the command. */
	KBD(k, 0xed, 0xfa);
	KBD(k, 0xf2, 0xfa, 0xab, 0x41);
	KBD(k, 0x00, 0xfe); /* ...so this 0 is no LED argument */

	/* Without translation: raw set-2 bytes, and the set can be chosen. */
	cmd_arg(k, 0x60, 0x25);
	KBD(k, 0xf2, 0xfa, 0xab, 0x83);
	KBD(k, 0xf0, 0xfa);
	KBD(k, 0x00, 0xfa, 0x02);
	KBD(k, 0xf0, 0xfa);
	KBD(k, 0x03, 0xfa);
	KBD(k, 0xf0, 0xfa);
	KBD(k, 0x00, 0xfa, 0x03);
	KBD(k, 0xf8, 0xfa); /* set 3 "all keys make/break" */
	KBD(k, 0xf0, 0xfa);
	KBD(k, 0x07, 0xfe); /* no set 7 */
	KBD(k, 0xf0, 0xfa);
	KBD(k, 0x00, 0xfa, 0x03); /* unchanged */
	cmd_arg(k, 0x60, 0x65);
	KBD(k, 0xf0, 0xfa);
	KBD(k, 0x00, 0xfa, 0x3f); /* 3 through translation */
	KBD(k, 0xff, 0xfa, 0xaa); /* reset: back to set 2 */
	KBD(k, 0xf0, 0xfa);
	KBD(k, 0x00, 0xfa, 0x41);
	assert_int_equal(rec.stops, 0);
	i8042_free(k);
}

static void cad(struct i8042 *k, const uint8_t *want, size_t n)
{
	int pulses = rec.pulses;

	assert_int_equal(i8042_ctrl_alt_del(k), 0);
	expect(k, want, n);
	assert_int_equal(rec.pulses, pulses + (int)n);
}

#define CAD(k, ...)                                                                                          \
	do {                                                                                                 \
		const uint8_t w_[] = {__VA_ARGS__};                                                          \
		cad(k, w_, sizeof(w_));                                                                      \
	} while (0)

static void test_ctrl_alt_del(void **state)
{
	struct i8042 *k = kbd_new();

	(void)state;
	/* Translated (Linux's default): set-1 make Ctrl, Alt, Del; then breaks. */
	CAD(k, 0x1d, 0x38, 0xe0, 0x53, 0x9d, 0xb8, 0xe0, 0xd3);
	KBD(k, 0xfe, 0xd3); /* resend repeats the last key byte */

	/* Untranslated set 2, set 3 and set 1. */
	cmd_arg(k, 0x60, 0x25);
	CAD(k, 0x14, 0x11, 0xe0, 0x71, 0xf0, 0x14, 0xf0, 0x11, 0xe0, 0xf0, 0x71);
	KBD(k, 0xf0, 0xfa);
	KBD(k, 0x03, 0xfa);
	CAD(k, 0x11, 0x19, 0x64, 0xf0, 0x11, 0xf0, 0x19, 0xf0, 0x64);
	KBD(k, 0xf0, 0xfa);
	KBD(k, 0x01, 0xfa);
	CAD(k, 0x1d, 0x38, 0xe0, 0x53, 0x9d, 0xb8, 0xe0, 0xd3);
	cmd_arg(k, 0x60, 0x65);

	/* Refused, nothing queued, while the guest has the keyboard off. */
	KBD(k, 0xf5, 0xfa);
	assert_int_equal(i8042_ctrl_alt_del(k), -1);
	expect_empty(k);
	KBD(k, 0xf4, 0xfa);
	out(k, CMD, 0xad);
	assert_int_equal(i8042_ctrl_alt_del(k), -1);
	expect_empty(k);
	out(k, CMD, 0xae);
	CAD(k, 0x1d, 0x38, 0xe0, 0x53, 0x9d, 0xb8, 0xe0, 0xd3);

	/* Interrupt masked: queued silently, the edge comes when it is unmasked. */
	cmd_arg(k, 0x60, 0x64);
	int pulses = rec.pulses;
	assert_int_equal(i8042_ctrl_alt_del(k), 0);
	assert_int_equal(rec.pulses, pulses);
	cmd_arg(k, 0x60, 0x65);
	assert_int_equal(rec.pulses, pulses + 1);
	EXPECT(k, 0x1d, 0x38, 0xe0, 0x53, 0x9d, 0xb8, 0xe0, 0xd3);

	/* A guest that never reads: the queue fills, then all-or-nothing. */
	assert_int_equal(i8042_ctrl_alt_del(k), 0);
	assert_int_equal(i8042_ctrl_alt_del(k), 0);
	assert_int_equal(i8042_ctrl_alt_del(k), -1);
	EXPECT(k, 0x1d, 0x38, 0xe0, 0x53, 0x9d, 0xb8, 0xe0, 0xd3, 0x1d, 0x38, 0xe0, 0x53, 0x9d, 0xb8, 0xe0,
	       0xd3);
	assert_int_equal(rec.stops, 0);
	i8042_free(k);
}

static void test_reset_line(void **state)
{
	struct i8042 *k = kbd_new();

	(void)state;
	out(k, DATA, 0xfe); /* on the data port it is the keyboard's resend */
	assert_int_equal(rec.stops, 0);
	out(k, CMD, 0xfe);
	assert_int_equal(rec.stops, 1);
	assert_int_equal(rec.last, VM_STOP_RESET);
	out(k, CMD, 0xf0); /* pulses every line, reset included */
	assert_int_equal(rec.stops, 2);
	out(k, CMD, 0xf1); /* bit 0 set: reset not pulsed */
	out(k, CMD, 0xff);
	assert_int_equal(rec.stops, 2);
	cmd_arg(k, 0xd1, 0x03);
	assert_int_equal(rec.stops, 2);
	cmd_arg(k, 0xd1, 0x02); /* bit 0 low: reset */
	assert_int_equal(rec.stops, 3);
	assert_int_equal(rec.last, VM_STOP_RESET);
	out(k, CMD, 0xd1);
	out(k, CMD, 0xae); /* a new command cancels the pending argument */
	out(k, DATA, 0x00);
	assert_int_equal(rec.stops, 3);
	/* Zero-length and offset writes do nothing. */
	uint8_t d[2] = {0xfe, 0xfe};
	i8042_cmd_io(k, 0, d, 0, true);
	i8042_cmd_io(k, 1, d, 1, true);
	assert_int_equal(rec.stops, 3);
	i8042_free(k);
}

static void test_queue_bounds(void **state)
{
	struct i8042 *k = kbd_new();

	(void)state;
	for (int i = 0; i < 40; i++)
		cmd_arg(k, 0xd2, (uint8_t)i); /* "as if from the keyboard" */
	for (int i = 0; i < I8042_QUEUE_LEN; i++) {
		assert_true(in(k, CMD) & I8042_STR_OBF);
		assert_int_equal(in(k, DATA), i);
	}
	expect_empty(k);
	/* Replies that do not fit are dropped whole. */
	for (int i = 0; i < 6; i++)
		out(k, DATA, 0xf2);
	/* five fit (15 bytes), the sixth did not */
	EXPECT(k, 0xfa, 0xab, 0x41, 0xfa, 0xab, 0x41, 0xfa, 0xab, 0x41, 0xfa, 0xab, 0x41, 0xfa, 0xab, 0x41);
	i8042_free(k);
}

/* xorshift: a fixed, reproducible byte stream. */
static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void test_hostile(void **state)
{
	struct i8042 *k = kbd_new();
	uint32_t seed = 0x8042;
	uint8_t buf[8];

	(void)state;
	for (int i = 0; i < 200000; i++) {
		uint32_t r = rnd(&seed);
		uint8_t b = (uint8_t)(r >> 8);
		uint32_t len = (r >> 16) % 5;

		memset(buf, b, sizeof(buf));
		switch (r & 7) {
		case 0:
		case 1:
			i8042_cmd_io(k, 0, buf, len, true);
			break;
		case 2:
		case 3:
			i8042_data_io(k, 0, buf, len, true);
			break;
		case 4:
			i8042_cmd_io(k, 0, buf, len, false);
			for (uint32_t j = 1; j < len; j++)
				assert_int_equal(buf[j], 0xff);
			if (len)
				assert_false(buf[0] & (I8042_STR_IBF | I8042_STR_AUXDATA));
			break;
		case 5:
			i8042_data_io(k, 0, buf, len, false);
			break;
		case 6:
			i8042_ctrl_alt_del(k);
			break;
		default:
			i8042_cmd_io(k, (r >> 24) % 3, buf, len, true);
			break;
		}
		assert_int_equal(rec.level, 0);
	}
	assert_true(rec.stops > 0); /* it did hit the reset line */
	assert_int_equal(rec.bad_gsi, 0);

	/* Still a keyboard: drain (never more than the queue holds), then the
	 * same recovery Linux's drivers do. */
	out(k, CMD, 0xae);
	int n = 0;
	while (in(k, CMD) & I8042_STR_OBF) {
		in(k, DATA);
		assert_true(++n <= I8042_QUEUE_LEN);
	}
	cmd_arg(k, 0x60, 0x65);
	KBD(k, 0xff, 0xfa, 0xaa);
	KBD(k, 0xf2, 0xfa, 0xab, 0x41);
	CAD(k, 0x1d, 0x38, 0xe0, 0x53, 0x9d, 0xb8, 0xe0, 0xd3);
	i8042_free(k);
}

/* The control thread types while a vCPU thread reads the port: no lost or
 * duplicated bytes beyond what the queue refuses, no crash (run it under
 * TSan/helgrind to check the locking). */
static struct i8042 *race_k;
static atomic_int race_done;

static void *race_reader(void *arg)
{
	unsigned long *got = arg;

	while (!atomic_load(&race_done)) {
		if (in(race_k, CMD) & I8042_STR_OBF) {
			in(race_k, DATA);
			(*got)++;
		}
	}
	return NULL;
}

static void test_threads(void **state)
{
	pthread_t t;
	unsigned long got = 0, sent = 0;

	(void)state;
	race_k = kbd_new();
	assert_int_equal(pthread_create(&t, NULL, race_reader, &got), 0);
	for (int i = 0; i < 20000; i++)
		if (i8042_ctrl_alt_del(race_k) == 0)
			sent += 8;
	while (in(race_k, CMD) & I8042_STR_OBF)
		; /* the reader drains the rest */
	atomic_store(&race_done, 1);
	pthread_join(t, NULL);
	assert_true(sent > 0);
	assert_int_equal(got, sent);
	i8042_free(race_k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_boot_state),	cmocka_unit_test(test_linux_controller_probe),
	    cmocka_unit_test(test_atkbd_probe), cmocka_unit_test(test_ctrl_alt_del),
	    cmocka_unit_test(test_reset_line),	cmocka_unit_test(test_queue_bounds),
	    cmocka_unit_test(test_hostile),	cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
