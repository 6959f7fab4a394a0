/* pvpanic — QEMU's pvpanic ISA port: the guest kernel tells the host it
 * panicked, so the VM stops with VM_STOP_PANIC instead of sitting in a
 * panic loop. Portable device model; the VM registers pvpanic_io() on the
 * port bus at PORT_PVPANIC (1 port); the guest finds it through the
 * QEMU0001 device in the DSDT. */
#ifndef VIGIL_DEVICES_PVPANIC_H
#define VIGIL_DEVICES_PVPANIC_H

#include <stdbool.h>
#include <stdint.h>

#include "core/vmctl.h"

#define PVPANIC_PANICKED     0x01
#define PVPANIC_CRASH_LOADED 0x02

struct pvpanic;
struct vdev;
struct snap_writer;
struct snap_reader;

/* NULL on ENOMEM. */
struct pvpanic *pvpanic_new(struct vmctl ctl);
void pvpanic_free(struct pvpanic *p);

/* Forgets a "crash kernel loaded" notice. */
void pvpanic_reset(struct pvpanic *p);

/* bus_io_fn. Reads give the supported events; a write with
 * PVPANIC_PANICKED stops the VM with VM_STOP_PANIC. A write with only
 * PVPANIC_CRASH_LOADED (a kdump kernel is about to take over) does not
 * stop it: the crash kernel must run. It is remembered. */
void pvpanic_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* True once the guest reported PVPANIC_CRASH_LOADED. */
bool pvpanic_crash_loaded(struct pvpanic *p);

/* Snapshots (vdev_ops.save/restore; d->impl is the device): whether the
 * guest announced a crash kernel. 0 or -1 (snap error set). */
int pvpanic_save(struct vdev *d, struct snap_writer *w);
int pvpanic_restore(struct vdev *d, struct snap_reader *r);

#endif
