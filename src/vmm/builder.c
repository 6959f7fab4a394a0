/* The build order of one VM, and its teardown in reverse. */
#define _GNU_SOURCE /* gettid() */
#include "vmm/builder.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/pc.h"
#include "core/errmsg.h"
#include "core/vm.h"
#include "devices/i8042.h"
#include "devices/net_filter.h"
#include "devices/uart_16550.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_console.h"
#include "devices/virtio_net.h"
#include "devices/virtio_rng.h"
#include "devices/virtio_vsock.h"
#include "gdb/gdb_server.h"
#include "host/blk_file.h"
#include "host/clock.h"
#include "host/console.h"
#include "host/fault.h"
#include "host/entropy.h"
#include "host/evloop.h"
#include "host/exec_evloop.h"
#include "host/net_open.h"
#include "host/uffd.h"
#include "host/vsock_uds.h"
#include "kvm/kvm.h"
#include "virtio/virtio_pci.h"
#include "vmm/policy_build.h"
#include "vmm/net_policy.h"
#include "vmm/trace.h"
#include "host/seccomp.h"

#include "vmm/machine_int.h"

static int map_file(const char *what, const char *path, struct mapped_file *f, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errmsg(err, errlen, "%s '%s': %s", what, path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		close(fd);
		return errmsg(err, errlen, "%s '%s': %s", what, path,
			      S_ISDIR(st.st_mode) ? "is a directory" : st.st_size == 0 ? "is empty" : "not a regular file");
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return errmsg(err, errlen, "%s '%s': %s", what, path, strerror(errno));
	f->data = p;
	f->len = (size_t)st.st_size;
	return 0;
}

static void unmap_file(struct mapped_file *f)
{
	if (f->data)
		munmap((void *)f->data, f->len);
	f->data = NULL;
}

static struct irq_line backend_irq(void *kb, uint32_t gsi)
{
	return kvm_irq_line(kb, gsi);
}

/* Registers a virtio device model under `id` and puts it on the PCI bus;
 * frees it on failure. */
static int add_virtio(struct machine *mc, struct pc_config *cfg, struct vdev *vd, struct virtio_dev *d,
		      void (*free_fn)(struct virtio_dev *), char *err, size_t errlen)
{
	if (!d)
		return -1;
	/* Accesses to its BARs are reported under the device's id. */
	d->name = vd->id;
	if (pc_add_virtio(&mc->pc, cfg, d, err, errlen) < 0) {
		free_fn(d);
		return -1;
	}
	vd->ops = &virtio_pci_vdev_ops;
	vd->impl = mc->pc.virtio[mc->pc.nr_virtio - 1];
	mc->virtio[mc->nr_virtio] = d;
	mc->virtio_free[mc->nr_virtio] = free_fn;
	mc->nr_virtio++;
	return 0;
}

static struct vdev *reg(struct machine *mc, const char *id, const char *kind, char *err, size_t errlen)
{
	struct vdev *d = vm_dev_add(&mc->vm, id, kind, NULL, NULL);
	if (!d)
		errmsg(err, errlen, "device id '%s' is used twice (or too many devices)", id);
	return d;
}

/* Firecracker's io_engine and cache_type as the host backend's options:
 * "Sync" the worker threads, "Async" io_uring (O_DIRECT unless the drive
 * says buffered); "Unsafe" acknowledges a flush without syncing,
 * "Writeback" syncs (host/blk_file.h). */
static void drive_engine(const struct vmcfg_drive *dr, enum blk_engine *engine, enum blk_cache *cache,
			 bool *buffered)
{
	*engine = strcmp(dr->io_engine, "Async") == 0 ? BLK_ENGINE_URING : BLK_ENGINE_THREADS;
	*cache = strcmp(dr->cache_type, "Unsafe") == 0 ? BLK_CACHE_UNSAFE : BLK_CACHE_WRITEBACK;
	*buffered = dr->buffered;
}

/* One request queue per vCPU, as Linux's blk-mq (and QEMU) pair them. */
static unsigned drive_queues(const struct machine *mc)
{
	unsigned n = mc->cfg.machine.vcpu_count;
	return n < 1 ? 1 : n > VIRTIO_MAX_QUEUES ? VIRTIO_MAX_QUEUES : n;
}

static int add_drives(struct machine *mc, struct pc_config *cfg, char *err, size_t errlen)
{
	unsigned order[VMCFG_MAX_DRIVES];
	unsigned n = vmcfg_drive_order(&mc->cfg, order);

	for (unsigned i = 0; i < n; i++) {
		const struct vmcfg_drive *dr = &mc->cfg.drives[order[i]];
		struct virtio_blk_config bc = { .path = dr->path_on_host, .read_only = dr->is_read_only,
						.id = dr->serial[0] ? dr->serial : dr->drive_id };
		drive_engine(dr, &bc.engine, &bc.cache, &bc.buffered);
		bc.queues = drive_queues(mc);
		bc.ex = &cfg->exec;
		struct vdev *vd = reg(mc, dr->drive_id, "virtio-blk", err, errlen);
		if (!vd)
			return -1;
		/* The policy's overlay, copied by the backend while p is held. */
		const struct policy *p = policy_enter(&mc->vm.policy);
		bc.overlay = policy_build_overlay(p, dr->drive_id, &bc.overlay_only);
		struct dev_gate g = vm_dev_gate(&mc->vm, vd, dr->is_read_only);
		struct virtio_dev *d = host_blk_new(&bc, &mc->vm.mem, g, err, errlen);
		policy_leave(&mc->vm.policy);
		if (add_virtio(mc, cfg, vd, d, virtio_blk_free, err, errlen) < 0)
			return -1;
	}
	return 0;
}

static int add_nets(struct machine *mc, struct pc_config *cfg, char *err, size_t errlen)
{
	for (unsigned i = 0; i < mc->cfg.nr_nets; i++) {
		const struct vmcfg_net *n = &mc->cfg.nets[i];
		struct virtio_net_config nc = { .kind = n->vigil_user ? NET_USER : NET_TAP, .mac_set = n->has_mac,
						.nr_fwd = n->nr_fwd };
		snprintf(nc.ifname, sizeof(nc.ifname), "%s", n->host_dev_name);
		memcpy(nc.mac, n->guest_mac, 6);
		memcpy(nc.fwd, n->fwd, sizeof(nc.fwd));
		struct vdev *vd = reg(mc, n->iface_id, "virtio-net", err, errlen);
		if (!vd)
			return -1;
		struct dev_gate g = vm_dev_gate(&mc->vm, vd, false);
		if (add_virtio(mc, cfg, vd, host_net_new(&nc, &mc->vm.mem, g, mc->loop, err, errlen),
			       virtio_net_free, err, errlen) < 0)
			return -1;
	}
	return 0;
}

static int add_others(struct machine *mc, struct pc_config *cfg, char *err, size_t errlen)
{
	const struct vm_config *c = &mc->cfg;
	struct vdev *vd;

	if (c->has_vsock) {
		struct virtio_vsock_config vc = { .guest_cid = c->vsock.guest_cid };
		snprintf(vc.uds_path, sizeof(vc.uds_path), "%s", c->vsock.uds_path);
		if (!(vd = reg(mc, c->vsock.vsock_id[0] ? c->vsock.vsock_id : "vsock", "virtio-vsock", err, errlen)))
			return -1;
		struct dev_gate g = vm_dev_gate(&mc->vm, vd, false);
		if (add_virtio(mc, cfg, vd, host_vsock_new(&vc, &mc->vm.mem, g, mc->loop, err, errlen),
			       virtio_vsock_free, err, errlen) < 0)
			return -1;
	}
	if (c->entropy) {
		if (!(vd = reg(mc, "entropy", "virtio-rng", err, errlen)))
			return -1;
		struct entropy ent = host_entropy(); /* copied by the device */
		struct virtio_dev *d = virtio_rng_new(&mc->vm.mem, vm_dev_gate(&mc->vm, vd, false), &ent);
		if (!d)
			errmsg(err, errlen, "out of memory creating virtio-rng");
		if (add_virtio(mc, cfg, vd, d, virtio_rng_free, err, errlen) < 0)
			return -1;
	}
	if (c->console.virtio) {
		if (!(vd = reg(mc, "console", "virtio-console", err, errlen)))
			return -1;
		struct virtio_dev *d =
			virtio_console_new(&mc->vm.mem, vm_dev_gate(&mc->vm, vd, false), cfg->console, &cfg->clock);
		if (!d)
			errmsg(err, errlen, "out of memory creating virtio-console");
		if (add_virtio(mc, cfg, vd, d, virtio_console_free, err, errlen) < 0)
			return -1;
		mc->hvc = d;
	}
	return 0;
}

static int open_console(struct machine *mc, char *err, size_t errlen)
{
	char spec[PATH_MAX + 8];
	const struct vmcfg_console *c = &mc->cfg.console;

	snprintf(spec, sizeof(spec), "%s%s",
		 c->out == CONSOLE_STDIO ? "stdio" : c->out == CONSOLE_NONE ? "none" : "file:",
		 c->out == CONSOLE_FILE ? c->path : "");
	if (console_open(&mc->con, spec, err, errlen) < 0)
		return -1;
	mc->con_open = true;
	return 0;
}

/* The event sink exists for every VM (both outputs off unless asked), so
 * PUT /vigil/trace can start a trace later: devices take vm.ev into their
 * gates when they are built, which is after this. */
static int open_trace(struct machine *mc, char *err, size_t errlen)
{
	const struct vm_config *c = &mc->cfg;
	mc->trace = vtrace_new(c->id, host_clock(), err, errlen);
	if (!mc->trace)
		return -1;
	mc->vm.ev = vtrace_sink(mc->trace);
	vtrace_set_max(mc->trace, c->log_max);
	if (vtrace_set_filter(mc->trace, c->trace_filter, err, errlen) < 0 ||
	    (c->trace[0] && vtrace_set_trace(mc->trace, c->trace, err, errlen) < 0) ||
	    (c->audit[0] && vtrace_set_audit(mc->trace, c->audit, err, errlen) < 0))
		return -1;
	return 0;
}

/* --stats: one line per rule of the policy in force, with its hits. */
/* The policy's rtc redirect: the RTC's wall clock shifted, and kvmclock
 * hidden so the guest believes the RTC (kvm_clock.c). */
static bool rtc_redirect(struct machine *mc)
{
	struct vclock host = host_clock();
	int64_t off;
	const struct policy *p = policy_enter(&mc->vm.policy);
	bool on = policy_build_rtc(p, vclock_wall_s(&host), &off, mc->vm.ev);
	policy_leave(&mc->vm.policy);
	if (!on)
		return false;
	mc->rtc_clock = (struct vclock_shift){ .base = host, .offset_s = off };
	kvm_hide_kvmclock(mc->kb);
	return true;
}

/* --stats: what the network policy did, per interface it filtered. After
 * evloop_stop(): the filter's counters are the event thread's. */
static void report_net(FILE *out, struct machine *mc)
{
	/* the device's batching, so frames per kick and per interrupt are
	 * counts rather than guesses from throughput */
	for (unsigned i = 0; i < mc->nr_virtio; i++) {
		struct virtio_net_stats v;
		if (mc->virtio_free[i] != virtio_net_free)
			continue;
		virtio_net_get_stats(mc->virtio[i], &v);
		fprintf(out,
			"net %s: tx_frames=%" PRIu64 " tx_bytes=%" PRIu64 " tx_runs=%" PRIu64 " tx_irqs=%" PRIu64
			" rx_frames=%" PRIu64 " rx_batches=%" PRIu64 " rx_irqs=%" PRIu64 " rx_bufs=%" PRIu64
			" rx_waits=%" PRIu64 " errors=%" PRIu64 "\n",
			mc->virtio[i]->name, v.tx_frames, v.tx_bytes, v.tx_runs, v.tx_irqs, v.rx_frames, v.rx_batches,
			v.rx_irqs, v.rx_bufs, v.rx_waits, v.tx_errors + v.rx_errors);
	}
	for (unsigned i = 0; i < mc->nr_virtio; i++) {
		struct net_filter_stats st;
		if (mc->virtio_free[i] != virtio_net_free ||
		    !net_filter_get_stats(virtio_net_backend(mc->virtio[i]), &st) || (!st.flows && !st.dropped))
			continue;
		fprintf(out,
			"net %s: flows=%" PRIu64 " denied=%" PRIu64 " resets=%" PRIu64 " redirected=%" PRIu64
			" limited=%" PRIu64 " host_refused=%" PRIu64 " dropped=%" PRIu64 " evicted=%" PRIu64
			" open=%u host_conns=%u\n",
			mc->virtio[i]->name, st.flows, st.denied, st.resets, st.redirected, st.limited, st.host_refused,
			st.dropped, st.evicted, st.open_flows, st.host_conns);
	}
}

/* --stats: what each disk's queues did (kicks and interrupts per request
 * say how well they batch). After evloop_stop(): nothing moves any more. */
static void report_blk(FILE *out, struct machine *mc)
{
	for (unsigned i = 0; i < mc->nr_virtio; i++) {
		struct virtio_blk_stat_values st;
		if (mc->virtio_free[i] != virtio_blk_free)
			continue;
		virtio_blk_get_stats(mc->virtio[i], &st);
		if (!st.requests)
			continue;
		fprintf(out,
			"blk %s: requests=%" PRIu64 " completions=%" PRIu64 " kicks=%" PRIu64 " interrupts=%" PRIu64
			" batches=%" PRIu64 " merged=%" PRIu64 " retried=%" PRIu64 " looks=%" PRIu64
			" kicks/req=%.3f interrupts/req=%.3f\n",
			mc->virtio[i]->name, st.requests, st.completions, st.notifies, st.interrupts, st.batches,
			st.merged, st.retried, st.looks, (double)st.notifies / (double)st.requests,
			(double)st.interrupts / (double)st.requests);
	}
}

static int install_policy(struct machine *mc, const struct vm_config *c, const struct policy_spec *s, char *err,
			  size_t errlen)
{
	if (net_policy_check(c, s, err, errlen) < 0)
		return -1;
	struct policy *p = policy_compile(s, err, errlen);
	if (!p)
		return -1;
	policy_free(policy_swap(&mc->vm.policy, p));
	return 0;
}

struct machine *machine_build(const struct vm_config *c, void (*notify)(void *ctx), void *ctx,
			      const struct machine_restore *rs, char *err, size_t errlen)
{
	struct machine *mc = calloc(1, sizeof(*mc));
	if (!mc || vm_init(&mc->vm, c->machine.vcpu_count) < 0) {
		free(mc);
		errmsg(err, errlen, "out of memory");
		return NULL;
	}
	mc->vm_ready = true;
	mc->uffd = -1;
	vmcfg_assign_fresh(&mc->cfg, c); /* mc is fresh from calloc */
	/* The policy is in force before any device or vCPU is made (the
	 * vCPUs' CPUID and MSR filter come from it). mc->cfg does not own
	 * the spec: the VMM's configuration does, and may replace it. */
	memset(&mc->cfg.policy, 0, sizeof(mc->cfg.policy));
	mc->cfg.has_policy = false;
	if (c->has_policy && install_policy(mc, c, &c->policy, err, errlen) < 0)
		goto fail;
	mc->threads = calloc(c->machine.vcpu_count, sizeof(*mc->threads));
	if (!mc->threads) {
		errmsg(err, errlen, "out of memory");
		goto fail;
	}
	if (vmcfg_cmdline(c, mc->cmdline, sizeof(mc->cmdline)) < 0) {
		errmsg(err, errlen, "boot_args: the kernel command line is too long");
		goto fail;
	}
	/* A restore takes RAM, the loaded kernel included, from the snapshot. */
	if (!rs && (map_file("kernel", c->boot.kernel_image_path, &mc->kernel, err, errlen) < 0 ||
		    (c->boot.initrd_path[0] && map_file("initrd", c->boot.initrd_path, &mc->initrd, err, errlen) < 0)))
		goto fail;
	if (open_trace(mc, err, errlen) < 0 || open_console(mc, err, errlen) < 0)
		goto fail;
	struct kvm_ram_source ram = { .kind = KVM_RAM_ANON, .fd = -1 };
	if (rs)
		ram = rs->uffd_path ? (struct kvm_ram_source){ .kind = KVM_RAM_UFFD, .fd = -1 }
				    : (struct kvm_ram_source){ .kind = KVM_RAM_FILE, .fd = rs->mem_fd };
	mc->kb = kvm_backend_create(&mc->vm, c->machine.mem_size_mib << 20, &ram, err, errlen);
	if (!mc->kb)
		goto fail;
	mc->ram_anon = ram.kind == KVM_RAM_ANON;
	/* The page server fills RAM from here on: before anything (a device
	 * restoring its queues) touches it. */
	if (rs && rs->uffd_path && (mc->uffd = uffd_attach(&mc->vm.mem, rs->uffd_path, err, errlen)) < 0)
		goto fail;
	if (c->machine.track_dirty_pages && machine_track_dirty(mc, err, errlen) < 0)
		goto fail;
	mc->loop = evloop_new();
	if (!mc->loop) {
		errmsg(err, errlen, "cannot create the event loop");
		goto fail;
	}
	mc->board = (struct pc_config){
		.boot = { .kernel = mc->kernel.data, .kernel_len = mc->kernel.len, .initrd = mc->initrd.data,
			  .initrd_len = mc->initrd.len, .cmdline = mc->cmdline },
		.console = console_chardev(&mc->con),
		.irq = backend_irq,
		.irq_ctx = mc->kb,
		.plat = kvm_platform_ops(mc->kb),
		.exec = evloop_exec(mc->loop),
		.clock = host_clock(),
	};
	struct pc_config *cfg = &mc->board;
	if (rtc_redirect(mc))
		cfg->clock = vclock_shifted(&mc->rtc_clock);
	if (pc_devices(&mc->vm, &mc->pc, cfg, err, errlen) < 0 || add_drives(mc, cfg, err, errlen) < 0 ||
	    add_nets(mc, cfg, err, errlen) < 0 || add_others(mc, cfg, err, errlen) < 0 ||
	    (!rs && pc_build(&mc->vm, &mc->pc, cfg, err, errlen) < 0))
		goto fail;
	/* The policy in force decides the vCPUs' CPUID and the MSR filter. */
	const struct policy *p = policy_enter(&mc->vm.policy);
	int pr = kvm_apply_policy(mc->kb, p, err, errlen);
	if (pr == 0)
		pr = kvm_vcpus_create(mc->kb, &mc->pc.boot.cpu, p, err, errlen);
	if (pr == 0)
		policy_build_cpuid(p, mc->vm.ev);
	policy_leave(&mc->vm.policy);
	if (pr < 0)
		goto fail;
	if (rs && machine_restore_state(mc, rs, err, errlen) < 0)
		goto fail;
	struct hv_ops hv = kvm_hv_ops(mc->kb);
	if (vcpus_init(&mc->vm, &hv) < 0) {
		errmsg(err, errlen, "out of memory");
		goto fail;
	}
	mc->vm.vcpus.notify = notify;
	mc->vm.vcpus.notify_ctx = ctx;
	if (c->gdb[0] && !(mc->gdb = gdb_server_start(&mc->vm, c->gdb, err, errlen)))
		goto fail;
	return mc;
fail:
	machine_finish(mc);
	return NULL;
}

static void quit_from_console(void *mc)
{
	machine_request_stop(mc, VM_STOP_USER);
}

static size_t uart_push(void *dev, const uint8_t *buf, size_t len)
{
	return uart_16550_rx_push(dev, buf, len);
}

static bool uart_wait(void *dev, int ms)
{
	return uart_16550_rx_wait_room(dev, ms);
}

static size_t hvc_push(void *dev, const uint8_t *buf, size_t len)
{
	return virtio_console_rx_push(dev, buf, len);
}

static bool hvc_wait(void *dev, int ms)
{
	return virtio_console_rx_wait_room(dev, ms);
}

uint64_t machine_first_entry_ns(struct machine *mc)
{
	return atomic_load(&mc->first_entry_ns);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu_thread *t = arg;
	atomic_store(&t->tid, (int)gettid());
	seccomp_enter(SC_VCPU);
	if (t->cpu == 0)
		atomic_store(t->first_entry_ns, host_mono_ns()); /* a restore's "first instruction" */
	vcpu_loop(t->vm, t->cpu);
	return NULL;
}

int machine_start(struct machine *mc, bool paused, char *err, size_t errlen)
{
	/* The event thread serves the virtio devices only (their doorbells,
	 * deferred work, host fds of net and vsock): a machine without one
	 * pays neither the thread nor its filter (issue 10). */
	if (mc->nr_virtio && evloop_start(mc->loop) < 0)
		return errmsg(err, errlen, "cannot start the event thread");
	struct console_sink sink = { .push = uart_push, .wait_room = uart_wait, .dev = mc->pc.com1,
				     .quit = quit_from_console, .quit_ctx = mc };
	if (mc->hvc)
		sink = (struct console_sink){ .push = hvc_push, .wait_room = hvc_wait, .dev = mc->hvc,
					      .quit = quit_from_console, .quit_ctx = mc };
	if (console_start_input(&mc->con, &sink) < 0)
		return errmsg(err, errlen, "cannot start console input");
	if (kvm_host_is_pvm())
		fprintf(stderr, "vigil: warning: this host's KVM is kvm_pvm: guest kernel code is emulated and "
				"will be very slow (see 'vigil check')\n");
	vtrace_mark_start(mc->trace);
	vm_mark_running(&mc->vm);
	mc->running = true;
	/* --gdb-wait: the pause is asked before any vCPU loop runs, so each
	 * parks before its first guest entry, until gdb resumes it. */
	if (mc->gdb && mc->cfg.gdb_wait) {
		fprintf(stderr, "vigil: waiting for gdb on %s\n", mc->cfg.gdb);
		vm_pause(&mc->vm);
	} else if (paused) {
		/* A snapshot loaded without resume_vm: every vCPU parks before
		 * its first entry, and the devices wait as after a pause. */
		evloop_pause(mc->loop);
		vm_devs_quiesce(&mc->vm);
		vm_pause(&mc->vm);
	}
	/* The control thread's filter goes in last, and before the vCPU
	 * threads exist: they inherit it and narrow it (host/seccomp.h). */
	seccomp_enter(SC_MAIN);
	for (unsigned i = 0; i < mc->vm.ncpus; i++) {
		struct vcpu_thread *t = &mc->threads[i];
		t->vm = &mc->vm;
		t->cpu = i;
		t->first_entry_ns = &mc->first_entry_ns;
		if (pthread_create(&t->thread, NULL, vcpu_thread, t) != 0) {
			/* The start failed, with this message: the VM never ran as
			 * a whole, so its end has nothing more to report. */
			mc->running = false;
			return errmsg(err, errlen, "cannot start vCPU %u thread", i);
		}
		t->started = true;
	}
	/* A vCPU call (registers, translate) made right after the start
	 * must find its loop there to serve it. */
	vcpus_wait_started(&mc->vm, mc->vm.ncpus);
	return 0;
}

void machine_pause(struct machine *mc)
{
	vm_pause(&mc->vm);
	evloop_pause(mc->loop); /* the control thread is never the event thread */
	vm_devs_quiesce(&mc->vm);
}

void machine_resume(struct machine *mc)
{
	vm_devs_resume(&mc->vm);
	evloop_resume(mc->loop);
	vm_resume(&mc->vm);
}

int machine_ctrl_alt_del(struct machine *mc, char *err, size_t errlen)
{
	if (i8042_ctrl_alt_del(mc->pc.i8042) < 0)
		return errmsg(err, errlen, "the guest has its keyboard disabled or is not reading it: Ctrl+Alt+Del not delivered");
	return 0;
}

static struct virtio_dev *virtio_by_id(struct machine *mc, const char *id)
{
	for (unsigned i = 0; i < mc->nr_virtio; i++)
		if (strcmp(mc->virtio[i]->name, id) == 0)
			return mc->virtio[i];
	return NULL;
}

/* A drive's image, with the overlay the policy in force gives it opened too
 * (PATCH /drives: the blocks redirected so far are the drive's content). */
static struct blk_backend *open_drive(struct machine *mc, const struct vmcfg_drive *dr, const char *path, char *err,
				      size_t errlen)
{
	bool only = false;
	const struct policy *p = policy_enter(&mc->vm.policy);
	const char *ovl = policy_build_overlay(p, dr->drive_id, &only);
	struct blk_file_opts o = { .read_only = dr->is_read_only, .overlay = ovl, .base_ro = only,
				   .queues = drive_queues(mc) };
	/* No .ex: a ring reopened here keeps its completion thread (making
	 * the doorbell's eventfd is not in the running VM's seccomp set). */
	drive_engine(dr, &o.engine, &o.cache, &o.buffered);
	struct blk_backend *be = blk_file_open_opts(path, &o, err, errlen);
	policy_leave(&mc->vm.policy);
	return be;
}

int machine_update_drive(struct machine *mc, const char *id, const char *path, char *err, size_t errlen)
{
	struct vdev *vd = vm_dev_find(&mc->vm, id);
	struct virtio_dev *d = virtio_by_id(mc, id);
	struct vmcfg_drive *dr = vmcfg_find_drive(&mc->cfg, id);
	if (!vd || !d || !dr || strcmp(vd->kind, "virtio-blk") != 0)
		return errmsg(err, errlen, "drive '%s' does not exist", id);
	if (strlen(path) >= sizeof(dr->path_on_host))
		return errmsg(err, errlen, "path_on_host: too long");

	bool was_paused = vm_run_state(&mc->vm) == VMS_PAUSED;
	if (!was_paused)
		machine_pause(mc);
	/* The old image goes first: reopening the same file must not meet
	 * its own lock. */
	virtio_blk_detach(d);
	struct blk_backend *be = open_drive(mc, dr, path, err, errlen);
	int r = be ? virtio_blk_attach(d, be, err, errlen) : -1;
	if (r == 0) {
		strcpy(dr->path_on_host, path);
	} else {
		char again[256];
		be = open_drive(mc, dr, dr->path_on_host, again, sizeof(again));
		if (!be || virtio_blk_attach(d, be, again, sizeof(again)) < 0)
			virtio_dev_needs_reset(d); /* nothing to serve from: the driver is told */
	}
	if (!was_paused)
		machine_resume(mc);
	return r;
}

int machine_vcpu_tid(struct machine *mc, unsigned i)
{
	return i < mc->vm.ncpus ? atomic_load(&mc->threads[i].tid) : 0;
}

struct vm *machine_vm(struct machine *mc)
{
	return &mc->vm;
}

int machine_policy_check(struct machine *mc, const struct policy *p, char *err, size_t errlen)
{
	return kvm_policy_check(mc->kb, p, err, errlen);
}

int machine_open_overlays(struct machine *mc, const struct policy *p, char *err, size_t errlen)
{
	for (unsigned i = 0; i < mc->nr_virtio; i++) {
		bool only;
		if (mc->virtio_free[i] != virtio_blk_free)
			continue;
		const char *ovl = policy_build_overlay(p, mc->virtio[i]->name, &only);
		char why[256];
		if (ovl && virtio_blk_open_overlay(mc->virtio[i], ovl, why, sizeof(why)) < 0)
			return errmsg(err, errlen, "drive %s: %s", mc->virtio[i]->name, why);
	}
	return 0;
}

int machine_policy_changed(struct machine *mc, char *err, size_t errlen)
{
	const struct policy *p = policy_enter(&mc->vm.policy);
	int r = kvm_apply_policy(mc->kb, p, err, errlen);
	policy_leave(&mc->vm.policy);
	return r;
}

struct vtrace *machine_trace(struct machine *mc)
{
	return mc->trace;
}

/* --stats: vigil's own process as the guest ends, before teardown (every
 * device still open): peak RSS and open descriptors, what a soak watches. */
static void report_process(FILE *out)
{
	char line[256];
	long hwm = -1;
	FILE *f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld", &hwm) == 1)
			break;
	if (f)
		fclose(f);
	/* poll over the descriptor numbers, 256 a call (POLLNVAL: not open):
	 * the control thread's seccomp list has no getdents for /proc/self/fd,
	 * and one fcntl a number was 65,536 calls. A chunk poll refuses (more
	 * numbers than RLIMIT_NOFILE) is asked one by one. */
	unsigned fds = 0;
	struct pollfd p[256];
	for (int base = 0; base < 65536; base += 256) {
		for (int i = 0; i < 256; i++)
			p[i] = (struct pollfd){ .fd = base + i };
		if (poll(p, 256, 0) < 0) {
			for (int i = 0; i < 256; i++)
				fds += fcntl(base + i, F_GETFD) >= 0;
			continue;
		}
		for (int i = 0; i < 256; i++)
			fds += !(p[i].revents & POLLNVAL);
	}
	fprintf(out, "process: peak_rss_kb=%ld fds=%u\n", hwm, fds);
}

static void report_trace(struct vtrace *t)
{
	struct vtrace_stats st;
	vtrace_stats(t, &st);
	fprintf(stderr, "trace: events=%" PRIu64 " lost=%" PRIu64 " coalesced=%" PRIu64 " trace_lines=%" PRIu64
			" audit_lines=%" PRIu64 " write_failed=%" PRIu64 "\n",
		st.events, st.lost, st.coalesced, st.trace_lines, st.audit_lines, st.trace_failed + st.audit_failed);
}

void machine_request_stop(struct machine *mc, enum vm_stop why)
{
	vm_request_stop(&mc->vm, why);
}

enum vm_stop machine_finish(struct machine *mc)
{
	if (!mc)
		return VM_STOP_ERROR;
	enum vm_stop why = vm_stop_reason(&mc->vm);
	if (why == VM_STOP_NONE) {
		/* A build that failed, or a VM finished before it stopped. */
		vm_request_stop(&mc->vm, VM_STOP_ERROR);
		why = VM_STOP_ERROR;
	}
	for (unsigned i = 0; mc->threads && i < mc->vm.ncpus; i++)
		if (mc->threads[i].started)
			pthread_join(mc->threads[i].thread, NULL);
	gdb_server_stop(mc->gdb); /* its thread uses the VM: before any of it goes */
	mc->gdb = NULL;
	if (mc->con_open)
		console_close(&mc->con);
	/* A VM that never ran has nothing to report: its builder said why. */
	if (mc->running && why != VM_STOP_POWEROFF)
		fprintf(stderr, "vigil: %s\n", vm_stop_name(why));
	if (mc->running && mc->cfg.stats) {
		mon_report(stderr, mc->vm.stats, mc->vm.ncpus, vm_device_name, &mc->vm);
		mon_report_devices(stderr, mc->vm.devs, mc->vm.nr_devs);
		mon_report_hv(stderr, &mc->vm.vcpus.hv, mc->vm.ncpus);
		mon_report_policy(stderr, &mc->vm.policy);
		report_process(stderr);
		if (mc->con_open)
			console_report(&mc->con, stderr);
		host_fault_report(stderr); /* what went away under a device (host/fault.h) */
	}
	/* Teardown order: no queue is served past evloop_stop(); device
	 * models (and their worker threads) go before their transports. */
	if (mc->loop)
		evloop_stop(mc->loop);
	if (mc->running && mc->cfg.stats) {
		report_net(stderr, mc);
		report_blk(stderr, mc);
	}
	for (unsigned i = 0; i < mc->nr_virtio; i++)
		mc->virtio_free[i](mc->virtio[i]);
	pc_free(&mc->pc);
	evloop_free(mc->loop);
	if (mc->uffd >= 0)
		uffd_detach(mc->uffd);
	kvm_backend_destroy(mc->kb);
	/* Every producer (vCPUs, the event thread, device workers) is gone: the
	 * last records and the coalesced audit records still counting. */
	vtrace_stop(mc->trace);
	if (mc->running && mc->cfg.stats && mc->trace)
		report_trace(mc->trace);
	vtrace_free(mc->trace);
	mc->vm.ev = NULL;
	if (mc->vm_ready)
		vm_fini(&mc->vm);
	unmap_file(&mc->initrd);
	unmap_file(&mc->kernel);
	free(mc->threads);
	free(mc);
	return why;
}
