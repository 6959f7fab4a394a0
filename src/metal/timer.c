/* timer — the host's periodic tick from its local APIC timer (xAPIC MMIO,
 * mapped uncached by boot.S), calibrated against the TSC. Its interrupt
 * reaches the host IDT while a guest runs (an INTR exit: the SVM backend
 * runs with host IF=1 and lets the handler run); the handler's callback
 * brings the vCPU loop back to the poll loop, so console input, device
 * timers and the trace are served even while the guest never exits on its
 * own (a spin with interrupts off). */
#include <stdint.h>

#include "metal/metal.h"

#define LAPIC 0xfee00000u
#define LAPIC_EOI 0x0b0
#define LAPIC_SVR 0x0f0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR 0x390
#define LAPIC_TIMER_DIV 0x3e0
#define VEC_TIMER 0x30
#define VEC_SPURIOUS 0xff

static void (*on_tick)(void);
static uint64_t ticks;

static volatile uint32_t *reg(uint32_t off)
{
	return (volatile uint32_t *)(uintptr_t)(LAPIC + off);
}

static void timer_irq(uint8_t vector)
{
	(void)vector;
	ticks++;
	*reg(LAPIC_EOI) = 0;
	if (on_tick)
		on_tick();
}

static void spurious(uint8_t vector)
{
	(void)vector; /* not in service: no EOI */
}

int metal_timer_start(unsigned hz, void (*tick)(void))
{
	uint64_t apic_base;
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(0x1bu));
	apic_base = ((uint64_t)hi << 32) | lo;
	if (!(apic_base & (1u << 11)) || (apic_base & ~0xfffull) != LAPIC || !metal_tsc_hz() || !hz)
		return -1; /* disabled, moved, or x2APIC-only: no tick */
	on_tick = tick;
	metal_idt_set(VEC_TIMER, timer_irq);
	metal_idt_set(VEC_SPURIOUS, spurious);
	*reg(LAPIC_SVR) = 0x100 | VEC_SPURIOUS; /* software-enabled */
	*reg(LAPIC_TIMER_DIV) = 0x3;            /* divide by 16 */
	*reg(LAPIC_LVT_TIMER) = 1u << 16;       /* masked while measured */
	*reg(LAPIC_TIMER_INIT) = 0xffffffffu;
	uint64_t t0 = metal_rdtsc(), span = metal_tsc_hz() / 100; /* 10 ms */
	while (metal_rdtsc() - t0 < span)
		__asm__ volatile("pause");
	uint32_t per_10ms = 0xffffffffu - *reg(LAPIC_TIMER_CUR);
	uint64_t count = (uint64_t)per_10ms * 100 / hz;
	if (!count)
		return -1;
	*reg(LAPIC_LVT_TIMER) = VEC_TIMER | (1u << 17); /* periodic */
	*reg(LAPIC_TIMER_INIT) = count > 0xffffffffu ? 0xffffffffu : (uint32_t)count;
	return 0;
}

uint64_t metal_timer_ticks(void)
{
	return ticks;
}
