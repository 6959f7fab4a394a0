/* run_cmd — `vigil run`: options into a VM configuration, then the control
 * loop (and the API server, with --api-sock). */
#ifndef VIGIL_CLI_RUN_CMD_H
#define VIGIL_CLI_RUN_CMD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vmm/config.h"

#define RUN_DEFAULT_MEM (256ULL << 20)
#define RUN_MIN_MEM (64ULL << 20)

struct run_opts {
	struct vm_config cfg;
	const char *kernel; /* NULL: the default guest (unless an API waits) */
	const char *initrd;
	const char *cmdline; /* appended to vigil's default command line */
	const char *api_sock;
	const char *config_file;
	const char *policy; /* --policy FILE, read after the config file (and so wins) */
	bool no_api;
	int seccomp;       /* --seccomp: enum seccomp_mode, when seccomp_given */
	bool seccomp_given;
	bool gdb_wait; /* --gdb-wait (checked against --gdb once all options are read) */
	bool mem_given; /* --mem was given */
};

/* Parses argv (after "run"); returns 0, 1 after printing help, or -1 after
 * printing a one-line error. */
int run_parse(int argc, char **argv, struct run_opts *o);
int run_main(int argc, char **argv);
void run_usage(FILE *out);

#endif
