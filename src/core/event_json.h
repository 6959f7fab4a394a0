/* event_json — one trace or audit record (core/event.h's struct vevent) as
 * a line of JSON, the format docs/TRACE.md and the audit log's readers
 * expect. One writer for both backends: the hosted drain (vmm/trace.c)
 * and vigil-metal's (metal/trace.c), so their records parse alike.
 * Each call writes at most cap - 1 bytes and a NUL, no newline, and
 * returns the length written (a record too long for cap is cut short). */
#ifndef VIGIL_CORE_EVENT_JSON_H
#define VIGIL_CORE_EVENT_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "core/event.h"

/* What an audit record's "ts" and "vm" say: the wall clock when the
 * events' clock read 0, and the VM's id. */
struct ev_json_clock {
	int64_t wall0_s;
	uint64_t wall0_ns;
	const char *vm_id;
};

size_t ev_json_trace(char *buf, size_t cap, const struct vevent *e);
size_t ev_json_audit(char *buf, size_t cap, const struct ev_json_clock *c, const struct vevent *e);
/* A "lost" record: in the audit log's form with c, else the trace's. */
size_t ev_json_lost(char *buf, size_t cap, const struct ev_json_clock *c, uint64_t now, const char *ring,
		    uint64_t n);

#endif
