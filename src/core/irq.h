/* irq — how a device model raises an interrupt without knowing the backend.
 * The backend (KVM: KVM_IRQ_LINE on the in-kernel IOAPIC/PIC) fills `set`;
 * unit tests fill it with a recorder. */
#ifndef VIGIL_CORE_IRQ_H
#define VIGIL_CORE_IRQ_H

#include <stdint.h>

struct irq_line {
	void (*set)(void *ctx, uint32_t gsi, int level);
	void *ctx;
	uint32_t gsi;
};

static inline void irq_set(const struct irq_line *l, int level)
{
	if (l->set)
		l->set(l->ctx, l->gsi, level);
}

#endif
