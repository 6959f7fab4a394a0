/* options — vigil-metal's command line (the multiboot cmdline): `vigil
 * run`'s options where they apply, with its syntax and its messages. */
#ifndef VIGIL_METAL_OPTIONS_H
#define VIGIL_METAL_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define METAL_CMDLINE_MAX 1024

struct metal_opts {
	uint64_t mem;   /* bytes */
	unsigned cpus;
	char cmdline[METAL_CMDLINE_MAX]; /* the guest's, whole */
	bool stats;
	bool virtio_console; /* --console-device virtio: the guest's console is hvc0 */
	bool trace;     /* --trace: JSON lines on COM1 (any FILE argument names COM1) */
	/* --selftest KIND, for tests/metal.sh (metal/selftest.h). */
	char selftest[16];
};

/* Parses the loader's cmdline (its first word is the image's own file
 * name). 0, or -1 with vigil run's line for the mistake in err. */
int metal_opts_parse(const char *line, struct metal_opts *o, char *err, size_t errlen);

#endif
