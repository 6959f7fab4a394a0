/* crash — the one way vigil-metal's own failures end (metal.h). */
#include "metal/metal.h"

void metal_crash(const char *why)
{
	static int once;
	__asm__ volatile("cli");
	if (once++)
		metal_halt(); /* failed again on the way out: stop here */
	metal_log("fatal: %s", why);
	metal_poweroff(METAL_EXIT_FATAL);
}

