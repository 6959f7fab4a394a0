/* The VM side of the KVM backend: /dev/kvm, the VM, RAM, irqchip, PIT. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "core/errmsg.h"
#include "kvm/kvm.h"
#include "kvm/kvm_internal.h"

const struct kvm_cap_need kvm_caps_needed[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
	{ KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING" },
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD" },
	{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD" },
	{ 0, NULL },
};

__attribute__((format(printf, 4, 5))) static struct kvm_backend *fail(struct kvm_backend *kb, char *err, size_t errlen,
									      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verrmsg(err, errlen, fmt, ap);
	va_end(ap);
	kvm_backend_destroy(kb);
	return NULL;
}

static int open_kvm(char *err, size_t errlen)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			snprintf(err, errlen, "/dev/kvm does not exist: load kvm_intel or kvm_amd, or run in the lab (README)");
		else if (errno == EACCES || errno == EPERM)
			snprintf(err, errlen, "/dev/kvm: permission denied: add yourself to the 'kvm' group or run as root");
		else
			snprintf(err, errlen, "/dev/kvm: %s", strerror(errno));
		return -1;
	}
	int api = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_REQUIRED_API) {
		snprintf(err, errlen, "KVM API version %d, vigil needs %d", api, KVM_REQUIRED_API);
		close(fd);
		return -1;
	}
	return fd;
}

#define HUGE_2M (2ULL << 20)

/* One RAM region at a 2 MiB-aligned host address: KVM maps guest memory
 * with 2 MiB nested pages only where host and guest addresses agree modulo
 * 2 MiB and the host page is huge, and kernels before 6.7 do not align
 * large anonymous mappings themselves (tens of thousands of 4 KiB nested
 * page faults per Linux boot, against ~1,000). Anonymous RAM of a guest of
 * 1 GiB or more also asks for transparent huge pages, for hosts whose THP
 * mode is `madvise` (QEMU asks for every guest); a smaller guest leaves it
 * to the host's setting, since a huge page makes a touched 4 KiB resident
 * as 2 MiB, which a dense host of small sparse guests should not pay. A
 * memory file is mapped private over the aligned range:
 * nothing is read until touched, the guest's writes never reach the file,
 * and clones share its pages until they write. MAP_FAILED on failure. */
static void *map_region(enum kvm_ram_kind kind, uint64_t len, uint64_t guest_ram, int fd, uint64_t file_off)
{
	uint8_t *raw = mmap(NULL, len + HUGE_2M, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return MAP_FAILED;
	uint8_t *p = (uint8_t *)(((uintptr_t)raw + HUGE_2M - 1) & ~(uintptr_t)(HUGE_2M - 1));
	if (p > raw)
		munmap(raw, (size_t)(p - raw));
	if (raw + len + HUGE_2M > p + len)
		munmap(p + len, (size_t)(raw + len + HUGE_2M - (p + len)));
	void *m = kind == KVM_RAM_FILE
			  ? mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE | MAP_FIXED, fd, (off_t)file_off)
			  : mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
	if (m == MAP_FAILED) {
		munmap(p, len);
		return MAP_FAILED;
	}
	/* Not for the Uffd backend: its page server fills 4 KiB pages. */
	if (kind == KVM_RAM_ANON && guest_ram >= (1ULL << 30))
		madvise(p, len, MADV_HUGEPAGE);
	return p;
}

static int map_ram(struct kvm_backend *kb, uint64_t mem, const struct kvm_ram_source *src, char *err, size_t errlen)
{
	enum kvm_ram_kind kind = src ? src->kind : KVM_RAM_ANON;
	uint64_t file_off = 0;
	uint64_t low = mem < LAYOUT_MEM32_END ? mem : LAYOUT_MEM32_END;
	uint64_t high = mem - low;
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);

	if (pages > 0 && psize > 0 && mem > (uint64_t)pages * (uint64_t)psize) {
		snprintf(err, errlen, "--mem %llu MiB is more than this host's %llu MiB of RAM",
			 (unsigned long long)(mem >> 20),
			 (unsigned long long)(((uint64_t)pages * (uint64_t)psize) >> 20));
		return -1;
	}
	struct { void **host; uint64_t *size; uint64_t gpa; uint64_t len; } parts[] = {
		{ &kb->ram_low, &kb->ram_low_size, 0, low },
		{ &kb->ram_high, &kb->ram_high_size, LAYOUT_MEM_HIGH, high },
	};
	if (kind == KVM_RAM_FILE) {
		struct stat st;
		if (fstat(src->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			snprintf(err, errlen, "memory file: not a regular file");
			return -1;
		}
		if ((uint64_t)st.st_size != mem) {
			snprintf(err, errlen, "memory file is %llu bytes, the snapshot's guest has %llu MiB (%llu bytes)",
				 (unsigned long long)st.st_size, (unsigned long long)(mem >> 20),
				 (unsigned long long)mem);
			return -1;
		}
	}
	for (unsigned slot = 0; slot < 2; slot++) {
		if (parts[slot].len == 0)
			continue;
		void *p = map_region(kind, parts[slot].len, mem, kind == KVM_RAM_FILE ? src->fd : -1, file_off);
		file_off += parts[slot].len;
		if (p == MAP_FAILED) {
			snprintf(err, errlen, "cannot map %llu MiB of guest memory: %s",
				 (unsigned long long)(parts[slot].len >> 20), strerror(errno));
			return -1;
		}
		*parts[slot].host = p;
		*parts[slot].size = parts[slot].len;
		/* Never MADV_MERGEABLE: KSM merging pages across VMs is a side
		 * channel between them (Firecracker never opts in either). */
		struct kvm_userspace_memory_region r = {
			.slot = slot,
			.guest_phys_addr = parts[slot].gpa,
			.memory_size = parts[slot].len,
			.userspace_addr = (uint64_t)(uintptr_t)p,
		};
		if (ioctl(kb->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
			snprintf(err, errlen, "KVM_SET_USER_MEMORY_REGION (%llu MiB): %s",
				 (unsigned long long)(parts[slot].len >> 20), strerror(errno));
			return -1;
		}
		if (gmem_add(&kb->vm->mem, parts[slot].gpa, parts[slot].len, p) < 0) {
			snprintf(err, errlen, "guest memory map refused a region");
			return -1;
		}
	}
	return 0;
}

static struct kvm_cpuid2 *supported_cpuid(int kvm_fd)
{
	for (unsigned n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return NULL;
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG)
			return NULL;
	}
	return NULL;
}

/* RDMSR/WRMSR the MSR filter denies exit to vigil (KVM_EXIT_X86_RDMSR /
 * WRMSR) instead of raising #GP; the policy then decides. Without these
 * capabilities a policy with msr rules is refused (kvm_apply_policy). */
static void enable_msr_exits(struct kvm_backend *kb)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_X86_USER_SPACE_MSR, .args = { KVM_MSR_EXIT_REASON_FILTER } };
	kb->msr_exits = ioctl(kb->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_USER_SPACE_MSR) > 0 &&
			ioctl(kb->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_MSR_FILTER) > 0 &&
			ioctl(kb->vm_fd, KVM_ENABLE_CAP, &cap) == 0;
}

struct kvm_backend *kvm_backend_create(struct vm *vm, uint64_t mem_bytes, const struct kvm_ram_source *src, char *err,
				       size_t errlen)
{
	struct kvm_backend *kb = calloc(1, sizeof(*kb) + vm->ncpus * sizeof(kb->vcpus[0]));
	if (!kb)
		return fail(NULL, err, errlen, "out of memory");
	kb->vm = vm;
	kb->vm_fd = -1;
	kb->stats.fd = -1;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		kb->vcpus[i].fd = -1;
		kb->vcpus[i].stats.fd = -1;
	}
	kb->kvm_fd = open_kvm(err, errlen);
	if (kb->kvm_fd < 0) {
		kvm_backend_destroy(kb);
		return NULL;
	}
	for (const struct kvm_cap_need *c = kvm_caps_needed; c->name; c++)
		if (ioctl(kb->kvm_fd, KVM_CHECK_EXTENSION, c->cap) <= 0)
			return fail(kb, err, errlen, "this host's KVM lacks %s (see 'vigil check')", c->name);
	int max_vcpus = ioctl(kb->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max_vcpus <= 0)
		max_vcpus = ioctl(kb->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max_vcpus > 0 && vm->ncpus > (unsigned)max_vcpus)
		return fail(kb, err, errlen, "--cpus %u is above this host's KVM limit of %d", vm->ncpus,
			    max_vcpus);
	int rs = ioctl(kb->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (rs <= 0)
		return fail(kb, err, errlen, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	kb->run_size = (size_t)rs;
	kb->cpuid = supported_cpuid(kb->kvm_fd);
	if (!kb->cpuid)
		return fail(kb, err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));

	kb->vm_fd = ioctl(kb->kvm_fd, KVM_CREATE_VM, 0);
	if (kb->vm_fd < 0)
		return fail(kb, err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
	/* Intel VMX needs these pages for real mode; harmless elsewhere. */
	ioctl(kb->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS);
	uint64_t idmap = LAYOUT_KVM_IDMAP;
	ioctl(kb->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap);
	/* RAM before the irqchip and the PIT: once they exist, every
	 * KVM_SET_USER_MEMORY_REGION waits out KVM's SRCU readers, 4-8 ms per
	 * slot on this project's host against 0.15 ms before (a snapshot's
	 * restore, and every start-up, paid it). */
	if (map_ram(kb, mem_bytes, src, err, errlen) < 0) {
		kvm_backend_destroy(kb);
		return NULL;
	}
	if (ioctl(kb->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return fail(kb, err, errlen, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
	int rr = kvm_irq_routing_init(kb);
	if (rr < 0)
		return fail(kb, err, errlen, "KVM_SET_GSI_ROUTING: %s", strerror(-rr));
	struct kvm_pit_config pit = { .flags = 0 }; /* port 0x61 too: TSC calibration */
	if (ioctl(kb->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return fail(kb, err, errlen, "KVM_CREATE_PIT2: %s", strerror(errno));
	enable_msr_exits(kb);
	kb->snap_msrs = kvm_snap_msr_list(kb, &kb->snap_nmsrs);
	kb->guest_debug2 = ioctl(kb->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_GUEST_DEBUG2);
	kb->stats_why = kvm_stats_unavailable(kb->kvm_fd);
	if (!kb->stats_why && kvm_stats_open(&kb->stats, kb->vm_fd) < 0)
		kb->stats_why = "KVM_GET_STATS_FD failed on the VM";
	return kb;
}

void kvm_backend_destroy(struct kvm_backend *kb)
{
	if (!kb)
		return;
	for (unsigned i = 0; kb->vm && i < kb->vm->ncpus; i++) {
		if (kb->vcpus[i].run)
			munmap(kb->vcpus[i].run, kb->run_size);
		if (kb->vcpus[i].fd >= 0)
			close(kb->vcpus[i].fd);
		kvm_stats_close(&kb->vcpus[i].stats);
	}
	kvm_stats_close(&kb->stats);
	if (kb->ram_low)
		munmap(kb->ram_low, kb->ram_low_size);
	if (kb->ram_high)
		munmap(kb->ram_high, kb->ram_high_size);
	if (kb->vm_fd >= 0)
		close(kb->vm_fd);
	if (kb->kvm_fd >= 0)
		close(kb->kvm_fd);
	free(kb->cpuid);
	free(kb->snap_msrs);
	free(kb);
}

static void kvm_set_irq(void *ctx, uint32_t gsi, int level)
{
	struct kvm_backend *kb = ctx;
	struct kvm_irq_level l = { .irq = gsi, .level = (uint32_t)(level != 0) };
	ioctl(kb->vm_fd, KVM_IRQ_LINE, &l);
}

struct irq_line kvm_irq_line(struct kvm_backend *kb, uint32_t gsi)
{
	return (struct irq_line){ .set = kvm_set_irq, .ctx = kb, .gsi = gsi };
}
