#include "devices/pvpanic.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/dev.h"
#include "core/snap.h"

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

#define PVPANIC_SNAP_VERSION 1

int pvpanic_save(struct vdev *d, struct snap_writer *w)
{
	struct pvpanic *p = d->impl;

	snap_begin(w, d->id, d->kind, PVPANIC_SNAP_VERSION);
	snap_put_bool(w, atomic_load(&p->crash_loaded));
	snap_end(w);
	return 0;
}

int pvpanic_restore(struct vdev *d, struct snap_reader *r)
{
	struct pvpanic *p = d->impl;

	if (snap_open_section(r, d->id, d->kind, PVPANIC_SNAP_VERSION, NULL) < 0)
		return -1;
	bool loaded = snap_get_bool(r);
	if (snap_status(r, NULL, 0) < 0)
		return -1;
	atomic_store(&p->crash_loaded, loaded);
	return 0;
}
