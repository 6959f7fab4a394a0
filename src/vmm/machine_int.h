/* machine_int — the machine's parts, shared by the files that build it
 * (builder.c) and snapshot it (builder_snap.c) only. */
#ifndef VIGIL_VMM_MACHINE_INT_H
#define VIGIL_VMM_MACHINE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "arch/x86/pc.h"
#include "core/vm.h"
#include "host/console.h"
#include "vmm/builder.h"
#include "vmm/config.h"

struct kvm_backend;
struct evloop;
struct gdb_server;
struct vtrace;

#define MAX_VIRTIO (VMCFG_MAX_DRIVES + VMCFG_MAX_NETS + 3)

struct mapped_file {
	const uint8_t *data;
	size_t len;
};

struct machine {
	struct vm vm;
	bool vm_ready;
	struct vm_config cfg;
	struct console con;
	bool con_open;
	struct pc_board pc;
	struct pc_config board; /* what the board's devices were given; lives as long */
	struct kvm_backend *kb;
	struct evloop *loop;
	struct gdb_server *gdb; /* --gdb, or NULL */
	struct mapped_file kernel, initrd;
	char cmdline[VMCFG_CMDLINE_MAX];
	/* virtio device models, freed after their transports and the loop */
	unsigned nr_virtio;
	struct virtio_dev *virtio[MAX_VIRTIO];
	void (*virtio_free[MAX_VIRTIO])(struct virtio_dev *d);
	struct virtio_dev *hvc; /* the console's virtio device, if it is on one */
	struct vcpu_thread {
		struct vm *vm;
		unsigned cpu;
		pthread_t thread;
		_Atomic int tid; /* the host thread id, for GET /vigil/vcpus */
		_Atomic uint64_t *first_entry_ns;
		bool started;
	} *threads;
	bool running; /* vCPU threads were started */
	struct vclock_shift rtc_clock; /* the policy's rtc redirect, when board.clock is it */
	struct vtrace *trace; /* the sink behind vm.ev: always there, so a trace can start live */
	int uffd;             /* the Uffd memory backend's descriptor, or -1 */
	bool dirty_on;        /* track_dirty_pages: KVM's log and gmem's bitmaps are on */
	bool ram_anon;        /* RAM is anonymous memory (a boot): a page never touched is zero */
	_Atomic uint64_t first_entry_ns; /* CLOCK_MONOTONIC when vCPU 0's loop began, 0 before */
};


/* builder_snap.c: dirty tracking on (KVM's log and gmem's bitmaps), and
 * the snapshot's state put into a machine just built from its config. */
int machine_track_dirty(struct machine *mc, char *err, size_t errlen);
int machine_restore_state(struct machine *mc, const struct machine_restore *rs, char *err, size_t errlen);

#endif
