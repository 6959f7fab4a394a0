/* The policy file read into a struct policy_spec (policy_json.h): the
 * document, each rule's common fields (the resource's own are in
 * policy_json_res.c, the value readers in policy_json_val.c), unique ids,
 * files, and the live-change check. */
#include "vmm/policy_json.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errmsg.h"
#include "vmm/policy_json_int.h"

/* --- rules -------------------------------------------------------------- */

static const char *const resource_names[] = {"pio", "mmio",  "msr", "cpuid", "disk",
					     "net", "vsock", "rtc", NULL};
static const char *const verdict_names[] = {"provide", "redirect", "deny", NULL};

static bool id_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '-' || c == '.' || c == ':' || c == '/';
}

static int parse_rule(struct pj_ctx *x, json_t *o, struct policy_rule *r)
{
	json_t *v;
	const char *key;
	int e;

	if (!json_is_object(o))
		return pj_err(x, NULL, "not an object");
	v = json_object_get(o, "id");
	if (!v)
		return pj_err(x, NULL, "missing field \"id\"");
	if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) > POLICY_ID_MAX)
		return pj_err(x, "id", "must be a string of 1 to %d characters", POLICY_ID_MAX);
	for (const char *p = json_string_value(v); *p; p++)
		if (!id_char_ok(*p))
			return pj_err(x, "id", "only letters, digits and _ - . : /");
	strcpy(r->id, json_string_value(v));
	x->id = r->id;

	if (!(v = json_object_get(o, "resource")))
		return pj_err(x, NULL, "missing field \"resource\"");
	if (!json_is_string(v))
		return pj_err(x, "resource",
			      "must be a string (pio, mmio, msr, cpuid, disk, net, vsock, rtc)");
	if (pj_enum(x, "resource", v, resource_names, &e) < 0) {
		char b[48];
		pj_shown(json_string_value(v), b, sizeof(b));
		return pj_err(x, "resource",
			      "unknown resource \"%s\" (pio, mmio, msr, cpuid, disk, net, vsock, rtc)", b);
	}
	r->resource = (enum policy_resource)e;
	json_object_foreach(o, key, v)
	{
		if (strcmp(key, "id") && strcmp(key, "resource") && strcmp(key, "verdict") &&
		    strcmp(key, "audit") && !pj_known_field(r->resource, key)) {
			char b[48];
			pj_shown(key, b, sizeof(b));
			return pj_err(x, NULL, "unknown field \"%s\" for resource %s", b,
				      resource_names[r->resource]);
		}
	}
	if (!(v = json_object_get(o, "verdict")))
		return pj_err(x, NULL, "missing field \"verdict\"");
	if (pj_enum(x, "verdict", v, verdict_names, &e) < 0)
		return -1;
	r->verdict = (enum policy_verdict)e;
	r->audit = r->verdict != POLICY_PROVIDE;
	if ((v = json_object_get(o, "audit"))) {
		if (!json_is_boolean(v))
			return pj_err(x, "audit", "must be true or false");
		r->audit = json_is_true(v);
	}
	return pj_match_fields(x, o, r);
}

struct id_ref {
	const char *id;
	unsigned n;
};

static int cmp_id(const void *a, const void *b)
{
	const struct id_ref *x = a, *y = b;
	int c = strcmp(x->id, y->id);
	return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* Ids are what audit records and hit counts are known by: unique. */
static int check_ids(const struct policy_spec *s, char *err, size_t errlen)
{
	if (s->nrules < 2)
		return 0;
	struct id_ref *ids = malloc(s->nrules * sizeof(*ids));
	if (!ids)
		return errmsg(err, errlen, "policy: out of memory");
	for (unsigned i = 0; i < s->nrules; i++)
		ids[i] = (struct id_ref){s->rules[i].id, i + 1};
	qsort(ids, s->nrules, sizeof(*ids), cmp_id);
	int rc = 0;
	for (unsigned i = 1; i < s->nrules && !rc; i++)
		if (!strcmp(ids[i].id, ids[i - 1].id))
			rc = errmsg(err, errlen,
				    "policy: rule \"%s\" (#%u): id: duplicate id (rule #%u has it too)",
				    ids[i].id, ids[i].n, ids[i - 1].n);
	free(ids);
	return rc;
}

static const char *const mode_names[] = {"enforce", "permissive", NULL};

static int parse_top(json_t *doc, struct policy_spec *s, char *err, size_t errlen)
{
	json_t *v;
	const char *key;
	struct pj_ctx x = {.err = err, .errlen = errlen};

	if (!json_is_object(doc))
		return errmsg(err, errlen, "policy: must be a JSON object {\"mode\": ..., \"rules\": [...]}");
	json_object_foreach(doc, key, v)
	{
		if (strcmp(key, "mode") && strcmp(key, "rules") && strcmp(key, "limits")) {
			char b[48];
			pj_shown(key, b, sizeof(b));
			return errmsg(err, errlen, "policy: unknown field \"%s\" (mode, rules, limits)", b);
		}
	}
	if ((v = json_object_get(doc, "mode"))) {
		int m;
		if (!json_is_string(v) || pj_enum(&x, "mode", v, mode_names, &m) < 0)
			return errmsg(err, errlen, "policy: mode: must be \"enforce\" or \"permissive\"");
		s->mode = (enum policy_mode)m;
	}
	if ((v = json_object_get(doc, "limits"))) {
		json_t *mc;
		if (!json_is_object(v))
			return errmsg(err, errlen, "policy: limits: not an object");
		json_object_foreach(v, key, mc)
		{
			if (strcmp(key, "max_host_connections")) {
				char b[48];
				pj_shown(key, b, sizeof(b));
				return errmsg(err, errlen,
					      "policy: limits: unknown field \"%s\" (max_host_connections)",
					      b);
			}
		}
		if ((mc = json_object_get(v, "max_host_connections"))) {
			if (!json_is_integer(mc) || json_integer_value(mc) < 1 ||
			    json_integer_value(mc) > 65536)
				return errmsg(err, errlen,
					      "policy: limits: max_host_connections: must be an integer from "
					      "1 to 65536");
			s->max_host_connections = (unsigned)json_integer_value(mc);
		}
	}
	if (!(v = json_object_get(doc, "rules")))
		return 0;
	if (!json_is_array(v))
		return errmsg(err, errlen, "policy: rules: not an array");
	size_t n = json_array_size(v);
	if (n > POLICY_MAX_RULES)
		return errmsg(err, errlen, "policy: rules: %zu rules, at most %d", n, POLICY_MAX_RULES);
	if (n && !(s->rules = calloc(n, sizeof(*s->rules))))
		return errmsg(err, errlen, "policy: out of memory");
	for (size_t i = 0; i < n; i++) {
		x.n = (unsigned)i + 1;
		x.id = NULL;
		s->nrules = x.n; /* so that policy_spec_free sees what this rule holds */
		if (parse_rule(&x, json_array_get(v, i), &s->rules[i]) < 0)
			return -1;
	}
	return check_ids(s, err, errlen);
}

int policy_json_parse(json_t *doc, struct policy_spec *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (parse_top(doc, out, err, errlen) < 0) {
		policy_spec_free(out);
		return -1;
	}
	return 0;
}

int policy_json_parse_text(const char *text, size_t len, struct policy_spec *out, char *err, size_t errlen)
{
	json_error_t je;
	memset(out, 0, sizeof(*out));
	if (len > POLICY_FILE_MAX)
		return errmsg(err, errlen, "policy: %zu bytes, at most %u (4 MiB)", len, POLICY_FILE_MAX);
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!doc)
		return errmsg(err, errlen, "policy: line %d column %d: %s", je.line, je.column, je.text);
	int rc = policy_json_parse(doc, out, err, errlen);
	json_decref(doc);
	return rc;
}

int policy_json_load_file(const char *path, struct policy_spec *out, char *err, size_t errlen)
{
	struct stat st;
	char e[512];
	memset(out, 0, sizeof(*out));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errmsg(err, errlen, "policy: %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return errmsg(err, errlen, "policy: %s: not a regular file", path);
	}
	if ((uint64_t)st.st_size > POLICY_FILE_MAX) {
		close(fd);
		return errmsg(err, errlen, "policy: %s: %lld bytes, at most %u (4 MiB)", path,
			      (long long)st.st_size, POLICY_FILE_MAX);
	}
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return errmsg(err, errlen, "policy: out of memory");
	}
	size_t got = 0;
	ssize_t n;
	while (got < (size_t)st.st_size && (n = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	int rc = policy_json_parse_text(buf, got, out, e, sizeof(e));
	free(buf);
	if (rc < 0) {
		/* "policy: FILE: line 3 ...", but rule errors stand as they are */
		if (!strncmp(e, "policy: line ", 13))
			return errmsg(err, errlen, "policy: %s: %s", path, e + 8);
		return errmsg(err, errlen, "%s", e);
	}
	return 0;
}

struct policy *policy_json_build(json_t *doc, struct policy_spec *out, char *err, size_t errlen)
{
	struct policy_spec s;
	if (policy_json_parse(doc, &s, err, errlen) < 0)
		return NULL;
	struct policy *p = policy_compile(&s, err, errlen);
	if (!p) {
		policy_spec_free(&s);
		return NULL;
	}
	*out = s;
	return p;
}

/* --- live changes ----------------------------------------------------------- */

static bool same_fixed(const struct policy_rule *a, const struct policy_rule *b)
{
	if (a->resource == POL_RES_CPUID)
		return !strcmp(a->id, b->id) && a->leaf == b->leaf && a->has_subleaf == b->has_subleaf &&
		       (!a->has_subleaf || a->subleaf == b->subleaf) &&
		       !memcmp(a->regs, b->regs, sizeof(a->regs));
	return !strcmp(a->id, b->id) && a->rtc_kind == b->rtc_kind && a->epoch_s == b->epoch_s &&
	       a->epoch_ns == b->epoch_ns && a->offset_s == b->offset_s;
}

/* The i-th rule of `res` (cpuid or rtc) in s, or NULL. */
static const struct policy_rule *nth_of(const struct policy_spec *s, enum policy_resource res, unsigned i)
{
	for (unsigned k = 0; k < s->nrules; k++)
		if (s->rules[k].resource == res && i-- == 0)
			return &s->rules[k];
	return NULL;
}

int policy_check_live_change(const struct policy_spec *cur, const struct policy_spec *next, char *err,
			     size_t errlen)
{
	static const enum policy_resource fixed[] = {POL_RES_CPUID, POL_RES_RTC};
	for (unsigned f = 0; f < 2; f++)
		for (unsigned i = 0;; i++) {
			const struct policy_rule *a = nth_of(cur, fixed[f], i),
						 *b = nth_of(next, fixed[f], i);
			if (!a && !b)
				break;
			if (a && b && same_fixed(a, b))
				continue;
			const char *what = fixed[f] == POL_RES_CPUID ? "cpuid" : "rtc";
			return errmsg(err, errlen,
				      "policy: rule \"%s\": %s rules cannot change once the VM has started",
				      b ? b->id : a->id, what);
		}
	return 0;
}
