/* seccomp — the filters' installation; see seccomp.h for the install order
 * and why it is safe with inherited filters. The lists are in
 * seccomp_lists.h; their BPF programs were made from them at build time by
 * tools/seccomp_gen.c (seccomp_bpf.h, generated), so installing one is a
 * prctl and a seccomp call, with no libseccomp at run time. */
#define _GNU_SOURCE
#include "host/seccomp.h"
#include "host/seccomp_lists.h"
#include "seccomp_bpf.h" /* generated: build/gen */

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SECCOMP_EXIT_CODE 148 /* Firecracker's FcExitCode::BadSyscall */

/* off until `vigil run` says otherwise: unit tests drive the same threads */
static enum seccomp_mode mode_ = SECCOMP_MODE_OFF;
static _Thread_local const char *thread_kind;
static _Thread_local char thread_name_[16];

int seccomp_parse_mode(const char *s)
{
	if (strcmp(s, "on") == 0)
		return SECCOMP_MODE_ON;
	if (strcmp(s, "log") == 0)
		return SECCOMP_MODE_LOG;
	if (strcmp(s, "off") == 0)
		return SECCOMP_MODE_OFF;
	return -1;
}

const char *seccomp_mode_name(enum seccomp_mode m)
{
	return m == SECCOMP_MODE_LOG ? "log" : m == SECCOMP_MODE_OFF ? "off" : "on";
}

/* A sanitizer's runtime makes system calls of its own that no list can
 * foresee (sigaltstack as a thread ends, /proc/self/maps for a report):
 * under ASan or TSan, "on" is kept to "log". */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif

void seccomp_set_mode(enum seccomp_mode m)
{
#ifdef SANITIZED
	if (m == SECCOMP_MODE_ON)
		m = SECCOMP_MODE_LOG;
#endif
	mode_ = m;
	/* The logger's localtime_r() reads /etc/localtime the first time, on
	 * whichever thread logs first (a vCPU, in a Linux boot): read it now,
	 * before any list refuses openat. */
	tzset();
}

enum seccomp_mode seccomp_mode(void)
{
	return mode_;
}

const char *seccomp_kind_name(enum seccomp_kind kind)
{
	return kind < SC_NKINDS ? kinds[kind].name : "?";
}

size_t seccomp_kind_count(enum seccomp_kind kind)
{
	size_t n = 0;
	while (kinds[kind].calls[n] != END)
		n++;
	return n;
}

/* Async-signal-safe: only write() and _exit() (both in every list). The
 * line goes out in one write, so another thread's stderr line (the
 * start-up warnings) cannot land in the middle of it. */
static size_t cat(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at + 1 < cap)
		buf[at++] = *s++;
	return at;
}

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	char num[16], line[160];
	unsigned v = (unsigned)si->si_syscall;
	size_t n = sizeof(num), at = 0;
	num[--n] = 0;
	do
		num[--n] = (char)('0' + v % 10);
	while ((v /= 10) && n);
	at = cat(line, at, sizeof(line), "vigil: seccomp: the ");
	at = cat(line, at, sizeof(line), thread_kind ? thread_kind : "?");
	at = cat(line, at, sizeof(line), " thread made a system call outside its list (");
	at = cat(line, at, sizeof(line), &num[n]);
	at = cat(line, at, sizeof(line), "); stopping\n");
	if (write(2, line, at) < 0) {
		/* nothing left to tell it to */
	}
	_exit(SECCOMP_EXIT_CODE);
}

/* VIGIL_TEST_SECCOMP_PROBE=KIND[:CALL]: the test's proof that the list
 * holds. The thread tries one call its list lacks and says what happened:
 * execve (no list has it), openat or socket (the control list has them: a
 * thread that inherits the control thread's filter is refused them only by
 * its own), ioctl TIOCGWINSZ (the vCPU list has ioctl for some request
 * numbers only), mmap-exec (an executable anonymous page: the vCPU list
 * takes mmap only without PROT_EXEC). Each is harmless when let through: a
 * path that does not exist, a socket closed at once, an ioctl on no
 * descriptor, a page unmapped at once. */
static void probe(enum seccomp_kind kind)
{
	const char *want = getenv("VIGIL_TEST_SECCOMP_PROBE");
	size_t n = strlen(kinds[kind].name);
	if (!want || strncmp(want, kinds[kind].name, n) != 0 || (want[n] && want[n] != ':'))
		return;
	const char *call = want[n] ? want + n + 1 : "execve";
	static _Atomic int once;
	if (once++)
		return;
	static const char path[] = "/nonexistent/vigil-seccomp-probe";
	long r;
	if (strcmp(call, "openat") == 0) {
		r = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	} else if (strcmp(call, "ioctl") == 0) {
		r = syscall(SYS_ioctl, -1, TIOCGWINSZ, NULL);
	} else if (strcmp(call, "socket") == 0) {
		r = syscall(SYS_socket, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	} else if (strcmp(call, "mmap-exec") == 0) {
		void *m = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		r = m == MAP_FAILED ? -1 : -2; /* -2: done, and no descriptor to close */
		if (m != MAP_FAILED)
			munmap(m, 4096);
	} else {
		char *argv[] = { "vigil-seccomp-probe", NULL };
		call = "execve";
		r = syscall(SYS_execve, path, argv, NULL);
	}
	int e = errno;
	if (r >= 0)
		close((int)r);
	bool ok = r >= 0 || r == -2;
	fprintf(stderr, "vigil: seccomp probe: %s thread: %s returned %d (%s)\n", kinds[kind].name, call, ok ? 0 : -1,
		ok ? "ok" : strerror(e));
}

const char *seccomp_thread_name(void)
{
	return thread_name_[0] ? thread_name_ : NULL;
}

int seccomp_enter(enum seccomp_kind kind)
{
	if (kind >= SC_NKINDS)
		return -1;
	thread_kind = kinds[kind].name;
	if (kind != SC_MAIN) {
		snprintf(thread_name_, sizeof(thread_name_), "vg-%s", kinds[kind].name);
		prctl(PR_SET_NAME, thread_name_, 0, 0, 0);
	}
	if (mode_ == SECCOMP_MODE_OFF) {
		probe(kind);
		return 0;
	}
	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
	sigfillset(&sa.sa_mask);
	sigaction(SIGSYS, &sa, NULL);

	/* What seccomp_load() did with the program libseccomp made: no new
	 * privileges, then the filter on this thread only (no flags). */
	const struct sc_bpf *b = &sc_bpf[kind];
	struct sock_fprog prog = { .len = b->on_len, .filter = (struct sock_filter *)b->on };
	if (mode_ == SECCOMP_MODE_LOG)
		prog = (struct sock_fprog){ .len = b->log_len, .filter = (struct sock_filter *)b->log };
	int r = 0;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		r = -errno;
	if (r < 0) {
		fprintf(stderr, "vigil: seccomp: cannot install the %s thread's filter: %s\n", kinds[kind].name,
			strerror(-r));
		if (mode_ == SECCOMP_MODE_ON)
			_exit(1);
		return -1;
	}
	/* SIGSYS must reach this thread even where the caller blocked all signals */
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	probe(kind);
	return 0;
}

void seccomp_list(FILE *out, bool verbose)
{
	for (int k = 0; k < SC_NKINDS; k++) {
		fprintf(out, "%-8s %3zu", kinds[k].name, seccomp_kind_count(k));
		if (k == SC_VCPU)
			fprintf(out, " (ioctl: %zu request numbers)", NELEM(vcpu_ioctls) + NELEM(vcpu_tty_ioctls));
		if (kinds[k].ioctls)
			fprintf(out, " (ioctl: %zu request number%s)", kinds[k].nioctls, kinds[k].nioctls == 1 ? "" : "s");
		if (verbose) {
			fputs(":", out);
			fputs(sc_bpf[k].names, out);
		}
		fputc('\n', out);
	}
}
