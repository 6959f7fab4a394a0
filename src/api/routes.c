/* routes — Firecracker's endpoint table and its phase rules over a
 * struct vmm, as one pure function (see routes.h). Checks run in
 * Firecracker's order: body on GET / empty PUT or PATCH, method and path,
 * the id in the path, the JSON, the phase (before or after InstanceStart),
 * then the object itself through config_json.c. */
#include "api/routes.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/routes_int.h"
#include "arch/x86/cpu_state.h"
#include "core/vm.h"
#include "vmm/config_json.h"
#include "vmm/log.h"
#include "vmm/metrics.h"
#include "vmm/policy_json.h"
#include "vmm/update.h"
#include "vmm/vmm.h"

#define MSG_AFTER_START	 "The requested operation is not supported after starting the microVM."
#define MSG_BEFORE_START "The requested operation is not supported before starting the microVM."

enum phase { ANY, PRE_BOOT, POST_BOOT };

typedef int (*handler_fn)(struct ctx *x);

struct route {
	const char *method;
	const char *path; /* ends in '/' when an {id} follows */
	enum phase phase;
	const char *group;
	handler_fn fn;
	const char *shape; /* vmcfg_json_check()'s object, checked before the phase */
	const char *id_field;
};

void api_response_free(struct api_response *r)
{
	free(r->body);
	r->body = NULL;
}

void api_set_json(struct api_response *out, int status, json_t *o)
{
	out->status = status;
	out->content_type = "application/json";
	out->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!out->body) {
		out->status = 500;
		out->body = strdup("{\"fault_message\":\"out of memory\"}");
	}
}

/* A message may quote what the client sent (a parser's "near '...'"), which
 * need not be UTF-8; JSON strings must be, so such bytes become '?' rather
 * than the 400 turning into a 500. */
void api_fault(struct api_response *out, const char *msg)
{
	json_t *o = json_pack("{s:s}", "fault_message", msg);
	if (!o) {
		char clean[1024];
		size_t n = 0;
		for (; msg[n] && n < sizeof(clean) - 1; n++)
			clean[n] = (unsigned char)msg[n] >= 0x20 && (unsigned char)msg[n] < 0x7f ? msg[n] : '?';
		clean[n] = '\0';
		o = json_pack("{s:s}", "fault_message", clean);
	}
	api_set_json(out, 400, o);
}

static void set_text(struct api_response *out, char *text, const char *type)
{
	if (!text) {
		api_fault(out, "out of memory");
		return;
	}
	out->status = 200;
	out->content_type = type;
	out->body = text;
}

/* ---- handlers ----------------------------------------------------------- */

static int get_instance(struct ctx *x)
{
	api_set_json(x->out, 200,
		 json_pack("{s:s,s:s,s:s,s:s}", "id", vmm_config(x->m)->id, "state",
			   vmm_state_name(vmm_state(x->m)), "vmm_version", VIGIL_VERSION, "app_name",
			   "vigil"));
	return 0;
}

static int get_version(struct ctx *x)
{
	/* The key stays Firecracker's so that scripts reading it work. */
	api_set_json(x->out, 200, json_pack("{s:s}", "firecracker_version", VIGIL_VERSION));
	return 0;
}

static int get_machine(struct ctx *x)
{
	api_set_json(x->out, 200, vmcfg_machine_to_json(&vmm_config(x->m)->machine));
	return 0;
}

static int get_vm_config(struct ctx *x)
{
	api_set_json(x->out, 200, vmcfg_to_json(vmm_config(x->m)));
	return 0;
}

static int get_stats(struct ctx *x)
{
	set_text(x->out, metrics_stats_json(x->m), "application/json");
	return 0;
}

/* GET /vigil/vcpus: each vCPU's run state and host thread. */
static int get_vcpus(struct ctx *x)
{
	struct vm *vm = vmm_vm(x->m);
	json_t *list = json_array();
	const char *state = vmm_state_name(vmm_state(x->m));
	for (unsigned i = 0; vm && i < vm->ncpus; i++)
		json_array_append_new(list, json_pack("{s:i, s:s, s:i}", "id", (int)i, "state", state, "thread_id",
						      vmm_vcpu_tid(x->m, i)));
	api_set_json(x->out, 200, json_pack("{s:o}", "vcpus", list));
	return 0;
}

json_t *api_hex(uint64_t v)
{
	char b[24];
	snprintf(b, sizeof(b), "0x%" PRIx64, v);
	return json_string(b);
}

/* GET /vigil/vcpus/{n}/regs: read on the vCPU's own thread (core/vcpu.c). */
static int get_vcpu_regs(struct ctx *x)
{
	char *end;
	unsigned long n = strtoul(x->id, &end, 10);
	struct vcpu_state s;
	if (*end || n > 1024) {
		snprintf(x->err, sizeof(x->err), "vCPU '%s': expected a vCPU number", x->id);
		return -1;
	}
	if (vmm_vcpu_state(x->m, (unsigned)n, &s, x->err, sizeof(x->err)) < 0)
		return -1;
	json_t *o = json_object();
	const struct { const char *name; uint64_t v; } regs[] = {
		{ "rax", s.rax }, { "rbx", s.rbx }, { "rcx", s.rcx }, { "rdx", s.rdx }, { "rsi", s.rsi },
		{ "rdi", s.rdi }, { "rsp", s.rsp }, { "rbp", s.rbp }, { "r8", s.r8 }, { "r9", s.r9 },
		{ "r10", s.r10 }, { "r11", s.r11 }, { "r12", s.r12 }, { "r13", s.r13 }, { "r14", s.r14 },
		{ "r15", s.r15 }, { "rip", s.rip }, { "rflags", s.rflags }, { "cs", s.cs.selector },
		{ "ds", s.ds.selector }, { "es", s.es.selector }, { "fs", s.fs.selector }, { "gs", s.gs.selector },
		{ "ss", s.ss.selector }, { "fs_base", s.fs.base }, { "gs_base", s.gs.base }, { "cr0", s.cr0 },
		{ "cr2", s.cr2 }, { "cr3", s.cr3 }, { "cr4", s.cr4 }, { "efer", s.efer },
		{ "apic_base", s.apic_base },
	};
	for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
		json_object_set_new(o, regs[i].name, api_hex(regs[i].v));
	api_set_json(x->out, 200, o);
	return 0;
}

static int get_prometheus(struct ctx *x)
{
	set_text(x->out, metrics_prometheus(x->m), "text/plain; version=0.0.4");
	return 0;
}

/* GET /policy: the policy in force (with no policy given, the built-in
 * defaults: {"mode": "enforce", "rules": []}). */
static int get_policy(struct ctx *x)
{
	api_set_json(x->out, 200, policy_json_dump(&vmm_config(x->m)->policy));
	return 0;
}

/* PUT /policy: the whole policy, checked (and compiled) before anything
 * changes; an invalid one leaves the old in force. */
static int put_policy(struct ctx *x)
{
	struct policy_spec s;
	struct policy *p = policy_json_build(x->body, &s, x->err, sizeof(x->err));
	if (!p)
		return -1;
	return vmm_set_policy(x->m, p, &s, x->err, sizeof(x->err));
}

/* PUT /cpu-config: Firecracker's custom CPU template, as policy rules
 * (cpu_config_json.c); pre-boot, as Firecracker. */
static int put_cpu_config(struct ctx *x)
{
	struct vm_config *c = vmm_config(x->m);
	if (cpu_config_json_apply(x->body, &c->policy, x->err, sizeof(x->err)) < 0)
		return -1;
	c->has_policy = true;
	return 0;
}

static int put_machine(struct ctx *x)
{
	return vmcfg_json_machine(vmm_config(x->m), x->body, x->err, sizeof(x->err));
}

static int patch_machine(struct ctx *x)
{
	return vmcfg_json_machine_patch(vmm_config(x->m), x->body, x->err, sizeof(x->err));
}

static int put_boot(struct ctx *x)
{
	return vmcfg_json_boot(vmm_config(x->m), x->body, x->err, sizeof(x->err));
}

/* Firecracker's check that PUT /drives/a carries {"drive_id": "a"}. */
static int same_id(struct ctx *x, const char *field)
{
	const char *bid = vmcfg_json_id(x->body, field);
	if (bid && strcmp(bid, x->id))
		return snprintf(x->err, sizeof(x->err),
				"The id from the path [%s] does not match the id from the body [%.64s]!",
				x->id, bid),
		       -1;
	return 0;
}

static int put_drive(struct ctx *x)
{
	if (same_id(x, "drive_id") < 0)
		return -1;
	return vmcfg_json_drive(vmm_config(x->m), x->body, x->err, sizeof(x->err));
}

static int patch_drive(struct ctx *x)
{
	struct vmcfg_drive_patch *p = malloc(sizeof(*p));
	int rc = -1;

	if (!p)
		return snprintf(x->err, sizeof(x->err), "out of memory"), -1;
	if (same_id(x, "drive_id") == 0 && vmcfg_json_drive_patch(x->body, p, x->err, sizeof(x->err)) == 0)
		rc = vmm_update_drive(x->m, x->id, p->path_on_host[0] ? p->path_on_host : NULL, x->err,
				      sizeof(x->err));
	free(p);
	return rc;
}

static int put_net(struct ctx *x)
{
	if (same_id(x, "iface_id") < 0)
		return -1;
	return vmcfg_json_net(vmm_config(x->m), x->body, x->err, sizeof(x->err));
}

static int patch_net(struct ctx *x)
{
	char id[VMCFG_ID_MAX + 1];

	if (same_id(x, "iface_id") < 0 || vmcfg_json_net_patch(x->body, id, x->err, sizeof(x->err)) < 0)
		return -1;
	return vmm_update_net(x->m, x->id, x->err, sizeof(x->err));
}

static int put_vsock(struct ctx *x)
{
	return vmcfg_json_vsock(vmm_config(x->m), x->body, x->err, sizeof(x->err));
}

static int put_entropy(struct ctx *x)
{
	return vmcfg_json_entropy(vmm_config(x->m), x->body, x->err, sizeof(x->err));
}

static int put_logger(struct ctx *x)
{
	struct vm_config *c = vmm_config(x->m);
	struct vmcfg_logger *old = malloc(sizeof(*old));
	bool had = c->has_logger;
	int rc = -1;

	if (!old)
		return snprintf(x->err, sizeof(x->err), "out of memory"), -1;
	*old = c->logger;
	if (vmcfg_json_logger(c, x->body, x->err, sizeof(x->err)) == 0) {
		rc = vlog_configure(&c->logger, c->id, x->err, sizeof(x->err));
		if (rc < 0) /* the configuration must say what the logger really does */
			c->logger = *old, c->has_logger = had;
	}
	free(old);
	return rc;
}

static int put_metrics(struct ctx *x)
{
	struct vm_config *c = vmm_config(x->m);

	if (c->has_metrics)
		return snprintf(x->err, sizeof(x->err),
				"metrics: the metrics system can only be configured once"),
		       -1;
	return vmcfg_json_metrics(c, x->body, x->err, sizeof(x->err));
}

static bool started(struct vmm *m)
{
	return vmm_state(m) != VMM_NOT_STARTED;
}

int api_only_field(struct ctx *x, const char *what, const char *field)
{
	const char *key;
	json_t *v;

	json_object_foreach(x->body, key, v)
	{
		if (strcmp(key, field))
			return snprintf(x->err, sizeof(x->err), "%s: unknown field `%.64s`", what, key), -1;
	}
	v = json_object_get(x->body, field);
	if (!v)
		return snprintf(x->err, sizeof(x->err), "%s: missing field `%s`", what, field), -1;
	if (!json_is_string(v))
		return snprintf(x->err, sizeof(x->err), "%s: field `%s` must be a string", what, field), -1;
	return 0;
}

static int put_actions(struct ctx *x)
{
	const char *a;

	if (api_only_field(x, "actions", "action_type") < 0)
		return -1;
	a = json_string_value(json_object_get(x->body, "action_type"));
	if (!strcmp(a, "InstanceStart")) {
		if (started(x->m))
			return snprintf(x->err, sizeof(x->err), MSG_AFTER_START), -1;
		return vmm_start(x->m, x->err, sizeof(x->err));
	}
	if (!strcmp(a, "SendCtrlAltDel") || !strcmp(a, "FlushMetrics")) {
		if (!started(x->m))
			return snprintf(x->err, sizeof(x->err), MSG_BEFORE_START), -1;
		return a[0] == 'S' ? vmm_ctrl_alt_del(x->m, x->err, sizeof(x->err))
				   : vmm_flush_metrics(x->m, x->err, sizeof(x->err));
	}
	return snprintf(
		   x->err, sizeof(x->err),
		   "actions: unknown action_type \"%.32s\" (FlushMetrics, InstanceStart or SendCtrlAltDel)",
		   a),
	       -1;
}

static int patch_vm(struct ctx *x)
{
	const char *s;

	if (api_only_field(x, "vm", "state") < 0)
		return -1;
	s = json_string_value(json_object_get(x->body, "state"));
	if (!strcmp(s, "Paused"))
		return vmm_pause(x->m, x->err, sizeof(x->err));
	if (!strcmp(s, "Resumed"))
		return vmm_resume(x->m, x->err, sizeof(x->err));
	return snprintf(x->err, sizeof(x->err), "vm: state must be \"Paused\" or \"Resumed\", not \"%.32s\"",
			s),
	       -1;
}

/* Only `allowed` keys; each a string (or null where `nullable`). */
static int check_fields(struct ctx *x, const char *what, const char *const *allowed)
{
	const char *key;
	json_t *v;

	if (!json_is_object(x->body))
		return snprintf(x->err, sizeof(x->err), "%s: the body must be a JSON object", what), -1;
	json_object_foreach(x->body, key, v)
	{
		int i;
		for (i = 0; allowed[i] && strcmp(allowed[i], key); i++)
			;
		if (!allowed[i])
			return snprintf(x->err, sizeof(x->err), "%s: unknown field `%.64s`", what, key), -1;
	}
	return 0;
}

/* PUT /vigil/trace {"path", "filter", "enabled"}: start, switch, stop, refilter. */
static int put_trace(struct ctx *x)
{
	static const char *const fields[] = { "path", "filter", "enabled", NULL };
	struct vmm_trace_req r = { 0 };
	json_t *v;

	if (check_fields(x, "trace", fields) < 0)
		return -1;
	if ((v = json_object_get(x->body, "path")) && !json_is_null(v)) {
		if (!json_is_string(v))
			return snprintf(x->err, sizeof(x->err), "trace: field `path` must be a string"), -1;
		r.path = json_string_value(v);
	}
	if ((v = json_object_get(x->body, "filter")) && !json_is_null(v)) {
		if (!json_is_string(v))
			return snprintf(x->err, sizeof(x->err), "trace: field `filter` must be a string"), -1;
		r.filter = json_string_value(v);
	}
	if ((v = json_object_get(x->body, "enabled"))) {
		if (!json_is_boolean(v))
			return snprintf(x->err, sizeof(x->err), "trace: field `enabled` must be a boolean"), -1;
		r.has_enabled = true;
		r.enabled = json_is_true(v);
	}
	if (!r.path && !r.filter && !r.has_enabled)
		return snprintf(x->err, sizeof(x->err), "trace: give `path`, `filter` or `enabled`"), -1;
	return vmm_set_trace(x->m, &r, x->err, sizeof(x->err));
}

/* PUT /vigil/audit {"path"}: start or switch; null or "" stops. */
static int put_audit(struct ctx *x)
{
	static const char *const fields[] = { "path", NULL };
	json_t *v;

	if (check_fields(x, "audit", fields) < 0)
		return -1;
	if (!(v = json_object_get(x->body, "path")))
		return snprintf(x->err, sizeof(x->err), "audit: missing field `path`"), -1;
	if (!json_is_null(v) && !json_is_string(v))
		return snprintf(x->err, sizeof(x->err), "audit: field `path` must be a string or null"), -1;
	return vmm_set_audit(x->m, json_is_null(v) ? NULL : json_string_value(v), x->err, sizeof(x->err));
}

/* InstanceStart, FlushMetrics and SendCtrlAltDel share /actions: its phase
 * depends on the action, so put_actions checks it. */
static const struct route routes[] = {
    {"GET", "/", ANY, "instance_info", get_instance, NULL, NULL},
    {"GET", "/version", ANY, "vmm_version", get_version, NULL, NULL},
    {"GET", "/machine-config", ANY, "machine_cfg", get_machine, NULL, NULL},
    {"PUT", "/machine-config", PRE_BOOT, "machine_cfg", put_machine, "machine-config", NULL},
    {"PATCH", "/machine-config", PRE_BOOT, "machine_cfg", patch_machine, "machine-config-patch", NULL},
    {"PUT", "/boot-source", PRE_BOOT, "boot_source", put_boot, "boot-source", NULL},
    {"PUT", "/drives/", PRE_BOOT, "drive", put_drive, "drive", "drive_id"},
    {"PATCH", "/drives/", POST_BOOT, "drive", patch_drive, "drive-patch", "drive_id"},
    {"PUT", "/network-interfaces/", PRE_BOOT, "network", put_net, "network-interface", "iface_id"},
    {"PATCH", "/network-interfaces/", POST_BOOT, "network", patch_net, "network-interface-patch", "iface_id"},
    {"PUT", "/vsock", PRE_BOOT, "vsock", put_vsock, "vsock", NULL},
    {"PUT", "/entropy", PRE_BOOT, "entropy", put_entropy, "entropy", NULL},
    {"PUT", "/logger", PRE_BOOT, "logger", put_logger, "logger", NULL},
    {"PUT", "/metrics", PRE_BOOT, "metrics", put_metrics, "metrics", NULL},
    {"PUT", "/actions", ANY, "actions", put_actions, NULL, NULL},
    {"PATCH", "/vm", POST_BOOT, "vm", patch_vm, "vm", NULL},
    {"PUT", "/snapshot/create", POST_BOOT, "snapshot", api_put_snapshot_create, NULL, NULL},
    {"PUT", "/snapshot/load", PRE_BOOT, "snapshot", api_put_snapshot_load, NULL, NULL},
    {"GET", "/vm/config", ANY, "vm", get_vm_config, NULL, NULL},
    {"GET", "/vigil/stats", ANY, "vigil", get_stats, NULL, NULL},
    {"GET", "/metrics", ANY, "vigil", get_prometheus, NULL, NULL},
    {"GET", "/vigil/vcpus", ANY, "vigil", get_vcpus, NULL, NULL},
    {"GET", "/policy", ANY, "policy", get_policy, NULL, NULL},
    {"PUT", "/policy", ANY, "policy", put_policy, NULL, NULL},
    {"PUT", "/cpu-config", PRE_BOOT, "cpu_cfg", put_cpu_config, NULL, NULL},
    {"GET", "/vigil/vcpus/*/regs", POST_BOOT, "vigil", get_vcpu_regs, NULL, NULL},
    {"GET", "/vigil/vcpus/*/translate", POST_BOOT, "vigil", api_get_translate, NULL, NULL},
    {"GET", "/vigil/memory", POST_BOOT, "vigil", api_get_memory, NULL, NULL},
    {"PUT", "/vigil/dump", POST_BOOT, "vigil", api_put_dump, NULL, NULL},
    {"PUT", "/vigil/trace", ANY, "vigil", put_trace, NULL, NULL},
    {"PUT", "/vigil/audit", ANY, "vigil", put_audit, NULL, NULL},
};

/* Matches path against a route's pattern; for an {id} route, *id gets what
 * follows the prefix (which must hold no further '/'); a '*' stands for one
 * segment in the middle (copied to idbuf). */
static bool path_match(const struct route *r, const char *path, const char **id, char *idbuf, size_t idlen)
{
	size_t n = strlen(r->path);
	const char *star = strchr(r->path, '*');

	*id = NULL;
	if (star) {
		size_t pre = (size_t)(star - r->path);
		const char *seg = path + pre, *slash;
		if (strncmp(r->path, path, pre) || !(slash = strchr(seg, '/')) || strcmp(slash, star + 1))
			return false;
		size_t len = (size_t)(slash - seg);
		if (len >= idlen)
			len = idlen - 1; /* cut: the id check refuses it as too long */
		memcpy(idbuf, seg, len);
		idbuf[len] = '\0';
		*id = idbuf;
		return true;
	}
	if (r->path[n - 1] != '/' || n == 1)
		return !strcmp(r->path, path);
	if (strncmp(r->path, path, n) || strchr(path + n, '/'))
		return false;
	*id = path + n;
	return true;
}

/* The method and path go back in messages: keep them short and printable. */
static void printable(char *dst, size_t size, const char *s)
{
	size_t i;
	for (i = 0; s[i] && i + 1 < size; i++)
		dst[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	dst[i] = 0;
}

static const struct route *find_route(const char *method, const char *path, const char **id, char *idbuf,
				      size_t idlen)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (!strcmp(routes[i].method, method) && path_match(&routes[i], path, id, idbuf, idlen))
			return &routes[i];
	return NULL;
}

static void route(struct vmm *m, const char *method, const char *path, const char *query, const char *body,
		  size_t len, struct api_response *out)
{
	char msg[512], meth[16], p[160], idbuf[VMCFG_ID_MAX + 2];
	const struct route *r;
	const char *id;
	struct ctx x = {.m = m, .out = out, .query = query};

	if (!strcmp(method, "GET") && len) {
		api_fault(out, "GET request cannot have a body.");
		return;
	}
	if (!strcmp(method, "PUT") && !len) {
		api_fault(out, "Empty PUT request.");
		return;
	}
	if (!strcmp(method, "PATCH") && !len) {
		api_fault(out, "Empty PATCH request.");
		return;
	}
	if (!(r = find_route(method, path, &id, idbuf, sizeof(idbuf)))) {
		printable(meth, sizeof(meth), method);
		printable(p, sizeof(p), path);
		snprintf(msg, sizeof(msg), "Invalid request method and/or path: %s %s.", meth, p);
		api_fault(out, msg);
		return;
	}
	out->group = r->group;
	if (id && !vmcfg_id_ok(id)) {
		if (!id[0]) {
			api_fault(out, "Empty ID in request.");
			return;
		}
		api_fault(out, "Invalid ID: API Resource IDs can only contain alphanumeric characters and "
			       "underscores (at most 64).");
		return;
	}
	x.id = id;
	if (len && !(x.body = vmcfg_json_parse(body, len, x.err, sizeof(x.err)))) {
		api_fault(out, x.err);
		return;
	}
	/* Firecracker's parser rejects a malformed body before the VMM judges
	 * the phase: unknown fields, types, required fields, the path's id. */
	if (r->shape && r->phase != ANY && (r->phase == PRE_BOOT) == started(m)) {
		int bad = !strcmp(r->shape, "vm") ? api_only_field(&x, "vm", "state")
						  : vmcfg_json_check(r->shape, x.body, x.err, sizeof(x.err));
		if (bad || (r->id_field && same_id(&x, r->id_field) < 0)) {
			json_decref(x.body);
			api_fault(out, x.err);
			return;
		}
	}
	if (r->phase == PRE_BOOT && started(m))
		snprintf(x.err, sizeof(x.err), MSG_AFTER_START);
	else if (r->phase == POST_BOOT && !started(m))
		snprintf(x.err, sizeof(x.err), MSG_BEFORE_START);
	else if (r->fn(&x) == 0) {
		if (!out->status)
			out->status = 204;
		json_decref(x.body);
		return;
	}
	json_decref(x.body);
	api_response_free(out);
	api_fault(out, x.err[0] ? x.err : "request failed");
}

void api_handle(struct vmm *m, const char *method, const char *path, const char *body, size_t len,
		struct api_response *out)
{
	memset(out, 0, sizeof(*out));
	out->group = "invalid";
	/* The query (vigil's GET calls take their arguments there) is cut
	 * off before the path is matched. */
	const char *q = path ? strchr(path, '?') : NULL;
	char *p = q ? strndup(path, (size_t)(q - path)) : NULL;
	if (q && !p) {
		api_fault(out, "out of memory");
		return;
	}
	route(m, method ? method : "", p ? p : path ? path : "", q ? q + 1 : "", body, body ? len : 0, out);
	free(p);
	if (out->status == 204)
		out->content_type = "application/json";
}
