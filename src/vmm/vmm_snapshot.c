/* Firecracker's snapshot calls on the control thread: PUT /snapshot/create
 * (a paused VM into a state file and a memory file) and PUT /snapshot/load
 * (a fresh process becomes that VM again). What goes into the state file
 * is the builder's (builder_snap.c); this file keeps the phases, the
 * files, the configuration a restored VM is rebuilt from, and the
 * overrides a clone gets. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/errmsg.h"
#include "core/snap.h"
#include "core/vm.h"
#include "host/clock.h"
#include "vmm/config_json.h"
#include "vmm/log.h"
#include "vmm/metrics.h"
#include "vmm/vmm_int.h"

#define SNAP_VIGIL_VERSION 1
#define SNAP_ARCH_X86_64 1
#define STATE_FILE_MAX (256u << 20) /* far above any real state file */

static uint64_t mono_us(void)
{
	return host_mono_ns() / 1000u;
}

/* ---- create ---- */

static void put_header(struct snap_writer *w, const struct vm *vm, bool diff)
{
	snap_begin(w, "vigil", "vigil-snapshot", SNAP_VIGIL_VERSION);
	snap_put_u32(w, SNAP_ARCH_X86_64);
	snap_put_str(w, VIGIL_VERSION);
	snap_put_u8(w, diff);
	snap_put_u64(w, (uint64_t)time(NULL));
	snap_put_u32(w, vm->ncpus);
	snap_put_u64(w, vm->mem.total);
	snap_put_u32(w, vm->mem.nr);
	for (unsigned i = 0; i < vm->mem.nr; i++) {
		snap_put_u64(w, vm->mem.r[i].gpa);
		snap_put_u64(w, vm->mem.r[i].size);
	}
	snap_end(w);
}

static int put_config(struct snap_writer *w, const struct vm_config *c)
{
	json_t *o = vmcfg_to_json(c);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text)
		return -1;
	snap_begin(w, "config", "vm-config", 1);
	snap_put_str(w, text);
	snap_end(w);
	free(text);
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static bool same_file(int fd, dev_t dev, ino_t ino)
{
	struct stat st;
	return fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

int vmm_snapshot_create(struct vmm *m, const struct vmm_snapshot_create *r, char *err, size_t errlen)
{
	if (m->state == VMM_NOT_STARTED)
		return errmsg(err, errlen, "The requested operation is not supported before starting the microVM.");
	if (m->state != VMM_PAUSED)
		return errmsg(err, errlen, "Cannot create a snapshot: the microVM is not paused.");
	uint64_t t0 = mono_us();
	struct vm *vm = machine_vm(m->mc);
	struct snap_writer *w = snap_writer_new();
	if (!w)
		return errmsg(err, errlen, "out of memory");
	put_header(w, vm, r->diff);
	int rc = -1, sfd = -1, mfd = -1;
	const uint8_t *buf;
	size_t len;
	uint64_t mem_bytes = 0;
	if (put_config(w, &m->cfg) < 0) {
		errmsg(err, errlen, "out of memory");
		goto out;
	}
	if (machine_save(m->mc, w, err, errlen) < 0)
		goto out;
	if (snap_writer_finish(w, &buf, &len) < 0) {
		errmsg(err, errlen, "out of memory writing the snapshot");
		goto out;
	}
	mfd = open(r->mem_file_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (mfd < 0) {
		errmsg(err, errlen, "mem_file_path '%s': %s", r->mem_file_path, strerror(errno));
		goto out;
	}
	/* Truncating the file this VM's RAM is mapped from would take the
	 * guest's untouched pages with it. */
	if (m->has_mem_file && same_file(mfd, m->mem_dev, m->mem_ino)) {
		errmsg(err, errlen, "mem_file_path '%s' is the memory file this microVM was loaded from: write the "
				    "snapshot to a new file", r->mem_file_path);
		goto out;
	}
	sfd = open(r->snapshot_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (sfd < 0) {
		errmsg(err, errlen, "snapshot_path '%s': %s", r->snapshot_path, strerror(errno));
		goto out;
	}
	struct stat ms;
	if (fstat(mfd, &ms) == 0 && same_file(sfd, ms.st_dev, ms.st_ino)) {
		errmsg(err, errlen, "snapshot_path and mem_file_path are the same file");
		goto out;
	}
	if (ftruncate(sfd, 0) < 0 || write_all(sfd, buf, len) < 0) {
		errmsg(err, errlen, "snapshot_path '%s': %s", r->snapshot_path, strerror(errno));
		goto out;
	}
	if (machine_save_memory(m->mc, mfd, r->diff, &mem_bytes, err, errlen) < 0)
		goto out;
	rc = 0;
	m->last_snapshot_us = mono_us() - t0;
	m->last_snapshot_diff = r->diff;
	VLOG_INFO("snapshot created (%s): state %zu bytes, memory %" PRIu64 " bytes written, %" PRIu64 " us",
		  r->diff ? "Diff" : "Full", len, mem_bytes, m->last_snapshot_us);
out:
	if (sfd >= 0)
		close(sfd);
	if (mfd >= 0)
		close(mfd);
	snap_writer_free(w);
	return rc;
}

/* ---- load ---- */

static uint8_t *read_state_file(const char *path, size_t *len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0) {
		errmsg(err, errlen, "snapshot_path '%s': %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > STATE_FILE_MAX) {
		errmsg(err, errlen, "snapshot_path '%s': %s", path,
		       !S_ISREG(st.st_mode) ? "not a regular file" : "too large for a vigil snapshot");
		close(fd);
		return NULL;
	}
	uint8_t *buf = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (buf && got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!buf || got != (size_t)st.st_size) {
		free(buf);
		errmsg(err, errlen, "snapshot_path '%s': cannot read it", path);
		return NULL;
	}
	*len = got;
	return buf;
}

struct snap_info {
	uint32_t ncpus;
	uint64_t mem;
};

static int read_header(struct snap_reader *r, struct snap_info *h, char *err, size_t errlen)
{
	if (snap_open_section(r, "vigil", "vigil-snapshot", SNAP_VIGIL_VERSION, NULL) < 0)
		return snap_status(r, err, errlen);
	uint32_t arch = snap_get_u32(r);
	char ver[64];
	snap_get_str(r, ver, sizeof(ver));
	(void)snap_get_u8(r);
	(void)snap_get_u64(r);
	h->ncpus = snap_get_u32(r);
	h->mem = snap_get_u64(r);
	if (snap_status(r, err, errlen) < 0)
		return -1;
	if (arch != SNAP_ARCH_X86_64)
		return errmsg(err, errlen, "snapshot file: made for another architecture (%u)", arch);
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	if (pages > 0 && psize > 0 && h->mem > (uint64_t)pages * (uint64_t)psize)
		return errmsg(err, errlen, "the snapshot's guest has %" PRIu64 " MiB of memory, more than this host's %" PRIu64
					   " MiB", h->mem >> 20, ((uint64_t)pages * (uint64_t)psize) >> 20);
	return 0;
}

static const char *find_override_host_dev(const struct vmm_snapshot_load *r, const char *iface)
{
	for (unsigned i = 0; i < r->nr_net; i++)
		if (strcmp(r->net[i].iface_id, iface) == 0)
			return r->net[i].host_dev_name;
	return NULL;
}

/* The configuration the machine is rebuilt from: the snapshot's devices
 * and machine, this process's own settings (logger, metrics, console
 * output, trace, stats, gdb), and the load's overrides. */
static int restored_config(struct vm_config *c, const struct vm_config *snap, const struct vmm_snapshot_load *r,
			   char *err, size_t errlen)
{
	for (unsigned i = 0; i < r->nr_net; i++)
		if (!vmcfg_find_net((struct vm_config *)snap, r->net[i].iface_id))
			return errmsg(err, errlen, "network_overrides: the snapshot has no network interface '%s'",
				      r->net[i].iface_id);
	for (unsigned i = 0; i < r->nr_mac; i++)
		if (!vmcfg_find_net((struct vm_config *)snap, r->mac[i].iface_id))
			return errmsg(err, errlen, "vigil_clone.guest_macs: the snapshot has no network interface '%s'",
				      r->mac[i].iface_id);
	if (r->vsock_uds && !snap->has_vsock)
		return errmsg(err, errlen, "vsock_override: the snapshot has no vsock device");
	if (r->has_cid && !snap->has_vsock)
		return errmsg(err, errlen, "vigil_clone.guest_cid: the snapshot has no vsock device");

	c->machine = snap->machine;
	c->machine.track_dirty_pages = r->track_dirty_pages;
	/* As Firecracker: a restored VM shows no boot source. */
	c->has_boot = false;
	memset(&c->boot, 0, sizeof(c->boot));
	memcpy(c->drives, snap->drives, sizeof(c->drives));
	c->nr_drives = snap->nr_drives;
	memcpy(c->nets, snap->nets, sizeof(c->nets));
	c->nr_nets = snap->nr_nets;
	for (unsigned i = 0; i < c->nr_nets; i++) {
		struct vmcfg_net *n = &c->nets[i];
		const char *dev = find_override_host_dev(r, n->iface_id);
		if (dev) {
			if (strlen(dev) >= sizeof(n->host_dev_name))
				return errmsg(err, errlen, "network_overrides: host_dev_name '%s' is too long", dev);
			snprintf(n->host_dev_name, sizeof(n->host_dev_name), "%s", dev);
		}
		for (unsigned k = 0; k < r->nr_mac; k++)
			if (strcmp(r->mac[k].iface_id, n->iface_id) == 0) {
				memcpy(n->guest_mac, r->mac[k].mac, 6);
				n->has_mac = true;
			}
	}
	c->vsock = snap->vsock;
	c->has_vsock = snap->has_vsock;
	if (r->vsock_uds) {
		if (strlen(r->vsock_uds) >= sizeof(c->vsock.uds_path))
			return errmsg(err, errlen, "vsock_override: uds_path is too long");
		snprintf(c->vsock.uds_path, sizeof(c->vsock.uds_path), "%s", r->vsock_uds);
	}
	if (r->has_cid)
		c->vsock.guest_cid = r->cid;
	c->entropy = snap->entropy;
	c->console.virtio = snap->console.virtio;
	if (r->instance_id)
		snprintf(c->id, sizeof(c->id), "%s", r->instance_id);
	/* The policy in force when the snapshot was taken goes on. */
	if (snap->has_policy) {
		struct vm_config *tmp = calloc(1, sizeof(*tmp));
		if (!tmp || vmcfg_copy(tmp, snap) < 0) {
			free(tmp);
			return errmsg(err, errlen, "out of memory");
		}
		vmcfg_set_policy(c, &tmp->policy); /* takes the rules */
		free(tmp);
	}
	return 0;
}

static int load_config(struct snap_reader *r, struct vm_config *snap, char *err, size_t errlen)
{
	if (snap_open_section(r, "config", "vm-config", 1, NULL) < 0)
		return snap_status(r, err, errlen);
	size_t left = snap_left(r);
	char *text = malloc(left + 1);
	if (!text)
		return errmsg(err, errlen, "out of memory");
	snap_get_str(r, text, left + 1);
	int rc = snap_status(r, err, errlen);
	if (rc == 0 && vmcfg_load_json(snap, text, strlen(text), err, errlen) < 0)
		rc = -1;
	free(text);
	return rc;
}

int vmm_snapshot_load(struct vmm *m, const struct vmm_snapshot_load *r, char *err, size_t errlen)
{
	struct vm_config *c = &m->cfg;
	if (m->state != VMM_NOT_STARTED)
		return errmsg(err, errlen, "The requested operation is not supported after starting the microVM.");
	if (c->has_boot || c->nr_drives || c->nr_nets || c->has_vsock || c->entropy)
		return errmsg(err, errlen,
			      "Loading a microVM snapshot not allowed after configuring boot-specific resources.");
	uint64_t t0 = mono_us();
	size_t len = 0;
	uint8_t *buf = read_state_file(r->snapshot_path, &len, err, errlen);
	if (!buf)
		return -1;
	int rc = -1, mfd = -1;
	struct snap_info h = { 0 };
	struct vm_config *snap = calloc(1, sizeof(*snap)), *saved = calloc(1, sizeof(*saved));
	struct snap_reader *rd = snap_reader_open(buf, len, err, errlen);
	if (!snap || !saved) {
		errmsg(err, errlen, "out of memory");
		goto out;
	}
	if (!rd || read_header(rd, &h, err, errlen) < 0)
		goto out;
	vmcfg_init(snap);
	if (load_config(rd, snap, err, errlen) < 0)
		goto out;
	if (snap->machine.vcpu_count != h.ncpus || (snap->machine.mem_size_mib << 20) != h.mem) {
		errmsg(err, errlen, "snapshot file: its configuration does not match its machine");
		goto out;
	}
	if (vmcfg_copy(saved, c) < 0) {
		errmsg(err, errlen, "out of memory");
		goto out;
	}
	if (restored_config(c, snap, r, err, errlen) < 0)
		goto undo;
	struct stat ms;
	if (!r->uffd_path) {
		mfd = open(r->mem_path, O_RDONLY | O_CLOEXEC);
		if (mfd < 0 || fstat(mfd, &ms) < 0) {
			errmsg(err, errlen, "mem_backend: backend_path '%s': %s", r->mem_path, strerror(errno));
			goto undo;
		}
	}
	if (c->has_metrics && !m->metrics && !(m->metrics = fc_metrics_open(c->metrics.metrics_path, err, errlen)))
		goto undo;
	struct machine_restore rs = { .r = rd, .mem_fd = mfd, .uffd_path = r->uffd_path, .has_cid = r->has_cid,
				      .cid = r->cid, .nr_mac = r->nr_mac };
	for (unsigned i = 0; i < r->nr_mac; i++) {
		rs.mac[i].iface_id = r->mac[i].iface_id;
		memcpy(rs.mac[i].mac, r->mac[i].mac, 6);
	}
	m->mc = machine_build(c, vmm_on_vm_stop, m, &rs, err, errlen);
	if (!m->mc)
		goto undo;
	if (machine_start(m->mc, !r->resume_vm, err, errlen) < 0) {
		machine_request_stop(m->mc, VM_STOP_ERROR);
		machine_finish(m->mc);
		m->mc = NULL;
		goto undo;
	}
	m->state = r->resume_vm ? VMM_RUNNING : VMM_PAUSED;
	if (mfd >= 0) {
		m->has_mem_file = true;
		m->mem_dev = ms.st_dev;
		m->mem_ino = ms.st_ino;
	}
	m->last_load_us = mono_us() - t0;
	m->load_t0_us = t0;
	VLOG_INFO("snapshot loaded from %s in %" PRIu64 " us (%s)", r->snapshot_path, m->last_load_us,
		  r->resume_vm ? "resumed" : "paused");
	vmcfg_fini(saved);
	rc = 0;
	goto out;
undo:
	/* Nothing of the snapshot stays: the process is as before the call. */
	vmcfg_fini(c);
	*c = *saved;
	memset(saved, 0, sizeof(*saved));
out:
	if (mfd >= 0)
		close(mfd); /* the mapping keeps the file */
	if (snap)
		vmcfg_fini(snap);
	free(snap);
	free(saved);
	snap_reader_free(rd);
	free(buf);
	return rc;
}

uint64_t vmm_snapshot_last_us(const struct vmm *m, bool load)
{
	return load ? m->last_load_us : m->last_snapshot_us;
}

uint64_t vmm_snapshot_first_entry_us(struct vmm *m)
{
	uint64_t e = m->mc && m->load_t0_us ? machine_first_entry_ns(m->mc) / 1000u : 0;
	return e > m->load_t0_us ? e - m->load_t0_us : 0;
}

bool vmm_snapshot_last_diff(const struct vmm *m)
{
	return m->last_snapshot_diff;
}
