/* trace_emit — what one event costs the thread that emits it (a vCPU on the
 * exit path), natively: ns per ev_emit() (building the record included)
 * with the trace off, filtered out, pushed into the ring, and audited with
 * coalescing. Events go in half a ring at a time, timed, and the ring is
 * drained in between, untimed: a push never meets a full ring, so this is
 * the cost of a record that is kept. Built by `make bench-emit`; run by
 * bench/run.sh native. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/event.h"
#include "host/clock.h"

#define N 4000000

static uint64_t drained;

static void on_record(void *ctx, const struct vevent *e)
{
	(void)ctx;
	(void)e;
	drained++;
}

static const struct ev_drain_ops ops = { .record = on_record };

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static double run(struct evsink *s, bool audit)
{
	uint64_t spent = 0;
	for (unsigned i = 0; i < N;) {
		uint64_t t0 = now_ns();
		for (unsigned k = 0; k < EV_DEFAULT_RING / 2; k++, i++) {
			struct vevent e = { .kind = EV_PIO, .vcpu = 0, .len = 1, .addr = 0x1234, .value = i,
					    .audit = audit, .verdict = POLICY_DENY, .enforced = 1, .count = 1 };
			ev_emit(s, &e);
		}
		spent += now_ns() - t0;
		ev_drain(s, false, &ops, NULL);
	}
	return (double)spent / N;
}

int main(void)
{
	struct evsink_config c = { .clock = host_clock() };
	struct evsink *s = ev_sink_new(&c);
	struct evfilter f = { .kinds = 1u << EV_MMIO };
	struct ev_stats st;

	printf("ns per event on the emitting thread (%d events each)\n", N);
	printf("  %-34s %6.1f\n", "trace and audit off", run(s, true));
	ev_set_trace(s, true);
	ev_set_filter(s, &f);
	printf("  %-34s %6.1f\n", "trace on, event filtered out", run(s, false));
	ev_set_filter(s, NULL);
	printf("  %-34s %6.1f\n", "trace on, event into the ring", run(s, false));
	ev_set_trace(s, false);
	ev_set_audit(s, true);
	printf("  %-34s %6.1f\n", "audit on, identical events coalesced", run(s, true));
	ev_drain(s, true, &ops, NULL);
	ev_sink_stats(s, &st);
	printf("  (queued %" PRIu64 ", lost to a full ring %" PRIu64 ", coalesced %" PRIu64 ")\n", st.events, st.lost,
	       st.coalesced);
	ev_sink_free(s);
	return 0;
}
