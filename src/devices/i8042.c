/* i8042 — the keyboard controller: status, command byte, the controller's
 * own commands, an output queue in front of port 0x60 and IRQ 1; keyboard
 * bytes go to and come from devices/ps2_kbd.c. See i8042.h.
 *
 * No aux port, answered the way Linux's i8042_check_aux() recognises:
 * 0xd3 (aux loopback) gets no reply, 0xa9 (aux interface test) reports a
 * stuck clock line, and 0xa8 cannot clear the command byte's aux-disable
 * bit. With our DSDT (PNP0303 and no PS/2 mouse device) Linux does not even
 * probe: it sets i8042.noaux itself. */
#include "devices/i8042.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/dev.h"
#include "core/snap.h"
#include "devices/ps2_kbd.h"

#define CMD_READ_CTR	 0x20
#define CMD_WRITE_CTR	 0x60
#define CMD_AUX_DISABLE	 0xa7
#define CMD_AUX_ENABLE	 0xa8
#define CMD_AUX_TEST	 0xa9
#define CMD_SELF_TEST	 0xaa
#define CMD_KBD_TEST	 0xab
#define CMD_KBD_DISABLE	 0xad
#define CMD_KBD_ENABLE	 0xae
#define CMD_READ_OUTP	 0xd0
#define CMD_WRITE_OUTP	 0xd1
#define CMD_WRITE_KBD_OB 0xd2 /* next data byte appears as if the keyboard sent it */
#define CMD_WRITE_AUX_OB 0xd3 /* the same for the aux port: none here */
#define CMD_WRITE_AUX	 0xd4 /* next data byte goes to the aux device: none here */
#define CMD_PULSE	 0xf0 /* 0xf0..0xff: pulse the output port bits given as 0 */

#define SELF_TEST_OK	 0x55
#define KBD_TEST_OK	 0x00
#define AUX_TEST_NO_PORT 0x02 /* "clock line stuck high": nothing attached */

#define OUTP_RESET 0x01 /* output port bit 0: the CPU reset line, active low */
#define OUTP_A20   0x02
#define OUTP_BOOT  (OUTP_RESET | OUTP_A20)

struct i8042 {
	pthread_mutex_t lock;
	struct vmctl ctl;
	struct irq_line irq;
	struct ps2_kbd kbd;
	uint8_t ctr;	  /* command byte */
	uint8_t outp;	  /* output port */
	uint8_t pending;  /* controller command waiting for its data byte, 0 if none */
	bool last_cmd;	  /* the last write went to port 0x64 (status bit 3) */
	uint8_t last_out; /* what an empty output buffer reads as: the last byte read */
	uint8_t q[I8042_QUEUE_LEN];
	unsigned head, count;
};

static void pulse_irq(struct i8042 *k)
{
	if (k->ctr & I8042_CTR_KBDINT) {
		irq_set(&k->irq, 1);
		irq_set(&k->irq, 0);
	}
}

/* Queues all n bytes or none. The first byte into an empty queue lands in
 * the output buffer at once; later ones as each is read. */
static bool push(struct i8042 *k, const uint8_t *b, unsigned n)
{
	bool was_empty = k->count == 0;

	if (n == 0 || n > I8042_QUEUE_LEN - k->count)
		return false;
	for (unsigned i = 0; i < n; i++)
		k->q[(k->head + k->count++) % I8042_QUEUE_LEN] = b[i];
	if (was_empty)
		pulse_irq(k);
	return true;
}

static void push1(struct i8042 *k, uint8_t b)
{
	push(k, &b, 1);
}

static uint8_t pop(struct i8042 *k)
{
	if (k->count == 0)
		return k->last_out;
	k->last_out = k->q[k->head];
	k->head = (k->head + 1) % I8042_QUEUE_LEN;
	if (--k->count)
		pulse_irq(k);
	return k->last_out;
}

static uint8_t status(const struct i8042 *k)
{
	uint8_t s = I8042_STR_UNLOCK;

	if (k->count)
		s |= I8042_STR_OBF;
	if (k->ctr & I8042_CTR_SYS)
		s |= I8042_STR_SYS;
	if (k->last_cmd)
		s |= I8042_STR_CMD;
	return s;
}

static void write_ctr(struct i8042 *k, uint8_t v)
{
	bool int_was_on = k->ctr & I8042_CTR_KBDINT;

	k->ctr = v;
	/* IRQ 1 follows OBF AND KBDINT: enabling it over a waiting byte is an edge. */
	if (!int_was_on && k->count)
		pulse_irq(k);
}

/* Returns true when the write pulls the reset line. */
static bool command(struct i8042 *k, uint8_t cmd)
{
	k->pending = 0;
	switch (cmd) {
	case CMD_READ_CTR:
		push1(k, k->ctr);
		break;
	case CMD_WRITE_CTR:
	case CMD_WRITE_OUTP:
	case CMD_WRITE_KBD_OB:
	case CMD_WRITE_AUX_OB:
	case CMD_WRITE_AUX:
		k->pending = cmd;
		break;
	case CMD_AUX_DISABLE:
		k->ctr |= I8042_CTR_AUXDIS;
		break;
	case CMD_AUX_ENABLE:
		break; /* no aux port to enable: AUXDIS stays set */
	case CMD_AUX_TEST:
		push1(k, AUX_TEST_NO_PORT);
		break;
	case CMD_SELF_TEST:
		k->ctr |= I8042_CTR_SYS;
		push1(k, SELF_TEST_OK);
		break;
	case CMD_KBD_TEST:
		push1(k, KBD_TEST_OK);
		break;
	case CMD_KBD_DISABLE:
		k->ctr |= I8042_CTR_KBDDIS;
		break;
	case CMD_KBD_ENABLE:
		k->ctr &= (uint8_t)~I8042_CTR_KBDDIS;
		break;
	case CMD_READ_OUTP:
		push1(k, k->outp);
		break;
	default:
		if ((cmd & 0xf0) == CMD_PULSE && !(cmd & OUTP_RESET))
			return true;
		break; /* unknown commands are ignored */
	}
	return false;
}

static bool data_write(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending;
	uint8_t out[PS2_KBD_MAX_OUT];

	k->pending = 0;
	switch (cmd) {
	case CMD_WRITE_CTR:
		write_ctr(k, v);
		return false;
	case CMD_WRITE_OUTP:
		k->outp = v;
		return !(v & OUTP_RESET);
	case CMD_WRITE_KBD_OB:
		push1(k, v);
		return false;
	case CMD_WRITE_AUX_OB:
	case CMD_WRITE_AUX:
		return false; /* no aux port: dropped, nothing answers */
	}
	/* A reply that does not fit is lost, as when a keyboard is ignored. */
	push(k, out, ps2_kbd_write(&k->kbd, v, k->ctr & I8042_CTR_XLATE, out));
	return false;
}

static void read_reg(struct i8042 *k, uint8_t *data, uint32_t len, bool data_port)
{
	if (len == 0)
		return;
	memset(data, 0xff, len);
	pthread_mutex_lock(&k->lock);
	data[0] = data_port ? pop(k) : status(k);
	pthread_mutex_unlock(&k->lock);
}

static void write_reg(struct i8042 *k, uint64_t offset, const uint8_t *data, uint32_t len, bool data_port)
{
	bool reset;

	if (len == 0 || offset != 0)
		return;
	pthread_mutex_lock(&k->lock);
	k->last_cmd = !data_port;
	reset = data_port ? data_write(k, data[0]) : command(k, data[0]);
	pthread_mutex_unlock(&k->lock);
	/* Outside the lock: stopping the VM may wait for other vCPUs. */
	if (reset)
		vmctl_stop(&k->ctl, VM_STOP_RESET);
}

void i8042_data_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	if (is_write)
		write_reg(dev, offset, data, len, true);
	else
		read_reg(dev, data, len, true);
}

void i8042_cmd_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	if (is_write)
		write_reg(dev, offset, data, len, false);
	else
		read_reg(dev, data, len, false);
}

int i8042_ctrl_alt_del(struct i8042 *k)
{
	uint8_t out[PS2_KBD_MAX_OUT];
	int ret = -1;

	pthread_mutex_lock(&k->lock);
	if (!(k->ctr & I8042_CTR_KBDDIS)) {
		/* On a copy, so a refused sequence leaves no trace (0xfe's "last"). */
		struct ps2_kbd kb = k->kbd;
		unsigned n = ps2_kbd_ctrl_alt_del(&kb, k->ctr & I8042_CTR_XLATE, out);

		if (push(k, out, n)) {
			k->kbd = kb;
			ret = 0;
		}
	}
	pthread_mutex_unlock(&k->lock);
	return ret;
}

struct i8042 *i8042_new(struct vmctl ctl, struct irq_line irq)
{
	struct i8042 *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	pthread_mutex_init(&k->lock, NULL);
	k->ctl = ctl;
	k->irq = irq;
	k->ctr = I8042_CTR_BOOT;
	k->outp = OUTP_BOOT;
	ps2_kbd_init(&k->kbd);
	return k;
}

void i8042_free(struct i8042 *k)
{
	if (!k)
		return;
	pthread_mutex_destroy(&k->lock);
	free(k);
}

void i8042_reset(struct i8042 *k)
{
	pthread_mutex_lock(&k->lock);
	k->ctr = I8042_CTR_BOOT;
	k->outp = OUTP_BOOT;
	k->pending = 0;
	k->last_cmd = false;
	k->last_out = 0;
	k->head = k->count = 0;
	ps2_kbd_init(&k->kbd);
	pthread_mutex_unlock(&k->lock);
}

/* ---- snapshots ---------------------------------------------------------- */

#define I8042_SNAP_VERSION 1

int i8042_save(struct vdev *d, struct snap_writer *w)
{
	struct i8042 *k = d->impl;

	pthread_mutex_lock(&k->lock);
	snap_begin(w, d->id, d->kind, I8042_SNAP_VERSION);
	snap_put_u8(w, k->ctr);
	snap_put_u8(w, k->outp);
	snap_put_u8(w, k->pending);
	snap_put_bool(w, k->last_cmd);
	snap_put_u8(w, k->last_out);
	snap_put_u8(w, (uint8_t)k->count);
	for (unsigned i = 0; i < k->count; i++)
		snap_put_u8(w, k->q[(k->head + i) % I8042_QUEUE_LEN]);
	ps2_kbd_save(&k->kbd, w);
	snap_end(w);
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static bool pending_ok(uint8_t cmd)
{
	return cmd == 0 || cmd == CMD_WRITE_CTR || cmd == CMD_WRITE_OUTP || cmd == CMD_WRITE_KBD_OB ||
	       cmd == CMD_WRITE_AUX_OB || cmd == CMD_WRITE_AUX;
}

int i8042_restore(struct vdev *d, struct snap_reader *r)
{
	struct i8042 *k = d->impl;
	uint8_t q[I8042_QUEUE_LEN];
	struct ps2_kbd kb;

	if (snap_open_section(r, d->id, d->kind, I8042_SNAP_VERSION, NULL) < 0)
		return -1;
	uint8_t ctr = snap_get_u8(r), outp = snap_get_u8(r), pending = snap_get_u8(r);
	bool last_cmd = snap_get_bool(r);
	uint8_t last_out = snap_get_u8(r), count = snap_get_u8(r);
	if (snap_status(r, NULL, 0) < 0)
		return -1;
	if (!pending_ok(pending))
		return snap_fail(r, "controller command 0x%02x cannot be waiting for data", pending);
	if (count > I8042_QUEUE_LEN)
		return snap_fail(r, "%u bytes in an output queue of %u", count, I8042_QUEUE_LEN);
	snap_get(r, q, count);
	if (ps2_kbd_restore(&kb, r) < 0 || snap_status(r, NULL, 0) < 0)
		return -1;

	pthread_mutex_lock(&k->lock);
	k->ctr = ctr;
	k->outp = outp;
	k->pending = pending;
	k->last_cmd = last_cmd;
	k->last_out = last_out;
	memcpy(k->q, q, count);
	k->head = 0;
	k->count = count;
	k->kbd = kb;
	pthread_mutex_unlock(&k->lock);
	return 0;
}
