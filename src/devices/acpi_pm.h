/* acpi_pm — the ACPI fixed hardware vigil's FADT points at: the PM1a event
 * block (status, enable), the PM1a control block and the reset register.
 * It is how the guest powers off (S5) and reboots. Portable device model;
 * the VM registers acpi_pm_io() on the port bus at PORT_ACPI_PM
 * (ACPI_PM_LEN ports). There is no legacy (non-ACPI) mode, so SCI_EN
 * always reads 1, and no event raises an SCI yet. */
#ifndef VIGIL_DEVICES_ACPI_PM_H
#define VIGIL_DEVICES_ACPI_PM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/vmctl.h"

/* The device's side of the contract with the FADT and the DSDT's _S5;
 * they match ACPI_SLP_TYP_S5, ACPI_RESET_VALUE and PORT_ACPI_PM_LEN in
 * arch/x86/layout.h (the unit test checks), kept apart so the device
 * model includes no arch header. */
#define ACPI_PM_LEN         0x10
#define ACPI_PM_SLP_TYP_S5  5
#define ACPI_PM_RESET_VALUE 0x01

struct acpi_pm;
struct vdev;
struct snap_writer;
struct snap_reader;

/* NULL on ENOMEM. */
struct acpi_pm *acpi_pm_new(struct vmctl ctl);
void acpi_pm_free(struct acpi_pm *pm);

/* Back to the power-on state: PM1 status, enable and control cleared. */
void acpi_pm_reset(struct acpi_pm *pm);

/* bus_io_fn. Registers are byte-addressable little-endian fields, so any
 * width works: +0 PM1a_STS (16 bits, write 1 to clear), +2 PM1a_EN,
 * +4 PM1a_CNT, +8 reset register (byte, write-only, reads 0). Other bytes
 * read 0xff and ignore writes.
 * Writing PM1a_CNT with SLP_EN and SLP_TYP == ACPI_PM_SLP_TYP_S5 stops the VM
 * with VM_STOP_POWEROFF; other sleep types wake at once (WAK_STS is set)
 * so a guest waiting for the wake-up does not spin forever. Writing
 * ACPI_PM_RESET_VALUE to the reset register stops it with VM_STOP_RESET. */
void acpi_pm_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* Snapshots (vdev_ops.save/restore; d->impl is the device): PM1 status,
 * enable and control. 0 or -1 (snap error set). */
int acpi_pm_save(struct vdev *d, struct snap_writer *w);
int acpi_pm_restore(struct vdev *d, struct snap_reader *r);

#endif
