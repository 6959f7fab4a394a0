#include "devices/pvpanic.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct pvpanic {
	struct vmctl ctl;
	atomic_bool crash_loaded;
};

void pvpanic_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pvpanic *p = dev;

	if (len == 0)
		return;
	if (!is_write) {
		memset(data, 0xff, len);
		data[0] = offset == 0 ? PVPANIC_PANICKED | PVPANIC_CRASH_LOADED : 0xff;
		return;
	}
	if (offset != 0)
		return;
	if (data[0] & PVPANIC_CRASH_LOADED)
		atomic_store(&p->crash_loaded, true);
	if (data[0] & PVPANIC_PANICKED)
		vmctl_stop(&p->ctl, VM_STOP_PANIC);
}

bool pvpanic_crash_loaded(struct pvpanic *p)
{
	return atomic_load(&p->crash_loaded);
}

struct pvpanic *pvpanic_new(struct vmctl ctl)
{
	struct pvpanic *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->ctl = ctl;
	atomic_init(&p->crash_loaded, false);
	return p;
}

void pvpanic_free(struct pvpanic *p)
{
	free(p);
}

void pvpanic_reset(struct pvpanic *p)
{
	atomic_store(&p->crash_loaded, false);
}
