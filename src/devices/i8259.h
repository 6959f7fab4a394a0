/* i8259 — the two cascaded 8259A PICs of a PC (master at 0x20, slave at
 * 0xA0 on the master's IRQ 2, ELCR at 0x4D0), the portable model for a
 * backend without an in-kernel irqchip: ICW1-4 initialization, OCW1 masks,
 * OCW2 EOIs (non-specific, specific), OCW3 IRR/ISR reads, auto-EOI, fixed
 * priority (IRQ 0 highest), edge or level per ELCR. The CPU side:
 * i8259_pending says whether the master's INT is up, i8259_ack is the
 * INTA cycle that returns the vector. Any thread. */
#ifndef VIGIL_DEVICES_I8259_H
#define VIGIL_DEVICES_I8259_H

#include <stdbool.h>
#include <stdint.h>

struct i8259;

struct i8259 *i8259_new(void);
void i8259_free(struct i8259 *p);

/* bus_io_fn for each: the master's two ports, the slave's, the two ELCRs. */
void i8259_master_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void i8259_slave_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void i8259_elcr_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* ISA IRQ 0-15's input level. */
void i8259_set_irq(struct i8259 *p, unsigned irq, int level);

/* Whether the master asks the CPU for an interrupt. */
bool i8259_pending(struct i8259 *p);
/* The interrupt acknowledge: the vector to take (spurious IRQ 7 / 15 when
 * the request went away meanwhile). */
uint8_t i8259_ack(struct i8259 *p);

#endif
