/* The exit dispatch: every VM exit of every vCPU, from any backend, passes
 * through exit_dispatch(). Order of work for an access: count it, ask the
 * policy, carry out what it decided — provide (the device handler),
 * redirect (a fixed value, or another address), deny (reads see all ones,
 * writes are dropped; an MSR gets #GP) — and, when someone listens, hand
 * the event to the trace and audit rings (core/event.h). */
#include "core/exit.h"

#include <string.h>

#include "core/event.h"
#include "core/le.h"
#include "core/vm.h"

/* The trace and audit record of one exit; only built when someone listens. */
static void emit(struct vm *vm, unsigned cpu, enum vevent_kind kind, enum policy_resource res, uint64_t addr,
		 uint64_t value, uint32_t len, bool write, const char *device, const struct policy_decision *d)
{
	struct vevent e = {
		.kind = (uint16_t)kind,
		.vcpu = (uint16_t)cpu,
		.len = (uint8_t)len,
		.write = write,
		.resource = (uint8_t)res,
		.count = 1,
		.addr = addr,
		.value = value,
		.device = device,
	};
	if (d) {
		e.verdict = (uint8_t)d->verdict;
		e.enforced = d->enforced;
		e.audit = d->audit;
		if (d->r) {
			e.has_rule = 1;
			memcpy(e.rule, d->r->id, sizeof(e.rule));
		}
	}
	ev_emit(vm->ev, &e);
}

/* A denied read sees all ones. `len` is 1, 2, 4 or 8 (access_len_ok):
 * constant-size stores the compiler inlines, not a memset call per exit. */
static inline void read_ones(uint8_t *data, uint32_t len)
{
	switch (len) {
	case 1: memset(data, 0xff, 1); break;
	case 2: memset(data, 0xff, 2); break;
	case 4: memset(data, 0xff, 4); break;
	default: memset(data, 0xff, 8); break;
	}
}

/* A redirect of a port or MMIO access: to a fixed value, or to the same
 * offset in another range (which must be claimed; else it reads as a deny). */
static __attribute__((noinline)) void redirect_access(const struct bus *bus, const struct policy_rule *r,
						      uint64_t addr, uint8_t *data, uint32_t len, bool write)
{
	if (r->has_to) {
		/* The same offset in the target range. An access that starts
		 * below the rule's range (it only straddles into it) has no such
		 * offset: it reads as denied rather than wrapping. */
		for (unsigned i = 0; i < r->nranges; i++) {
			if (addr < r->ranges[i].first || addr > r->ranges[i].last)
				continue;
			uint64_t to = r->to + (addr - r->ranges[i].first);
			const struct bus_range *t = to >= r->to ? bus_find(bus, to, len) : NULL;
			if (t) {
				t->fn(t->dev, to - t->base, data, len, write);
				return;
			}
			break;
		}
	} else if (r->has_value) {
		if (!write)
			le_store(data, len, r->value);
		return;
	}
	if (!write)
		read_ones(data, len);
}

/* The trace / audit record of one access, once someone listens. */
static __attribute__((noinline, cold)) void emit_access(struct vm *vm, unsigned cpu, enum policy_space space,
							 const struct bus_range *r, uint64_t addr, const uint8_t *data,
							 uint32_t len, bool write, const struct policy_decision *d)
{
	emit(vm, cpu, space == POLICY_PIO ? EV_PIO : EV_MMIO, space == POLICY_PIO ? POL_RES_PIO : POL_RES_MMIO, addr,
	     le_load(data, len), len, write, r ? bus_owner(r, addr, len) : NULL, d);
}

/* One access, on every port and MMIO exit: count it, ask the policy, carry
 * out what it decided, trace it if anyone listens. Rare work (a redirect,
 * the trace) is out of line so this stays short. */
static inline __attribute__((always_inline)) void access_one(struct vm *vm, unsigned cpu, enum policy_space space,
							      const struct bus *bus, uint64_t addr, uint8_t *data,
							      uint32_t len, bool write)
{
	const struct bus_range *r = bus_find(bus, addr, len);
	const struct policy *p = policy_enter_vcpu(&vm->policy, cpu);
	struct policy_decision d;

	policy_decide_access(p, space, bus_policy_addr(r, addr), len, write, r != NULL, &d);
	enum policy_verdict eff = policy_effect(&d);
	if (eff == POLICY_PROVIDE && !r)
		eff = POLICY_DENY; /* permissive mode cannot invent a device */
	mon_count_access(&vm->stats[cpu], space, addr, eff == POLICY_DENY);
	if (eff == POLICY_DENY) {
		if (!write)
			read_ones(data, len);
	} else if (__builtin_expect(eff == POLICY_PROVIDE, 1)) {
		r->fn(r->dev, addr - r->base, data, len, write);
	} else {
		redirect_access(bus, d.r, addr, data, len, write);
	}
	if (__builtin_expect(ev_wanted(vm->ev, d.audit), 0))
		emit_access(vm, cpu, space, r, addr, data, len, write, &d);
	policy_leave_vcpu(&vm->policy, cpu);
}

static bool access_len_ok(uint32_t len)
{
	return len == 1 || len == 2 || len == 4 || len == 8;
}

/* REP INS/OUTS: one access per element, the policy sees each. */
static __attribute__((noinline)) void access_rep(struct vm *vm, unsigned cpu, const struct vexit *ex)
{
	for (uint32_t i = 0; i < ex->count; i++)
		access_one(vm, cpu, POLICY_PIO, &vm->pio, ex->addr, ex->data + (size_t)i * ex->len, ex->len,
			   ex->write);
}

/* An MMIO access of 3, 5, 6 or 7 bytes: KVM splits a guest access that
 * crosses a page at the page's end (and one wider than 8 bytes into 8-byte
 * pieces), so the piece before or after the edge can be any length up to
 * 8. Devices take 1, 2, 4 or 8: such a piece goes byte by byte, each
 * byte asked of the policy like any access. */
static __attribute__((noinline, cold)) void access_bytes(struct vm *vm, unsigned cpu, const struct vexit *ex)
{
	for (uint32_t i = 0; i < ex->len; i++)
		access_one(vm, cpu, POLICY_MMIO, &vm->mmio, ex->addr + i, ex->data + i, 1, ex->write);
}

static inline enum vm_stop dispatch_access(struct vm *vm, unsigned cpu, const struct vexit *ex)
{
	enum policy_space space = ex->reason == VEXIT_IO ? POLICY_PIO : POLICY_MMIO;

	/* The backend decoded these from the hardware, but a bad length here
	 * would let a handler run past `data`: refuse rather than trust. */
	if (__builtin_expect(!access_len_ok(ex->len) || ex->data == NULL, 0)) {
		if (space == POLICY_MMIO && ex->data && ex->len > 0 && ex->len < 8) {
			access_bytes(vm, cpu, ex);
			return VM_STOP_NONE;
		}
		return VM_STOP_CRASH;
	}
	/* A count of 0 is one access; MMIO has no REP form. */
	if (__builtin_expect(space == POLICY_PIO && ex->count > 1, 0))
		access_rep(vm, cpu, ex);
	else
		access_one(vm, cpu, space, space == POLICY_PIO ? &vm->pio : &vm->mmio, ex->addr, ex->data, ex->len,
			   ex->write);
	return VM_STOP_NONE;
}

/* An MSR the backend's filter handed over: deny is #GP, redirect reads
 * the rule's value and drops writes, provide is the hypervisor's own
 * handling (hv.msr). */
static enum vm_stop dispatch_msr(struct vm *vm, unsigned cpu, struct vexit *ex)
{
	if (!ex->data || !ex->fault)
		return VM_STOP_CRASH;
	uint32_t index = (uint32_t)ex->addr;
	uint64_t value = le_load(ex->data, 8);
	const struct policy *p = policy_enter_vcpu(&vm->policy, cpu);
	struct policy_decision d;

	policy_decide_msr(p, index, ex->write, &d);
	enum policy_verdict eff = policy_effect(&d);
	*ex->fault = 0;
	switch (eff) {
	case POLICY_PROVIDE: {
		struct hv_ops *hv = &vm->vcpus.hv;
		if (!hv->msr || hv->msr(hv->hv, cpu, index, &value, ex->write) < 0)
			*ex->fault = 1;
		else if (!ex->write)
			le_store(ex->data, 8, value);
		break;
	}
	case POLICY_REDIRECT:
		if (!ex->write)
			le_store(ex->data, 8, value = d.r && d.r->has_value ? d.r->value : 0);
		break;
	case POLICY_DENY:
		*ex->fault = 1;
		break;
	}
	mon_count_access(&vm->stats[cpu], POLICY_MSR, index, eff == POLICY_DENY);
	if (__builtin_expect(ev_wanted(vm->ev, d.audit), 0))
		emit(vm, cpu, EV_MSR, POL_RES_MSR, index, value, 8, ex->write, NULL, &d);
	policy_leave_vcpu(&vm->policy, cpu);
	return VM_STOP_NONE;
}

/* Exits that carry no access: traced when someone listens. */
static void emit_plain(struct vm *vm, unsigned cpu, const struct vexit *ex)
{
	static const uint8_t kinds[VEXIT__COUNT] = {
		[VEXIT_HLT] = EV_HLT,
		[VEXIT_SHUTDOWN] = EV_SHUTDOWN,
		[VEXIT_SYSTEM_EVENT] = EV_SYSTEM_EVENT,
		[VEXIT_INTERNAL_ERROR] = EV_ERROR,
		[VEXIT_FAIL_ENTRY] = EV_ERROR,
		[VEXIT_INTR] = EV_INTR,
		[VEXIT_DEBUG] = EV_DEBUG,
		[VEXIT_UNKNOWN] = EV_ERROR,
	};
	if (!ev_wanted(vm->ev, false))
		return;
	unsigned r = (unsigned)ex->reason < VEXIT__COUNT ? ex->reason : VEXIT_UNKNOWN;
	struct vevent e = {
		.kind = kinds[r],
		.vcpu = (uint16_t)cpu,
		.count = 1,
		.addr = r == VEXIT_DEBUG ? ex->pc : 0,
		.value = r == VEXIT_SYSTEM_EVENT ? (uint64_t)ex->event : 0,
		.extra = r == VEXIT_DEBUG ? ex->dr6 : ex->hw_reason,
	};
	ev_emit(vm->ev, &e);
}

/* Everything but a port or MMIO access. */
static __attribute__((noinline)) enum vm_stop dispatch_other(struct vm *vm, unsigned cpu, struct vexit *ex)
{
	mon_count_exit(&vm->stats[cpu], ex->reason);
	if (ex->reason == VEXIT_MSR)
		return dispatch_msr(vm, cpu, ex);
	emit_plain(vm, cpu, ex);
	switch (ex->reason) {
	case VEXIT_INTR:
	case VEXIT_HLT:
		return VM_STOP_NONE;
	case VEXIT_DEBUG:
		return vm->on_debug ? vm->on_debug(vm->on_debug_ctx, cpu, ex) : VM_STOP_NONE;
	case VEXIT_SYSTEM_EVENT:
		switch (ex->event) {
		case VEXIT_EVENT_POWEROFF: return VM_STOP_POWEROFF;
		case VEXIT_EVENT_RESET: return VM_STOP_RESET;
		case VEXIT_EVENT_CRASH: return VM_STOP_CRASH;
		}
		return VM_STOP_CRASH;
	default:
		break;
	}
	return VM_STOP_CRASH;
}

_Static_assert(VEXIT_IO == 0 && VEXIT_MMIO == 1, "exit_dispatch tests both by one compare");

enum vm_stop exit_dispatch(struct vm *vm, unsigned cpu, struct vexit *ex)
{
	if (__builtin_expect((unsigned)ex->reason <= VEXIT_MMIO, 1)) {
		mon_count_exit(&vm->stats[cpu], ex->reason);
		return dispatch_access(vm, cpu, ex);
	}
	return dispatch_other(vm, cpu, ex);
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
		[VEXIT_MSR] = "msr",
		[VEXIT_DEBUG] = "debug",
		[VEXIT_UNKNOWN] = "unknown",
	};
	return r < VEXIT__COUNT ? names[r] : "unknown";
}

bool exit_judge_doorbell(struct vm *vm, uint64_t gpa, uint32_t len)
{
	const struct policy *p = policy_enter(&vm->policy);
	struct policy_decision d;
	uint8_t data[8] = { 0 };

	policy_decide_access(p, POLICY_MMIO, gpa, len, true, true, &d);
	bool provide = policy_effect(&d) == POLICY_PROVIDE;
	if (ev_wanted(vm->ev, d.audit)) {
		const struct bus_range *r = bus_find(&vm->mmio, gpa, len);
		emit_access(vm, EV_NO_VCPU, POLICY_MMIO, r, gpa, data, len, true, &d);
	}
	policy_leave(&vm->policy);
	return provide;
}
