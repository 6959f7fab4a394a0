/* `vigil run`: the options fill one `struct vm_config` (vmm/config.h) through
 * the same setters as the config file and the API; then the control loop
 * (vmm/vmm.c) builds and runs the VM, with the API served beside it when
 * --api-sock is given. */
#include "cli/run_cmd.h"

#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/http.h"
#include "cli/parse.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_vsock.h"
#include "host/blk_file.h"
#include "host/seccomp.h"
#include "vmm/config_json.h"
#include "vmm/log.h"
#include "vmm/policy_json.h"
#include "vmm/trace.h"
#include "vmm/vmm.h"

void run_usage(FILE *out)
{
	fprintf(out,
		"usage: vigil run [options]\n"
		"  --kernel PATH       bzImage (64-bit boot protocol) or ELF vmlinux with a PVH note\n"
		"                      (default: the default guest built by guest/build.sh)\n"
		"  --initrd PATH       initramfs (default: the default guest's, with the default kernel)\n"
		"  --cmdline STRING    appended to the default command line \"console=ttyS0 panic=-1\"\n"
		"  --mem SIZE          guest RAM, K/M/G suffix, bare number = MiB (default 256M, min 64M)\n"
		"  --cpus N            vCPUs, 1..%d (default 1)\n"
		"  --console KIND      stdio (default), none, or file:PATH[,max=SIZE] (default cap 64M)\n"
		"  --console-device D  serial (COM1, ttyS0; default) or virtio (virtio-console, hvc0)\n"
		"  --disk path=FILE[,ro][,id=NAME][,io=uring|threads][,cache=writeback|unsafe][,direct=on|off]\n"
		"                      a virtio-blk disk over a raw image (repeatable; first is /dev/vda);\n"
		"                      io_uring with O_DIRECT and flushes that fsync by default\n"
		"  --net tap=IFNAME[,mac=MAC]\n"
		"  --net user[,mac=MAC][,hostfwd=tcp:[ADDR]:PORT-:GUESTPORT]...\n"
		"                      a virtio-net device over a TAP device or user-mode networking (repeatable)\n"
		"  --vsock cid=N,uds=PATH\n"
		"                      virtio-vsock; guest ports reached through Unix sockets at PATH (Firecracker's\n"
		"                      convention: connect to PATH, send \"CONNECT <port>\\n\"; guest to host port P: PATH_P)\n"
		"  --rng               a virtio-rng device fed from the host's getrandom()\n"
		"  --stats             print exit, port and policy counters when the VM ends\n"
		"  --policy FILE       provide, redirect or deny what the guest touches (docs/POLICY.md)\n"
		"  --trace FILE        write every exit, device request and policy decision to FILE as\n"
		"                      JSON lines ('-': stderr)\n"
		"  --trace-filter SPEC keep only some events, e.g. 'kind=pio,mmio;device=com1,unclaimed;\n"
		"                      addr=0x3f8-0x3ff;vcpu=0,1' (each clause present must match)\n"
		"  --audit FILE        append an audit record (JSON lines) for every audited policy decision\n"
		"  --log-max SIZE      the most vigil writes to each trace and audit file (default 1G):\n"
		"                      past it, records are dropped and counted\n"
		"  --gdb unix:PATH|tcp:ADDR:PORT\n"
		"                      a gdb remote stub there (gdb: target remote ...); vCPUs are threads\n"
		"  --gdb-wait          hold the guest at its first instruction until gdb attaches\n"
		"  --seccomp on|log|off\n"
		"                      system-call filters per thread (default on: a call outside\n"
		"                      a thread's list stops vigil, exit 148; log: the kernel logs it)\n"
		"  --api-sock PATH     serve Firecracker's API (HTTP on a Unix socket) at PATH; without a\n"
		"                      kernel option, wait for InstanceStart\n"
		"  --config-file FILE  configure from Firecracker's config-file JSON and start\n"
		"  --no-api            no API socket (needs --config-file, as in Firecracker)\n"
		"  --id ID             the instance id GET / reports (default anonymous-instance)\n"
		"  -h, --help          this text\n"
		"exit status: 0 guest powered off, 1 vigil error, 2 guest rebooted,\n"
		"             3 guest crashed, 4 guest panicked, 5 stopped by user (Ctrl-A x, signal)\n",
		VMCFG_MAX_CPUS);
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

static int set_console(struct vm_config *c, const char *spec)
{
	struct vmcfg_console con = c->console;
	char err[256];

	if (strcmp(spec, "stdio") == 0)
		con.out = CONSOLE_STDIO;
	else if (strcmp(spec, "none") == 0)
		con.out = CONSOLE_NONE;
	else if (strncmp(spec, "file:", 5) == 0 && spec[5] && strlen(spec + 5) < sizeof(con.path)) {
		con.out = CONSOLE_FILE;
		strcpy(con.path, spec + 5);
	} else
		return bad("--console '%s': expected stdio, none or file:PATH[,max=SIZE]", spec);
	if (vmcfg_set_console(c, &con, err, sizeof(err)) < 0)
		return bad("--console: %s", err);
	return 0;
}

static int add_disk(struct vm_config *c, const char *spec)
{
	struct virtio_blk_config bc;
	struct vmcfg_drive d = { 0 };
	char err[512];

	if (virtio_blk_parse(spec, &bc, err, sizeof(err)) < 0)
		return bad("%s", err);
	if (strlen(bc.path) >= sizeof(d.path_on_host))
		return bad("--disk: path too long");
	strcpy(d.path_on_host, bc.path);
	d.is_read_only = bc.read_only;
	/* io= and cache= in Firecracker's terms (vmm/builder.c maps them
	 * back). A flush on a --disk syncs unless cache=unsafe, as it always
	 * did; the engine is BLK_FILE_ENGINE (host/blk_file.h) unless io= says. */
	enum blk_engine eng = bc.engine == BLK_ENGINE_DEFAULT ? BLK_FILE_ENGINE : bc.engine;
	strcpy(d.io_engine, eng == BLK_ENGINE_URING ? "Async" : "Sync");
	strcpy(d.cache_type, bc.cache == BLK_CACHE_UNSAFE ? "Unsafe" : "Writeback");
	d.buffered = bc.buffered;
	/* id= names the drive (for the API and --stats) when it is a valid
	 * Firecracker id, and is what the guest reads as the serial; without
	 * it the serial is the file name, as before. */
	const char *serial = bc.id;
	if (!serial) {
		const char *slash = strrchr(bc.path, '/');
		serial = slash ? slash + 1 : bc.path;
	}
	snprintf(d.serial, sizeof(d.serial), "%.20s", serial);
	if (bc.id && vmcfg_id_ok(bc.id))
		snprintf(d.drive_id, sizeof(d.drive_id), "%s", bc.id);
	else
		snprintf(d.drive_id, sizeof(d.drive_id), "drive%u", c->nr_drives);
	if (vmcfg_put_drive(c, &d, err, sizeof(err)) < 0)
		return bad("--disk: %s", err);
	return 0;
}

static int add_net(struct vm_config *c, const char *spec)
{
	struct virtio_net_config nc;
	struct vmcfg_net n = { 0 };
	char err[512];

	if (virtio_net_parse(spec, &nc, err, sizeof(err)) < 0)
		return bad("%s", err);
	snprintf(n.iface_id, sizeof(n.iface_id), "net%u", c->nr_nets);
	n.vigil_user = nc.kind == NET_USER;
	if (!n.vigil_user)
		snprintf(n.host_dev_name, sizeof(n.host_dev_name), "%s", nc.ifname);
	n.nr_fwd = nc.nr_fwd;
	memcpy(n.fwd, nc.fwd, sizeof(n.fwd));
	n.has_mac = nc.mac_set;
	memcpy(n.guest_mac, nc.mac, 6);
	if (vmcfg_put_net(c, &n, err, sizeof(err)) < 0)
		return bad("--net: %s", err);
	return 0;
}

static int set_vsock(struct vm_config *c, const char *spec)
{
	struct virtio_vsock_config vc;
	struct vmcfg_vsock v = { 0 };
	char err[512];

	if (c->has_vsock)
		return bad("--vsock: only one vsock device");
	if (virtio_vsock_parse(spec, &vc, err, sizeof(err)) < 0)
		return bad("%s", err);
	v.guest_cid = vc.guest_cid;
	snprintf(v.uds_path, sizeof(v.uds_path), "%s", vc.uds_path);
	if (vmcfg_set_vsock(c, &v, err, sizeof(err)) < 0)
		return bad("--vsock: %s", err);
	return 0;
}

int run_parse(int argc, char **argv, struct run_opts *o)
{
	enum { O_KERNEL = 256, O_INITRD, O_CMDLINE, O_MEM, O_CPUS, O_CONSOLE, O_STATS, O_DISK, O_NET, O_VSOCK,
	       O_RNG, O_CONSOLE_DEV, O_TRACE, O_TRACE_FILTER, O_AUDIT, O_API_SOCK, O_CONFIG_FILE, O_NO_API, O_ID,
	       O_POLICY, O_GDB, O_GDB_WAIT, O_SECCOMP, O_LOG_MAX };
	static const struct option longopts[] = {
		{ "kernel", required_argument, NULL, O_KERNEL },
		{ "initrd", required_argument, NULL, O_INITRD },
		{ "cmdline", required_argument, NULL, O_CMDLINE },
		{ "mem", required_argument, NULL, O_MEM },
		{ "cpus", required_argument, NULL, O_CPUS },
		{ "console", required_argument, NULL, O_CONSOLE },
		{ "stats", no_argument, NULL, O_STATS },
		{ "trace", required_argument, NULL, O_TRACE },
		{ "trace-filter", required_argument, NULL, O_TRACE_FILTER },
		{ "audit", required_argument, NULL, O_AUDIT },
		{ "log-max", required_argument, NULL, O_LOG_MAX },
		{ "disk", required_argument, NULL, O_DISK },
		{ "net", required_argument, NULL, O_NET },
		{ "vsock", required_argument, NULL, O_VSOCK },
		{ "rng", no_argument, NULL, O_RNG },
		{ "console-device", required_argument, NULL, O_CONSOLE_DEV },
		{ "api-sock", required_argument, NULL, O_API_SOCK },
		{ "config-file", required_argument, NULL, O_CONFIG_FILE },
		{ "no-api", no_argument, NULL, O_NO_API },
		{ "id", required_argument, NULL, O_ID },
		{ "policy", required_argument, NULL, O_POLICY },
		{ "gdb", required_argument, NULL, O_GDB },
		{ "gdb-wait", no_argument, NULL, O_GDB_WAIT },
		{ "seccomp", required_argument, NULL, O_SECCOMP },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vm_config *c = &o->cfg;
	char err[512];
	uint64_t mem;

	/* everything but the configuration, which vmcfg_init clears without
	 * writing the pages of it that are zero already (run_main's is static) */
	_Static_assert(offsetof(struct run_opts, cfg) == 0 &&
			       offsetof(struct run_opts, kernel) >= sizeof(struct vm_config),
		       "run_opts: the configuration first, the options after it");
	memset(&o->kernel, 0, sizeof(*o) - offsetof(struct run_opts, kernel));
	vmcfg_init(c);
	optind = 1;
	opterr = 0;
	for (;;) {
		int ch = getopt_long(argc, argv, ":h", longopts, NULL);
		if (ch == -1)
			break;
		switch (ch) {
		case O_KERNEL: o->kernel = optarg; break;
		case O_INITRD: o->initrd = optarg; break;
		case O_CMDLINE: o->cmdline = optarg; break;
		case O_MEM:
			if (parse_size(optarg, &mem) < 0)
				return bad("--mem '%s': expected a size such as 256M or 2G", optarg);
			if (mem < RUN_MIN_MEM)
				return bad("--mem %s is below the minimum of 64M", optarg);
			if (mem > (1ULL << 40))
				return bad("--mem %s is above vigil's limit of 1T", optarg);
			if (mem & ((1u << 20) - 1))
				return bad("--mem %s is not a whole number of MiB", optarg);
			c->machine.mem_size_mib = mem >> 20;
			o->mem_given = true;
			break;
		case O_CPUS:
			if (parse_uint(optarg, 1, VMCFG_MAX_CPUS, &c->machine.vcpu_count) < 0)
				return bad("--cpus '%s': expected a number from 1 to %d", optarg, VMCFG_MAX_CPUS);
			break;
		case O_CONSOLE:
			if (set_console(c, optarg) < 0)
				return -1;
			break;
		case O_STATS: c->stats = true; break;
		case O_TRACE:
			if (strlen(optarg) >= sizeof(c->trace))
				return bad("--trace: path too long");
			strcpy(c->trace, optarg);
			break;
		case O_TRACE_FILTER: {
			struct evfilter f;
			if (strlen(optarg) >= sizeof(c->trace_filter))
				return bad("--trace-filter: too long");
			if (trace_filter_parse(optarg, &f, err, sizeof(err)) < 0)
				return bad("%s", err);
			strcpy(c->trace_filter, optarg);
			break;
		}
		case O_AUDIT:
			if (!optarg[0] || strlen(optarg) >= sizeof(c->audit))
				return bad("--audit: expected a file name");
			strcpy(c->audit, optarg);
			break;
		case O_LOG_MAX:
			if (parse_size(optarg, &c->log_max) < 0 || c->log_max < 4096)
				return bad("--log-max '%s': expected a size of at least 4K, e.g. 100M", optarg);
			break;
		case O_DISK:
			if (add_disk(c, optarg) < 0)
				return -1;
			break;
		case O_NET:
			if (add_net(c, optarg) < 0)
				return -1;
			break;
		case O_VSOCK:
			if (set_vsock(c, optarg) < 0)
				return -1;
			break;
		case O_RNG: vmcfg_set_entropy(c, err, sizeof(err)); break;
		case O_CONSOLE_DEV:
			if (strcmp(optarg, "serial") != 0 && strcmp(optarg, "virtio") != 0)
				return bad("--console-device '%s': expected serial or virtio", optarg);
			c->console.virtio = strcmp(optarg, "virtio") == 0;
			break;
		case O_API_SOCK: o->api_sock = optarg; break;
		case O_CONFIG_FILE: o->config_file = optarg; break;
		case O_NO_API: o->no_api = true; break;
		case O_POLICY: o->policy = optarg; break;
		case O_ID:
			if (!vmcfg_instance_id_ok(optarg))
				return bad("--id '%s': only letters, digits and '-', 1 to %d characters", optarg,
					   VMCFG_ID_MAX);
			strcpy(c->id, optarg);
			break;
		case O_GDB:
			if (vmcfg_set_gdb(c, optarg, c->gdb_wait, err, sizeof(err)) < 0)
				return bad("--%s", err);
			break;
		case O_GDB_WAIT: o->gdb_wait = true; break;
		case O_SECCOMP:
			if ((o->seccomp = seccomp_parse_mode(optarg)) < 0)
				return bad("--seccomp '%s': on, log or off", optarg);
			o->seccomp_given = true;
			break;
		case 'h': run_usage(stdout); return 1;
		case ':': return bad("option '%s' needs an argument", argv[optind - 1]);
		default: return bad("unknown option '%s' (see 'vigil run --help')", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad("unexpected argument '%s' (see 'vigil run --help')", argv[optind]);
	if (o->no_api && !o->config_file)
		return bad("--no-api needs --config-file (there would be no way to configure the VM)");
	if (o->no_api && o->api_sock)
		return bad("--no-api and --api-sock exclude each other");
	if (o->gdb_wait && vmcfg_set_gdb(c, c->gdb, true, err, sizeof(err)) < 0)
		return bad("--gdb-wait needs --gdb (a socket for gdb to attach to)");
	if (o->config_file && o->kernel)
		return bad("--config-file and --kernel exclude each other (the file has a boot-source)");
	return 0;
}

/* --policy FILE: read and compiled now, so that a bad policy stops vigil
 * before anything is built. */
static int set_policy(struct run_opts *o)
{
	struct policy_spec s;
	char err[640];
	if (policy_json_load_file(o->policy, &s, err, sizeof(err)) < 0)
		return bad("%s", err);
	struct policy *p = policy_compile(&s, err, sizeof(err));
	if (!p) {
		policy_spec_free(&s);
		return bad("%s", err);
	}
	policy_free(p);
	vmcfg_set_policy(&o->cfg, &s);
	return 0;
}

/* The default guest lives beside the binary: build/vigil -> build/guest/. */
static int default_guest(struct run_opts *o, char *kbuf, char *ibuf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return bad("no --kernel given and the path of vigil itself is unknown");
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	snprintf(kbuf, len, "%s/guest/vmlinuz", exe);
	snprintf(ibuf, len, "%s/guest/initramfs.cpio.gz", exe);
	if (access(kbuf, R_OK) != 0)
		return bad("no --kernel given and the default guest is not built (%s missing; run guest/build.sh)", kbuf);
	o->kernel = kbuf;
	if (!o->initrd)
		o->initrd = ibuf;
	return 0;
}

/* --kernel / --initrd / --cmdline into the configuration's boot source. */
static int set_boot(struct run_opts *o)
{
	struct vmcfg_boot b = { 0 };
	char err[PATH_MAX + 256];

	if (strlen(o->kernel) >= sizeof(b.kernel_image_path) ||
	    (o->initrd && strlen(o->initrd) >= sizeof(b.initrd_path)) ||
	    (o->cmdline && strlen(o->cmdline) >= sizeof(b.boot_args)))
		return bad("--kernel, --initrd or --cmdline: too long");
	strcpy(b.kernel_image_path, o->kernel);
	if (o->initrd)
		strcpy(b.initrd_path, o->initrd);
	if (o->cmdline)
		strcpy(b.boot_args, o->cmdline);
	b.append = true;
	if (vmcfg_set_boot(&o->cfg, &b, err, sizeof(err)) < 0) {
		/* The CLI's words for the same checks. */
		const char *what = strncmp(err, "initrd_path", 11) == 0 ? "initrd" : "kernel";
		const char *rest = strchr(err, ' ');
		return bad("%s%s", what, rest ? rest : "");
	}
	return 0;
}

int run_main(int argc, char **argv)
{
	static struct run_opts opts; /* large (the configuration): not on the stack */
	struct run_opts *o = &opts;
	char kbuf[PATH_MAX + 32], ibuf[PATH_MAX + 32];
	char err[PATH_MAX + 256];

	int r = run_parse(argc, argv, o);
	if (r != 0)
		return r > 0 ? 0 : VM_STOP_ERROR;
	if (o->config_file) {
		if (vmcfg_load_file(&o->cfg, o->config_file, err, sizeof(err)) < 0)
			return bad("--config-file %s: %s", o->config_file, err), VM_STOP_ERROR;
	} else if (o->kernel || !o->api_sock) {
		if (!o->kernel && default_guest(o, kbuf, ibuf, sizeof(kbuf)) < 0)
			return VM_STOP_ERROR;
		if (set_boot(o) < 0)
			return VM_STOP_ERROR;
		/* vigil run's own default; the API and the config file start from
		 * Firecracker's (128 MiB). */
		if (!o->mem_given)
			o->cfg.machine.mem_size_mib = RUN_DEFAULT_MEM >> 20;
	}
	if (o->policy && set_policy(o) < 0)
		return VM_STOP_ERROR;
	if (o->cfg.has_logger && vlog_configure(&o->cfg.logger, o->cfg.id, err, sizeof(err)) < 0)
		return bad("logger: %s", err), VM_STOP_ERROR;
	/* before the first thread: each installs its filter as it starts */
	seccomp_set_mode(o->seccomp_given ? o->seccomp : o->cfg.seccomp);
	struct vmm *m = vmm_new(&o->cfg);
	vmcfg_fini(&o->cfg); /* the VMM has its own copy */
	if (!m)
		return bad("out of memory"), VM_STOP_ERROR;
	if (o->api_sock && api_server_start(o->api_sock, m, err, sizeof(err)) < 0) {
		vmm_free(m);
		return bad("--api-sock %s: %s", o->api_sock, err), VM_STOP_ERROR;
	}
	/* With a kernel (or a config file) the VM starts at once; with only
	 * an API socket it waits for InstanceStart. */
	int status = vmm_run(m, o->cfg.has_boot || o->config_file);
	if (o->api_sock)
		api_server_stop();
	vmm_free(m);
	vlog_close();
	return status;
}
