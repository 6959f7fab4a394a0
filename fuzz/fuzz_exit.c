/* fuzz_exit — libFuzzer target for the exit path: kvm_run decoding
 * (src/kvm/kvm_exit.c), exit_dispatch with its REP counts (src/core/exit.c)
 * and the legacy devices behind the port bus, each real: the 16550 UART
 * (COM1), the CMOS RTC, the i8042 (data and command ports), pvpanic and
 * the ACPI PM registers; plus a fake MMIO device. The input is a sequence of
 * exits as a confused or hostile kernel and guest could leave them: every
 * kvm_run field that translate reads comes from the input (exit reason, I/O
 * direction, size, port, count, data offset; MMIO length and address; MSR
 * index), then the data bytes; interleaved with host-side events (console
 * input, Ctrl+Alt+Del, device resets). The run area is its own heap block of
 * RUN_SIZE bytes, so ASan sees any step past it. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "arch/x86/layout.h"
#include "core/exit.h"
#include "core/vm.h"
#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/pvpanic.h"
#include "devices/rtc_cmos.h"
#include "devices/uart_16550.h"
#include "kvm/kvm_internal.h"

#define RUN_SIZE 4096u
#define MMIO_BASE 0xd0000000ULL
#define MMIO_LEN 0x1000


static void fake_mmio(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	(void)dev;
	if (offset >= MMIO_LEN || len > MMIO_LEN - offset || len < 1 || len > 8)
		__builtin_trap(); /* the bus let an access past the range */
	if (!is_write)
		memset(data, (int)offset, len);
}

static void out_write(void *ctx, const uint8_t *buf, size_t len)
{
	(void)ctx;
	for (size_t k = 0; k < len; k++)
		__asm__ volatile("" ::"r"(((volatile const uint8_t *)buf)[k]));
}

static void irq_rec(void *ctx, uint32_t gsi, int level)
{
	(void)ctx, (void)gsi, (void)level;
}

static int stops;
static void stop(void *ctx, enum vm_stop why)
{
	(void)ctx, (void)why;
	stops++;
}

static uint64_t now_ns;
static uint64_t clk_mono(void *ctx)
{
	(void)ctx;
	return now_ns += 1000;
}
static int64_t clk_wall(void *ctx)
{
	(void)ctx;
	return 1700000000 + (int64_t)(now_ns / 1000000000);
}
static const struct vclock clk = { clk_mono, clk_wall, NULL };

/* Fills run from the input: the exit KVM would have left. */
static void make_exit(struct kvm_run *run, struct in *in)
{
	uint8_t sel = (uint8_t)take(in, 1);
	static const uint32_t reasons[] = { KVM_EXIT_IO, KVM_EXIT_IO, KVM_EXIT_IO, KVM_EXIT_MMIO,
					    KVM_EXIT_MMIO, KVM_EXIT_X86_RDMSR, KVM_EXIT_X86_WRMSR,
					    KVM_EXIT_HLT, KVM_EXIT_SYSTEM_EVENT, KVM_EXIT_DEBUG,
					    KVM_EXIT_INTR, KVM_EXIT_SHUTDOWN, KVM_EXIT_INTERNAL_ERROR,
					    KVM_EXIT_FAIL_ENTRY };
	memset(run, 0, sizeof(*run));
	run->exit_reason = (sel & 0x80) ? (uint32_t)take(in, 1) : reasons[sel % 14];
	switch (run->exit_reason) {
	case KVM_EXIT_IO: {
		static const uint16_t ports[] = { PORT_COM1, PORT_RTC, PORT_I8042_DATA, PORT_I8042_CMD,
						  PORT_PVPANIC, PORT_ACPI_PM, 0xcf8, 0x80 };
		uint8_t b = (uint8_t)take(in, 1);
		run->io.direction = b & 1 ? KVM_EXIT_IO_OUT : KVM_EXIT_IO_IN;
		run->io.size = (b & 0x40) ? (uint8_t)take(in, 1) : (uint8_t)(1u << (b >> 1 & 3));
		run->io.port = (uint16_t)(ports[b >> 3 & 7] + (take(in, 1) & 0x0f));
		if (b & 0x80)
			run->io.port = (uint16_t)take(in, 2);
		uint8_t c = (uint8_t)take(in, 1);
		run->io.count = (c & 0x80) ? (uint32_t)take(in, 4) : (uint32_t)(c & 0x3f);
		run->io.data_offset = (c & 0x40) ? (uint64_t)take(in, 4) : 0x200 + (c & 0x0f) * 8u;
		break;
	}
	case KVM_EXIT_MMIO: {
		uint8_t b = (uint8_t)take(in, 1);
		run->mmio.is_write = b & 1;
		run->mmio.len = (b & 0x40) ? (uint32_t)take(in, 4) : 1u << (b >> 1 & 3);
		run->mmio.phys_addr = MMIO_BASE + take(in, 2) % (MMIO_LEN + 16) - 8;
		if (b & 0x80)
			run->mmio.phys_addr = take(in, 8);
		for (int i = 0; i < 8; i++)
			run->mmio.data[i] = (uint8_t)take(in, 1);
		break;
	}
	case KVM_EXIT_X86_RDMSR:
	case KVM_EXIT_X86_WRMSR:
		run->msr.index = (uint32_t)take(in, 4);
		run->msr.data = take(in, 8);
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		run->system_event.type = (uint32_t)take(in, 1);
		break;
	case KVM_EXIT_DEBUG:
		run->debug.arch.pc = take(in, 8);
		run->debug.arch.exception = (uint32_t)take(in, 1);
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	static struct vm vm;
	static uint8_t *run_area;

	if (!run_area && !(run_area = malloc(RUN_SIZE)))
		abort();
	if (vm_init(&vm, 2) != 0)
		abort();
	struct vmctl ctl = { stop, NULL };
	struct irq_line irq = { irq_rec, NULL, 4 };
	struct uart_16550 *uart = uart_16550_new(irq, (struct chardev_out){ out_write, NULL }, &clk);
	struct rtc_cmos *rtc = rtc_cmos_new(irq, &clk);
	struct i8042 *kbd = i8042_new(ctl, irq);
	struct pvpanic *pp = pvpanic_new(ctl);
	struct acpi_pm *pm = acpi_pm_new(ctl);
	if (!uart || !rtc || !kbd || !pp || !pm ||
	    bus_add(&vm.pio, PORT_COM1, PORT_COM1_LEN, "com1", uart_16550_io, uart) ||
	    bus_add(&vm.pio, PORT_RTC, PORT_RTC_LEN, "rtc", rtc_cmos_io, rtc) ||
	    bus_add(&vm.pio, PORT_I8042_DATA, 1, "i8042", i8042_data_io, kbd) ||
	    bus_add(&vm.pio, PORT_I8042_CMD, 1, "i8042", i8042_cmd_io, kbd) ||
	    bus_add(&vm.pio, PORT_PVPANIC, 1, "pvpanic", pvpanic_io, pp) ||
	    bus_add(&vm.pio, PORT_ACPI_PM, ACPI_PM_LEN, "acpi_pm", acpi_pm_io, pm) ||
	    bus_add(&vm.mmio, MMIO_BASE, MMIO_LEN, "fake", fake_mmio, NULL))
		abort();

	struct kvm_run *run = (struct kvm_run *)(void *)run_area;
	for (unsigned steps = 0; in.n && steps < 512; steps++) {
		uint8_t op = (uint8_t)take(&in, 1);
		if (op < 0xf0) {
			make_exit(run, &in);
			/* The data the guest wrote (or stale bytes for a read). */
			for (unsigned i = 0; i < 64 && in.n; i++)
				run_area[(0x200 + i) % RUN_SIZE] = (uint8_t)take(&in, 1);
			struct vexit ex;
			kvm_translate_exit(run, RUN_SIZE, &ex);
			if (ex.reason == VEXIT_IO && ex.data &&
			    (ex.data < run_area || ex.data + (size_t)ex.len * (ex.count ? ex.count : 1) > run_area + RUN_SIZE))
				__builtin_trap(); /* translate let data point outside the run area */
			exit_dispatch(&vm, op & 1, &ex);
			continue;
		}
		uint8_t buf[32];
		size_t n = take(&in, 1) % sizeof(buf);
		switch (op & 7) {
		case 0:
			for (size_t i = 0; i < n; i++)
				buf[i] = (uint8_t)take(&in, 1);
			uart_16550_rx_push(uart, buf, n);
			break;
		case 1:
			i8042_ctrl_alt_del(kbd);
			break;
		case 2:
			uart_16550_reset(uart);
			break;
		case 3:
			rtc_cmos_reset(rtc);
			break;
		case 4:
			i8042_reset(kbd);
			break;
		case 5:
			pvpanic_reset(pp);
			acpi_pm_reset(pm);
			break;
		default:
			now_ns += (uint64_t)n * 100000000ull; /* time passes */
		}
	}
	vm_fini(&vm);
	acpi_pm_free(pm);
	pvpanic_free(pp);
	i8042_free(kbd);
	rtc_cmos_free(rtc);
	uart_16550_free(uart);
	return 0;
}
