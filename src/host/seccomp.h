/* seccomp — one system-call allow-list per thread kind (issue 11).
 *
 * Each thread installs its own filter as it enters its loop (no TSYNC: a
 * filter binds the calling thread and the threads it creates afterwards).
 * Because filters stack on inheritance, the control thread installs its own
 * last, just before it creates the vCPU threads: the threads it starts
 * before that (event loop, console, block workers, trace drain, gdb stub,
 * the API thread) carry only their own list; those it starts after (vCPUs,
 * block workers of a PATCHed drive) carry the control list and theirs, so
 * the control list is a superset of what those need.
 *
 * Modes: on (default) traps a call outside the list, reports it on stderr
 * and exits 148, the way Firecracker's default filters do (default_action
 * "trap", SIGSYS handler, FcExitCode::BadSyscall = 148); log lets it run and
 * logs it to the kernel log (SECCOMP_RET_LOG); off installs nothing. */
#ifndef VIGIL_HOST_SECCOMP_H
#define VIGIL_HOST_SECCOMP_H

#include <stdbool.h>
#include <stdio.h>

enum seccomp_mode { SECCOMP_MODE_ON = 0, SECCOMP_MODE_LOG, SECCOMP_MODE_OFF };

enum seccomp_kind {
	SC_MAIN,
	SC_VCPU,
	SC_EVLOOP,
	SC_BLK,
	SC_CONSOLE,
	SC_CONSOLE_OUT,
	SC_API,
	SC_TRACE,
	SC_GDB,
	SC_NKINDS
};

/* "on" | "log" | "off" -> mode; -1 for anything else. */
int seccomp_parse_mode(const char *s);
const char *seccomp_mode_name(enum seccomp_mode m);

/* The process-wide mode; set once before the first thread is started. */
void seccomp_set_mode(enum seccomp_mode m);
enum seccomp_mode seccomp_mode(void);

/* Installs KIND's filter on the calling thread (and names the thread
 * "vigil-KIND" when it has no name of its own yet). 0, or -1 with a reason
 * on stderr: a thread that cannot be confined stops the process in "on". */
int seccomp_enter(enum seccomp_kind kind);

/* The name seccomp_enter() gave the calling thread ("vg-vcpu"), or NULL
 * (the control thread, a thread that never entered): what the logger
 * shows, without the prctl() a vCPU's list does not have. */
const char *seccomp_thread_name(void);

/* `vigil seccomp-list`: each kind and its allowed system calls. */
void seccomp_list(FILE *out, bool verbose);
size_t seccomp_kind_count(enum seccomp_kind kind);
const char *seccomp_kind_name(enum seccomp_kind kind);

#endif
