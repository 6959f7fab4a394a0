/* seccomp — the allow-lists and their installation; see seccomp.h for the
 * install order and why it is safe with inherited filters. Lists were taken
 * from runs of every native suite under --seccomp log (the kernel logs each
 * call outside a list with the thread's name) and kept to what those runs
 * and a Linux guest in the lab needed. */
#define _GNU_SOURCE
#include "host/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/if_tun.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SECCOMP_EXIT_CODE 148 /* Firecracker's FcExitCode::BadSyscall */
#define END (-1)
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* What every thread does: locks, memory (malloc arenas, thread stacks),
 * signals (vCPU kicks, the SIGSYS report, the terminal's restore on a
 * fatal signal), logging to stderr, timing,
 * and exiting. */
#define BASE                                                                                              \
	SCMP_SYS(futex), SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(rt_sigprocmask),                   \
		SCMP_SYS(rt_sigreturn), SCMP_SYS(madvise), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mprotect), \
		SCMP_SYS(brk), SCMP_SYS(write), SCMP_SYS(clock_gettime), SCMP_SYS(gettid), SCMP_SYS(getpid),   \
		SCMP_SYS(sched_yield), SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep), SCMP_SYS(restart_syscall), \
		SCMP_SYS(tgkill), SCMP_SYS(rt_sigaction), SCMP_SYS(mremap),                     \
		SCMP_SYS(sysinfo) /* glibc's qsort sizes its buffer by it */, SCMP_SYS(prctl) /* narrowed: the thread's name (the logger reads it) */

static const int main_calls[] = {
	BASE,
	/* the control loop, its metrics timer, signalfd and vmm_call() wake-ups */
	SCMP_SYS(ppoll), SCMP_SYS(poll), SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(eventfd2),
	SCMP_SYS(timerfd_settime), SCMP_SYS(timerfd_gettime), SCMP_SYS(close), SCMP_SYS(lseek),
	SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(statx), SCMP_SYS(fcntl), SCMP_SYS(ioctl),
	/* PATCH /drives, dumps, metrics and log files, snapshots */
	SCMP_SYS(openat), SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(preadv), SCMP_SYS(pwritev),
	SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(ftruncate), SCMP_SYS(fallocate), SCMP_SYS(unlink), SCMP_SYS(flock),
	SCMP_SYS(unlinkat), SCMP_SYS(rename), SCMP_SYS(getrandom),
	/* a drive's io_uring (re)opened by PATCH /drives: its ring is set up,
	 * restricted and enabled, stopped with a NOP (host/blk_uring.c) */
	SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_register), SCMP_SYS(io_uring_enter),
	/* the threads it starts after its filter (vCPUs, block workers) */
	SCMP_SYS(clone), SCMP_SYS(clone3), SCMP_SYS(set_robust_list), SCMP_SYS(rseq),
	SCMP_SYS(seccomp), SCMP_SYS(sched_getaffinity), SCMP_SYS(sigaltstack),
	/* the devices' teardown and PATCH /drives: watches dropped or added,
	 * vsock streams shut. (Sends and receives were here for the vCPU
	 * threads, which no longer make them: strace and --seccomp log of every
	 * native suite saw neither on the control thread.) */
	SCMP_SYS(epoll_ctl), SCMP_SYS(shutdown),
	END,
};

/* The vCPU thread's steady path, from strace of every native suite (each
 * thread names itself vg-KIND): KVM_RUN and the device models behind its
 * exits, which only lock, copy into buffers, write eventfds and call KVM.
 * What used to need more runs elsewhere now: virtio activation and resets
 * on the event thread (virtio_pci's call_on_event_thread), console output
 * on its writer thread, the log's thread name from seccomp_thread_name().
 * Not in BASE on purpose: no sleeping (nanosleep, sched_yield), no qsort
 * (sysinfo), no prctl, no rt_sigaction (the terminal's fatal-signal
 * handler resets itself: SA_RESETHAND), no mremap (no realloc here). */
static const int vcpu_calls[] = {
	SCMP_SYS(ioctl), /* narrowed to vcpu_ioctls below */
	SCMP_SYS(futex), SCMP_SYS(rt_sigreturn), /* locks; the kick's handler */
	SCMP_SYS(write), /* eventfds (evloop calls, doorbells, irqfds), stderr */
	SCMP_SYS(tgkill), SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(rt_sigprocmask), /* pthread_kill: kicks */
	/* malloc (an event ring made on the first traced exit, glibc's own
	 * tcache at thread exit): private anonymous memory, never executable */
	SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mprotect), SCMP_SYS(brk),
	SCMP_SYS(madvise), /* MADV_DONTNEED only: the stack given back at exit, a heap trimmed */
	SCMP_SYS(clock_gettime), /* the vDSO's fallback on a host clock it cannot read */
	SCMP_SYS(restart_syscall), /* a wait cut by SIGSTOP/SIGCONT */
	SCMP_SYS(exit), SCMP_SYS(exit_group), /* the thread's end; the SIGSYS report's _exit */
	END,
};

/* The ioctls a vCPU thread makes: KVM_RUN; registers for the gdb stub and
 * the API (vcpu_run_on); MSRs the policy provides; guest debug; kvmclock
 * told of a pause; the in-kernel irqchip's lines; MSI routes the guest
 * reprograms through MSI-X; doorbells moved with a BAR. Everything else
 * (vCPU creation, snapshots, FPU, LAPIC, events, memory slots) runs on the
 * control thread while the vCPUs are parked or before they exist. */
static const unsigned long vcpu_ioctls[] = {
	KVM_RUN,	   KVM_GET_REGS,  KVM_SET_REGS,	     KVM_GET_SREGS,	KVM_SET_SREGS,
	KVM_GET_MSRS,	   KVM_SET_MSRS,  KVM_SET_GUEST_DEBUG, KVM_KVMCLOCK_CTRL, KVM_IRQ_LINE,
	KVM_SET_GSI_ROUTING, KVM_IOEVENTFD,
};
/* ... and on stdin only, the terminal put back when a fatal signal lands
 * on a vCPU (tcsetattr's TCSETSF, then its TCGETS to check). */
static const unsigned long vcpu_tty_ioctls[] = { TCSETSF, TCGETS };

static const int evloop_calls[] = {
	BASE,
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl), SCMP_SYS(ppoll), SCMP_SYS(poll),
	SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(close),
	SCMP_SYS(ioctl), /* narrowed to evloop_ioctls */
	SCMP_SYS(timerfd_settime), SCMP_SYS(fcntl), SCMP_SYS(getrandom),
	/* vsock over Unix sockets, user-mode networking (slirp opens host sockets) */
	SCMP_SYS(socket), SCMP_SYS(connect), SCMP_SYS(accept4), SCMP_SYS(accept), SCMP_SYS(bind),
	SCMP_SYS(listen), SCMP_SYS(setsockopt), SCMP_SYS(getsockopt), SCMP_SYS(getsockname),
	SCMP_SYS(getpeername), SCMP_SYS(sendto), SCMP_SYS(sendmsg), SCMP_SYS(recvfrom), SCMP_SYS(recvmsg),
	SCMP_SYS(shutdown),
	SCMP_SYS(io_uring_enter), /* the disk's requests, submitted to its ring */
	END,
};

/* The event thread's ioctls: a device's INTx for a driver without MSI-X;
 * the TAP's offloads set to what the guest negotiated; and libslirp's only
 * ioctl (FIONREAD, seen by disassembling libslirp.so.0 4.7) with glib's
 * isatty() (TCGETS) when it logs a warning to stderr. */
static const unsigned long evloop_ioctls[] = { KVM_IRQ_LINE, TUNSETOFFLOAD, FIONREAD, TCGETS };

static const int blk_calls[] = {
	BASE,
	SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(preadv), SCMP_SYS(pwritev), SCMP_SYS(fsync),
	SCMP_SYS(fdatasync), SCMP_SYS(fallocate), SCMP_SYS(lseek), SCMP_SYS(read), SCMP_SYS(fstat),
	SCMP_SYS(newfstatat),
	SCMP_SYS(io_uring_enter), /* the io_uring completion thread waits in it */
	SCMP_SYS(ioctl), /* KVM_IRQ_LINE only: a completion's INTx, for a driver without MSI-X */
	END,
};
static const unsigned long blk_ioctls[] = { KVM_IRQ_LINE };

static const int console_calls[] = {
	BASE,
	SCMP_SYS(read), SCMP_SYS(ppoll), SCMP_SYS(poll), SCMP_SYS(ioctl), SCMP_SYS(close),
	END,
};

/* The console's writer: the guest's output to stdout or a capped file. */
static const int conout_calls[] = {
	BASE,
	SCMP_SYS(read), SCMP_SYS(writev), SCMP_SYS(ppoll), SCMP_SYS(poll), SCMP_SYS(lseek), SCMP_SYS(ftruncate),
	SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(fsync), SCMP_SYS(fcntl), SCMP_SYS(close),
	END,
};

static const int api_calls[] = {
	BASE,
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl), SCMP_SYS(ppoll), SCMP_SYS(poll),
	SCMP_SYS(accept4), SCMP_SYS(accept), SCMP_SYS(read), SCMP_SYS(recvfrom), SCMP_SYS(recvmsg),
	SCMP_SYS(sendto), SCMP_SYS(sendmsg), SCMP_SYS(writev), SCMP_SYS(shutdown), SCMP_SYS(close),
	SCMP_SYS(fcntl), SCMP_SYS(setsockopt), SCMP_SYS(getsockopt), SCMP_SYS(getsockname),
	SCMP_SYS(pipe2), SCMP_SYS(eventfd2), SCMP_SYS(openat), SCMP_SYS(fstat), SCMP_SYS(newfstatat),
	SCMP_SYS(lseek), SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(fsync), SCMP_SYS(getrandom),
	SCMP_SYS(ioctl), SCMP_SYS(readv),
	END,
};

static const int trace_calls[] = {
	BASE,
	SCMP_SYS(read), SCMP_SYS(writev), SCMP_SYS(ppoll), SCMP_SYS(poll), SCMP_SYS(fsync),
	SCMP_SYS(lseek), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(close), SCMP_SYS(openat),
	END,
};

static const int gdb_calls[] = {
	BASE,
	SCMP_SYS(accept4), SCMP_SYS(accept), SCMP_SYS(read), SCMP_SYS(recvfrom), SCMP_SYS(sendto),
	SCMP_SYS(ppoll), SCMP_SYS(poll), SCMP_SYS(close), SCMP_SYS(setsockopt), SCMP_SYS(shutdown),
	SCMP_SYS(fcntl), SCMP_SYS(writev),
	END,
};

/* ioctls: where set, the kind's ioctl is allowed only for these request
 * numbers (the vCPU's two lists are added by add_vcpu_rule). */
static const struct kind {
	const char *name;
	const int *calls;
	const unsigned long *ioctls;
	size_t nioctls;
} kinds[SC_NKINDS] = {
	[SC_MAIN] = { "main", main_calls },	      [SC_VCPU] = { "vcpu", vcpu_calls },
	[SC_EVLOOP] = { "evloop", evloop_calls, evloop_ioctls, NELEM(evloop_ioctls) },
	[SC_BLK] = { "blk", blk_calls, blk_ioctls, NELEM(blk_ioctls) },
	[SC_CONSOLE] = { "console", console_calls }, [SC_CONSOLE_OUT] = { "conout", conout_calls }, [SC_API] = { "api", api_calls },
	[SC_TRACE] = { "trace", trace_calls },	      [SC_GDB] = { "gdb", gdb_calls },
};

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


/* The vCPU list's argument checks: which ioctls, memory that is private,
 * anonymous and never executable (a taken-over vCPU thread can neither map
 * a file nor make shellcode runnable), madvise only to give pages back.
 * 1 when the call was handled here, 0 when it takes no argument check. */
static int add_vcpu_rule(scmp_filter_ctx ctx, int call)
{
	int r = 0;
	if (call == SCMP_SYS(ioctl)) {
		for (size_t i = 0; i < NELEM(vcpu_ioctls) && r == 0; i++)
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, call, 1, SCMP_A1(SCMP_CMP_EQ, vcpu_ioctls[i], 0));
		for (size_t i = 0; i < NELEM(vcpu_tty_ioctls) && r == 0; i++)
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, call, 2, SCMP_A0(SCMP_CMP_EQ, STDIN_FILENO, 0),
					     SCMP_A1(SCMP_CMP_EQ, vcpu_tty_ioctls[i], 0));
	} else if (call == SCMP_SYS(mmap)) {
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, call, 2, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0),
				     SCMP_A3(SCMP_CMP_MASKED_EQ, MAP_TYPE | MAP_ANONYMOUS, MAP_PRIVATE | MAP_ANONYMOUS));
	} else if (call == SCMP_SYS(mprotect)) {
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, call, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	} else if (call == SCMP_SYS(madvise)) {
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, call, 1, SCMP_A2(SCMP_CMP_EQ, MADV_DONTNEED, 0));
	} else {
		return 0;
	}
	return r < 0 ? r : 1;
}

static int add_rules(scmp_filter_ctx ctx, enum seccomp_kind kind)
{
	for (const int *c = kinds[kind].calls; *c != END; c++) {
		int r;
		if (kinds[kind].ioctls && *c == SCMP_SYS(ioctl)) {
			for (size_t i = 0; i < kinds[kind].nioctls; i++)
				if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, *c, 1,
							  SCMP_A1(SCMP_CMP_EQ, kinds[kind].ioctls[i], 0))) < 0)
					return r;
			continue;
		}
		if (kind == SC_VCPU && (r = add_vcpu_rule(ctx, *c)) != 0) {
			if (r < 0)
				return r;
			continue;
		}
		if (*c == SCMP_SYS(prctl)) {
			/* names; and for the main thread, what a thread it starts needs
			 * to install its own filter under the main one */
			static const int ops[] = { PR_GET_NAME, PR_SET_NAME, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP };
			for (size_t i = 0; i < (kind == SC_MAIN ? 4u : 2u); i++)
				if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, *c, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)ops[i], 0))) < 0)
					return r;
			continue;
		}
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, *c, 0)) < 0)
			return r;
	}
	return 0;
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

	scmp_filter_ctx ctx = seccomp_init(mode_ == SECCOMP_MODE_LOG ? SCMP_ACT_LOG : SCMP_ACT_TRAP);
	int r = ctx ? add_rules(ctx, kind) : -ENOMEM;
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
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
			for (const int *c = kinds[k].calls; *c != END; c++) {
				char *n = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, *c);
				fprintf(out, " %s", n ? n : "?");
				free(n);
			}
		}
		fputc('\n', out);
	}
}
