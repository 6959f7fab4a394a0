/* seccomp_lists — each thread kind's allowed system calls: the one place
 * they are written down. Included by src/host/seccomp.c (the counts and
 * `vigil seccomp-list`) and by tools/seccomp_gen.c, which turns them into
 * the BPF programs at build time with libseccomp (build/gen/seccomp_bpf.h),
 * so vigil neither links libseccomp nor compiles a filter per thread at
 * start-up. Lists were taken from runs of every native suite under
 * --seccomp log (the kernel logs each call outside a list with the
 * thread's name) and kept to what those runs and a Linux guest in the lab
 * needed. */
#ifndef VIGIL_HOST_SECCOMP_LISTS_H
#define VIGIL_HOST_SECCOMP_LISTS_H

#include "host/seccomp.h"

#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <seccomp.h> /* SCMP_SYS only: its numbers, no library call */
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define END (-1)

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
	/* a live PUT /policy: a disk rule's overlay checked (access) and opened */
	SCMP_SYS(access), SCMP_SYS(faccessat), SCMP_SYS(faccessat2),
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
 * the API (vcpu_run_on); MSRs the policy provides (and the TSC offset a
 * provided TSC write moves); guest debug; kvmclock
 * told of a pause; the in-kernel irqchip's lines; MSI routes the guest
 * reprograms through MSI-X; doorbells moved with a BAR. Everything else
 * (vCPU creation, snapshots, FPU, LAPIC, events, memory slots) runs on the
 * control thread while the vCPUs are parked or before they exist. */
static const unsigned long vcpu_ioctls[] = {
	KVM_RUN,	   KVM_GET_REGS,  KVM_SET_REGS,	     KVM_GET_SREGS,	KVM_SET_SREGS,
	KVM_GET_MSRS,	   KVM_SET_MSRS,  KVM_SET_GUEST_DEBUG, KVM_KVMCLOCK_CTRL, KVM_IRQ_LINE,
	KVM_SET_GSI_ROUTING, KVM_IOEVENTFD,
	KVM_GET_DEVICE_ATTR, KVM_SET_DEVICE_ATTR, /* the TSC offset a provided TSC write moves */
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
 * numbers (the vCPU's two lists are added by the generator's vcpu rule). */
static const struct kind {
	const char *name;
	const int *calls;
	const unsigned long *ioctls;
	size_t nioctls;
} kinds[SC_NKINDS] = {
	[SC_MAIN] = { .name = "main", .calls = main_calls },
	[SC_VCPU] = { .name = "vcpu", .calls = vcpu_calls },
	[SC_EVLOOP] = { .name = "evloop", .calls = evloop_calls, .ioctls = evloop_ioctls, .nioctls = NELEM(evloop_ioctls) },
	[SC_BLK] = { .name = "blk", .calls = blk_calls, .ioctls = blk_ioctls, .nioctls = NELEM(blk_ioctls) },
	[SC_CONSOLE] = { .name = "console", .calls = console_calls },
	[SC_CONSOLE_OUT] = { .name = "conout", .calls = conout_calls },
	[SC_API] = { .name = "api", .calls = api_calls },
	[SC_TRACE] = { .name = "trace", .calls = trace_calls },
	[SC_GDB] = { .name = "gdb", .calls = gdb_calls },
};

#endif
