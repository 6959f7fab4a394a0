/* i8254 — the PC's programmable interval timer (ports 0x40-0x43) and the
 * port 0x61 bits wired to it (channel 2's gate and output, the speaker),
 * the portable model for a backend without an in-kernel PIT. Counting is
 * derived from the vclock (1.193182 MHz), never ticked: a read computes the
 * count, and the backend polls i8254_poll() at i8254_next_ns() to raise
 * IRQ 0. Modes 0 (interrupt on terminal count), 2 (rate generator) and 3
 * (square wave) are modelled; 1, 4 and 5 count as mode 0 does. Latching
 * (counter and read-back status) and all three access modes are. Any thread. */
#ifndef VIGIL_DEVICES_I8254_H
#define VIGIL_DEVICES_I8254_H

#include <stdbool.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/irq.h"

#define I8254_HZ 1193182ull
#define I8254_NONE UINT64_MAX

struct i8254;

struct i8254 *i8254_new(struct irq_line irq0, const struct vclock *clk);
void i8254_free(struct i8254 *p);

/* bus_io_fn: 0x40-0x43. */
void i8254_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
/* bus_io_fn: port 0x61 (bit 0 gate 2, bit 1 speaker, bit 4 refresh, bit 5 OUT2). */
void i8254_port61_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* Raises IRQ 0 (a pulse) for each channel 0 expiry since the last poll
 * (once, however many were missed). */
void i8254_poll(struct i8254 *p);
/* When channel 0 expires next (vclock ns), or I8254_NONE. */
uint64_t i8254_next_ns(struct i8254 *p);

#endif
