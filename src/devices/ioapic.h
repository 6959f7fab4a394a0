/* ioapic — an 82093AA-style I/O APIC, the portable model for a backend
 * without an in-kernel irqchip: 24 pins, the IOREGSEL/IOWIN window at its
 * MMIO base, edge and level triggering with remote IRR (cleared by the
 * local APIC's EOI of the vector), masking. Delivery goes to `deliver`
 * (the backend's local APICs); destination and delivery mode are passed on
 * for it to route. Polarity is ignored, as KVM's model does: a device's
 * irq_set level 1 means asserted. Any thread. */
#ifndef VIGIL_DEVICES_IOAPIC_H
#define VIGIL_DEVICES_IOAPIC_H

#include <stdbool.h>
#include <stdint.h>

#define IOAPIC_PINS 24

struct ioapic;

typedef void (*ioapic_deliver_fn)(void *ctx, uint8_t vector, bool level, uint8_t dest, bool logical);

struct ioapic *ioapic_new(ioapic_deliver_fn deliver, void *ctx);
void ioapic_free(struct ioapic *io);

/* bus_io_fn: IOREGSEL at 0x00, IOWIN at 0x10 (32-bit accesses). */
void ioapic_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* A pin's input level (out-of-range pins are ignored). */
void ioapic_set_irq(struct ioapic *io, uint32_t pin, int level);

/* The local APIC retired level-triggered `vector`: remote IRR cleared,
 * and a pin still asserted delivers again. */
void ioapic_eoi(struct ioapic *io, uint8_t vector);

#endif
