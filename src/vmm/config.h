/* config — the one description of a VM before it is built. The command line
 * (cli/), the config file and the API (api/) all fill a `struct vm_config`
 * through the setters below, so every source gets the same checks and the
 * same messages; the builder (vmm/builder.c) turns it into a running VM.
 * Field names follow Firecracker's API objects (machine-config, boot-source,
 * drives, network-interfaces, vsock, entropy, logger, metrics); vigil's own
 * settings sit beside them. Setters check what can be checked at once
 * (ranges, ids, that a file opens) and leave *c unchanged on error. */
#ifndef VIGIL_VMM_CONFIG_H
#define VIGIL_VMM_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/policy.h"
#include "devices/virtio_net.h"

#define VMCFG_MAX_DRIVES 8
#define VMCFG_MAX_NETS 4
#define VMCFG_ID_MAX 64 /* Firecracker's ids: non-empty, [A-Za-z0-9_] */
#define VMCFG_MAX_CPUS 64
#define VMCFG_MIN_MEM_MIB 64
#define VMCFG_MAX_MEM_MIB (1024ULL * 1024) /* 1 TiB */
#define VMCFG_DEFAULT_MEM_MIB 128          /* Firecracker's default */
#define VMCFG_CMDLINE_MAX 4096

/* Without boot_args the guest gets vigil's defaults ("console=ttyS0
 * panic=-1"), not Firecracker's: those say pci=off and 8250.nr_uarts=0,
 * which would hide vigil's virtio-pci devices and its serial console. */

struct vmcfg_machine {
	unsigned vcpu_count;       /* 1 .. VMCFG_MAX_CPUS; 1 or even when smt */
	uint64_t mem_size_mib;     /* VMCFG_MIN_MEM_MIB .. VMCFG_MAX_MEM_MIB */
	bool smt;
	bool track_dirty_pages;
	char huge_pages[16];       /* "None" (the only one vigil offers) */
	char cpu_template[16];     /* "" or "None" (static templates are refused) */
};

struct vmcfg_boot {
	char kernel_image_path[PATH_MAX];
	char initrd_path[PATH_MAX];   /* "" = none */
	char boot_args[VMCFG_CMDLINE_MAX];
	bool has_boot_args;           /* given: the whole command line (API/file) */
	bool append;                  /* CLI --cmdline: appended to vigil's defaults */
};

struct vmcfg_drive {
	char drive_id[VMCFG_ID_MAX + 1];
	char path_on_host[PATH_MAX];
	bool is_root_device;
	bool is_read_only;
	char partuuid[64];            /* "" = none; used only for the root device */
	char cache_type[16];          /* "Writeback" (vigil's default; Firecracker's is "Unsafe") or "Unsafe" */
	char io_engine[16];           /* "Sync" (default) or "Async" */
	bool buffered;                /* vigil's (--disk direct=off): Async without O_DIRECT */
	char serial[21];              /* what the guest reads as the disk's id; "" = drive_id */
};

struct vmcfg_net {
	char iface_id[VMCFG_ID_MAX + 1];
	char host_dev_name[16];       /* TAP device; "" with vigil_user */
	bool vigil_user;              /* vigil's user-mode networking (libslirp) */
	unsigned nr_fwd;
	struct net_fwd fwd[VIRTIO_NET_FWD_MAX];
	uint8_t guest_mac[6];
	bool has_mac;
};

struct vmcfg_vsock {
	uint64_t guest_cid;           /* >= 3 */
	char uds_path[108];
	char vsock_id[VMCFG_ID_MAX + 1];
};

enum vmcfg_log_level { LOG_OFF, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE };

struct vmcfg_logger {
	char log_path[PATH_MAX];      /* "" = stderr */
	enum vmcfg_log_level level;   /* default Info (Firecracker: "Info") */
	bool show_level;
	bool show_log_origin;
	char module[64];
};

struct vmcfg_metrics {
	char metrics_path[PATH_MAX];
};

enum vmcfg_console_out { CONSOLE_STDIO, CONSOLE_NONE, CONSOLE_FILE };

struct vmcfg_console {
	enum vmcfg_console_out out;
	char path[PATH_MAX];          /* CONSOLE_FILE */
	bool virtio;                  /* on virtio-console (hvc0) rather than COM1 */
};

struct vm_config {
	char id[VMCFG_ID_MAX + 1];    /* --id, "anonymous-instance" by default */
	struct vmcfg_machine machine;
	struct vmcfg_boot boot;
	bool has_boot;
	struct vmcfg_drive drives[VMCFG_MAX_DRIVES];
	unsigned nr_drives;
	struct vmcfg_net nets[VMCFG_MAX_NETS];
	unsigned nr_nets;
	struct vmcfg_vsock vsock;
	bool has_vsock;
	bool entropy;
	struct vmcfg_logger logger;
	bool has_logger;
	struct vmcfg_metrics metrics;
	bool has_metrics;
	struct vmcfg_console console;
	bool stats;                   /* --stats: print the monitor when the VM ends */
	char trace[PATH_MAX];         /* --trace FILE (JSON lines), "-" = stderr, "" = off */
	char trace_filter[1024];      /* --trace-filter SPEC (vmm/trace.h), "" = everything */
	char audit[PATH_MAX];         /* --audit FILE (JSON lines, appended), "-" = stderr, "" = off */
	uint64_t log_max;             /* --log-max SIZE: bytes per trace/audit file, 0 = VTRACE_MAX_DEFAULT */
	char snapshot_load[8192];     /* the config file's "snapshot-load" (PUT /snapshot/load's body), or "" */
	/* The policy (--policy, the config file's "policy", PUT /policy), as
	 * read; installed by the builder. The configuration owns its rules: a
	 * plain struct copy shares them (see vmcfg_copy, vmcfg_fini). */
	struct policy_spec policy;
	bool has_policy;
	char gdb[PATH_MAX];           /* --gdb unix:PATH | tcp:ADDR:PORT, "" = no stub */
	bool gdb_wait;                /* --gdb-wait: vCPUs parked until gdb attaches */
	int seccomp;                  /* "seccomp": enum seccomp_mode (host/seccomp.h), 0 = on */
};

/* Defaults: Firecracker's machine (1 vCPU, 128 MiB, smt off), no kernel,
 * console on stdio over COM1, id "anonymous-instance". */
void vmcfg_init(struct vm_config *c);

/* Frees what a configuration owns (its policy's rules). */
void vmcfg_fini(struct vm_config *c);
/* *dst = *src with a copy of the policy of its own; 0 or -1 (no memory). */
int vmcfg_copy(struct vm_config *dst, const struct vm_config *src);
/* The same as *dst = *src for a dst that is all zero (fresh from calloc),
 * writing only the parts of src that are not zero: a configuration is
 * ~80 KiB, mostly empty PATH_MAX strings, and a whole copy into fresh
 * memory faults in (and keeps resident) every page of it. */
void vmcfg_assign_fresh(struct vm_config *dst, const struct vm_config *src);
/* vmcfg_copy() into such a dst, by vmcfg_assign_fresh(). */
int vmcfg_copy_fresh(struct vm_config *dst, const struct vm_config *src);
/* Takes over *s (which is zeroed) as the policy, freeing the old one. */
void vmcfg_set_policy(struct vm_config *c, struct policy_spec *s);

/* Firecracker's id rule: non-empty, at most VMCFG_ID_MAX, only [A-Za-z0-9_]. */
bool vmcfg_id_ok(const char *id);
/* Firecracker's instance id (--id): 1 to 64 characters, only [A-Za-z0-9-]
 * ("anonymous-instance", a UUID). */
bool vmcfg_instance_id_ok(const char *id);

/* Each setter: 0, or -1 with a one-line reason in err (which names the
 * field, e.g. "vcpu_count: must be between 1 and 64"); *c is unchanged then. */
int vmcfg_set_machine(struct vm_config *c, const struct vmcfg_machine *m, char *err, size_t errlen);
/* The kernel (and initrd) must be readable regular files. */
int vmcfg_set_boot(struct vm_config *c, const struct vmcfg_boot *b, char *err, size_t errlen);
/* Adds a drive, or replaces the one with the same drive_id. The image must
 * open (read-only or read-write as asked); one root device at most. */
int vmcfg_put_drive(struct vm_config *c, const struct vmcfg_drive *d, char *err, size_t errlen);
/* Adds an interface or replaces the one with the same iface_id; a MAC or a
 * TAP name may not be used twice. */
int vmcfg_put_net(struct vm_config *c, const struct vmcfg_net *n, char *err, size_t errlen);
int vmcfg_set_vsock(struct vm_config *c, const struct vmcfg_vsock *v, char *err, size_t errlen);
int vmcfg_set_entropy(struct vm_config *c, char *err, size_t errlen);
int vmcfg_set_logger(struct vm_config *c, const struct vmcfg_logger *l, char *err, size_t errlen);
int vmcfg_set_metrics(struct vm_config *c, const struct vmcfg_metrics *m, char *err, size_t errlen);
/* The gdb stub's socket (gdb/gdb_server.h: unix:PATH or tcp:ADDR:PORT), and
 * whether the guest waits for gdb; wait without a socket is refused. */
int vmcfg_set_gdb(struct vm_config *c, const char *spec, bool wait, char *err, size_t errlen);
int vmcfg_set_console(struct vm_config *c, const struct vmcfg_console *con, char *err, size_t errlen);

/* Firecracker's level names: "Off", "Error", "Warning", "Info", "Debug", "Trace"
 * (any case, "Warn" too). -1 if unknown. */
int vmcfg_log_level_parse(const char *s);
const char *vmcfg_log_level_name(enum vmcfg_log_level l);

/* What InstanceStart needs beyond each setter: a kernel. 0 or -1 + err. */
int vmcfg_check_startable(const struct vm_config *c, char *err, size_t errlen);

/* The kernel command line the guest gets: boot_args (or vigil's defaults and
 * the CLI's appended text), then "root=/dev/vda rw|ro" (or root=PARTUUID=…)
 * for a root drive, as Firecracker adds it. -1 if it does not fit. */
int vmcfg_cmdline(const struct vm_config *c, char *buf, size_t len);

/* The drive or interface with that id, or NULL. */
struct vmcfg_drive *vmcfg_find_drive(struct vm_config *c, const char *id);
struct vmcfg_net *vmcfg_find_net(struct vm_config *c, const char *id);

/* The drives in the order the guest sees them: the root device first
 * (/dev/vda), then the others in the order they were added. */
unsigned vmcfg_drive_order(const struct vm_config *c, unsigned order[VMCFG_MAX_DRIVES]);

#endif
