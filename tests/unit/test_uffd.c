/* Unit tests for the Uffd memory backend (src/host/uffd.c) with the example
 * page server (tools/uffd_pageserver.c, run from the same build tree):
 * two anonymous regions attached to a running server read back the memory
 * file's bytes at the right offsets, from user mode and from kernel mode
 * (a write(2) out of guest RAM, as KVM or a host syscall faults it), the
 * server exits on its own when the VMM process does, and a missing socket
 * gives one clear line. Skipped where this host refuses userfaultfd. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/gmem.h"
#include "host/uffd.h"

#define R0_SIZE (64 * 4096)
#define R1_SIZE (48 * 4096)

struct env {
	char dir[40], sock[96], memfile[96];
	uint8_t *file; /* the memory file's expected contents */
	pid_t server;
	int server_err; /* read end of the server's stderr */
};

static void msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* A page the server never fills blocks its reader for good: fail instead. */
static void on_alarm(int sig)
{
	static const char msg[] = "test_uffd: FAILED: no answer in 60 s: a page was never served (page server gone?)\n";
	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(2);
	_exit(1);
}

/* Why userfaultfd with kernel-mode faults is unavailable here, or NULL. */
static const char *uffd_refused(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0) {
		close(fd);
		return NULL;
	}
	if (access("/dev/userfaultfd", R_OK | W_OK) == 0)
		return NULL;
	return errno == ENOSYS ? "kernel without userfaultfd"
			       : "userfaultfd refused (needs CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=1 "
				 "or /dev/userfaultfd)";
}

static void server_path(char *out, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = 0;
	/* BUILD/tests/test_uffd -> BUILD/vigil-uffd-pageserver */
	snprintf(out, len, "%s/vigil-uffd-pageserver", dirname(dirname(exe)));
}

static void start_server(struct env *e)
{
	char bin[PATH_MAX + 32];
	server_path(bin, sizeof(bin));
	if (access(bin, X_OK) != 0)
		fail_msg("%s missing: build it with make tests", bin);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	e->server = fork();
	assert_true(e->server >= 0);
	if (e->server == 0) {
		dup2(p[1], 2);
		execl(bin, bin, e->sock, e->memfile, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	e->server_err = p[0];
}

/* The server's exit status (-1: still running after timeout_ms) and its
 * stderr in out. */
static int reap_server(struct env *e, int timeout_ms, char *out, size_t len)
{
	int st = 0;
	pid_t w = 0;
	for (int i = 0; i < timeout_ms && (w = waitpid(e->server, &st, WNOHANG)) == 0; i++)
		msleep(1);
	if (w == 0) {
		kill(e->server, SIGKILL);
		waitpid(e->server, &st, 0);
	}
	ssize_t n = read(e->server_err, out, len - 1);
	out[n > 0 ? n : 0] = 0;
	close(e->server_err);
	return w == 0 ? -1 : (WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

static int setup(void **state)
{
	static struct env e;
	memset(&e, 0, sizeof(e));
	const char *why = uffd_refused();
	if (why) {
		fprintf(stderr, "test_uffd: skipped: %s\n", why);
		*state = NULL;
		return 0;
	}
	snprintf(e.dir, sizeof(e.dir), "/tmp/vigil-uffd-XXXXXX");
	assert_non_null(mkdtemp(e.dir));
	snprintf(e.sock, sizeof(e.sock), "%s/uffd.sock", e.dir);
	snprintf(e.memfile, sizeof(e.memfile), "%s/mem", e.dir);
	e.file = malloc(R0_SIZE + R1_SIZE);
	assert_non_null(e.file);
	/* Every page differs from every other, so a wrong offset shows. */
	for (size_t i = 0; i < R0_SIZE + R1_SIZE; i++)
		e.file[i] = (uint8_t)(i * 131 + i / 4096 * 17 + 1);
	FILE *f = fopen(e.memfile, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(e.file, 1, R0_SIZE + R1_SIZE, f), R0_SIZE + R1_SIZE);
	fclose(f);
	signal(SIGALRM, on_alarm);
	alarm(60);
	*state = &e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	if (!e)
		return 0;
	unlink(e->sock);
	unlink(e->memfile);
	rmdir(e->dir);
	free(e->file);
	return 0;
}

static void make_gmem(struct gmem *m)
{
	memset(m, 0, sizeof(*m));
	void *a = mmap(NULL, R0_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	void *b = mmap(NULL, R1_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(a != MAP_FAILED && b != MAP_FAILED);
	assert_int_equal(gmem_add(m, 0, R0_SIZE, a), 0);
	assert_int_equal(gmem_add(m, 1ULL << 32, R1_SIZE, b), 0);
}

/* The server needs a moment to listen: retry while the socket is not there. */
static int attach_retrying(const struct gmem *m, const char *sock, char *err, size_t len)
{
	int fd = -1;
	for (int i = 0; i < 500 && fd < 0; i++) {
		fd = uffd_attach(m, sock, err, len);
		if (fd < 0 && !strstr(err, "No such file") && !strstr(err, "Connection refused"))
			break;
		if (fd < 0)
			msleep(10);
	}
	return fd;
}

static void test_regions_filled_from_file(void **state)
{
	struct env *e = *state;
	if (!e)
		skip();
	struct gmem m;
	char err[256] = "", out[1024];
	make_gmem(&m);
	start_server(e);
	int fd = attach_retrying(&m, e->sock, err, sizeof(err));
	if (fd < 0)
		fail_msg("uffd_attach: %s", err);

	/* Kernel mode first, on pages nobody touched: write(2) copies out of
	 * region 1 the way KVM or a host syscall reads guest RAM. */
	int p[2];
	uint8_t buf[4096];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], m.r[1].host + 5 * 4096, 4096), 4096);
	assert_int_equal(read(p[0], buf, sizeof(buf)), 4096);
	assert_memory_equal(buf, e->file + R0_SIZE + 5 * 4096, 4096);
	close(p[0]);
	close(p[1]);

	/* User mode: every byte of both regions, region 1 from offset R0_SIZE. */
	assert_memory_equal(m.r[0].host, e->file, R0_SIZE);
	assert_memory_equal(m.r[1].host, e->file + R0_SIZE, R1_SIZE);
	/* Served pages are ordinary memory afterwards. */
	m.r[0].host[10] ^= 0xff;
	assert_int_equal(m.r[0].host[10], (uint8_t)(e->file[10] ^ 0xff));

	kill(e->server, SIGTERM);
	int rc = reap_server(e, 5000, out, sizeof(out));
	uffd_detach(fd);
	if (rc != 0)
		fail_msg("server exit %d: %s", rc, out);
	unsigned long served = 0;
	const char *s = strstr(out, "served ");
	assert_non_null(s);
	served = strtoul(s + 7, NULL, 10);
	assert_int_equal(served, (R0_SIZE + R1_SIZE) / 4096);
	munmap(m.r[0].host, R0_SIZE);
	munmap(m.r[1].host, R1_SIZE);
}

/* The server's lifetime: it ends by itself once the VMM process is gone. */
static void test_server_exits_with_vmm(void **state)
{
	struct env *e = *state;
	if (!e)
		skip();
	char out[1024];
	start_server(e);
	pid_t vmm = fork();
	assert_true(vmm >= 0);
	if (vmm == 0) {
		struct gmem m;
		char err[256] = "";
		make_gmem(&m);
		int fd = attach_retrying(&m, e->sock, err, sizeof(err));
		_exit(fd >= 0 && memcmp(m.r[1].host, e->file + R0_SIZE, 4096) == 0 ? 0 : 1);
	}
	int st;
	assert_int_equal(waitpid(vmm, &st, 0), vmm);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	int rc = reap_server(e, 5000, out, sizeof(out));
	if (rc != 0)
		fail_msg("server did not exit after the VMM (rc %d): %s", rc, out);
	assert_non_null(strstr(out, "the VMM exited"));
}

/* What Firecracker sends, by hand: its userfaultfd, and one region in each
 * of the mapping's forms (no page size before 1.7; page_size_kib, which
 * Firecracker fills with bytes; a page size in KiB as some handlers write).
 * The server must serve each from the file at the region's offset. */
static void firecracker_handshake(struct env *e, const char *extra)
{
	char out[1024], msg[512];
	start_server(e);
	void *a = mmap(NULL, R1_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(a != MAP_FAILED);
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	assert_true(uffd >= 0);
	struct uffdio_api api = { .api = UFFD_API };
	assert_int_equal(ioctl(uffd, UFFDIO_API, &api), 0);
	struct uffdio_register reg = { .range = { (uintptr_t)a, R1_SIZE }, .mode = UFFDIO_REGISTER_MODE_MISSING };
	assert_int_equal(ioctl(uffd, UFFDIO_REGISTER, &reg), 0);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", e->sock);
	int rc = -1;
	for (int i = 0; i < 500 && (rc = connect(s, (struct sockaddr *)&sa, sizeof(sa))) < 0; i++)
		msleep(10);
	assert_int_equal(rc, 0);
	int n = snprintf(msg, sizeof(msg), "[{\"base_host_virt_addr\":%llu,\"size\":%d,\"offset\":%d%s}]",
			 (unsigned long long)(uintptr_t)a, R1_SIZE, R0_SIZE, extra);
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} ctl;
	memset(&ctl, 0, sizeof(ctl));
	struct iovec iov = { msg, (size_t)n };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &uffd, sizeof(int));
	assert_int_equal(sendmsg(s, &mh, 0), n);
	close(s);
	assert_memory_equal(a, e->file + R0_SIZE, R1_SIZE);
	kill(e->server, SIGTERM);
	rc = reap_server(e, 5000, out, sizeof(out));
	if (rc != 0)
		fail_msg("server exit %d: %s", rc, out);
	close(uffd);
	munmap(a, R1_SIZE);
}

static void test_firecracker_handshakes(void **state)
{
	struct env *e = *state;
	if (!e)
		skip();
	firecracker_handshake(e, "");
	firecracker_handshake(e, ",\"page_size_kib\":4096");
	firecracker_handshake(e, ",\"page_size\":4096,\"page_size_kib\":4096");
	firecracker_handshake(e, ",\"page_size_kib\":4");
}

static void test_missing_socket(void **state)
{
	struct gmem m;
	char err[256] = "";
	make_gmem(&m);
	assert_int_equal(uffd_attach(&m, "/nonexistent/uffd.sock", err, sizeof(err)), -1);
	assert_string_equal(err, "uffd backend: connect /nonexistent/uffd.sock: No such file or directory");
	/* Nothing stays registered: the memory reads as zeros without a server. */
	assert_int_equal(m.r[0].host[0], 0);
	munmap(m.r[0].host, R0_SIZE);
	munmap(m.r[1].host, R1_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_regions_filled_from_file),
		cmocka_unit_test(test_server_exits_with_vmm),
		cmocka_unit_test(test_firecracker_handshakes),
		cmocka_unit_test(test_missing_socket),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
