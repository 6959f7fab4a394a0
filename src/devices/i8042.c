#include "devices/i8042.h"

#include <stdlib.h>
#include <string.h>

/* Commands 0xf0..0xff pulse the output port bits whose command bit is 0;
 * output port bit 0 is the CPU reset line. */
#define I8042_CMD_PULSE      0xf0
#define I8042_PULSE_RESET    0x01

/* Stateless: nothing to lock. */
struct i8042 {
	struct vmctl ctl;
};

static void i8042_read_zero(uint8_t *data, uint32_t len)
{
	if (len == 0)
		return;
	memset(data, 0xff, len);
	data[0] = 0;
}

void i8042_data_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	(void)dev;
	(void)offset;
	if (!is_write)
		i8042_read_zero(data, len);
}

void i8042_cmd_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8042 *k = dev;

	if (!is_write) {
		i8042_read_zero(data, len);
		return;
	}
	if (len == 0 || offset != 0)
		return;
	if ((data[0] & 0xf0) == I8042_CMD_PULSE && !(data[0] & I8042_PULSE_RESET))
		vmctl_stop(&k->ctl, VM_STOP_RESET);
}

struct i8042 *i8042_new(struct vmctl ctl)
{
	struct i8042 *k = calloc(1, sizeof(*k));

	if (k)
		k->ctl = ctl;
	return k;
}

void i8042_free(struct i8042 *k)
{
	free(k);
}

int i8042_ctrl_alt_del(struct i8042 *k)
{
	(void)k;
	return -1; /* no keyboard side yet */
}
