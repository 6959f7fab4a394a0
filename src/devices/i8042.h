/* i8042 — just enough of the PS/2 keyboard controller for the guest to
 * reboot through it (Linux's reboot=kbd fallback, many older OSes).
 * Portable device model. The VM registers two 1-port ranges, both with the
 * same struct i8042 as `dev`: i8042_data_io() at PORT_I8042_DATA and
 * i8042_cmd_io() at PORT_I8042_CMD. No keyboard is attached: the status
 * register reads 0 (output buffer empty, input buffer free), data reads 0,
 * and commands other than a reset pulse are accepted and ignored. */
#ifndef VIGIL_DEVICES_I8042_H
#define VIGIL_DEVICES_I8042_H

#include <stdbool.h>
#include <stdint.h>

#include "core/vmctl.h"

struct i8042;

/* NULL on ENOMEM. */
struct i8042 *i8042_new(struct vmctl ctl);
void i8042_free(struct i8042 *k);

/* bus_io_fn for the data port. */
void i8042_data_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* bus_io_fn for the command/status port. Pulse-output commands that pulse
 * the reset line (0xf0..0xfe even, 0xfe in practice) stop the VM with
 * VM_STOP_RESET. */
void i8042_cmd_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* Ctrl+Alt+Del from the keyboard. -1: no keyboard is attached. */
int i8042_ctrl_alt_del(struct i8042 *k);

#endif
