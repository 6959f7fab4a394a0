/* config_file — the --config-file document: Firecracker's VmmConfig keys
 * (boot-source, drives, machine-config, network-interfaces, vsock, logger,
 * metrics, entropy; balloon, mmds-config, cpu-config, pmem, memory-hotplug
 * refused) plus vigil's console, stats and trace. Used by the CLI and the
 * fuzz target; the objects themselves are decoded by config_json.c. The
 * document is applied to a copy and committed only if all of it is good. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errmsg.h"
#include "host/seccomp.h"
#include "vmm/config_json.h"
#include "vmm/snapshot_json.h"
#include "vmm/policy_json.h"
#include "vmm/trace.h"

#define CONFIG_FILE_MAX (1 << 20) /* real files are a few KiB */

/* trace_filter: the --trace-filter string, or the same as an object
 * {"kind": [...], "device": [...], "addr": [...], "vcpu": [...]} whose
 * values are strings (vcpu: numbers too). Checked, then kept as a string. */
static int trace_filter_json(json_t *v, char *out, size_t outlen, char *err, size_t errlen)
{
	static const char *const keys[] = { "kind", "device", "addr", "vcpu", NULL };
	char spec[1024] = "";
	size_t n = 0;
	struct evfilter f;
	char e[300];

	if (json_is_string(v)) {
		if (json_string_length(v) >= sizeof(spec))
			return errmsg(err, errlen, "trace_filter: too long");
		strcpy(spec, json_string_value(v));
	} else if (json_is_object(v)) {
		const char *key;
		json_t *a;
		json_object_foreach(v, key, a)
		{
			int k;
			for (k = 0; keys[k] && strcmp(keys[k], key); k++)
				;
			if (!keys[k])
				return errmsg(err, errlen, "trace_filter: unknown key `%.32s` (kind, device, addr, vcpu)", key);
			if (!json_is_array(a) || !json_array_size(a))
				return errmsg(err, errlen, "trace_filter.%s: must be a non-empty array", key);
			n += (size_t)snprintf(spec + n, n < sizeof(spec) ? sizeof(spec) - n : 0, "%s%s=", n ? ";" : "", key);
			size_t i;
			json_t *x;
			json_array_foreach(a, i, x)
			{
				const char *sep = i ? "," : "";
				if (json_is_string(x) && !strpbrk(json_string_value(x), ",;="))
					n += (size_t)snprintf(spec + n, n < sizeof(spec) ? sizeof(spec) - n : 0, "%s%s", sep,
							      json_string_value(x));
				else if (json_is_integer(x) && json_integer_value(x) >= 0)
					n += (size_t)snprintf(spec + n, n < sizeof(spec) ? sizeof(spec) - n : 0, "%s%lld", sep,
							      (long long)json_integer_value(x));
				else
					return errmsg(err, errlen, "trace_filter.%s[%zu]: must be a string or a number", key, i);
			}
			if (n >= sizeof(spec))
				return errmsg(err, errlen, "trace_filter: too long");
		}
	} else {
		return errmsg(err, errlen, "trace_filter: must be a string (--trace-filter's syntax) or an object");
	}
	if (trace_filter_parse(spec, &f, e, sizeof(e)) < 0)
		return errmsg(err, errlen, "trace_filter: %s", strncmp(e, "--trace-filter: ", 16) ? e : e + 16);
	if (strlen(spec) >= outlen)
		return errmsg(err, errlen, "trace_filter: too long");
	strcpy(out, spec);
	return 0;
}

typedef int (*obj_fn)(struct vm_config *, json_t *, char *, size_t);

static int apply_array(struct vm_config *c, json_t *a, const char *key, obj_fn fn, char *err, size_t errlen)
{
	size_t i;
	json_t *v;
	char e[400];

	if (!json_is_array(a))
		return errmsg(err, errlen, "%s: must be an array", key);
	json_array_foreach(a, i, v)
	{
		if (fn(c, v, e, sizeof(e)) < 0)
			return errmsg(err, errlen, "%s[%zu]: %s", key, i, e);
	}
	return 0;
}

/* vigil's "policy": the document itself or the path of a policy file.
 * Compiled once here so that a policy that would not install is refused
 * with the file. Sets c->policy without freeing the one before (the
 * caller's copy still holds it: see vmcfg_load_json). */
static int apply_policy(struct vm_config *c, json_t *v, char *err, size_t errlen)
{
	struct policy_spec s;
	if (json_is_string(v)) {
		if (policy_json_load_file(json_string_value(v), &s, err, errlen) < 0)
			return -1;
	} else if (!json_is_object(v))
		return errmsg(err, errlen, "policy: must be a policy object or the path of a policy file");
	else if (policy_json_parse(v, &s, err, errlen) < 0)
		return -1;
	struct policy *p = policy_compile(&s, err, errlen);
	if (!p) {
		policy_spec_free(&s);
		return -1;
	}
	policy_free(p);
	c->policy = s;
	c->has_policy = true;
	return 0;
}

static int apply(struct vm_config *c, json_t *doc, bool need_boot, char *err, size_t errlen);

/* vigil's "snapshot-load": PUT /snapshot/load's body, carried out when the
 * VM would start. The VM is the snapshot's, so nothing that shapes it may
 * sit beside it; the process's own keys (logger, metrics, console, stats,
 * trace, audit, seccomp) still apply. */
static int apply_snapshot_load(struct vm_config *c, json_t *doc, json_t *v, char *err, size_t errlen)
{
	static const char *const vm_keys[] = { "boot-source", "drives", "network-interfaces", "vsock", "entropy",
					       "machine-config", "policy", "cpu-config", NULL };
	for (unsigned i = 0; vm_keys[i]; i++) {
		json_t *k = json_object_get(doc, vm_keys[i]);
		if (k && !json_is_null(k) && !(json_is_array(k) && !json_array_size(k)))
			return errmsg(err, errlen, "config file: `snapshot-load` restores the snapshot's VM: leave out `%s`",
				      vm_keys[i]);
	}
	char e[400];
	if (!json_is_object(v) || vmm_snapshot_load_json(NULL, v, e, sizeof(e)) < 0)
		return errmsg(err, errlen, "snapshot-load: %s", json_is_object(v) ? e : "must be an object");
	char *text = json_dumps(v, JSON_COMPACT);
	if (!text || strlen(text) >= sizeof(c->snapshot_load)) {
		free(text);
		return errmsg(err, errlen, "snapshot-load: too long");
	}
	/* The rest of the document, without the VM's keys. */
	json_t *rest = json_deep_copy(doc);
	int r = -1;
	if (rest) {
		json_object_del(rest, "snapshot-load");
		for (unsigned i = 0; vm_keys[i]; i++)
			json_object_del(rest, vm_keys[i]);
		r = apply(c, rest, false, err, errlen);
		json_decref(rest);
	}
	if (r == 0) {
		c->has_boot = false;
		memset(&c->boot, 0, sizeof(c->boot));
		strcpy(c->snapshot_load, text);
	}
	free(text);
	return r;
}

static int apply(struct vm_config *c, json_t *doc, bool need_boot, char *err, size_t errlen)
{
	static const char *const known[] = {"boot-source",
					    "drives",
					    "machine-config",
					    "network-interfaces",
					    "vsock",
					    "logger",
					    "metrics",
					    "entropy",
					    "balloon",
					    "mmds-config",
					    "cpu-config",
					    "pmem",
					    "memory-hotplug",
					    "console",
					    "stats",
					    "trace",
					    "gdb",
					    "gdb_wait",
					    "policy",
					    "trace_filter",
					    "audit",
					    "log_max",
					    "seccomp",
					    "snapshot-load",
					    NULL};
	static const char *const unsupported[] = {"balloon", "mmds-config", "memory-hotplug", NULL};
	static const struct {
		const char *key;
		obj_fn fn;
	} objs[] = {
	    {"logger", vmcfg_json_logger},
	    {"metrics", vmcfg_json_metrics},
	    {"machine-config", vmcfg_json_machine},
	    {"boot-source", vmcfg_json_boot},
	    {"vsock", vmcfg_json_vsock},
	    {"entropy", vmcfg_json_entropy},
	    {"console", vmcfg_json_console},
	};
	const char *key;
	json_t *v;

	json_object_foreach(doc, key, v)
	{
		int i;
		for (i = 0; known[i] && strcmp(known[i], key); i++)
			;
		if (!known[i])
			return errmsg(err, errlen, "config file: unknown key `%.64s`", key);
	}
	for (int i = 0; unsupported[i]; i++)
		if ((v = json_object_get(doc, unsupported[i])) && !json_is_null(v))
			return errmsg(err, errlen, "%s: vigil does not support it (leave it out or null)",
				      unsupported[i]);
	if ((v = json_object_get(doc, "pmem")) && !json_is_null(v) &&
	    !(json_is_array(v) && !json_array_size(v)))
		return errmsg(err, errlen, "pmem: vigil does not support pmem devices");
	if ((v = json_object_get(doc, "snapshot-load")) && !json_is_null(v))
		return apply_snapshot_load(c, doc, v, err, errlen);
	if (need_boot && (!(v = json_object_get(doc, "boot-source")) || json_is_null(v)))
		return errmsg(err, errlen, "config file: missing key `boot-source`");

	for (size_t i = 0; i < sizeof(objs) / sizeof(objs[0]); i++) {
		char e[400];
		v = json_object_get(doc, objs[i].key);
		if (v && !json_is_null(v) && objs[i].fn(c, v, e, sizeof(e)) < 0)
			return errmsg(err, errlen, "%s", e);
	}
	if ((v = json_object_get(doc, "drives")) && !json_is_null(v) &&
	    apply_array(c, v, "drives", vmcfg_json_drive, err, errlen) < 0)
		return -1;
	if ((v = json_object_get(doc, "network-interfaces")) && !json_is_null(v) &&
	    apply_array(c, v, "network-interfaces", vmcfg_json_net, err, errlen) < 0)
		return -1;
	if ((v = json_object_get(doc, "stats")) && !json_is_null(v)) {
		if (!json_is_boolean(v))
			return errmsg(err, errlen, "stats: must be a boolean");
		c->stats = json_is_true(v);
	}
	if ((v = json_object_get(doc, "trace")) && !json_is_null(v)) {
		if (!json_is_string(v))
			return errmsg(err, errlen, "trace: must be a string (a file, or \"-\" for stderr)");
		if (json_string_length(v) >= sizeof(c->trace))
			return errmsg(err, errlen, "trace: path is too long");
		strcpy(c->trace, json_string_value(v));
	}
	json_t *gs = json_object_get(doc, "gdb"), *gw = json_object_get(doc, "gdb_wait");
	if ((gs && !json_is_null(gs)) || (gw && !json_is_null(gw))) {
		if (gs && !json_is_null(gs) && !json_is_string(gs))
			return errmsg(err, errlen, "gdb: must be a string (unix:PATH or tcp:ADDRESS:PORT)");
		if (gw && !json_is_null(gw) && !json_is_boolean(gw))
			return errmsg(err, errlen, "gdb_wait: must be a boolean");
		const char *spec = gs && !json_is_null(gs) ? json_string_value(gs) : c->gdb;
		bool wait = gw && !json_is_null(gw) ? json_is_true(gw) : c->gdb_wait;
		if (vmcfg_set_gdb(c, spec, wait, err, errlen) < 0)
			return -1;
	}
	if ((v = json_object_get(doc, "seccomp")) && !json_is_null(v)) {
		int mode = json_is_string(v) ? seccomp_parse_mode(json_string_value(v)) : -1;
		if (mode < 0)
			return errmsg(err, errlen, "seccomp: must be \"on\", \"log\" or \"off\"");
		c->seccomp = mode;
	}
	if ((v = json_object_get(doc, "policy")) && !json_is_null(v) && apply_policy(c, v, err, errlen) < 0)
		return -1;
	if ((v = json_object_get(doc, "trace_filter")) && !json_is_null(v) &&
	    trace_filter_json(v, c->trace_filter, sizeof(c->trace_filter), err, errlen) < 0)
		return -1;
	if ((v = json_object_get(doc, "audit")) && !json_is_null(v)) {
		if (!json_is_string(v) || !json_string_length(v))
			return errmsg(err, errlen, "audit: must be a string (a file, or \"-\" for stderr)");
		if (json_string_length(v) >= sizeof(c->audit))
			return errmsg(err, errlen, "audit: path is too long");
		strcpy(c->audit, json_string_value(v));
	}
	if ((v = json_object_get(doc, "log_max")) && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 4096)
			return errmsg(err, errlen, "log_max: expected a number of bytes, at least 4096");
		c->log_max = (uint64_t)json_integer_value(v);
	}
	return 0;
}

/* Firecracker's "cpu-config": a custom CPU template, or the path of one;
 * its rules go first in the policy (after the "policy" key is applied). */
static int apply_cpu_config(struct vm_config *tmp, const struct vm_config *c, json_t *v, char *err, size_t errlen)
{
	struct policy_spec local;
	json_t *doc = NULL;
	int rc;
	if (json_is_string(v)) {
		struct stat st;
		json_error_t je;
		const char *path = json_string_value(v);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > CONFIG_FILE_MAX)
			return errmsg(err, errlen, "cpu-config: %s: not a regular file of at most %d bytes", path,
				      CONFIG_FILE_MAX);
		if (!(v = doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je)))
			return errmsg(err, errlen, "cpu-config: %s: line %d column %d: %s", path, je.line, je.column,
				      je.text);
	}
	if (policy_spec_copy(&local, &tmp->policy) < 0) {
		json_decref(doc);
		return errmsg(err, errlen, "out of memory");
	}
	rc = cpu_config_json_apply(v, &local, err, errlen);
	json_decref(doc);
	if (rc < 0) {
		policy_spec_free(&local);
		return -1;
	}
	if (tmp->policy.rules != c->policy.rules) /* the "policy" key's, owned by tmp */
		policy_spec_free(&tmp->policy);
	tmp->policy = local;
	tmp->has_policy = true;
	return 0;
}

int vmcfg_load_json(struct vm_config *c, const char *text, size_t len, char *err, size_t errlen)
{
	struct vm_config *tmp;
	json_t *doc = vmcfg_json_parse(text, len, err, errlen);
	int rc;

	if (!doc)
		return -1;
	if (!(tmp = malloc(sizeof(*tmp)))) {
		json_decref(doc);
		return errmsg(err, errlen, "out of memory");
	}
	*tmp = *c;
	rc = apply(tmp, doc, true, err, errlen);
	json_t *cpu = json_object_get(doc, "cpu-config");
	if (rc == 0 && cpu && !json_is_null(cpu))
		rc = apply_cpu_config(tmp, c, cpu, err, errlen);
	/* The policy is the one thing a copy does not hold by value. */
	bool new_policy = tmp->policy.rules != c->policy.rules;
	if (rc == 0) {
		if (new_policy)
			policy_spec_free(&c->policy);
		*c = *tmp;
	} else if (new_policy)
		policy_spec_free(&tmp->policy);
	free(tmp);
	json_decref(doc);
	return rc;
}

int vmcfg_load_file(struct vm_config *c, const char *path, char *err, size_t errlen)
{
	struct stat st;
	char *buf;
	ssize_t n;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errmsg(err, errlen, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > CONFIG_FILE_MAX) {
		close(fd);
		return errmsg(err, errlen, "%s: not a regular file of at most %d bytes", path,
			      CONFIG_FILE_MAX);
	}
	if (!(buf = malloc((size_t)st.st_size + 1))) {
		close(fd);
		return errmsg(err, errlen, "out of memory");
	}
	while (got < (size_t)st.st_size && (n = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	int rc = vmcfg_load_json(c, buf, got, err, errlen);
	if (rc < 0 && strncmp(err, path, strlen(path))) {
		char e[512];
		snprintf(e, sizeof(e), "%s", err);
		errmsg(err, errlen, "%s: %s", path, e);
	}
	free(buf);
	return rc;
}
