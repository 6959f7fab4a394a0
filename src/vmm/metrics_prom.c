/* metrics_prom — GET /metrics: the monitor's and the VMM's figures in the
 * Prometheus text exposition format 0.0.4 (# HELP / # TYPE, then one sample
 * per line; every sample of a family right after its header). Called by the
 * API on the control thread. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/exit.h"
#include "core/monitor.h"
#include "core/vm.h"
#include "vmm/metrics.h"
#include "vmm/metrics_int.h"
#include "vmm/trace.h"
#include "vmm/vmm.h"

/* A label value as the format wants it: \ " and newline escaped. */
static void put_label(FILE *f, const char *v)
{
	fputc('"', f);
	for (; v && *v; v++) {
		if (*v == '\\')
			fputs("\\\\", f);
		else if (*v == '"')
			fputs("\\\"", f);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
	fputc('"', f);
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct addr_ctx {
	FILE *f;
	struct vm *vm;
	unsigned cpu;
	bool denied; /* which count this family shows */
};

static void put_addr(void *ctx, const struct mon_addr *a)
{
	struct addr_ctx *c = ctx;
	char addr[24];
	snprintf(addr, sizeof(addr), "0x%" PRIx64, a->addr);
	fprintf(c->f, "%s{vcpu=\"%u\",space=\"%s\",addr=\"%s\",device=",
		c->denied ? "vigil_vcpu_access_denied_total" : "vigil_vcpu_accesses_total", c->cpu,
		mon_space_key(a->space), addr);
	put_label(c->f, vm_device_name(c->vm, a->space, a->addr));
	fprintf(c->f, "} %" PRIu64 "\n", c->denied ? a->denied : a->count);
}

static void vcpu_families(FILE *f, struct vm *vm)
{
	family(f, "vigil_vcpu_exits_total", "counter", "VM exits by vCPU and reason.");
	for (unsigned c = 0; c < vm->ncpus; c++)
		for (int r = 0; r < VEXIT__COUNT; r++)
			fprintf(f, "vigil_vcpu_exits_total{vcpu=\"%u\",reason=\"%s\"} %" PRIu64 "\n", c,
				vexit_reason_name(r), mon_get(&vm->stats[c].reasons[r]));
	for (int d = 0; d < 2; d++) {
		if (d)
			family(f, "vigil_vcpu_access_denied_total", "counter",
			       "Port and MMIO accesses the policy denied, by vCPU and address.");
		else
			family(f, "vigil_vcpu_accesses_total", "counter",
			       "Port and MMIO accesses by vCPU and address (each REP element is one).");
		for (unsigned c = 0; c < vm->ncpus; c++) {
			struct addr_ctx ac = {f, vm, c, d};
			mon_foreach(&vm->stats[c], put_addr, &ac);
		}
	}
	family(f, "vigil_vcpu_denied_total", "counter", "Accesses the policy denied, by vCPU.");
	for (unsigned c = 0; c < vm->ncpus; c++)
		fprintf(f, "vigil_vcpu_denied_total{vcpu=\"%u\"} %" PRIu64 "\n", c,
			mon_get(&vm->stats[c].denied));
	family(f, "vigil_vcpu_untracked_total", "counter",
	       "Accesses to addresses the monitor had no room to track.");
	for (unsigned c = 0; c < vm->ncpus; c++)
		fprintf(f, "vigil_vcpu_untracked_total{vcpu=\"%u\"} %" PRIu64 "\n", c,
			mon_get(&vm->stats[c].untracked));
}

static void device_families(FILE *f, struct vm *vm)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} fam[] = {
	    {"vigil_device_requests_total", "Requests a device took from the guest.",
	     offsetof(struct dev_stats, requests)},
	    {"vigil_device_bytes_total", "Bytes of the requests a device took.",
	     offsetof(struct dev_stats, bytes)},
	    {"vigil_device_errors_total", "Malformed requests and host I/O errors.",
	     offsetof(struct dev_stats, errors)},
	    {"vigil_device_denied_total", "Requests the policy refused.", offsetof(struct dev_stats, denied)},
	};
	for (size_t k = 0; k < sizeof(fam) / sizeof(fam[0]); k++) {
		family(f, fam[k].name, "counter", fam[k].help);
		for (unsigned i = 0; i < vm->nr_devs; i++) {
			const _Atomic uint64_t *v =
			    (const _Atomic uint64_t *)((const char *)&vm->devs[i].stats + fam[k].off);
			fprintf(f, "%s{device=", fam[k].name);
			put_label(f, vm->devs[i].id);
			fputs(",kind=", f);
			put_label(f, vm->devs[i].kind);
			fprintf(f, "} %" PRIu64 "\n", mon_get(v));
		}
	}
}

struct hv_ctx {
	FILE *f;
	int cpu;
};

static void put_hv_stat(void *ctx, const char *name, uint64_t value, bool cumulative)
{
	struct hv_ctx *c = ctx;
	(void)cumulative;
	if (c->cpu < 0)
		fputs("vigil_kvm_vm_stat{name=", c->f);
	else
		fprintf(c->f, "vigil_kvm_vcpu_stat{vcpu=\"%d\",name=", c->cpu);
	put_label(c->f, name);
	fprintf(c->f, "} %" PRIu64 "\n", value);
}

/* KVM's own statistics (binary stats), each under its KVM name. */
static void hv_families(FILE *f, struct vm *vm)
{
	const struct hv_ops *hv = &vm->vcpus.hv;
	const char *why = NULL;
	if (!hv->stats)
		return;
	family(f, "vigil_kvm_stats_available", "gauge",
	       "1 when the host kernel offers KVM's binary statistics (KVM_CAP_BINARY_STATS_FD).");
	struct hv_ctx c = { f, -1 };
	/* A first read tells whether there is anything: the header then only
	 * comes when samples follow. */
	char *vbuf = NULL;
	size_t vlen = 0;
	FILE *vf = open_memstream(&vbuf, &vlen);
	if (!vf)
		return;
	c.f = vf;
	int r = hv->stats(hv->hv, -1, put_hv_stat, &c, &why);
	fclose(vf);
	fprintf(f, "vigil_kvm_stats_available %d\n", r == 0);
	if (r == 0) {
		family(f, "vigil_kvm_vm_stat", "untyped", "KVM's statistics of the VM, by KVM's name.");
		fputs(vbuf, f);
		family(f, "vigil_kvm_vcpu_stat", "untyped",
		       "KVM's statistics of each vCPU, by KVM's name (exits: every exit, also those KVM handled).");
		c.f = f;
		for (unsigned i = 0; i < vm->ncpus; i++) {
			c.cpu = (int)i;
			hv->stats(hv->hv, c.cpu, put_hv_stat, &c, &why);
		}
	}
	free(vbuf);
}

/* Per-rule hit counts of the policy in force. */
static void policy_families(FILE *f, struct vm *vm)
{
	const struct policy *p = policy_enter(&vm->policy);
	const struct policy_spec *s = policy_spec_of(p);
	if (s->nrules)
		family(f, "vigil_policy_rule_hits_total", "counter", "Decisions each policy rule made.");
	for (unsigned i = 0; i < s->nrules; i++) {
		fputs("vigil_policy_rule_hits_total{rule=", f);
		put_label(f, s->rules[i].id);
		fputs(",resource=", f);
		put_label(f, policy_resource_name(s->rules[i].resource));
		fputs(",verdict=", f);
		put_label(f, policy_verdict_name(s->rules[i].verdict));
		fprintf(f, "} %" PRIu64 "\n", policy_rule_hits(p, i));
	}
	policy_leave(&vm->policy);
}

char *metrics_prometheus(struct vmm *m)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;

	struct vm *vm = vmm_vm(m);
	if (vm) {
		vcpu_families(f, vm);
		device_families(f, vm);
		hv_families(f, vm);
		policy_families(f, vm);
	}
	struct vtrace_stats ts;
	if (vmm_trace_stats(m, &ts)) {
		const struct {
			const char *name, *help;
			uint64_t v;
		} tr[] = {
		    {"vigil_trace_events_total", "Events queued for the trace and the audit log.", ts.events},
		    {"vigil_trace_lost_total", "Events dropped: a full ring, or no ring.", ts.lost},
		    {"vigil_trace_lines_total", "Trace lines written.", ts.trace_lines},
		    {"vigil_audit_records_total", "Audit records written.", ts.audit_lines},
		    {"vigil_audit_coalesced_total", "Audited events folded into an earlier record.", ts.coalesced},
		    {"vigil_trace_write_failed_total", "Trace and audit lines that could not be written.",
		     ts.trace_failed + ts.audit_failed},
		};
		for (size_t k = 0; k < sizeof(tr) / sizeof(tr[0]); k++) {
			family(f, tr[k].name, "counter", tr[k].help);
			fprintf(f, "%s %" PRIu64 "\n", tr[k].name, tr[k].v);
		}
	}
	family(f, "vigil_process_resident_memory_bytes", "gauge", "Resident memory of the vigil process.");
	fprintf(f, "vigil_process_resident_memory_bytes %" PRIu64 "\n", metrics_rss_bytes());
	family(f, "vigil_process_threads", "gauge", "Threads of the vigil process.");
	fprintf(f, "vigil_process_threads %" PRIu64 "\n", metrics_threads());
	uint64_t up = vmm_uptime_ns(m);
	family(f, "vigil_uptime_seconds", "gauge", "Seconds since the VMM started.");
	fprintf(f, "vigil_uptime_seconds %" PRIu64 ".%09" PRIu64 "\n", up / 1000000000u, up % 1000000000u);
	family(f, "vigil_api_requests_total", "counter", "API requests served.");
	fprintf(f, "vigil_api_requests_total %" PRIu64 "\n", vmm_api_requests(m));
	family(f, "vigil_vm_state", "gauge", "The VM's state: 1 for the current one.");
	enum vmm_state cur = vmm_state(m);
	for (int s = VMM_NOT_STARTED; s <= VMM_STOPPED; s++) {
		fputs("vigil_vm_state{state=", f);
		put_label(f, vmm_state_name((enum vmm_state)s));
		fprintf(f, "} %d\n", s == (int)cur);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
