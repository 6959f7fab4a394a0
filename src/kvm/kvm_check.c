/* `vigil check`: what this host's KVM can do for vigil, measured rather
 * than guessed — including whether guest ring-0 code runs natively, which
 * matters on kvm_pvm hosts where it is emulated. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kvm/kvm.h"
#include "kvm/kvm_internal.h"

#define PROBE_LOOPS 200000u
/* A real hardware-virtualized CPU runs this loop at hundreds of millions of
 * iterations a second; kvm_pvm's emulator at about one million. */
#define NATIVE_LOOPS_PER_SEC 50e6

int kvm_host_is_pvm(void)
{
	return access("/sys/module/kvm_pvm", F_OK) == 0;
}

static const char *kvm_module(void)
{
	if (kvm_host_is_pvm())
		return "kvm_pvm (no hardware virtualization)";
	if (access("/sys/module/kvm_amd", F_OK) == 0)
		return "kvm_amd (AMD-V)";
	if (access("/sys/module/kvm_intel", F_OK) == 0)
		return "kvm_intel (VT-x)";
	return "unknown";
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Runs a counted loop in real mode (CPL0) in a throwaway VM; returns
 * iterations per second, or a negative value if the probe could not run. */
static double probe_ring0(int kvm_fd)
{
	static const unsigned char code[] = {
		0x66, 0xb9, PROBE_LOOPS & 0xff, (PROBE_LOOPS >> 8) & 0xff, (PROBE_LOOPS >> 16) & 0xff, 0,
		0x66, 0x49,                     /* dec ecx */
		0x75, 0xfc,                     /* jnz .-2 */
		0xf4,                           /* hlt */
	};
	double rate = -1;
	int vm = -1, cpu = -1;
	size_t mem_size = 0x10000, run_size = (size_t)ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	void *mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct kvm_run *run = MAP_FAILED;

	if (mem == MAP_FAILED)
		return -1;
	memcpy((char *)mem + 0x1000, code, sizeof(code));
	vm = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm < 0)
		goto out;
	ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL);
	struct kvm_userspace_memory_region r = { .memory_size = mem_size,
						 .userspace_addr = (uint64_t)(uintptr_t)mem };
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		goto out;
	cpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (cpu < 0)
		goto out;
	run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, cpu, 0);
	if (run == MAP_FAILED)
		goto out;
	struct kvm_sregs sr;
	if (ioctl(cpu, KVM_GET_SREGS, &sr) < 0)
		goto out;
	sr.cs.base = 0;
	sr.cs.selector = 0;
	if (ioctl(cpu, KVM_SET_SREGS, &sr) < 0)
		goto out;
	struct kvm_regs regs = { .rip = 0x1000, .rflags = 2 };
	if (ioctl(cpu, KVM_SET_REGS, &regs) < 0)
		goto out;
	double t0 = now();
	for (int i = 0; i < 1000; i++) {
		if (ioctl(cpu, KVM_RUN, 0) < 0 && errno != EINTR)
			goto out;
		if (run->exit_reason == KVM_EXIT_HLT) {
			rate = PROBE_LOOPS / (now() - t0);
			break;
		}
		if (run->exit_reason != KVM_EXIT_INTR)
			goto out;
	}
out:
	if (run != MAP_FAILED)
		munmap(run, run_size);
	if (cpu >= 0)
		close(cpu);
	if (vm >= 0)
		close(vm);
	munmap(mem, mem_size);
	return rate;
}

int kvm_check(FILE *out)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(out, "/dev/kvm: %s\n", strerror(errno));
		fprintf(out, "verdict: vigil cannot run here (%s)\n",
			errno == ENOENT ? "load kvm_intel or kvm_amd, or use the lab: lab/run.sh"
					: "run as root or join the kvm group");
		return 1;
	}
	int ok = 1;
	int api = ioctl(fd, KVM_GET_API_VERSION, 0);
	fprintf(out, "/dev/kvm: opens, API version %d (vigil needs %d)%s\n", api, KVM_REQUIRED_API,
		api == KVM_REQUIRED_API ? "" : "  MISMATCH");
	ok &= api == KVM_REQUIRED_API;
	fprintf(out, "kvm module: %s\n", kvm_module());
	for (const struct kvm_cap_need *c = kvm_caps_needed; c->name; c++) {
		int have = ioctl(fd, KVM_CHECK_EXTENSION, c->cap) > 0;
		fprintf(out, "  %-24s %s\n", c->name, have ? "yes" : "MISSING");
		ok &= have;
	}
	/* Optional: without them a feature is refused or reported missing,
	 * the VM still runs. */
	static const struct {
		int cap;
		const char *name, *what;
	} optional[] = {
		{ KVM_CAP_X86_USER_SPACE_MSR, "KVM_CAP_X86_USER_SPACE_MSR", "policy msr rules" },
		{ KVM_CAP_X86_MSR_FILTER, "KVM_CAP_X86_MSR_FILTER", "policy msr rules" },
		{ KVM_CAP_BINARY_STATS_FD, "KVM_CAP_BINARY_STATS_FD", "KVM's own counts in --stats" },
	};
	for (size_t i = 0; i < sizeof(optional) / sizeof(optional[0]); i++)
		fprintf(out, "  %-28s %s (%s)\n", optional[i].name,
			ioctl(fd, KVM_CHECK_EXTENSION, optional[i].cap) > 0 ? "yes" : "no", optional[i].what);
	int max = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	fprintf(out, "max vCPUs per VM: %d\n", max);

	double rate = probe_ring0(fd);
	close(fd);
	if (rate < 0) {
		fprintf(out, "guest ring-0 code: probe failed to run\n");
		ok = 0;
	} else if (rate >= NATIVE_LOOPS_PER_SEC) {
		fprintf(out, "guest ring-0 code: native (%.0f M loop iterations/s)\n", rate / 1e6);
	} else {
		fprintf(out, "guest ring-0 code: EMULATED (%.2f M loop iterations/s)\n", rate / 1e6);
		fprintf(out, "  guest kernels run thousands of times slower here: a stock Linux kernel\n"
			     "  will crawl. Boot guests in the lab instead (an emulated AMD-V host with a\n"
			     "  real kvm_amd): lab/run.sh for the tests, scripts/demo for a shell.\n");
	}
	if (!ok)
		fprintf(out, "verdict: vigil cannot run here\n");
	else
		fprintf(out, "verdict: vigil can run here%s\n",
			rate >= NATIVE_LOOPS_PER_SEC ? "" : ", but guest kernels will be very slow");
	return ok ? 0 : 1;
}
