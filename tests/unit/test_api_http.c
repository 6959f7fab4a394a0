/* Unit tests for the API's HTTP server (api/http.c) over the fake VMM: the
 * socket file's rules (mode 0600, a stale socket replaced, a live one or a
 * non-socket refused, removed at stop) and one request end to end. */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/http.h"
#include "fake_vmm_api.h"

static char path[64];
static char err[512];
static struct vmm *m;

static int setup(void **state)
{
	snprintf(path, sizeof(path), "/tmp/vigil-http-%d.sock", (int)getpid());
	unlink(path);
	m = vmm_new(NULL);
	return 0;
}

static int teardown(void **state)
{
	api_server_stop();
	unlink(path);
	vmm_free(m);
	return 0;
}

static int connect_to(void)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(a.sun_path, path);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sends req, returns what comes back until the server closes. */
static void exchange(const char *req, char *out, size_t len)
{
	int fd = connect_to();
	size_t got = 0;
	ssize_t n;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while (got + 1 < len && (n = read(fd, out + got, len - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = 0;
	close(fd);
}

static void test_socket_rules(void **state)
{
	struct stat st;

	assert_int_equal(api_server_start(path, m, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	api_server_stop();
	assert_int_equal(stat(path, &st), -1); /* removed at stop */

	/* a stale socket (nobody listening) is replaced */
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	close(fd);
	assert_int_equal(api_server_start(path, m, err, sizeof(err)), 0);
	api_server_stop();

	/* a live one is not taken over */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(api_server_start(path, m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "another process is listening"));
	close(fd);
	unlink(path);

	/* nor is a file that is not a socket */
	FILE *f = fopen(path, "w");
	fclose(f);
	assert_int_equal(api_server_start(path, m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a socket"));
	assert_int_equal(stat(path, &st), 0); /* and it is left alone */
	unlink(path);
}

/* The server's thread must not take the process's signals, and starting it
 * must leave the caller's mask as it was (the vCPU threads the caller makes
 * later inherit it, and need their kick signal). */
static void test_signal_masks(void **state)
{
	sigset_t before, after;

	pthread_sigmask(SIG_SETMASK, NULL, &before);
	assert_int_equal(api_server_start(path, m, err, sizeof(err)), 0);
	pthread_sigmask(SIG_SETMASK, NULL, &after);
	for (int sig = 1; sig < 32; sig++)
		if (sigismember(&before, sig) != sigismember(&after, sig))
			fail_msg("api_server_start changed the caller's mask for signal %d", sig);

	/* the HTTP thread: every thread but this one, from /proc */
	char line[256];
	unsigned threads = 0;
	FILE *f;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "grep -h SigBlk /proc/%d/task/*/status", (int)getpid());
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long mask = strtoull(line + 7, NULL, 16);
		if ((mask & (1ULL << (SIGTERM - 1))) && (mask & (1ULL << (SIGINT - 1))))
			threads++;
	}
	pclose(f);
	assert_true(threads >= 1); /* the server's thread blocks SIGTERM and SIGINT */
}

static void test_requests(void **state)
{
	char out[4096];
	unsigned before = m->api_requests, metrics_before = fake_metrics_count;

	assert_int_equal(api_server_start(path, m, err, sizeof(err)), 0);
	exchange("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 200"));
	assert_non_null(strstr(out, "Server: Firecracker API"));
	assert_non_null(strstr(out, "Content-Type: application/json"));
	assert_non_null(strstr(out, "\"app_name\":\"vigil\""));
	exchange("PUT /machine-config HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: "
		 "35\r\n\r\n"
		 "{\"vcpu_count\":3,\"mem_size_mib\":256}",
		 out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 204"));
	assert_int_equal(m->cfg.machine.vcpu_count, 3);
	exchange("PUT /machine-config HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: "
		 "60000\r\n\r\n",
		 out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 400"));
	assert_non_null(strstr(out, "larger than the limit of 51200"));
	/* counted: the routed requests by the VMM, all three by metrics */
	assert_int_equal(m->api_requests, before + 2);
	assert_int_equal(fake_metrics_count, metrics_before + 3);
	assert_string_equal(fake_metrics_last_method, "PUT");
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_socket_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_signal_masks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
