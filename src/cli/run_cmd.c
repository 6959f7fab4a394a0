/* `vigil run`: parse the options, map the kernel and initrd, build the VM
 * (KVM backend + PC board), run it, report, and turn the reason it stopped
 * into the exit status. */
#include "cli/run_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "arch/x86/pc.h"
#include "cli/parse.h"
#include "devices/uart_16550.h"
#include "devices/virtio_console.h"
#include "host/console.h"
#include "host/clock.h"
#include "host/evloop.h"
#include "host/exec_evloop.h"
#include "kvm/kvm.h"

#define ERRLEN 512

void run_usage(FILE *out)
{
	fprintf(out,
		"usage: vigil run [options]\n"
		"  --kernel PATH       bzImage (64-bit boot protocol) or ELF vmlinux with a PVH note\n"
		"                      (default: the default guest built by guest/build.sh)\n"
		"  --initrd PATH       initramfs (default: the default guest's, with the default kernel)\n"
		"  --cmdline STRING    appended to the default command line \"" RUN_DEFAULT_CMDLINE "\"\n"
		"  --mem SIZE          guest RAM, K/M/G suffix, bare number = MiB (default 256M, min 64M)\n"
		"  --cpus N            vCPUs, 1..%d (default 1)\n"
		"  --console KIND      stdio (default), none, or file:PATH\n"
		"  --console-device D  serial (COM1, ttyS0; default) or virtio (virtio-console, hvc0)\n"
		"  --disk path=FILE[,ro][,id=NAME]\n"
		"                      a virtio-blk disk over a raw image (repeatable; first is /dev/vda)\n"
		"  --net tap=IFNAME[,mac=MAC]\n"
		"  --net user[,mac=MAC][,hostfwd=tcp:[ADDR]:PORT-:GUESTPORT]...\n"
		"                      a virtio-net device over a TAP device or user-mode networking (repeatable)\n"
		"  --vsock cid=N,uds=PATH\n"
		"                      virtio-vsock; guest ports reached through Unix sockets at PATH (Firecracker's\n"
		"                      convention: connect to PATH, send \"CONNECT <port>\\n\"; guest to host port P: PATH_P)\n"
		"  --rng               a virtio-rng device fed from the host's getrandom()\n"
		"  --stats             print exit, port and policy counters when the VM ends\n"
		"  --trace FILE        write every port/MMIO access the VMM sees to FILE ('-': stderr)\n"
		"  -h, --help          this text\n"
		"exit status: 0 guest powered off, 1 vigil error, 2 guest rebooted,\n"
		"             3 guest crashed, 4 guest panicked, 5 stopped by user (Ctrl-A x, signal)\n",
		VIGIL_MAX_CPUS);
}

__attribute__((format(printf, 1, 2))) static int bad(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "vigil: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return -1;
}

int run_parse(int argc, char **argv, struct run_opts *o)
{
	enum { O_KERNEL = 256, O_INITRD, O_CMDLINE, O_MEM, O_CPUS, O_CONSOLE, O_STATS, O_DISK, O_NET, O_VSOCK,
	       O_RNG, O_CONSOLE_DEV, O_TRACE };
	static const struct option longopts[] = {
		{ "kernel", required_argument, NULL, O_KERNEL },
		{ "initrd", required_argument, NULL, O_INITRD },
		{ "cmdline", required_argument, NULL, O_CMDLINE },
		{ "mem", required_argument, NULL, O_MEM },
		{ "cpus", required_argument, NULL, O_CPUS },
		{ "console", required_argument, NULL, O_CONSOLE },
		{ "stats", no_argument, NULL, O_STATS },
		{ "trace", required_argument, NULL, O_TRACE },
		{ "disk", required_argument, NULL, O_DISK },
		{ "net", required_argument, NULL, O_NET },
		{ "vsock", required_argument, NULL, O_VSOCK },
		{ "rng", no_argument, NULL, O_RNG },
		{ "console-device", required_argument, NULL, O_CONSOLE_DEV },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	memset(o, 0, sizeof(*o));
	o->mem = RUN_DEFAULT_MEM;
	o->cpus = 1;
	o->console = "stdio";
	o->cmdline = "";
	char err[256];
	optind = 1;
	opterr = 0;
	for (;;) {
		int c = getopt_long(argc, argv, ":h", longopts, NULL);
		if (c == -1)
			break;
		switch (c) {
		case O_KERNEL: o->kernel = optarg; break;
		case O_INITRD: o->initrd = optarg; break;
		case O_CMDLINE: o->cmdline = optarg; break;
		case O_MEM:
			if (parse_size(optarg, &o->mem) < 0)
				return bad("--mem '%s': expected a size such as 256M or 2G", optarg);
			if (o->mem < RUN_MIN_MEM)
				return bad("--mem %s is below the minimum of 64M", optarg);
			if (o->mem > (1ULL << 40))
				return bad("--mem %s is above vigil's limit of 1T", optarg);
			break;
		case O_CPUS:
			if (parse_uint(optarg, 1, VIGIL_MAX_CPUS, &o->cpus) < 0)
				return bad("--cpus '%s': expected a number from 1 to %d", optarg, VIGIL_MAX_CPUS);
			break;
		case O_CONSOLE: o->console = optarg; break;
		case O_STATS: o->stats = true; break;
		case O_TRACE: o->trace = optarg; break;
		case O_DISK:
		case O_NET:
		case O_VSOCK:
		case O_RNG:
		case O_CONSOLE_DEV: {
			static const enum run_dev_opt kind[] = { [O_DISK - O_DISK] = RUN_DEV_DISK,
				[O_NET - O_DISK] = RUN_DEV_NET, [O_VSOCK - O_DISK] = RUN_DEV_VSOCK,
				[O_RNG - O_DISK] = RUN_DEV_RNG, [O_CONSOLE_DEV - O_DISK] = RUN_DEV_CONSOLE };
			if (run_devices_parse(&o->devices, kind[c - O_DISK], optarg, err, sizeof(err)) < 0)
				return bad("%s", err);
			break;
		}
		case 'h': run_usage(stdout); return 1;
		case ':': return bad("option '%s' needs an argument", argv[optind - 1]);
		default: return bad("unknown option '%s' (see 'vigil run --help')", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad("unexpected argument '%s' (see 'vigil run --help')", argv[optind]);
	return 0;
}

struct mapped_file {
	const uint8_t *data;
	size_t len;
};

static int map_file(const char *what, const char *path, struct mapped_file *f)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "vigil: %s '%s': %s\n", what, path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		fprintf(stderr, "vigil: %s '%s': %s\n", what, path,
			S_ISDIR(st.st_mode) ? "is a directory" : st.st_size == 0 ? "is empty" : "not a regular file");
		close(fd);
		return -1;
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		fprintf(stderr, "vigil: %s '%s': %s\n", what, path, strerror(errno));
		return -1;
	}
	f->data = p;
	f->len = (size_t)st.st_size;
	return 0;
}

static void unmap_file(struct mapped_file *f)
{
	if (f->data)
		munmap((void *)f->data, f->len);
}

/* The default guest lives beside the binary: build/vigil -> build/guest/. */
static int default_guest(struct run_opts *o, char *kbuf, char *ibuf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	snprintf(kbuf, len, "%s/guest/vmlinuz", exe);
	snprintf(ibuf, len, "%s/guest/initramfs.cpio.gz", exe);
	if (access(kbuf, R_OK) != 0) {
		fprintf(stderr, "vigil: no --kernel given and the default guest is not built (%s missing; run guest/build.sh)\n",
			kbuf);
		return -1;
	}
	o->kernel = kbuf;
	if (!o->initrd)
		o->initrd = ibuf;
	return 0;
}

static struct vm *signal_vm;

static void on_stop_signal(int sig)
{
	(void)sig;
	if (signal_vm)
		vm_request_stop(signal_vm, VM_STOP_USER);
}

static void quit_from_console(void *vm)
{
	vm_request_stop(vm, VM_STOP_USER);
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

static struct irq_line backend_irq(void *kb, uint32_t gsi)
{
	return kvm_irq_line(kb, gsi);
}

/* Builds and runs the VM; returns the exit status. */
static int run_vm(const struct run_opts *o, const struct mapped_file *kernel, const struct mapped_file *initrd)
{
	char err[ERRLEN] = "";
	struct vm vm;
	struct console con;
	struct pc_board pc = { 0 };
	struct kvm_backend *kb = NULL;
	struct evloop *loop = NULL;
	struct run_attached attached = { 0 };
	int status = VM_STOP_ERROR;

	const char *base = o->devices.virtio_console ? RUN_DEFAULT_CMDLINE_HVC : RUN_DEFAULT_CMDLINE;
	char *cmdline = malloc(strlen(base) + strlen(o->cmdline) + 2);
	if (!cmdline || vm_init(&vm, o->cpus) < 0) {
		fprintf(stderr, "vigil: out of memory\n");
		free(cmdline);
		return VM_STOP_ERROR;
	}
	sprintf(cmdline, "%s%s%s", base, o->cmdline[0] ? " " : "", o->cmdline);
	if (o->trace) {
		vm.trace = strcmp(o->trace, "-") == 0 ? stderr : fopen(o->trace, "we");
		if (!vm.trace) {
			fprintf(stderr, "vigil: --trace %s: %s\n", o->trace, strerror(errno));
			goto out_vm;
		}
		setvbuf(vm.trace, NULL, _IOLBF, 0);
	}
	if (console_open(&con, o->console, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigil: %s\n", err);
		goto out_vm;
	}
	kb = kvm_backend_create(&vm, o->mem, err, sizeof(err));
	if (!kb)
		goto fail;
	loop = evloop_new();
	if (!loop) {
		snprintf(err, sizeof(err), "cannot create the event loop");
		goto fail;
	}
	struct pc_config cfg = {
		.boot = { .kernel = kernel->data, .kernel_len = kernel->len, .initrd = initrd->data,
			  .initrd_len = initrd->len, .cmdline = cmdline },
		.console = console_chardev(&con),
		.irq = backend_irq,
		.irq_ctx = kb,
		.plat = kvm_platform_ops(kb),
		.exec = evloop_exec(loop),
		.clock = host_clock(),
	};
	if (pc_devices(&vm, &pc, &cfg, err, sizeof(err)) < 0 ||
	    run_devices_attach(&o->devices, &vm, &pc, &cfg, loop, &attached, err, sizeof(err)) < 0 ||
	    pc_build(&vm, &pc, &cfg, err, sizeof(err)) < 0)
		goto fail;
	if (evloop_start(loop) < 0) {
		snprintf(err, sizeof(err), "cannot start the event thread");
		goto fail;
	}
	if (kvm_vcpus_create(kb, &pc.boot.cpu, err, sizeof(err)) < 0)
		goto fail;
	if (kvm_host_is_pvm())
		fprintf(stderr, "vigil: warning: this host's KVM is kvm_pvm: guest kernel code is emulated and "
				"will be very slow (see 'vigil check')\n");

	signal_vm = &vm;
	struct sigaction sa = { .sa_handler = on_stop_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	struct console_sink sink = { .push = uart_push, .wait_room = uart_wait, .dev = pc.com1,
				     .quit = quit_from_console, .quit_ctx = &vm };
	if (attached.console)
		sink = (struct console_sink){ .push = hvc_push, .wait_room = hvc_wait, .dev = attached.console,
					      .quit = quit_from_console, .quit_ctx = &vm };
	if (console_start_input(&con, &sink) < 0) {
		snprintf(err, sizeof(err), "cannot start console input");
		goto fail;
	}
	status = kvm_run(kb);
	console_close(&con);
	if (status != VM_STOP_POWEROFF)
		fprintf(stderr, "vigil: %s\n", vm_stop_name(status));
	if (o->stats) {
		mon_report(stderr, vm.stats, vm.ncpus, vm_device_name, &vm);
		mon_report_devices(stderr, vm.devs, vm.nr_devs);
	}
	goto out;
fail:
	fprintf(stderr, "vigil: %s\n", err);
	status = VM_STOP_ERROR;
out:
	console_close(&con);
	signal_vm = NULL;
	/* Teardown order: no queue is served past evloop_stop(); device
	 * backends (and their worker threads) go before their transports. */
	evloop_stop(loop);
	run_devices_free(&attached);
	pc_free(&pc);
	evloop_free(loop);
	kvm_backend_destroy(kb);
out_vm:
	if (vm.trace && vm.trace != stderr)
		fclose(vm.trace);
	vm_fini(&vm);
	free(cmdline);
	return status;
}

int run_main(int argc, char **argv)
{
	static struct run_opts opts; /* large (device configs): not on the stack */
	struct run_opts *o = &opts;
	char kbuf[PATH_MAX + 32], ibuf[PATH_MAX + 32];
	struct mapped_file kernel = { 0 }, initrd = { 0 };

	int r = run_parse(argc, argv, o);
	if (r != 0)
		return r > 0 ? 0 : VM_STOP_ERROR;
	if (!o->kernel && default_guest(o, kbuf, ibuf, sizeof(kbuf)) < 0)
		return VM_STOP_ERROR;
	if (map_file("kernel", o->kernel, &kernel) < 0)
		return VM_STOP_ERROR;
	if (o->initrd && map_file("initrd", o->initrd, &initrd) < 0) {
		unmap_file(&kernel);
		return VM_STOP_ERROR;
	}
	int status = run_vm(o, &kernel, &initrd);
	unmap_file(&initrd);
	unmap_file(&kernel);
	return status;
}
