/* fault — a host resource that fails under a running device (a TAP device
 * deleted, a vsock peer gone mid-stream, a stdout closed): the device
 * carries on without it or stops alone, and the fault is
 *   - said once on stderr, as it happens: "vigil: WHO: WHAT (ERROR); THEN",
 *   - counted (each later occurrence of the same WHO and WHAT),
 *   - listed by --stats: "fault WHO: WHAT: N".
 * Callable from any thread (event loop, console writer); WHO and WHAT must
 * live as long as the process (string literals, a backend's own name). */
#ifndef VIGIL_HOST_FAULT_H
#define VIGIL_HOST_FAULT_H

#include <stdint.h>
#include <stdio.h>

/* err: an errno value for the line, 0 for none. */
void host_fault(const char *who, const char *what, int err, const char *then);

/* How many times WHO's WHAT happened (0: never). */
uint64_t host_fault_count(const char *who, const char *what);

/* The --stats lines, one per fault seen. */
void host_fault_report(FILE *out);

#endif
