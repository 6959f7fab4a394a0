/* The policy file read into a struct policy_spec (policy_json.h). One
 * function per resource's match fields; shared readers for numbers, ranges
 * and names. Every error goes through rerr() so that it names the rule and
 * the field the same way everywhere. */
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

/* --- errors ----------------------------------------------------------- */

struct rctx {
	char *err;
	size_t errlen;
	unsigned n;     /* 1-based position in "rules" */
	const char *id; /* NULL until known */
};

__attribute__((format(printf, 3, 4))) static int rerr(struct rctx *x, const char *field, const char *fmt, ...)
{
	char msg[320];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (x->id)
		return errmsg(x->err, x->errlen, "policy: rule \"%s\" (#%u): %s%s%s", x->id, x->n, field ? field : "",
			      field ? ": " : "", msg);
	return errmsg(x->err, x->errlen, "policy: rule #%u: %s%s%s", x->n, field ? field : "", field ? ": " : "", msg);
}

/* A JSON value in a message: short and printable. */
static void shown(const char *s, char *out, size_t len)
{
	size_t i = 0;
	for (; s[i] && i + 1 < len && i < 40; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
	out[i] = 0;
	if (s[i] && i >= 40 && len > 44)
		strcpy(out + i, "...");
}

/* --- numbers and ranges ----------------------------------------------- */

int policy_parse_u64(const char *s, uint64_t *v)
{
	uint64_t r = 0;
	unsigned base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return -1;
	for (; *s; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return -1;
		if (r > (UINT64_MAX - d) / base)
			return -1;
		r = r * base + d;
	}
	*v = r;
	return 0;
}

/* A number: a JSON integer >= 0 or a string in hex or decimal, at most max. */
static int get_num(struct rctx *x, const char *field, json_t *v, uint64_t max, uint64_t *out)
{
	char b[48];
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i < 0 || (uint64_t)i > max)
			return rerr(x, field, "%lld is out of range (0 to 0x%llx)", (long long)i, (unsigned long long)max);
		*out = (uint64_t)i;
		return 0;
	}
	if (!json_is_string(v))
		return rerr(x, field, "must be a number (an integer, or a string such as \"0x2f8\")");
	shown(json_string_value(v), b, sizeof(b));
	if (policy_parse_u64(json_string_value(v), out) < 0)
		return rerr(x, field, "\"%s\" is not a number (hex \"0x...\" or decimal)", b);
	if (*out > max)
		return rerr(x, field, "\"%s\" is out of range (0 to 0x%llx)", b, (unsigned long long)max);
	return 0;
}

static int get_range(struct rctx *x, const char *field, json_t *v, uint64_t max, struct policy_range *r)
{
	if (json_is_string(v)) {
		const char *s = json_string_value(v), *dash = strchr(s, '-');
		char b[48], a[32];
		shown(s, b, sizeof(b));
		if (dash) {
			size_t n = (size_t)(dash - s);
			if (n < sizeof(a)) {
				memcpy(a, s, n);
				a[n] = 0;
			}
			if (n >= sizeof(a) || policy_parse_u64(a, &r->first) < 0 || policy_parse_u64(dash + 1, &r->last) < 0)
				return rerr(x, field, "\"%s\" is not a range (\"A-B\", A and B in hex \"0x...\" or decimal)",
					    b);
			if (r->first > max || r->last > max)
				return rerr(x, field, "\"%s\" is out of range (0 to 0x%llx)", b, (unsigned long long)max);
			if (r->first > r->last)
				return rerr(x, field, "reversed range \"%s\"", b);
			return 0;
		}
	}
	if (get_num(x, field, v, max, &r->first) < 0)
		return -1;
	r->last = r->first;
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct policy_range *x = a, *y = b;
	return x->first < y->first ? -1 : x->first > y->first;
}

static void range_text(const struct policy_range *r, char *b, size_t n)
{
	if (r->first == r->last)
		snprintf(b, n, "0x%llx", (unsigned long long)r->first);
	else
		snprintf(b, n, "0x%llx-0x%llx", (unsigned long long)r->first, (unsigned long long)r->last);
}

/* A list field: one value or range, or an array of them (1..POLICY_MAX_RANGES).
 * Overlapping entries are refused: the second could never be told apart. */
static int get_ranges(struct rctx *x, const char *field, json_t *v, uint64_t max, struct policy_rule *r)
{
	size_t n = json_is_array(v) ? json_array_size(v) : 1;
	if (json_is_array(v) && n == 0)
		return rerr(x, field, "empty list (leave the field out to match any)");
	if (n > POLICY_MAX_RANGES)
		return rerr(x, field, "%zu entries, at most %d", n, POLICY_MAX_RANGES);
	struct policy_range *rs = calloc(n, sizeof(*rs));
	if (!rs)
		return rerr(x, field, "out of memory");
	for (size_t i = 0; i < n; i++)
		if (get_range(x, field, json_is_array(v) ? json_array_get(v, i) : v, max, &rs[i]) < 0) {
			free(rs);
			return -1;
		}
	struct policy_range *sorted = malloc(n * sizeof(*sorted));
	if (!sorted) {
		free(rs);
		return rerr(x, field, "out of memory");
	}
	memcpy(sorted, rs, n * sizeof(*rs));
	qsort(sorted, n, sizeof(*sorted), cmp_range);
	for (size_t i = 1; i < n; i++)
		if (sorted[i].first <= sorted[i - 1].last) {
			char a[48], b[48];
			range_text(&sorted[i - 1], a, sizeof(a));
			range_text(&sorted[i], b, sizeof(b));
			free(sorted);
			free(rs);
			return rerr(x, field, "%s overlaps %s", b, a);
		}
	free(sorted);
	free(r->ranges);
	r->ranges = rs;
	r->nranges = (unsigned)n;
	return 0;
}

/* One of names[] (NULL-terminated); its index in *out. */
static int get_enum(struct rctx *x, const char *field, json_t *v, const char *const *names, int *out)
{
	char list[160] = "";
	if (json_is_string(v))
		for (int i = 0; names[i]; i++)
			if (!strcmp(json_string_value(v), names[i])) {
				*out = i;
				return 0;
			}
	for (int i = 0; names[i]; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s\"%s\"", i ? names[i + 1] ? ", " : " or " : "",
			 names[i]);
	if (!json_is_string(v))
		return rerr(x, field, "must be %s", list);
	char b[48];
	shown(json_string_value(v), b, sizeof(b));
	return rerr(x, field, "\"%s\" is not %s", b, list);
}

static int get_name(struct rctx *x, const char *field, json_t *v, char *out, size_t size)
{
	if (!json_is_string(v) || !json_string_length(v))
		return rerr(x, field, "must be a non-empty string");
	const char *s = json_string_value(v);
	if (json_string_length(v) >= size)
		return rerr(x, field, "longer than %zu characters", size - 1);
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return rerr(x, field, "only letters, digits and '_' (a drive_id or iface_id)");
	strcpy(out, s);
	return 0;
}

/* --- per resource -------------------------------------------------------- */

static const char *const access_names[] = { "any", "read", "write", NULL };
static const char *const disk_access_names[] = { "any", "read", "write", "flush", NULL };

/* "value" or "to" of a pio/mmio/msr redirect. */
static int get_target(struct rctx *x, json_t *o, struct policy_rule *r, uint64_t vmax, uint64_t tomax)
{
	json_t *v = json_object_get(o, "value"), *to = json_object_get(o, "to");
	if ((v || to) && r->verdict != POLICY_REDIRECT)
		return rerr(x, v ? "value" : "to", "only a redirect has a target (verdict is \"%s\")",
			    policy_verdict_name(r->verdict));
	if (v && to)
		return rerr(x, "to", "give \"value\" or \"to\", not both");
	if (v) {
		if (get_num(x, "value", v, vmax, &r->value) < 0)
			return -1;
		r->has_value = true;
	}
	if (to) {
		if (get_num(x, "to", to, tomax, &r->to) < 0)
			return -1;
		r->has_to = true;
	}
	if (r->verdict == POLICY_REDIRECT && !r->has_value && !r->has_to)
		return rerr(x, "verdict", "a redirect needs a target: %s", tomax ? "\"value\" or \"to\"" : "\"value\"");
	return 0;
}

static int parse_access_rule(struct rctx *x, json_t *o, struct policy_rule *r, const char *list, uint64_t max,
			     uint64_t vmax)
{
	json_t *v;
	int a = 0;
	if ((v = json_object_get(o, "access")) && get_enum(x, "access", v, access_names, &a) < 0)
		return -1;
	r->access = (enum policy_access)a;
	if (!(v = json_object_get(o, list)))
		return rerr(x, list, "missing (which %s the rule is about)",
			    r->resource == POL_RES_PIO ? "ports" : r->resource == POL_RES_MMIO ? "addresses" : "MSRs");
	if (get_ranges(x, list, v, max, r) < 0)
		return -1;
	if (r->verdict == POLICY_REDIRECT && r->access == POL_ACC_WRITE && json_object_get(o, "value"))
		return rerr(x, "value", "a write-only redirect never returns a value (use access \"read\" or \"any\")");
	return get_target(x, o, r, vmax, r->resource == POL_RES_MSR ? 0 : max);
}

static const char *const reg_names[] = { "eax", "ebx", "ecx", "edx", NULL };

/* A whole value, or Firecracker's "0b" + 32 of 0/1/x (bit 31 first; x leaves the bit). */
static int get_cpuid_reg(struct rctx *x, const char *name, json_t *v, struct policy_cpuid_reg *reg)
{
	char field[24];
	snprintf(field, sizeof(field), "registers.%s", name);
	if (json_is_string(v) && !strncmp(json_string_value(v), "0b", 2)) {
		const char *s = json_string_value(v) + 2;
		if (strlen(s) != 32)
			return rerr(x, field, "a bitmap is \"0b\" and 32 of 0, 1 or x (bit 31 first), not %zu", strlen(s));
		reg->mask = reg->value = 0;
		for (int i = 0; i < 32; i++) {
			uint32_t bit = 1u << (31 - i);
			if (s[i] == '0' || s[i] == '1') {
				reg->mask |= bit;
				if (s[i] == '1')
					reg->value |= bit;
			} else if (s[i] != 'x')
				return rerr(x, field, "a bitmap holds only 0, 1 and x, not '%c'",
					    s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?');
		}
		return 0;
	}
	uint64_t val;
	if (get_num(x, field, v, 0xffffffffu, &val) < 0)
		return -1;
	reg->mask = 0xffffffffu;
	reg->value = (uint32_t)val;
	return 0;
}

static int parse_cpuid(struct rctx *x, json_t *o, struct policy_rule *r)
{
	json_t *v;
	uint64_t n;
	if (r->verdict != POLICY_REDIRECT)
		return rerr(x, "verdict", "a cpuid rule can only redirect (what the guest's CPUID returns)");
	if (!(v = json_object_get(o, "leaf")))
		return rerr(x, "leaf", "missing");
	if (get_num(x, "leaf", v, 0xffffffffu, &n) < 0)
		return -1;
	r->leaf = (uint32_t)n;
	if ((v = json_object_get(o, "subleaf"))) {
		if (get_num(x, "subleaf", v, 0xffffffffu, &n) < 0)
			return -1;
		r->subleaf = (uint32_t)n;
		r->has_subleaf = true;
	}
	v = json_object_get(o, "registers");
	if (!v)
		return rerr(x, "verdict", "a redirect needs a target: \"registers\"");
	if (!json_is_object(v) || !json_object_size(v))
		return rerr(x, "registers", "must be an object with one or more of eax, ebx, ecx, edx");
	const char *key;
	json_t *rv;
	json_object_foreach(v, key, rv)
	{
		int k;
		for (k = 0; reg_names[k] && strcmp(reg_names[k], key); k++)
			;
		if (!reg_names[k]) {
			char b[48];
			shown(key, b, sizeof(b));
			return rerr(x, "registers", "unknown register \"%s\" (eax, ebx, ecx, edx)", b);
		}
		if (get_cpuid_reg(x, key, rv, &r->regs[k]) < 0)
			return -1;
	}
	return 0;
}

/* The overlay's directory must be writable (or the file itself, if it is
 * there): a redirect that would fail at the first write is refused now. */
static int overlay_ok(struct rctx *x, const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (access(path, F_OK) == 0) {
		struct stat st;
		if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
			return rerr(x, "overlay", "%s is not a regular file", path);
		if (access(path, R_OK | W_OK) != 0)
			return rerr(x, "overlay", "%s is not writable: %s", path, strerror(errno));
		if (!(st.st_mode & 0222))
			return rerr(x, "overlay", "%s is read-only", path);
		return 0;
	}
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	struct stat st;
	if (access(dir, W_OK | X_OK) != 0)
		return rerr(x, "overlay", "cannot create %s: directory %s is not writable (%s)", path, dir,
			    strerror(errno));
	/* root passes access() on a mode-0555 directory: its mode says
	 * what its owner meant. */
	if (stat(dir, &st) == 0 && !(st.st_mode & 0222))
		return rerr(x, "overlay", "cannot create %s: directory %s is read-only", path, dir);
	return 0;
}

static int parse_disk(struct rctx *x, json_t *o, struct policy_rule *r)
{
	json_t *v;
	int a = 0;
	if (!(v = json_object_get(o, "drive")))
		return rerr(x, "drive", "missing (the drive_id)");
	if (get_name(x, "drive", v, r->drive, sizeof(r->drive)) < 0)
		return -1;
	if ((v = json_object_get(o, "access")) && get_enum(x, "access", v, disk_access_names, &a) < 0)
		return -1;
	r->access = (enum policy_access)a;
	if ((v = json_object_get(o, "sectors")) && get_ranges(x, "sectors", v, UINT64_MAX, r) < 0)
		return -1;
	v = json_object_get(o, "overlay");
	if (v && r->verdict != POLICY_REDIRECT)
		return rerr(x, "overlay", "only a redirect has a target (verdict is \"%s\")",
			    policy_verdict_name(r->verdict));
	if (r->verdict != POLICY_REDIRECT)
		return 0;
	if (!v)
		return rerr(x, "verdict", "a redirect needs a target: \"overlay\" (a copy-on-write file)");
	if (!json_is_string(v) || !json_string_length(v))
		return rerr(x, "overlay", "must be a path");
	if (json_string_length(v) >= PATH_MAX)
		return rerr(x, "overlay", "path too long");
	if (r->access == POL_ACC_FLUSH)
		return rerr(x, "access", "a flush cannot be redirected to an overlay");
	if (overlay_ok(x, json_string_value(v)) < 0)
		return -1;
	if (!(r->overlay = strdup(json_string_value(v))))
		return rerr(x, "overlay", "out of memory");
	return 0;
}

/* "a.b.c.d" into host byte order; the end of it in *end. */
static int get_ipv4(const char *s, uint32_t *ip, const char **end)
{
	uint32_t r = 0;
	for (int i = 0; i < 4; i++) {
		unsigned part = 0, digits = 0;
		while (*s >= '0' && *s <= '9' && digits < 4) {
			part = part * 10 + (unsigned)(*s++ - '0');
			digits++;
		}
		if (!digits || digits > 3 || part > 255 || (i < 3 && *s++ != '.'))
			return -1;
		r = r << 8 | part;
	}
	*ip = r;
	*end = s;
	return 0;
}

static const char *const dir_names[] = { "egress", "ingress", NULL };
static const char *const proto_names[] = { "any", "tcp", "udp", "icmp", NULL };

static int parse_net(struct rctx *x, json_t *o, struct policy_rule *r)
{
	json_t *v;
	int e = 0;
	char b[48];
	if ((v = json_object_get(o, "iface")) && get_name(x, "iface", v, r->iface, sizeof(r->iface)) < 0)
		return -1;
	if ((v = json_object_get(o, "direction")) && get_enum(x, "direction", v, dir_names, &e) < 0)
		return -1;
	r->dir = (enum policy_dir)e;
	e = 0;
	if ((v = json_object_get(o, "proto")) && get_enum(x, "proto", v, proto_names, &e) < 0)
		return -1;
	r->proto = (enum policy_proto)e;
	if ((v = json_object_get(o, "dst"))) {
		const char *end;
		unsigned long prefix = 32;
		if (!json_is_string(v))
			return rerr(x, "dst", "must be an address or a CIDR (\"10.0.0.0/8\")");
		shown(json_string_value(v), b, sizeof(b));
		if (get_ipv4(json_string_value(v), &r->dst_ip, &end) < 0)
			return rerr(x, "dst", "\"%s\" is not an IPv4 address or CIDR", b);
		if (*end == '/') {
			char *pe;
			if (end[1] < '0' || end[1] > '9' || (prefix = strtoul(end + 1, &pe, 10)) > 32 || *pe)
				return rerr(x, "dst", "\"%s\": the prefix length must be 0 to 32", b);
		} else if (*end)
			return rerr(x, "dst", "\"%s\" is not an IPv4 address or CIDR", b);
		uint32_t mask = prefix ? ~0u << (32 - prefix) : 0;
		if (r->dst_ip & ~mask)
			return rerr(x, "dst", "\"%s\" has bits set beyond its /%lu prefix", b, prefix);
		r->dst_prefix = (unsigned)prefix;
	}
	if ((v = json_object_get(o, "ports"))) {
		if (r->proto == POL_PROTO_ICMP)
			return rerr(x, "ports", "ICMP has no ports");
		if (get_ranges(x, "ports", v, 0xffff, r) < 0)
			return -1;
	}
	v = json_object_get(o, "to");
	if (v && r->verdict != POLICY_REDIRECT)
		return rerr(x, "to", "only a redirect has a target (verdict is \"%s\")", policy_verdict_name(r->verdict));
	if (r->verdict != POLICY_REDIRECT)
		return 0;
	if (!v)
		return rerr(x, "verdict", "a redirect needs a target: \"to\" (\"HOST:PORT\")");
	if (r->dir != POL_DIR_EGRESS)
		return rerr(x, "verdict", "only egress connections can be redirected");
	if (r->proto == POL_PROTO_ICMP)
		return rerr(x, "verdict", "ICMP cannot be redirected");
	const char *end;
	uint64_t port;
	if (!json_is_string(v))
		return rerr(x, "to", "must be \"HOST:PORT\" (an IPv4 address and a port)");
	shown(json_string_value(v), b, sizeof(b));
	if (get_ipv4(json_string_value(v), &r->to_ip, &end) < 0 || *end != ':' || policy_parse_u64(end + 1, &port) < 0 ||
	    port == 0 || port > 0xffff)
		return rerr(x, "to", "\"%s\" is not \"HOST:PORT\" (an IPv4 address and a port 1-65535)", b);
	r->to_port = (uint16_t)port;
	return 0;
}

static const char *const vdir_names[] = { "guest-to-host", "host-to-guest", NULL };

static int parse_vsock(struct rctx *x, json_t *o, struct policy_rule *r)
{
	json_t *v;
	int e = 0;
	uint64_t n;
	if ((v = json_object_get(o, "direction")) && get_enum(x, "direction", v, vdir_names, &e) < 0)
		return -1;
	r->vdir = (enum policy_vsock_dir)e;
	if ((v = json_object_get(o, "ports")) && get_ranges(x, "ports", v, 0xffffffffu, r) < 0)
		return -1;
	v = json_object_get(o, "to_port");
	if (v && r->verdict != POLICY_REDIRECT)
		return rerr(x, "to_port", "only a redirect has a target (verdict is \"%s\")",
			    policy_verdict_name(r->verdict));
	if (r->verdict != POLICY_REDIRECT)
		return 0;
	if (!v)
		return rerr(x, "verdict", "a redirect needs a target: \"to_port\"");
	if (get_num(x, "to_port", v, 0xffffffffu, &n) < 0)
		return -1;
	r->to_vport = (uint32_t)n;
	return 0;
}

static int parse_rtc(struct rctx *x, json_t *o, struct policy_rule *r)
{
	json_t *ep = json_object_get(o, "epoch"), *off = json_object_get(o, "offset_s");
	if (r->verdict != POLICY_REDIRECT)
		return rerr(x, "verdict", "an rtc rule can only redirect (the guest's wall clock)");
	if (ep && off)
		return rerr(x, "offset_s", "give \"epoch\" or \"offset_s\", not both");
	if (!ep && !off)
		return rerr(x, "verdict", "a redirect needs a target: \"epoch\" or \"offset_s\"");
	if (ep) {
		char b[48];
		if (!json_is_string(ep))
			return rerr(x, "epoch", "must be an RFC 3339 time (\"2001-02-03T04:05:06Z\")");
		shown(json_string_value(ep), b, sizeof(b));
		if (policy_parse_rfc3339(json_string_value(ep), &r->epoch_s, &r->epoch_ns) < 0)
			return rerr(x, "epoch", "\"%s\" is not an RFC 3339 time (\"2001-02-03T04:05:06Z\")", b);
		if (r->epoch_s < 0)
			return rerr(x, "epoch", "\"%s\" is before 1970", b);
		r->rtc_kind = POL_RTC_EPOCH;
		return 0;
	}
	r->rtc_kind = POL_RTC_OFFSET;
	json_int_t s = 0;
	if (json_is_integer(off))
		s = json_integer_value(off);
	else if (json_is_string(off)) {
		char *end;
		const char *t = json_string_value(off);
		errno = 0;
		s = strtoll(t, &end, 10);
		if (!*t || *end || errno)
			return rerr(x, "offset_s", "must be a whole number of seconds");
	} else
		return rerr(x, "offset_s", "must be a whole number of seconds");
	/* ~3000 years either way: enough, and no overflow when added to the host's time. */
	if (s > 100000000000LL || s < -100000000000LL)
		return rerr(x, "offset_s", "out of range (at most 1e11 seconds either way)");
	r->offset_s = s;
	return 0;
}

/* --- rules -------------------------------------------------------------- */

static const char *const resource_names[] = { "pio", "mmio", "msr", "cpuid", "disk", "net", "vsock", "rtc", NULL };
static const char *const verdict_names[] = { "provide", "redirect", "deny", NULL };

/* The fields each resource takes beyond id, resource, verdict, audit. */
static const char *const res_fields[POL_RES__COUNT][8] = {
	[POL_RES_PIO] = { "ports", "access", "value", "to" },
	[POL_RES_MMIO] = { "addresses", "access", "value", "to" },
	[POL_RES_MSR] = { "msrs", "access", "value" },
	[POL_RES_CPUID] = { "leaf", "subleaf", "registers" },
	[POL_RES_DISK] = { "drive", "access", "sectors", "overlay" },
	[POL_RES_NET] = { "iface", "direction", "proto", "dst", "ports", "to" },
	[POL_RES_VSOCK] = { "direction", "ports", "to_port" },
	[POL_RES_RTC] = { "epoch", "offset_s" },
};

static bool id_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
	       c == '.' || c == ':' || c == '/';
}

static int parse_rule(struct rctx *x, json_t *o, struct policy_rule *r)
{
	json_t *v;
	const char *key;
	int e;

	if (!json_is_object(o))
		return rerr(x, NULL, "not an object");
	v = json_object_get(o, "id");
	if (!v)
		return rerr(x, NULL, "missing field \"id\"");
	if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) > POLICY_ID_MAX)
		return rerr(x, "id", "must be a string of 1 to %d characters", POLICY_ID_MAX);
	for (const char *p = json_string_value(v); *p; p++)
		if (!id_char_ok(*p))
			return rerr(x, "id", "only letters, digits and _ - . : /");
	strcpy(r->id, json_string_value(v));
	x->id = r->id;

	if (!(v = json_object_get(o, "resource")))
		return rerr(x, NULL, "missing field \"resource\"");
	if (!json_is_string(v))
		return rerr(x, "resource", "must be a string (pio, mmio, msr, cpuid, disk, net, vsock, rtc)");
	if (get_enum(x, "resource", v, resource_names, &e) < 0) {
		char b[48];
		shown(json_string_value(v), b, sizeof(b));
		return rerr(x, "resource", "unknown resource \"%s\" (pio, mmio, msr, cpuid, disk, net, vsock, rtc)", b);
	}
	r->resource = (enum policy_resource)e;
	json_object_foreach(o, key, v)
	{
		bool ok = !strcmp(key, "id") || !strcmp(key, "resource") || !strcmp(key, "verdict") ||
			  !strcmp(key, "audit");
		for (int i = 0; !ok && res_fields[r->resource][i]; i++)
			ok = !strcmp(key, res_fields[r->resource][i]);
		if (!ok) {
			char b[48];
			shown(key, b, sizeof(b));
			return rerr(x, NULL, "unknown field \"%s\" for resource %s", b, resource_names[r->resource]);
		}
	}
	if (!(v = json_object_get(o, "verdict")))
		return rerr(x, NULL, "missing field \"verdict\"");
	if (get_enum(x, "verdict", v, verdict_names, &e) < 0)
		return -1;
	r->verdict = (enum policy_verdict)e;
	r->audit = r->verdict != POLICY_PROVIDE;
	if ((v = json_object_get(o, "audit"))) {
		if (!json_is_boolean(v))
			return rerr(x, "audit", "must be true or false");
		r->audit = json_is_true(v);
	}
	switch (r->resource) {
	case POL_RES_PIO: return parse_access_rule(x, o, r, "ports", 0xffff, 0xffffffffu);
	case POL_RES_MMIO: return parse_access_rule(x, o, r, "addresses", UINT64_MAX, UINT64_MAX);
	case POL_RES_MSR: return parse_access_rule(x, o, r, "msrs", 0xffffffffu, UINT64_MAX);
	case POL_RES_CPUID: return parse_cpuid(x, o, r);
	case POL_RES_DISK: return parse_disk(x, o, r);
	case POL_RES_NET: return parse_net(x, o, r);
	case POL_RES_VSOCK: return parse_vsock(x, o, r);
	case POL_RES_RTC: return parse_rtc(x, o, r);
	case POL_RES__COUNT: break;
	}
	return rerr(x, "resource", "unknown");
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
		ids[i] = (struct id_ref){ s->rules[i].id, i + 1 };
	qsort(ids, s->nrules, sizeof(*ids), cmp_id);
	int rc = 0;
	for (unsigned i = 1; i < s->nrules && !rc; i++)
		if (!strcmp(ids[i].id, ids[i - 1].id))
			rc = errmsg(err, errlen, "policy: rule \"%s\" (#%u): id: duplicate id (rule #%u has it too)", ids[i].id,
				    ids[i].n, ids[i - 1].n);
	free(ids);
	return rc;
}

static const char *const mode_names[] = { "enforce", "permissive", NULL };

static int parse_top(json_t *doc, struct policy_spec *s, char *err, size_t errlen)
{
	json_t *v;
	const char *key;
	struct rctx x = { .err = err, .errlen = errlen };

	if (!json_is_object(doc))
		return errmsg(err, errlen, "policy: must be a JSON object {\"mode\": ..., \"rules\": [...]}");
	json_object_foreach(doc, key, v)
	{
		if (strcmp(key, "mode") && strcmp(key, "rules") && strcmp(key, "limits")) {
			char b[48];
			shown(key, b, sizeof(b));
			return errmsg(err, errlen, "policy: unknown field \"%s\" (mode, rules, limits)", b);
		}
	}
	if ((v = json_object_get(doc, "mode"))) {
		int m;
		if (!json_is_string(v) || get_enum(&x, "mode", v, mode_names, &m) < 0)
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
				shown(key, b, sizeof(b));
				return errmsg(err, errlen, "policy: limits: unknown field \"%s\" (max_host_connections)", b);
			}
		}
		if ((mc = json_object_get(v, "max_host_connections"))) {
			if (!json_is_integer(mc) || json_integer_value(mc) < 1 || json_integer_value(mc) > 65536)
				return errmsg(err, errlen, "policy: limits: max_host_connections: must be an integer from 1 to 65536");
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
		return errmsg(err, errlen, "policy: %s: %lld bytes, at most %u (4 MiB)", path, (long long)st.st_size,
			      POLICY_FILE_MAX);
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
		       (!a->has_subleaf || a->subleaf == b->subleaf) && !memcmp(a->regs, b->regs, sizeof(a->regs));
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
	static const enum policy_resource fixed[] = { POL_RES_CPUID, POL_RES_RTC };
	for (unsigned f = 0; f < 2; f++)
		for (unsigned i = 0;; i++) {
			const struct policy_rule *a = nth_of(cur, fixed[f], i), *b = nth_of(next, fixed[f], i);
			if (!a && !b)
				break;
			if (a && b && same_fixed(a, b))
				continue;
			const char *what = fixed[f] == POL_RES_CPUID ? "cpuid" : "rtc";
			return errmsg(err, errlen, "policy: rule \"%s\": %s rules cannot change once the VM has started",
				      b ? b->id : a->id, what);
		}
	return 0;
}
