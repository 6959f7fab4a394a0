/* trace — the writer of the JSON-lines trace (--trace) and the audit log
 * (--audit): owns the VM's event sink (core/event.h) and one drain thread
 * that wakes every 10 ms, drains the rings every 50 ms (sooner when one is
 * half full), formats the records and writes each output in batches.
 * Records that cannot be written are counted (and said once on stderr).
 *
 * Threading: vtrace_new/free and the setters from the control thread (the
 * builder, the API's calls through vmm_call); the sink's producers from
 * any thread; the drain thread is the sink's only consumer. */
#ifndef VIGIL_VMM_TRACE_H
#define VIGIL_VMM_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/event.h"

struct vtrace;

/* The sink (trace and audit both off) and its drain thread. ring_size 0:
 * the default, or VIGIL_TRACE_RING from the environment (test-only: a
 * tiny ring makes overflow easy to provoke). NULL + err. */
struct vtrace *vtrace_new(const char *vm_id, struct vclock clock, char *err, size_t errlen);
struct evsink *vtrace_sink(struct vtrace *t);
/* The VM starts now: t = 0, and the wall time the audit's ts counts from. */
void vtrace_mark_start(struct vtrace *t);

/* Starts the trace into `path` ("-": stderr), or switches to it; path
 * NULL stops it. The file is truncated. 0 or -1 + err (the old state kept). */
int vtrace_set_trace(struct vtrace *t, const char *path, char *err, size_t errlen);
/* Publishes the filter `spec` (trace_filter_parse; "" or NULL: none). */
int vtrace_set_filter(struct vtrace *t, const char *spec, char *err, size_t errlen);
/* Starts or switches the audit log (appended to), or stops it (NULL or ""). */
int vtrace_set_audit(struct vtrace *t, const char *path, char *err, size_t errlen);
/* The most bytes written to each file from here on (0: VTRACE_MAX_DEFAULT);
 * past it a file's records are dropped and counted (write_failed), said
 * once. stderr ('-') has no cap. */
#define VTRACE_MAX_DEFAULT (1ull << 30)
void vtrace_set_max(struct vtrace *t, uint64_t bytes);
bool vtrace_tracing(const struct vtrace *t);

struct vtrace_stats {
	uint64_t events;      /* records the producers queued */
	uint64_t lost;        /* events dropped: full ring, no ring */
	uint64_t coalesced;   /* audit events folded into an earlier record */
	uint64_t trace_lines; /* written */
	uint64_t audit_lines;
	uint64_t trace_failed; /* formatted but not written (write error, disk full) */
	uint64_t audit_failed;
};
void vtrace_stats(struct vtrace *t, struct vtrace_stats *st);

/* Once every producer has stopped: the last records (and every coalesced
 * audit record still counting) are written, the files closed, the thread
 * joined. Then vtrace_free. NULL-safe. */
void vtrace_stop(struct vtrace *t);
void vtrace_free(struct vtrace *t);

/* --trace-filter's syntax: clauses separated by ';', each KEY=V[,V...]:
 *   kind=pio,mmio,...        (the trace's kind names)
 *   device=com1,rootfs,...   (registry ids; "unclaimed" for no device)
 *   addr=0x3f8-0x3ff,0x80    (ranges inclusive; hex or decimal)
 *   vcpu=0,2-3
 * "" is no filter. 0, or -1 + one line in err naming the clause. */
int trace_filter_parse(const char *spec, struct evfilter *f, char *err, size_t errlen);

#endif
