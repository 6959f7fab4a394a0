/* core/event.c: the per-thread rings (one producer, one consumer, run
 * concurrently: this test is in TSAN_TESTS), exact loss counts, filters,
 * audit coalescing and the flush at the end; and --trace-filter's parser. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/devreq.h"
#include "core/event.h"
#include "vmm/trace.h"

static _Atomic uint64_t fake_now;

static uint64_t fake_mono(void *ctx)
{
	(void)ctx;
	return atomic_load(&fake_now);
}

static struct evsink *sink(unsigned ring, uint64_t window)
{
	struct evsink_config c = { .clock = { .mono_ns = fake_mono }, .ring_size = ring, .window_ns = window };
	atomic_store(&fake_now, 1000);
	struct evsink *s = ev_sink_new(&c);
	assert_non_null(s);
	return s;
}

struct got {
	unsigned n, trace, audit;
	uint64_t count_sum; /* audit counts */
	uint64_t lost_trace, lost_audit;
	uint64_t last_addr;
	bool ordered;
	struct vevent last;
};

static void on_record(void *ctx, const struct vevent *e)
{
	struct got *g = ctx;
	if (g->n && e->dest == EV_TO_TRACE && e->addr <= g->last_addr)
		g->ordered = false;
	if (e->dest == EV_TO_TRACE)
		g->last_addr = e->addr;
	g->n++;
	g->trace += e->dest == EV_TO_TRACE;
	g->audit += e->dest == EV_TO_AUDIT;
	if (e->dest == EV_TO_AUDIT)
		g->count_sum += e->count;
	g->last = *e;
}

static void on_lost(void *ctx, uint64_t t, const char *ring, unsigned dest, uint64_t n)
{
	struct got *g = ctx;
	(void)t;
	assert_non_null(ring);
	if (dest == EV_TO_AUDIT)
		g->lost_audit += n;
	else
		g->lost_trace += n;
}

static const struct ev_drain_ops ops = { on_record, on_lost };

static struct vevent pio(uint64_t addr, bool audit)
{
	return (struct vevent){ .kind = EV_PIO, .vcpu = 0, .len = 1, .addr = addr, .audit = audit,
				.verdict = POLICY_DENY, .resource = POL_RES_PIO, .enforced = 1, .count = 1 };
}

static void test_off_emits_nothing(void **state)
{
	(void)state;
	struct evsink *s = sink(16, 0);
	struct vevent e = pio(1, true);
	assert_false(ev_wanted(s, true));
	assert_false(ev_wanted(NULL, true));
	ev_emit(s, &e);
	ev_emit(NULL, &e);
	ev_set_audit(s, true);
	assert_false(ev_wanted(s, false));
	assert_true(ev_wanted(s, true));
	struct got g = { .ordered = true };
	assert_int_equal(ev_drain(s, true, &ops, &g), 0);
	ev_sink_free(s);
}

/* A full ring drops and counts exactly; what fits comes out in order. */
static void test_overflow_counted_exactly(void **state)
{
	(void)state;
	struct evsink *s = sink(16, 0);
	ev_set_trace(s, true);
	for (unsigned i = 0; i < 20; i++) {
		struct vevent e = pio(i, false);
		ev_emit(s, &e);
	}
	assert_true(ev_sink_needs_drain(s));
	struct got g = { .ordered = true };
	assert_int_equal(ev_drain(s, false, &ops, &g), 16);
	assert_int_equal(g.lost_trace, 4);
	assert_true(g.ordered);
	assert_int_equal(g.last.addr, 15);
	/* Reported once: a second drain says nothing more was lost. */
	g = (struct got){ .ordered = true };
	struct vevent e = pio(100, false);
	ev_emit(s, &e);
	assert_int_equal(ev_drain(s, false, &ops, &g), 1);
	assert_int_equal(g.lost_trace, 0);
	struct ev_stats st;
	ev_sink_stats(s, &st);
	assert_int_equal(st.events, 17);
	assert_int_equal(st.lost, 4);
	assert_int_equal(st.rings, 1);
	ev_sink_free(s);
}

#define N_EVENTS 200000

static void *producer(void *arg)
{
	struct evsink *s = arg;
	for (unsigned i = 1; i <= N_EVENTS; i++) {
		struct vevent e = pio(i, false);
		ev_emit(s, &e);
	}
	return NULL;
}

/* One producer thread, the drain beside it: every event is either handed
 * out, in order, or counted as lost. */
static void test_concurrent_producer_and_drain(void **state)
{
	(void)state;
	struct evsink *s = sink(256, 0);
	ev_set_trace(s, true);
	pthread_t th;
	struct got g = { .ordered = true };
	assert_int_equal(pthread_create(&th, NULL, producer, s), 0);
	for (int i = 0; i < 2000; i++)
		ev_drain(s, false, &ops, &g);
	pthread_join(th, NULL);
	ev_drain(s, true, &ops, &g);
	assert_int_equal(g.trace + g.lost_trace, N_EVENTS);
	assert_true(g.ordered);
	assert_true(g.trace > 0);
	ev_sink_free(s);
}

static void test_filter(void **state)
{
	(void)state;
	struct evfilter f;
	char err[200];
	struct vevent e = pio(0x3f8, false);
	e.device = "com1";

	assert_int_equal(trace_filter_parse("kind=pio,mmio;device=com1,unclaimed;addr=0x3f8-0x3ff,0x80;vcpu=0,2-3", &f,
					    err, sizeof(err)), 0);
	assert_true(ev_filter_match(&f, &e));
	assert_true(ev_filter_match(NULL, &e));
	e.vcpu = 1;
	assert_false(ev_filter_match(&f, &e));
	e.vcpu = 3;
	assert_true(ev_filter_match(&f, &e));
	e.addr = 0x400;
	assert_false(ev_filter_match(&f, &e));
	e.addr = 0x80;
	e.device = NULL; /* unclaimed */
	assert_true(ev_filter_match(&f, &e));
	e.device = "rtc";
	assert_false(ev_filter_match(&f, &e));
	e.device = "com1";
	e.kind = EV_MSR;
	assert_false(ev_filter_match(&f, &e));

	/* A vcpu clause matches no device request; an addr clause no HLT. */
	assert_int_equal(trace_filter_parse("vcpu=0", &f, err, sizeof(err)), 0);
	struct vevent d = { .kind = EV_DEVREQ, .vcpu = EV_NO_VCPU, .addr = EV_NO_SECTOR };
	assert_false(ev_filter_match(&f, &d));
	assert_int_equal(trace_filter_parse("addr=0-10", &f, err, sizeof(err)), 0);
	struct vevent h = { .kind = EV_HLT, .vcpu = 0 };
	assert_false(ev_filter_match(&f, &h));
	assert_false(ev_filter_match(&f, &d));
	d.addr = 5;
	assert_true(ev_filter_match(&f, &d));

	/* Published filters apply to the trace, never to the audit log. */
	struct evsink *s = sink(16, 0);
	ev_set_trace(s, true);
	ev_set_audit(s, true);
	assert_int_equal(trace_filter_parse("kind=mmio", &f, err, sizeof(err)), 0);
	assert_int_equal(ev_set_filter(s, &f), 0);
	struct vevent a = pio(1, true);
	ev_emit(s, &a);
	struct got g = { .ordered = true };
	ev_drain(s, true, &ops, &g);
	assert_int_equal(g.trace, 0);
	assert_int_equal(g.audit, 1);
	assert_int_equal(ev_set_filter(s, NULL), 0);
	a = pio(1, false);
	ev_emit(s, &a);
	ev_drain(s, true, &ops, &g);
	assert_int_equal(g.trace, 1);
	ev_sink_free(s);
}

static void test_filter_parse_errors(void **state)
{
	(void)state;
	struct evfilter f;
	char err[200];
	const char *bad[] = { "kind=pi", "kind=", "device", "bogus=1", "addr=0x10-0x1", "addr=zz", "vcpu=64",
			      "vcpu=-1", "kind=pio;kind=mmio", "addr=1-", NULL };
	for (int i = 0; bad[i]; i++) {
		err[0] = '\0';
		assert_int_equal(trace_filter_parse(bad[i], &f, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "--trace-filter"));
		assert_null(strchr(err, '\n'));
	}
	assert_int_equal(trace_filter_parse("", &f, err, sizeof(err)), 0);
	assert_int_equal(f.kinds, 0);
	assert_int_equal(trace_filter_parse("addr=16", &f, err, sizeof(err)), 0);
	assert_int_equal(f.ranges[0].first, 16);
	assert_int_equal(f.ranges[0].last, 16);
}

/* Identical audited events within the window: one record with the count;
 * the window's end starts a new one; nothing is lost at the end. */
static void test_coalescing(void **state)
{
	(void)state;
	struct evsink *s = sink(64, 1000000);
	ev_set_audit(s, true);
	for (int i = 0; i < 100; i++) {
		struct vevent e = pio(0x1234, true);
		ev_emit(s, &e);
	}
	struct got g = { .ordered = true };
	/* Still counting, inside its window: not handed out yet. */
	assert_int_equal(ev_drain(s, false, &ops, &g), 0);
	atomic_fetch_add(&fake_now, 2000000);
	for (int i = 0; i < 5; i++) {
		struct vevent e = pio(0x1234, true);
		ev_emit(s, &e);
	}
	/* The first window closed at that emit: its record is in the ring. */
	assert_int_equal(ev_drain(s, false, &ops, &g), 1);
	assert_int_equal(g.last.count, 100);
	/* The end: the record still counting comes out too. */
	assert_int_equal(ev_drain(s, true, &ops, &g), 1);
	assert_int_equal(g.last.count, 5);
	assert_int_equal(g.count_sum, 105);

	/* Interleaved events of two ports and a third, and more distinct
	 * events than slots: counts add up, every event in some record. */
	g = (struct got){ .ordered = true };
	uint64_t total = 0;
	for (int i = 0; i < 300; i++) {
		struct vevent e = pio((uint64_t)(i % 2 ? 0x60 : 0x64), true);
		ev_emit(s, &e);
		total++;
		if (i % 50 == 0) {
			for (unsigned k = 0; k < EV_PENDING + 2; k++) {
				struct vevent x = pio(0x1000 + k, true);
				ev_emit(s, &x);
				total++;
			}
		}
	}
	ev_drain(s, true, &ops, &g);
	assert_int_equal(g.count_sum, total);
	assert_true(g.audit < total / 4);
	struct ev_stats st;
	ev_sink_stats(s, &st);
	assert_int_equal(st.lost, 0);

	/* A rule, verdict or vCPU apart is another event; so are the data
	 * written, the width and the extra (subleaf, remote port). */
	g = (struct got){ .ordered = true };
	struct vevent a = pio(0x70, true), b = pio(0x70, true), c = pio(0x70, true);
	b.has_rule = 1;
	strcpy(b.rule, "r1");
	c.vcpu = 1;
	ev_emit(s, &a);
	ev_emit(s, &b);
	ev_emit(s, &c);
	ev_drain(s, true, &ops, &g);
	assert_int_equal(g.audit, 3);
	g = (struct got){ .ordered = true };
	struct vevent v0 = pio(0x71, true), v1 = pio(0x71, true), w4 = pio(0x71, true), x1 = pio(0x71, true);
	v1.value = 0xdeadbeef;
	w4.len = 4;
	x1.extra = 1;
	ev_emit(s, &v0);
	for (int i = 0; i < 10; i++)
		ev_emit(s, &v1);
	ev_emit(s, &w4);
	ev_emit(s, &x1);
	ev_drain(s, true, &ops, &g);
	assert_int_equal(g.audit, 4);
	assert_int_equal(g.count_sum, 13);
	ev_sink_free(s);
}

/* A guest sweeping addresses defeats coalescing; the per-window budget
 * still bounds the records, and what it drops is counted. */
static void test_audit_budget(void **state)
{
	(void)state;
	struct evsink *s = sink(4096, 1000000);
	ev_set_audit(s, true);
	for (unsigned i = 0; i < 3000; i++) {
		struct vevent e = pio(i, true);
		ev_emit(s, &e);
	}
	struct got g = { .ordered = true };
	ev_drain(s, true, &ops, &g);
	assert_int_equal(g.audit, EV_AUDIT_MAX_PER_WINDOW + EV_PENDING);
	assert_int_equal(g.count_sum + g.lost_audit, 3000);
	/* The next window has a budget again. */
	atomic_fetch_add(&fake_now, 1000000);
	g = (struct got){ .ordered = true };
	for (unsigned i = 0; i < 10; i++) {
		struct vevent e = pio(i, true);
		ev_emit(s, &e);
	}
	ev_drain(s, true, &ops, &g);
	assert_int_equal(g.count_sum, 10);
	assert_int_equal(g.lost_audit, 0);
	ev_sink_free(s);
}

/* A vCPU denied once and then quiet: the drain takes its record once the
 * window has passed, without the producer's help. */
static void test_stale_record_taken_by_drain(void **state)
{
	(void)state;
	struct evsink *s = sink(64, 1000000);
	ev_set_audit(s, true);
	ev_set_trace(s, true);
	struct vevent e = pio(0x1234, true);
	ev_emit(s, &e);
	struct got g = { .ordered = true };
	assert_int_equal(ev_drain(s, false, &ops, &g), 1); /* the trace record */
	assert_int_equal(g.trace, 1);
	atomic_fetch_add(&fake_now, 1000000);
	assert_int_equal(ev_drain(s, false, &ops, &g), 1);
	assert_int_equal(g.audit, 1);
	assert_int_equal(g.last.count, 1);
	assert_int_equal(ev_drain(s, true, &ops, &g), 0);
	ev_sink_free(s);
}

static void *audit_producer(void *arg)
{
	struct evsink *s = arg;
	for (unsigned i = 0; i < N_EVENTS; i++) {
		struct vevent e = pio(0x1234 + (i % 3), true);
		ev_emit(s, &e);
		if (i % 64 == 0)
			atomic_fetch_add(&fake_now, 100000);
	}
	return NULL;
}

/* The drain taking expired records while the producer coalesces into the
 * same slots: every event is counted exactly once. */
static void test_concurrent_coalescing(void **state)
{
	(void)state;
	struct evsink *s = sink(1024, 1000000);
	ev_set_audit(s, true);
	pthread_t th;
	struct got g = { .ordered = true };
	assert_int_equal(pthread_create(&th, NULL, audit_producer, s), 0);
	for (int i = 0; i < 5000; i++)
		ev_drain(s, false, &ops, &g);
	pthread_join(th, NULL);
	ev_drain(s, true, &ops, &g);
	assert_int_equal(g.count_sum + g.lost_audit, N_EVENTS);
	assert_int_equal(g.lost_audit, 0);
	ev_sink_free(s);
}

/* Each thread gets its own ring, named for its vCPU. */
static void *one_event(void *arg)
{
	struct evsink *s = arg;
	struct vevent e = pio(1, false);
	e.vcpu = 7;
	ev_emit(s, &e);
	return NULL;
}

static const char *lost_ring;
static void name_lost(void *ctx, uint64_t t, const char *ring, unsigned dest, uint64_t n)
{
	(void)ctx, (void)t, (void)dest, (void)n;
	lost_ring = ring;
}

static void test_rings_per_thread(void **state)
{
	(void)state;
	struct evsink *s = sink(2, 0);
	ev_set_trace(s, true);
	for (int i = 0; i < 2; i++) {
		pthread_t th;
		pthread_create(&th, NULL, one_event, s);
		pthread_join(th, NULL);
	}
	struct vevent e = pio(1, false);
	ev_emit(s, &e);
	struct ev_stats st;
	ev_sink_stats(s, &st);
	assert_true(st.rings >= 2); /* this thread's and the others' */
	/* Overflow the vCPU-7 ring from a fresh thread... the names say where. */
	for (int i = 0; i < 3; i++) {
		e = pio(2, false);
		e.vcpu = 0;
		ev_emit(s, &e);
	}
	struct ev_drain_ops o = { on_record, name_lost };
	struct got g = { .ordered = true };
	lost_ring = NULL;
	ev_drain(s, true, &o, &g);
	assert_non_null(lost_ring);
	ev_sink_free(s);
}

/* Rings are merged by time: a batch comes out in t order across threads. */
static void *emit_at_20(void *arg)
{
	atomic_store(&fake_now, 1000 + 20);
	struct vevent e = pio(20, false);
	ev_emit(arg, &e);
	return NULL;
}

static void test_drain_merges_by_time(void **state)
{
	(void)state;
	struct evsink *s = sink(16, 0);
	ev_set_trace(s, true);
	atomic_store(&fake_now, 1000 + 10);
	struct vevent e = pio(10, false);
	ev_emit(s, &e);
	pthread_t th;
	pthread_create(&th, NULL, emit_at_20, s);
	pthread_join(th, NULL);
	atomic_store(&fake_now, 1000 + 30);
	e = pio(30, false);
	ev_emit(s, &e);
	struct got g = { .ordered = true };
	assert_int_equal(ev_drain(s, false, &ops, &g), 3);
	assert_true(g.ordered); /* addr 10, 20, 30: the ring order would be 10, 30, 20 */
	ev_sink_free(s);
}

/* The request path traces every request and audits the built-in refusal. */
static void test_devreq_events(void **state)
{
	(void)state;
	struct evsink *s = sink(16, 0);
	struct dev_stats st = { .name = "golden" };
	struct dev_gate g = { .stats = &st, .id = "golden", .read_only = true, .ev = s };
	struct got r = { .ordered = true };

	assert_true(dev_request(&g, REQ_READ, 512)); /* nothing on: nothing queued */
	assert_int_equal(ev_drain(s, true, &ops, &r), 0);
	ev_set_trace(s, true);
	ev_set_audit(s, true);
	assert_true(dev_request(&g, REQ_READ, 512));
	assert_int_equal(ev_drain(s, true, &ops, &r), 1);
	assert_int_equal(r.last.kind, EV_DEVREQ);
	assert_int_equal(r.last.vcpu, EV_NO_VCPU);
	assert_string_equal(r.last.device, "golden");
	assert_int_equal(r.last.write, REQ_READ);
	assert_int_equal(r.last.value, 512);
	assert_true(r.last.addr == EV_NO_SECTOR);
	assert_int_equal(r.last.verdict, POLICY_PROVIDE);
	assert_false(dev_request(&g, REQ_WRITE, 4096));
	r = (struct got){ .ordered = true };
	assert_int_equal(ev_drain(s, true, &ops, &r), 2);
	assert_int_equal(r.trace, 1);
	assert_int_equal(r.audit, 1);
	assert_int_equal(r.last.verdict, POLICY_DENY);
	assert_int_equal(r.last.resource, POL_RES_DISK);
	ev_sink_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_off_emits_nothing),
		cmocka_unit_test(test_overflow_counted_exactly),
		cmocka_unit_test(test_concurrent_producer_and_drain),
		cmocka_unit_test(test_filter),
		cmocka_unit_test(test_filter_parse_errors),
		cmocka_unit_test(test_coalescing),
		cmocka_unit_test(test_stale_record_taken_by_drain),
		cmocka_unit_test(test_audit_budget),
		cmocka_unit_test(test_concurrent_coalescing),
		cmocka_unit_test(test_rings_per_thread),
		cmocka_unit_test(test_devreq_events),
		cmocka_unit_test(test_drain_merges_by_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
