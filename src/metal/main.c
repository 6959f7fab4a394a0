/* main — vigil-metal from the boot code's call to the guest's end: read
 * what the loader handed over, find the machine's memory and clock, then
 * (to come) build the VM from the same portable core as `vigil run` and run
 * it under the SVM backend. */
#include <stdint.h>

#include "metal/mem.h"
#include "metal/metal.h"
#include "metal/multiboot.h"

static struct mb_info mb;

void metal_main(uint32_t magic, uint32_t info);

void metal_main(uint32_t magic, uint32_t info)
{
	char err[256];
	metal_serial_init();
	metal_log("starting");
	if (mb_parse(magic, info, &mb, err, sizeof(err)) < 0) {
		metal_log("%s", err);
		metal_poweroff(1);
	}
	metal_mem_init(&mb);
	metal_clock_init();
	metal_log("cmdline \"%s\"; %u module(s); %llu MiB free; TSC %llu kHz", mb.cmdline, mb.nr_mods,
		  (unsigned long long)(metal_free_bytes() >> 20), (unsigned long long)(metal_tsc_hz() / 1000));
	for (unsigned i = 0; i < mb.nr_mods; i++)
		metal_log("module %u: %#llx-%#llx \"%s\"", i, (unsigned long long)mb.mods[i].start,
			  (unsigned long long)mb.mods[i].end, mb.mods[i].string);
	metal_poweroff(0);
}
