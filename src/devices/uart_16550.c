#include "devices/uart_16550.h"

#include <errno.h>
#include <pthread.h>

#include "core/deadline.h"
#include "core/dev.h"
#include "core/snap.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Register offsets; DLAB swaps RBR/THR and IER for the divisor latch. */
#define UART_RBR 0 /* THR on write, DLL with DLAB */
#define UART_IER 1 /* DLM with DLAB */
#define UART_IIR 2 /* FCR on write */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7
#define UART_NR_REGS 8

#define UART_IER_RDI  0x01 /* received data available */
#define UART_IER_THRI 0x02 /* transmitter holding register empty */
#define UART_IER_RLSI 0x04 /* receiver line status */
#define UART_IER_MSI  0x08 /* modem status */

#define UART_IIR_MSI    0x00
#define UART_IIR_NO_INT 0x01
#define UART_IIR_THRI   0x02
#define UART_IIR_RDI    0x04
#define UART_IIR_RLSI   0x06
#define UART_IIR_FIFO   0xc0

#define UART_FCR_ENABLE   0x01
#define UART_FCR_CLEAR_RX 0x02

#define UART_LCR_DLAB 0x80

#define UART_MCR_DTR  0x01
#define UART_MCR_RTS  0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10

#define UART_LSR_DR   0x01
#define UART_LSR_OE   0x02
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40

#define UART_MSR_DCTS 0x01
#define UART_MSR_DDSR 0x02
#define UART_MSR_TERI 0x04
#define UART_MSR_DDCD 0x08
#define UART_MSR_CTS  0x10
#define UART_MSR_DSR  0x20
#define UART_MSR_RI   0x40
#define UART_MSR_DCD  0x80

#define UART_FIFO_SIZE 16

struct uart_16550 {
	pthread_mutex_t lock;
	pthread_cond_t room; /* the RX FIFO may have gained space */
	struct irq_line irq;
	struct chardev_out out;
	struct vclock clk; /* for rx_wait_room deadlines */
	uint8_t dll, dlm, ier, lcr, mcr, scr;
	uint8_t msr_delta; /* MSR bits 0..3, cleared by reading MSR */
	bool fifo_on;
	bool thr_pending; /* THRE interrupt armed and not yet acknowledged */
	bool overrun;     /* LSR.OE, cleared by reading LSR */
	int irq_level;
	uint8_t rx[UART_FIFO_SIZE];
	unsigned rx_head, rx_count;
};

static unsigned uart_rx_cap(const struct uart_16550 *u)
{
	/* Without FIFOs a 16550 is a 16450 with a single holding register. */
	return u->fifo_on ? UART_FIFO_SIZE : 1;
}

static bool uart_has_room(const struct uart_16550 *u)
{
	return (u->mcr & UART_MCR_LOOP) || u->rx_count < uart_rx_cap(u);
}

static bool uart_rx_put(struct uart_16550 *u, uint8_t v)
{
	if (u->rx_count >= uart_rx_cap(u))
		return false;
	u->rx[(u->rx_head + u->rx_count) % UART_FIFO_SIZE] = v;
	u->rx_count++;
	return true;
}

static void uart_rx_clear(struct uart_16550 *u)
{
	u->rx_head = 0;
	u->rx_count = 0;
	pthread_cond_broadcast(&u->room);
}

/* Modem status inputs. Outside loopback nothing is attached, so report a
 * present, ready peer: getty and the 8250 driver then never wait for
 * carrier or CTS. In loopback the outputs are wired back to the inputs,
 * which is what the 8250 driver's probe checks. */
static uint8_t uart_msr_lines(uint8_t mcr)
{
	if (!(mcr & UART_MCR_LOOP))
		return UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
	return ((mcr & UART_MCR_DTR) ? UART_MSR_DSR : 0) | ((mcr & UART_MCR_RTS) ? UART_MSR_CTS : 0) |
	       ((mcr & UART_MCR_OUT1) ? UART_MSR_RI : 0) | ((mcr & UART_MCR_OUT2) ? UART_MSR_DCD : 0);
}

/* The highest priority pending source, in IIR encoding. */
static uint8_t uart_iir_source(const struct uart_16550 *u)
{
	if (u->overrun && (u->ier & UART_IER_RLSI))
		return UART_IIR_RLSI;
	/* The trigger level is ignored: any received byte interrupts at once,
	 * which is what an interactive console wants. */
	if (u->rx_count && (u->ier & UART_IER_RDI))
		return UART_IIR_RDI;
	if (u->thr_pending && (u->ier & UART_IER_THRI))
		return UART_IIR_THRI;
	if (u->msr_delta && (u->ier & UART_IER_MSI))
		return UART_IIR_MSI;
	return UART_IIR_NO_INT;
}

/* On a PC the UART's interrupt output reaches the PIC through a buffer
 * enabled by OUT2; drivers rely on OUT2 to mask the line. */
static void uart_update_irq(struct uart_16550 *u)
{
	int level = uart_iir_source(u) != UART_IIR_NO_INT && (u->mcr & UART_MCR_OUT2);

	if (level != u->irq_level) {
		u->irq_level = level;
		irq_set(&u->irq, level);
	}
}

static void uart_transmit(struct uart_16550 *u, uint8_t v)
{
	if (u->mcr & UART_MCR_LOOP) {
		if (!uart_rx_put(u, v))
			u->overrun = true;
	} else {
		chardev_write(&u->out, &v, 1);
	}
	/* Writing THR acknowledges the THRE interrupt, but the byte leaves at
	 * once, so the holding register is empty again: a new THRE event.
	 * The 8250 driver depends on it to send more than one FIFO load. */
	u->thr_pending = (u->ier & UART_IER_THRI) != 0;
}

static void uart_write_ier(struct uart_16550 *u, uint8_t v)
{
	uint8_t rose = (uint8_t)(v & ~u->ier);

	u->ier = v & 0x0f;
	/* THRE interrupts on the rising edge of ETBEI while THR is empty (it
	 * always is); the 8250 driver's THRE probe toggles IER to test this. */
	if (!(u->ier & UART_IER_THRI))
		u->thr_pending = false;
	else if (rose & UART_IER_THRI)
		u->thr_pending = true;
}

static void uart_write_fcr(struct uart_16550 *u, uint8_t v)
{
	bool on = (v & UART_FCR_ENABLE) != 0;

	/* Toggling FIFO mode resets the FIFOs; the other bits only take
	 * effect while FIFOs are enabled. */
	if (on != u->fifo_on) {
		u->fifo_on = on;
		uart_rx_clear(u);
	}
	if (on && (v & UART_FCR_CLEAR_RX))
		uart_rx_clear(u);
}

static void uart_write_mcr(struct uart_16550 *u, uint8_t v)
{
	uint8_t before = uart_msr_lines(u->mcr), after = uart_msr_lines(v);
	uint8_t changed = before ^ after;

	if (changed & UART_MSR_CTS)
		u->msr_delta |= UART_MSR_DCTS;
	if (changed & UART_MSR_DSR)
		u->msr_delta |= UART_MSR_DDSR;
	if (changed & UART_MSR_DCD)
		u->msr_delta |= UART_MSR_DDCD;
	if ((before & UART_MSR_RI) && !(after & UART_MSR_RI))
		u->msr_delta |= UART_MSR_TERI;
	if ((v ^ u->mcr) & UART_MCR_LOOP)
		pthread_cond_broadcast(&u->room);
	u->mcr = v;
}

static void uart_write(struct uart_16550 *u, uint64_t reg, uint8_t v)
{
	bool dlab = (u->lcr & UART_LCR_DLAB) != 0;

	switch (reg) {
	case UART_RBR:
		if (dlab)
			u->dll = v;
		else
			uart_transmit(u, v);
		break;
	case UART_IER:
		if (dlab)
			u->dlm = v;
		else
			uart_write_ier(u, v);
		break;
	case UART_IIR:
		uart_write_fcr(u, v);
		break;
	case UART_LCR:
		u->lcr = v;
		break;
	case UART_MCR:
		uart_write_mcr(u, v & 0x1f);
		break;
	case UART_SCR:
		u->scr = v;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
}

static uint8_t uart_read(struct uart_16550 *u, uint64_t reg)
{
	bool dlab = (u->lcr & UART_LCR_DLAB) != 0;
	uint8_t v;

	switch (reg) {
	case UART_RBR:
		if (dlab)
			return u->dll;
		if (u->rx_count == 0)
			return 0;
		v = u->rx[u->rx_head];
		u->rx_head = (u->rx_head + 1) % UART_FIFO_SIZE;
		u->rx_count--;
		pthread_cond_broadcast(&u->room);
		return v;
	case UART_IER:
		return dlab ? u->dlm : u->ier;
	case UART_IIR:
		v = uart_iir_source(u);
		if (v == UART_IIR_THRI)
			u->thr_pending = false;
		return (uint8_t)(v | (u->fifo_on ? UART_IIR_FIFO : 0));
	case UART_LCR:
		return u->lcr;
	case UART_MCR:
		return u->mcr;
	case UART_LSR:
		v = UART_LSR_THRE | UART_LSR_TEMT;
		if (u->rx_count)
			v |= UART_LSR_DR;
		if (u->overrun)
			v |= UART_LSR_OE;
		u->overrun = false;
		return v;
	case UART_MSR:
		v = uart_msr_lines(u->mcr) | u->msr_delta;
		u->msr_delta = 0;
		return v;
	case UART_SCR:
		return u->scr;
	default:
		return 0xff;
	}
}

void uart_16550_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct uart_16550 *u = dev;

	if (len == 0)
		return;
	if (!is_write)
		memset(data, 0xff, len);
	if (offset >= UART_NR_REGS)
		return;
	pthread_mutex_lock(&u->lock);
	if (is_write)
		uart_write(u, offset, data[0]);
	else
		data[0] = uart_read(u, offset);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

size_t uart_16550_rx_push(struct uart_16550 *u, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&u->lock);
	if (u->mcr & UART_MCR_LOOP)
		n = len;
	else
		while (n < len && uart_rx_put(u, buf[n]))
			n++;
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

bool uart_16550_rx_wait_room(struct uart_16550 *u, int timeout_ms)
{
	struct timespec deadline = deadline_after_ms(&u->clk, timeout_ms);
	bool room;

	pthread_mutex_lock(&u->lock);
	while (!uart_has_room(u)) {
		int err = timeout_ms < 0 ? pthread_cond_wait(&u->room, &u->lock)
		                         : pthread_cond_timedwait(&u->room, &u->lock, &deadline);
		if (err == ETIMEDOUT)
			break;
	}
	room = uart_has_room(u);
	pthread_mutex_unlock(&u->lock);
	return room;
}

struct uart_16550 *uart_16550_new(struct irq_line irq, struct chardev_out out, const struct vclock *clk)
{
	struct uart_16550 *u = calloc(1, sizeof(*u));
	pthread_condattr_t attr;

	if (!u)
		return NULL;
	u->irq = irq;
	u->out = out;
	u->clk = *clk;
	u->dll = 0x0c; /* 9600 baud, what a PC BIOS leaves behind */
	pthread_mutex_init(&u->lock, NULL);
	pthread_condattr_init(&attr);
	/* Timeouts must not jump with the host's wall clock. */
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&u->room, &attr);
	pthread_condattr_destroy(&attr);
	return u;
}

void uart_16550_free(struct uart_16550 *u)
{
	if (!u)
		return;
	pthread_cond_destroy(&u->room);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

void uart_16550_reset(struct uart_16550 *u)
{
	/* A master reset clears IER, IIR, FCR, LCR, MCR, LSR and MSR and the
	 * FIFOs; the divisor latch and the scratch register keep their values. */
	pthread_mutex_lock(&u->lock);
	u->ier = u->lcr = u->mcr = 0;
	u->msr_delta = 0;
	u->fifo_on = u->thr_pending = u->overrun = false;
	u->rx_head = u->rx_count = 0;
	uart_update_irq(u);
	pthread_cond_broadcast(&u->room);
	pthread_mutex_unlock(&u->lock);
}

/* ---- snapshots ---------------------------------------------------------- */

#define UART_SNAP_VERSION 1

/* Everything the guest can read back: the registers, the latched line
 * status and modem deltas, and the RX FIFO's bytes in order. The line's
 * level follows from them and is driven again on restore. */
int uart_16550_save(struct vdev *d, struct snap_writer *w)
{
	struct uart_16550 *u = d->impl;

	pthread_mutex_lock(&u->lock);
	snap_begin(w, d->id, d->kind, UART_SNAP_VERSION);
	snap_put_u8(w, u->dll);
	snap_put_u8(w, u->dlm);
	snap_put_u8(w, u->ier);
	snap_put_u8(w, u->lcr);
	snap_put_u8(w, u->mcr);
	snap_put_u8(w, u->scr);
	snap_put_u8(w, u->msr_delta);
	snap_put_bool(w, u->fifo_on);
	snap_put_bool(w, u->thr_pending);
	snap_put_bool(w, u->overrun);
	snap_put_u8(w, (uint8_t)u->rx_count);
	for (unsigned i = 0; i < u->rx_count; i++)
		snap_put_u8(w, u->rx[(u->rx_head + i) % UART_FIFO_SIZE]);
	snap_end(w);
	pthread_mutex_unlock(&u->lock);
	return 0;
}

int uart_16550_restore(struct vdev *d, struct snap_reader *r)
{
	struct uart_16550 *u = d->impl;
	struct uart_16550 t;

	if (snap_open_section(r, d->id, d->kind, UART_SNAP_VERSION, NULL) < 0)
		return -1;
	t.dll = snap_get_u8(r);
	t.dlm = snap_get_u8(r);
	t.ier = snap_get_u8(r);
	t.lcr = snap_get_u8(r);
	t.mcr = snap_get_u8(r);
	t.scr = snap_get_u8(r);
	t.msr_delta = snap_get_u8(r);
	t.fifo_on = snap_get_bool(r);
	t.thr_pending = snap_get_bool(r);
	t.overrun = snap_get_bool(r);
	t.rx_count = snap_get_u8(r);
	if (snap_status(r, NULL, 0) < 0)
		return -1;
	if (t.ier & ~0x0fu || t.mcr & ~0x1fu || t.msr_delta & ~0x0fu)
		return snap_fail(r, "reserved register bits set (IER 0x%02x MCR 0x%02x MSR 0x%02x)", t.ier, t.mcr,
				 t.msr_delta);
	if (t.rx_count > uart_rx_cap(&t))
		return snap_fail(r, "%u bytes in a receive FIFO of %u", t.rx_count, uart_rx_cap(&t));
	snap_get(r, t.rx, t.rx_count);
	if (snap_status(r, NULL, 0) < 0)
		return -1;

	pthread_mutex_lock(&u->lock);
	u->dll = t.dll;
	u->dlm = t.dlm;
	u->ier = t.ier;
	u->lcr = t.lcr;
	u->mcr = t.mcr;
	u->scr = t.scr;
	u->msr_delta = t.msr_delta;
	u->fifo_on = t.fifo_on;
	u->thr_pending = t.thr_pending;
	u->overrun = t.overrun;
	memcpy(u->rx, t.rx, t.rx_count);
	u->rx_head = 0;
	u->rx_count = t.rx_count;
	/* Drive the line to what the registers say, whatever it was. */
	u->irq_level = -1;
	uart_update_irq(u);
	pthread_cond_broadcast(&u->room);
	pthread_mutex_unlock(&u->lock);
	return 0;
}
