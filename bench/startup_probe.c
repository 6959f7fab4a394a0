/* startup_probe — runs a VMM and measures its own process, not ours:
 * wall time from exec to the first KVM_RUN, the process's CPU time (user +
 * sys, all threads, in ns) at that moment, and its peak RSS (VmHWM) as it
 * exits.
 *
 *   startup_probe VMM [ARGS...]
 *   prints: "first_run_wall_us=N first_run_cpu_us=N peak_rss_kb=N anon_kb=N
 *            file_kb=N status=N" (anon and file: RssAnon and RssFile as it
 *            exits, the private and the shared-text parts of the RSS)
 *
 * How: the child installs a seccomp filter that traces ioctl(_, KVM_RUN)
 * and nothing else, then execs the VMM under PTRACE_SEIZE (following its
 * threads, since KVM_RUN runs on a vCPU thread). The first such stop reads
 * the process's CPU clock (clock_getcpuclockid) before the ioctl runs; the
 * exit stop reads /proc/PID/status while the mm still exists. The VMM's
 * own seccomp filters stack under ours and cannot hide the stop (TRACE
 * ranks below ALLOW only). Peak RSS is not wait4()'s ru_maxrss: across
 * exec Linux keeps the forking parent's high-water mark, so a Python
 * parent would be measured instead of the VMM. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(clockid_t c)
{
	struct timespec t;
	if (clock_gettime(c, &t) < 0)
		return -1;
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* One "Name: N kB" field of /proc/PID/status, or -1. */
static long status_kb(pid_t pid, const char *name)
{
	char path[64], line[256];
	long kb = -1;
	size_t n = strlen(name);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, name, n) && line[n] == ':' && sscanf(line + n + 1, "%ld", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

/* STARTUP_PROBE_SMAPS=FILE: a copy of /proc/PID/smaps at exit, to see
 * which mappings the resident memory is in. */
static void keep_smaps(pid_t pid)
{
	const char *to = getenv("STARTUP_PROBE_SMAPS");
	if (!to)
		return;
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	FILE *in = fopen(path, "r"), *out = fopen(to, "w");
	size_t n;
	while (in && out && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, out);
	if (in)
		fclose(in);
	if (out)
		fclose(out);
}

static int trace_kvm_run(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)KVM_RUN, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return (int)syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: startup_probe VMM [ARGS...]\n");
		return 2;
	}
	int go[2];
	if (pipe(go) < 0)
		return perror("pipe"), 1;
	pid_t pid = fork();
	if (pid < 0)
		return perror("fork"), 1;
	if (pid == 0) {
		char c;
		close(go[1]);
		/* Wait until the parent has seized us, so the exec is traced. */
		if (read(go[0], &c, 1) != 1 || trace_kvm_run() < 0)
			_exit(126);
		execvp(argv[1], argv + 1);
		_exit(127);
	}
	close(go[0]);
	if (ptrace(PTRACE_SEIZE, pid, 0,
		   PTRACE_O_TRACESECCOMP | PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL) < 0)
		return perror("PTRACE_SEIZE"), 1;
	clockid_t cpu;
	if (clock_getcpuclockid(pid, &cpu) != 0)
		return fprintf(stderr, "clock_getcpuclockid failed\n"), 1;
	long long t0 = now_ns(CLOCK_MONOTONIC);
	if (write(go[1], "x", 1) != 1)
		return perror("write"), 1;
	close(go[1]);

	long long run_wall = -1, run_cpu = -1;
	long hwm = -1, anon = -1, file = -1;
	int status = 0, exit_code = -1;
	for (;;) {
		pid_t w = waitpid(-1, &status, __WALL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			if (w == pid) {
				exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
				break;
			}
			continue;
		}
		if (!WIFSTOPPED(status))
			continue;
		int sig = WSTOPSIG(status), ev = status >> 16, deliver = 0;
		if (sig == SIGTRAP && ev == PTRACE_EVENT_SECCOMP) {
			if (run_wall < 0) {
				run_wall = now_ns(CLOCK_MONOTONIC) - t0;
				run_cpu = now_ns(cpu);
			}
		} else if (sig == SIGTRAP && ev == PTRACE_EVENT_EXIT) {
			if (w == pid) {
				hwm = status_kb(pid, "VmHWM");
				anon = status_kb(pid, "RssAnon");
				file = status_kb(pid, "RssFile");
				keep_smaps(pid);
			}
		} else if (ev == PTRACE_EVENT_STOP || (sig == SIGTRAP && ev)) {
			/* group-stop, clone, exec events: nothing to deliver */
		} else if (sig != SIGTRAP) {
			deliver = sig;
		}
		ptrace(PTRACE_CONT, w, 0, (void *)(long)deliver);
	}
	printf("first_run_wall_us=%lld first_run_cpu_us=%lld peak_rss_kb=%ld anon_kb=%ld file_kb=%ld status=%d\n",
	       run_wall < 0 ? -1 : run_wall / 1000, run_cpu < 0 ? -1 : run_cpu / 1000, hwm, anon, file, exit_code);
	return 0;
}
