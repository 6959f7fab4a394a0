/* The exit dispatch: every VM exit of every vCPU, from any backend, passes
 * through exit_dispatch(). Order of work for an access: count it, ask the
 * policy, then provide it (device handler) or deny it (reads see all ones,
 * writes are dropped). */
#include "core/exit.h"

#include <inttypes.h>
#include <string.h>

#include "core/vm.h"

/* --trace: what was accessed, how, the value, who served it, the verdict. */
static void trace_access(struct vm *vm, unsigned cpu, enum policy_space space, uint64_t addr,
			 const uint8_t *data, uint32_t len, bool write, const struct bus_range *r,
			 enum policy_verdict v)
{
	uint64_t val = 0;
	for (uint32_t i = 0; i < len; i++)
		val |= (uint64_t)data[i] << (8 * i);
	fprintf(vm->trace, "vcpu%u %s %s 0x%" PRIx64 " len %u = 0x%" PRIx64 " %s %s\n", cpu,
		space == POLICY_PIO ? "io" : "mmio", write ? "write" : "read", addr, len, val,
		r ? bus_owner(r, addr, len) : "(unclaimed)", v == POLICY_DENY ? "denied" : "provided");
}

static void access_one(struct vm *vm, unsigned cpu, enum policy_space space, const struct bus *bus,
		       uint64_t addr, uint8_t *data, uint32_t len, bool write)
{
	const struct bus_range *r = bus_find(bus, addr, len);
	enum policy_verdict v = policy_decide(&vm->policy, space, addr, len, write, r);

	mon_count_access(&vm->stats[cpu], space, addr, v == POLICY_DENY);
	if (v == POLICY_DENY) {
		if (!write)
			memset(data, 0xff, len);
	} else {
		r->fn(r->dev, addr - r->base, data, len, write);
	}
	if (__builtin_expect(vm->trace != NULL, 0))
		trace_access(vm, cpu, space, addr, data, len, write, r, v);
}

static bool access_len_ok(uint32_t len)
{
	return len == 1 || len == 2 || len == 4 || len == 8;
}

static enum vm_stop dispatch_access(struct vm *vm, unsigned cpu, const struct vexit *ex)
{
	enum policy_space space = ex->reason == VEXIT_IO ? POLICY_PIO : POLICY_MMIO;
	const struct bus *bus = space == POLICY_PIO ? &vm->pio : &vm->mmio;

	/* The backend decoded these from the hardware, but a bad length here
	 * would let a handler run past `data`: refuse rather than trust. */
	if (!access_len_ok(ex->len) || ex->data == NULL)
		return VM_STOP_CRASH;
	uint32_t count = ex->count ? ex->count : 1;
	if (space == POLICY_MMIO)
		count = 1;
	/* REP INS/OUTS: one access per element, the policy sees each. */
	for (uint32_t i = 0; i < count; i++)
		access_one(vm, cpu, space, bus, ex->addr, ex->data + (size_t)i * ex->len, ex->len, ex->write);
	return VM_STOP_NONE;
}

enum vm_stop exit_dispatch(struct vm *vm, unsigned cpu, const struct vexit *ex)
{
	struct vcpu_stats *st = &vm->stats[cpu];

	mon_count_exit(st, ex->reason);
	switch (ex->reason) {
	case VEXIT_IO:
	case VEXIT_MMIO:
		return dispatch_access(vm, cpu, ex);
	case VEXIT_INTR:
	case VEXIT_HLT:
		return VM_STOP_NONE;
	case VEXIT_SYSTEM_EVENT:
		switch (ex->event) {
		case VEXIT_EVENT_POWEROFF: return VM_STOP_POWEROFF;
		case VEXIT_EVENT_RESET: return VM_STOP_RESET;
		case VEXIT_EVENT_CRASH: return VM_STOP_CRASH;
		}
		return VM_STOP_CRASH;
	case VEXIT_SHUTDOWN:
	case VEXIT_INTERNAL_ERROR:
	case VEXIT_FAIL_ENTRY:
	case VEXIT_UNKNOWN:
	case VEXIT__COUNT:
		break;
	}
	return VM_STOP_CRASH;
}

const char *vexit_reason_name(enum vexit_reason r)
{
	static const char *const names[VEXIT__COUNT] = {
		[VEXIT_IO] = "io",
		[VEXIT_MMIO] = "mmio",
		[VEXIT_HLT] = "hlt",
		[VEXIT_SHUTDOWN] = "shutdown",
		[VEXIT_SYSTEM_EVENT] = "system_event",
		[VEXIT_INTERNAL_ERROR] = "internal_error",
		[VEXIT_FAIL_ENTRY] = "fail_entry",
		[VEXIT_INTR] = "intr",
		[VEXIT_UNKNOWN] = "unknown",
	};
	return r < VEXIT__COUNT ? names[r] : "unknown";
}
