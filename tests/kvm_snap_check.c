/* kvm_snap_check — KVM's side of snapshots (src/kvm/kvm_snap.c) on this
 * host. A tiny guest (tiny-snap: a count in memory at 0x200000 and in r12,
 * r13 stepped by 3 a turn, CR4 changed, marks in FS base and
 * KERNEL_GS_BASE; every 256 turns r12 out to port 0x510 and r13 to 0x514)
 * runs on a bare 2-vCPU VM (cpu1 waits for a SIPI that never comes), its
 * vCPU driven here with KVM_RUN directly:
 *   1. run a while, pause, save "kvm-vm", "cpu0", "cpu1" and the RAM (a
 *      memory file), destroy the VM;
 *   2. a fresh VM over the memory file (KVM_RAM_FILE), the state loaded:
 *      registers, FS base, the MSR mark, the XMM registers and XCR0
 *      (marks put there before the first run: kvm_pvm's ring-0 emulator
 *      has no SSE for the guest to use), cpu1's MP state and the TSC are
 *      as saved,
 *      and the guest's next report is exactly the one after the last (its
 *      count goes on, r13 agrees);
 *   3. the dirty log marks the counter's page and not an untouched one;
 *   4. hostile sections (every truncation of cpu0, wrong blob sizes, the
 *      XSAVE size, MSR counts, a bad MSR, another vCPU count and CPUID)
 *      fail with one line each and no crash; another TSC frequency is
 *      scaled to, or refused where KVM cannot.
 * Usage: kvm_snap_check tiny-snap.bin. Exit 0 when all pass. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "arch/x86/boot.h"
#include "core/snap.h"
#include "core/vm.h"
#include "kvm/kvm.h"
#include "kvm/kvm_internal.h" /* the vCPU fds, to run it here */

#define RAM	  (64ull << 20)
#define COUNTER	  0x200000ull
#define UNTOUCHED 0x300000ull
#define FS_MARK	  0x5a5a0000ull
#define KGS_MARK  0x6b6b0000ull
#define MSR_TSC	  0x10
#define MSR_KGS	  0xc0000102

static unsigned passed, failed;

static void check(bool ok, const char *what, const char *detail)
{
	if (ok) {
		passed++;
		printf("PASS %s\n", what);
	} else {
		failed++;
		printf("FAIL %s%s%s\n", what, detail && detail[0] ? ": " : "", detail ? detail : "");
	}
}

struct obs {
	uint32_t r12, r13;
	unsigned reports;
	bool r13_bad;
	uint32_t token, echo; /* the last word given on port 0x518, and echoed */
	unsigned ins, echoes; /* reads of 0x518, echoes on 0x51c */
	bool echo_bad;
};

/* Runs cpu0 until `reports` more r12 reports came; with at_in, on until
 * the guest's read of port 0x518 after the last, which is answered but
 * left for KVM to finish on the next entry. 0, or -1 with why. */
static int run(struct kvm_backend *kb, unsigned reports, bool at_in, struct obs *o, char *why, size_t whylen)
{
	struct kvm_vcpu *v = &kb->vcpus[0];
	unsigned want = o->reports + reports;
	for (unsigned n = 0; n < 10000000 && (o->reports < want || at_in); n++) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(why, whylen, "KVM_RUN: %s", strerror(errno));
			return -1;
		}
		struct kvm_run *run = v->run;
		if (run->exit_reason != KVM_EXIT_IO) {
			struct kvm_regs regs;
			ioctl(v->fd, KVM_GET_REGS, &regs);
			snprintf(why, whylen, "exit reason %u at rip 0x%llx", run->exit_reason,
				 (unsigned long long)regs.rip);
			return -1;
		}
		uint8_t *data = (uint8_t *)run + run->io.data_offset;
		if (run->io.direction == KVM_EXIT_IO_IN) {
			memset(data, 0xff, (size_t)run->io.size * run->io.count);
			if (run->io.port == 0x518 && run->io.size == 4) {
				o->token = 0xc0de0000u + o->reports;
				memcpy(data, &o->token, 4);
				o->ins++;
				if (at_in && o->reports >= want)
					return 0;
			}
			continue;
		}
		uint32_t val = 0;
		memcpy(&val, data, run->io.size < 4 ? run->io.size : 4);
		if (run->io.port == 0x510) {
			o->r12 = val;
		} else if (run->io.port == 0x51c) {
			o->echo = val;
			o->echoes++;
			if (val != o->token)
				o->echo_bad = true;
		} else if (run->io.port == 0x514) {
			o->r13 = val;
			if (val != 7u + 3u * o->r12)
				o->r13_bad = true;
			o->reports++;
		}
	}
	if (o->reports < want) {
		snprintf(why, whylen, "the guest stopped reporting");
		return -1;
	}
	return 0;
}

static uint64_t get_msr(struct kvm_backend *kb, unsigned cpu, uint32_t index)
{
	_Alignas(8) uint8_t buf[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)] = { 0 };
	struct kvm_msrs *m = (struct kvm_msrs *)buf;
	m->nmsrs = 1;
	m->entries[0].index = index;
	if (ioctl(kb->vcpus[cpu].fd, KVM_GET_MSRS, m) != 1)
		return ~0ull;
	return m->entries[0].data;
}

#define TSC_MARK (1ull << 40)
#define LVTT_MARK 0x100eeu /* masked, vector 0xee */
#define DR0_MARK 0x123450ull
#define CLOCK_MARK 1000000000000ull /* 1000 s of kvmclock */

static bool tsc_settable;

static int set_msr(struct kvm_backend *kb, unsigned cpu, uint32_t index, uint64_t value)
{
	_Alignas(8) uint8_t buf[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)] = { 0 };
	struct kvm_msrs *m = (struct kvm_msrs *)buf;
	m->nmsrs = 1;
	m->entries[0].index = index;
	m->entries[0].data = value;
	return ioctl(kb->vcpus[cpu].fd, KVM_SET_MSRS, m) == 1 ? 0 : -1;
}

struct vm_marks {
	uint8_t pic_imr;
	uint64_t ioapic_rte3;
	uint32_t pit2_count;
	uint64_t clock;
};

static void read_marks(struct kvm_backend *kb, struct vm_marks *m)
{
	struct kvm_irqchip pic = { .chip_id = KVM_IRQCHIP_PIC_MASTER }, io = { .chip_id = KVM_IRQCHIP_IOAPIC };
	struct kvm_pit_state2 pit = { 0 };
	struct kvm_clock_data c = { 0 };
	ioctl(kb->vm_fd, KVM_GET_IRQCHIP, &pic);
	ioctl(kb->vm_fd, KVM_GET_IRQCHIP, &io);
	ioctl(kb->vm_fd, KVM_GET_PIT2, &pit);
	ioctl(kb->vm_fd, KVM_GET_CLOCK, &c);
	*m = (struct vm_marks){ pic.chip.pic.imr, io.chip.ioapic.redirtbl[3].bits, pit.channels[2].count, c.clock };
}

static int mark_vm(struct kvm_backend *kb)
{
	struct kvm_irqchip pic = { .chip_id = KVM_IRQCHIP_PIC_MASTER }, io = { .chip_id = KVM_IRQCHIP_IOAPIC };
	struct kvm_pit_state2 pit = { 0 };
	if (ioctl(kb->vm_fd, KVM_GET_IRQCHIP, &pic) < 0 || ioctl(kb->vm_fd, KVM_GET_IRQCHIP, &io) < 0 ||
	    ioctl(kb->vm_fd, KVM_GET_PIT2, &pit) < 0)
		return fprintf(stderr, "KVM_GET_IRQCHIP/PIT2: %s\n", strerror(errno)), -1;
	pic.chip.pic.imr = 0xa5;
	io.chip.ioapic.redirtbl[3].bits = 0x10000 | 0x0000a000 | 0x33; /* masked, level, vector 0x33 */
	pit.channels[2].count = 0x4321;
	pit.channels[2].mode = 0;
	if (ioctl(kb->vm_fd, KVM_SET_IRQCHIP, &pic) < 0 || ioctl(kb->vm_fd, KVM_SET_IRQCHIP, &io) < 0 ||
	    ioctl(kb->vm_fd, KVM_SET_PIT2, &pit) < 0)
		return fprintf(stderr, "KVM_SET_IRQCHIP/PIT2: %s\n", strerror(errno)), -1;
	/* cpu0: its LAPIC timer's LVT, DR0, NMIs blocked */
	struct kvm_lapic_state la;
	struct kvm_debugregs dr;
	struct kvm_vcpu_events ev;
	int fd = kb->vcpus[0].fd;
	if (ioctl(fd, KVM_GET_LAPIC, &la) < 0 || ioctl(fd, KVM_GET_DEBUGREGS, &dr) < 0 ||
	    ioctl(fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return fprintf(stderr, "KVM_GET_LAPIC/DEBUGREGS/VCPU_EVENTS: %s\n", strerror(errno)), -1;
	uint32_t lvtt = LVTT_MARK;
	memcpy(&la.regs[0x320], &lvtt, 4);
	dr.db[0] = DR0_MARK;
	ev.nmi.masked = 1;
	ev.flags = 0;
	if (ioctl(fd, KVM_SET_LAPIC, &la) < 0 || ioctl(fd, KVM_SET_DEBUGREGS, &dr) < 0 ||
	    ioctl(fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		return fprintf(stderr, "KVM_SET_LAPIC/DEBUGREGS/VCPU_EVENTS: %s\n", strerror(errno)), -1;
	/* cpu1 halted rather than waiting for its SIPI */
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_HALTED };
	if (kb->vm->ncpus > 1 && ioctl(kb->vcpus[1].fd, KVM_SET_MP_STATE, &mp) < 0)
		return fprintf(stderr, "KVM_SET_MP_STATE: %s\n", strerror(errno)), -1;
	struct kvm_clock_data c = { .clock = CLOCK_MARK };
	if (ioctl(kb->vm_fd, KVM_SET_CLOCK, &c) < 0)
		return fprintf(stderr, "KVM_SET_CLOCK: %s\n", strerror(errno)), -1;
	if (set_msr(kb, 0, MSR_TSC, TSC_MARK) < 0)
		return fprintf(stderr, "KVM_SET_MSRS (TSC): refused\n"), -1;
	/* kvm_pvm runs the guest on the host's TSC: it takes the write and
	 * keeps no offset. The TSC's continuity is not testable there. */
	uint64_t t = get_msr(kb, 0, MSR_TSC);
	tsc_settable = t >= TSC_MARK && t - TSC_MARK < (1ull << 38);
	return 0;
}

static struct vm vm1, vm2, vm3, vm4;

struct save_job {
	struct kvm_backend *kb;
	struct snap_writer *w;
	int rc;
	char err[SNAP_ERR_MAX];
};

static void *save_thread(void *arg)
{
	struct save_job *j = arg;
	j->rc = kvm_snap_save_vm(j->kb, j->w, j->err, sizeof(j->err));
	for (unsigned c = 0; j->rc == 0 && c < 2; c++)
		j->rc = kvm_snap_save_vcpu(j->kb, c, j->w, j->err, sizeof(j->err));
	return NULL;
}
static uint8_t image[1 << 20];

static struct kvm_backend *make_vm(struct vm *vm, unsigned ncpus, const struct kvm_ram_source *src, size_t len,
				   struct boot_result *br)
{
	char err[SNAP_ERR_MAX];
	struct kvm_backend *kb;
	if (vm_init(vm, ncpus) < 0 || !(kb = kvm_backend_create(vm, RAM, src, err, sizeof(err)))) {
		fprintf(stderr, "vm: %s\n", err);
		exit(2);
	}
	/* KVM gets 2 MiB nested pages only for a 2 MiB-aligned host mapping
	 * (kvm_vm.c map_region), whichever the memory source. */
	char what[96];
	snprintf(what, sizeof(what), "guest RAM's host mapping is 2 MiB-aligned (%s)",
		 !src ? "anonymous" : src->kind == KVM_RAM_FILE ? "memory file" : "uffd");
	check(((uintptr_t)vm->mem.r[0].host & ((2u << 20) - 1)) == 0, what, "");
	if (!src) {
		struct boot_config bc = { .kernel = image, .kernel_len = len, .cmdline = "" };
		if (boot_load(&vm->mem, &bc, br, err, sizeof(err)) < 0) {
			fprintf(stderr, "boot: %s\n", err);
			exit(2);
		}
	}
	if (kvm_vcpus_create(kb, &br->cpu, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "vcpus: %s\n", err);
		exit(2);
	}
	/* Marks in the XMM registers and XCR0 (KVM_SET_FPU does not keep
	 * what it is given on kvm_pvm; XSAVE does). */
	if (!src) {
		_Alignas(64) static uint8_t xs[4096];
		struct kvm_xcrs xcrs = { .nr_xcrs = 1, .xcrs = { { .xcr = 0, .value = 3 } } };
		if (ioctl(kb->vcpus[0].fd, KVM_GET_XSAVE, xs) < 0)
			fprintf(stderr, "KVM_GET_XSAVE: %s\n", strerror(errno)), exit(2);
		for (unsigned i = 0; i < 16; i++)
			memset(xs + 160 + 16 * i, 0xa0 + (int)i, 16);
		xs[512] |= 2; /* XSTATE_BV: SSE */
		if (ioctl(kb->vcpus[0].fd, KVM_SET_XSAVE, xs) < 0)
			fprintf(stderr, "KVM_SET_XSAVE: %s\n", strerror(errno)), exit(2);
		if (ioctl(kb->vcpus[0].fd, KVM_SET_XCRS, &xcrs) < 0)
			fprintf(stderr, "KVM_SET_XCRS: %s\n", strerror(errno)), exit(2);
	}
	/* ... and in the interrupt controllers, the PIT and the TSC (far
	 * from the host's, which a fresh VM's starts near on some hosts). */
	if (!src && mark_vm(kb) < 0)
		exit(2);
	return kb;
}

/* ---- hostile sections, built from the good snapshot's payloads ---- */

struct payload {
	uint8_t *p;
	size_t len;
};

static struct payload payload_of(const uint8_t *buf, size_t len, const char *id)
{
	char err[SNAP_ERR_MAX];
	struct snap_reader *r = snap_reader_open(buf, len, err, sizeof(err));
	uint32_t ver;
	struct payload pl = { 0 };
	if (r && snap_find(r, id, "kvm-vcpu", &ver) == 0) {
		pl.len = snap_left(r);
		pl.p = malloc(pl.len);
		memcpy(pl.p, snap_get_blob(r, pl.len), pl.len);
	}
	snap_reader_free(r);
	return pl;
}

/* Loads cpu0 from a snapshot whose cpu0 section is `p` (n bytes) into kb;
 * 0 or -1 with the message in err. */
static int load_cpu0(struct kvm_backend *kb, const void *p, size_t n, char *err, size_t errlen)
{
	struct snap_writer *w = snap_writer_new();
	const uint8_t *buf;
	size_t len;
	snap_begin(w, "cpu0", "kvm-vcpu", 1);
	snap_put(w, p, n);
	snap_end(w);
	int rc = -1;
	if (snap_writer_finish(w, &buf, &len) == 0) {
		struct snap_reader *r = snap_reader_open(buf, len, err, errlen);
		if (r)
			rc = kvm_snap_load_vcpu(kb, 0, r, err, errlen);
		snap_reader_free(r);
	}
	snap_writer_free(w);
	return rc;
}

static bool one_line(const char *s)
{
	return s[0] && !strchr(s, '\n');
}

/* Field offsets in a cpu0 payload (kvm_snap.c's order). */
static size_t off_xsave_len(const uint8_t *p)
{
	size_t o = 4 + 4 + sizeof(struct kvm_mp_state) + 4 + sizeof(struct kvm_regs);
	uint8_t kind = p[o];
	o += 1 + 4 + (kind == 2 ? sizeof(struct kvm_sregs2) : sizeof(struct kvm_sregs));
	return o + 4 + sizeof(struct kvm_debugregs);
}

static size_t cpu0_msr_off(const uint8_t *p)
{
	size_t xo = off_xsave_len(p);
	uint32_t xs;
	memcpy(&xs, p + xo, 4);
	return xo + 4 + xs + 1 + 4 + sizeof(struct kvm_xcrs);
}

/* Where tsc_khz sits in a cpu0 payload: after the MSRs, LAPIC, events. */
static size_t cpu0_khz_off(struct payload pl)
{
	size_t mo = cpu0_msr_off(pl.p);
	uint32_t nmsr;
	memcpy(&nmsr, pl.p + mo, 4);
	return mo + 4 + 12 * (size_t)nmsr + 4 + sizeof(struct kvm_lapic_state) + 4 + sizeof(struct kvm_vcpu_events);
}

static void hostile(struct kvm_backend *kb, struct payload cpu0, const uint8_t *snap, size_t snaplen,
		    const struct kvm_sregs *sregs1)
{
	char err[SNAP_ERR_MAX], msg[SNAP_ERR_MAX + 64];
	uint8_t *p = malloc(cpu0.len);

	/* every truncation */
	unsigned bad = 0;
	size_t first_bad = 0;
	for (size_t n = 0; n < cpu0.len; n++) {
		err[0] = 0;
		if (load_cpu0(kb, cpu0.p, n, err, sizeof(err)) == 0 || !one_line(err)) {
			if (!bad++)
				first_bad = n;
		}
	}
	snprintf(msg, sizeof(msg), "%u of %zu lengths loaded or gave no one-line error (first: %zu)", bad, cpu0.len,
		 first_bad);
	check(bad == 0, "every truncation of cpu0 is refused", msg);
	load_cpu0(kb, cpu0.p, cpu0.len / 2, err, sizeof(err));
	printf("  e.g. %s\n", err);

	/* the registers' blob one word short */
	memcpy(p, cpu0.p, cpu0.len);
	size_t regs_len = 4 + 4 + sizeof(struct kvm_mp_state);
	uint32_t v = sizeof(struct kvm_regs) - 8;
	memcpy(p + regs_len, &v, 4);
	int rc = load_cpu0(kb, p, cpu0.len, err, sizeof(err));
	check(rc < 0 && strstr(err, "registers is 136 bytes"), "a wrong-sized registers blob is refused", err);
	printf("  %s\n", err);

	/* another host's XSAVE size */
	memcpy(p, cpu0.p, cpu0.len);
	size_t xo = off_xsave_len(p);
	uint32_t xs;
	memcpy(&xs, p + xo, 4);
	v = xs + 64;
	memcpy(p + xo, &v, 4);
	rc = load_cpu0(kb, p, cpu0.len, err, sizeof(err));
	check(rc < 0 && strstr(err, "XSAVE area is"), "another XSAVE size is refused", err);
	printf("  %s\n", err);

	/* an MSR count the section cannot hold */
	memcpy(p, cpu0.p, cpu0.len);
	size_t mo = cpu0_msr_off(p);
	uint32_t nmsr;
	memcpy(&nmsr, p + mo, 4);
	v = 0xffffffffu;
	memcpy(p + mo, &v, 4);
	rc = load_cpu0(kb, p, cpu0.len, err, sizeof(err));
	check(rc < 0 && one_line(err), "an MSR count of 2^32-1 is refused", err);
	printf("  %s\n", err);
	v = nmsr + 1;
	memcpy(p + mo, &v, 4);
	rc = load_cpu0(kb, p, cpu0.len, err, sizeof(err));
	check(rc < 0 && one_line(err), "an MSR count one too many is refused", err);
	printf("  %s\n", err);

	/* an MSR KVM does not have: KVM_SET_MSRS stops there */
	memcpy(p, cpu0.p, cpu0.len);
	v = 0x3ffff0u;
	if (nmsr > 3)
		memcpy(p + mo + 4 + 3 * 12, &v, 4);
	rc = load_cpu0(kb, p, cpu0.len, err, sizeof(err));
	check(nmsr > 3 && rc < 0 && strstr(err, "cpu0: KVM_SET_MSRS") && strstr(err, "0x3ffff0"),
	      "an unknown MSR fails naming it", err);
	printf("  %s\n", err);

	/* trailing bytes */
	uint8_t *q = calloc(1, cpu0.len + 8);
	memcpy(q, cpu0.p, cpu0.len);
	rc = load_cpu0(kb, q, cpu0.len + 8, err, sizeof(err));
	check(rc < 0 && one_line(err), "bytes past the end are refused", err);
	free(q);

	/* another host's TSC frequency (twice this one's) */
	memcpy(p, cpu0.p, cpu0.len);
	uint32_t khz;
	size_t ko_khz = cpu0_khz_off(cpu0);
	memcpy(&khz, p + ko_khz, 4);
	v = khz * 2;
	memcpy(p + ko_khz, &v, 4);
	rc = load_cpu0(kb, p, cpu0.len, err, sizeof(err));
	int now = ioctl(kb->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);
	snprintf(msg, sizeof(msg), "%s (TSC now %d kHz)", rc ? err : "loaded", now);
	check(khz > 0 && (rc == 0 ? (uint32_t)now == khz * 2 : strstr(err, "KVM_SET_TSC_KHZ") != NULL),
	      "another TSC frequency is scaled to, or refused", msg);
	printf("  %s\n", msg);
	if (rc == 0) { /* back to this host's */
		memcpy(p + ko_khz, &khz, 4);
		ioctl(kb->vcpus[0].fd, KVM_SET_TSC_KHZ, (unsigned long)khz);
	}

	struct snap_reader *r = snap_reader_open(snap, snaplen, err, sizeof(err));
	rc = r ? kvm_snap_load_vcpu(kb, 2, r, err, sizeof(err)) : -1;
	check(rc < 0 && one_line(err), "a vCPU this VM does not have is refused", err);
	printf("  %s\n", err);
	snap_reader_free(r);

	/* special registers in the older KVM_GET_SREGS form (a snapshot from
	 * a host without SREGS2) load too */
	size_t ko = 4 + 4 + sizeof(struct kvm_mp_state) + 4 + sizeof(struct kvm_regs);
	if (cpu0.p[ko] == 2) {
		size_t old_end = ko + 1 + 4 + sizeof(struct kvm_sregs2);
		size_t n = ko + 1 + 4 + sizeof(struct kvm_sregs) + (cpu0.len - old_end);
		uint8_t *s1 = malloc(n);
		uint32_t l1 = sizeof(struct kvm_sregs);
		memcpy(s1, cpu0.p, ko);
		s1[ko] = 1;
		memcpy(s1 + ko + 1, &l1, 4);
		memcpy(s1 + ko + 5, sregs1, sizeof(*sregs1));
		memcpy(s1 + ko + 5 + sizeof(*sregs1), cpu0.p + old_end, cpu0.len - old_end);
		struct kvm_sregs back = { 0 };
		ioctl(kb->vcpus[0].fd, KVM_GET_SREGS, &back); /* earlier loads left the mark: wipe it */
		back.fs.base = 0;
		ioctl(kb->vcpus[0].fd, KVM_SET_SREGS, &back);
		rc = load_cpu0(kb, s1, n, err, sizeof(err));
		ioctl(kb->vcpus[0].fd, KVM_GET_SREGS, &back);
		snprintf(msg, sizeof(msg), "%s fs base 0x%llx", rc ? err : "", (unsigned long long)back.fs.base);
		check(rc == 0 && back.fs.base == FS_MARK && back.cr4 == sregs1->cr4,
		      "special registers saved with KVM_GET_SREGS load", msg);
		free(s1);
	} else {
		printf("  (the snapshot has KVM_GET_SREGS special registers: the SREGS2 form is not tried)\n");
	}

	/* the good one still loads into it */
	rc = load_cpu0(kb, cpu0.p, cpu0.len, err, sizeof(err));
	check(rc == 0, "the untouched cpu0 section loads", err);
	free(p);
}

int main(int argc, char **argv)
{
	char err[SNAP_ERR_MAX], why[256] = "";
	if (argc != 2) {
		fprintf(stderr, "usage: kvm_snap_check tiny-snap.bin\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	size_t len = f ? fread(image, 1, sizeof(image), f) : 0;
	if (f)
		fclose(f);
	if (!len) {
		fprintf(stderr, "%s: cannot read it\n", argv[1]);
		return 2;
	}

	/* 1. run, pause, save */
	struct boot_result br;
	struct kvm_backend *kb = make_vm(&vm1, 2, NULL, len, &br);
	struct obs o = { 0 };
	/* Paused at the guest's IN, answered: KVM puts the word in EAX and
	 * steps past the IN only on the next entry, which kvm_snap_save_vcpu
	 * makes (else the restored guest would read the port again). */
	if (run(kb, 8, true, &o, why, sizeof(why)) < 0) {
		fprintf(stderr, "first run: %s\n", why);
		return 2;
	}
	/* time, read before the save: what is restored is no earlier */
	int khz = ioctl(kb->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);
	uint64_t tsc1 = get_msr(kb, 0, MSR_TSC);
	struct vm_marks vm_m1, vm_m2;
	read_marks(kb, &vm_m1);
	/* from another thread than the one that ran the vCPU, as vigil's
	 * control thread saves a parked vCPU */
	struct snap_writer *w = snap_writer_new();
	struct save_job sj = { kb, w, -1, "" };
	pthread_t saver;
	int rc = pthread_create(&saver, NULL, save_thread, &sj);
	if (rc == 0)
		pthread_join(saver, NULL);
	rc = rc ? -1 : sj.rc;
	memcpy(err, sj.err, sizeof(err));
	const uint8_t *snap = NULL;
	size_t snaplen = 0;
	if (rc == 0)
		rc = snap_writer_finish(w, &snap, &snaplen);
	check(rc == 0, "save kvm-vm, cpu0, cpu1", err);
	if (rc)
		return 1;
	uint64_t count;
	memcpy(&count, gmem_ptr(&vm1.mem, COUNTER, 8), 8);
	struct kvm_regs regs1;
	struct kvm_sregs sregs1;
	struct kvm_mp_state mp1_1;
	ioctl(kb->vcpus[0].fd, KVM_GET_REGS, &regs1);
	ioctl(kb->vcpus[0].fd, KVM_GET_SREGS, &sregs1);
	ioctl(kb->vcpus[1].fd, KVM_GET_MP_STATE, &mp1_1);
	printf("saved: r12 %u, counter %" PRIu64 ", fs base 0x%llx, tsc %" PRIu64 " (%d kHz), cpu1 mp state %u\n",
	       o.r12, count, (unsigned long long)sregs1.fs.base, tsc1, khz, mp1_1.mp_state);
	check(o.r12 == 8 * 256 && count == o.r12 && !o.r13_bad && sregs1.fs.base == FS_MARK,
	      "the guest counts (r12, r13, memory; fs base)", NULL);

	char memfile[] = "/tmp/kvm_snap_check.XXXXXX";
	int mfd = mkstemp(memfile);
	bool wrote = mfd >= 0;
	for (unsigned i = 0; wrote && i < vm1.mem.nr; i++)
		wrote = write(mfd, vm1.mem.r[i].host, vm1.mem.r[i].size) == (ssize_t)vm1.mem.r[i].size;
	if (mfd >= 0)
		unlink(memfile);
	check(wrote, "the memory file is written", strerror(errno));
	struct payload cpu0 = payload_of(snap, snaplen, "cpu0");
	uint32_t nmsr = 0;
	if (cpu0.len >= cpu0_msr_off(cpu0.p) + 4)
		memcpy(&nmsr, cpu0.p + cpu0_msr_off(cpu0.p), 4);
	printf("snapshot: %zu bytes, cpu0 %zu bytes, %u MSRs\n", snaplen, cpu0.len, nmsr);
	kvm_backend_destroy(kb);
	vm_fini(&vm1);

	/* 2. a fresh VM over the memory file, the state loaded */
	struct kvm_ram_source src = { .kind = KVM_RAM_FILE, .fd = mfd };
	kb = make_vm(&vm2, 2, &src, len, &br);
	struct snap_reader *r = snap_reader_open(snap, snaplen, err, sizeof(err));
	rc = r ? kvm_snap_load_vm(kb, r, err, sizeof(err)) : -1;
	for (unsigned c = 0; rc == 0 && c < 2; c++)
		rc = kvm_snap_load_vcpu(kb, c, r, err, sizeof(err));
	check(rc == 0, "load kvm-vm, cpu0, cpu1 into a fresh VM", err);
	snap_reader_free(r);
	if (rc)
		return 1;
	struct kvm_regs regs2;
	struct kvm_sregs sregs2;
	struct kvm_mp_state mp1_2;
	ioctl(kb->vcpus[0].fd, KVM_GET_REGS, &regs2);
	ioctl(kb->vcpus[0].fd, KVM_GET_SREGS, &sregs2);
	ioctl(kb->vcpus[1].fd, KVM_GET_MP_STATE, &mp1_2);
	uint64_t tsc2 = get_msr(kb, 0, MSR_TSC);
	read_marks(kb, &vm_m2);
	snprintf(why, sizeof(why), "PIC imr 0x%x, IOAPIC pin 3 0x%llx, PIT ch2 count 0x%x", vm_m2.pic_imr,
		 (unsigned long long)vm_m2.ioapic_rte3, vm_m2.pit2_count);
	check(vm_m2.pic_imr == vm_m1.pic_imr && vm_m2.ioapic_rte3 == vm_m1.ioapic_rte3 &&
		      vm_m2.pit2_count == vm_m1.pit2_count && vm_m1.pic_imr == 0xa5,
	      "PIC, IOAPIC and PIT are as saved", why);
	snprintf(why, sizeof(why), "kvmclock %llu ns, saved %llu ns", (unsigned long long)vm_m2.clock,
		 (unsigned long long)vm_m1.clock);
	check(vm_m1.clock >= CLOCK_MARK && vm_m2.clock >= vm_m1.clock && vm_m2.clock - vm_m1.clock < 2000000000ull,
	      "the kvmclock goes on from the saved value", why);
	printf("  %s\n", why);
	snprintf(why, sizeof(why), "rip 0x%llx/0x%llx r12 %llu/%llu", (unsigned long long)regs2.rip,
		 (unsigned long long)regs1.rip, (unsigned long long)regs2.r12, (unsigned long long)regs1.r12);
	check(!memcmp(&regs1, &regs2, sizeof(regs1)), "registers are as saved", why);
	snprintf(why, sizeof(why), "fs base 0x%llx cr4 0x%llx", (unsigned long long)sregs2.fs.base,
		 (unsigned long long)sregs2.cr4);
	check(sregs2.fs.base == FS_MARK && sregs2.cr4 == sregs1.cr4, "special registers are as saved", why);
	_Alignas(64) static uint8_t xs2[4096];
	struct kvm_xcrs xcrs2 = { 0 };
	ioctl(kb->vcpus[0].fd, KVM_GET_XSAVE, xs2);
	ioctl(kb->vcpus[0].fd, KVM_GET_XCRS, &xcrs2);
	bool xmm_ok = true;
	for (unsigned i = 0; i < 16; i++)
		for (unsigned b = 0; b < 16; b++)
			xmm_ok &= xs2[160 + 16 * i + b] == 0xa0 + i;
	snprintf(why, sizeof(why), "xmm0 starts %02x, xmm15 %02x", xs2[160], xs2[160 + 15 * 16]);
	check(xmm_ok, "the XMM registers (XSAVE) are as saved", why);
	snprintf(why, sizeof(why), "%u XCRs, XCR0 0x%llx", xcrs2.nr_xcrs, (unsigned long long)xcrs2.xcrs[0].value);
	check(xcrs2.nr_xcrs >= 1 && xcrs2.xcrs[0].value == 3, "XCR0 is as saved", why);
	struct kvm_lapic_state la2;
	struct kvm_debugregs dr2;
	struct kvm_vcpu_events ev2;
	uint32_t lvtt2 = 0;
	ioctl(kb->vcpus[0].fd, KVM_GET_LAPIC, &la2);
	ioctl(kb->vcpus[0].fd, KVM_GET_DEBUGREGS, &dr2);
	ioctl(kb->vcpus[0].fd, KVM_GET_VCPU_EVENTS, &ev2);
	memcpy(&lvtt2, &la2.regs[0x320], 4);
	snprintf(why, sizeof(why), "LVT timer 0x%x", lvtt2);
	check(lvtt2 == LVTT_MARK, "the LAPIC is as saved", why);
	snprintf(why, sizeof(why), "DR0 0x%llx", (unsigned long long)dr2.db[0]);
	check(dr2.db[0] == DR0_MARK, "the debug registers are as saved", why);
	check(ev2.nmi.masked == 1, "the vCPU events (NMIs blocked) are as saved", NULL);
	snprintf(why, sizeof(why), "0x%" PRIx64, get_msr(kb, 0, MSR_KGS));
	check(get_msr(kb, 0, MSR_KGS) == KGS_MARK, "KERNEL_GS_BASE (an MSR) is as saved", why);
	snprintf(why, sizeof(why), "%u, saved %u", mp1_2.mp_state, mp1_1.mp_state);
	check(mp1_1.mp_state == KVM_MP_STATE_HALTED && mp1_2.mp_state == mp1_1.mp_state, "cpu1's MP state is as saved",
	      why);
	/* a fresh vCPU's TSC starts near 0: the saved one goes on instead */
	uint64_t slack = khz > 0 ? (uint64_t)khz * 1000 * 2 : 10000000000ull;
	snprintf(why, sizeof(why), "tsc %" PRIu64 ", saved %" PRIu64, tsc2, tsc1);
	if (tsc_settable) {
		check(tsc2 >= tsc1 && tsc2 - tsc1 < slack, "the TSC goes on from the saved value", why);
	} else {
		/* what can be seen here: IA32_TSC is among the MSRs saved */
		bool has_tsc = false;
		size_t mo = cpu0_msr_off(cpu0.p);
		uint32_t n;
		memcpy(&n, cpu0.p + mo, 4);
		for (uint32_t i = 0; i < n && mo + 4 + 12 * (i + 1) <= cpu0.len; i++) {
			uint32_t idx;
			memcpy(&idx, cpu0.p + mo + 4 + 12 * i, 4);
			has_tsc |= idx == MSR_TSC;
		}
		printf("  this host's KVM keeps no TSC offset (kvm_pvm): the TSC's continuity is not testable here\n");
		check(has_tsc, "IA32_TSC is among the saved MSRs", NULL);
	}
	printf("restored: %s\n", why);

	uint32_t saved_r12 = o.r12, saved_token = o.token;
	o.reports = 0;
	o.ins = o.echoes = 0;
	rc = run(kb, 1, false, &o, why, sizeof(why));
	char msg[sizeof(why) + 64];
	snprintf(msg, sizeof(msg), "%s first report r12 %u, expected %u", rc ? why : "", o.r12, saved_r12 + 256);
	check(rc == 0 && o.r12 == saved_r12 + 256 && !o.r13_bad, "the guest counts on from where it stopped", msg);
	printf("  %s\n", msg);
	snprintf(msg, sizeof(msg), "echo 0x%x of token 0x%x, %u reads of the port before the first report", o.echo,
		 saved_token, o.ins);
	check(o.echoes >= 1 && o.echo == saved_token && o.ins == 0 && !o.echo_bad,
	      "the IN it was paused at is finished, not done again", msg);
	printf("  %s\n", msg);

	/* 3. the dirty log */
	uint64_t words = (vm2.mem.r[0].size / 4096 + 63) / 64;
	uint64_t *bm = calloc(words, 8);
	check(kvm_dirty_log_fetch(kb, 0, bm) == -ENOENT, "no dirty log while tracking is off", NULL);
	rc = kvm_dirty_log_enable(kb, true);
	check(rc == 0, "dirty log on", strerror(-rc));
	memset(bm, 0, words * 8);
	kvm_dirty_log_fetch(kb, 0, bm); /* a clean start */
	memset(bm, 0, words * 8);
	rc = run(kb, 2, false, &o, why, sizeof(why));
	int fr = kvm_dirty_log_fetch(kb, 0, bm);
	uint64_t pc = COUNTER / 4096, pu = UNTOUCHED / 4096;
	bool cbit = bm[pc / 64] >> (pc % 64) & 1, ubit = bm[pu / 64] >> (pu % 64) & 1;
	unsigned ndirty = 0;
	for (uint64_t i = 0; i < words; i++)
		ndirty += (unsigned)__builtin_popcountll(bm[i]);
	snprintf(why, sizeof(why), "fetch %d, counter page %d, untouched page %d, %u dirty", fr, cbit, ubit, ndirty);
	check(rc == 0 && fr == 0 && cbit && !ubit, "the dirty log marks the page written, not the one untouched", why);
	printf("  %s\n", why);
	/* fetched again with the guest held: KVM cleared its log */
	memset(bm, 0, words * 8);
	fr = kvm_dirty_log_fetch(kb, 0, bm);
	cbit = bm[pc / 64] >> (pc % 64) & 1;
	check(fr == 0 && !cbit, "a fetch clears the log", NULL);
	check(kvm_dirty_log_fetch(kb, 5, bm) == -EINVAL, "a region that does not exist is refused", NULL);
	rc = kvm_dirty_log_enable(kb, false);
	check(rc == 0 && kvm_dirty_log_fetch(kb, 0, bm) == -ENOENT, "dirty log off", NULL);
	rc = run(kb, 1, false, &o, why, sizeof(why));
	check(rc == 0 && !o.r13_bad, "the guest still counts with tracking off", why);
	free(bm);
	kvm_backend_destroy(kb);
	vm_fini(&vm2);

	/* 4. hostile sections, into another VM like it */
	kb = make_vm(&vm3, 2, &src, len, &br);
	hostile(kb, cpu0, snap, snaplen, &sregs1);
	kvm_backend_destroy(kb);
	vm_fini(&vm3);

	/* ... and the snapshot into a VM with one vCPU: its CPUID (the vCPU
	 * count is in it) differs too */
	kb = make_vm(&vm4, 1, &src, len, &br);
	r = snap_reader_open(snap, snaplen, err, sizeof(err));
	rc = r ? kvm_snap_load_vm(kb, r, err, sizeof(err)) : -1;
	check(rc < 0 && strstr(err, "2 vCPUs"), "another vCPU count is refused", err);
	printf("  %s\n", err);
	snap_reader_free(r);
	rc = load_cpu0(kb, cpu0.p, cpu0.len, err, sizeof(err));
	check(rc < 0 && strstr(err, "cpu0: CPUID leaf"), "another CPUID is refused", err);
	printf("  %s\n", err);
	kvm_backend_destroy(kb);
	vm_fini(&vm4);
	close(mfd);
	free(cpu0.p);
	snap_writer_free(w);
	printf("kvm_snap_check: %u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
