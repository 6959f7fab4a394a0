/* log — vigil-metal's own lines on COM1, each "vigil-metal: ...", so a
 * reader of the serial stream tells them from the guest's output. */
#include <stdio.h>

#include "metal/metal.h"

void metal_vlog(const char *fmt, va_list ap)
{
	char line[1280]; /* a trace or audit record (1 KiB) and its prefix */
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	if (n < 0)
		n = 0;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* One line at a time across CPUs; bounded, so a CPU that faulted
	 * holding it cannot silence the others. */
	static volatile int busy;
	for (unsigned spins = 0; __atomic_exchange_n(&busy, 1, __ATOMIC_ACQUIRE) && spins < 10000000; spins++)
		__asm__ volatile("pause");
	if (!metal_serial_at_line_start())
		metal_serial_putc('\n'); /* after a guest's unfinished line */
	metal_serial_write("vigil-metal: ", 13);
	metal_serial_write(line, (size_t)n);
	__atomic_store_n(&busy, 0, __ATOMIC_RELEASE);
}

void metal_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	metal_vlog(fmt, ap);
	va_end(ap);
}
