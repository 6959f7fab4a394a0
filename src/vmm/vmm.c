/* The control loop on the main thread: one poll over a wake-up eventfd (for
 * vmm_call()s and stop requests), a signalfd (SIGINT, SIGTERM, SIGHUP) and
 * the 60-second metrics timer. Only this thread builds, pauses, resumes
 * and tears down the machine, so none of that needs a lock of its own. */
#include "vmm/vmm.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "core/errmsg.h"
#include "core/vm.h"
#include "host/clock.h"
#include "vmm/builder.h"
#include "vmm/log.h"
#include "vmm/metrics.h"
#include "vmm/net_policy.h"
#include "vmm/policy_json.h"
#include "vmm/trace.h"
#include "vmm/snapshot_json.h"
#include "vmm/update.h"
#include "vmm/vmm_int.h"

#define METRICS_PERIOD_S 60


static void wake(struct vmm *m)
{
	uint64_t one = 1;
	if (write(m->wake, &one, sizeof(one)) < 0) {
		/* saturated counter: the loop is awake anyway */
	}
}

struct vmm *vmm_new(const struct vm_config *initial)
{
	struct vmm *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	if (vmcfg_copy_fresh(&m->cfg, initial) < 0) { /* m is fresh from calloc */
		free(m);
		return NULL;
	}
	m->state = VMM_NOT_STARTED;
	m->control = pthread_self();
	m->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->wake < 0) {
		vmcfg_fini(&m->cfg);
		free(m);
		return NULL;
	}
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	atomic_init(&m->quit, -1);
	m->t0_ns = host_mono_ns();
	return m;
}

void vmm_free(struct vmm *m)
{
	if (!m)
		return;
	fc_metrics_close(m->metrics);
	close(m->wake);
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->lock);
	vmcfg_fini(&m->cfg);
	free(m);
}

int vmm_call(struct vmm *m, void (*fn)(void *arg), void *arg)
{
	if (pthread_equal(pthread_self(), m->control)) {
		fn(arg);
		return 0;
	}
	pthread_mutex_lock(&m->lock);
	while (m->call_fn && !m->closing)
		pthread_cond_wait(&m->cond, &m->lock);
	if (m->closing) {
		pthread_mutex_unlock(&m->lock);
		return -1;
	}
	m->call_fn = fn;
	m->call_arg = arg;
	uint64_t ticket = ++m->calls_posted;
	wake(m);
	while (m->calls_done < ticket && !m->closing)
		pthread_cond_wait(&m->cond, &m->lock);
	int r = m->calls_done >= ticket ? 0 : -1;
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* On the control thread: the posted call, if any. */
static void serve_call(struct vmm *m)
{
	pthread_mutex_lock(&m->lock);
	void (*fn)(void *) = m->call_fn;
	void *arg = m->call_arg;
	pthread_mutex_unlock(&m->lock);
	if (!fn)
		return;
	fn(arg);
	pthread_mutex_lock(&m->lock);
	m->call_fn = NULL;
	m->calls_done++;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

void vmm_on_vm_stop(void *ctx)
{
	wake(ctx);
}

enum vmm_state vmm_state(const struct vmm *m)
{
	return m->state;
}

const char *vmm_state_name(enum vmm_state s)
{
	switch (s) {
	case VMM_NOT_STARTED: return "Not started";
	case VMM_RUNNING: return "Running";
	case VMM_PAUSED: return "Paused";
	case VMM_STOPPED: return "Stopped";
	}
	return "Not started";
}

struct vm_config *vmm_config(struct vmm *m)
{
	return &m->cfg;
}

struct vm *vmm_vm(struct vmm *m)
{
	return m->mc ? machine_vm(m->mc) : NULL;
}

/* The config file's "snapshot-load": the same call as PUT /snapshot/load. */
static int start_from_snapshot(struct vmm *m, char *err, size_t errlen)
{
	json_t *body = json_loads(m->cfg.snapshot_load, 0, NULL);
	if (!body)
		return errmsg(err, errlen, "snapshot-load: out of memory");
	int r = vmm_snapshot_load_json(m, body, err, errlen);
	json_decref(body);
	return r;
}

int vmm_start(struct vmm *m, char *err, size_t errlen)
{
	if (m->state != VMM_NOT_STARTED)
		return errmsg(err, errlen, "The requested operation is not supported after starting the microVM.");
	if (m->cfg.snapshot_load[0])
		return start_from_snapshot(m, err, errlen);
	if (vmcfg_check_startable(&m->cfg, err, errlen) < 0)
		return -1;
	if (m->cfg.has_metrics && !m->metrics) {
		m->metrics = fc_metrics_open(m->cfg.metrics.metrics_path, err, errlen);
		if (!m->metrics)
			return -1;
	}
	m->mc = machine_build(&m->cfg, vmm_on_vm_stop, m, NULL, err, errlen);
	if (!m->mc)
		return -1;
	if (machine_start(m->mc, false, err, errlen) < 0) {
		machine_request_stop(m->mc, VM_STOP_ERROR);
		machine_finish(m->mc);
		m->mc = NULL;
		return -1;
	}
	m->state = VMM_RUNNING;
	VLOG_INFO("Successfully started microvm");
	return 0;
}

static int need_started(const struct vmm *m, char *err, size_t errlen)
{
	if (m->state == VMM_NOT_STARTED)
		return errmsg(err, errlen, "The requested operation is not supported before starting the microVM.");
	if (m->state == VMM_STOPPED)
		return errmsg(err, errlen, "The microVM has stopped.");
	return 0;
}

int vmm_pause(struct vmm *m, char *err, size_t errlen)
{
	if (need_started(m, err, errlen) < 0)
		return -1;
	if (m->state == VMM_RUNNING) {
		machine_pause(m->mc);
		m->state = VMM_PAUSED;
		VLOG_INFO("VM paused");
	}
	return 0;
}

int vmm_resume(struct vmm *m, char *err, size_t errlen)
{
	if (need_started(m, err, errlen) < 0)
		return -1;
	if (m->state == VMM_PAUSED) {
		machine_resume(m->mc);
		m->state = VMM_RUNNING;
		VLOG_INFO("VM resumed");
	}
	return 0;
}

int vmm_ctrl_alt_del(struct vmm *m, char *err, size_t errlen)
{
	if (need_started(m, err, errlen) < 0)
		return -1;
	return machine_ctrl_alt_del(m->mc, err, errlen);
}

int vmm_flush_metrics(struct vmm *m, char *err, size_t errlen)
{
	if (need_started(m, err, errlen) < 0)
		return -1;
	/* Firecracker answers 204 when no metrics file is configured. */
	if (m->metrics && fc_metrics_flush(m->metrics, m) < 0)
		return errmsg(err, errlen, "cannot write the metrics file: %s", strerror(errno));
	return 0;
}

int vmm_vcpu_state(struct vmm *m, unsigned n, struct vcpu_state *s, char *err, size_t errlen)
{
	if (need_started(m, err, errlen) < 0)
		return -1;
	struct vm *vm = machine_vm(m->mc);
	if (n >= vm->ncpus)
		return errmsg(err, errlen, "vCPU %u does not exist (the VM has %u)", n, vm->ncpus);
	int r = vcpu_get_state(vm, n, s);
	if (r == -1)
		return errmsg(err, errlen, "vCPU %u is not running", n);
	if (r < 0)
		return errmsg(err, errlen, "vCPU %u: cannot read its registers: %s", n, strerror(-r));
	return 0;
}

int vmm_vcpu_tid(struct vmm *m, unsigned n)
{
	return m->mc ? machine_vcpu_tid(m->mc, n) : 0;
}

int vmm_update_drive(struct vmm *m, const char *id, const char *path_on_host, char *err, size_t errlen)
{
	if (need_started(m, err, errlen) < 0)
		return -1;
	struct vmcfg_drive *dr = vmcfg_find_drive(&m->cfg, id);
	if (!dr)
		return errmsg(err, errlen, "drive '%s' does not exist", id);
	if (!path_on_host)
		return 0;
	if (machine_update_drive(m->mc, id, path_on_host, err, errlen) < 0)
		return -1;
	/* GET /vm/config shows the image now in use. */
	snprintf(dr->path_on_host, sizeof(dr->path_on_host), "%s", path_on_host);
	VLOG_INFO("drive %s now on %s", id, path_on_host);
	return 0;
}

int vmm_update_net(struct vmm *m, const char *id, char *err, size_t errlen)
{
	if (need_started(m, err, errlen) < 0)
		return -1;
	if (!vmcfg_find_net(&m->cfg, id))
		return errmsg(err, errlen, "network interface '%s' does not exist", id);
	return 0;
}

int vmm_set_policy(struct vmm *m, struct policy *p, struct policy_spec *s, char *err, size_t errlen)
{
	if (m->state == VMM_NOT_STARTED) {
		policy_free(p);
		vmcfg_set_policy(&m->cfg, s);
		return 0;
	}
	/* What KVM cannot do (its MSR filter's limits) is refused before the
	 * swap, so a refused policy leaves the old one in force everywhere. */
	if (need_started(m, err, errlen) < 0 || policy_check_live_change(&m->cfg.policy, s, err, errlen) < 0 ||
	    machine_policy_check(m->mc, p, err, errlen) < 0 || net_policy_check(&m->cfg, s, err, errlen) < 0 ||
	    machine_open_overlays(m->mc, p, err, errlen) < 0) {
		policy_free(p);
		policy_spec_free(s);
		return -1;
	}
	/* policy_swap() returns once no vCPU or device thread is still inside
	 * the old policy, so it can go at once (once KVM's MSR filter follows:
	 * where it cannot, the old policy goes back, filter and all, and the
	 * request fails, rather than MSR rules held only on paper). */
	struct policy_slot *slot = &machine_vm(m->mc)->policy;
	struct policy *old = policy_swap(slot, p);
	char kerr[256];
	if (machine_policy_changed(m->mc, kerr, sizeof(kerr)) < 0) {
		policy_free(policy_swap(slot, old));
		char again[256];
		if (machine_policy_changed(m->mc, again, sizeof(again)) < 0)
			VLOG_ERROR("policy kept, but its MSR filter could not be put back: %s", again);
		policy_spec_free(s);
		return errmsg(err, errlen, "policy: KVM's MSR filter refused it (%s); the old policy stays", kerr);
	}
	policy_free(old);
	vmcfg_set_policy(&m->cfg, s);
	VLOG_INFO("policy replaced: %s, %u rules", m->cfg.policy.mode == POLICY_PERMISSIVE ? "permissive" : "enforce",
		  m->cfg.policy.nrules);
	return 0;
}

int vmm_set_trace(struct vmm *m, const struct vmm_trace_req *r, char *err, size_t errlen)
{
	struct vm_config *c = &m->cfg;
	struct evfilter f;
	bool stop = r->has_enabled && !r->enabled;

	if (r->filter && strlen(r->filter) >= sizeof(c->trace_filter))
		return errmsg(err, errlen, "filter: too long");
	if (r->filter && trace_filter_parse(r->filter, &f, err, errlen) < 0) {
		char e[300];
		snprintf(e, sizeof(e), "%s", strncmp(err, "--trace-filter: ", 16) ? err : err + 16);
		return errmsg(err, errlen, "filter: %s", e);
	}
	if (r->path && (!r->path[0] || strlen(r->path) >= sizeof(c->trace)))
		return errmsg(err, errlen, "path: expected a file name (or \"-\" for stderr)");
	bool tracing = m->mc ? vtrace_tracing(machine_trace(m->mc)) : c->trace[0] != '\0';
	if (!stop && !r->path && r->has_enabled && !tracing)
		return errmsg(err, errlen, "path: needed to start the trace");
	if (m->state == VMM_STOPPED)
		return errmsg(err, errlen, "The microVM has stopped.");
	if (m->mc) {
		struct vtrace *t = machine_trace(m->mc);
		if (r->filter && vtrace_set_filter(t, r->filter, err, errlen) < 0)
			return -1;
		if (stop)
			vtrace_set_trace(t, NULL, err, errlen);
		else if (r->path && vtrace_set_trace(t, r->path, err, errlen) < 0) {
			char ignored[64];
			if (r->filter) /* the old state stays: its filter too */
				vtrace_set_filter(t, c->trace_filter, ignored, sizeof(ignored));
			return -1;
		}
	}
	if (r->filter)
		strcpy(c->trace_filter, r->filter);
	if (stop)
		c->trace[0] = '\0';
	else if (r->path)
		strcpy(c->trace, r->path);
	VLOG_INFO("trace: %s", c->trace[0] ? c->trace : "off");
	return 0;
}

int vmm_set_audit(struct vmm *m, const char *path, char *err, size_t errlen)
{
	struct vm_config *c = &m->cfg;
	if (path && strlen(path) >= sizeof(c->audit))
		return errmsg(err, errlen, "path: too long");
	if (m->state == VMM_STOPPED)
		return errmsg(err, errlen, "The microVM has stopped.");
	if (m->mc && vtrace_set_audit(machine_trace(m->mc), path, err, errlen) < 0)
		return -1;
	snprintf(c->audit, sizeof(c->audit), "%s", path ? path : "");
	VLOG_INFO("audit: %s", c->audit[0] ? c->audit : "off");
	return 0;
}

bool vmm_trace_stats(struct vmm *m, struct vtrace_stats *st)
{
	if (!m->mc)
		return false;
	vtrace_stats(machine_trace(m->mc), st);
	return true;
}

void vmm_request_stop(struct vmm *m, enum vm_stop why)
{
	int none = -1;
	atomic_compare_exchange_strong(&m->quit, &none, (int)why);
	wake(m);
}

uint64_t vmm_uptime_ns(const struct vmm *m)
{
	return host_mono_ns() - m->t0_ns;
}

uint64_t vmm_api_requests(const struct vmm *m)
{
	return atomic_load(&m->api_requests);
}

void vmm_count_api_request(struct vmm *m)
{
	atomic_fetch_add(&m->api_requests, 1);
}

/* Signals that stop the VM arrive on a signalfd, so that the handler-free
 * control loop can act on them like on any other request. */
static int open_signalfd(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN); /* a client that hangs up is an error, not a death */
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Firecracker's 60 s; VIGIL_METRICS_INTERVAL_S (1..3600) shortens it for
 * tests that want to see the periodic line without waiting a minute. */
static int open_timer(void)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	const char *env = getenv("VIGIL_METRICS_INTERVAL_S");
	long period = env ? strtol(env, NULL, 10) : METRICS_PERIOD_S;
	if (period < 1 || period > 3600)
		period = METRICS_PERIOD_S;
	struct itimerspec it = { .it_interval = { period, 0 }, .it_value = { period, 0 } };
	if (fd >= 0)
		timerfd_settime(fd, 0, &it, NULL);
	return fd;
}

static void drain(int fd)
{
	uint8_t buf[256];
	while (read(fd, buf, sizeof(buf)) > 0) {
	}
}

int vmm_run(struct vmm *m, bool start)
{
	char err[512];
	int sfd = open_signalfd();
	int tfd = open_timer();

	/* The control thread is the one that made the vmm (vmm_new set
	 * m->control): the API thread reads it without a lock, so it is never
	 * written again. */
	if (!pthread_equal(pthread_self(), m->control))
		abort();
	if (start && vmm_start(m, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigil: %s\n", err);
		vmm_request_stop(m, VM_STOP_ERROR);
	}
	for (;;) {
		struct vm *vm = vmm_vm(m);
		if (vm && vm_stop_reason(vm) != VM_STOP_NONE)
			break;
		int quit = atomic_load(&m->quit);
		if (quit >= 0) {
			if (!m->mc)
				break;
			machine_request_stop(m->mc, (enum vm_stop)quit);
			continue;
		}
		struct pollfd p[3] = { { m->wake, POLLIN, 0 }, { sfd, POLLIN, 0 }, { tfd, POLLIN, 0 } };
		if (poll(p, 3, -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents) {
			drain(m->wake);
			serve_call(m);
		}
		if (p[1].revents) {
			drain(sfd);
			vmm_request_stop(m, VM_STOP_USER);
		}
		if (p[2].revents) {
			drain(tfd);
			if (m->metrics && m->mc)
				fc_metrics_flush(m->metrics, m);
		}
	}
	/* No call is served from here on: waiting callers are released. */
	pthread_mutex_lock(&m->lock);
	m->closing = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);

	int status;
	if (m->mc) {
		if (m->metrics)
			fc_metrics_flush(m->metrics, m);
		status = (int)machine_finish(m->mc);
		m->mc = NULL;
	} else {
		int q = atomic_load(&m->quit);
		status = q >= 0 ? q : VM_STOP_ERROR;
	}
	m->state = VMM_STOPPED;
	if (sfd >= 0)
		close(sfd);
	if (tfd >= 0)
		close(tfd);
	return status;
}
