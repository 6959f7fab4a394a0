/* The VM configuration's setters: every check a value gets, whichever of the
 * command line, the config file or the API it came from. Messages name the
 * field as Firecracker's API spells it. */
#include "vmm/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gdb/gdb_server.h"
#include "host/console.h"

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Zeroes N bytes at P, writing only the blocks that are not zero already:
 * a configuration (80 KiB) in fresh memory, static or calloc'd, is then
 * left unwritten, and so not resident, except where it is set. */
static void clear_fresh(void *p, size_t n)
{
	enum { BLOCK = 64 };
	static const uint8_t zero[BLOCK];
	uint8_t *to = p;
	for (size_t off = 0; off < n; off += BLOCK) {
		size_t k = n - off < BLOCK ? n - off : BLOCK;
		if (memcmp(to + off, zero, k) != 0)
			memset(to + off, 0, k);
	}
}

void vmcfg_init(struct vm_config *c)
{
	clear_fresh(c, sizeof(*c));
	strcpy(c->id, "anonymous-instance");
	c->machine.vcpu_count = 1;
	c->machine.mem_size_mib = VMCFG_DEFAULT_MEM_MIB;
	strcpy(c->machine.huge_pages, "None");
	c->logger.level = LOG_INFO;
	c->console.out = CONSOLE_STDIO;
}

void vmcfg_fini(struct vm_config *c)
{
	policy_spec_free(&c->policy);
	c->has_policy = false;
}

void vmcfg_assign_fresh(struct vm_config *dst, const struct vm_config *src)
{
	enum { BLOCK = 64 };
	static const uint8_t zero[BLOCK];
	const uint8_t *from = (const uint8_t *)src;
	uint8_t *to = (uint8_t *)dst;
	for (size_t off = 0; off < sizeof(*src); off += BLOCK) {
		size_t n = sizeof(*src) - off < BLOCK ? sizeof(*src) - off : BLOCK;
		if (memcmp(from + off, zero, n) != 0)
			memcpy(to + off, from + off, n);
	}
}

static int copy_policy(struct vm_config *dst, const struct vm_config *src)
{
	if (policy_spec_copy(&dst->policy, &src->policy) < 0) {
		memset(&dst->policy, 0, sizeof(dst->policy));
		dst->has_policy = false;
		return -1;
	}
	return 0;
}

int vmcfg_copy(struct vm_config *dst, const struct vm_config *src)
{
	*dst = *src;
	return copy_policy(dst, src);
}

int vmcfg_copy_fresh(struct vm_config *dst, const struct vm_config *src)
{
	vmcfg_assign_fresh(dst, src);
	return copy_policy(dst, src);
}

void vmcfg_set_policy(struct vm_config *c, struct policy_spec *s)
{
	policy_spec_free(&c->policy);
	c->policy = *s;
	c->has_policy = true;
	memset(s, 0, sizeof(*s));
}

/* Non-empty, at most VMCFG_ID_MAX, letters and digits and `extra`. */
static bool id_chars_ok(const char *id, char extra)
{
	size_t n = strlen(id);
	if (n == 0 || n > VMCFG_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && id[i] != extra)
			return false;
	return true;
}

bool vmcfg_id_ok(const char *id)
{
	return id_chars_ok(id, '_');
}

bool vmcfg_instance_id_ok(const char *id)
{
	return id_chars_ok(id, '-');
}

static int check_id(const char *id, const char *field, char *err, size_t errlen)
{
	if (!vmcfg_id_ok(id))
		return fail(err, errlen, "%s: invalid ID '%.*s': it must be 1 to %d characters, only letters, digits and '_'",
			    field, 80, id, VMCFG_ID_MAX);
	return 0;
}

int vmcfg_set_machine(struct vm_config *c, const struct vmcfg_machine *m, char *err, size_t errlen)
{
	if (m->vcpu_count < 1 || m->vcpu_count > VMCFG_MAX_CPUS)
		return fail(err, errlen, "vcpu_count: must be between 1 and %d", VMCFG_MAX_CPUS);
	if (m->smt && m->vcpu_count > 1 && m->vcpu_count % 2)
		return fail(err, errlen, "vcpu_count: with smt the number of vCPUs must be 1 or even");
	if (m->mem_size_mib < VMCFG_MIN_MEM_MIB || m->mem_size_mib > VMCFG_MAX_MEM_MIB)
		return fail(err, errlen, "mem_size_mib: must be between %d and %llu", VMCFG_MIN_MEM_MIB,
			    (unsigned long long)VMCFG_MAX_MEM_MIB);
	if (m->huge_pages[0] && strcmp(m->huge_pages, "None") != 0)
		return fail(err, errlen, "huge_pages: '%s' is not supported by vigil (only \"None\")", m->huge_pages);
	if (m->cpu_template[0] && strcmp(m->cpu_template, "None") != 0)
		return fail(err, errlen, "cpu_template: static CPU templates are not supported by vigil (only \"None\")");
	c->machine = *m;
	if (!c->machine.huge_pages[0])
		strcpy(c->machine.huge_pages, "None");
	return 0;
}

/* A path the VMM will read: it must be a readable, non-empty regular file. */
static int check_readable(const char *path, const char *field, char *err, size_t errlen)
{
	struct stat st;
	if (path[0] == '\0')
		return fail(err, errlen, "%s: empty path", field);
	if (stat(path, &st) < 0)
		return fail(err, errlen, "%s '%s': %s", field, path, strerror(errno));
	if (S_ISDIR(st.st_mode))
		return fail(err, errlen, "%s '%s': is a directory", field, path);
	if (!S_ISREG(st.st_mode))
		return fail(err, errlen, "%s '%s': not a regular file", field, path);
	if (access(path, R_OK) < 0)
		return fail(err, errlen, "%s '%s': %s", field, path, strerror(errno));
	if (st.st_size == 0)
		return fail(err, errlen, "%s '%s': is empty", field, path);
	return 0;
}

int vmcfg_set_boot(struct vm_config *c, const struct vmcfg_boot *b, char *err, size_t errlen)
{
	if (check_readable(b->kernel_image_path, "kernel_image_path", err, errlen) < 0)
		return -1;
	if (b->initrd_path[0] && check_readable(b->initrd_path, "initrd_path", err, errlen) < 0)
		return -1;
	if (strlen(b->boot_args) >= VMCFG_CMDLINE_MAX - 128)
		return fail(err, errlen, "boot_args: longer than %d bytes", VMCFG_CMDLINE_MAX - 128);
	c->boot = *b;
	c->has_boot = true;
	return 0;
}

static int find_drive(const struct vm_config *c, const char *id)
{
	for (unsigned i = 0; i < c->nr_drives; i++)
		if (strcmp(c->drives[i].drive_id, id) == 0)
			return (int)i;
	return -1;
}

struct vmcfg_drive *vmcfg_find_drive(struct vm_config *c, const char *id)
{
	int i = find_drive(c, id);
	return i < 0 ? NULL : &c->drives[i];
}

int vmcfg_put_drive(struct vm_config *c, const struct vmcfg_drive *d, char *err, size_t errlen)
{
	if (check_id(d->drive_id, "drive_id", err, errlen) < 0)
		return -1;
	int at = find_drive(c, d->drive_id);
	if (at < 0 && c->nr_drives == VMCFG_MAX_DRIVES)
		return fail(err, errlen, "drives: at most %d drives", VMCFG_MAX_DRIVES);
	if (d->is_root_device)
		for (unsigned i = 0; i < c->nr_drives; i++)
			if ((int)i != at && c->drives[i].is_root_device)
				return fail(err, errlen, "is_root_device: drive '%s' is already the root device",
					    c->drives[i].drive_id);
	if (d->cache_type[0] && strcmp(d->cache_type, "Unsafe") != 0 && strcmp(d->cache_type, "Writeback") != 0)
		return fail(err, errlen, "cache_type: expected \"Unsafe\" or \"Writeback\", not '%s'", d->cache_type);
	if (d->io_engine[0] && strcmp(d->io_engine, "Sync") != 0 && strcmp(d->io_engine, "Async") != 0)
		return fail(err, errlen, "io_engine: expected \"Sync\" or \"Async\", not '%s'", d->io_engine);
	if (strlen(d->serial) > 20)
		return fail(err, errlen, "serial: longer than 20 bytes");
	/* Firecracker opens the image when the drive is configured: a wrong
	 * path fails here, not at InstanceStart. */
	struct stat st;
	int fd = d->path_on_host[0] ? open(d->path_on_host, (d->is_read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC) : -1;
	if (fd < 0)
		return fail(err, errlen, "path_on_host '%s': %s", d->path_on_host,
			    d->path_on_host[0] ? strerror(errno) : "empty path");
	int r = fstat(fd, &st);
	close(fd);
	if (r < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
		return fail(err, errlen, "path_on_host '%s': not a regular file or block device", d->path_on_host);
	struct vmcfg_drive *slot = &c->drives[at < 0 ? c->nr_drives : (unsigned)at];
	*slot = *d;
	/* vigil's default is Writeback, not Firecracker's Unsafe: a guest's
	 * flush means its data is on stable storage unless the drive says
	 * "Unsafe" itself. */
	if (!slot->cache_type[0])
		strcpy(slot->cache_type, "Writeback");
	if (!slot->io_engine[0])
		strcpy(slot->io_engine, "Sync");
	if (at < 0)
		c->nr_drives++;
	return 0;
}

static int find_net(const struct vm_config *c, const char *id)
{
	for (unsigned i = 0; i < c->nr_nets; i++)
		if (strcmp(c->nets[i].iface_id, id) == 0)
			return (int)i;
	return -1;
}

struct vmcfg_net *vmcfg_find_net(struct vm_config *c, const char *id)
{
	int i = find_net(c, id);
	return i < 0 ? NULL : &c->nets[i];
}

int vmcfg_put_net(struct vm_config *c, const struct vmcfg_net *n, char *err, size_t errlen)
{
	if (check_id(n->iface_id, "iface_id", err, errlen) < 0)
		return -1;
	int at = find_net(c, n->iface_id);
	if (at < 0 && c->nr_nets == VMCFG_MAX_NETS)
		return fail(err, errlen, "network-interfaces: at most %d interfaces", VMCFG_MAX_NETS);
	if (!n->vigil_user && n->host_dev_name[0] == '\0')
		return fail(err, errlen, "host_dev_name: required (or vigil_user for user-mode networking)");
	if (n->vigil_user && n->host_dev_name[0])
		return fail(err, errlen, "host_dev_name: not with vigil_user (one backend per interface)");
	if (n->nr_fwd > VIRTIO_NET_FWD_MAX)
		return fail(err, errlen, "hostfwd: at most %d rules", VIRTIO_NET_FWD_MAX);
	if (n->has_mac && ((n->guest_mac[0] & 1) || !(n->guest_mac[0] | n->guest_mac[1] | n->guest_mac[2] |
						     n->guest_mac[3] | n->guest_mac[4] | n->guest_mac[5])))
		return fail(err, errlen, "guest_mac: must be a unicast address, not all zero");
	for (unsigned i = 0; i < c->nr_nets; i++) {
		const struct vmcfg_net *o = &c->nets[i];
		if ((int)i == at)
			continue;
		if (n->host_dev_name[0] && strcmp(o->host_dev_name, n->host_dev_name) == 0)
			return fail(err, errlen, "host_dev_name: '%s' is already used by interface '%s'",
				    n->host_dev_name, o->iface_id);
		if (n->has_mac && o->has_mac && memcmp(o->guest_mac, n->guest_mac, 6) == 0)
			return fail(err, errlen, "guest_mac: already used by interface '%s'", o->iface_id);
	}
	c->nets[at < 0 ? c->nr_nets++ : (unsigned)at] = *n;
	return 0;
}

int vmcfg_set_vsock(struct vm_config *c, const struct vmcfg_vsock *v, char *err, size_t errlen)
{
	if (v->guest_cid < 3 || v->guest_cid > 0xfffffffeULL)
		return fail(err, errlen, "guest_cid: must be between 3 and 4294967294");
	if (v->uds_path[0] == '\0')
		return fail(err, errlen, "uds_path: empty path");
	/* The guest→host sockets are uds_path + "_PORT": leave room for it. */
	if (strlen(v->uds_path) + 12 > sizeof(v->uds_path))
		return fail(err, errlen, "uds_path: longer than %zu bytes", sizeof(v->uds_path) - 12);
	if (v->vsock_id[0] && check_id(v->vsock_id, "vsock_id", err, errlen) < 0)
		return -1;
	c->vsock = *v;
	c->has_vsock = true;
	return 0;
}

int vmcfg_set_entropy(struct vm_config *c, char *err, size_t errlen)
{
	(void)err, (void)errlen;
	c->entropy = true;
	return 0;
}

/* A log or metrics path must be writable now: open it (append, never
 * truncating, a FIFO works) and close it again. */
static int check_writable(const char *path, const char *field, char *err, size_t errlen)
{
	if (path[0] == '\0')
		return fail(err, errlen, "%s: empty path", field);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0644);
	if (fd < 0 && errno != ENXIO) /* ENXIO: a FIFO with no reader yet */
		return fail(err, errlen, "%s '%s': %s", field, path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return 0;
}

int vmcfg_set_logger(struct vm_config *c, const struct vmcfg_logger *l, char *err, size_t errlen)
{
	if (l->level < LOG_OFF || l->level > LOG_TRACE)
		return fail(err, errlen, "level: unknown level");
	if (l->log_path[0] && check_writable(l->log_path, "log_path", err, errlen) < 0)
		return -1;
	c->logger = *l;
	c->has_logger = true;
	return 0;
}

int vmcfg_set_metrics(struct vm_config *c, const struct vmcfg_metrics *m, char *err, size_t errlen)
{
	if (check_writable(m->metrics_path, "metrics_path", err, errlen) < 0)
		return -1;
	c->metrics = *m;
	c->has_metrics = true;
	return 0;
}

int vmcfg_set_gdb(struct vm_config *c, const char *spec, bool wait, char *err, size_t errlen)
{
	if (spec && spec[0]) {
		if (strlen(spec) >= sizeof(c->gdb))
			return fail(err, errlen, "gdb: too long");
		if (gdb_spec_check(spec, err, errlen) < 0)
			return -1;
	}
	if (wait && !(spec && spec[0]))
		return fail(err, errlen, "gdb_wait: needs a gdb socket (--gdb) to wait for");
	if (spec != c->gdb) /* the same buffer when only the wait changes */
		snprintf(c->gdb, sizeof(c->gdb), "%s", spec ? spec : "");
	c->gdb_wait = wait;
	return 0;
}

int vmcfg_set_console(struct vm_config *c, const struct vmcfg_console *con, char *err, size_t errlen)
{
	if (con->out == CONSOLE_FILE && con->path[0] == '\0')
		return fail(err, errlen, "console: file: needs a path");
	char path[sizeof(con->path)];
	uint64_t max;
	if (con->out == CONSOLE_FILE && console_file_arg(con->path, path, sizeof(path), &max, err, errlen) < 0)
		return -1;
	if (con->out != CONSOLE_STDIO && con->out != CONSOLE_NONE && con->out != CONSOLE_FILE)
		return fail(err, errlen, "console: expected stdio, none or file:PATH[,max=SIZE]");
	c->console = *con;
	return 0;
}

int vmcfg_log_level_parse(const char *s)
{
	static const struct { const char *name; enum vmcfg_log_level l; } names[] = {
		{ "Off", LOG_OFF }, { "Error", LOG_ERROR }, { "Warning", LOG_WARN }, { "Warn", LOG_WARN },
		{ "Info", LOG_INFO }, { "Debug", LOG_DEBUG }, { "Trace", LOG_TRACE },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i].name) == 0)
			return (int)names[i].l;
	return -1;
}

const char *vmcfg_log_level_name(enum vmcfg_log_level l)
{
	static const char *const names[] = { "Off", "Error", "Warning", "Info", "Debug", "Trace" };
	return l <= LOG_TRACE ? names[l] : "Info";
}

int vmcfg_check_startable(const struct vm_config *c, char *err, size_t errlen)
{
	if (!c->has_boot)
		return fail(err, errlen, "Cannot start microvm without kernel configuration.");
	/* The files may have gone since they were configured. */
	if (check_readable(c->boot.kernel_image_path, "kernel_image_path", err, errlen) < 0)
		return -1;
	if (c->boot.initrd_path[0] && check_readable(c->boot.initrd_path, "initrd_path", err, errlen) < 0)
		return -1;
	return 0;
}

unsigned vmcfg_drive_order(const struct vm_config *c, unsigned order[VMCFG_MAX_DRIVES])
{
	unsigned n = 0;
	for (unsigned i = 0; i < c->nr_drives; i++)
		if (c->drives[i].is_root_device)
			order[n++] = i;
	for (unsigned i = 0; i < c->nr_drives; i++)
		if (!c->drives[i].is_root_device)
			order[n++] = i;
	return n;
}

#define VIGIL_CMDLINE "console=ttyS0 panic=-1"
#define VIGIL_CMDLINE_HVC "console=hvc0 panic=-1"

int vmcfg_cmdline(const struct vm_config *c, char *buf, size_t len)
{
	const char *base = c->console.virtio ? VIGIL_CMDLINE_HVC : VIGIL_CMDLINE;
	int n;
	if (c->boot.has_boot_args && !c->boot.append)
		n = snprintf(buf, len, "%s", c->boot.boot_args);
	else if (c->boot.boot_args[0])
		n = snprintf(buf, len, "%s %s", base, c->boot.boot_args);
	else
		n = snprintf(buf, len, "%s", base);
	if (n < 0 || (size_t)n >= len)
		return -1;
	for (unsigned i = 0; i < c->nr_drives; i++) {
		const struct vmcfg_drive *d = &c->drives[i];
		if (!d->is_root_device)
			continue;
		int m = d->partuuid[0] ? snprintf(buf + n, len - (size_t)n, " root=PARTUUID=%s %s", d->partuuid,
						  d->is_read_only ? "ro" : "rw")
				       : snprintf(buf + n, len - (size_t)n, " root=/dev/vda %s",
						  d->is_read_only ? "ro" : "rw");
		if (m < 0 || (size_t)m >= len - (size_t)n)
			return -1;
	}
	return 0;
}
