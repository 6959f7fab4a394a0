/* trace — see trace.h. The records are the hosted writer's own
 * (core/event_json.c), so a reader of either parses both; the audit
 * timestamp is the machine's CMOS clock. */
#include "metal/trace.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "core/devreq.h"
#include "core/event.h"
#include "core/event_json.h"
#include "core/policy.h"
#include "core/vm.h"
#include "metal/metal.h"

#define LINE_MAX_LEN 1024

static struct evsink *sink;
static int64_t wall0;
static bool tracing;

static void record(void *ctx, const struct vevent *e)
{
	(void)ctx;
	char buf[LINE_MAX_LEN];
	if (e->dest & EV_TO_TRACE) {
		ev_json_trace(buf, sizeof(buf), e);
		metal_log("trace %s", buf);
	}
	if (e->dest & EV_TO_AUDIT) {
		struct ev_json_clock c = { .wall0_s = wall0, .vm_id = "vigil-metal" };
		ev_json_audit(buf, sizeof(buf), &c, e);
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

int metal_trace_start(struct vm *vm, bool trace, char *err, size_t errlen)
{
	struct evsink_config c = { .clock = metal_vclock() };
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
