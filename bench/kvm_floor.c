/* kvm_floor — the least a VMM process must do before its first KVM_RUN on
 * this host: the same KVM set-up vigil makes for a 1-vCPU, 256 MiB guest
 * (supported CPUID, the VM, in-kernel irqchip and PIT, one memory slot, the
 * vCPU and its CPUID), then a guest of one OUT (an I/O exit: a HLT would
 * wait in the in-kernel LAPIC). Run under
 * bench/startup_probe, its figures are the floor beside which a VMM's own
 * are read: what remains above it is the VMM's. libc only, no threads. */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM (256u << 20)

static int fail(const char *what)
{
	perror(what);
	return 1;
}

int main(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return fail("/dev/kvm");
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 256 * sizeof(c->entries[0]));
	if (!c)
		return fail("calloc");
	c->nent = 256;
	if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c) < 0)
		return fail("KVM_GET_SUPPORTED_CPUID");
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return fail("KVM_CREATE_VM");
	unsigned char *ram = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED)
		return fail("mmap");
	ram[0] = 0xe6; /* out %al, $0x80 */
	ram[1] = 0x80;
	/* The slot before the irqchip and PIT, as vigil does: after them a
	 * new slot waits out KVM's SRCU readers (milliseconds of wall time). */
	struct kvm_userspace_memory_region r = { .slot = 0, .memory_size = MEM, .userspace_addr = (unsigned long)ram };
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return fail("KVM_SET_USER_MEMORY_REGION");
	if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0 || ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
		return fail("KVM_SET_TSS_ADDR/CREATE_IRQCHIP");
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	if (ioctl(vm, KVM_CREATE_PIT2, &pit) < 0)
		return fail("KVM_CREATE_PIT2");
	int cpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (cpu < 0 || run_size <= 0 || ioctl(cpu, KVM_SET_CPUID2, c) < 0)
		return fail("KVM_CREATE_VCPU/SET_CPUID2");
	struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, cpu, 0);
	if (run == MAP_FAILED)
		return fail("mmap run");
	struct kvm_sregs s;
	if (ioctl(cpu, KVM_GET_SREGS, &s) < 0)
		return fail("KVM_GET_SREGS");
	s.cs.base = 0;
	s.cs.selector = 0;
	if (ioctl(cpu, KVM_SET_SREGS, &s) < 0)
		return fail("KVM_SET_SREGS");
	struct kvm_regs regs = { .rip = 0, .rflags = 2 };
	if (ioctl(cpu, KVM_SET_REGS, &regs) < 0)
		return fail("KVM_SET_REGS");
	if (ioctl(cpu, KVM_RUN, 0) < 0)
		return fail("KVM_RUN");
	return run->exit_reason == KVM_EXIT_IO ? 0 : 2;
}
