/* multiboot — reading the information block a multiboot (v1) loader hands
 * over: the command line, the modules (guest kernel, initrd, policy, disk)
 * and the memory map. Everything in it is the loader's, so it is checked
 * like input: counts bounded, addresses below 4 GiB, strings bounded. */
#ifndef VIGIL_METAL_MULTIBOOT_H
#define VIGIL_METAL_MULTIBOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MB_BOOT_MAGIC 0x2BADB002u
#define MB_MAX_MODULES 8
#define MB_MAX_RANGES 32
#define MB_STR_MAX 1024

struct mb_module {
	uint64_t start, end; /* physical, [start, end) */
	char string[MB_STR_MAX];
};

struct mb_range {
	uint64_t base, len; /* usable RAM */
};

struct mb_info {
	char cmdline[MB_STR_MAX]; /* the loader's, kernel file name first */
	struct mb_module mods[MB_MAX_MODULES];
	unsigned nr_mods;
	struct mb_range ram[MB_MAX_RANGES];
	unsigned nr_ram;
};

/* Fills *out from the block at `addr`; -1 with a reason in err. */
int mb_parse(uint32_t magic, uint32_t addr, struct mb_info *out, char *err, size_t errlen);

#endif
