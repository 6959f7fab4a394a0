/* A machine's snapshot: what is saved, in which order, and how a machine
 * just built from a snapshot's configuration takes its state back. The
 * state file's sections (core/snap.h), in file order:
 *   "vigil"        what this snapshot is (written by vmm/snapshot.c)
 *   "config"       the VM's configuration, as GET /vm/config shows it
 *   "kvm-vm"       the interrupt controllers, PIT and clock (kvm_snap.c)
 *   "cpu0".."cpuN" every vCPU (kvm_snap.c)
 *   one per device, under its registry id ("com1", "rootfs", ...)
 *   "monitor", "policy-hits"  the counters (core/monitor_snap.c)
 * Guest RAM is the memory file beside it. A restore takes KVM's state
 * back first, then the devices', then the counters. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/errmsg.h"
#include "core/monitor_snap.h"
#include "core/snap.h"
#include "devices/virtio_net.h"
#include "devices/virtio_vsock.h"
#include "host/evloop.h"
#include "kvm/kvm.h"
#include "vmm/machine_int.h"

int machine_track_dirty(struct machine *mc, char *err, size_t errlen)
{
	int r = kvm_dirty_log_enable(mc->kb, true);
	if (r < 0)
		return errmsg(err, errlen, "track_dirty_pages: KVM's dirty log: %s", strerror(-r));
	if (gmem_dirty_track(&mc->vm.mem, true) < 0)
		return errmsg(err, errlen, "track_dirty_pages: out of memory");
	mc->dirty_on = true;
	return 0;
}

/* ---- save ---- */

int machine_save(struct machine *mc, struct snap_writer *w, char *err, size_t errlen)
{
	if (kvm_snap_save_vm(mc->kb, w, err, errlen) < 0)
		return -1;
	/* Every vCPU is parked outside KVM_RUN, so KVM lets this thread read
	 * it (each vCPU ioctl takes the vCPU's own lock); the vCPU threads'
	 * seccomp lists then need none of the many KVM_GET_* calls. */
	if (vm_run_state(&mc->vm) != VMS_PAUSED)
		return errmsg(err, errlen, "the vCPUs are not parked");
	for (unsigned i = 0; i < mc->vm.ncpus; i++)
		if (kvm_snap_save_vcpu(mc->kb, i, w, err, errlen) < 0)
			return -1;
	for (unsigned i = 0; i < mc->vm.nr_devs; i++) {
		struct vdev *d = &mc->vm.devs[i];
		if (!d->ops || !d->ops->save)
			return errmsg(err, errlen, "device '%s' (%s) cannot be snapshotted", d->id, d->kind);
		if (d->ops->save(d, w) < 0)
			return errmsg(err, errlen, "device '%s' (%s): its state could not be saved", d->id, d->kind);
	}
	mon_snap_save(w, &mc->vm);
	const struct policy *p = policy_enter(&mc->vm.policy);
	mon_snap_save_policy(w, p);
	policy_leave(&mc->vm.policy);
	return 0;
}

/* ---- memory ---- */

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;
	for (unsigned i = 0; i < GMEM_PAGE / 8; i++)
		if (q[i])
			return false;
	return true;
}

static int write_run(int fd, const uint8_t *p, uint64_t len, uint64_t off, uint64_t *bytes, char *err, size_t errlen)
{
	while (len) {
		ssize_t n = pwrite(fd, p, len > (1u << 30) ? 1u << 30 : len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return errmsg(err, errlen, "memory file: write at %" PRIu64 ": %s", off,
				      n < 0 ? strerror(errno) : "no space");
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
		*bytes += (uint64_t)n;
	}
	return 0;
}

/* Anonymous RAM: the pages the process has (present in memory or in
 * swap), from /proc/self/pagemap (bit 63 present, bit 62 swapped), one
 * bit per page into `have`; a page it never had is zero without reading
 * it (which would also fault it in). -1: no pagemap, read every page. */
static int pages_held(const struct gmem_region *r, uint64_t *have)
{
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pm < 0)
		return -1;
	uint64_t pages = r->size / GMEM_PAGE, first = (uintptr_t)r->host / GMEM_PAGE, buf[512];
	for (uint64_t pg = 0; pg < pages; pg += 512) {
		uint64_t n = pages - pg < 512 ? pages - pg : 512;
		if (pread(pm, buf, n * 8, (off_t)((first + pg) * 8)) != (ssize_t)(n * 8)) {
			close(pm);
			return -1;
		}
		for (uint64_t i = 0; i < n; i++)
			if (buf[i] >> 62)
				have[(pg + i) / 64] |= 1ULL << ((pg + i) % 64);
	}
	close(pm);
	return 0;
}

static bool bit(const uint64_t *b, uint64_t i)
{
	return (b[i / 64] >> (i % 64)) & 1;
}

/* The pages of one region to write: every non-zero page (dirty NULL), or
 * the dirty ones; consecutive pages go out in one write. `have` (or NULL):
 * the pages that can hold anything but zeroes. */
static int write_region(int fd, const struct gmem_region *r, uint64_t file_off, const uint64_t *dirty,
			const uint64_t *have, uint64_t *bytes, char *err, size_t errlen)
{
	uint64_t pages = r->size / GMEM_PAGE, run = 0, start = 0;
	for (uint64_t pg = 0; pg <= pages; pg++) {
		bool want = pg < pages && (dirty ? bit(dirty, pg)
						 : (!have || bit(have, pg)) && !page_is_zero(r->host + pg * GMEM_PAGE));
		if (want) {
			if (!run)
				start = pg;
			run++;
			continue;
		}
		if (run && write_run(fd, r->host + start * GMEM_PAGE, run * GMEM_PAGE, file_off + start * GMEM_PAGE,
				     bytes, err, errlen) < 0)
			return -1;
		run = 0;
	}
	return 0;
}

/* The dirty pages a failed snapshot took from the logs go back into gmem's
 * own bitmap: the next Diff must still hold them (the file that took them
 * is no snapshot). */
static void give_back(const struct gmem *m, uint64_t *const *bm)
{
	for (unsigned i = 0; i < m->nr; i++)
		for (uint64_t pg = 0; bm[i] && pg < m->r[i].size / GMEM_PAGE; pg++)
			if (bm[i][pg / 64] >> (pg % 64) & 1)
				gmem_mark_dirty(m, m->r[i].gpa + pg * GMEM_PAGE, GMEM_PAGE);
}

int machine_save_memory(struct machine *mc, int fd, bool diff, uint64_t *bytes, char *err, size_t errlen)
{
	const struct gmem *m = &mc->vm.mem;
	uint64_t *bm[GMEM_MAX_REGIONS] = { 0 };
	int rc = -1;
	*bytes = 0;
	if (diff && !mc->dirty_on)
		return errmsg(err, errlen, "Diff snapshots are not allowed on uVMs with dirty page tracking disabled.");
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)m->total) < 0)
		return errmsg(err, errlen, "memory file: %s", strerror(errno));
	uint64_t off = 0;
	for (unsigned i = 0; i < m->nr; i++) {
		const struct gmem_region *r = &m->r[i];
		/* Either kind takes the logs, so that the next Diff holds what
		 * changed after this snapshot. */
		if (mc->dirty_on) {
			bm[i] = calloc((r->size / GMEM_PAGE + 63) / 64, sizeof(uint64_t));
			if (!bm[i]) {
				errmsg(err, errlen, "out of memory");
				goto out;
			}
			int k = kvm_dirty_log_fetch(mc->kb, i, bm[i]);
			gmem_dirty_take(m, i, bm[i]);
			if (k < 0) {
				errmsg(err, errlen, "KVM_GET_DIRTY_LOG: %s", strerror(-k));
				goto out;
			}
		}
		uint64_t *have = NULL;
		if (!diff && mc->ram_anon && (have = calloc((r->size / GMEM_PAGE + 63) / 64, sizeof(uint64_t))) &&
		    pages_held(r, have) < 0) {
			free(have);
			have = NULL;
		}
		int w = write_region(fd, r, off, diff ? bm[i] : NULL, have, bytes, err, errlen);
		free(have);
		if (w < 0)
			goto out;
		off += r->size;
	}
	rc = 0;
out:
	if (rc < 0)
		give_back(m, bm);
	for (unsigned i = 0; i < m->nr; i++)
		free(bm[i]);
	return rc;
}

/* ---- restore ---- */

static int restore_fail(struct snap_reader *r, char *err, size_t errlen, const char *what)
{
	if (snap_status(r, err, errlen) == 0)
		errmsg(err, errlen, "%s", what);
	return -1;
}

/* A clone's CID and MACs go into the devices before their state does, so
 * that the restore keeps them over the snapshot's. */
static int apply_overrides(struct machine *mc, const struct machine_restore *rs, char *err, size_t errlen)
{
	for (unsigned i = 0; i < mc->nr_virtio; i++) {
		struct virtio_dev *d = mc->virtio[i];
		if (rs->has_cid && mc->virtio_free[i] == virtio_vsock_free && virtio_vsock_set_cid(d, rs->cid) < 0)
			return errmsg(err, errlen, "vigil_clone: guest_cid %u is out of range", rs->cid);
		for (unsigned k = 0; k < rs->nr_mac; k++)
			if (mc->virtio_free[i] == virtio_net_free && strcmp(d->name, rs->mac[k].iface_id) == 0)
				virtio_net_set_mac(d, rs->mac[k].mac);
	}
	return 0;
}

int machine_restore_state(struct machine *mc, const struct machine_restore *rs, char *err, size_t errlen)
{
	struct snap_reader *r = rs->r;
	if (apply_overrides(mc, rs, err, errlen) < 0)
		return -1;
	/* KVM's state first: the vCPUs exist (their LAPICs with them), none
	 * has run. A device's restore may raise an interrupt (vsock's
	 * transport reset, a UART's level): it must land in the restored
	 * interrupt controllers, not be overwritten by them. */
	if (kvm_snap_load_vm(mc->kb, r, err, errlen) < 0)
		return -1;
	for (unsigned i = 0; i < mc->vm.ncpus; i++)
		if (kvm_snap_load_vcpu(mc->kb, i, r, err, errlen) < 0)
			return -1;
	for (unsigned i = 0; i < mc->vm.nr_devs; i++) {
		struct vdev *d = &mc->vm.devs[i];
		if (!snap_has(r, d->id))
			return errmsg(err, errlen, "the snapshot has no state for device '%s' (%s)", d->id, d->kind);
		if (!d->ops || !d->ops->restore)
			return errmsg(err, errlen, "device '%s' (%s) cannot be restored", d->id, d->kind);
		if (d->ops->restore(d, r) < 0)
			return restore_fail(r, err, errlen, "a device's state could not be restored");
	}
	if (mon_snap_restore(r, &mc->vm) < 0)
		return restore_fail(r, err, errlen, "the counters could not be restored");
	const struct policy *p = policy_enter(&mc->vm.policy);
	int pr = mon_snap_restore_policy(r, p);
	policy_leave(&mc->vm.policy);
	if (pr < 0)
		return restore_fail(r, err, errlen, "the policy's counters could not be restored");
	return 0;
}
