/* vmctl — what a device may ask of the machine it sits in: to stop it, and
 * why. Devices get this small handle instead of the VM, so they can live
 * (and be tested) without a backend. */
#ifndef VIGIL_CORE_VMCTL_H
#define VIGIL_CORE_VMCTL_H

/* Why the VM stopped. The values double as vigil's exit status (README). */
enum vm_stop {
	VM_STOP_NONE = -1,
	VM_STOP_POWEROFF = 0, /* guest powered off (ACPI S5) */
	VM_STOP_ERROR = 1,    /* vigil's own error */
	VM_STOP_RESET = 2,    /* guest asked for a reset (reboot) */
	VM_STOP_CRASH = 3,    /* triple fault, KVM internal error, failed entry */
	VM_STOP_PANIC = 4,    /* guest kernel panicked (pvpanic) */
	VM_STOP_USER = 5,     /* Ctrl-A x or a signal */
};

struct vmctl {
	void (*stop)(void *ctx, enum vm_stop why);
	void *ctx;
};

static inline void vmctl_stop(const struct vmctl *c, enum vm_stop why)
{
	if (c->stop)
		c->stop(c->ctx, why);
}

const char *vm_stop_name(enum vm_stop why);

#endif
