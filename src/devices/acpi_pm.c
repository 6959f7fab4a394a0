#include "devices/acpi_pm.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/dev.h"
#include "core/snap.h"

#define PM_STS   0x0
#define PM_EN    0x2
#define PM_CNT   0x4
#define PM_RESET 0x8
#define PM_LEN   ACPI_PM_LEN

#define PM_STS_WAK        0x8000
#define PM_CNT_SCI_EN     0x0001
#define PM_CNT_BM_RLD     0x0002
#define PM_CNT_SLP_TYP    0x1c00
#define PM_CNT_SLP_SHIFT  10
#define PM_CNT_SLP_EN     0x2000

struct acpi_pm {
	pthread_mutex_t lock;
	struct vmctl ctl;
	uint16_t sts, en, cnt;
};

static uint8_t pm_read_byte(const struct acpi_pm *pm, uint64_t off)
{
	uint16_t cnt = pm->cnt | PM_CNT_SCI_EN;

	switch (off) {
	case PM_STS: return (uint8_t)pm->sts;
	case PM_STS + 1: return (uint8_t)(pm->sts >> 8);
	case PM_EN: return (uint8_t)pm->en;
	case PM_EN + 1: return (uint8_t)(pm->en >> 8);
	case PM_CNT: return (uint8_t)cnt;
	case PM_CNT + 1: return (uint8_t)(cnt >> 8);
	case PM_RESET: return 0;
	default: return 0xff;
	}
}

/* Returns true when the byte set SLP_EN. */
static bool pm_write_byte(struct acpi_pm *pm, uint64_t off, uint8_t v, bool *reset)
{
	/* Only SLP_TYP and BM_RLD are state; SLP_EN and GBL_RLS are
	 * write-only triggers, SCI_EN is fixed. */
	uint16_t keep = PM_CNT_SLP_TYP | PM_CNT_BM_RLD;

	switch (off) {
	case PM_STS: pm->sts &= (uint16_t)~v; break;
	case PM_STS + 1: pm->sts &= (uint16_t)~(v << 8); break;
	case PM_EN: pm->en = (uint16_t)((pm->en & 0xff00) | v); break;
	case PM_EN + 1: pm->en = (uint16_t)((pm->en & 0x00ff) | v << 8); break;
	case PM_CNT: pm->cnt = (uint16_t)((pm->cnt & 0xff00) | (v & keep)); break;
	case PM_CNT + 1:
		pm->cnt = (uint16_t)((pm->cnt & 0x00ff) | ((v << 8) & keep));
		return (v << 8) & PM_CNT_SLP_EN;
	case PM_RESET:
		if (v == ACPI_PM_RESET_VALUE)
			*reset = true;
		break;
	default:
		break;
	}
	return false;
}

void acpi_pm_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct acpi_pm *pm = dev;
	enum vm_stop stop = VM_STOP_NONE;
	bool sleep = false, reset = false;

	if (!is_write)
		memset(data, 0xff, len);
	if (offset >= PM_LEN || len > PM_LEN - offset)
		return;
	pthread_mutex_lock(&pm->lock);
	for (uint32_t i = 0; i < len; i++) {
		if (!is_write)
			data[i] = pm_read_byte(pm, offset + i);
		else if (pm_write_byte(pm, offset + i, data[i], &reset))
			sleep = true;
	}
	if (sleep) {
		if (((pm->cnt & PM_CNT_SLP_TYP) >> PM_CNT_SLP_SHIFT) == ACPI_PM_SLP_TYP_S5)
			stop = VM_STOP_POWEROFF;
		else
			pm->sts |= PM_STS_WAK;
	}
	if (reset && stop == VM_STOP_NONE)
		stop = VM_STOP_RESET;
	pthread_mutex_unlock(&pm->lock);
	/* Outside the lock: stopping may kick vCPUs that are in here. */
	if (stop != VM_STOP_NONE)
		vmctl_stop(&pm->ctl, stop);
}

struct acpi_pm *acpi_pm_new(struct vmctl ctl)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));

	if (!pm)
		return NULL;
	pm->ctl = ctl;
	pthread_mutex_init(&pm->lock, NULL);
	return pm;
}

void acpi_pm_free(struct acpi_pm *pm)
{
	if (!pm)
		return;
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

void acpi_pm_reset(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->sts = pm->en = pm->cnt = 0;
	pthread_mutex_unlock(&pm->lock);
}

/* ---- snapshots ---------------------------------------------------------- */

#define PM_SNAP_VERSION 1

int acpi_pm_save(struct vdev *d, struct snap_writer *w)
{
	struct acpi_pm *pm = d->impl;

	pthread_mutex_lock(&pm->lock);
	snap_begin(w, d->id, d->kind, PM_SNAP_VERSION);
	snap_put_u16(w, pm->sts);
	snap_put_u16(w, pm->en);
	snap_put_u16(w, pm->cnt);
	snap_end(w);
	pthread_mutex_unlock(&pm->lock);
	return 0;
}

int acpi_pm_restore(struct vdev *d, struct snap_reader *r)
{
	struct acpi_pm *pm = d->impl;

	if (snap_open_section(r, d->id, d->kind, PM_SNAP_VERSION, NULL) < 0)
		return -1;
	uint16_t sts = snap_get_u16(r), en = snap_get_u16(r), cnt = snap_get_u16(r);
	if (snap_status(r, NULL, 0) < 0)
		return -1;
	if (cnt & ~(PM_CNT_SLP_TYP | PM_CNT_BM_RLD))
		return snap_fail(r, "PM1 control 0x%04x has bits no guest write can set", cnt);
	pthread_mutex_lock(&pm->lock);
	pm->sts = sts;
	pm->en = en;
	pm->cnt = cnt;
	pthread_mutex_unlock(&pm->lock);
	return 0;
}
