/* kvm_exit — decoding the exit KVM left in a vCPU's run area into the
 * portable struct vexit (core/exit.h). Its own file so the fuzzer
 * (fuzz/fuzz_exit.c) can feed it run areas without a KVM. */
#include <string.h>

#include "core/exit.h"
#include "kvm/kvm_exit.h"
#include "kvm/kvm_internal.h"

/* Translates the exit KVM left in `run`; data offsets a confused kernel got
 * wrong become an internal error rather than a pointer past the run area. */
void kvm_translate_exit(struct kvm_run *run, size_t run_size, struct vexit *ex)
{
	kvm_translate_exit_inline(run, run_size, ex);
}

/* The rare exits, and a port I/O exit whose data lies past the run area. */
void kvm_translate_exit_slow(struct kvm_run *run, struct vexit *ex)
{
	memset(ex, 0, sizeof(*ex));
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		ex->reason = VEXIT_INTERNAL_ERROR; /* data past the run area */
		return;
	case KVM_EXIT_MMIO:
		ex->reason = VEXIT_MMIO;
		ex->write = run->mmio.is_write;
		ex->len = run->mmio.len;
		ex->count = 1;
		ex->addr = run->mmio.phys_addr;
		ex->data = run->mmio.data;
		return;
	case KVM_EXIT_HLT:
		ex->reason = VEXIT_HLT;
		return;
	case KVM_EXIT_SHUTDOWN:
		ex->reason = VEXIT_SHUTDOWN;
		return;
	case KVM_EXIT_SYSTEM_EVENT:
		ex->reason = VEXIT_SYSTEM_EVENT;
		ex->event = run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN ? VEXIT_EVENT_POWEROFF
			  : run->system_event.type == KVM_SYSTEM_EVENT_RESET  ? VEXIT_EVENT_RESET
									       : VEXIT_EVENT_CRASH;
		return;
	case KVM_EXIT_INTERNAL_ERROR:
		ex->reason = VEXIT_INTERNAL_ERROR;
		ex->hw_reason = run->internal.suberror;
		return;
	case KVM_EXIT_FAIL_ENTRY:
		ex->reason = VEXIT_FAIL_ENTRY;
		ex->hw_reason = run->fail_entry.hardware_entry_failure_reason;
		return;
	case KVM_EXIT_INTR:
		ex->reason = VEXIT_INTR;
		return;
	case KVM_EXIT_DEBUG:
		ex->reason = VEXIT_DEBUG;
		ex->pc = run->debug.arch.pc;
		ex->dr6 = run->debug.arch.dr6;
		ex->exception = run->debug.arch.exception;
		return;
	case KVM_EXIT_X86_RDMSR:
	case KVM_EXIT_X86_WRMSR:
		/* Only the filter's exits were enabled; the policy answers
		 * through data (a read's value) and error (#GP). */
		ex->reason = VEXIT_MSR;
		ex->write = run->exit_reason == KVM_EXIT_X86_WRMSR;
		ex->addr = run->msr.index;
		ex->len = 8;
		ex->count = 1;
		ex->data = (uint8_t *)&run->msr.data;
		ex->fault = &run->msr.error;
		return;
	default:
		ex->reason = VEXIT_UNKNOWN;
		ex->hw_reason = run->exit_reason;
		return;
	}
}
