/* serial — the machine's COM1 (a 16550A at 0x3f8), polled: no interrupts,
 * no buffers, so a message gets out even from a fault handler. */
#include <stdbool.h>

#include "metal/metal.h"

#define COM1 0x3f8

void metal_serial_init(void)
{
	metal_outb(COM1 + 1, 0x00); /* no interrupts */
	metal_outb(COM1 + 3, 0x80); /* DLAB: divisor follows */
	metal_outb(COM1 + 0, 0x01); /* 115200 baud */
	metal_outb(COM1 + 1, 0x00);
	metal_outb(COM1 + 3, 0x03); /* 8N1 */
	metal_outb(COM1 + 2, 0xc7); /* FIFOs on, cleared */
	metal_outb(COM1 + 4, 0x03); /* DTR, RTS */
}

static char last = '\n';

bool metal_serial_at_line_start(void)
{
	return last == '\n';
}

void metal_serial_putc(char c)
{
	last = c;
	/* Bounded: a machine without a UART must not hang here. */
	for (unsigned i = 0; i < 100000 && !(metal_inb(COM1 + 5) & 0x20); i++)
		__asm__ volatile("pause");
	metal_outb(COM1, (uint8_t)c);
}

void metal_serial_write(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		metal_serial_putc(s[i]);
}

int metal_serial_getc(void)
{
	if (!(metal_inb(COM1 + 5) & 0x01))
		return -1;
	return metal_inb(COM1);
}
