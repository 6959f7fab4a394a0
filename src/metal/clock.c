/* clock — the TSC as vigil-metal's clock, its rate measured once against
 * the PIT (channel 2, gated through port 0x61, 1.193182 MHz), so no timer
 * interrupt is needed. */
#include "metal/metal.h"

#define PIT_HZ 1193182u

static uint64_t tsc_hz, tsc_boot, tsc_mult; /* ns per tick, 32 fraction bits */

static uint64_t measure(void)
{
	const uint16_t ticks = PIT_HZ / 100; /* 10 ms */
	uint8_t gate = metal_inb(0x61);
	metal_outb(0x61, (gate & ~0x02) | 0x01); /* speaker off, gate on */
	metal_outb(0x43, 0xb0);                  /* ch2, lo/hi, mode 0 */
	metal_outb(0x42, ticks & 0xff);
	metal_outb(0x42, ticks >> 8);
	uint64_t t0 = metal_rdtsc();
	for (uint64_t spins = 0; !(metal_inb(0x61) & 0x20); spins++)
		if (spins > 100000000ull)
			return 0; /* no PIT: the caller falls back */
	uint64_t t1 = metal_rdtsc();
	metal_outb(0x61, gate);
	return (t1 - t0) * 100;
}

void metal_clock_init(void)
{
	tsc_boot = metal_rdtsc();
	tsc_hz = measure();
	if (!tsc_hz)
		tsc_hz = 1000000000ull; /* a guess, said once by the caller */
	tsc_mult = (1000000000ull << 32) / tsc_hz;
}

uint64_t metal_tsc_hz(void)
{
	return tsc_hz;
}

/* TSC ticks to ns by one multiply, (d * mult) >> 32: the interrupt models
 * and the poll loop read the time on every guest entry, and a 128-bit
 * division in software there cost a port-hammering guest 15 s against 9 s
 * under QEMU. */
uint64_t metal_now_ns(void)
{
	uint64_t d = metal_rdtsc() - tsc_boot;
	return (uint64_t)(((unsigned __int128)d * tsc_mult) >> 32);
}

/* The CMOS clock (MC146818 at 0x70/0x71), read once: wait out an update
 * in progress, then the fields, BCD or binary as register B says. */
static int64_t wall_boot;
static uint64_t wall_tsc;

static uint8_t cmos(uint8_t reg)
{
	metal_outb(0x70, reg);
	return metal_inb(0x71);
}

static unsigned from_bcd(uint8_t v, int bcd)
{
	return bcd ? (v & 0x0f) + (v >> 4) * 10u : v;
}

static int64_t read_cmos(void)
{
	for (unsigned i = 0; i < 1000000 && (cmos(0x0a) & 0x80); i++)
		__asm__ volatile("pause");
	uint8_t b = cmos(0x0b);
	int bcd = !(b & 0x04);
	unsigned sec = from_bcd(cmos(0x00), bcd), min = from_bcd(cmos(0x02), bcd);
	uint8_t hraw = cmos(0x04);
	unsigned hour = from_bcd(hraw & 0x7f, bcd);
	if (!(b & 0x02) && (hraw & 0x80)) /* 12-hour clock, PM */
		hour = (hour % 12) + 12;
	unsigned day = from_bcd(cmos(0x07), bcd), mon = from_bcd(cmos(0x08), bcd);
	unsigned yy = from_bcd(cmos(0x09), bcd), century = from_bcd(cmos(0x32), bcd);
	unsigned year = (century >= 19 && century <= 21 ? century * 100 : 2000) + yy; /* or no century register */
	if (mon < 1 || mon > 12 || day < 1 || day > 31)
		return 0;
	/* Days from the civil date (proleptic Gregorian). */
	long y = (long)year - (mon <= 2);
	long era = y / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (mon > 2 ? mon - 3 : mon + 9) + 2) / 5 + day - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	long days = era * 146097 + (long)doe - 719468;
	return (int64_t)days * 86400 + hour * 3600 + min * 60 + sec;
}

int64_t metal_wall_s(void)
{
	if (!wall_tsc) {
		wall_boot = read_cmos();
		wall_tsc = metal_rdtsc() | 1;
	}
	return wall_boot + (int64_t)((metal_rdtsc() - wall_tsc) / tsc_hz);
}

static uint64_t vclock_mono(void *ctx)
{
	(void)ctx;
	return metal_now_ns();
}

static int64_t vclock_wall(void *ctx)
{
	(void)ctx;
	return metal_wall_s();
}

struct vclock metal_vclock(void)
{
	return (struct vclock){ .mono_ns = vclock_mono, .wall_s = vclock_wall };
}
