/* fake_vmm_api — a struct vmm for the API's tests (test_api_routes.c,
 * test_config_json.c, api_fake_server.c, fuzz/fuzz_api.c): it implements
 * vmm.h, update.h, and the metrics/log calls the API makes, recording every
 * call so a test can check what the router asked for. vmm_call() runs the
 * function under a mutex, standing in for the control thread. Include it in
 * exactly one file of a binary. */
#ifndef VIGIL_TESTS_FAKE_VMM_API_H
#define VIGIL_TESTS_FAKE_VMM_API_H

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errmsg.h"
#include "vmm/log.h"
#include "vmm/metrics.h"
#include "vmm/policy_json.h"
#include "vmm/update.h"
#include "arch/x86/cpu_state.h"
#include "arch/x86/pagewalk.h"
#include "vmm/introspect.h"
#include "vmm/vmm.h"

struct vmm {
	struct vm_config cfg;
	enum vmm_state state;
	pthread_mutex_t lock;
	/* what the router asked for */
	int starts, pauses, resumes, ctrl_alt_dels, flushes, drive_updates, net_updates, log_configures, policy_sets;
	unsigned api_requests;
	char last_drive_id[VMCFG_ID_MAX + 1], last_drive_path[PATH_MAX];
	bool last_drive_path_null;
	/* failures a test injects */
	char last_dump_path[PATH_MAX];
	int dumps;
	const char *start_fail;
	const char *log_fail;
};

static unsigned fake_metrics_count;
static char fake_metrics_last_group[32], fake_metrics_last_method[16];

struct vmm *vmm_new(const struct vm_config *initial)
{
	struct vmm *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	if (initial)
		vmcfg_copy(&m->cfg, initial);
	else
		vmcfg_init(&m->cfg);
	pthread_mutex_init(&m->lock, NULL);
	return m;
}

void vmm_free(struct vmm *m)
{
	if (m) {
		pthread_mutex_destroy(&m->lock);
		vmcfg_fini(&m->cfg);
	}
	free(m);
}

int vmm_call(struct vmm *m, void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&m->lock);
	fn(arg);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int vmm_run(struct vmm *m, bool start)
{
	return 0;
}

enum vmm_state vmm_state(const struct vmm *m)
{
	return m->state;
}

const char *vmm_state_name(enum vmm_state s)
{
	static const char *const names[] = {"Not started", "Running", "Paused", "Stopped"};
	return s <= VMM_STOPPED ? names[s] : "?";
}

struct vm_config *vmm_config(struct vmm *m)
{
	return &m->cfg;
}

int vmm_start(struct vmm *m, char *err, size_t errlen)
{
	m->starts++;
	if (m->state != VMM_NOT_STARTED)
		return errmsg(err, errlen,
			      "The requested operation is not supported after starting the microVM.");
	if (m->start_fail)
		return errmsg(err, errlen, "%s", m->start_fail);
	if (vmcfg_check_startable(&m->cfg, err, errlen) < 0)
		return -1;
	m->state = VMM_RUNNING;
	return 0;
}

int vmm_pause(struct vmm *m, char *err, size_t errlen)
{
	m->pauses++;
	m->state = VMM_PAUSED;
	return 0;
}

int vmm_resume(struct vmm *m, char *err, size_t errlen)
{
	m->resumes++;
	m->state = VMM_RUNNING;
	return 0;
}

int vmm_ctrl_alt_del(struct vmm *m, char *err, size_t errlen)
{
	m->ctrl_alt_dels++;
	return 0;
}

/* As the real one, with no VM to swap into: after the start the
 * configuration's policy stands for the one in force. */
int vmm_set_policy(struct vmm *m, struct policy *p, struct policy_spec *s, char *err, size_t errlen)
{
	m->policy_sets++;
	policy_free(p);
	if (m->state != VMM_NOT_STARTED && policy_check_live_change(&m->cfg.policy, s, err, errlen) < 0) {
		policy_spec_free(s);
		return -1;
	}
	vmcfg_set_policy(&m->cfg, s);
	return 0;
}

int vmm_flush_metrics(struct vmm *m, char *err, size_t errlen)
{
	m->flushes++;
	return 0;
}

struct vm *vmm_vm(struct vmm *m)
{
	return NULL;
}

void vmm_request_stop(struct vmm *m, enum vm_stop why) {}

int vmm_set_trace(struct vmm *m, const struct vmm_trace_req *r, char *err, size_t errlen)
{
	if (r->path)
		snprintf(m->cfg.trace, sizeof(m->cfg.trace), "%s", r->path);
	if (r->has_enabled && !r->enabled)
		m->cfg.trace[0] = '\0';
	if (r->filter)
		snprintf(m->cfg.trace_filter, sizeof(m->cfg.trace_filter), "%s", r->filter);
	return 0;
}

int vmm_set_audit(struct vmm *m, const char *path, char *err, size_t errlen)
{
	snprintf(m->cfg.audit, sizeof(m->cfg.audit), "%s", path ? path : "");
	return 0;
}

/* The snapshot calls: the body checks are the real ones (snapshot_json.c);
 * what would touch files answers as the real VMM does in that state. */
int vmm_snapshot_create(struct vmm *m, const struct vmm_snapshot_create *r, char *err, size_t errlen)
{
	snprintf(err, errlen, m->state == VMM_PAUSED ? "fake: no machine to snapshot (%s)"
						     : "Cannot create a snapshot: the microVM is not paused.",
		 r->snapshot_path);
	return -1;
}

int vmm_snapshot_load(struct vmm *m, const struct vmm_snapshot_load *r, char *err, size_t errlen)
{
	snprintf(err, errlen, "snapshot_path '%s': fake: no snapshot here", r->snapshot_path);
	return -1;
}

uint64_t vmm_snapshot_last_us(const struct vmm *m, bool load)
{
	return 0;
}

bool vmm_snapshot_last_diff(const struct vmm *m)
{
	return false;
}

uint64_t vmm_snapshot_first_entry_us(struct vmm *m)
{
	return 0;
}

uint64_t vmm_uptime_ns(const struct vmm *m)
{
	return 0;
}

uint64_t vmm_api_requests(const struct vmm *m)
{
	return m->api_requests;
}

void vmm_count_api_request(struct vmm *m)
{
	m->api_requests++;
}

int vmm_update_drive(struct vmm *m, const char *id, const char *path_on_host, char *err, size_t errlen)
{
	m->drive_updates++;
	snprintf(m->last_drive_id, sizeof(m->last_drive_id), "%s", id);
	m->last_drive_path_null = !path_on_host;
	snprintf(m->last_drive_path, sizeof(m->last_drive_path), "%s", path_on_host ? path_on_host : "");
	for (unsigned i = 0; i < m->cfg.nr_drives; i++)
		if (!strcmp(m->cfg.drives[i].drive_id, id))
			return 0;
	return errmsg(err, errlen, "drive '%s' does not exist", id);
}

int vmm_update_net(struct vmm *m, const char *id, char *err, size_t errlen)
{
	m->net_updates++;
	for (unsigned i = 0; i < m->cfg.nr_nets; i++)
		if (!strcmp(m->cfg.nets[i].iface_id, id))
			return 0;
	return errmsg(err, errlen, "network interface '%s' does not exist", id);
}

/* Two vCPUs whose rip is 0x1000 + n; no vCPU 2. */
int vmm_vcpu_state(struct vmm *m, unsigned n, struct vcpu_state *s, char *err, size_t errlen)
{
	if (n >= 2)
		return errmsg(err, errlen, "vCPU %u does not exist (the VM has 2)", n);
	memset(s, 0, sizeof(*s));
	s->rip = 0x1000 + n;
	s->cr0 = 0x80000011;
	s->cs.selector = 0x10;
	return 0;
}

int vmm_vcpu_tid(struct vmm *m, unsigned n)
{
	return 100 + (int)n;
}

/* Guest RAM: 64 KiB at 0x1000 holding the low byte of each address, mapped
 * as it is (identity) and at FAKE_KVA in the kernel half. */
#define FAKE_RAM 0x1000ull
#define FAKE_KVA 0xffff800000000000ull
#define FAKE_LEN 0x10000ull

int vmm_read_gpa(struct vmm *m, uint64_t gpa, void *dst, uint64_t len, char *err, size_t errlen)
{
	if (gpa < FAKE_RAM || gpa - FAKE_RAM > FAKE_LEN || len > FAKE_LEN - (gpa - FAKE_RAM))
		return errmsg(err, errlen, "gpa 0x%llx+%llu: outside guest memory", (unsigned long long)gpa,
			      (unsigned long long)len);
	for (uint64_t i = 0; i < len; i++)
		((uint8_t *)dst)[i] = (uint8_t)(gpa + i);
	return 0;
}

int vmm_translate(struct vmm *m, unsigned cpu, uint64_t gva, struct pw_result *res, char *err, size_t errlen)
{
	if (cpu >= 2)
		return errmsg(err, errlen, "vCPU %u does not exist (the VM has 2)", cpu);
	if (gva >= FAKE_RAM && gva - FAKE_RAM < FAKE_LEN) {
		*res = (struct pw_result){ .gpa = gva, .page_size = 4096, .writable = true, .user = true, .levels = 4 };
		return 0;
	}
	if (gva < FAKE_KVA || gva - FAKE_KVA >= FAKE_LEN)
		return errmsg(err, errlen, "gva 0x%llx: not present", (unsigned long long)gva);
	*res = (struct pw_result){ .gpa = gva - FAKE_KVA + FAKE_RAM, .page_size = 4096, .writable = true,
				   .nx = true, .levels = 4 };
	return 0;
}

int vmm_read_gva(struct vmm *m, unsigned cpu, uint64_t gva, void *dst, uint64_t len, char *err, size_t errlen)
{
	struct pw_result res;
	if (vmm_translate(m, cpu, gva, &res, err, errlen) < 0)
		return -1;
	uint64_t end = res.gpa - FAKE_RAM + len;
	if (end > FAKE_LEN)
		return errmsg(err, errlen, "gva 0x%llx: not present",
			      (unsigned long long)(gva + (FAKE_LEN - (res.gpa - FAKE_RAM))));
	return vmm_read_gpa(m, res.gpa, dst, len, err, errlen);
}

int vmm_dump(struct vmm *m, const char *path, char *err, size_t errlen)
{
	m->dumps++;
	snprintf(m->last_dump_path, sizeof(m->last_dump_path), "%s", path);
	if (!strncmp(path, "/nonexistent/", 13))
		return errmsg(err, errlen, "dump: %s: No such file or directory", path);
	return 0;
}

/* metrics.h and log.h: just enough to see they are called. */
void metrics_count_api(const char *method, const char *group, bool ok)
{
	__atomic_add_fetch(&fake_metrics_count, 1, __ATOMIC_SEQ_CST);
	snprintf(fake_metrics_last_group, sizeof(fake_metrics_last_group), "%s", group);
	snprintf(fake_metrics_last_method, sizeof(fake_metrics_last_method), "%s", method);
}

char *metrics_stats_json(struct vmm *m)
{
	char *s = malloc(64);
	if (s)
		snprintf(s, 64, "{\"fake_stats\":true,\"api_requests\":%u}", m->api_requests);
	return s;
}

char *metrics_prometheus(struct vmm *m)
{
	char *s = malloc(96);
	if (s)
		snprintf(s, 96, "# TYPE vigil_api_requests_total counter\nvigil_api_requests_total %u\n",
			 m->api_requests);
	return s;
}

static struct vmm *fake_log_owner; /* the vmm whose log_configures/log_fail apply */

int vlog_configure(const struct vmcfg_logger *l, const char *instance_id, char *err, size_t errlen)
{
	if (fake_log_owner) {
		fake_log_owner->log_configures++;
		if (fake_log_owner->log_fail)
			return errmsg(err, errlen, "%s", fake_log_owner->log_fail);
	}
	return 0;
}

void vlog_close(void) {}

static bool fake_log_quiet = true;
static unsigned fake_log_lines;

void vlog(enum vmcfg_log_level level, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	__atomic_add_fetch(&fake_log_lines, 1, __ATOMIC_SEQ_CST);
	if (fake_log_quiet)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "[fake:%s:%d] ", file, line);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

#endif
