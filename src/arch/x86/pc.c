#include "arch/x86/pc.h"

#include <stdio.h>
#include <string.h>

#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"
#include "core/errmsg.h"
#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/pci.h"
#include "devices/pvpanic.h"
#include "devices/rtc_cmos.h"
#include "devices/uart_16550.h"
#include "virtio/virtio_pci.h"

/* The legacy devices' lifecycle in the registry: a power-on reset. They
 * act only when a vCPU touches them, so a pause (vCPUs parked first) needs
 * no quiesce or resume of theirs. */
static void reset_uart(struct vdev *d) { uart_16550_reset(d->impl); }
static void reset_rtc(struct vdev *d) { rtc_cmos_reset(d->impl); }
static void reset_pm(struct vdev *d) { acpi_pm_reset(d->impl); }
static void reset_i8042(struct vdev *d) { i8042_reset(d->impl); }
static void reset_pvpanic(struct vdev *d) { pvpanic_reset(d->impl); }
static const struct vdev_ops uart_ops = { .reset = reset_uart, .save = uart_16550_save, .restore = uart_16550_restore };
static const struct vdev_ops rtc_ops = { .reset = reset_rtc, .save = rtc_cmos_save, .restore = rtc_cmos_restore };
static const struct vdev_ops pm_ops = { .reset = reset_pm, .save = acpi_pm_save, .restore = acpi_pm_restore };
static const struct vdev_ops i8042_ops = { .reset = reset_i8042, .save = i8042_save, .restore = i8042_restore };
static const struct vdev_ops pvpanic_ops = { .reset = reset_pvpanic, .save = pvpanic_save,
					     .restore = pvpanic_restore };
/* The PCI host's config spaces, BARs and CONFIG_ADDRESS; registered before
 * any virtio transport, so a restore re-places the BARs first. */
static const struct vdev_ops pci_ops = { .save = pci_host_save, .restore = pci_host_restore };

/* Registers a legacy device under its id (once, for devices with several
 * ranges) and claims one of its ranges; the range is named by the id. */
static int add(struct vm *vm, struct bus *b, uint64_t base, uint64_t len, const char *id, const char *kind,
	       const struct vdev_ops *ops, bus_io_fn fn, void *dev, char *err, size_t errlen)
{
	if (!dev) {
		snprintf(err, errlen, "out of memory creating %s", id);
		return -1;
	}
	struct vdev *d = vm_dev_find(vm, id);
	if (!d && !(d = vm_dev_add(vm, id, kind, ops, dev)))
		return errmsg(err, errlen, "cannot register %s", id);
	if (bus_add(b, base, len, d->id, fn, dev) < 0) {
		snprintf(err, errlen, "cannot place %s at 0x%llx", id, (unsigned long long)base);
		return -1;
	}
	return 0;
}

static int add_devices(struct vm *vm, struct pc_board *pc, const struct pc_config *cfg, char *err,
		       size_t errlen)
{
	struct vmctl ctl = vm_ctl(vm);

	pc->com1 = uart_16550_new(cfg->irq(cfg->irq_ctx, IRQ_COM1), cfg->console, &cfg->clock);
	pc->rtc = rtc_cmos_new(cfg->irq(cfg->irq_ctx, IRQ_RTC), &cfg->clock);
	pc->pm = acpi_pm_new(ctl);
	pc->i8042 = i8042_new(ctl, cfg->irq(cfg->irq_ctx, IRQ_KBD));
	pc->pvpanic = pvpanic_new(ctl);
	if (add(vm, &vm->pio, PORT_COM1, PORT_COM1_LEN, "com1", "uart-16550", &uart_ops, uart_16550_io, pc->com1, err,
		errlen) < 0 ||
	    add(vm, &vm->pio, PORT_RTC, PORT_RTC_LEN, "rtc", "rtc-cmos", &rtc_ops, rtc_cmos_io, pc->rtc, err, errlen) < 0 ||
	    add(vm, &vm->pio, PORT_ACPI_PM, PORT_ACPI_PM_LEN, "acpi-pm", "acpi-pm", &pm_ops, acpi_pm_io, pc->pm, err,
		errlen) < 0 ||
	    add(vm, &vm->pio, PORT_I8042_DATA, 1, "i8042", "i8042", &i8042_ops, i8042_data_io, pc->i8042, err, errlen) < 0 ||
	    add(vm, &vm->pio, PORT_I8042_CMD, 1, "i8042", "i8042", &i8042_ops, i8042_cmd_io, pc->i8042, err, errlen) < 0 ||
	    add(vm, &vm->pio, PORT_PVPANIC, 1, "pvpanic", "pvpanic", &pvpanic_ops, pvpanic_io, pc->pvpanic, err, errlen) < 0)
		return -1;
	pc->pci = pci_host_new(LAYOUT_MMIO32_START, LAYOUT_IOAPIC - LAYOUT_MMIO32_START);
	/* The MMIO window is one sparse range; accesses to a BAR are reported
	 * under the id of the device that owns the BAR. */
	if (add(vm, &vm->pio, PORT_PCI_CONF, PORT_PCI_CONF_LEN, "pci-host", "pci-host", &pci_ops, pci_host_cfg_io, pc->pci, err,
		errlen) < 0 ||
	    bus_add_sparse(&vm->mmio, LAYOUT_MMIO32_START, LAYOUT_IOAPIC - LAYOUT_MMIO32_START, "pci-mmio",
			   pci_host_mmio, pci_host_mmio_claims, pc->pci) < 0 ||
	    bus_set_home(&vm->mmio, LAYOUT_MMIO32_START, pci_host_mmio_home) < 0)
		return errmsg(err, errlen, "cannot place the PCI MMIO window");
	return 0;
}

int pc_devices(struct vm *vm, struct pc_board *pc, struct pc_config *cfg, char *err, size_t errlen)
{
	memset(pc, 0, sizeof(*pc));
	return add_devices(vm, pc, cfg, err, errlen);
}

int pc_add_virtio(struct pc_board *pc, struct pc_config *cfg, struct virtio_dev *dev, char *err, size_t errlen)
{
	if (pc->nr_virtio == PC_MAX_VIRTIO) {
		snprintf(err, errlen, "too many virtio devices (at most %d)", PC_MAX_VIRTIO);
		return -1;
	}
	struct virtio_pci *vp = virtio_pci_new(dev, pc->pci, &cfg->exec, &cfg->plat, cfg->irq, cfg->irq_ctx, err, errlen);
	if (!vp)
		return -1;
	pc->virtio[pc->nr_virtio++] = vp;
	return 0;
}

int pc_build(struct vm *vm, struct pc_board *pc, struct pc_config *cfg, char *err, size_t errlen)
{

	struct acpi_config acpi = {
		.ncpus = vm->ncpus,
		.lapic_addr = LAYOUT_LAPIC,
		.ioapic_addr = LAYOUT_IOAPIC,
		.ioapic_id = (uint8_t)vm->ncpus,
		.pci = true,
		.pci_mmio_base = LAYOUT_MMIO32_START,
		.pci_mmio_size = LAYOUT_IOAPIC - LAYOUT_MMIO32_START,
	};
	int r = acpi_build(&vm->mem, &acpi, &cfg->boot.rsdp);
	if (r < 0) {
		snprintf(err, errlen, "cannot build ACPI tables: %s", strerror(-r));
		return -1;
	}
	return boot_load(&vm->mem, &cfg->boot, &pc->boot, err, errlen);
}

void pc_free(struct pc_board *pc)
{
	for (unsigned i = 0; i < pc->nr_virtio; i++)
		virtio_pci_free(pc->virtio[i]);
	pci_host_free(pc->pci);
	uart_16550_free(pc->com1);
	rtc_cmos_free(pc->rtc);
	acpi_pm_free(pc->pm);
	i8042_free(pc->i8042);
	pvpanic_free(pc->pvpanic);
	memset(pc, 0, sizeof(*pc));
}
