/* vmm_int — the VMM's state, shared by the files of the control plane that
 * change it on the control thread (vmm.c, vmm_snapshot.c) only. */
#ifndef VIGIL_VMM_VMM_INT_H
#define VIGIL_VMM_VMM_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "vmm/builder.h"
#include "vmm/config.h"
#include "vmm/vmm.h"

struct fc_metrics;

struct vmm {
	struct vm_config cfg;
	struct machine *mc;
	enum vmm_state state;
	pthread_t control;
	int wake; /* eventfd */
	/* One call slot; callers queue on `lock` until it is free. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	void (*call_fn)(void *);
	void *call_arg;
	uint64_t calls_posted, calls_done;
	bool closing;
	_Atomic int quit; /* enum vm_stop asked before there is a VM; -1 = none */
	uint64_t t0_ns;
	_Atomic uint64_t api_requests;
	struct fc_metrics *metrics;
	/* Loaded from a snapshot's memory file (File backend): which file,
	 * so that a snapshot never truncates the file RAM is mapped from. */
	bool has_mem_file;
	dev_t mem_dev;
	ino_t mem_ino;
	uint64_t last_snapshot_us, last_load_us;
	uint64_t load_t0_us; /* when the last load began (CLOCK_MONOTONIC) */
	bool last_snapshot_diff;
};

/* The machine's stop notice: wakes the control loop. */
void vmm_on_vm_stop(void *ctx);

#endif
