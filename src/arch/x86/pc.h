/* pc — the x86 board: which devices sit at which ports and interrupts, the
 * ACPI tables that describe them, and the loaded kernel. Portable: the
 * backend only lends it interrupt lines. */
#ifndef VIGIL_ARCH_X86_PC_H
#define VIGIL_ARCH_X86_PC_H

#include "arch/x86/boot.h"
#include "core/chardev.h"
#include "core/irq.h"
#include "core/vm.h"

struct pc_config {
	struct boot_config boot; /* rsdp is filled in by pc_build() */
	struct chardev_out console;
	struct irq_line (*irq)(void *ctx, uint32_t gsi);
	void *irq_ctx;
};

struct pc_board {
	struct uart_16550 *com1;
	struct rtc_cmos *rtc;
	struct acpi_pm *pm;
	struct i8042 *i8042;
	struct pvpanic *pvpanic;
	struct boot_result boot;
};

/* Builds the board into `vm` (whose RAM must be mapped): devices on the
 * buses, ACPI tables, kernel, initrd. -1 with a one-line reason in err. */
int pc_build(struct vm *vm, struct pc_board *pc, struct pc_config *cfg, char *err, size_t errlen);
void pc_free(struct pc_board *pc);

#endif
