/* kvm_exit — the decoding of a KVM exit into a struct vexit (core/exit.h),
 * split so that the common exit is decoded inline in the vCPU's run call
 * (kvm_vcpu.c's hv_run) and every other one by kvm_exit.c. Both halves are
 * what kvm_translate_exit() runs, which the unit tests and the fuzzer
 * (fuzz/fuzz_exit.c) feed with run areas a confused kernel could leave. */
#ifndef VIGIL_KVM_KVM_EXIT_H
#define VIGIL_KVM_KVM_EXIT_H

#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "core/exit.h"

/* Every exit but an in-bounds port I/O one (kvm_exit.c). */
void kvm_translate_exit_slow(struct kvm_run *run, struct vexit *ex);

/* Port I/O first and without clearing the whole record: it is most of all
 * exits, and nothing reads an IO exit's other fields. exit_dispatch takes
 * a count of 0 as one access, so the bound covers that one too. */
static inline void kvm_translate_exit_inline(struct kvm_run *run, size_t run_size, struct vexit *ex)
{
	if (__builtin_expect(run->exit_reason == KVM_EXIT_IO, 1)) {
		uint32_t count = run->io.count;
		uint64_t off = run->io.data_offset;
		uint64_t bytes = (uint64_t)run->io.size * (count ? count : 1);
		if (__builtin_expect(off <= run_size && bytes <= run_size - off, 1)) {
			ex->reason = VEXIT_IO;
			ex->write = run->io.direction == KVM_EXIT_IO_OUT;
			ex->len = run->io.size;
			ex->count = count;
			ex->addr = run->io.port;
			ex->data = (uint8_t *)run + off;
			ex->fault = NULL;
			return;
		}
	}
	kvm_translate_exit_slow(run, ex);
}

#endif
