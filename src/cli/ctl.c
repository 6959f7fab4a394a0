/* ctl — `vigil ctl`: one HTTP/1.1 request over the API's Unix socket per
 * command, the answer's body on stdout, an error's fault_message on stderr
 * as "vigil: <message>". Plain sockets; parsing is in cli/ctl_http.c. */
#include "cli/ctl.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli/ctl_http.h"

#define CTL_TIMEOUT_MS	 10000
#define CTL_MAX_RESPONSE (64u << 20)

struct ctl_cmd {
	const char *name, *method, *path, *body, *help;
};

static const struct ctl_cmd cmds[] = {
    {"status", "GET", "/", NULL, "the instance's id, state and version"},
    {"start", "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}", "boot the configured VM"},
    {"pause", "PATCH", "/vm", "{\"state\":\"Paused\"}", "pause the vCPUs"},
    {"resume", "PATCH", "/vm", "{\"state\":\"Resumed\"}", "resume them"},
    {"ctrl-alt-del", "PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}", "press Ctrl+Alt+Del"},
    {"flush-metrics", "PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}", "write a metrics line now"},
    {"config", "GET", "/vm/config", NULL, "the full VM configuration"},
    {"stats", "GET", "/vigil/stats", NULL, "vigil's monitor counts (JSON)"},
    {"metrics", "GET", "/metrics", NULL, "Prometheus text"},
    {"policy", "GET", "/policy", NULL, "the policy in force (docs/POLICY.md)"},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: vigil ctl --api-sock PATH COMMAND\ncommands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(out, "  %-14s %s %s: %s\n", cmds[i].name, cmds[i].method, cmds[i].path, cmds[i].help);
}

/* VIGIL_CTL_TIMEOUT_MS shortens the wait (tests); 10 s otherwise. */
static int timeout_ms(void)
{
	const char *e = getenv("VIGIL_CTL_TIMEOUT_MS");
	int t = e ? atoi(e) : 0;
	return t > 0 ? t : CTL_TIMEOUT_MS;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_for(int fd, short ev, long long deadline)
{
	struct pollfd p = {.fd = fd, .events = ev};
	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0)
			return 0;
		int n = poll(&p, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		return n;
	}
}

static int connect_api(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "vigil: API socket path too long: %s\n", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "vigil: cannot connect to the API socket %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *p, size_t n, long long deadline)
{
	while (n) {
		if (wait_for(fd, POLLOUT, deadline) <= 0)
			return -1;
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads until a whole response parses; 0, or -1 with a message printed. */
static int read_response(int fd, const char *sock, long long deadline, struct http_resp *r)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	int rc = -1;
	bool eof = false;
	while (buf) {
		int st = http_parse_response(buf, len, eof, r);
		if (st == 1) {
			rc = 0;
			break;
		}
		if (st < 0) {
			fprintf(stderr, "vigil: %s answered something that is not an HTTP response\n", sock);
			break;
		}
		if (wait_for(fd, POLLIN, deadline) <= 0) {
			fprintf(stderr, "vigil: no answer from %s within %d ms\n", sock, timeout_ms());
			break;
		}
		if (len == cap) {
			char *nb = cap < CTL_MAX_RESPONSE ? realloc(buf, cap * 2) : NULL;
			if (!nb) {
				fprintf(stderr, "vigil: the answer from %s is too large\n", sock);
				break;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t n = recv(fd, buf + len, cap - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "vigil: reading from %s: %s\n", sock, strerror(errno));
			break;
		}
		if (n == 0) {
			if (len == 0) {
				fprintf(stderr, "vigil: %s closed the connection without answering\n", sock);
				break;
			}
			eof = true;
		}
		len += (size_t)n;
	}
	free(buf);
	return rc;
}

static int run(const char *sock, const struct ctl_cmd *c)
{
	int fd = connect_api(sock);
	if (fd < 0)
		return 1;
	char req[512];
	size_t blen = c->body ? strlen(c->body) : 0;
	int n =
	    snprintf(req, sizeof(req),
		     "%s %s HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\nConnection: close\r\n",
		     c->method, c->path);
	if (c->body)
		n += snprintf(req + n, sizeof(req) - (size_t)n,
			      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", blen,
			      c->body);
	else
		n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");

	long long deadline = now_ms() + timeout_ms();
	struct http_resp r;
	if (send_all(fd, req, (size_t)n, deadline) != 0) {
		fprintf(stderr, "vigil: cannot send to %s: %s\n", sock,
			errno ? strerror(errno) : "timed out");
		close(fd);
		return 1;
	}
	int rc = read_response(fd, sock, deadline, &r);
	close(fd);
	if (rc != 0)
		return 1;
	if (r.status >= 400) {
		char *m = http_fault_message(r.body, r.body_len);
		if (m) {
			/* One line, whatever the server put in the message. */
			for (char *p = m; *p; p++)
				if (*p == '\n' || *p == '\r')
					*p = ' ';
			fprintf(stderr, "vigil: %s\n", m);
		} else {
			fprintf(stderr, "vigil: %s %s: HTTP %d %s\n", c->method, c->path, r.status, r.reason);
		}
		free(m);
		http_resp_free(&r);
		return 1;
	}
	if (r.body_len) {
		fwrite(r.body, 1, r.body_len, stdout);
		/* JSON bodies carry no final newline; keep the shell prompt apart. */
		if (r.body[r.body_len - 1] != '\n')
			fputc('\n', stdout);
	}
	http_resp_free(&r);
	return fflush(stdout) == 0 ? 0 : 1;
}

int ctl_main(int argc, char **argv)
{
	const char *sock = NULL, *cmd = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--api-sock") == 0) {
			if (++i == argc) {
				fprintf(stderr, "vigil: --api-sock needs a path\n");
				return 1;
			}
			sock = argv[i];
		} else if (strncmp(argv[i], "--api-sock=", 11) == 0) {
			sock = argv[i] + 11;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "vigil: ctl: unknown option '%s' (try 'vigil ctl --help')\n",
				argv[i]);
			return 1;
		} else if (cmd) {
			fprintf(stderr, "vigil: ctl: one command at a time ('%s' and '%s')\n", cmd, argv[i]);
			return 1;
		} else {
			cmd = argv[i];
		}
	}
	if (!sock || !*sock) {
		fprintf(stderr, "vigil: ctl: missing --api-sock PATH (try 'vigil ctl --help')\n");
		return 1;
	}
	if (!cmd) {
		fprintf(stderr, "vigil: ctl: missing command (try 'vigil ctl --help')\n");
		return 1;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmds[i].name, cmd) == 0)
			return run(sock, &cmds[i]);
	fprintf(stderr, "vigil: ctl: unknown command '%s' (try 'vigil ctl --help')\n", cmd);
	return 1;
}
