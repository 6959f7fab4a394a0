/* run_cmd — `vigil run`: options, then build and run one VM on KVM. */
#ifndef VIGIL_CLI_RUN_CMD_H
#define VIGIL_CLI_RUN_CMD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/run_devices.h"

#define RUN_DEFAULT_MEM (256ULL << 20)
#define RUN_MIN_MEM (64ULL << 20)
#define RUN_DEFAULT_CMDLINE "console=ttyS0 panic=-1"
#define RUN_DEFAULT_CMDLINE_HVC "console=hvc0 panic=-1"

struct run_opts {
	const char *kernel; /* NULL: the default guest */
	const char *initrd;
	const char *cmdline; /* appended to RUN_DEFAULT_CMDLINE */
	uint64_t mem;
	unsigned cpus;
	const char *console;
	bool stats;
	const char *trace; /* file for --trace, "-" for stderr */
	struct run_devices devices;
};

/* Parses argv (after "run"); returns 0, 1 after printing help, or -1 after
 * printing a one-line error. */
int run_parse(int argc, char **argv, struct run_opts *o);
int run_main(int argc, char **argv);
void run_usage(FILE *out);

#endif
