/* api_fake_server — the real HTTP server (api/http.c) and router over the
 * fake VMM (fake_vmm_api.h), for curl, tests/api_openapi.py and
 * tests/api_robust.py without KVM. Usage: api_fake_server SOCKET [-v].
 * Runs until SIGINT/SIGTERM, then removes the socket. InstanceStart needs a
 * kernel file to exist, as the real VMM does; nothing is booted. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "api/http.h"
#include "fake_vmm_api.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

int main(int argc, char **argv)
{
	char err[512];
	struct sigaction sa = {.sa_handler = on_signal};
	struct vmm *m;

	if (argc < 2) {
		fprintf(stderr, "usage: %s SOCKET [-v]\n", argv[0]);
		return 2;
	}
	fake_log_quiet = !(argc > 2 && !strcmp(argv[2], "-v"));
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (!(m = vmm_new(NULL)))
		return 1;
	fake_log_owner = m;
	if (api_server_start(argv[1], m, err, sizeof(err)) < 0) {
		fprintf(stderr, "api_fake_server: %s\n", err);
		return 1;
	}
	fprintf(stderr, "api_fake_server: listening on %s\n", argv[1]);
	while (!stop)
		pause();
	api_server_stop();
	vmm_free(m);
	return 0;
}
