/* kvm_translate_check — vigil's page walk (arch/x86/pagewalk.h) held
 * against KVM's own (KVM_TRANSLATE) on this host. A tiny guest (tiny-peek:
 * vigil's boot-time identity map plus a kernel half it adds itself) boots
 * on a bare VM (no devices: its port reads get all ones) until it spins;
 * with it paused, on its vCPU's thread:
 *   1. addresses in and around its own tables;
 *   2. random tables built in guest RAM for 4-level long mode, PAE and
 *      32-bit paging (and 5-level if the host has LA57), 4 KiB / 2 MiB /
 *      4 MiB / 1 GiB pages, loaded with KVM_SET_SREGS (the vCPU never runs
 *      them), each mapped address and as many random ones compared.
 * KVM_TRANSLATE reports only validity and the address (its writeable and
 * usermode fields are constants), so that is what is compared.
 * Usage: kvm_translate_check tiny-peek.bin. Exit 0 when all agree. */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arch/x86/boot.h"
#include "arch/x86/cpu_state.h"
#include "arch/x86/pagewalk.h"
#include "core/vm.h"
#include "kvm/kvm.h"
#include "kvm/kvm_internal.h" /* the CPUID the guest sees */

#define RAM	    (64ull << 20)
#define TABLES	    (16ull << 20) /* scratch page tables from here */
#define TABLES_END  (60ull << 20)
#define P	    1ull
#define W	    2ull
#define U	    4ull
#define PS	    0x80ull
#define NX	    (1ull << 63)

static struct vm vm;
static struct kvm_backend *kb;
static bool gbpages = true;
static uint64_t next_table;
static unsigned compared, mismatches, mode_mismatches;

static uint64_t rnd(void)
{
	return ((uint64_t)rand() << 40) ^ ((uint64_t)rand() << 20) ^ (uint64_t)rand();
}

static uint8_t *ram(uint64_t gpa)
{
	return gmem_ptr(&vm.mem, gpa, 1);
}

static uint64_t new_table(void)
{
	uint64_t t = next_table;
	next_table += 4096;
	if (next_table > TABLES_END) {
		fprintf(stderr, "out of table space\n");
		exit(2);
	}
	memset(ram(t), 0, 4096);
	return t;
}

static void compare(const struct pw_regs *r, uint64_t gva, const char *mode)
{
	struct pw_result res;
	uint64_t kgpa;
	bool kvalid;
	int e = pw_translate(&vm.mem, r, gva, &res);
	/* KVM_TRANSLATE walks a non-canonical address's low bits (on the CPU
	 * it is a #GP before any walk): vigil must refuse it, KVM is no judge. */
	unsigned top = (r->cr4 & 0x1000) ? 56 : 47;
	if ((r->efer & 0x400) && (gva >> top) != 0 && (gva >> top) != (~0ull >> top)) {
		compared++;
		if (e != PW_RESERVED) {
			mismatches++;
			if (mode_mismatches++ < 5)
				printf("MISMATCH %s gva 0x%" PRIx64 ": non-canonical, vigil says %s\n", mode, gva,
				       pw_error_name(e));
		}
		return;
	}
	if (kvm_translate(kb, 0, gva, &kgpa, &kvalid) < 0) {
		fprintf(stderr, "KVM_TRANSLATE failed\n");
		exit(2);
	}
	compared++;
	if ((e == PW_OK) != kvalid || (kvalid && kgpa != res.gpa)) {
		mismatches++;
		if (mode_mismatches++ < 5)
			printf("MISMATCH %s gva 0x%" PRIx64 ": vigil %s 0x%" PRIx64 ", KVM %s 0x%" PRIx64 "\n", mode,
			       gva, e ? pw_error_name(e) : "ok", e ? 0 : res.gpa, kvalid ? "ok" : "invalid", kgpa);
	}
}

/* 8-byte-entry tables (long mode, and PAE below its PDPT): one mapping. */
static bool map64(uint64_t top, unsigned shift, uint64_t gva, uint64_t gpa, unsigned leaf_shift, uint64_t flags)
{
	uint64_t t = top;
	for (;; shift -= 9) {
		uint64_t *e = (uint64_t *)ram(t + ((gva >> shift) & 511) * 8);
		if (shift == leaf_shift) {
			if (*e & P)
				return false;
			*e = gpa | flags | P | (leaf_shift > 12 ? PS : 0);
			return true;
		}
		if (!(*e & P))
			*e = new_table() | P | W | U;
		else if (*e & PS)
			return false;
		t = *e & 0x000ffffffffff000ull;
	}
}

struct mapping {
	uint64_t gva, size;
};
static struct mapping maps[600];
static unsigned nmaps;

static void check_maps(const struct pw_regs *r, uint64_t mask, const char *mode)
{
	for (unsigned i = 0; i < nmaps; i++) {
		compare(r, maps[i].gva, mode);
		compare(r, maps[i].gva + (rnd() & (maps[i].size - 1)), mode);
		compare(r, maps[i].gva + maps[i].size - 1, mode);
		/* the same low bits, high bits not a sign extension: non-canonical */
		if (mask >> 32)
			compare(r, maps[i].gva ^ (1ull << 60), mode);
	}
	for (unsigned i = 0; i < 2000; i++) {
		uint64_t a = rnd() & mask;
		if ((mask >> 32) && (rand() & 3)) /* mostly canonical, to reach the tables */
			a = (uint64_t)((int64_t)(a << 16) >> 16);
		compare(r, a, mode);
	}
}

static uint64_t flags(bool nx)
{
	return (rand() & 1 ? W : 0) | (rand() & 1 ? U : 0) | (nx && (rand() & 1) ? NX : 0);
}

/* Random long-mode tables: 4 KiB, 2 MiB and 1 GiB pages over both halves. */
static uint64_t build_long(int levels)
{
	unsigned top = levels == 5 ? 48 : 39;
	uint64_t cr3 = new_table();
	nmaps = 0;
	for (unsigned i = 0; i < 600; i++) {
		unsigned ls = (unsigned[]){ 12, 21, 30 }[rand() % (gbpages ? 3 : 2)];
		uint64_t size = 1ull << ls;
		uint64_t gva = rnd() & 0x00000c7fffe00000ull & ~(size - 1);
		if (ls == 12)
			gva |= (rnd() & 0x1ff) << 12;
		if (rand() & 1) /* the upper half, sign-extended */
			gva |= levels == 5 ? 0xff00000000000000ull : 0xffff800000000000ull;
		uint64_t gpa = rnd() & 0xffffff000ull & ~(size - 1); /* < 64 GiB: under any MAXPHYADDR */
		if (map64(cr3, top, gva, gpa, ls, flags(true)))
			maps[nmaps++] = (struct mapping){ gva, size };
	}
	return cr3;
}

/* PAE: 4 PDPTEs, then 2 MiB or 4 KiB pages. */
static uint64_t build_pae(void)
{
	uint64_t pdpt = new_table();
	nmaps = 0;
	for (unsigned i = 0; i < 4; i++)
		if (i != 1) /* one quarter left unmapped */
			*(uint64_t *)ram(pdpt + i * 8) = new_table() | P;
	for (unsigned i = 0; i < 400; i++) {
		unsigned ls = rand() & 1 ? 12 : 21;
		uint64_t size = 1ull << ls, gva = rnd() & 0xffffffffull & ~(size - 1);
		uint64_t gpa = rnd() & 0xffffff000ull & ~(size - 1);
		uint64_t *pdpte = (uint64_t *)ram(pdpt + (gva >> 30) * 8);
		if ((*pdpte & P) && map64(*pdpte & ~0xfffull, 21, gva, gpa, ls, flags(true)))
			maps[nmaps++] = (struct mapping){ gva, size };
	}
	return pdpt;
}

/* 32-bit: 4 KiB pages and 4 MiB PSE pages (physical below 4 GiB). */
static uint64_t build_32(void)
{
	uint64_t pd = new_table();
	nmaps = 0;
	for (unsigned i = 0; i < 400; i++) {
		bool big = rand() & 1;
		uint64_t size = big ? 0x400000 : 0x1000, gva = rnd() & 0xffffffffull & ~(size - 1);
		uint32_t gpa = (uint32_t)(rnd() & 0xffffffffull & ~(size - 1));
		uint32_t *pde = (uint32_t *)ram(pd + (gva >> 22) * 4);
		uint32_t fl = (uint32_t)flags(false);
		if (big) {
			if (*pde & P)
				continue;
			*pde = gpa | fl | P | PS;
		} else {
			if (!(*pde & P))
				*pde = (uint32_t)new_table() | P | W | U;
			else if (*pde & PS)
				continue;
			uint32_t *pte = (uint32_t *)ram((*pde & ~0xfffu) + ((gva >> 12) & 1023) * 4);
			if (*pte & P)
				continue;
			*pte = gpa | fl | P;
		}
		maps[nmaps++] = (struct mapping){ gva, size };
	}
	return pd;
}

struct job {
	struct hv_ops hv;
	bool la57;
	int rc;
};

static void run_mode(struct job *j, const struct vcpu_state *base, const char *mode, uint64_t cr0, uint64_t cr3,
		     uint64_t cr4, uint64_t efer, uint64_t mask)
{
	struct vcpu_state s = *base;
	s.cr0 = cr0, s.cr3 = cr3, s.cr4 = cr4, s.efer = efer;
	if (!(efer & 0x400))
		s.cs.l = 0, s.cs.db = 1;
	if (j->hv.set_state(j->hv.hv, 0, &s) < 0) {
		printf("modes: %s skipped (KVM refused the registers)\n", mode);
		return;
	}
	/* kvm_pvm runs 64-bit guests only: it takes other paging modes'
	 * registers but does not keep them. Nothing to compare against then. */
	struct vcpu_state back;
	if (j->hv.get_state(j->hv.hv, 0, &back) < 0 || back.cr0 != cr0 || back.cr4 != cr4 ||
	    (back.efer & ~0x400ull) != (efer & ~0x400ull)) {
		printf("modes: %s skipped (this host's KVM does not keep its registers: cr0 0x%" PRIx64
		       " efer 0x%" PRIx64 ")\n", mode, back.cr0, back.efer);
		return;
	}
	struct pw_regs r = { cr0, cr3, cr4, efer };
	unsigned before = compared;
	mode_mismatches = 0;
	check_maps(&r, mask, mode);
	printf("modes: %s, %u mappings, %u addresses, %u mismatches\n", mode, nmaps, compared - before,
	       mode_mismatches);
}

static void on_vcpu(void *arg, unsigned cpu)
{
	struct job *j = arg;
	struct vcpu_state s;
	if (j->hv.get_state(j->hv.hv, cpu, &s) < 0) {
		j->rc = 2;
		return;
	}
	/* 1. the guest's own tables */
	struct pw_regs r = pw_regs_of(&s);
	const uint64_t own[] = { 0, 0x1000, 0x100000, 0x3fffffff, 0x40000000, 0xffffffff, 0x100000000ull,
				 0x7fffffffffffull, 0x800000000000ull, 0xffff800000000000ull,
				 0xffffffff80000000ull, 0xffffffff80103004ull, 0xffffffff801fffffull,
				 0xffffffff80200000ull, 0xffffffffffffffffull };
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		compare(&r, own[i], "guest's own");
	printf("modes: the guest's own tables, %zu addresses\n", sizeof(own) / sizeof(own[0]));

	/* 2. random tables in each mode */
	srand((unsigned)time(NULL));
	next_table = TABLES;
	run_mode(j, &s, "4-level", 0x80000011, build_long(4), 0x20, 0xd00, 0xffffffffffffffffull);
	next_table = TABLES;
	if (j->la57)
		run_mode(j, &s, "5-level", 0x80000011, build_long(5), 0x1020, 0xd00, 0xffffffffffffffffull);
	else
		printf("modes: 5-level skipped (no LA57 on this host)\n");
	next_table = TABLES;
	run_mode(j, &s, "PAE", 0x80000011, build_pae(), 0x20, 0x800, 0xffffffffull);
	next_table = TABLES;
	run_mode(j, &s, "32-bit PSE", 0x80000011, build_32(), 0x10, 0, 0xffffffffull);
	j->hv.set_state(j->hv.hv, cpu, &s);
}

static void *vcpu_thread(void *arg)
{
	vcpu_loop(arg, 0);
	return NULL;
}

static bool host_has(const char *flag)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[4096];
	bool has = false;
	while (f && !has && fgets(line, sizeof(line), f))
		if (!strncmp(line, "flags", 5)) {
			char pat[32];
			snprintf(pat, sizeof(pat), " %s", flag);
			char *p = strstr(line, pat);
			has = p && (p[strlen(pat)] == ' ' || p[strlen(pat)] == '\n');
			break;
		}
	if (f)
		fclose(f);
	return has;
}

int main(int argc, char **argv)
{
	char err[256];
	if (argc != 2) {
		fprintf(stderr, "usage: kvm_translate_check tiny-peek.bin\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	static uint8_t image[1 << 20];
	size_t len = f ? fread(image, 1, sizeof(image), f) : 0;
	if (f)
		fclose(f);
	if (!len) {
		fprintf(stderr, "%s: cannot read it\n", argv[1]);
		return 2;
	}
	if (vm_init(&vm, 1) < 0 || !(kb = kvm_backend_create(&vm, RAM, NULL, err, sizeof(err)))) {
		fprintf(stderr, "vm: %s\n", err);
		return 2;
	}
	struct boot_config bc = { .kernel = image, .kernel_len = len, .cmdline = "" };
	struct boot_result br;
	if (boot_load(&vm.mem, &bc, &br, err, sizeof(err)) < 0 || kvm_vcpus_create(kb, &br.cpu, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "boot: %s\n", err);
		return 2;
	}
	struct job j = { .hv = kvm_hv_ops(kb), .la57 = host_has("la57") };
	/* 1 GiB pages only where the guest's CPUID offers them (else KVM,
	 * like the CPU, takes PS in a PDPTE for a reserved bit). */
	gbpages = false;
	for (unsigned i = 0; i < kb->cpuid->nent; i++)
		if (kb->cpuid->entries[i].function == 0x80000001)
			gbpages = kb->cpuid->entries[i].edx & (1u << 26);
	printf("modes: 1 GiB pages %s\n", gbpages ? "offered" : "not offered (not tested)");
	if (vcpus_init(&vm, &j.hv) < 0)
		return 2;
	vm_mark_running(&vm);
	pthread_t t;
	pthread_create(&t, NULL, vcpu_thread, &vm);
	/* the guest is ready once r12 holds its mark */
	struct vcpu_state s = { 0 };
	for (int i = 0; i < 1000 && s.r12 != 0x1234abcd; i++) {
		usleep(10000);
		vcpu_get_state(&vm, 0, &s);
	}
	if (s.r12 != 0x1234abcd) {
		fprintf(stderr, "the guest did not reach its spin (rip 0x%" PRIx64 ")\n", s.rip);
		return 2;
	}
	vm_pause(&vm);
	vcpu_run_on(&vm, 0, on_vcpu, &j);
	vm_request_stop(&vm, VM_STOP_USER);
	pthread_join(t, NULL);
	printf("%u addresses compared, %u mismatches\n", compared, mismatches);
	return j.rc ? j.rc : mismatches ? 1 : 0;
}
