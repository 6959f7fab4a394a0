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
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SECCOMP_EXIT_CODE 148 /* Firecracker's FcExitCode::BadSyscall */

/* A system call of a list: its number and, for `vigil seccomp`, its name. */
struct sc {
	int nr;
	const char *name;
};
#define S(x) { SYS_##x, #x }
#define END { -1, NULL }

/* What every thread does: locks, memory (malloc arenas, thread stacks),
 * signals (vCPU kicks, the SIGSYS report, the terminal's restore on a
 * fatal signal), logging to stderr, timing,
 * and exiting. */
#define BASE                                                                                              \
	S(futex), S(exit), S(exit_group), S(rt_sigprocmask),                   \
		S(rt_sigreturn), S(madvise), S(mmap), S(munmap), S(mprotect), \
		S(brk), S(write), S(clock_gettime), S(gettid), S(getpid),   \
		S(sched_yield), S(nanosleep), S(clock_nanosleep), S(restart_syscall), \
		S(tgkill), S(rt_sigaction), S(mremap),                     \
		S(sysinfo) /* glibc's qsort sizes its buffer by it */, S(prctl) /* narrowed: the thread's name (the logger reads it) */

static const struct sc main_calls[] = {
	BASE,
	/* the control loop, its metrics timer, signalfd and vmm_call() wake-ups */
	S(ppoll), S(poll), S(read), S(readv), S(writev), S(eventfd2),
	S(timerfd_settime), S(timerfd_gettime), S(close), S(lseek),
	S(fstat), S(newfstatat), S(statx), S(fcntl), S(ioctl),
	/* PATCH /drives, dumps, metrics and log files, snapshots */
	S(openat), S(pread64), S(pwrite64), S(preadv), S(pwritev),
	S(fsync), S(fdatasync), S(ftruncate), S(fallocate), S(unlink), S(flock),
	S(unlinkat), S(rename), S(getrandom),
	/* a drive's io_uring (re)opened by PATCH /drives: its ring is set up,
	 * restricted and enabled, stopped with a NOP (host/blk_uring.c) */
	S(io_uring_setup), S(io_uring_register), S(io_uring_enter),
	/* the threads it starts after its filter (vCPUs, block workers) */
	S(clone), S(clone3), S(set_robust_list), S(rseq),
	S(seccomp), S(sched_getaffinity), S(sigaltstack),
	/* what the vCPU threads it creates need on top (their list narrows it) */
	S(sendto), S(sendmsg), S(recvfrom), S(recvmsg), S(shutdown),
	S(epoll_ctl),
	END,
};

static const struct sc vcpu_calls[] = {
	BASE,
	S(ioctl), /* narrowed to vcpu_ioctls below */
	/* eventfd kicks, the UART and console output, the wait for room */
	S(read), S(writev), S(ppoll), S(poll), S(close),
	S(epoll_ctl), /* a queue's ioeventfd watched once the driver starts it */
	/* the disk's first requests, submitted to its ring when the driver
	 * starts the device (virtio_pci's activate runs here) */
	S(io_uring_enter),
	END,
};

/* The KVM (and TUN: features are negotiated on the vCPU that writes the
 * status register) ioctls a vCPU thread makes. */
static const unsigned long vcpu_ioctls[] = {
	KVM_RUN, KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS, KVM_GET_MSRS, KVM_SET_MSRS,
	KVM_GET_FPU, KVM_SET_FPU, KVM_GET_LAPIC, KVM_SET_LAPIC, KVM_SET_GUEST_DEBUG, KVM_TRANSLATE,
	KVM_KVMCLOCK_CTRL, KVM_IRQ_LINE, KVM_IRQ_LINE_STATUS, KVM_SIGNAL_MSI, KVM_IOEVENTFD, KVM_IRQFD,
	KVM_SET_GSI_ROUTING, KVM_SET_USER_MEMORY_REGION, KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS,
	KVM_CHECK_EXTENSION, TUNSETOFFLOAD, TUNSETVNETHDRSZ, FIONBIO,
	TCGETS, TCSETS, TCSETSW, TCSETSF, /* the terminal put back when a fatal signal lands here */
};

static const struct sc evloop_calls[] = {
	BASE,
	S(epoll_wait), S(epoll_pwait), S(epoll_ctl), S(ppoll), S(poll),
	S(read), S(readv), S(writev), S(close), S(ioctl),
	S(timerfd_settime), S(fcntl), S(getrandom),
	/* vsock over Unix sockets, user-mode networking (slirp opens host sockets) */
	S(socket), S(connect), S(accept4), S(accept), S(bind),
	S(listen), S(setsockopt), S(getsockopt), S(getsockname),
	S(getpeername), S(sendto), S(sendmsg), S(recvfrom), S(recvmsg),
	S(shutdown),
	S(io_uring_enter), /* the disk's requests, submitted to its ring */
	END,
};

static const struct sc blk_calls[] = {
	BASE,
	S(pread64), S(pwrite64), S(preadv), S(pwritev), S(fsync),
	S(fdatasync), S(fallocate), S(lseek), S(read), S(fstat),
	S(newfstatat),
	S(io_uring_enter), /* the io_uring completion thread waits in it */
	END,
};

static const struct sc console_calls[] = {
	BASE,
	S(read), S(ppoll), S(poll), S(ioctl), S(close),
	END,
};

/* The console's writer: the guest's output to stdout or a capped file. */
static const struct sc conout_calls[] = {
	BASE,
	S(read), S(writev), S(ppoll), S(poll), S(lseek), S(ftruncate),
	S(fstat), S(newfstatat), S(fsync), S(fcntl), S(close),
	END,
};

static const struct sc api_calls[] = {
	BASE,
	S(epoll_wait), S(epoll_pwait), S(epoll_ctl), S(ppoll), S(poll),
	S(accept4), S(accept), S(read), S(recvfrom), S(recvmsg),
	S(sendto), S(sendmsg), S(writev), S(shutdown), S(close),
	S(fcntl), S(setsockopt), S(getsockopt), S(getsockname),
	S(pipe2), S(eventfd2), S(openat), S(fstat), S(newfstatat),
	S(lseek), S(pread64), S(pwrite64), S(fsync), S(getrandom),
	S(ioctl), S(readv),
	END,
};

static const struct sc trace_calls[] = {
	BASE,
	S(read), S(writev), S(ppoll), S(poll), S(fsync),
	S(lseek), S(fstat), S(newfstatat), S(close), S(openat),
	END,
};

static const struct sc gdb_calls[] = {
	BASE,
	S(accept4), S(accept), S(read), S(recvfrom), S(sendto),
	S(ppoll), S(poll), S(close), S(setsockopt), S(shutdown),
	S(fcntl), S(writev),
	END,
};

static const struct kind {
	const char *name;
	const struct sc *calls;
} kinds[SC_NKINDS] = {
	[SC_MAIN] = { "main", main_calls },	      [SC_VCPU] = { "vcpu", vcpu_calls },
	[SC_EVLOOP] = { "evloop", evloop_calls },     [SC_BLK] = { "blk", blk_calls },
	[SC_CONSOLE] = { "console", console_calls }, [SC_CONSOLE_OUT] = { "conout", conout_calls }, [SC_API] = { "api", api_calls },
	[SC_TRACE] = { "trace", trace_calls },	      [SC_GDB] = { "gdb", gdb_calls },
};

/* off until `vigil run` says otherwise: unit tests drive the same threads */
static enum seccomp_mode mode_ = SECCOMP_MODE_OFF;
static _Thread_local const char *thread_kind;

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
	while (kinds[kind].calls[n].nr >= 0)
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

/* The filter, as a classic BPF program built here rather than by
 * libseccomp: the lists are short and fixed, and libseccomp's database,
 * its optimiser and its probing of the kernel cost a fresh VM more CPU
 * before its first KVM_RUN than the rest of its set-up (issue 10). The
 * shape is what libseccomp emits for such a list: a foreign architecture
 * or an x32 call kills the process, each allowed call is a compare and a
 * return, a call allowed only for some argument values (the vCPU's
 * ioctls, prctl's operations) compares the whole 64-bit argument, and
 * anything else gets the mode's action (trap, or log). A list that would
 * outgrow BPF's 8-bit jump offsets fails to build (-E2BIG), never wraps. */
#define BPF_MAX 512
#define BPF_FIXUPS 256
#define X32_SYSCALL_BIT 0x40000000u

/* Jumps to the program's two shared returns, patched once their place
 * is known (the last two instructions). */
enum { TO_ALLOW = 1, TO_DENY = 2 };

struct bpf {
	struct sock_filter f[BPF_MAX];
	unsigned n;
	bool full;
	struct fixup {
		uint16_t at;
		uint8_t jt, jf; /* TO_ALLOW, TO_DENY or 0 (left as emitted) */
	} fix[BPF_FIXUPS];
	unsigned nfix;
};

static void emit(struct bpf *b, uint16_t code, uint8_t jt, uint8_t jf, uint32_t k)
{
	if (b->n >= BPF_MAX) {
		b->full = true;
		return;
	}
	b->f[b->n++] = (struct sock_filter){ code, jt, jf, k };
}

/* A compare whose true and/or false branch goes to a shared return. */
static void emit_jeq_to(struct bpf *b, uint32_t k, uint8_t jt_to, uint8_t jf_to)
{
	if (b->nfix >= BPF_FIXUPS) {
		b->full = true;
		return;
	}
	b->fix[b->nfix++] = (struct fixup){ (uint16_t)b->n, jt_to, jf_to };
	emit(b, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, k);
}

/* An unconditional jump to the shared deny (BPF_JA's offset is 32-bit). */
static void emit_ja_deny(struct bpf *b)
{
	if (b->nfix >= BPF_FIXUPS) {
		b->full = true;
		return;
	}
	b->fix[b->nfix++] = (struct fixup){ (uint16_t)b->n, 0, TO_DENY };
	emit(b, BPF_JMP | BPF_JA, 0, 0, 0);
}

#define LD_ABS(off) emit(b, BPF_LD | BPF_W | BPF_ABS, 0, 0, (off))
#define RET(k) emit(b, BPF_RET | BPF_K, 0, 0, (k))

/* Syscall `nr` allowed when argument `arg` is one of vals[0..n) (each
 * below 2^32, as ioctl request numbers and prctl operations are): the high
 * word must be 0, then one compare per value. */
static void emit_arg_block(struct bpf *b, int nr, unsigned arg, const uint64_t *vals, size_t n)
{
	uint32_t lo = (uint32_t)offsetof(struct seccomp_data, args[0]) + 8 * arg, hi = lo + 4;
	size_t len = n + 5;
	if (len > 255) {
		b->full = true;
		return;
	}
	emit(b, BPF_JMP | BPF_JEQ | BPF_K, 0, (uint8_t)len, (uint32_t)nr);
	LD_ABS(hi);
	emit_jeq_to(b, 0, 0, TO_DENY);
	LD_ABS(lo);
	for (size_t i = 0; i < n; i++)
		emit_jeq_to(b, (uint32_t)vals[i], TO_ALLOW, 0);
	emit_ja_deny(b);
	/* the next block compares the number again */
	LD_ABS(offsetof(struct seccomp_data, nr));
}

static int cmp_nr(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

/* The plain (no argument check) calls as a binary search on the number:
 * the kernel runs a new filter once per system call number to find the
 * ones it always allows (its action cache), and installing a filter took
 * ~1.5 us per instruction here, so both the walk and the length count. */
static void emit_tree(struct bpf *b, const int *nrs, size_t n)
{
	if (n <= 3) {
		for (size_t i = 0; i < n; i++)
			emit_jeq_to(b, (uint32_t)nrs[i], TO_ALLOW, 0);
		emit_ja_deny(b);
		return;
	}
	size_t m = n / 2, at = b->n;
	emit(b, BPF_JMP | BPF_JGE | BPF_K, 0, 0, (uint32_t)nrs[m]); /* jt: past the lower half */
	emit_tree(b, nrs, m);
	size_t lower = b->n - at - 1;
	if (lower > 255)
		b->full = true;
	else if (!b->full)
		b->f[at].jt = (uint8_t)lower;
	emit_tree(b, nrs + m, n - m);
}

static int build_filter(struct bpf *b, enum seccomp_kind kind, uint32_t deflt)
{
	b->n = 0;
	b->nfix = 0;
	b->full = false;
	LD_ABS(offsetof(struct seccomp_data, arch));
	emit(b, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, AUDIT_ARCH_X86_64);
	RET(SECCOMP_RET_KILL_PROCESS);
	LD_ABS(offsetof(struct seccomp_data, nr));
	emit(b, BPF_JMP | BPF_JSET | BPF_K, 0, 1, X32_SYSCALL_BIT);
	RET(SECCOMP_RET_KILL_PROCESS);
	/* The calls with an argument check first (the vCPU's ioctl is its
	 * hottest call: KVM_RUN), then the rest. */
	int plain[128];
	size_t np = 0;
	for (const struct sc *c = kinds[kind].calls; c->nr >= 0; c++) {
		if (kind == SC_VCPU && c->nr == SYS_ioctl) {
			uint64_t v[sizeof(vcpu_ioctls) / sizeof(vcpu_ioctls[0])];
			for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
				v[i] = vcpu_ioctls[i];
			emit_arg_block(b, c->nr, 1, v, sizeof(v) / sizeof(v[0]));
		} else if (c->nr == SYS_prctl) {
			/* names; and for the main thread, what a thread it starts needs
			 * to install its own filter under the main one */
			static const uint64_t ops[] = { PR_GET_NAME, PR_SET_NAME, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP };
			emit_arg_block(b, c->nr, 0, ops, kind == SC_MAIN ? 4u : 2u);
		} else if (np < sizeof(plain) / sizeof(plain[0])) {
			plain[np++] = c->nr;
		} else {
			return -E2BIG;
		}
	}
	qsort(plain, np, sizeof(plain[0]), cmp_nr);
	size_t u = 0;
	for (size_t i = 0; i < np; i++)
		if (!u || plain[u - 1] != plain[i])
			plain[u++] = plain[i];
	emit_tree(b, plain, u);
	unsigned allow = b->n, deny = b->n + 1;
	RET(SECCOMP_RET_ALLOW);
	RET(deflt);
	for (unsigned i = 0; i < b->nfix && !b->full; i++) {
		struct sock_filter *f = &b->f[b->fix[i].at];
		unsigned next = b->fix[i].at + 1u;
		if (BPF_OP(f->code) == BPF_JA) {
			f->k = deny - next;
			continue;
		}
		unsigned jt = b->fix[i].jt == TO_ALLOW ? allow - next : b->fix[i].jt == TO_DENY ? deny - next : f->jt;
		unsigned jf = b->fix[i].jf == TO_ALLOW ? allow - next : b->fix[i].jf == TO_DENY ? deny - next : f->jf;
		if (jt > 255 || jf > 255)
			b->full = true;
		f->jt = (uint8_t)jt;
		f->jf = (uint8_t)jf;
	}
	return b->full ? -E2BIG : 0;
}

/* Installs it on the calling thread (and the threads it creates later). */
static int load_filter(const struct bpf *b)
{
	struct sock_fprog prog = { .len = (unsigned short)b->n, .filter = (struct sock_filter *)b->f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return -errno;
	return 0;
}

/* VIGIL_TEST_SECCOMP_PROBE=KIND[:CALL]: the test's proof that the list
 * holds. The thread tries one call its list lacks and says what happened:
 * execve (no list has it), openat or socket (the control list has them: a
 * thread that inherits the control thread's filter is refused them only by
 * its own), ioctl TIOCGWINSZ (the vCPU list has ioctl for some request
 * numbers only). Each is harmless when let through: a path that does not exist,
 * a socket closed at once. */
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
		/* a request number outside the vCPU's ioctl list, on no descriptor */
		r = syscall(SYS_ioctl, -1, TIOCGWINSZ, NULL);
	} else if (strcmp(call, "socket") == 0) {
		r = syscall(SYS_socket, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	} else {
		char *argv[] = { "vigil-seccomp-probe", NULL };
		call = "execve";
		r = syscall(SYS_execve, path, argv, NULL);
	}
	int e = errno;
	if (r >= 0)
		close((int)r);
	fprintf(stderr, "vigil: seccomp probe: %s thread: %s returned %d (%s)\n", kinds[kind].name, call, r < 0 ? -1 : 0,
		r < 0 ? strerror(e) : "ok");
}

int seccomp_enter(enum seccomp_kind kind)
{
	if (kind >= SC_NKINDS)
		return -1;
	thread_kind = kinds[kind].name;
	if (kind != SC_MAIN) {
		char name[16];
		snprintf(name, sizeof(name), "vg-%s", kinds[kind].name);
		prctl(PR_SET_NAME, name, 0, 0, 0);
	}
	if (mode_ == SECCOMP_MODE_OFF) {
		probe(kind);
		return 0;
	}
	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
	sigfillset(&sa.sa_mask);
	sigaction(SIGSYS, &sa, NULL);

	struct bpf b; /* 4 KiB of stack */
	int r = build_filter(&b, kind, mode_ == SECCOMP_MODE_LOG ? SECCOMP_RET_LOG : SECCOMP_RET_TRAP);
	if (r == 0)
		r = load_filter(&b);
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
			fprintf(out, " (ioctl: %zu request numbers)", sizeof(vcpu_ioctls) / sizeof(vcpu_ioctls[0]));
		if (verbose) {
			fputs(":", out);
			for (const struct sc *c = kinds[k].calls; c->nr >= 0; c++)
				fprintf(out, " %s", c->name);
		}
		fputc('\n', out);
	}
}
