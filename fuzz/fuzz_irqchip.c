/* fuzz_irqchip — libFuzzer target for the guest-facing registers of the
 * interrupt controller models (devices/lapic, ioapic, i8259, i8254: what a
 * guest of vigil-metal programs directly) and for the MMIO instruction
 * decoder (arch/x86/insn_decode: the bytes a guest's faulting instruction
 * is made of). The input is a program of 8-byte steps: which model (or the
 * decoder, or a clock step), an offset, a width, read or write, a value.
 * Two LAPICs route their IPIs to each other, the IOAPIC delivers into
 * them, the PIT drives the PIC's IRQ 0, and every few steps the first
 * LAPIC and the PIC are asked what the CPU should take and acknowledge it,
 * as a backend's entry does. Registers are written as the guest would:
 * any offset, any width, any value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/insn_decode.h"
#include "devices/i8254.h"
#include "devices/i8259.h"
#include "devices/ioapic.h"
#include "devices/lapic.h"

static uint64_t now_ns;
static uint64_t clock_now(void *ctx)
{
	(void)ctx;
	return now_ns;
}
static const struct vclock clk = { .mono_ns = clock_now };

static struct lapic *lapics[2];
static struct ioapic *ioapic;
static struct i8259 *pic;
static struct i8254 *pit;

static void route_ipi(void *ctx, const struct lapic_ipi *p)
{
	(void)ctx;
	for (unsigned i = 0; i < 2; i++)
		if (p->shorthand == 2 || (p->shorthand == 3 && i != p->from) ||
		    (p->shorthand == 0 && lapic_matches(lapics[i], p->dest, p->logical)))
			if (p->mode <= 1)
				lapic_accept(lapics[i], p->vector, false);
}

static void ioapic_deliver(void *ctx, uint8_t vector, bool level, uint8_t dest, bool logical)
{
	(void)ctx;
	for (unsigned i = 0; i < 2; i++)
		if (lapic_matches(lapics[i], dest, logical))
			lapic_accept(lapics[i], vector, level);
}

static void lapic_eoi(void *ctx, uint8_t vector)
{
	(void)ctx;
	ioapic_eoi(ioapic, vector);
}

static void pit_irq(void *ctx, uint32_t gsi, int level)
{
	(void)ctx;
	(void)gsi;
	i8259_set_irq(pic, 0, level);
	ioapic_set_irq(ioapic, 2, level);
}

static void machine_new(void)
{
	now_ns = 0;
	for (unsigned i = 0; i < 2; i++) {
		lapics[i] = lapic_new(i, &clk, lapic_eoi, NULL);
		if (!lapics[i])
			abort();
		lapic_set_ipi(lapics[i], route_ipi, NULL);
	}
	ioapic = ioapic_new(ioapic_deliver, NULL);
	pic = i8259_new();
	pit = i8254_new((struct irq_line){ .set = pit_irq }, &clk);
	if (!ioapic || !pic || !pit)
		abort();
}

static void machine_free(void)
{
	i8254_free(pit);
	i8259_free(pic);
	ioapic_free(ioapic);
	for (unsigned i = 0; i < 2; i++)
		lapic_free(lapics[i]);
}

/* What a backend does before an entry: fire due timers, take a vector. */
static void take_interrupts(void)
{
	i8254_poll(pit);
	for (unsigned i = 0; i < 2; i++) {
		int v = lapic_pending(lapics[i]);
		if (v >= 0)
			lapic_ack(lapics[i], (uint8_t)v);
	}
	if (lapic_accepts_extint(lapics[0]) && i8259_pending(pic))
		(void)i8259_ack(pic);
}

static void decode(const uint8_t *b, size_t n, unsigned mode_sel, uint64_t reg)
{
	static const enum insn_mode modes[3] = { INSN_MODE16, INSN_MODE32, INSN_MODE64 };
	struct insn_mmio d;
	/* An exactly sized copy: a read past the instruction's bytes shows. */
	uint8_t *copy = malloc(n ? n : 1);
	if (!copy)
		abort();
	memcpy(copy, b, n);
	if (insn_decode_mmio(copy, n, modes[mode_sel % 3], &d) == 0) {
		if (d.len == 0 || d.len > n || d.len > INSN_MAX_LEN || (d.size != 1 && d.size != 2 && d.size != 4 &&
									   d.size != 8))
			abort(); /* the decoder's promises */
		if (d.write)
			(void)insn_store_value(&d, reg);
		else
			(void)insn_load_result(&d, reg, ~reg);
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	machine_new();
	for (size_t at = 0; at + 8 <= size; at += 8) {
		const uint8_t *s = data + at;
		unsigned what = s[0] % 9, width = 1u << (s[1] & 3);
		bool write = s[1] & 0x80;
		uint16_t off = (uint16_t)(s[2] | s[3] << 8);
		uint32_t v32 = (uint32_t)s[4] | (uint32_t)s[5] << 8 | (uint32_t)s[6] << 16 | (uint32_t)s[7] << 24;
		uint8_t buf[8];
		memcpy(buf, &v32, 4);
		memcpy(buf + 4, &v32, 4);
		switch (what) {
		case 0:
		case 1:
			lapic_io(lapics[what], off & 0xfff, buf, width, write);
			break;
		case 2:
			ioapic_io(ioapic, off & 0xff, buf, width, write);
			break;
		case 3:
			i8259_master_io(pic, off & 1, buf, 1, write);
			break;
		case 4:
			i8259_slave_io(pic, off & 1, buf, 1, write);
			break;
		case 5:
			if (off & 0x100)
				i8254_port61_io(pit, 0, buf, 1, write);
			else
				i8254_io(pit, off & 3, buf, 1, write);
			break;
		case 6: /* lines and messages from devices */
			ioapic_set_irq(ioapic, s[2] % 24, s[3] & 1);
			i8259_set_irq(pic, s[2] % 16, s[3] & 1);
			lapic_accept(lapics[s[3] >> 7], s[4], s[5] & 1);
			if (s[6] & 1)
				lapic_set_deadline_ns(lapics[s[6] >> 7], now_ns + v32);
			break;
		case 7: /* time passes, interrupts are taken */
			now_ns += (uint64_t)v32 * 16;
			take_interrupts();
			break;
		case 8: { /* the decoder over the rest of the input, up to 16 bytes */
			size_t n = size - at - 4 < 16 ? size - at - 4 : 16;
			decode(s + 4, n, s[2], v32);
			break;
		}
		}
		if ((at & 63) == 0)
			take_interrupts();
	}
	machine_free();
	return 0;
}
