/* Snapshots of KVM's side of the VM: the in-kernel interrupt controllers,
 * PIT and clock (section "kvm-vm", kind "kvm-vm") and each vCPU's state
 * ("cpuN", kind "kvm-vcpu"). KVM's dirty page log is kvm_dirty.c.
 *
 * KVM's structs go into the file as blobs of their exact UAPI size, each
 * preceded by that size (u32): a loader refuses any other length rather
 * than guess at a layout. The XSAVE area is the one blob whose size is the
 * host's (KVM_CAP_XSAVE2): a snapshot from a host with another is refused.
 *   kvm-vm  v1: u32 ncpus, PIC master, PIC slave, IOAPIC (kvm_irqchip
 *               each), kvm_pit_state2, kvm_clock_data
 *   cpuN    v1: u32 id, kvm_mp_state, kvm_regs, u8 1|2 then kvm_sregs or
 *               kvm_sregs2, kvm_debugregs, XSAVE area, bool has_xcrs and
 *               kvm_xcrs, u32 n and n * (u32 index, u64 value) MSRs,
 *               kvm_lapic_state, kvm_vcpu_events, u32 TSC kHz (0: not
 *               known), u32 n and n * 7 u32 CPUID leaves (function, index,
 *               flags, eax..edx: checked on load against this VM's, not set)
 *
 * Time: the kvmclock is set back to the saved value and each TSC to its
 * saved value, so the guest's clocks go on from where they stopped; the
 * time the VM spent saved is not seen by it (no KVM_CLOCK_REALTIME). The
 * TSC is restored through KVM_SET_MSRS (host-initiated writes move the TSC
 * offset, not IA32_TSC_ADJUST) in the main MSR batch, after its frequency
 * (KVM_SET_TSC_KHZ when the host's differs), and IA32_TSC_DEADLINE after it
 * and after the LAPIC: KVM arms the deadline timer against the TSC and the
 * LAPIC's timer mode. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/snap.h"
#include "kvm/kvm.h"
#include "kvm/kvm_internal.h"

#define VM_VERSION 1
#define VCPU_VERSION 1
#define SREGS_V1 1 /* struct kvm_sregs (KVM_GET_SREGS) */
#define SREGS_V2 2 /* struct kvm_sregs2 (KVM_GET_SREGS2) */
#define MSR_CHUNK 128 /* below KVM's limit per call (MAX_IO_MSRS, 256) */
#define MSR_MAX 4096  /* more in a snapshot is not a real vCPU's */
#define CPUID_MAX 4096 /* nor more CPUID leaves */
#define CPUID_BYTES 28 /* function, index, flags, eax..edx */
#define MSR_IA32_TSC_DEADLINE 0x6e0

static int ioctl_fail(char *err, size_t errlen, int cpu, const char *what)
{
	int e = errno;
	if (cpu < 0)
		snprintf(err, errlen, "kvm-vm: %s: %s", what, strerror(e));
	else
		snprintf(err, errlen, "cpu%d: %s: %s", cpu, what, strerror(e));
	return -1;
}

static void put_blob(struct snap_writer *w, const void *p, size_t n)
{
	snap_put_u32(w, (uint32_t)n);
	snap_put(w, p, n);
}

/* A blob of exactly n bytes into p; another length is refused. */
static int get_blob(struct snap_reader *r, const char *what, void *p, size_t n)
{
	uint32_t len = snap_get_u32(r);
	if (snap_error(r)[0])
		return -1;
	if (len != n)
		return snap_fail(r, "%s is %u bytes, this vigil's is %zu", what, len, n);
	const uint8_t *b = snap_get_blob(r, n);
	if (!b)
		return -1;
	memcpy(p, b, n);
	return 0;
}

static bool has_cap(struct kvm_backend *kb, int cap)
{
	return ioctl(kb->vm_fd, KVM_CHECK_EXTENSION, cap) > 0;
}

/* ---- the VM ---- */

static const struct {
	unsigned chip;
	const char *name;
} chips[] = {
	{ KVM_IRQCHIP_PIC_MASTER, "PIC master" },
	{ KVM_IRQCHIP_PIC_SLAVE, "PIC slave" },
	{ KVM_IRQCHIP_IOAPIC, "IOAPIC" },
};

int kvm_snap_save_vm(struct kvm_backend *kb, struct snap_writer *w, char *err, size_t errlen)
{
	struct kvm_irqchip ic[3];
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;

	for (unsigned i = 0; i < 3; i++) {
		memset(&ic[i], 0, sizeof(ic[i]));
		ic[i].chip_id = chips[i].chip;
		if (ioctl(kb->vm_fd, KVM_GET_IRQCHIP, &ic[i]) < 0)
			return ioctl_fail(err, errlen, -1, "KVM_GET_IRQCHIP");
	}
	memset(&pit, 0, sizeof(pit));
	if (ioctl(kb->vm_fd, KVM_GET_PIT2, &pit) < 0)
		return ioctl_fail(err, errlen, -1, "KVM_GET_PIT2");
	memset(&clock, 0, sizeof(clock));
	if (ioctl(kb->vm_fd, KVM_GET_CLOCK, &clock) < 0)
		return ioctl_fail(err, errlen, -1, "KVM_GET_CLOCK");

	snap_begin(w, "kvm-vm", "kvm-vm", VM_VERSION);
	snap_put_u32(w, kb->vm->ncpus);
	for (unsigned i = 0; i < 3; i++)
		put_blob(w, &ic[i], sizeof(ic[i]));
	put_blob(w, &pit, sizeof(pit));
	put_blob(w, &clock, sizeof(clock));
	snap_end(w);
	return 0;
}

int kvm_snap_load_vm(struct kvm_backend *kb, struct snap_reader *r, char *err, size_t errlen)
{
	struct kvm_irqchip ic[3];
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
	uint32_t version;

	if (snap_open_section(r, "kvm-vm", "kvm-vm", VM_VERSION, &version) < 0)
		return snap_status(r, err, errlen);
	uint32_t ncpus = snap_get_u32(r);
	if (!snap_error(r)[0] && ncpus != kb->vm->ncpus)
		snap_fail(r, "the snapshot has %u vCPUs, this VM %u", ncpus, kb->vm->ncpus);
	for (unsigned i = 0; i < 3; i++) {
		get_blob(r, chips[i].name, &ic[i], sizeof(ic[i]));
		if (!snap_error(r)[0] && ic[i].chip_id != chips[i].chip)
			snap_fail(r, "%s: chip id %u, expected %u", chips[i].name, ic[i].chip_id, chips[i].chip);
	}
	get_blob(r, "PIT state", &pit, sizeof(pit));
	get_blob(r, "clock", &clock, sizeof(clock));
	if (snap_status(r, err, errlen) < 0)
		return -1;

	for (unsigned i = 0; i < 3; i++)
		if (ioctl(kb->vm_fd, KVM_SET_IRQCHIP, &ic[i]) < 0)
			return ioctl_fail(err, errlen, -1, "KVM_SET_IRQCHIP");
	if (ioctl(kb->vm_fd, KVM_SET_PIT2, &pit) < 0)
		return ioctl_fail(err, errlen, -1, "KVM_SET_PIT2");
	/* From the saved value on, not the wall clock (see the top). */
	struct kvm_clock_data set = { .clock = clock.clock };
	if (ioctl(kb->vm_fd, KVM_SET_CLOCK, &set) < 0)
		return ioctl_fail(err, errlen, -1, "KVM_SET_CLOCK");
	return 0;
}

/* ---- MSRs ---- */

/* What KVM saves for a vCPU: KVM_GET_MSR_INDEX_LIST, plus the feature
 * MSRs (KVM_GET_MSR_FEATURE_INDEX_LIST: ARCH_CAPABILITIES, UCODE_REV...)
 * that are per-vCPU state too, without duplicates. The caller frees. */
static uint32_t *msr_index_list(struct kvm_backend *kb, unsigned long req, uint32_t *n)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	*n = 0;
	if (ioctl(kb->kvm_fd, req, &probe) < 0 && errno != E2BIG)
		return NULL;
	if (probe.nmsrs == 0 || probe.nmsrs > MSR_MAX)
		return calloc(1, sizeof(uint32_t));
	struct kvm_msr_list *l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(uint32_t));
	if (!l)
		return NULL;
	l->nmsrs = probe.nmsrs;
	if (ioctl(kb->kvm_fd, req, l) < 0) {
		free(l);
		return calloc(1, sizeof(uint32_t));
	}
	uint32_t *out = malloc(l->nmsrs * sizeof(uint32_t));
	if (out) {
		memcpy(out, l->indices, l->nmsrs * sizeof(uint32_t));
		*n = l->nmsrs;
	}
	free(l);
	return out;
}

uint32_t *kvm_snap_msr_list(struct kvm_backend *kb, uint32_t *n)
{
	uint32_t na, nf;
	uint32_t *a = msr_index_list(kb, KVM_GET_MSR_INDEX_LIST, &na);
	if (!a)
		return NULL;
	uint32_t *f = msr_index_list(kb, KVM_GET_MSR_FEATURE_INDEX_LIST, &nf);
	uint32_t *all = realloc(a, (na + (f ? nf : 0) + 1) * sizeof(uint32_t));
	if (!all) {
		free(a);
		free(f);
		return NULL;
	}
	for (uint32_t i = 0; f && i < nf; i++) {
		bool dup = false;
		for (uint32_t j = 0; j < na && !dup; j++)
			dup = all[j] == f[i];
		if (!dup)
			all[na++] = f[i];
	}
	free(f);
	*n = na;
	return all;
}

/* Reads `n` MSRs in chunks into out (index, data); KVM_GET_MSRS stops at
 * the first it cannot read (one the index list names but this vCPU's CPUID
 * does not have): that one is left out and the rest read on. */
static int read_msrs(struct kvm_vcpu *v, const uint32_t *idx, uint32_t n, struct kvm_msr_entry *out, uint32_t *got,
		     char *err, size_t errlen)
{
	_Alignas(8) uint8_t buf[sizeof(struct kvm_msrs) + MSR_CHUNK * sizeof(struct kvm_msr_entry)];
	struct kvm_msrs *m = (struct kvm_msrs *)buf;
	uint32_t pos = 0;
	*got = 0;
	while (pos < n) {
		uint32_t k = n - pos < MSR_CHUNK ? n - pos : MSR_CHUNK;
		memset(buf, 0, sizeof(buf));
		m->nmsrs = k;
		for (uint32_t i = 0; i < k; i++)
			m->entries[i].index = idx[pos + i];
		int r = ioctl(v->fd, KVM_GET_MSRS, m);
		if (r < 0)
			return ioctl_fail(err, errlen, (int)v->id, "KVM_GET_MSRS");
		if ((uint32_t)r > k)
			r = (int)k;
		memcpy(&out[*got], m->entries, (size_t)r * sizeof(m->entries[0]));
		*got += (uint32_t)r;
		pos += (uint32_t)r;
		if ((uint32_t)r < k)
			pos++; /* the one KVM refused */
	}
	return 0;
}

/* Writes entries with KVM_SET_MSRS, in chunks; every one must be taken. */
static int write_msrs(struct kvm_vcpu *v, const struct kvm_msr_entry *e, uint32_t n, char *err, size_t errlen)
{
	_Alignas(8) uint8_t buf[sizeof(struct kvm_msrs) + MSR_CHUNK * sizeof(struct kvm_msr_entry)];
	struct kvm_msrs *m = (struct kvm_msrs *)buf;
	for (uint32_t pos = 0; pos < n;) {
		uint32_t k = n - pos < MSR_CHUNK ? n - pos : MSR_CHUNK;
		memset(buf, 0, sizeof(buf));
		m->nmsrs = k;
		memcpy(m->entries, &e[pos], k * sizeof(e[0]));
		int r = ioctl(v->fd, KVM_SET_MSRS, m);
		if (r < 0)
			return ioctl_fail(err, errlen, (int)v->id, "KVM_SET_MSRS");
		if ((uint32_t)r < k) {
			snprintf(err, errlen, "cpu%u: KVM_SET_MSRS: refused MSR 0x%x (value 0x%llx)", v->id,
				 e[pos + (uint32_t)r].index, (unsigned long long)e[pos + (uint32_t)r].data);
			return -1;
		}
		pos += k;
	}
	return 0;
}

/* ---- a vCPU ---- */

static size_t xsave_size(struct kvm_backend *kb)
{
	int n = ioctl(kb->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	return n > (int)sizeof(struct kvm_xsave) ? (size_t)n : sizeof(struct kvm_xsave);
}

/* The CPUID table this vCPU was given (kvm_vcpus_create); NULL on error. */
static struct kvm_cpuid2 *vcpu_cpuid(struct kvm_vcpu *v)
{
	for (unsigned n = 64; n <= CPUID_MAX; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return NULL;
		c->nent = n;
		if (ioctl(v->fd, KVM_GET_CPUID2, c) == 0) {
			/* Older kernels leave nent as it was and zeroes after
			 * the table (leaf 0 always has a nonzero EAX). */
			uint32_t k = 0;
			for (uint32_t i = 0; i < c->nent && i < n; i++) {
				const struct kvm_cpuid_entry2 *e = &c->entries[i];
				if (e->function || e->index || e->flags || e->eax || e->ebx || e->ecx || e->edx)
					c->entries[k++] = *e;
			}
			c->nent = k;
			return c;
		}
		free(c);
		if (errno != E2BIG)
			return NULL;
	}
	return NULL;
}

/* What the guest saw of CPUID must be what this VM gives it: this VM's
 * own table (config, policy, host) is kept, and a difference refused. */
static int check_cpuid(struct kvm_vcpu *v, const struct kvm_cpuid_entry2 *saved, uint32_t n, char *err,
		       size_t errlen)
{
	struct kvm_cpuid2 *c = vcpu_cpuid(v);
	if (!c)
		return ioctl_fail(err, errlen, (int)v->id, "KVM_GET_CPUID2");
	int rc = 0;
	if (c->nent != n) {
		snprintf(err, errlen, "cpu%u: the snapshot's guest saw %u CPUID leaves, this VM gives %u", v->id, n,
			 c->nent);
		rc = -1;
	}
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		const struct kvm_cpuid_entry2 *e = &saved[i], *m = NULL;
		for (uint32_t j = 0; j < c->nent && !m; j++)
			if (c->entries[j].function == e->function && c->entries[j].index == e->index)
				m = &c->entries[j];
		if (!m || m->eax != e->eax || m->ebx != e->ebx || m->ecx != e->ecx || m->edx != e->edx ||
		    m->flags != e->flags) {
			snprintf(err, errlen,
				 "cpu%u: CPUID leaf 0x%x.%u differs from the snapshot's (another host, config or policy)",
				 v->id, e->function, e->index);
			rc = -1;
		}
	}
	free(c);
	return rc;
}

/* Another host's TSC frequency: scaled to the snapshot's where KVM can,
 * else refused (the guest's clocks would run at the wrong speed). Within
 * 250 ppm counts as the same (calibration noise; QEMU's tolerance). */
static int restore_tsc_khz(struct kvm_vcpu *v, uint32_t saved, char *err, size_t errlen)
{
	int here = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	if (saved == 0 || here <= 0)
		return 0;
	uint64_t diff = (uint64_t)(here > (int)saved ? (uint32_t)here - saved : saved - (uint32_t)here);
	if (diff * 1000000 <= (uint64_t)saved * 250)
		return 0;
	if (ioctl(v->fd, KVM_SET_TSC_KHZ, (unsigned long)saved) < 0) {
		snprintf(err, errlen, "cpu%u: the snapshot's TSC ran at %u kHz, this host's at %d kHz: KVM_SET_TSC_KHZ: %s",
			 v->id, saved, here, strerror(errno));
		return -1;
	}
	return 0;
}

/* KVM finishes an exit vigil handled (an OUT's or MMIO's step past the
 * instruction, an IN's data into the register) only when the vCPU enters
 * again, and core/vcpu.c parks a vCPU between an exit and the next entry.
 * Saved then, the guest would do that access a second time after a
 * restore. So: entered once with immediate_exit, which finishes it and
 * returns before any guest instruction runs (EINTR). */
static int finish_exit(struct kvm_vcpu *v, char *err, size_t errlen)
{
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELAXED);
	int r = ioctl(v->fd, KVM_RUN, 0);
	int e = errno;
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_RELAXED);
	if (r == 0 || e == EINTR || e == EAGAIN)
		return 0;
	errno = e;
	return ioctl_fail(err, errlen, (int)v->id, "KVM_RUN (finishing the last exit)");
}

static int save_vcpu(struct kvm_vcpu *v, struct snap_writer *w, char *err, size_t errlen)
{
	struct kvm_backend *kb = v->kb;
	int id = (int)v->id;
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_sregs2 sregs2;
	struct kvm_debugregs dregs;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	bool s2 = has_cap(kb, KVM_CAP_SREGS2), has_xcrs = has_cap(kb, KVM_CAP_XCRS);
	bool xsave2 = ioctl(kb->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2) > 0;
	size_t xs = xsave_size(kb);

	memset(&xcrs, 0, sizeof(xcrs));
	if (finish_exit(v, err, errlen) < 0)
		return -1;
	/* MP state first: reading it makes KVM take pending INIT/SIPI into
	 * the LAPIC, which the LAPIC read below must then see. Events last:
	 * the other reads may still move state into them. */
	if (ioctl(v->fd, KVM_GET_MP_STATE, &mp) < 0)
		return ioctl_fail(err, errlen, id, "KVM_GET_MP_STATE");
	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0)
		return ioctl_fail(err, errlen, id, "KVM_GET_REGS");
	if (s2 ? ioctl(v->fd, KVM_GET_SREGS2, &sregs2) < 0 : ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return ioctl_fail(err, errlen, id, s2 ? "KVM_GET_SREGS2" : "KVM_GET_SREGS");
	if (ioctl(v->fd, KVM_GET_DEBUGREGS, &dregs) < 0)
		return ioctl_fail(err, errlen, id, "KVM_GET_DEBUGREGS");
	struct kvm_xsave *xsave = calloc(1, xs);
	if (!xsave) {
		snprintf(err, errlen, "cpu%d: out of memory", id);
		return -1;
	}
	if (ioctl(v->fd, xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, xsave) < 0) {
		free(xsave);
		return ioctl_fail(err, errlen, id, xsave2 ? "KVM_GET_XSAVE2" : "KVM_GET_XSAVE");
	}
	if (has_xcrs && ioctl(v->fd, KVM_GET_XCRS, &xcrs) < 0) {
		free(xsave);
		return ioctl_fail(err, errlen, id, "KVM_GET_XCRS");
	}
	uint32_t nmsr = 0;
	struct kvm_msr_entry *msrs = calloc(kb->snap_nmsrs + 1, sizeof(*msrs));
	if (!kb->snap_msrs || !msrs) {
		free(xsave), free(msrs);
		snprintf(err, errlen, "cpu%d: %s", id,
			 msrs ? "KVM_GET_MSR_INDEX_LIST failed when the VM was made" : "out of memory");
		return -1;
	}
	int rc = read_msrs(v, kb->snap_msrs, kb->snap_nmsrs, msrs, &nmsr, err, errlen);
	if (rc == 0 && ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0)
		rc = ioctl_fail(err, errlen, id, "KVM_GET_LAPIC");
	if (rc == 0 && ioctl(v->fd, KVM_GET_VCPU_EVENTS, &events) < 0)
		rc = ioctl_fail(err, errlen, id, "KVM_GET_VCPU_EVENTS");
	struct kvm_cpuid2 *cpuid = rc == 0 ? vcpu_cpuid(v) : NULL;
	if (rc == 0 && !cpuid)
		rc = ioctl_fail(err, errlen, id, "KVM_GET_CPUID2");
	if (rc < 0) {
		free(xsave), free(msrs);
		return -1;
	}
	int khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);

	char sid[16];
	snprintf(sid, sizeof(sid), "cpu%u", v->id);
	snap_begin(w, sid, "kvm-vcpu", VCPU_VERSION);
	snap_put_u32(w, v->id);
	put_blob(w, &mp, sizeof(mp));
	put_blob(w, &regs, sizeof(regs));
	snap_put_u8(w, s2 ? SREGS_V2 : SREGS_V1);
	if (s2)
		put_blob(w, &sregs2, sizeof(sregs2));
	else
		put_blob(w, &sregs, sizeof(sregs));
	put_blob(w, &dregs, sizeof(dregs));
	put_blob(w, xsave, xs);
	snap_put_bool(w, has_xcrs);
	put_blob(w, &xcrs, sizeof(xcrs));
	snap_put_u32(w, nmsr);
	for (uint32_t i = 0; i < nmsr; i++) {
		snap_put_u32(w, msrs[i].index);
		snap_put_u64(w, msrs[i].data);
	}
	put_blob(w, &lapic, sizeof(lapic));
	put_blob(w, &events, sizeof(events));
	snap_put_u32(w, khz > 0 ? (uint32_t)khz : 0);
	snap_put_u32(w, cpuid->nent);
	for (uint32_t i = 0; i < cpuid->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
		const uint32_t f[7] = { e->function, e->index, e->flags, e->eax, e->ebx, e->ecx, e->edx };
		for (unsigned k = 0; k < 7; k++)
			snap_put_u32(w, f[k]);
	}
	snap_end(w);
	free(cpuid);
	free(xsave);
	free(msrs);
	return 0;
}

int kvm_snap_save_vcpu(struct kvm_backend *kb, unsigned cpu, struct snap_writer *w, char *err, size_t errlen)
{
	if (cpu >= kb->vm->ncpus || kb->vcpus[cpu].fd < 0) {
		snprintf(err, errlen, "cpu%u: no such vCPU", cpu);
		return -1;
	}
	return save_vcpu(&kb->vcpus[cpu], w, err, errlen);
}

/* What a cpuN section holds, read and checked before anything is set. */
struct vcpu_image {
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	uint8_t sregs_kind;
	struct kvm_sregs sregs;
	struct kvm_sregs2 sregs2;
	struct kvm_debugregs dregs;
	struct kvm_xsave *xsave; /* xsave_size bytes */
	bool has_xcrs;
	struct kvm_xcrs xcrs;
	uint32_t nmsr;
	struct kvm_msr_entry *msrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	uint32_t tsc_khz; /* 0: not known */
	uint32_t ncpuid;
	struct kvm_cpuid_entry2 *cpuid;
};

static int read_image(struct kvm_vcpu *v, struct snap_reader *r, struct vcpu_image *im, size_t xs)
{
	struct kvm_backend *kb = v->kb;
	uint32_t id = snap_get_u32(r);
	if (!snap_error(r)[0] && id != v->id)
		return snap_fail(r, "holds vCPU %u, not %u", id, v->id);
	get_blob(r, "MP state", &im->mp, sizeof(im->mp));
	get_blob(r, "registers", &im->regs, sizeof(im->regs));
	im->sregs_kind = snap_get_u8(r);
	if (im->sregs_kind == SREGS_V2) {
		if (!snap_error(r)[0] && !has_cap(kb, KVM_CAP_SREGS2))
			return snap_fail(r, "special registers saved with KVM_GET_SREGS2, this host has no SREGS2");
		get_blob(r, "special registers (SREGS2)", &im->sregs2, sizeof(im->sregs2));
	} else if (im->sregs_kind == SREGS_V1) {
		get_blob(r, "special registers", &im->sregs, sizeof(im->sregs));
	} else if (!snap_error(r)[0]) {
		return snap_fail(r, "unknown special register format %u", im->sregs_kind);
	}
	get_blob(r, "debug registers", &im->dregs, sizeof(im->dregs));
	/* Another host's XSAVE size: its layout cannot be trusted here. */
	uint32_t xlen = snap_get_u32(r);
	if (snap_error(r)[0])
		return -1;
	if (xlen != xs)
		return snap_fail(r, "XSAVE area is %u bytes, this host's is %zu", xlen, xs);
	const uint8_t *xb = snap_get_blob(r, xs);
	if (!xb)
		return -1;
	memcpy(im->xsave, xb, xs);
	im->has_xcrs = snap_get_bool(r);
	get_blob(r, "XCRs", &im->xcrs, sizeof(im->xcrs));
	if (!snap_error(r)[0] && im->has_xcrs && im->xcrs.nr_xcrs > KVM_MAX_XCRS)
		return snap_fail(r, "%u XCRs, KVM has at most %d", im->xcrs.nr_xcrs, KVM_MAX_XCRS);
	if (!snap_error(r)[0] && im->has_xcrs && !has_cap(kb, KVM_CAP_XCRS))
		return snap_fail(r, "saved XCRs, this host has no KVM_CAP_XCRS");
	im->nmsr = snap_get_u32(r);
	if (snap_error(r)[0])
		return -1;
	/* 12 bytes each: a count the section cannot hold is refused before
	 * anything is allocated for it. */
	if (im->nmsr > MSR_MAX || (uint64_t)im->nmsr * 12 > snap_left(r))
		return snap_fail(r, "%u MSRs: more than the section holds", im->nmsr);
	im->msrs = calloc(im->nmsr + 1, sizeof(*im->msrs));
	if (!im->msrs)
		return snap_fail(r, "out of memory");
	for (uint32_t i = 0; i < im->nmsr; i++) {
		im->msrs[i].index = snap_get_u32(r);
		im->msrs[i].data = snap_get_u64(r);
	}
	get_blob(r, "LAPIC", &im->lapic, sizeof(im->lapic));
	get_blob(r, "vCPU events", &im->events, sizeof(im->events));
	im->tsc_khz = snap_get_u32(r);
	im->ncpuid = snap_get_u32(r);
	if (snap_error(r)[0])
		return -1;
	if (im->ncpuid > CPUID_MAX || (uint64_t)im->ncpuid * CPUID_BYTES > snap_left(r))
		return snap_fail(r, "%u CPUID leaves: more than the section holds", im->ncpuid);
	im->cpuid = calloc(im->ncpuid + 1, sizeof(*im->cpuid));
	if (!im->cpuid)
		return snap_fail(r, "out of memory");
	for (uint32_t i = 0; i < im->ncpuid; i++) {
		struct kvm_cpuid_entry2 *e = &im->cpuid[i];
		e->function = snap_get_u32(r);
		e->index = snap_get_u32(r);
		e->flags = snap_get_u32(r);
		e->eax = snap_get_u32(r);
		e->ebx = snap_get_u32(r);
		e->ecx = snap_get_u32(r);
		e->edx = snap_get_u32(r);
	}
	if (!snap_error(r)[0] && snap_left(r) != 0)
		return snap_fail(r, "%zu bytes left over at the end", snap_left(r));
	return snap_error(r)[0] ? -1 : 0;
}

/* CPUID checked and the TSC's frequency set first (before its value), then
 * KVM_SET_* in the order KVM needs: MP state and registers (SET_REGS
 * drops a pending exception, which the events bring back at the end);
 * special registers before the LAPIC (they carry the APIC base) and
 * before the MSRs (EFER); the LAPIC before the MSRs and TSC_DEADLINE after
 * the TSC and the LAPIC (see the top); the events last. */
static int apply_image(struct kvm_vcpu *v, const struct vcpu_image *im, char *err, size_t errlen)
{
	int id = (int)v->id;
	if (check_cpuid(v, im->cpuid, im->ncpuid, err, errlen) < 0 || restore_tsc_khz(v, im->tsc_khz, err, errlen) < 0)
		return -1;
	if (ioctl(v->fd, KVM_SET_MP_STATE, &im->mp) < 0)
		return ioctl_fail(err, errlen, id, "KVM_SET_MP_STATE");
	if (ioctl(v->fd, KVM_SET_REGS, &im->regs) < 0)
		return ioctl_fail(err, errlen, id, "KVM_SET_REGS");
	if (im->sregs_kind == SREGS_V2 ? ioctl(v->fd, KVM_SET_SREGS2, &im->sregs2) < 0
				       : ioctl(v->fd, KVM_SET_SREGS, &im->sregs) < 0)
		return ioctl_fail(err, errlen, id, im->sregs_kind == SREGS_V2 ? "KVM_SET_SREGS2" : "KVM_SET_SREGS");
	if (ioctl(v->fd, KVM_SET_XSAVE, im->xsave) < 0)
		return ioctl_fail(err, errlen, id, "KVM_SET_XSAVE");
	if (im->has_xcrs && ioctl(v->fd, KVM_SET_XCRS, &im->xcrs) < 0)
		return ioctl_fail(err, errlen, id, "KVM_SET_XCRS");
	if (ioctl(v->fd, KVM_SET_DEBUGREGS, &im->dregs) < 0)
		return ioctl_fail(err, errlen, id, "KVM_SET_DEBUGREGS");
	if (ioctl(v->fd, KVM_SET_LAPIC, &im->lapic) < 0)
		return ioctl_fail(err, errlen, id, "KVM_SET_LAPIC");

	struct kvm_msr_entry *e = malloc((im->nmsr + 1) * sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "cpu%d: out of memory", id);
		return -1;
	}
	uint32_t n = 0, nd = 0;
	for (uint32_t i = 0; i < im->nmsr; i++)
		if (im->msrs[i].index != MSR_IA32_TSC_DEADLINE)
			e[n++] = im->msrs[i];
	for (uint32_t i = 0; i < im->nmsr; i++)
		if (im->msrs[i].index == MSR_IA32_TSC_DEADLINE)
			e[n + nd++] = im->msrs[i];
	int rc = write_msrs(v, e, n, err, errlen);
	if (rc == 0)
		rc = write_msrs(v, e + n, nd, err, errlen);
	free(e);
	if (rc < 0)
		return -1;
	if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &im->events) < 0)
		return ioctl_fail(err, errlen, id, "KVM_SET_VCPU_EVENTS");
	return 0;
}

int kvm_snap_load_vcpu(struct kvm_backend *kb, unsigned cpu, struct snap_reader *r, char *err, size_t errlen)
{
	if (cpu >= kb->vm->ncpus || kb->vcpus[cpu].fd < 0) {
		snprintf(err, errlen, "cpu%u: no such vCPU", cpu);
		return -1;
	}
	struct kvm_vcpu *v = &kb->vcpus[cpu];
	char sid[16];
	uint32_t version;
	snprintf(sid, sizeof(sid), "cpu%u", cpu);
	if (snap_open_section(r, sid, "kvm-vcpu", VCPU_VERSION, &version) < 0)
		return snap_status(r, err, errlen);

	size_t xs = xsave_size(kb);
	struct vcpu_image *im = calloc(1, sizeof(*im));
	if (im)
		im->xsave = calloc(1, xs);
	if (!im || !im->xsave) {
		free(im);
		snprintf(err, errlen, "cpu%u: out of memory", cpu);
		return -1;
	}
	int rc = read_image(v, r, im, xs) < 0 ? snap_status(r, err, errlen) : 0;
	if (rc == 0 && snap_status(r, err, errlen) < 0)
		rc = -1;
	if (rc == 0)
		rc = apply_image(v, im, err, errlen);
	free(im->msrs);
	free(im->cpuid);
	free(im->xsave);
	free(im);
	return rc;
}
