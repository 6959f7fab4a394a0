/* acpi_pm and pvpanic: the small devices that stop the VM (the i8042 has
 * its own file, test_i8042.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "arch/x86/layout.h"
#include "devices/acpi_pm.h"
#include "devices/pvpanic.h"

_Static_assert(ACPI_PM_LEN == PORT_ACPI_PM_LEN, "acpi_pm block length");
_Static_assert(ACPI_PM_SLP_TYP_S5 == ACPI_SLP_TYP_S5, "S5 sleep type");
_Static_assert(ACPI_PM_RESET_VALUE == ACPI_RESET_VALUE, "reset value");
_Static_assert(PORT_ACPI_PM1_CNT - PORT_ACPI_PM == 4, "PM1a_CNT offset");
_Static_assert(PORT_ACPI_RESET - PORT_ACPI_PM == 8, "reset offset");

struct stops {
	int n;
	enum vm_stop last;
};

static void rec_stop(void *ctx, enum vm_stop why)
{
	struct stops *s = ctx;

	s->n++;
	s->last = why;
}

static struct stops stops;

static struct vmctl ctl(void)
{
	return (struct vmctl){ .stop = rec_stop, .ctx = &stops };
}

static int reset_stops(void **state)
{
	(void)state;
	memset(&stops, 0, sizeof(stops));
	stops.last = VM_STOP_NONE;
	return 0;
}

/* --- acpi_pm ------------------------------------------------------------ */

static void pm_wr16(struct acpi_pm *pm, uint64_t off, uint16_t v)
{
	uint8_t d[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

	acpi_pm_io(pm, off, d, 2, true);
}

static uint16_t pm_rd16(struct acpi_pm *pm, uint64_t off)
{
	uint8_t d[2] = { 0x5a, 0x5a };

	acpi_pm_io(pm, off, d, 2, false);
	return (uint16_t)(d[0] | d[1] << 8);
}

#define SLP_EN 0x2000
#define SLP_TYP(t) ((uint16_t)((t) << 10))

static void test_pm_s5(void **state)
{
	struct acpi_pm *pm = acpi_pm_new(ctl());

	(void)state;
	assert_non_null(pm);
	assert_int_equal(pm_rd16(pm, 4), 0x0001); /* SCI_EN, nothing else */
	pm_wr16(pm, 4, SLP_TYP(5)); /* Linux writes the type first */
	assert_int_equal(stops.n, 0);
	assert_int_equal(pm_rd16(pm, 4), SLP_TYP(5) | 1);
	pm_wr16(pm, 4, SLP_TYP(5) | SLP_EN);
	assert_int_equal(stops.n, 1);
	assert_int_equal(stops.last, VM_STOP_POWEROFF);
	assert_int_equal(pm_rd16(pm, 4), SLP_TYP(5) | 1); /* SLP_EN reads 0 */
	acpi_pm_free(pm);
}

static void test_pm_other_sleep(void **state)
{
	struct acpi_pm *pm = acpi_pm_new(ctl());

	(void)state;
	for (unsigned t = 0; t < 8; t++) {
		if (t == 5)
			continue;
		pm_wr16(pm, 4, SLP_TYP(t) | SLP_EN);
		assert_int_equal(pm_rd16(pm, 0), 0x8000); /* woke at once */
		pm_wr16(pm, 0, 0x8000);
		assert_int_equal(pm_rd16(pm, 0), 0);
	}
	/* SLP_TYP 5 without SLP_EN. */
	pm_wr16(pm, 4, SLP_TYP(5) | 0xc3fe);
	assert_int_equal(stops.n, 0);
	assert_int_equal(pm_rd16(pm, 4), SLP_TYP(5) | 0x3);
	/* Byte writes: the high byte carries SLP_EN. */
	uint8_t v = 0x00;
	acpi_pm_io(pm, 4, &v, 1, true);
	v = (uint8_t)((SLP_TYP(5) | SLP_EN) >> 8);
	acpi_pm_io(pm, 5, &v, 1, true);
	assert_int_equal(stops.n, 1);
	assert_int_equal(stops.last, VM_STOP_POWEROFF);
	acpi_pm_free(pm);
}

static void test_pm_status_enable(void **state)
{
	struct acpi_pm *pm = acpi_pm_new(ctl());
	uint8_t d[4];

	(void)state;
	pm_wr16(pm, 4, SLP_TYP(1) | SLP_EN); /* sets WAK_STS */
	pm_wr16(pm, 0, 0x7fff); /* other bits: nothing cleared */
	assert_int_equal(pm_rd16(pm, 0), 0x8000);
	pm_wr16(pm, 0, 0x0000);
	assert_int_equal(pm_rd16(pm, 0), 0x8000);
	pm_wr16(pm, 2, 0x0121);
	assert_int_equal(pm_rd16(pm, 2), 0x0121);
	/* One 32-bit access covers status and enable. */
	memset(d, 0, sizeof(d));
	acpi_pm_io(pm, 0, d, 4, false);
	assert_memory_equal(d, "\x00\x80\x21\x01", 4);
	memcpy(d, "\x00\x80\x00\x00", 4);
	acpi_pm_io(pm, 0, d, 4, true);
	assert_int_equal(pm_rd16(pm, 0), 0);
	assert_int_equal(pm_rd16(pm, 2), 0);
	assert_int_equal(stops.n, 0);
	acpi_pm_free(pm);
}

static void test_pm_reset(void **state)
{
	struct acpi_pm *pm = acpi_pm_new(ctl());
	uint8_t v = 0x02;

	(void)state;
	acpi_pm_io(pm, 8, &v, 1, true);
	v = 0x00;
	acpi_pm_io(pm, 8, &v, 1, true);
	assert_int_equal(stops.n, 0);
	v = 0xff;
	acpi_pm_io(pm, 8, &v, 1, false);
	assert_int_equal(v, 0);
	v = 0x01;
	acpi_pm_io(pm, 8, &v, 1, true);
	assert_int_equal(stops.n, 1);
	assert_int_equal(stops.last, VM_STOP_RESET);
	acpi_pm_free(pm);
}

static void test_pm_hostile(void **state)
{
	struct acpi_pm *pm = acpi_pm_new(ctl());
	uint8_t d[8];

	(void)state;
	memset(d, 0, sizeof(d));
	acpi_pm_io(pm, 9, d, 4, false); /* unknown bytes */
	assert_memory_equal(d, "\xff\xff\xff\xff", 4);
	memset(d, 0, sizeof(d));
	acpi_pm_io(pm, 14, d, 4, false); /* runs off the end */
	assert_memory_equal(d, "\xff\xff\xff\xff", 4);
	memset(d, 0x01, sizeof(d));
	acpi_pm_io(pm, UINT64_MAX, d, 8, true);
	acpi_pm_io(pm, 12, d, 8, true);
	acpi_pm_io(pm, 9, d, 1, true); /* not the reset register */
	acpi_pm_io(pm, 0, d, 0, true);
	assert_int_equal(stops.n, 0);
	memset(d, 0, sizeof(d));
	acpi_pm_io(pm, 4, d, 4, false); /* PM1a_CNT and two unknown bytes */
	assert_memory_equal(d, "\x01\x00\xff\xff", 4);
	acpi_pm_free(pm);
}

/* --- pvpanic ------------------------------------------------------------ */

static void test_pvpanic(void **state)
{
	struct pvpanic *p = pvpanic_new(ctl());
	uint8_t v = 0;

	(void)state;
	assert_non_null(p);
	pvpanic_io(p, 0, &v, 1, false);
	assert_int_equal(v, PVPANIC_PANICKED | PVPANIC_CRASH_LOADED);
	assert_false(pvpanic_crash_loaded(p));
	v = PVPANIC_CRASH_LOADED;
	pvpanic_io(p, 0, &v, 1, true);
	assert_int_equal(stops.n, 0);
	assert_true(pvpanic_crash_loaded(p));
	v = 0xfc; /* unknown events */
	pvpanic_io(p, 0, &v, 1, true);
	v = PVPANIC_PANICKED;
	pvpanic_io(p, 1, &v, 1, true); /* wrong offset */
	pvpanic_io(p, 0, &v, 0, true);
	assert_int_equal(stops.n, 0);
	pvpanic_io(p, 0, &v, 1, true);
	assert_int_equal(stops.n, 1);
	assert_int_equal(stops.last, VM_STOP_PANIC);
	uint8_t d[4] = { 0 };
	pvpanic_io(p, 0, d, 4, false);
	assert_memory_equal(d, "\x03\xff\xff\xff", 4);
	pvpanic_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_pm_s5, reset_stops),
		cmocka_unit_test_setup(test_pm_other_sleep, reset_stops),
		cmocka_unit_test_setup(test_pm_status_enable, reset_stops),
		cmocka_unit_test_setup(test_pm_reset, reset_stops),
		cmocka_unit_test_setup(test_pm_hostile, reset_stops),
		cmocka_unit_test_setup(test_pvpanic, reset_stops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
