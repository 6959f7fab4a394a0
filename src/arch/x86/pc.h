/* pc — the x86 board: which devices sit at which ports and interrupts, the
 * ACPI tables that describe them, and the loaded kernel. Portable: the
 * backend only lends it interrupt lines. */
#ifndef VIGIL_ARCH_X86_PC_H
#define VIGIL_ARCH_X86_PC_H

#include "arch/x86/boot.h"
#include "core/chardev.h"
#include "core/clock.h"
#include "core/exec.h"
#include "core/irq.h"
#include "core/platform.h"
#include "core/vm.h"
#include "virtio/virtio_dev.h"

#define PC_MAX_VIRTIO 16

struct pc_config {
	struct boot_config boot; /* rsdp is filled in by pc_build() */
	struct chardev_out console;
	struct irq_line (*irq)(void *ctx, uint32_t gsi);
	void *irq_ctx;
	struct platform_ops plat; /* MSI handles and doorbell binding for virtio-pci */
	struct exec exec;         /* where virtio queues are served */
	struct vclock clock;      /* the RTC's wall clock, the consoles' deadlines */
};

struct pc_board {
	struct uart_16550 *com1;
	struct rtc_cmos *rtc;
	struct acpi_pm *pm;
	struct i8042 *i8042;
	struct pvpanic *pvpanic;
	struct pci_host *pci;
	struct virtio_pci *virtio[PC_MAX_VIRTIO];
	unsigned nr_virtio;
	struct boot_result boot;
};

/* Finishes the board in `vm` (whose RAM must be mapped): ACPI tables,
 * kernel, initrd. -1 with a one-line reason in err. */
int pc_build(struct vm *vm, struct pc_board *pc, struct pc_config *cfg, char *err, size_t errlen);
/* Puts a virtio device on the PCI bus (before pc_build's tables are final:
 * call between pc_devices() and pc_build()). */
int pc_add_virtio(struct pc_board *pc, struct pc_config *cfg, struct virtio_dev *dev, char *err, size_t errlen);

/* The legacy devices and the PCI host; then add virtio devices; then
 * pc_build() writes the tables and loads the kernel. */
int pc_devices(struct vm *vm, struct pc_board *pc, struct pc_config *cfg, char *err, size_t errlen);

void pc_free(struct pc_board *pc);

#endif
