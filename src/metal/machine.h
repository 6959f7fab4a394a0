/* machine — vigil-metal's builder: the VM made from the portable core in
 * the same order as the hosted builder (src/vmm/builder.c), with the SVM
 * backend, guest RAM carved from the machine and COM1 as the console; its
 * run on this CPU, and its end reported with `vigil run`'s words. */
#ifndef VIGIL_METAL_MACHINE_H
#define VIGIL_METAL_MACHINE_H

#include <stddef.h>
#include <stdint.h>

#include "core/policy.h"
#include "metal/options.h"

#define METAL_MAX_DISKS 4

struct metal_boot {
	const struct metal_opts *opts;
	const uint8_t *kernel;
	size_t kernel_len;
	const uint8_t *initrd; /* NULL: none */
	size_t initrd_len;
	const struct policy_spec *policy; /* NULL: the built-in default */
	/* RAM disks (modules ending " disk"), /dev/vda first; writes stay in RAM. */
	struct {
		uint8_t *data;
		size_t len;
	} disks[METAL_MAX_DISKS];
	unsigned nr_disks;
};

/* Builds the VM, runs it until it stops and reports; returns vigil run's
 * exit status (enum vm_stop) for metal_poweroff. A build failure is one
 * line (said here) and 1. */
int metal_machine_run(const struct metal_boot *b);

#endif
