/* The gdb stub's socket, thread and VM glue. One thread: accept, then serve
 * the client until it detaches or goes away. The guest's debug exits reach
 * it from the vCPU threads through on_debug(): the event is recorded, the
 * vCPU asks every vCPU to park (vcpu_request_pause; vm_pause may not be
 * called there), and an eventfd wakes this thread, which waits for the
 * parking (vm_pause) and tells gdb. */
#define _GNU_SOURCE
#include "gdb/gdb_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "arch/x86/pagewalk.h"
#include "core/errmsg.h"
#include "core/vm.h"
#include "gdb/gdb_packet.h"
#include "gdb/gdb_stub.h"
#include "host/seccomp.h"

/* A client gets this long to finish a packet it started, and to send its
 * first one; a send that cannot progress for this long drops it.
 * VIGIL_GDB_TIMEOUT_MS shortens it, for tests. */
#define CLIENT_TIMEOUT_MS 30000

static int client_timeout_ms(void)
{
	const char *env = getenv("VIGIL_GDB_TIMEOUT_MS");
	long v = env ? strtol(env, NULL, 10) : 0;
	return v >= 100 && v <= CLIENT_TIMEOUT_MS ? (int)v : CLIENT_TIMEOUT_MS;
}

struct gdb_server {
	struct vm *vm;
	int lfd;           /* listening socket */
	int evfd;          /* debug events from the vCPUs */
	int quitfd;        /* gdb_server_stop */
	char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	pthread_t thread;
	struct gdb_stub stub;
	pthread_mutex_t lock; /* the event below */
	bool have_event;
	struct gdb_stop event;
	_Atomic bool running; /* the guest runs under gdb's control: events wanted */
	struct gdb_rx rx;
	char reply[GDB_REPLY_MIN + GDB_PKT_MAX];
	char framed[2 * (GDB_REPLY_MIN + GDB_PKT_MAX) + 8];
	size_t framed_len;
};

/* --- the spec ------------------------------------------------------------ */

struct spec {
	bool is_unix;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct sockaddr_in in;
};

static int parse_spec(const char *spec, struct spec *s, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	if (strncmp(spec, "unix:", 5) == 0) {
		if (!spec[5] || strlen(spec + 5) >= sizeof(s->path))
			return errmsg(err, errlen, "gdb: 'unix:PATH' needs a path shorter than %zu bytes",
				      sizeof(s->path));
		s->is_unix = true;
		strcpy(s->path, spec + 5);
		return 0;
	}
	if (strncmp(spec, "tcp:", 4) == 0) {
		char host[64];
		const char *colon = strrchr(spec + 4, ':');
		char *end;
		if (colon && (size_t)(colon - (spec + 4)) < sizeof(host)) {
			memcpy(host, spec + 4, (size_t)(colon - (spec + 4)));
			host[colon - (spec + 4)] = '\0';
			errno = 0;
			unsigned long port = strtoul(colon + 1, &end, 10);
			if (colon[1] && !*end && !errno && port >= 1 && port <= 65535 &&
			    inet_pton(AF_INET, host, &s->in.sin_addr) == 1) {
				s->in.sin_family = AF_INET;
				s->in.sin_port = htons((uint16_t)port);
				return 0;
			}
		}
		return errmsg(err, errlen, "gdb '%.100s': expected tcp:ADDRESS:PORT (an IPv4 address, port 1-65535)",
			      spec);
	}
	return errmsg(err, errlen, "gdb '%.100s': expected unix:PATH or tcp:ADDRESS:PORT", spec);
}

int gdb_spec_check(const char *spec, char *err, size_t errlen)
{
	struct spec s;
	return parse_spec(spec, &s, err, errlen);
}

/* --- the target: the VM ---------------------------------------------------- */

static bool stopping(struct vm *vm)
{
	return vm_stop_reason(vm) != VM_STOP_NONE;
}

/* With --gdb-wait a client may come before a vCPU's loop has started:
 * wait for it a little. */
static int get_regs(void *t, unsigned cpu, struct vcpu_state *s)
{
	struct gdb_server *g = t;
	for (int i = 0; i < 200 && !stopping(g->vm); i++) {
		int r = vcpu_get_state(g->vm, cpu, s);
		if (r != -1)
			return r;
		usleep(10000);
	}
	return -1;
}

static int set_regs(void *t, unsigned cpu, const struct vcpu_state *s)
{
	struct gdb_server *g = t;
	return vcpu_set_state(g->vm, cpu, s);
}

static int mem_access(struct gdb_server *g, unsigned cpu, uint64_t addr, void *rbuf, const void *wbuf,
		      size_t len)
{
	struct vcpu_state st;
	if (get_regs(g, cpu, &st) < 0)
		return -1;
	struct pw_regs r = pw_regs_of(&st);
	return rbuf ? pw_read(&g->vm->mem, &r, addr, rbuf, len) : pw_write(&g->vm->mem, &r, addr, wbuf, len);
}

static int read_mem(void *t, unsigned cpu, uint64_t addr, void *buf, size_t len)
{
	return mem_access(t, cpu, addr, buf, NULL, len);
}

static int write_mem(void *t, unsigned cpu, uint64_t addr, const void *buf, size_t len)
{
	return mem_access(t, cpu, addr, NULL, buf, len);
}

static int set_debug(void *t, unsigned cpu, const struct vcpu_debug *d)
{
	struct gdb_server *g = t;
	for (int i = 0; i < 200 && !stopping(g->vm); i++) {
		int r = vcpu_set_debug(g->vm, cpu, d);
		if (r != -1)
			return r;
		usleep(10000); /* as in get_regs: a loop not started yet */
	}
	return 0; /* a VM that is stopping runs nothing more to debug */
}

static void kill_vm(void *t)
{
	struct gdb_server *g = t;
	vm_request_stop(g->vm, VM_STOP_USER);
}

static const struct gdb_target_ops vm_target = {
	.get_regs = get_regs, .set_regs = set_regs, .read_mem = read_mem, .write_mem = write_mem,
	.set_debug = set_debug, .kill = kill_vm,
};

/* Where an intercepted INT3 is, from the vCPU's own rip (we are on its
 * thread): KVM on VMX leaves rip on the INT3 and reports that; a nested
 * SVM host may have rip already past it. gdb's breakpoint at rip - 1 then
 * means rip goes back onto it, as gdb expects (swbreak). */
static void int3_where(struct gdb_server *g, unsigned cpu, struct vexit *e)
{
	const struct hv_ops *hv = &g->vm->vcpus.hv;
	struct vcpu_state st;
	struct gdb_stop unused;
	if (!hv->get_state || hv->get_state(hv->hv, cpu, &st) < 0)
		return;
	struct vexit at = *e;
	at.pc = st.rip;
	if (gdb_stub_classify(&g->stub, cpu, &at, &unused) != GDB_DBG_REINJECT) {
		e->pc = st.rip;
		return;
	}
	at.pc = st.rip - 1;
	if (gdb_stub_classify(&g->stub, cpu, &at, &unused) != GDB_DBG_REINJECT && hv->set_state) {
		st.rip--;
		if (hv->set_state(hv->hv, cpu, &st) == 0)
			e->pc = st.rip;
	}
}

/* On a vCPU thread, for every VEXIT_DEBUG. */
static enum vm_stop on_debug(void *ctx, unsigned cpu, const struct vexit *ex)
{
	struct gdb_server *g = ctx;
	struct gdb_stop stop;
	const struct hv_ops *hv = &g->vm->vcpus.hv;
	struct vexit e = *ex;

	if (e.exception == 3)
		int3_where(g, cpu, &e);
	switch (gdb_stub_classify(&g->stub, cpu, &e, &stop)) {
	case GDB_DBG_REINJECT:
		fprintf(stderr, "vigil: gdb: vCPU %u: an INT3 at 0x%llx that is not gdb's: handed to the guest\n", cpu,
			(unsigned long long)e.pc);
		if (hv->reinject_bp)
			hv->reinject_bp(hv->hv, cpu);
		return VM_STOP_NONE;
	case GDB_DBG_IGNORE:
		return VM_STOP_NONE;
	case GDB_DBG_STOP:
		break;
	}
	if (!atomic_load(&g->running))
		return VM_STOP_NONE; /* stale: the VM is being stopped anyway */
	pthread_mutex_lock(&g->lock);
	if (!g->have_event) {
		g->have_event = true;
		g->event = stop;
	}
	pthread_mutex_unlock(&g->lock);
	vcpu_request_pause(g->vm);
	uint64_t one = 1;
	if (write(g->evfd, &one, sizeof(one)) < 0) {
		/* the counter cannot overflow at one per stop */
	}
	return VM_STOP_NONE;
}

/* --- the client ------------------------------------------------------------ */

static void drain(int fd)
{
	uint64_t v;
	if (read(fd, &v, sizeof(v)) < 0) {
		/* nothing pending */
	}
}

/* Sends all of buf; false when the client is gone or stuck. */
static bool send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

static bool send_packet(struct gdb_server *g, int fd, const char *data, size_t len)
{
	g->framed_len = gdb_frame(g->framed, sizeof(g->framed), data, len);
	if (!g->framed_len) /* cannot happen with the buffers' sizes: an error instead */
		g->framed_len = gdb_frame(g->framed, sizeof(g->framed), "E01", 3);
	return send_all(fd, g->framed, g->framed_len);
}

static bool report_stop(struct gdb_server *g, int fd, const struct gdb_stop *stop)
{
	size_t n;
	if (!gdb_stub_stopped(&g->stub, stop, g->reply, sizeof(g->reply), &n)) {
		vm_resume(g->vm); /* a step over a breakpoint: gdb does not hear of it */
		return true;
	}
	atomic_store(&g->running, false);
	return send_packet(g, fd, g->reply, n);
}

/* Stops the guest (all vCPUs parked). */
static void halt(struct gdb_server *g)
{
	atomic_store(&g->running, false);
	vm_pause(g->vm);
	pthread_mutex_lock(&g->lock);
	g->have_event = false;
	pthread_mutex_unlock(&g->lock);
}

enum served { SERVED_DETACH, SERVED_QUIT };

/* One packet's command. false: the session is over. */
static bool command(struct gdb_server *g, int fd, bool *quit)
{
	size_t n;
	bool no_ack = g->stub.no_ack;
	if (!no_ack && !send_all(fd, "+", 1))
		return false;
	if (atomic_load(&g->running))
		return true; /* all-stop: nothing but ^C while the guest runs */
	enum gdb_action act = gdb_stub_command(&g->stub, g->rx.buf, g->rx.len, g->reply, sizeof(g->reply), &n);
	switch (act) {
	case GDB_ACT_REPLY: return send_packet(g, fd, g->reply, n);
	case GDB_ACT_RESUME:
		pthread_mutex_lock(&g->lock);
		g->have_event = false;
		pthread_mutex_unlock(&g->lock);
		atomic_store(&g->running, true);
		vm_resume(g->vm);
		return true;
	case GDB_ACT_DETACH:
		send_packet(g, fd, g->reply, n);
		return false;
	case GDB_ACT_KILL:
		*quit = true;
		return false;
	}
	return false;
}

/* A second client while one is attached: told and dropped. */
static void refuse_extra(struct gdb_server *g)
{
	int fd = accept4(g->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	static const char msg[] = "$E01#a6"; /* no reply it could mistake for a stop */
	send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
	fprintf(stderr, "vigil: gdb: a second client refused (one is attached)\n");
}

/* Serves one client until it detaches or goes; the guest then runs free. */
static enum served serve(struct gdb_server *g, int fd)
{
	bool quit = false, heard = false;
	char buf[4096];
	int timeout = client_timeout_ms();

	struct timeval tv = { .tv_sec = timeout / 1000, .tv_usec = (timeout % 1000) * 1000 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* fails harmlessly on Unix sockets */

	halt(g);
	if (stopping(g->vm))
		return SERVED_QUIT;
	gdb_stub_attach(&g->stub, 0);
	gdb_rx_init(&g->rx);
	for (bool alive = true; alive && !stopping(g->vm);) {
		struct pollfd p[4] = { { .fd = fd, .events = POLLIN }, { .fd = g->evfd, .events = POLLIN },
				       { .fd = g->quitfd, .events = POLLIN }, { .fd = g->lfd, .events = POLLIN } };
		bool midpacket = g->rx.state != 0;
		int r = poll(p, 4, !heard || midpacket ? timeout : 1000);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0 && (!heard || midpacket))
			break; /* too slow: treated as gone */
		if (p[2].revents) {
			quit = true;
			break;
		}
		if (p[3].revents)
			refuse_extra(g);
		if (p[1].revents) {
			drain(g->evfd);
			pthread_mutex_lock(&g->lock);
			bool have = g->have_event;
			struct gdb_stop ev = g->event;
			g->have_event = false;
			pthread_mutex_unlock(&g->lock);
			if (have && atomic_load(&g->running)) {
				vm_pause(g->vm);
				alive = report_stop(g, fd, &ev);
			}
		}
		if (!p[0].revents)
			continue;
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n && alive; i++) {
			switch (gdb_rx_byte(&g->rx, (uint8_t)buf[i])) {
			case GDB_RX_NONE:
			case GDB_RX_ACK: break;
			case GDB_RX_PACKET:
				heard = true;
				alive = command(g, fd, &quit);
				break;
			case GDB_RX_BAD:
			case GDB_RX_OVERSIZE:
				if (!g->stub.no_ack)
					alive = send_all(fd, "-", 1);
				break;
			case GDB_RX_NACK:
				if (g->framed_len)
					alive = send_all(fd, g->framed, g->framed_len);
				break;
			case GDB_RX_INTERRUPT:
				if (atomic_load(&g->running)) {
					halt(g);
					struct gdb_stop st = { .cpu = g->stub.c_cpu, .kind = GDB_STOP_INTERRUPT };
					alive = report_stop(g, fd, &st);
				}
				break;
			}
		}
	}
	/* Detach, whatever the way out: the guest is never left stopped. */
	halt(g);
	gdb_stub_detach(&g->stub);
	vm_resume(g->vm);
	return quit ? SERVED_QUIT : SERVED_DETACH;
}

static void *server_thread(void *arg)
{
	struct gdb_server *g = arg;
	seccomp_enter(SC_GDB);
	for (;;) {
		struct pollfd p[2] = { { .fd = g->lfd, .events = POLLIN }, { .fd = g->quitfd, .events = POLLIN } };
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!p[0].revents)
			continue;
		int fd = accept4(g->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		fprintf(stderr, "vigil: gdb attached\n");
		enum served s = serve(g, fd);
		close(fd);
		fprintf(stderr, "vigil: gdb detached\n");
		if (s == SERVED_QUIT)
			break;
	}
	return NULL;
}

static int listen_on(struct gdb_server *g, const struct spec *s, char *err, size_t errlen)
{
	int fd = socket(s->is_unix ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errmsg(err, errlen, "gdb: socket: %s", strerror(errno));
	int r;
	if (s->is_unix) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		struct stat st;
		strcpy(a.sun_path, s->path);
		/* A socket left by an earlier run is replaced; any other file is not. */
		if (lstat(s->path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(s->path);
		r = bind(fd, (struct sockaddr *)&a, sizeof(a));
		if (r == 0)
			strcpy(g->unix_path, s->path);
	} else {
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		r = bind(fd, (const struct sockaddr *)&s->in, sizeof(s->in));
	}
	/* One client at a time: a second is accepted and closed at once
	 * (refuse_extra) while the first is served. */
	if (r < 0 || listen(fd, 1) < 0) {
		int e = errno;
		close(fd);
		return errmsg(err, errlen, "gdb: cannot listen on %s: %s", s->is_unix ? s->path : "that address",
			      strerror(e));
	}
	g->lfd = fd;
	return 0;
}

struct gdb_server *gdb_server_start(struct vm *vm, const char *spec, char *err, size_t errlen)
{
	struct spec s;
	if (parse_spec(spec, &s, err, errlen) < 0)
		return NULL;
	struct gdb_server *g = calloc(1, sizeof(*g));
	if (!g) {
		errmsg(err, errlen, "out of memory");
		return NULL;
	}
	g->vm = vm;
	g->lfd = g->evfd = g->quitfd = -1;
	pthread_mutex_init(&g->lock, NULL);
	gdb_stub_init(&g->stub, &vm_target, g, vm->ncpus);
	g->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	g->quitfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (g->evfd < 0 || g->quitfd < 0) {
		errmsg(err, errlen, "gdb: eventfd: %s", strerror(errno));
		goto fail;
	}
	if (listen_on(g, &s, err, errlen) < 0)
		goto fail;
	vm->on_debug = on_debug;
	vm->on_debug_ctx = g;
	if (pthread_create(&g->thread, NULL, server_thread, g) != 0) {
		vm->on_debug = NULL;
		errmsg(err, errlen, "gdb: cannot start its thread");
		goto fail;
	}
	return g;
fail:
	if (g->lfd >= 0)
		close(g->lfd);
	if (g->unix_path[0])
		unlink(g->unix_path);
	if (g->evfd >= 0)
		close(g->evfd);
	if (g->quitfd >= 0)
		close(g->quitfd);
	pthread_mutex_destroy(&g->lock);
	free(g);
	return NULL;
}

void gdb_server_stop(struct gdb_server *g)
{
	if (!g)
		return;
	uint64_t one = 1;
	if (write(g->quitfd, &one, sizeof(one)) < 0) {
		/* cannot fail on a fresh eventfd */
	}
	pthread_join(g->thread, NULL);
	g->vm->on_debug = NULL;
	close(g->lfd);
	if (g->unix_path[0])
		unlink(g->unix_path);
	close(g->evfd);
	close(g->quitfd);
	pthread_mutex_destroy(&g->lock);
	free(g);
}
