/* uart_16550 — a 16550A UART: the guest's serial console (COM1).
 * Portable device model. The VM registers uart_16550_io() on the port bus
 * (PORT_COM1, 8 ports), points `out` at the console and `irq` at IRQ_COM1;
 * the host's console input thread feeds uart_16550_rx_push(), sleeping in
 * uart_16550_rx_wait_room() while the guest has not drained the RX FIFO.
 * The transmitter is infinitely fast: each THR write reaches `out` at once
 * and the transmitter is always empty again afterwards. */
#ifndef VIGIL_DEVICES_UART_16550_H
#define VIGIL_DEVICES_UART_16550_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/chardev.h"
#include "core/clock.h"
#include "core/irq.h"

struct uart_16550;
struct vdev;
struct snap_writer;
struct snap_reader;

/* NULL on ENOMEM. `clk` (copied) times uart_16550_rx_wait_room(). */
struct uart_16550 *uart_16550_new(struct irq_line irq, struct chardev_out out, const struct vclock *clk);

/* No thread may be inside any uart_16550_* call any more. */
void uart_16550_free(struct uart_16550 *u);

/* Back to the power-on state (a master reset): registers and FIFOs
 * cleared, the interrupt lowered; the divisor and scratch registers stay. */
void uart_16550_reset(struct uart_16550 *u);

/* bus_io_fn. A wide access is a byte access to its first byte; the other
 * bytes of a wide read are 0xff. */
void uart_16550_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* Host side input: queues up to len bytes into the RX FIFO (16 bytes with
 * FIFOs enabled, 1 without) and returns how many were taken, 0 when full.
 * In loopback mode the line is disconnected: bytes are taken and lost. */
size_t uart_16550_rx_push(struct uart_16550 *u, const uint8_t *buf, size_t len);

/* Blocks until the RX FIFO has room or timeout_ms passes (< 0: no limit);
 * true if there is room. Woken when the guest reads RBR or clears, enables
 * or disables the FIFO, or enters loopback mode. */
bool uart_16550_rx_wait_room(struct uart_16550 *u, int timeout_ms);

/* Snapshots (vdev_ops.save/restore; d->impl is the UART): registers, line
 * status, modem deltas and the RX FIFO. Restore checks the section and
 * drives the IRQ line to the restored level. 0 or -1 (snap error set). */
int uart_16550_save(struct vdev *d, struct snap_writer *w);
int uart_16550_restore(struct vdev *d, struct snap_reader *r);

#endif
