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
	atomic_init(&vm->stop, VM_STOP_NONE);
	struct policy *p = policy_default();
	if (!p) {
		free(vm->stats);
		return -ENOMEM;
	}
	policy_slot_init(&vm->policy, p);
	policy_slot_reserve_vcpus(&vm->policy, ncpus);
	return 0;
}

void vm_fini(struct vm *vm)
{
	vcpus_fini(vm);
	free(vm->stats);
	vm->stats = NULL;
	policy_slot_fini(&vm->policy);
}

void vm_request_stop(struct vm *vm, enum vm_stop why)
{
	int expected = VM_STOP_NONE;

	atomic_compare_exchange_strong(&vm->stop, &expected, (int)why);
	vcpus_wake_all(vm);
}

struct vdev *vm_dev_add(struct vm *vm, const char *id, const char *kind, const struct vdev_ops *ops,
			void *impl)
{
	if (vm->nr_devs == VM_MAX_DEVICES || strlen(id) == 0 || strlen(id) > VDEV_ID_MAX || vm_dev_find(vm, id))
		return NULL;
	struct vdev *d = &vm->devs[vm->nr_devs++];
	memset(d, 0, sizeof(*d));
	strcpy(d->id, id);
	d->kind = kind;
	d->ops = ops;
	d->impl = impl;
	d->stats.name = d->id;
	return d;
}

struct vdev *vm_dev_find(struct vm *vm, const char *id)
{
	for (unsigned i = 0; i < vm->nr_devs; i++)
		if (strcmp(vm->devs[i].id, id) == 0)
			return &vm->devs[i];
	return NULL;
}

struct dev_gate vm_dev_gate(struct vm *vm, struct vdev *d, bool read_only)
{
	return (struct dev_gate){
		.stats = &d->stats, .policy = &vm->policy, .id = d->id, .read_only = read_only, .ev = vm->ev
	};
}

void vm_devs_quiesce(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_devs; i++)
		if (vm->devs[i].ops && vm->devs[i].ops->quiesce)
			vm->devs[i].ops->quiesce(&vm->devs[i]);
}

void vm_devs_resume(struct vm *vm)
{
	for (unsigned i = vm->nr_devs; i-- > 0;)
		if (vm->devs[i].ops && vm->devs[i].ops->resume)
			vm->devs[i].ops->resume(&vm->devs[i]);
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
	if (space == POLICY_MSR)
		return NULL;
	const struct bus_range *r = bus_find(space == POLICY_PIO ? &vm->pio : &vm->mmio, addr, 1);
	return bus_owner(r, addr, 1);
}

const char *vm_stop_name(enum vm_stop why)
{
	switch (why) {
	case VM_STOP_NONE: return "not stopped";
	case VM_STOP_POWEROFF: return "guest powered off";
	case VM_STOP_ERROR: return "vigil error";
	case VM_STOP_RESET: return "guest reset";
	case VM_STOP_CRASH: return "guest crashed";
	case VM_STOP_PANIC: return "guest panicked";
	case VM_STOP_USER: return "stopped by user";
	}
	return "unknown";
}
