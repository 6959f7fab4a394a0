/* The legacy devices' power-on reset, as the device registry calls it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/vmctl.h"
#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/pvpanic.h"
#include "devices/rtc_cmos.h"
#include "devices/uart_16550.h"

static int level = -1;
static void rec_irq(void *ctx, uint32_t gsi, int l)
{
	(void)ctx, (void)gsi;
	level = l;
}
static const struct irq_line line = { .set = rec_irq };

static uint8_t rd(void (*io)(void *, uint64_t, uint8_t *, uint32_t, bool), void *dev, uint64_t off)
{
	uint8_t v = 0;
	io(dev, off, &v, 1, false);
	return v;
}

static void wr(void (*io)(void *, uint64_t, uint8_t *, uint32_t, bool), void *dev, uint64_t off, uint8_t v)
{
	io(dev, off, &v, 1, true);
}

static uint64_t now_ns(void *ctx)
{
	(void)ctx;
	return 0;
}

static void test_uart(void **state)
{
	(void)state;
	struct vclock clk = { .mono_ns = now_ns };
	struct uart_16550 *u = uart_16550_new(line, (struct chardev_out){ 0 }, &clk);
	assert_non_null(u);
	wr(uart_16550_io, u, 7, 0x5a);      /* scratch */
	wr(uart_16550_io, u, 2, 0x01);      /* FIFOs on */
	wr(uart_16550_io, u, 1, 0x01);      /* IER: RX data */
	wr(uart_16550_io, u, 3, 0x03);      /* LCR: 8N1 */
	wr(uart_16550_io, u, 4, 0x08);      /* MCR: OUT2 gates the IRQ on a PC */
	assert_int_equal(uart_16550_rx_push(u, (const uint8_t *)"ab", 2), 2);
	assert_int_equal(level, 1);         /* RX interrupt up */
	assert_true(rd(uart_16550_io, u, 5) & 1);
	uart_16550_reset(u);
	assert_int_equal(level, 0);         /* and down */
	assert_int_equal(rd(uart_16550_io, u, 1), 0);
	assert_int_equal(rd(uart_16550_io, u, 3), 0);
	assert_false(rd(uart_16550_io, u, 5) & 1); /* FIFO emptied */
	assert_int_equal(rd(uart_16550_io, u, 7), 0x5a); /* scratch stays */
	uart_16550_free(u);
}

static void test_rtc(void **state)
{
	(void)state;
	struct rtc_cmos *r = rtc_cmos_new_with_clock(line, NULL);
	assert_non_null(r);
	wr(rtc_cmos_io, r, 0, 0x0b);
	uint8_t b = rd(rtc_cmos_io, r, 1);
	wr(rtc_cmos_io, r, 1, (uint8_t)(b | 0x40 | 0x08)); /* PIE, SQWE */
	wr(rtc_cmos_io, r, 0, 0x20);
	wr(rtc_cmos_io, r, 1, 0x77);                       /* CMOS RAM */
	rtc_cmos_reset(r);
	wr(rtc_cmos_io, r, 0, 0x0b);
	assert_int_equal(rd(rtc_cmos_io, r, 1), b);        /* enables gone, mode kept */
	wr(rtc_cmos_io, r, 0, 0x20);
	assert_int_equal(rd(rtc_cmos_io, r, 1), 0x77);     /* battery-backed RAM kept */
	rtc_cmos_free(r);
}

static void test_i8042(void **state)
{
	(void)state;
	struct i8042 *k = i8042_new((struct vmctl){ 0 }, line);
	assert_non_null(k);
	wr(i8042_cmd_io, k, 0, 0x60);
	wr(i8042_data_io, k, 0, 0x00);       /* command byte: all off */
	wr(i8042_cmd_io, k, 0, 0x20);
	assert_int_equal(rd(i8042_data_io, k, 0), 0x00);
	wr(i8042_cmd_io, k, 0, 0xaa);        /* a byte left in the output buffer */
	i8042_reset(k);
	assert_false(rd(i8042_cmd_io, k, 0) & 1); /* output buffer empty */
	wr(i8042_cmd_io, k, 0, 0x20);
	assert_int_equal(rd(i8042_data_io, k, 0), I8042_CTR_BOOT);
	i8042_free(k);
}

static void test_pm_and_pvpanic(void **state)
{
	(void)state;
	struct acpi_pm *pm = acpi_pm_new((struct vmctl){ 0 });
	assert_non_null(pm);
	wr(acpi_pm_io, pm, 2, 0x21);         /* PM1 enable */
	assert_int_equal(rd(acpi_pm_io, pm, 2), 0x21);
	acpi_pm_reset(pm);
	assert_int_equal(rd(acpi_pm_io, pm, 2), 0);
	acpi_pm_free(pm);

	struct pvpanic *p = pvpanic_new((struct vmctl){ 0 });
	assert_non_null(p);
	wr(pvpanic_io, p, 0, 2);             /* "crash kernel loaded" */
	assert_true(pvpanic_crash_loaded(p));
	pvpanic_reset(p);
	assert_false(pvpanic_crash_loaded(p));
	pvpanic_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uart),
		cmocka_unit_test(test_rtc),
		cmocka_unit_test(test_i8042),
		cmocka_unit_test(test_pm_and_pvpanic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
