/* machine — see machine.h. The order is the hosted builder's: the VM and
 * its policy first (the backend's MSR permission map and CPUID table
 * follow the policy in force), then RAM, the backend, the board and its
 * kernel, the vCPUs. What Linux and KVM give the hosted build comes from
 * here instead: RAM from the page allocator, COM1 for the console, the TSC
 * for the clock, the poll loop (exec_poll.c) for the event thread. */
#include "metal/machine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "arch/x86/pc.h"
#include "core/errmsg.h"
#include "core/monitor.h"
#include "core/vm.h"
#include "devices/uart_16550.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_console.h"
#include "metal/ramdisk.h"
#include "virtio/virtio_pci.h"
#include "metal/exec_poll.h"
#include "metal/metal.h"
#include "metal/trace.h"
#include "svm/svm.h"
#include "vmm/policy_build.h"

#define CTRL_A 0x01

static struct machine {
	struct vm vm;
	struct pc_board pc;
	struct pc_config cfg;
	struct svm *svm;
	struct hv_ops inner; /* the backend's; vcpus get ours, which polls first */
	struct virtio_dev *hvc; /* --console-device virtio: COM1 input goes there */
	bool built;
	/* COM1 input: Ctrl-A x quits as in vigil run; a byte the UART had no
	 * room for waits here. */
	bool after_ctrl_a;
	int held;
} mc = { .held = -1 };

static void console_write(void *ctx, const uint8_t *buf, size_t len)
{
	(void)ctx;
	metal_serial_write((const char *)buf, len);
}

static struct irq_line backend_irq(void *ctx, uint32_t gsi)
{
	return svm_irq_line(ctx, gsi);
}

/* MSI for virtio-pci (MSI-X): a vector is the message the guest wrote,
 * fired into the backend's local APIC models (svm_msi). */
struct msi {
	uint64_t addr;
	uint32_t data;
	bool set;
};

static int msi_alloc(void *ctx, struct msi **out)
{
	(void)ctx;
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

static int msi_set(void *ctx, struct msi *m, uint64_t addr, uint32_t data)
{
	(void)ctx;
	*m = (struct msi){ .addr = addr, .data = data, .set = true };
	return 0;
}

static void msi_fire(void *ctx, struct msi *m)
{
	if (m->set)
		svm_msi(ctx, m->addr, m->data);
}

static void msi_free(void *ctx, struct msi *m)
{
	(void)ctx;
	free(m);
}

/* COM1 typed input to the guest's UART. */
static void poll_console(void)
{
	if (!mc.built || !mc.pc.com1)
		return;
	for (unsigned n = 0; n < 64; n++) {
		int c = mc.held >= 0 ? mc.held : metal_serial_getc();
		mc.held = -1;
		if (c < 0)
			return;
		if (mc.after_ctrl_a) {
			mc.after_ctrl_a = false;
			if (c == 'x' || c == 'X') {
				vm_request_stop(&mc.vm, VM_STOP_USER);
				return;
			}
			if (c != CTRL_A)
				continue;
		} else if (c == CTRL_A) {
			mc.after_ctrl_a = true;
			continue;
		}
		uint8_t b = (uint8_t)c;
		size_t took = mc.hvc ? virtio_console_rx_push(mc.hvc, &b, 1) : uart_16550_rx_push(mc.pc.com1, &b, 1);
		if (took == 0) {
			mc.held = c; /* the guest has not read its FIFO yet */
			return;
		}
	}
}

void metal_poll(void)
{
	metal_exec_poll();
	metal_ramdisk_poll();
	poll_console();
	metal_trace_poll();
}

/* --- the core's hv_ops over the backend's, with the poll before each entry */

static void w_bind(void *hv, unsigned cpu)
{
	(void)hv;
	if (mc.inner.bind)
		mc.inner.bind(mc.inner.hv, cpu);
}
static int w_run(void *hv, unsigned cpu, struct vexit *ex)
{
	(void)hv;
	if (cpu == 0)
		metal_poll(); /* the device context is the boot CPU's */
	if (vm_stop_reason(&mc.vm) != VM_STOP_NONE) {
		/* Ctrl-A x in the poll: leave without entering the guest. */
		memset(ex, 0, sizeof(*ex));
		ex->reason = VEXIT_INTR;
		return 0;
	}
	return mc.inner.run(mc.inner.hv, cpu, ex);
}
static void w_kick(void *hv, unsigned cpu)
{
	(void)hv;
	if (mc.inner.kick)
		mc.inner.kick(mc.inner.hv, cpu);
}
static void w_paused(void *hv, unsigned cpu)
{
	(void)hv;
	if (mc.inner.paused)
		mc.inner.paused(mc.inner.hv, cpu);
}
static void w_report_crash(void *hv, unsigned cpu, const struct vexit *ex)
{
	(void)hv;
	if (mc.inner.report_crash)
		mc.inner.report_crash(mc.inner.hv, cpu, ex);
}
static int w_get_state(void *hv, unsigned cpu, struct vcpu_state *s)
{
	(void)hv;
	return mc.inner.get_state ? mc.inner.get_state(mc.inner.hv, cpu, s) : -ENOSYS;
}
static int w_set_state(void *hv, unsigned cpu, const struct vcpu_state *s)
{
	(void)hv;
	return mc.inner.set_state ? mc.inner.set_state(mc.inner.hv, cpu, s) : -ENOSYS;
}
static int w_msr(void *hv, unsigned cpu, uint32_t index, uint64_t *value, bool write)
{
	(void)hv;
	return mc.inner.msr ? mc.inner.msr(mc.inner.hv, cpu, index, value, write) : -ENOSYS;
}
static int w_set_debug(void *hv, unsigned cpu, const struct vcpu_debug *d)
{
	(void)hv;
	return mc.inner.set_debug(mc.inner.hv, cpu, d);
}
static int w_reinject_bp(void *hv, unsigned cpu)
{
	(void)hv;
	return mc.inner.reinject_bp(mc.inner.hv, cpu);
}
static int w_stats(void *hv, int cpu, hv_stat_fn fn, void *ctx, const char **why)
{
	(void)hv;
	return mc.inner.stats(mc.inner.hv, cpu, fn, ctx, why);
}

static struct hv_ops wrapped_ops(void)
{
	return (struct hv_ops){
		.name = mc.inner.name,
		.bind = w_bind,
		.run = w_run,
		.kick = w_kick,
		.paused = w_paused,
		.report_crash = w_report_crash,
		.get_state = w_get_state,
		.set_state = w_set_state,
		.msr = w_msr,
		.set_debug = mc.inner.set_debug ? w_set_debug : NULL,
		.reinject_bp = mc.inner.reinject_bp ? w_reinject_bp : NULL,
		.stats = mc.inner.stats ? w_stats : NULL,
		.hv = &mc,
	};
}

/* Guest RAM as vigil run lays it out (kvm_vm.c): up to 3 GiB from 0, the
 * rest from 4 GiB; each part physically contiguous and 2 MiB-aligned, so
 * the nested tables map it with 2 MiB pages. */
static int add_ram(uint64_t mem, char *err, size_t errlen)
{
	uint64_t free_b = metal_free_bytes();
	if (mem > free_b)
		return errmsg(err, errlen, "--mem %llu MiB is more than this machine's %llu MiB of free RAM",
			      (unsigned long long)(mem >> 20), (unsigned long long)(free_b >> 20));
	uint64_t low = mem < LAYOUT_MEM32_END ? mem : LAYOUT_MEM32_END;
	struct {
		uint64_t gpa, len;
	} parts[2] = { { 0, low }, { LAYOUT_MEM_HIGH, mem - low } };
	for (unsigned i = 0; i < 2; i++) {
		if (!parts[i].len)
			continue;
		void *host = metal_alloc_pages(parts[i].len, 2u << 20);
		if (!host)
			return errmsg(err, errlen,
				      "--mem %llu MiB: no %llu MiB contiguous 2 MiB-aligned block of free RAM (%llu MiB free)",
				      (unsigned long long)(mem >> 20), (unsigned long long)(parts[i].len >> 20),
				      (unsigned long long)(metal_free_bytes() >> 20));
		if (gmem_add(&mc.vm.mem, parts[i].gpa, parts[i].len, host) < 0)
			return errmsg(err, errlen, "guest RAM: cannot map %#llx+%#llx", (unsigned long long)parts[i].gpa,
				      (unsigned long long)parts[i].len);
	}
	return 0;
}

static int install_policy(const struct policy_spec *s, char *err, size_t errlen)
{
	struct policy *p = policy_compile(s, err, errlen);
	if (!p)
		return -1;
	policy_free(policy_swap(&mc.vm.policy, p));
	return 0;
}

/* The policy's rtc redirect: the RTC's wall clock shifted. */
static struct vclock_shift rtc_shift;
static void rtc_redirect(void)
{
	int64_t off;
	const struct policy *p = policy_enter(&mc.vm.policy);
	bool on = policy_build_rtc(p, metal_wall_s(), &off, mc.vm.ev);
	policy_leave(&mc.vm.policy);
	if (!on)
		return;
	rtc_shift = (struct vclock_shift){ .base = mc.cfg.clock, .offset_s = off };
	mc.cfg.clock = vclock_shifted(&rtc_shift);
}

#define METAL_TICK_HZ 1000
static void tick(void);

/* The RAM disks on the PCI bus as virtio-blk, named drive0.. as vigil
 * run's --disk without id= (their --stats lines and policy rules). */
static int add_disks(const struct metal_boot *b, char *err, size_t errlen)
{
	for (unsigned i = 0; i < b->nr_disks; i++) {
		char id[16];
		snprintf(id, sizeof(id), "drive%u", i);
		struct vdev *vd = vm_dev_add(&mc.vm, id, "virtio-blk", NULL, NULL);
		if (!vd)
			return errmsg(err, errlen, "too many devices");
		struct blk_backend *be = metal_ramdisk_new(b->disks[i].data, b->disks[i].len, err, errlen);
		if (!be)
			return -1;
		struct virtio_blk_config bc = { .id = vd->id };
		struct virtio_dev *d = virtio_blk_new_backend(be, &bc, &mc.vm.mem, vm_dev_gate(&mc.vm, vd, false), err,
							      errlen);
		if (!d)
			return -1;
		d->name = vd->id;
		if (pc_add_virtio(&mc.pc, &mc.cfg, d, err, errlen) < 0) {
			virtio_blk_free(d);
			return -1;
		}
		vd->ops = &virtio_pci_vdev_ops;
		vd->impl = mc.pc.virtio[mc.pc.nr_virtio - 1];
	}
	return 0;
}

/* --console-device virtio: virtio-console "console" (hvc0), output to COM1
 * as the UART's, input from COM1 (poll_console). */
static int add_console(const struct metal_opts *o, char *err, size_t errlen)
{
	if (!o->virtio_console)
		return 0;
	struct vdev *vd = vm_dev_add(&mc.vm, "console", "virtio-console", NULL, NULL);
	if (!vd)
		return errmsg(err, errlen, "too many devices");
	struct virtio_dev *d = virtio_console_new(&mc.vm.mem, vm_dev_gate(&mc.vm, vd, false), mc.cfg.console, &mc.cfg.clock);
	if (!d)
		return errmsg(err, errlen, "out of memory creating virtio-console");
	d->name = vd->id;
	if (pc_add_virtio(&mc.pc, &mc.cfg, d, err, errlen) < 0) {
		virtio_console_free(d);
		return -1;
	}
	vd->ops = &virtio_pci_vdev_ops;
	vd->impl = mc.pc.virtio[mc.pc.nr_virtio - 1];
	mc.hvc = d;
	return 0;
}

static char cmdline[METAL_CMDLINE_MAX + 16];

/* SMP: application processor `cpu` runs vCPU `cpu`'s loop once the VM is
 * built and running (go), with SVM and its own host tick turned on. */
static volatile int go; /* 1: run; -1: the build failed, stay halted */
static volatile unsigned aps_done;

static void ap_main(unsigned cpu)
{
	char err[256];
	while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
		__asm__ volatile("pause");
	if (go > 0) {
		if (svm_enable_cpu(err, sizeof(err)) < 0) {
			metal_log("CPU %u: %s", cpu, err);
			vm_request_stop(&mc.vm, VM_STOP_ERROR);
		} else {
			metal_timer_start(METAL_TICK_HZ, tick);
			vcpu_loop(&mc.vm, cpu);
		}
	}
	__atomic_add_fetch(&aps_done, 1, __ATOMIC_ACQ_REL);
	metal_halt();
}

static int build(const struct metal_boot *b, char *err, size_t errlen)
{
	const struct metal_opts *o = b->opts;

	if (o->cpus > 1 && metal_smp_start(o->cpus, ap_main) < o->cpus)
		return errmsg(err, errlen, "--cpus %u: vigil-metal runs one vCPU per host CPU and this machine has %u",
			      o->cpus, metal_cpus_online());
	if (vm_init(&mc.vm, o->cpus) < 0)
		return errmsg(err, errlen, "out of memory");
	if (b->policy && install_policy(b->policy, err, errlen) < 0)
		return -1;
	if ((o->trace || b->policy) && metal_trace_start(&mc.vm, o->trace, err, errlen) < 0)
		return -1;
	if (add_ram(o->mem, err, errlen) < 0)
		return -1;
	if (svm_enable_cpu(err, errlen) < 0)
		return -1;
	mc.svm = svm_create(&mc.vm, o->cpus, err, errlen);
	if (!mc.svm)
		return -1;
	snprintf(cmdline, sizeof(cmdline), "%s", o->cmdline);
	mc.cfg = (struct pc_config){
		.boot = { .kernel = b->kernel, .kernel_len = b->kernel_len, .initrd = b->initrd,
			  .initrd_len = b->initrd_len, .cmdline = cmdline },
		.console = { .write = console_write, .ctx = NULL },
		.irq = backend_irq,
		.irq_ctx = mc.svm,
		.plat = { .msi_alloc = msi_alloc, .msi_set = msi_set, .msi_fire = msi_fire, .msi_free = msi_free,
			  .ctx = mc.svm },
		.exec = metal_exec(),
		.clock = metal_vclock(),
	};
	rtc_redirect();
	if (pc_devices(&mc.vm, &mc.pc, &mc.cfg, err, errlen) < 0 || add_disks(b, err, errlen) < 0 ||
	    add_console(o, err, errlen) < 0 ||
	    pc_build(&mc.vm, &mc.pc, &mc.cfg, err, errlen) < 0)
		return -1;
	const struct policy *p = policy_enter(&mc.vm.policy);
	policy_build_cpuid(p, mc.vm.ev);
	policy_leave(&mc.vm.policy);
	if (svm_set_boot_state(mc.svm, 0, &mc.pc.boot.cpu) < 0)
		return errmsg(err, errlen, "the SVM backend refused the boot vCPU's state");
	if (!strcmp(o->selftest, "vmrun")) /* tests/metal.sh: a VMRUN the CPU refuses */
		svm_break_vmcb(mc.svm, 0);
	mc.inner = svm_hv_ops(mc.svm);
	if (!mc.inner.run)
		return errmsg(err, errlen, "the SVM backend has no run operation");
	struct hv_ops hv = wrapped_ops();
	if (vcpus_init(&mc.vm, &hv) < 0)
		return errmsg(err, errlen, "out of memory");
	mc.built = true;
	return 0;
}

/* The host tick: back to the poll loop (console input, device timers,
 * the trace) and to the backend's interrupt delivery at least this often,
 * whatever the guest does. 1 kHz: a guest's PIT or LAPIC timer (Linux's
 * HZ=250 check that the timer works counts ticks in a 40 ms busy wait)
 * fires within 1 ms of its time even while the guest never exits; at
 * 100 Hz Debian's kernel sometimes panicked "IO-APIC + timer doesn't
 * work". Under QEMU that costs ~2% (1,000 exits/s of ~17 us). */
static void tick(void)
{
	if (mc.built && mc.inner.kick)
		mc.inner.kick(mc.inner.hv, metal_cpu_index()); /* vCPU i runs on host CPU i */
}

int metal_machine_run(const struct metal_boot *b)
{
	char err[512];
	if (build(b, err, sizeof(err)) < 0) {
		__atomic_store_n(&go, -1, __ATOMIC_RELEASE);
		metal_log("%s", err);
		return VM_STOP_ERROR;
	}
	metal_log("guest: %llu MiB, %u vCPU, %s kernel, cmdline \"%s\"", (unsigned long long)(b->opts->mem >> 20),
		  b->opts->cpus, mc.pc.boot.kind == BOOT_PVH ? "PVH" : "bzImage", cmdline);
	if (metal_timer_start(METAL_TICK_HZ, tick) < 0)
		metal_log("no local APIC timer: COM1 input and device timers are served only when the guest exits");
	metal_trace_mark_start();
	vm_mark_running(&mc.vm);
	uint64_t t0 = metal_now_ns();
	__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
	vcpu_loop(&mc.vm, 0);
	uint64_t ran_ms = (metal_now_ns() - t0) / 1000000u;
	/* The others leave their loops at their next exit (the stop kicked
	 * them; their tick brings them out within a millisecond). */
	for (unsigned ms = 0; ms < 2000 && aps_done < b->opts->cpus - 1; ms++)
		for (uint64_t w = metal_now_ns(); metal_now_ns() - w < 1000000u;)
			__asm__ volatile("pause");
	if (aps_done < b->opts->cpus - 1)
		metal_log("%u vCPU loop(s) did not stop within 2 s", b->opts->cpus - 1 - aps_done);
	enum vm_stop why = vm_stop_reason(&mc.vm);
	if (why == VM_STOP_NONE)
		why = VM_STOP_ERROR;
	metal_trace_finish();
	metal_log("%s", vm_stop_name(why));
	if (b->opts->stats) {
		/* The guest's run, first entry to stop, on the TSC: with the
		 * exit counts below, exits per second (bench/metal_exits.sh). */
		metal_log("guest ran %llu ms", (unsigned long long)ran_ms);
		mon_report(stderr, mc.vm.stats, mc.vm.ncpus, vm_device_name, &mc.vm);
		mon_report_devices(stderr, mc.vm.devs, mc.vm.nr_devs);
		mon_report_hv(stderr, &mc.vm.vcpus.hv, mc.vm.ncpus);
		mon_report_policy(stderr, &mc.vm.policy);
		fflush(stderr);
	}
	return why;
}
