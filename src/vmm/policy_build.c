#include "vmm/policy_build.h"

#include <string.h>

#include "core/event.h"

static bool covers_writes(const struct policy_rule *r)
{
	return r->access == POL_ACC_ANY || r->access == POL_ACC_WRITE;
}

const char *policy_build_overlay(const struct policy *p, const char *drive, bool *only)
{
	const struct policy_spec *s = policy_spec_of(p);
	const char *overlay = NULL;
	bool decided = false;

	*only = false;
	for (unsigned i = 0; i < s->nrules; i++) {
		const struct policy_rule *r = &s->rules[i];
		if (r->resource != POL_RES_DISK || strcmp(r->drive, drive) != 0)
			continue;
		if (!decided && covers_writes(r)) {
			/* The first rule for the drive's writes: all of them? */
			*only = r->verdict == POLICY_REDIRECT && r->nranges == 0 && r->overlay &&
				s->mode == POLICY_ENFORCE;
			decided = true;
		}
		if (!overlay && r->verdict == POLICY_REDIRECT && r->overlay)
			overlay = r->overlay;
	}
	if (!overlay)
		*only = false;
	return overlay;
}

/* A decision taken once, at build (no vCPU asked): its record. */
static void emit_build_decision(struct evsink *ev, const struct policy_rule *r, bool enforced, enum vevent_kind kind,
				uint64_t addr, uint64_t extra, const char *device)
{
	if (!ev_wanted(ev, r->audit))
		return;
	struct vevent e = {
		.kind = (uint16_t)kind,
		.vcpu = EV_NO_VCPU,
		.verdict = (uint8_t)r->verdict,
		.resource = (uint8_t)r->resource,
		.has_rule = 1,
		.enforced = enforced,
		.audit = r->audit,
		.count = 1,
		.addr = addr,
		.extra = extra,
		.device = device,
	};
	memcpy(e.rule, r->id, sizeof(e.rule));
	ev_emit(ev, &e);
}

bool policy_build_rtc(const struct policy *p, int64_t host_now_s, int64_t *offset_s, struct evsink *ev)
{
	const struct policy_rule *r = policy_rtc(p);
	if (!r)
		return false;
	bool enforced = policy_spec_of(p)->mode == POLICY_ENFORCE;
	int64_t off = r->rtc_kind == POL_RTC_EPOCH ? r->epoch_s - host_now_s : r->offset_s;

	/* The decision, once: the guest's clock for the whole run. */
	emit_build_decision(ev, r, enforced, EV_RTC, (uint64_t)(host_now_s + off) /* the guest's time now */,
			    (uint64_t)off, "rtc");
	/* Permissive mode computes, audits, and provides: the host's clock. */
	if (r->verdict != POLICY_REDIRECT || !enforced)
		return false;
	*offset_s = off;
	return true;
}

void policy_build_cpuid(const struct policy *p, struct evsink *ev)
{
	const struct policy_spec *s = policy_spec_of(p);

	for (unsigned i = 0; i < s->nrules; i++) {
		const struct policy_rule *r = &s->rules[i];
		if (r->resource == POL_RES_CPUID)
			emit_build_decision(ev, r, s->mode == POLICY_ENFORCE, EV_CPUID, r->leaf,
					    r->has_subleaf ? r->subleaf : 0, NULL);
	}
}
