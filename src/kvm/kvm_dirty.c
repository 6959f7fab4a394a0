/* KVM's dirty page log of guest RAM (kvm.h: kvm_dirty_log_enable/fetch):
 * KVM_MEM_LOG_DIRTY_PAGES on every RAM slot, and KVM_GET_DIRTY_LOG, which
 * hands over the log and clears it (MANUAL_DIRTY_LOG_PROTECT2 is never
 * enabled). Only the guest's own writes are logged: what vigil's devices
 * write into guest memory is not. */
#include <errno.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#include "kvm/kvm.h"
#include "kvm/kvm_internal.h"

/* Region i of vm->mem is KVM slot i (map_ram adds them in slot order). */
static int set_slot_flags(struct kvm_backend *kb, unsigned region, uint32_t flags)
{
	const struct gmem_region *g = &kb->vm->mem.r[region];
	struct kvm_userspace_memory_region m = {
		.slot = region,
		.flags = flags,
		.guest_phys_addr = g->gpa,
		.memory_size = g->size,
		.userspace_addr = (uint64_t)(uintptr_t)g->host,
	};
	return ioctl(kb->vm_fd, KVM_SET_USER_MEMORY_REGION, &m) < 0 ? -errno : 0;
}

int kvm_dirty_log_enable(struct kvm_backend *kb, bool on)
{
	for (unsigned i = 0; i < kb->vm->mem.nr; i++) {
		int r = set_slot_flags(kb, i, on ? KVM_MEM_LOG_DIRTY_PAGES : 0);
		if (r < 0) {
			/* all or nothing: the slots done so far go back */
			for (unsigned j = 0; j < i; j++)
				set_slot_flags(kb, j, kb->dirty_log ? KVM_MEM_LOG_DIRTY_PAGES : 0);
			return r;
		}
	}
	kb->dirty_log = on;
	return 0;
}

int kvm_dirty_log_fetch(struct kvm_backend *kb, unsigned region, uint64_t *bitmap)
{
	if (!kb->dirty_log)
		return -ENOENT;
	if (region >= kb->vm->mem.nr)
		return -EINVAL;
	uint64_t pages = kb->vm->mem.r[region].size / 4096, words = (pages + 63) / 64;
	/* KVM writes a whole number of longs: exactly the caller's words. */
	uint64_t *tmp = calloc(words ? words : 1, sizeof(uint64_t));
	if (!tmp)
		return -ENOMEM;
	struct kvm_dirty_log log = { .slot = region, .dirty_bitmap = tmp };
	if (ioctl(kb->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
		int e = errno;
		free(tmp);
		return -e;
	}
	for (uint64_t i = 0; i < words; i++)
		bitmap[i] |= tmp[i];
	free(tmp);
	return 0;
}
