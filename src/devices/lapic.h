/* lapic — a local APIC, the portable model a backend without an in-kernel
 * irqchip gives each vCPU (vigil-metal's SVM backend; KVM has its own):
 * the xAPIC registers at its 4 KiB MMIO page, the interrupt request and
 * in-service bitmaps with TPR/PPR priority, EOI (level-triggered vectors
 * reported back, so the IOAPIC can clear its remote IRR), self IPIs, and
 * the timer in one-shot, periodic and TSC-deadline modes. Time is the
 * vclock's nanoseconds; the APIC bus runs at 1 GHz (as KVM's), so a
 * divide-by-1 count is one nanosecond. The backend asks for the vector to
 * inject (lapic_pending), acknowledges it when it does (lapic_ack), and
 * polls lapic_timer_next_ns() to know when to look again. One vCPU's: its
 * calls come from that vCPU's thread, except lapic_accept (any thread). */
#ifndef VIGIL_DEVICES_LAPIC_H
#define VIGIL_DEVICES_LAPIC_H

#include <stdbool.h>
#include <stdint.h>

#include "core/clock.h"

struct lapic;

#define LAPIC_NONE UINT64_MAX

/* NULL on ENOMEM. `eoi` (may be NULL) hears of the EOI of every
 * level-triggered vector. */
struct lapic *lapic_new(uint32_t id, const struct vclock *clk, void (*eoi)(void *ctx, uint8_t vector),
			void *eoi_ctx);
void lapic_free(struct lapic *l);

/* bus_io_fn over the 4 KiB page: 32-bit accesses to 16-byte-aligned
 * registers; anything else reads 0 and is dropped. */
void lapic_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* A fixed interrupt arrives (IOAPIC, MSI). `level`: level-triggered (its
 * EOI is reported). Vectors below 16 are illegal and dropped. */
void lapic_accept(struct lapic *l, uint8_t vector, bool level);

/* Fires the timer if due, then: the vector the CPU should take now (its
 * priority above PPR), or -1. */
int lapic_pending(struct lapic *l);
/* The CPU took `vector` (from lapic_pending): IRR → ISR. */
void lapic_ack(struct lapic *l, uint8_t vector);

/* When the timer fires next (vclock ns), or LAPIC_NONE. */
uint64_t lapic_timer_next_ns(const struct lapic *l);

/* IA32_TSC_DEADLINE, converted by the backend to vclock ns (0 disarms);
 * only acted on in TSC-deadline mode. The raw MSR value is the backend's. */
void lapic_set_deadline_ns(struct lapic *l, uint64_t ns);

/* An IPI this LAPIC's ICR sends to other CPUs (or to itself by
 * destination): the backend routes it (lapic_matches) and carries out its
 * delivery mode — fixed and lowest priority into lapic_accept, INIT and
 * SIPI to start a vCPU. A self IPI by shorthand stays inside the model. */
struct lapic_ipi {
	uint32_t from;       /* the sender's APIC ID */
	uint8_t vector, mode; /* ICR 7:0, 10:8 */
	uint8_t shorthand;   /* 0 destination field, 2 all including self, 3 all excluding self */
	uint8_t dest;        /* ICR 63:56 */
	bool logical, assert; /* destination mode; level (an INIT deassert has it clear) */
};
typedef void (*lapic_ipi_fn)(void *ctx, const struct lapic_ipi *ipi);
void lapic_set_ipi(struct lapic *l, lapic_ipi_fn fn, void *ctx);
/* Whether this LAPIC is a destination of `dest` (physical: its ID or 0xFF;
 * logical: its LDR in the flat or cluster model of its DFR). */
bool lapic_matches(struct lapic *l, uint8_t dest, bool logical);

/* Whether the 8259's output reaches the CPU: the APIC software-disabled,
 * or LINT0 unmasked in ExtINT mode (virtual wire). */
bool lapic_accepts_extint(const struct lapic *l);

#endif
