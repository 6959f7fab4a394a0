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

bool policy_build_rtc(const struct policy *p, int64_t host_now_s, int64_t *offset_s, struct evsink *ev)
{
	const struct policy_rule *r = policy_rtc(p);
	if (!r)
		return false;
	bool enforced = policy_spec_of(p)->mode == POLICY_ENFORCE;
	int64_t off = r->rtc_kind == POL_RTC_EPOCH ? r->epoch_s - host_now_s : r->offset_s;

	/* The decision, once: the guest's clock for the whole run. */
	if (ev_wanted(ev, r->audit)) {
		struct vevent e = {
			.kind = EV_RTC,
			.vcpu = EV_NO_VCPU,
			.verdict = (uint8_t)r->verdict,
			.resource = POL_RES_RTC,
			.has_rule = 1,
			.enforced = enforced,
			.audit = r->audit,
			.count = 1,
			.addr = (uint64_t)(host_now_s + off), /* the guest's time now */
			.extra = (uint64_t)off,
			.device = "rtc",
		};
		memcpy(e.rule, r->id, sizeof(e.rule));
		ev_emit(ev, &e);
	}
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
		if (r->resource != POL_RES_CPUID || !ev_wanted(ev, r->audit))
			continue;
		struct vevent e = {
			.kind = EV_CPUID,
			.vcpu = EV_NO_VCPU,
			.verdict = (uint8_t)r->verdict,
			.resource = POL_RES_CPUID,
			.has_rule = 1,
			.enforced = s->mode == POLICY_ENFORCE,
			.audit = r->audit,
			.count = 1,
			.addr = r->leaf,
			.extra = r->has_subleaf ? r->subleaf : 0,
			.device = NULL,
		};
		memcpy(e.rule, r->id, sizeof(e.rule));
		ev_emit(ev, &e);
	}
}
