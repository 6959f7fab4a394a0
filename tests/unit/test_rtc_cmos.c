#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "devices/rtc_cmos.h"

static time_t fake_now;

static time_t fake_clock(void)
{
	return fake_now;
}

static time_t utc(int y, int mon, int d, int h, int min, int s)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mon - 1, .tm_mday = d,
	                 .tm_hour = h, .tm_min = min, .tm_sec = s };
	return timegm(&tm);
}

static int irq_calls;

static void count_irq(void *ctx, uint32_t gsi, int level)
{
	(void)ctx, (void)gsi, (void)level;
	irq_calls++;
}

static int setup(void **state)
{
	fake_now = utc(2024, 2, 29, 13, 45, 56); /* a Thursday */
	irq_calls = 0;
	*state = rtc_cmos_new_with_clock((struct irq_line){ .set = count_irq, .gsi = 8 }, fake_clock);
	assert_non_null(*state);
	return 0;
}

static int teardown(void **state)
{
	rtc_cmos_free(*state);
	return 0;
}

static void wr(struct rtc_cmos *r, uint8_t idx, uint8_t v)
{
	rtc_cmos_io(r, 0, &idx, 1, true);
	rtc_cmos_io(r, 1, &v, 1, true);
}

static uint8_t rd(struct rtc_cmos *r, uint8_t idx)
{
	uint8_t v = 0x5a;

	rtc_cmos_io(r, 0, &idx, 1, true);
	rtc_cmos_io(r, 1, &v, 1, false);
	return v;
}

static void test_defaults_bcd(void **state)
{
	struct rtc_cmos *r = *state;

	assert_int_equal(rd(r, 0x0a), 0x26);
	assert_int_equal(rd(r, 0x0b), 0x02);
	assert_int_equal(rd(r, 0x0d), 0x80);
	assert_int_equal(rd(r, 0x00), 0x56);
	assert_int_equal(rd(r, 0x02), 0x45);
	assert_int_equal(rd(r, 0x04), 0x13);
	assert_int_equal(rd(r, 0x06), 0x05); /* Sunday is 1 */
	assert_int_equal(rd(r, 0x07), 0x29);
	assert_int_equal(rd(r, 0x08), 0x02);
	assert_int_equal(rd(r, 0x09), 0x24);
	assert_int_equal(rd(r, 0x32), 0x20);
	fake_now += 3;
	assert_int_equal(rd(r, 0x00), 0x59);
	fake_now += 1;
	assert_int_equal(rd(r, 0x00), 0x00);
	assert_int_equal(rd(r, 0x02), 0x46);
	assert_int_equal(irq_calls, 0);
}

static void test_binary(void **state)
{
	struct rtc_cmos *r = *state;

	wr(r, 0x0b, 0x06);
	assert_int_equal(rd(r, 0x0b), 0x06);
	assert_int_equal(rd(r, 0x00), 56);
	assert_int_equal(rd(r, 0x02), 45);
	assert_int_equal(rd(r, 0x04), 13);
	assert_int_equal(rd(r, 0x07), 29);
	assert_int_equal(rd(r, 0x08), 2);
	assert_int_equal(rd(r, 0x09), 24);
	assert_int_equal(rd(r, 0x32), 20);
}

static void test_12h(void **state)
{
	struct rtc_cmos *r = *state;

	wr(r, 0x0b, 0x00); /* 12-hour BCD */
	assert_int_equal(rd(r, 0x04), 0x81);
	fake_now = utc(2024, 2, 29, 0, 30, 0);
	assert_int_equal(rd(r, 0x04), 0x12); /* 12 AM */
	fake_now = utc(2024, 2, 29, 12, 30, 0);
	assert_int_equal(rd(r, 0x04), 0x92); /* 12 PM */
	fake_now = utc(2024, 2, 29, 11, 0, 0);
	assert_int_equal(rd(r, 0x04), 0x11);
	wr(r, 0x0b, 0x04); /* 12-hour binary */
	fake_now = utc(2024, 2, 29, 23, 0, 0);
	assert_int_equal(rd(r, 0x04), 0x80 | 11);

	/* Setting 12 PM in 12-hour mode reads back as 12 in 24-hour mode. */
	wr(r, 0x0b, 0x80);
	wr(r, 0x04, 0x92);
	wr(r, 0x0b, 0x02);
	assert_int_equal(rd(r, 0x04), 0x12);
	wr(r, 0x0b, 0x80);
	wr(r, 0x04, 0x12); /* 12 AM */
	wr(r, 0x0b, 0x02);
	assert_int_equal(rd(r, 0x04), 0x00);
}

static void test_index_mask(void **state)
{
	struct rtc_cmos *r = *state;
	uint8_t v;

	wr(r, 0xff, 0x42); /* NMI bit masked: CMOS byte 0x7f */
	assert_int_equal(rd(r, 0x7f), 0x42);
	wr(r, 0x8e, 0x17);
	assert_int_equal(rd(r, 0x0e), 0x17);
	assert_int_equal(rd(r, 0x8e), 0x17);
	v = 0;
	rtc_cmos_io(r, 0, &v, 1, false); /* index port is write-only */
	assert_int_equal(v, 0xff);
}

static void test_ram(void **state)
{
	struct rtc_cmos *r = *state;

	for (unsigned i = 0x0e; i < 0x80; i++)
		if (i != 0x32)
			wr(r, (uint8_t)i, (uint8_t)(i ^ 0x5a));
	for (unsigned i = 0x0e; i < 0x80; i++)
		if (i != 0x32)
			assert_int_equal(rd(r, (uint8_t)i), i ^ 0x5a);
	/* Alarm bytes are plain RAM too. */
	wr(r, 0x01, 0x33);
	wr(r, 0x03, 0x44);
	wr(r, 0x05, 0x55);
	assert_int_equal(rd(r, 0x01), 0x33);
	assert_int_equal(rd(r, 0x03), 0x44);
	assert_int_equal(rd(r, 0x05), 0x55);
	/* UIP is never set; C and D ignore writes; C reads clear. */
	wr(r, 0x0a, 0xa6);
	assert_int_equal(rd(r, 0x0a), 0x26);
	wr(r, 0x0c, 0xf0);
	assert_int_equal(rd(r, 0x0c), 0x00);
	wr(r, 0x0d, 0x00);
	assert_int_equal(rd(r, 0x0d), 0x80);
}

/* What Linux's mc146818_set_time() does. */
static void test_set_time(void **state)
{
	struct rtc_cmos *r = *state;

	wr(r, 0x0b, 0x82);
	wr(r, 0x0a, 0x76); /* divider reset */
	wr(r, 0x09, 0x30);
	wr(r, 0x08, 0x01);
	wr(r, 0x07, 0x15);
	wr(r, 0x04, 0x08);
	wr(r, 0x02, 0x09);
	wr(r, 0x00, 0x10);
	fake_now += 100; /* frozen while SET */
	assert_int_equal(rd(r, 0x00), 0x10);
	assert_int_equal(rd(r, 0x09), 0x30);
	wr(r, 0x0b, 0x02);
	wr(r, 0x0a, 0x26);
	assert_int_equal(rd(r, 0x09), 0x30);
	assert_int_equal(rd(r, 0x32), 0x20); /* century kept */
	assert_int_equal(rd(r, 0x08), 0x01);
	assert_int_equal(rd(r, 0x07), 0x15);
	assert_int_equal(rd(r, 0x06), 0x03); /* 2030-01-15 is a Tuesday */
	assert_int_equal(rd(r, 0x04), 0x08);
	assert_int_equal(rd(r, 0x02), 0x09);
	assert_int_equal(rd(r, 0x00), 0x10);
	fake_now += 75; /* the set clock runs on with the host's */
	assert_int_equal(rd(r, 0x00), 0x25);
	assert_int_equal(rd(r, 0x02), 0x10);
	assert_int_equal(rd(r, 0x0a), 0x26);
}

static void test_set_field(void **state)
{
	struct rtc_cmos *r = *state;

	wr(r, 0x02, 0x00); /* minutes on the running clock */
	assert_int_equal(rd(r, 0x04), 0x13);
	assert_int_equal(rd(r, 0x02), 0x00);
	assert_int_equal(rd(r, 0x00), 0x56);
	fake_now += 10;
	assert_int_equal(rd(r, 0x00), 0x06);
	assert_int_equal(rd(r, 0x02), 0x01);
	wr(r, 0x0b, 0x06);
	wr(r, 0x32, 21); /* binary century */
	assert_int_equal(rd(r, 0x32), 21);
	assert_int_equal(rd(r, 0x09), 24);
	assert_int_equal(rd(r, 0x04), 13);
}

static void test_hostile(void **state)
{
	struct rtc_cmos *r = *state;
	uint8_t d[8];

	/* Garbage BCD in every time field, committed. */
	wr(r, 0x0b, 0x80);
	for (uint8_t i = 0; i < 10; i++)
		wr(r, i, 0xff);
	wr(r, 0x32, 0xff);
	wr(r, 0x0b, 0x02);
	for (uint8_t i = 0; i < 10; i++)
		rd(r, i);
	wr(r, 0x0b, 0x06); /* binary: 255 everywhere */
	wr(r, 0x32, 0xff);
	wr(r, 0x09, 0xff);
	wr(r, 0x00, 0xff);
	rd(r, 0x00);
	rd(r, 0x32);

	/* Widths and offsets. */
	memset(d, 0, sizeof(d));
	rtc_cmos_io(r, 2, d, 4, false);
	assert_memory_equal(d, "\xff\xff\xff\xff", 4);
	rtc_cmos_io(r, UINT64_MAX, d, 8, true);
	rtc_cmos_io(r, 1, d, 0, false);
	d[0] = 0x20;
	d[1] = 0x99;
	rtc_cmos_io(r, 0, d, 2, true); /* index 0x20, second byte dropped */
	d[0] = 0x77;
	d[1] = 0x88;
	rtc_cmos_io(r, 1, d, 2, true);
	memset(d, 0, sizeof(d));
	rtc_cmos_io(r, 1, d, 4, false);
	assert_memory_equal(d, "\x77\xff\xff\xff", 4);
	assert_int_equal(rd(r, 0x0d), 0x80);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults_bcd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_binary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_12h, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_mask, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_field, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
