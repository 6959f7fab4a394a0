/* trace — see trace.h. The records' fields and names are the hosted
 * writer's (src/vmm/trace.c: format_trace, format_audit), so a reader of
 * either parses both; the audit timestamp is the machine's CMOS clock. */
#include "metal/trace.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "core/devreq.h"
#include "core/event.h"
#include "core/policy.h"
#include "core/vm.h"
#include "metal/metal.h"

#define LINE_MAX_LEN 1024

static struct evsink *sink;
static int64_t wall0;
static bool tracing;

struct line {
	char *p;
	size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void put(struct line *l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(l->p + l->len, l->cap - l->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->len = l->len + (size_t)n < l->cap ? l->len + (size_t)n : l->cap - 1;
}

static void put_str(struct line *l, const char *key, const char *s)
{
	put(l, ",\"%s\":", key);
	if (!s) {
		put(l, "null");
		return;
	}
	put(l, "\"");
	for (size_t i = 0; s[i] && i < 128; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			put(l, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			put(l, "\\u%04x", c);
		else
			put(l, "%c", c);
	}
	put(l, "\"");
}

static void put_hex(struct line *l, const char *key, uint64_t v)
{
	put(l, ",\"%s\":\"0x%" PRIx64 "\"", key, v);
}

static const char *req_name(unsigned k)
{
	static const char *const names[] = { "read", "write", "flush", "other" };
	return k < 4 ? names[k] : "other";
}

static void put_decision(struct line *l, const struct vevent *e)
{
	put(l, ",\"verdict\":\"%s\"", policy_verdict_name(e->verdict));
	if (e->has_rule)
		put_str(l, "rule", e->rule);
	if (!e->enforced)
		put(l, ",\"enforced\":false");
}

static void format_trace(struct line *l, const struct vevent *e)
{
	put(l, "{\"t\":%" PRIu64, e->t);
	if (e->vcpu != EV_NO_VCPU)
		put(l, ",\"vcpu\":%u", (unsigned)e->vcpu);
	put(l, ",\"kind\":\"%s\"", ev_kind_name(e->kind));
	switch (e->kind) {
	case EV_PIO:
	case EV_MMIO:
	case EV_MSR:
		put_hex(l, "addr", e->addr);
		put(l, ",\"len\":%u,\"write\":%s", (unsigned)e->len, e->write ? "true" : "false");
		put_hex(l, "value", e->value);
		if (e->kind != EV_MSR)
			put_str(l, "device", e->device);
		put_decision(l, e);
		break;
	case EV_CPUID:
		put_hex(l, "addr", e->addr);
		put_hex(l, "subleaf", e->extra);
		put_decision(l, e);
		break;
	case EV_DEVREQ:
		put_str(l, "device", e->device);
		put(l, ",\"request\":\"%s\"", req_name(e->write));
		if (e->addr != EV_NO_SECTOR)
			put(l, ",\"sector\":%" PRIu64 ",\"sectors\":%" PRIu64, e->addr, e->extra);
		put(l, ",\"bytes\":%" PRIu64, e->value);
		put_decision(l, e);
		break;
	case EV_RTC:
		put(l, ",\"value\":%" PRId64 ",\"offset_s\":%" PRId64, (int64_t)e->addr, (int64_t)e->extra);
		put_decision(l, e);
		break;
	case EV_SYSTEM_EVENT:
		put_hex(l, "value", e->value);
		break;
	case EV_DEBUG:
		put_hex(l, "addr", e->addr);
		put_hex(l, "value", e->extra);
		break;
	case EV_ERROR:
		put_hex(l, "value", e->extra);
		break;
	default:
		break;
	}
	put(l, "}");
}

static void format_audit(struct line *l, const struct vevent *e)
{
	time_t s = (time_t)(wall0 + (int64_t)(e->t / 1000000000u));
	struct tm tm;
	gmtime_r(&s, &tm);
	put(l, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%09uZ\"", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(e->t % 1000000000u));
	put_str(l, "vm", "vigil-metal");
	put_str(l, "rule", e->has_rule ? e->rule : "default");
	put_str(l, "resource", e->resource < POL_RES__COUNT ? policy_resource_name(e->resource) : "device");
	put(l, ",\"verdict\":\"%s\",\"enforced\":%s", policy_verdict_name(e->verdict), e->enforced ? "true" : "false");
	if (e->vcpu != EV_NO_VCPU)
		put(l, ",\"vcpu\":%u", (unsigned)e->vcpu);
	const char *access = e->write ? "write" : "read";
	switch (e->kind) {
	case EV_PIO:
	case EV_MMIO:
	case EV_MSR:
		put_hex(l, e->kind == EV_PIO ? "port" : e->kind == EV_MMIO ? "address" : "msr", e->addr);
		put(l, ",\"access\":\"%s\"", access);
		put_hex(l, "value", e->value);
		if (e->kind != EV_MSR)
			put_str(l, "device", e->device);
		break;
	case EV_CPUID:
		put_hex(l, "leaf", e->addr);
		put_hex(l, "subleaf", e->extra);
		break;
	case EV_DEVREQ:
		put_str(l, e->resource == POL_RES_DISK ? "drive" : "device", e->device);
		if (e->addr != EV_NO_SECTOR)
			put(l, ",\"sector\":%" PRIu64 ",\"sectors\":%" PRIu64, e->addr, e->extra);
		put(l, ",\"access\":\"%s\",\"bytes\":%" PRIu64, req_name(e->write), e->value);
		break;
	case EV_RTC:
		put(l, ",\"offset_s\":%" PRId64, (int64_t)e->extra);
		break;
	default:
		break;
	}
	put(l, ",\"count\":%u}", (unsigned)e->count);
}

static void record(void *ctx, const struct vevent *e)
{
	(void)ctx;
	char buf[LINE_MAX_LEN];
	if (e->dest & EV_TO_TRACE) {
		struct line l = { buf, 0, sizeof(buf) };
		format_trace(&l, e);
		metal_log("trace %s", buf);
	}
	if (e->dest & EV_TO_AUDIT) {
		struct line l = { buf, 0, sizeof(buf) };
		format_audit(&l, e);
		metal_log("audit %s", buf);
	}
}

static void lost(void *ctx, uint64_t t, const char *ring, unsigned dest, uint64_t count)
{
	(void)ctx;
	metal_log("trace: ring %s lost %llu record(s) for the %s at t=%llu", ring, (unsigned long long)count,
		  dest & EV_TO_AUDIT ? "audit log" : "trace", (unsigned long long)t);
}

static const struct ev_drain_ops drain_ops = { .record = record, .lost = lost };

static uint64_t tsc_mono(void *ctx)
{
	(void)ctx;
	return metal_now_ns();
}

static int64_t cmos_wall(void *ctx)
{
	(void)ctx;
	return metal_wall_s();
}

int metal_trace_start(struct vm *vm, bool trace, char *err, size_t errlen)
{
	struct evsink_config c = { .clock = { .mono_ns = tsc_mono, .wall_s = cmos_wall } };
	sink = ev_sink_new(&c);
	if (!sink) {
		snprintf(err, errlen, "out of memory for the trace");
		return -1;
	}
	ev_set_trace(sink, trace);
	tracing = trace;
	ev_set_audit(sink, true);
	vm->ev = sink;
	return 0;
}

void metal_trace_mark_start(void)
{
	wall0 = metal_wall_s();
	if (sink)
		ev_sink_mark_start(sink);
}

void metal_trace_poll(void)
{
	/* With --trace, as it happens; audit records only once a ring fills
	 * (their coalescing window then mostly passed) and at the end. */
	if (sink && (tracing || ev_sink_needs_drain(sink)))
		ev_drain(sink, false, &drain_ops, NULL);
}

void metal_trace_finish(void)
{
	if (!sink)
		return;
	ev_drain(sink, true, &drain_ops, NULL);
	struct ev_stats st;
	ev_sink_stats(sink, &st);
	if (st.lost)
		metal_log("trace: events=%llu lost=%llu coalesced=%llu", (unsigned long long)st.events,
			  (unsigned long long)st.lost, (unsigned long long)st.coalesced);
}
