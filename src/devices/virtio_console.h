/* virtio_console — the virtio console (virtio 1.x, 5.3) without multiport:
 * port 0 only, queue 0 receiveq (host to guest), queue 1 transmitq (guest to
 * host). The guest sees it as hvc0. No features: F_SIZE, F_MULTIPORT and
 * F_EMERG_WRITE are off, config space reads as zero.
 * Portable device model on the virtio core: a transport takes the returned
 * virtio_dev; queue_notify runs on the VM's event thread and sends guest
 * output to `out` from there. Host input arrives from any thread (the
 * console input thread) through virtio_console_rx_push(), which takes the
 * device's rx lock around the receive queue — the same feeding contract as
 * uart_16550_rx_push()/uart_16550_rx_wait_room(), so one input thread can
 * serve either device.
 * The rx queue is touched only between ops->activate and ops->reset (both
 * take the rx lock), so a transport may reset the queues after ops->reset
 * returns while the input thread keeps pushing. */
#ifndef VIGIL_DEVICES_VIRTIO_CONSOLE_H
#define VIGIL_DEVICES_VIRTIO_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/chardev.h"
#include "core/clock.h"
#include "core/devreq.h"
#include "core/gmem.h"
#include "virtio/virtio_dev.h"

/* NULL on ENOMEM. `clk` (copied) times virtio_console_rx_wait_room(). */
struct virtio_dev *virtio_console_new(const struct gmem *mem, struct dev_gate gate,
				      struct chardev_out out, const struct vclock *clk);

/* No thread may be inside any virtio_console_* call or ops callback. Wakes no
 * waiter: stop the input thread first. */
void virtio_console_free(struct virtio_dev *d);

/* Host input: copies up to len bytes into the receive buffers the guest has
 * posted (as many chains as it takes, each completed at once) and returns
 * how many were taken: 0 while the device is not running or no buffer is
 * posted. Any thread; takes the rx lock. A request the policy denies is
 * completed empty and its bytes count as taken (dropped), so a denying
 * policy cannot wedge the input thread. */
size_t virtio_console_rx_push(struct virtio_dev *d, const uint8_t *buf, size_t len);

/* Blocks until the guest has a receive buffer posted or timeout_ms passes
 * (< 0: no limit; 0: just look); true if there is room. Woken when the guest
 * kicks the receive queue and on device reset. */
bool virtio_console_rx_wait_room(struct virtio_dev *d, int timeout_ms);

#endif
