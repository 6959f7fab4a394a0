#include "core/vm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int vm_init(struct vm *vm, unsigned ncpus)
{
	memset(vm, 0, sizeof(*vm));
	vm->ncpus = ncpus;
	vm->stats = calloc(ncpus, sizeof(*vm->stats));
	if (!vm->stats)
		return -ENOMEM;
	atomic_init(&vm->stop, VM_RUNNING);
	return 0;
}

void vm_fini(struct vm *vm)
{
	free(vm->stats);
	vm->stats = NULL;
}

void vm_request_stop(struct vm *vm, enum vm_stop why)
{
	int expected = VM_RUNNING;

	atomic_compare_exchange_strong(&vm->stop, &expected, (int)why);
	if (vm->kick)
		vm->kick(vm->backend);
}

struct dev_gate vm_dev_gate(struct vm *vm, const char *name, bool read_only)
{
	struct dev_gate g = { .policy = &vm->policy, .read_only = read_only };

	if (vm->nr_devs < VM_MAX_DEVICES) {
		g.stats = &vm->devs[vm->nr_devs++];
		g.stats->name = name;
	}
	return g;
}

static void vm_ctl_stop(void *ctx, enum vm_stop why)
{
	vm_request_stop(ctx, why);
}

struct vmctl vm_ctl(struct vm *vm)
{
	return (struct vmctl){ .stop = vm_ctl_stop, .ctx = vm };
}

const char *vm_device_name(void *ctx, enum policy_space space, uint64_t addr)
{
	struct vm *vm = ctx;
	const struct bus_range *r = bus_find(space == POLICY_PIO ? &vm->pio : &vm->mmio, addr, 1);
	return r ? r->name : NULL;
}

const char *vm_stop_name(enum vm_stop why)
{
	switch (why) {
	case VM_RUNNING: return "running";
	case VM_STOP_POWEROFF: return "guest powered off";
	case VM_STOP_ERROR: return "vigil error";
	case VM_STOP_RESET: return "guest reset";
	case VM_STOP_CRASH: return "guest crashed";
	case VM_STOP_PANIC: return "guest panicked";
	case VM_STOP_USER: return "stopped by user";
	}
	return "unknown";
}
