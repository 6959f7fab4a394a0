/* metrics_json — GET /vigil/stats: the monitor's counts (per vCPU exits by
 * reason, accesses by address with the device that claims it, denials) and
 * the device registry's, as vigil's own JSON. Called by the API on the
 * control thread. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/exit.h"
#include "core/monitor.h"
#include "core/vm.h"
#include "vmm/metrics.h"
#include "vmm/trace.h"
#include "vmm/vmm.h"

struct addr_ctx {
	struct vm *vm;
	json_t *arr;
};

static void add_addr(void *ctx, const struct mon_addr *a)
{
	struct addr_ctx *c = ctx;
	char addr[24];
	snprintf(addr, sizeof(addr), "0x%" PRIx64, a->addr);
	const char *dev = vm_device_name(c->vm, a->space, a->addr);
	json_array_append_new(c->arr, json_pack("{s:s, s:s, s:o, s:I, s:I}", "space",
						mon_space_key(a->space), "addr", addr,
						"device", dev ? json_string(dev) : json_null(), "count",
						(json_int_t)a->count, "denied", (json_int_t)a->denied));
}

static const char *hv_name(struct vm *vm)
{
	return vm->vcpus.hv.name ? vm->vcpus.hv.name : "hypervisor";
}

static void add_hv_stat(void *ctx, const char *name, uint64_t value, bool cumulative)
{
	(void)cumulative;
	json_object_set_new(ctx, name, json_integer((json_int_t)value));
}

/* The hypervisor's own counts: {"vm": {...}, "vcpus": [{...}, ...]}, or
 * {"unavailable": why}. */
static json_t *hv_stats_json(struct vm *vm)
{
	const struct hv_ops *hv = &vm->vcpus.hv;
	const char *why = NULL;
	json_t *vmo = json_object(), *cpus = json_array();
	int r = hv->stats ? hv->stats(hv->hv, -1, add_hv_stat, vmo, &why) : -ENOTSUP;
	for (unsigned c = 0; r == 0 && c < vm->ncpus; c++) {
		json_t *o = json_object();
		r = hv->stats(hv->hv, (int)c, add_hv_stat, o, &why);
		json_array_append_new(cpus, o);
	}
	if (r == 0)
		return json_pack("{s:o, s:o}", "vm", vmo, "vcpus", cpus);
	json_decref(vmo);
	json_decref(cpus);
	return json_pack("{s:s}", "unavailable",
			 why ? why : r == -ENOTSUP ? "the hypervisor keeps no statistics" : strerror(-r));
}

/* The policy in force and each rule's hits (before the start: the
 * configured one, no hits yet). */
static json_t *policy_stats(struct vmm *m, struct vm *vm)
{
	const struct policy *p = vm ? policy_enter(&vm->policy) : NULL;
	const struct policy_spec *s = p ? policy_spec_of(p) : &vmm_config(m)->policy;
	json_t *rules = json_array();
	for (unsigned i = 0; i < s->nrules; i++)
		json_array_append_new(rules, json_pack("{s:s, s:s, s:s, s:I}", "id", s->rules[i].id, "resource",
						       policy_resource_name(s->rules[i].resource), "verdict",
						       policy_verdict_name(s->rules[i].verdict), "hits",
						       (json_int_t)(p ? policy_rule_hits(p, i) : 0)));
	json_t *o = json_pack("{s:s, s:o}", "mode", s->mode == POLICY_PERMISSIVE ? "permissive" : "enforce",
			      "rules", rules);
	if (vm)
		policy_leave(&vm->policy);
	return o;
}

char *metrics_stats_json(struct vmm *m)
{
	struct vm *vm = vmm_vm(m);
	json_t *vcpus = json_array(), *devices = json_array();
	uint64_t exits = 0, accesses = 0, denied = 0, untracked = 0;
	uint64_t requests = 0, bytes = 0, errors = 0, dev_denied = 0;

	for (unsigned c = 0; vm && c < vm->ncpus; c++) {
		const struct vcpu_stats *s = &vm->stats[c];
		json_t *ex = json_object();
		for (int r = 0; r < VEXIT__COUNT; r++) {
			uint64_t n = mon_get(&s->reasons[r]);
			json_object_set_new(ex, vexit_reason_name(r), json_integer((json_int_t)n));
			exits += n;
		}
		struct addr_ctx ac = {vm, json_array()};
		mon_foreach(s, add_addr, &ac);
		uint64_t a = mon_get(&s->accesses), d = mon_get(&s->denied), u = mon_get(&s->untracked);
		accesses += a;
		denied += d;
		untracked += u;
		json_array_append_new(vcpus,
				      json_pack("{s:i, s:o, s:I, s:I, s:I, s:o}", "id", (int)c, "exits", ex,
						"accesses", (json_int_t)a, "denied", (json_int_t)d,
						"untracked", (json_int_t)u, "addresses", ac.arr));
	}
	for (unsigned i = 0; vm && i < vm->nr_devs; i++) {
		const struct dev_stats *s = &vm->devs[i].stats;
		uint64_t rq = atomic_load_explicit(&s->requests, memory_order_relaxed);
		uint64_t by = atomic_load_explicit(&s->bytes, memory_order_relaxed);
		uint64_t er = atomic_load_explicit(&s->errors, memory_order_relaxed);
		uint64_t de = atomic_load_explicit(&s->denied, memory_order_relaxed);
		requests += rq;
		bytes += by;
		errors += er;
		dev_denied += de;
		json_array_append_new(devices,
				      json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "id", vm->devs[i].id,
						"kind", vm->devs[i].kind ? vm->devs[i].kind : "", "requests",
						(json_int_t)rq, "bytes", (json_int_t)by, "errors",
						(json_int_t)er, "denied", (json_int_t)de));
	}
	json_t *totals =
	    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "exits", (json_int_t)exits, "accesses",
		      (json_int_t)accesses, "denied", (json_int_t)denied, "untracked", (json_int_t)untracked,
		      "device_requests", (json_int_t)requests, "device_bytes", (json_int_t)bytes,
		      "device_errors", (json_int_t)errors, "device_denied", (json_int_t)dev_denied);
	json_t *root =
	    json_pack("{s:s, s:I, s:o, s:o, s:o}", "state", vmm_state_name(vmm_state(m)), "uptime_ns",
		      (json_int_t)vmm_uptime_ns(m), "vcpus", vcpus, "devices", devices, "totals", totals);
	if (root && vm)
		json_object_set_new(root, hv_name(vm), hv_stats_json(vm));
	if (!root)
		return NULL;
	json_object_set_new(root, "policy", policy_stats(m, vm));
	/* vigil's own: the last snapshot calls (Firecracker's latencies_us
	 * has the first two too). */
	json_object_set_new(root, "snapshot",
			    json_pack("{s:I, s:I, s:I}", "last_create_us", (json_int_t)vmm_snapshot_last_us(m, false),
				      "last_load_us", (json_int_t)vmm_snapshot_last_us(m, true), "load_to_first_entry_us",
				      (json_int_t)vmm_snapshot_first_entry_us(m)));
	struct vtrace_stats ts = { 0 };
	vmm_trace_stats(m, &ts);
	json_object_set_new(root, "trace",
			    json_pack("{s:I, s:I, s:I, s:I}", "events", (json_int_t)ts.events, "lost",
				      (json_int_t)ts.lost, "lines", (json_int_t)ts.trace_lines, "write_failed",
				      (json_int_t)ts.trace_failed));
	json_object_set_new(root, "audit",
			    json_pack("{s:I, s:I, s:I}", "records", (json_int_t)ts.audit_lines, "coalesced",
				      (json_int_t)ts.coalesced, "write_failed", (json_int_t)ts.audit_failed));
	char *out = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return out;
}
