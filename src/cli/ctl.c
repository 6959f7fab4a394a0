/* ctl — `vigil ctl`: one HTTP/1.1 request over the API's Unix socket per
 * command, the answer's body on stdout, an error's fault_message on stderr
 * as "vigil: <message>". Plain sockets; parsing is in cli/ctl_http.c. */
#include "cli/ctl.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
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
	fprintf(out, "usage: vigil ctl --api-sock PATH COMMAND [ARGS]\ncommands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(out, "  %-14s %s %s: %s\n", cmds[i].name, cmds[i].method, cmds[i].path, cmds[i].help);
	fprintf(out, "  regs [N]       GET /vigil/vcpus/N/regs: vCPU N's registers (N: 0)\n"
		     "  mem (--gpa ADDR | --gva ADDR --vcpu N) --len N [--out FILE]\n"
		     "                 GET /vigil/memory: guest memory, a hex dump (raw into FILE)\n"
		     "  translate N GVA\n"
		     "                 GET /vigil/vcpus/N/translate: GVA through vCPU N's page tables\n"
		     "  dump PATH      PUT /vigil/dump: an ELF core of the guest (gdb opens it)\n"
		     "  trace PATH [FILTER] | trace filter SPEC | trace off\n"
		     "                 PUT /vigil/trace: start (or switch), refilter or stop the JSON-lines trace\n"
		     "  audit PATH | audit off\n"
		     "                 PUT /vigil/audit: start (or switch) or stop the audit log\n"
		     "  snapshot STATE MEM [--diff]\n"
		     "                 PUT /snapshot/create: the paused VM into a state and a memory file\n"
		     "  restore STATE (MEM | --uffd SOCKET) [--resume] [--track-dirty-pages]\n"
		     "                 PUT /snapshot/load: a fresh vigil becomes the snapshot's VM\n");
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
static int read_response(int fd, const char *sock, long long deadline, int ms, struct http_resp *r)
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
			fprintf(stderr, "vigil: no answer from %s within %d ms\n", sock, ms);
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

/* Sends one request and reads the answer; 0 with *r (a status below 400),
 * or 1 with the reason printed. */
static int request(const char *sock, const struct ctl_cmd *c, int wait_ms, struct http_resp *out)
{
	int fd = connect_api(sock);
	if (fd < 0)
		return 1;
	char req[8192];
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
	if ((size_t)n >= sizeof(req)) {
		fprintf(stderr, "vigil: ctl: the request is too long\n");
		close(fd);
		return 1;
	}

	int ms = wait_ms && !getenv("VIGIL_CTL_TIMEOUT_MS") ? wait_ms : timeout_ms();
	long long deadline = now_ms() + ms;
	struct http_resp r;
	if (send_all(fd, req, (size_t)n, deadline) != 0) {
		fprintf(stderr, "vigil: cannot send to %s: %s\n", sock,
			errno ? strerror(errno) : "timed out");
		close(fd);
		return 1;
	}
	int rc = read_response(fd, sock, deadline, ms, &r);
	close(fd);
	if (rc != 0)
		return 1;
	*out = r;
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
	return 0;
}

static int run(const char *sock, const struct ctl_cmd *c)
{
	struct http_resp r;
	if (request(sock, c, 0, &r) != 0)
		return 1;
	if (r.body_len) {
		fwrite(r.body, 1, r.body_len, stdout);
		/* JSON bodies carry no final newline; keep the shell prompt apart. */
		if (r.body[r.body_len - 1] != '\n')
			fputc('\n', stdout);
	}
	http_resp_free(&r);
	return fflush(stdout) == 0 ? 0 : 1;
}


/* ---- introspection: commands with arguments ------------------------------ */

/* A vCPU number or an address as the API takes it (decimal or 0x hex). */
static bool plain_number(const char *s)
{
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	if (!*s)
		return false;
	for (; *s; s++)
		if (!strchr("0123456789abcdefABCDEF", *s))
			return false;
	return true;
}

static int bad_number(const char *what, const char *s)
{
	fprintf(stderr, "vigil: ctl: %s '%s' is not a number (decimal, or hex with 0x)\n", what, s);
	return 1;
}

static int get_json(const char *sock, const char *path)
{
	struct ctl_cmd c = { .method = "GET", .path = path };
	return run(sock, &c);
}

static int ctl_regs(const char *sock, int argc, char **argv)
{
	char path[96];
	if (argc > 1) {
		fprintf(stderr, "vigil: ctl: regs takes one vCPU number at most\n");
		return 1;
	}
	if (argc && !plain_number(argv[0]))
		return bad_number("vCPU", argv[0]);
	snprintf(path, sizeof(path), "/vigil/vcpus/%s/regs", argc ? argv[0] : "0");
	return get_json(sock, path);
}

static int ctl_translate(const char *sock, int argc, char **argv)
{
	char path[160];
	if (argc != 2) {
		fprintf(stderr, "vigil: ctl: usage: translate N GVA\n");
		return 1;
	}
	if (!plain_number(argv[0]))
		return bad_number("vCPU", argv[0]);
	if (!plain_number(argv[1]))
		return bad_number("gva", argv[1]);
	snprintf(path, sizeof(path), "/vigil/vcpus/%s/translate?gva=%s", argv[0], argv[1]);
	return get_json(sock, path);
}

/* hexdump -C's layout, the offsets counted from the address read. */
static void hexdump(FILE *f, uint64_t addr, const uint8_t *p, size_t n)
{
	for (size_t off = 0; off < n; off += 16) {
		fprintf(f, "%016" PRIx64 " ", addr + off);
		for (size_t i = 0; i < 16; i++) {
			if (i == 8)
				fputc(' ', f);
			if (off + i < n)
				fprintf(f, " %02x", p[off + i]);
			else
				fputs("   ", f);
		}
		fputs("  |", f);
		for (size_t i = 0; i < 16 && off + i < n; i++)
			fputc(p[off + i] >= 0x20 && p[off + i] < 0x7f ? p[off + i] : '.', f);
		fputs("|\n", f);
	}
}

static int ctl_mem(const char *sock, int argc, char **argv)
{
	const char *gpa = NULL, *gva = NULL, *vcpu = NULL, *len = NULL, *out = NULL;
	struct { const char *opt; const char **val; } opts[] = {
		{ "--gpa", &gpa }, { "--gva", &gva }, { "--vcpu", &vcpu }, { "--len", &len }, { "--out", &out },
	};
	for (int i = 0; i < argc; i++) {
		size_t k;
		for (k = 0; k < sizeof(opts) / sizeof(opts[0]); k++)
			if (!strcmp(argv[i], opts[k].opt))
				break;
		if (k == sizeof(opts) / sizeof(opts[0])) {
			fprintf(stderr, "vigil: ctl: mem: unknown argument '%s' (try 'vigil ctl --help')\n", argv[i]);
			return 1;
		}
		if (++i == argc) {
			fprintf(stderr, "vigil: ctl: mem: %s needs a value\n", opts[k].opt);
			return 1;
		}
		*opts[k].val = argv[i];
	}
	if (!gpa == !gva) {
		fprintf(stderr, "vigil: ctl: mem: give --gpa ADDR or --gva ADDR --vcpu N\n");
		return 1;
	}
	if (gva && !vcpu) {
		fprintf(stderr, "vigil: ctl: mem: --gva needs --vcpu N\n");
		return 1;
	}
	if (!len) {
		fprintf(stderr, "vigil: ctl: mem: missing --len N\n");
		return 1;
	}
	const char *addr = gpa ? gpa : gva;
	if (!plain_number(addr))
		return bad_number(gpa ? "gpa" : "gva", addr);
	if (!plain_number(len))
		return bad_number("len", len);
	if (vcpu && !plain_number(vcpu))
		return bad_number("vCPU", vcpu);
	char path[256];
	if (gpa)
		snprintf(path, sizeof(path), "/vigil/memory?gpa=%s&len=%s", gpa, len);
	else
		snprintf(path, sizeof(path), "/vigil/memory?gva=%s&vcpu=%s&len=%s", gva, vcpu, len);

	struct ctl_cmd c = { .method = "GET", .path = path };
	struct http_resp r;
	if (request(sock, &c, 0, &r) != 0)
		return 1;
	int rc = 0;
	if (out) {
		FILE *f = fopen(out, "wb");
		if (!f || fwrite(r.body, 1, r.body_len, f) != r.body_len || fclose(f) != 0) {
			fprintf(stderr, "vigil: ctl: %s: %s\n", out, strerror(errno));
			rc = 1;
		}
	} else {
		hexdump(stdout, strtoull(addr, NULL, 0), (const uint8_t *)r.body, r.body_len);
		rc = fflush(stdout) == 0 ? 0 : 1;
	}
	http_resp_free(&r);
	return rc;
}

static int ctl_dump(const char *sock, int argc, char **argv)
{
	char abs[PATH_MAX + 2], cwd[PATH_MAX];
	if (argc != 1 || !argv[0][0]) {
		fprintf(stderr, "vigil: ctl: usage: dump PATH\n");
		return 1;
	}
	/* vigil writes the file from its own working directory, not ours. */
	if (argv[0][0] != '/') {
		if (!getcwd(cwd, sizeof(cwd))) {
			fprintf(stderr, "vigil: ctl: getcwd: %s\n", strerror(errno));
			return 1;
		}
		snprintf(abs, sizeof(abs), "%s/%s", cwd, argv[0]);
	} else {
		snprintf(abs, sizeof(abs), "%s", argv[0]);
	}
	json_t *o = json_pack("{s:s}", "path", abs);
	char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!body) {
		fprintf(stderr, "vigil: ctl: dump: the path is not valid UTF-8 or memory ran out\n");
		return 1;
	}
	/* writing all of guest RAM takes a while: ten minutes, not ten seconds */
	struct ctl_cmd c = { .method = "PUT", .path = "/vigil/dump", .body = body };
	struct http_resp r;
	int rc = request(sock, &c, 600000, &r);
	free(body);
	if (rc == 0)
		http_resp_free(&r);
	return rc;
}

/* A file for vigil to open: relative to our directory, not vigil's. */
static int absolute(const char *path, char *out, size_t len)
{
	char cwd[PATH_MAX];
	if (path[0] == '/' || strcmp(path, "-") == 0)
		return snprintf(out, len, "%s", path) < (int)len ? 0 : -1;
	if (!getcwd(cwd, sizeof(cwd)))
		return -1;
	return snprintf(out, len, "%s/%s", cwd, path) < (int)len ? 0 : -1;
}

static int put_json(const char *sock, const char *path, json_t *o)
{
	char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!body) {
		fprintf(stderr, "vigil: ctl: the arguments are not valid UTF-8 or memory ran out\n");
		return 1;
	}
	struct ctl_cmd c = { .method = "PUT", .path = path, .body = body };
	struct http_resp r;
	int rc = request(sock, &c, timeout_ms(), &r);
	free(body);
	if (rc == 0)
		http_resp_free(&r);
	return rc;
}

/* trace PATH [FILTER] | trace filter SPEC | trace off: PUT /vigil/trace. */
static int ctl_trace(const char *sock, int argc, char **argv)
{
	char abs[PATH_MAX + 2];
	if (argc == 1 && strcmp(argv[0], "off") == 0)
		return put_json(sock, "/vigil/trace", json_pack("{s:b}", "enabled", 0));
	if (argc == 2 && strcmp(argv[0], "filter") == 0)
		return put_json(sock, "/vigil/trace", json_pack("{s:s}", "filter", argv[1]));
	if ((argc != 1 && argc != 2) || !argv[0][0] || strcmp(argv[0], "filter") == 0) {
		fprintf(stderr, "vigil: ctl: usage: trace PATH [FILTER] | trace filter SPEC | trace off\n");
		return 1;
	}
	if (absolute(argv[0], abs, sizeof(abs)) < 0) {
		fprintf(stderr, "vigil: ctl: trace: the path is too long\n");
		return 1;
	}
	return put_json(sock, "/vigil/trace",
			argc == 2 ? json_pack("{s:s,s:s}", "path", abs, "filter", argv[1]) : json_pack("{s:s}", "path", abs));
}

/* audit PATH | audit off: PUT /vigil/audit. */
static int ctl_audit(const char *sock, int argc, char **argv)
{
	char abs[PATH_MAX + 2];
	if (argc != 1 || !argv[0][0]) {
		fprintf(stderr, "vigil: ctl: usage: audit PATH | audit off\n");
		return 1;
	}
	if (strcmp(argv[0], "off") == 0)
		return put_json(sock, "/vigil/audit", json_pack("{s:n}", "path"));
	if (absolute(argv[0], abs, sizeof(abs)) < 0) {
		fprintf(stderr, "vigil: ctl: audit: the path is too long\n");
		return 1;
	}
	return put_json(sock, "/vigil/audit", json_pack("{s:s}", "path", abs));
}

/* snapshot STATE MEM [--diff]: PUT /snapshot/create (the VM must be
 * paused); restore STATE (MEM | --uffd SOCK) [--resume] [--track-dirty-pages]:
 * PUT /snapshot/load into a fresh vigil. Paths are made absolute here,
 * since vigil may run elsewhere. */
static int ctl_snapshot(const char *sock, int argc, char **argv)
{
	char st[PATH_MAX + 2], mem[PATH_MAX + 2];
	bool diff = argc == 3 && strcmp(argv[2], "--diff") == 0;
	if ((argc != 2 && !diff) || absolute(argv[0], st, sizeof(st)) < 0 || absolute(argv[1], mem, sizeof(mem)) < 0) {
		fprintf(stderr, "vigil: ctl: usage: snapshot STATE_FILE MEM_FILE [--diff]\n");
		return 1;
	}
	return put_json(sock, "/snapshot/create", json_pack("{s:s,s:s,s:s}", "snapshot_path", st, "mem_file_path", mem,
							    "snapshot_type", diff ? "Diff" : "Full"));
}

static int ctl_restore(const char *sock, int argc, char **argv)
{
	char st[PATH_MAX + 2], mem[PATH_MAX + 2];
	const char *uffd = NULL, *file = NULL;
	bool resume = false, dirty = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--resume") == 0)
			resume = true;
		else if (strcmp(argv[i], "--track-dirty-pages") == 0)
			dirty = true;
		else if (strcmp(argv[i], "--uffd") == 0 && i + 1 < argc)
			uffd = argv[++i];
		else if (argv[i][0] != '-' && !file)
			file = argv[i];
		else
			file = uffd = NULL, argc = 0;
	}
	if (argc < 2 || !!file == !!uffd || absolute(argv[0], st, sizeof(st)) < 0 ||
	    absolute(file ? file : uffd, mem, sizeof(mem)) < 0) {
		fprintf(stderr, "vigil: ctl: usage: restore STATE_FILE (MEM_FILE | --uffd SOCKET) [--resume] "
				"[--track-dirty-pages]\n");
		return 1;
	}
	return put_json(sock, "/snapshot/load",
			json_pack("{s:s,s:{s:s,s:s},s:b,s:b}", "snapshot_path", st, "mem_backend", "backend_type",
				  uffd ? "Uffd" : "File", "backend_path", mem, "resume_vm", resume, "track_dirty_pages",
				  dirty));
}

int ctl_main(int argc, char **argv)
{
	const char *sock = NULL, *cmd = NULL;
	/* the command's own arguments, --api-sock taken out wherever it is */
	char **args = calloc((size_t)argc + 1, sizeof(*args));
	int nargs = 0, rc = 1;
	if (!args)
		return 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			rc = 0;
			goto out;
		} else if (strcmp(argv[i], "--api-sock") == 0) {
			if (++i == argc) {
				fprintf(stderr, "vigil: --api-sock needs a path\n");
				goto out;
			}
			sock = argv[i];
		} else if (strncmp(argv[i], "--api-sock=", 11) == 0) {
			sock = argv[i] + 11;
		} else if (cmd) {
			args[nargs++] = argv[i];
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "vigil: ctl: unknown option '%s' (try 'vigil ctl --help')\n", argv[i]);
			goto out;
		} else {
			cmd = argv[i];
		}
	}
	if (!sock || !*sock) {
		fprintf(stderr, "vigil: ctl: missing --api-sock PATH (try 'vigil ctl --help')\n");
		goto out;
	}
	if (!cmd) {
		fprintf(stderr, "vigil: ctl: missing command (try 'vigil ctl --help')\n");
		goto out;
	}
	static const struct {
		const char *name;
		int (*fn)(const char *sock, int argc, char **argv);
	} with_args[] = { { "regs", ctl_regs },		{ "mem", ctl_mem },	{ "translate", ctl_translate },
			  { "dump", ctl_dump },		{ "trace", ctl_trace }, { "audit", ctl_audit },
			  { "snapshot", ctl_snapshot }, { "restore", ctl_restore } };
	for (size_t i = 0; i < sizeof(with_args) / sizeof(with_args[0]); i++)
		if (strcmp(with_args[i].name, cmd) == 0) {
			rc = with_args[i].fn(sock, nargs, args);
			goto out;
		}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmds[i].name, cmd) == 0) {
			if (nargs) {
				if (args[0][0] == '-')
					fprintf(stderr, "vigil: ctl: unknown option '%s' (try 'vigil ctl --help')\n",
						args[0]);
				else
					fprintf(stderr, "vigil: ctl: one command at a time ('%s' and '%s')\n", cmd,
						args[0]);
				goto out;
			}
			rc = run(sock, &cmds[i]);
			goto out;
		}
	fprintf(stderr, "vigil: ctl: unknown command '%s' (try 'vigil ctl --help')\n", cmd);
out:
	free(args);
	return rc;
}
