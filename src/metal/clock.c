/* clock — the TSC as vigil-metal's clock, its rate measured once against
 * the PIT (channel 2, gated through port 0x61, 1.193182 MHz), so no timer
 * interrupt is needed. */
#include "metal/metal.h"

#define PIT_HZ 1193182u

static uint64_t tsc_hz, tsc_boot;

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
}

uint64_t metal_tsc_hz(void)
{
	return tsc_hz;
}

uint64_t metal_now_ns(void)
{
	uint64_t d = metal_rdtsc() - tsc_boot;
	return (uint64_t)((unsigned __int128)d * 1000000000u / tsc_hz);
}
