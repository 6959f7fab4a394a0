/* trace — the portable event sink (core/event.h) drained onto COM1: with
 * --trace every exit, device request and policy decision as a line
 * "vigil-metal: trace {JSON}", and every audited decision of the policy
 * as "vigil-metal: audit {JSON}" — the hosted trace's and audit log's
 * records (src/vmm/trace.c), on the only output there is. Drained from
 * the poll loop and at the end; a full ring drops and counts, as hosted. */
#ifndef VIGIL_METAL_TRACE_H
#define VIGIL_METAL_TRACE_H

#include <stdbool.h>
#include <stddef.h>

struct vm;

/* Makes vm->ev: audit on, the trace as asked. 0, or -1 with a reason. */
int metal_trace_start(struct vm *vm, bool trace, char *err, size_t errlen);
void metal_trace_mark_start(void);
/* Drains what is there (no-op without a sink). */
void metal_trace_poll(void);
/* The last records, then "vigil-metal: trace: events=..." when any were lost. */
void metal_trace_finish(void);

#endif
