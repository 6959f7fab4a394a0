/* i8042 — the PS/2 keyboard controller: a keyboard on its first port (the
 * keyboard itself is devices/ps2_kbd.c), no aux (mouse) port, and the CPU
 * reset line. Enough for Linux's i8042 and atkbd drivers to bind ("serio:
 * i8042 KBD port at 0x60,0x64 irq 1", "input: AT Translated Set 2 keyboard")
 * and for the VMM to type Ctrl+Alt+Del (Firecracker's SendCtrlAltDel).
 * Portable device model. The VM registers two 1-port ranges, both with the
 * same struct i8042 as `dev`: i8042_data_io() at PORT_I8042_DATA and
 * i8042_cmd_io() at PORT_I8042_CMD.
 *
 * Thread safety: the port handlers (vCPU threads) and i8042_ctrl_alt_del()
 * (the control thread) serialise on the device's lock. */
#ifndef VIGIL_DEVICES_I8042_H
#define VIGIL_DEVICES_I8042_H

#include <stdbool.h>
#include <stdint.h>

#include "core/irq.h"
#include "core/vmctl.h"

/* Status register (port 0x64 read). */
#define I8042_STR_OBF	  0x01 /* output buffer full: port 0x60 has a byte */
#define I8042_STR_IBF	  0x02 /* input buffer full: never, writes complete at once */
#define I8042_STR_SYS	  0x04 /* system flag, mirrors the command byte's */
#define I8042_STR_CMD	  0x08 /* last write went to port 0x64 */
#define I8042_STR_UNLOCK  0x10 /* keyboard not inhibited by the keylock */
#define I8042_STR_AUXDATA 0x20 /* the byte came from the aux port: never */

/* Command byte (0x20 reads it, 0x60 writes it). */
#define I8042_CTR_KBDINT 0x01 /* IRQ 1 when a byte lands in the output buffer */
#define I8042_CTR_AUXINT 0x02
#define I8042_CTR_SYS	 0x04
#define I8042_CTR_KBDDIS 0x10
#define I8042_CTR_AUXDIS 0x20
#define I8042_CTR_XLATE	 0x40 /* set 2 -> set 1 translation */

/* What firmware leaves behind: translation, keyboard interrupt, POST passed,
 * aux disabled. Linux keeps translation on only if it finds it on. */
#define I8042_CTR_BOOT (I8042_CTR_XLATE | I8042_CTR_AUXDIS | I8042_CTR_SYS | I8042_CTR_KBDINT)

/* Output buffer queue depth; Linux's i8042_flush() gives up after 16. */
#define I8042_QUEUE_LEN 16

struct i8042;
struct vdev;
struct snap_writer;
struct snap_reader;

/* `irq` is the keyboard's line (GSI 1), pulsed once per byte that lands in
 * the output buffer while the command byte enables the interrupt.
 * NULL on ENOMEM. */
struct i8042 *i8042_new(struct vmctl ctl, struct irq_line irq);
void i8042_free(struct i8042 *k);

/* bus_io_fn for the data port (0x60): read the output buffer, write a
 * command's argument or a byte for the keyboard. */
void i8042_data_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* bus_io_fn for the command/status port (0x64). Pulse-output commands that
 * pulse the reset line (0xf0..0xfe even, 0xfe in practice) and an output
 * port write (0xd1) with bit 0 clear stop the VM with VM_STOP_RESET. */
void i8042_cmd_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* Types Ctrl+Alt+Del: queues the make and break codes of all three keys
 * (set 1 when the controller translates, else the keyboard's set) and
 * raises IRQ 1. All or nothing: returns -1 and queues nothing when the guest
 * has the keyboard disabled (interface disabled by 0xad / command byte, or
 * scanning off by 0xf5) or the queue lacks room for the whole sequence
 * (the guest is not reading); 0 otherwise. Safe from any thread. */
int i8042_ctrl_alt_del(struct i8042 *k);

/* Back to the power-on state: command byte, output port, empty queue, the
 * keyboard as after its own reset. */
void i8042_reset(struct i8042 *k);

/* Snapshots (vdev_ops.save/restore; d->impl is the controller): the
 * command byte, output port, pending command, output queue and the
 * keyboard's protocol state (ps2_kbd). 0 or -1 (snap error set). */
int i8042_save(struct vdev *d, struct snap_writer *w);
int i8042_restore(struct vdev *d, struct snap_reader *r);

#endif
