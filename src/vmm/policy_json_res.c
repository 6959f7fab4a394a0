/* The policy file's per-resource match fields (policy_json.h): one reader
 * per resource, the redirect targets, the host checks (an overlay's
 * directory). Called by policy_json.c for each rule once its id, resource,
 * verdict and audit are read. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/policy_json_int.h"

/* --- per resource -------------------------------------------------------- */

static const char *const access_names[] = {"any", "read", "write", NULL};
static const char *const disk_access_names[] = {"any", "read", "write", "flush", NULL};

/* "value" or "to" of a pio/mmio/msr redirect. */
static int get_target(struct pj_ctx *x, json_t *o, struct policy_rule *r, uint64_t vmax, uint64_t tomax)
{
	json_t *v = json_object_get(o, "value"), *to = json_object_get(o, "to");
	if ((v || to) && r->verdict != POLICY_REDIRECT)
		return pj_err(x, v ? "value" : "to", "only a redirect has a target (verdict is \"%s\")",
			      policy_verdict_name(r->verdict));
	if (v && to)
		return pj_err(x, "to", "give \"value\" or \"to\", not both");
	if (v) {
		if (pj_num(x, "value", v, vmax, &r->value) < 0)
			return -1;
		r->has_value = true;
	}
	if (to) {
		if (pj_num(x, "to", to, tomax, &r->to) < 0)
			return -1;
		r->has_to = true;
		/* each range lands at `to` + its offset: all of it must fit */
		for (unsigned i = 0; i < r->nranges; i++)
			if (r->ranges[i].last - r->ranges[i].first > tomax - r->to)
				return pj_err(x, "to", "0x%llx plus the %llu-long range 0x%llx-0x%llx runs past 0x%llx",
					      (unsigned long long)r->to,
					      (unsigned long long)(r->ranges[i].last - r->ranges[i].first + 1),
					      (unsigned long long)r->ranges[i].first, (unsigned long long)r->ranges[i].last,
					      (unsigned long long)tomax);
	}
	if (r->verdict == POLICY_REDIRECT && !r->has_value && !r->has_to)
		return pj_err(x, "verdict", "a redirect needs a target: %s",
			      tomax ? "\"value\" or \"to\"" : "\"value\"");
	return 0;
}

static int parse_access_rule(struct pj_ctx *x, json_t *o, struct policy_rule *r, const char *list,
			     uint64_t max, uint64_t vmax)
{
	json_t *v;
	int a = 0;
	if ((v = json_object_get(o, "access")) && pj_enum(x, "access", v, access_names, &a) < 0)
		return -1;
	r->access = (enum policy_access)a;
	if (!(v = json_object_get(o, list)))
		return pj_err(x, list, "missing (which %s the rule is about)",
			      r->resource == POL_RES_PIO    ? "ports"
			      : r->resource == POL_RES_MMIO ? "addresses"
							    : "MSRs");
	if (pj_ranges(x, list, v, max, r) < 0)
		return -1;
	/* KVM never hands x2APIC MSRs to a filter: a rule there would never decide. */
	for (unsigned i = 0; r->resource == POL_RES_MSR && i < r->nranges; i++)
		if (r->ranges[i].first <= 0x8ff && r->ranges[i].last >= 0x800)
			return pj_err(x, list,
				      "0x800-0x8ff are the x2APIC MSRs, which KVM's MSR filter never sees");
	if (r->verdict == POLICY_REDIRECT && r->access == POL_ACC_WRITE && json_object_get(o, "value"))
		return pj_err(x, "value",
			      "a write-only redirect never returns a value (use access \"read\" or \"any\")");
	return get_target(x, o, r, vmax, r->resource == POL_RES_MSR ? 0 : max);
}

static const char *const reg_names[] = {"eax", "ebx", "ecx", "edx", NULL};

/* A whole value, or Firecracker's "0b" + 32 of 0/1/x (bit 31 first; x leaves the bit). */
static int get_cpuid_reg(struct pj_ctx *x, const char *name, json_t *v, struct policy_cpuid_reg *reg)
{
	char field[24];
	snprintf(field, sizeof(field), "registers.%s", name);
	if (json_is_string(v) && !strncmp(json_string_value(v), "0b", 2)) {
		const char *s = json_string_value(v) + 2;
		if (strlen(s) != 32)
			return pj_err(x, field,
				      "a bitmap is \"0b\" and 32 of 0, 1 or x (bit 31 first), not %zu",
				      strlen(s));
		reg->mask = reg->value = 0;
		for (int i = 0; i < 32; i++) {
			uint32_t bit = 1u << (31 - i);
			if (s[i] == '0' || s[i] == '1') {
				reg->mask |= bit;
				if (s[i] == '1')
					reg->value |= bit;
			} else if (s[i] != 'x')
				return pj_err(x, field, "a bitmap holds only 0, 1 and x, not '%c'",
					      s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?');
		}
		return 0;
	}
	uint64_t val;
	if (pj_num(x, field, v, 0xffffffffu, &val) < 0)
		return -1;
	reg->mask = 0xffffffffu;
	reg->value = (uint32_t)val;
	return 0;
}

static int parse_cpuid(struct pj_ctx *x, json_t *o, struct policy_rule *r)
{
	json_t *v;
	uint64_t n;
	if (r->verdict != POLICY_REDIRECT)
		return pj_err(x, "verdict",
			      "a cpuid rule can only redirect (what the guest's CPUID returns)");
	if (!(v = json_object_get(o, "leaf")))
		return pj_err(x, "leaf", "missing");
	if (pj_num(x, "leaf", v, 0xffffffffu, &n) < 0)
		return -1;
	r->leaf = (uint32_t)n;
	if ((v = json_object_get(o, "subleaf"))) {
		if (pj_num(x, "subleaf", v, 0xffffffffu, &n) < 0)
			return -1;
		r->subleaf = (uint32_t)n;
		r->has_subleaf = true;
	}
	v = json_object_get(o, "registers");
	if (!v)
		return pj_err(x, "verdict", "a redirect needs a target: \"registers\"");
	if (!json_is_object(v) || !json_object_size(v))
		return pj_err(x, "registers", "must be an object with one or more of eax, ebx, ecx, edx");
	const char *key;
	json_t *rv;
	json_object_foreach(v, key, rv)
	{
		int k;
		for (k = 0; reg_names[k] && strcmp(reg_names[k], key); k++)
			;
		if (!reg_names[k]) {
			char b[48];
			pj_shown(key, b, sizeof(b));
			return pj_err(x, "registers", "unknown register \"%s\" (eax, ebx, ecx, edx)", b);
		}
		if (get_cpuid_reg(x, key, rv, &r->regs[k]) < 0)
			return -1;
	}
	return 0;
}

/* The overlay's directory must be writable (or the file itself, if it is
 * there): a redirect that would fail at the first write is refused now. */
static int overlay_ok(struct pj_ctx *x, const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (access(path, F_OK) == 0) {
		struct stat st;
		if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
			return pj_err(x, "overlay", "%s is not a regular file", path);
		if (access(path, R_OK | W_OK) != 0)
			return pj_err(x, "overlay", "%s is not writable: %s", path, strerror(errno));
		if (!(st.st_mode & 0222))
			return pj_err(x, "overlay", "%s is read-only", path);
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
		return pj_err(x, "overlay", "cannot create %s: directory %s is not writable (%s)", path, dir,
			      strerror(errno));
	/* root passes access() on a mode-0555 directory: its mode says
	 * what its owner meant. */
	if (stat(dir, &st) == 0 && !(st.st_mode & 0222))
		return pj_err(x, "overlay", "cannot create %s: directory %s is read-only", path, dir);
	return 0;
}

static int parse_disk(struct pj_ctx *x, json_t *o, struct policy_rule *r)
{
	json_t *v;
	int a = 0;
	if (!(v = json_object_get(o, "drive")))
		return pj_err(x, "drive", "missing (the drive_id)");
	if (pj_name(x, "drive", v, r->drive, sizeof(r->drive)) < 0)
		return -1;
	if ((v = json_object_get(o, "access")) && pj_enum(x, "access", v, disk_access_names, &a) < 0)
		return -1;
	r->access = (enum policy_access)a;
	if ((v = json_object_get(o, "sectors")) && pj_ranges(x, "sectors", v, UINT64_MAX, r) < 0)
		return -1;
	v = json_object_get(o, "overlay");
	if (v && r->verdict != POLICY_REDIRECT)
		return pj_err(x, "overlay", "only a redirect has a target (verdict is \"%s\")",
			      policy_verdict_name(r->verdict));
	if (r->verdict != POLICY_REDIRECT)
		return 0;
	if (!v)
		return pj_err(x, "verdict", "a redirect needs a target: \"overlay\" (a copy-on-write file)");
	if (!json_is_string(v) || !json_string_length(v))
		return pj_err(x, "overlay", "must be a path");
	if (json_string_length(v) >= PATH_MAX)
		return pj_err(x, "overlay", "path too long");
	if (r->access == POL_ACC_FLUSH)
		return pj_err(x, "access", "a flush cannot be redirected to an overlay");
	if (overlay_ok(x, json_string_value(v)) < 0)
		return -1;
	if (!(r->overlay = strdup(json_string_value(v))))
		return pj_err(x, "overlay", "out of memory");
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

static const char *const dir_names[] = {"egress", "ingress", NULL};
static const char *const proto_names[] = {"any", "tcp", "udp", "icmp", NULL};

static int parse_net(struct pj_ctx *x, json_t *o, struct policy_rule *r)
{
	json_t *v;
	int e = 0;
	char b[48];
	if ((v = json_object_get(o, "iface")) && pj_name(x, "iface", v, r->iface, sizeof(r->iface)) < 0)
		return -1;
	if ((v = json_object_get(o, "direction")) && pj_enum(x, "direction", v, dir_names, &e) < 0)
		return -1;
	r->dir = (enum policy_dir)e;
	e = 0;
	if ((v = json_object_get(o, "proto")) && pj_enum(x, "proto", v, proto_names, &e) < 0)
		return -1;
	r->proto = (enum policy_proto)e;
	if ((v = json_object_get(o, "dst"))) {
		const char *end;
		unsigned long prefix = 32;
		if (!json_is_string(v))
			return pj_err(x, "dst", "must be an address or a CIDR (\"10.0.0.0/8\")");
		pj_shown(json_string_value(v), b, sizeof(b));
		if (get_ipv4(json_string_value(v), &r->dst_ip, &end) < 0)
			return pj_err(x, "dst", "\"%s\" is not an IPv4 address or CIDR", b);
		if (*end == '/') {
			char *pe;
			if (end[1] < '0' || end[1] > '9' || (prefix = strtoul(end + 1, &pe, 10)) > 32 || *pe)
				return pj_err(x, "dst", "\"%s\": the prefix length must be 0 to 32", b);
		} else if (*end)
			return pj_err(x, "dst", "\"%s\" is not an IPv4 address or CIDR", b);
		uint32_t mask = prefix ? ~0u << (32 - prefix) : 0;
		if (r->dst_ip & ~mask)
			return pj_err(x, "dst", "\"%s\" has bits set beyond its /%lu prefix", b, prefix);
		r->dst_prefix = (unsigned)prefix;
	}
	if ((v = json_object_get(o, "ports"))) {
		if (r->proto == POL_PROTO_ICMP)
			return pj_err(x, "ports", "ICMP has no ports");
		if (pj_ranges(x, "ports", v, 0xffff, r) < 0)
			return -1;
	}
	v = json_object_get(o, "to");
	if (v && r->verdict != POLICY_REDIRECT)
		return pj_err(x, "to", "only a redirect has a target (verdict is \"%s\")",
			      policy_verdict_name(r->verdict));
	if (r->verdict != POLICY_REDIRECT)
		return 0;
	if (!v)
		return pj_err(x, "verdict", "a redirect needs a target: \"to\" (\"HOST:PORT\")");
	if (r->dir != POL_DIR_EGRESS)
		return pj_err(x, "verdict", "only egress connections can be redirected");
	if (r->proto == POL_PROTO_ICMP)
		return pj_err(x, "verdict", "ICMP cannot be redirected");
	const char *end;
	uint64_t port;
	if (!json_is_string(v))
		return pj_err(x, "to", "must be \"HOST:PORT\" (an IPv4 address and a port)");
	pj_shown(json_string_value(v), b, sizeof(b));
	if (get_ipv4(json_string_value(v), &r->to_ip, &end) < 0 || *end != ':' ||
	    policy_parse_u64(end + 1, &port) < 0 || port == 0 || port > 0xffff)
		return pj_err(x, "to", "\"%s\" is not \"HOST:PORT\" (an IPv4 address and a port 1-65535)", b);
	r->to_port = (uint16_t)port;
	return 0;
}

static const char *const vdir_names[] = {"guest-to-host", "host-to-guest", NULL};

static int parse_vsock(struct pj_ctx *x, json_t *o, struct policy_rule *r)
{
	json_t *v;
	int e = 0;
	uint64_t n;
	if ((v = json_object_get(o, "direction")) && pj_enum(x, "direction", v, vdir_names, &e) < 0)
		return -1;
	r->vdir = (enum policy_vsock_dir)e;
	if ((v = json_object_get(o, "ports")) && pj_ranges(x, "ports", v, 0xffffffffu, r) < 0)
		return -1;
	v = json_object_get(o, "to_port");
	if (v && r->verdict != POLICY_REDIRECT)
		return pj_err(x, "to_port", "only a redirect has a target (verdict is \"%s\")",
			      policy_verdict_name(r->verdict));
	if (r->verdict != POLICY_REDIRECT)
		return 0;
	if (!v)
		return pj_err(x, "verdict", "a redirect needs a target: \"to_port\"");
	if (pj_num(x, "to_port", v, 0xffffffffu, &n) < 0)
		return -1;
	r->to_vport = (uint32_t)n;
	return 0;
}

static int parse_rtc(struct pj_ctx *x, json_t *o, struct policy_rule *r)
{
	json_t *ep = json_object_get(o, "epoch"), *off = json_object_get(o, "offset_s");
	if (r->verdict != POLICY_REDIRECT)
		return pj_err(x, "verdict", "an rtc rule can only redirect (the guest's wall clock)");
	if (ep && off)
		return pj_err(x, "offset_s", "give \"epoch\" or \"offset_s\", not both");
	if (!ep && !off)
		return pj_err(x, "verdict", "a redirect needs a target: \"epoch\" or \"offset_s\"");
	if (ep) {
		char b[48];
		if (!json_is_string(ep))
			return pj_err(x, "epoch", "must be an RFC 3339 time (\"2001-02-03T04:05:06Z\")");
		pj_shown(json_string_value(ep), b, sizeof(b));
		if (policy_parse_rfc3339(json_string_value(ep), &r->epoch_s, &r->epoch_ns) < 0)
			return pj_err(x, "epoch", "\"%s\" is not an RFC 3339 time (\"2001-02-03T04:05:06Z\")",
				      b);
		if (r->epoch_s < 0)
			return pj_err(x, "epoch", "\"%s\" is before 1970", b);
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
			return pj_err(x, "offset_s", "must be a whole number of seconds");
	} else
		return pj_err(x, "offset_s", "must be a whole number of seconds");
	/* ~3000 years either way: enough, and no overflow when added to the host's time. */
	if (s > 100000000000LL || s < -100000000000LL)
		return pj_err(x, "offset_s", "out of range (at most 1e11 seconds either way)");
	r->offset_s = s;
	return 0;
}

/* The fields each resource takes beyond id, resource, verdict, audit. */
static const char *const res_fields[POL_RES__COUNT][8] = {
    [POL_RES_PIO] = {"ports", "access", "value", "to"},
    [POL_RES_MMIO] = {"addresses", "access", "value", "to"},
    [POL_RES_MSR] = {"msrs", "access", "value"},
    [POL_RES_CPUID] = {"leaf", "subleaf", "registers"},
    [POL_RES_DISK] = {"drive", "access", "sectors", "overlay"},
    [POL_RES_NET] = {"iface", "direction", "proto", "dst", "ports", "to"},
    [POL_RES_VSOCK] = {"direction", "ports", "to_port"},
    [POL_RES_RTC] = {"epoch", "offset_s"},
};

bool pj_known_field(enum policy_resource res, const char *key)
{
	for (int i = 0; (unsigned)res < POL_RES__COUNT && res_fields[res][i]; i++)
		if (!strcmp(key, res_fields[res][i]))
			return true;
	return false;
}

int pj_match_fields(struct pj_ctx *x, json_t *o, struct policy_rule *r)
{
	switch (r->resource) {
	case POL_RES_PIO:
		return parse_access_rule(x, o, r, "ports", 0xffff, 0xffffffffu);
	case POL_RES_MMIO:
		return parse_access_rule(x, o, r, "addresses", UINT64_MAX, UINT64_MAX);
	case POL_RES_MSR:
		return parse_access_rule(x, o, r, "msrs", 0xffffffffu, UINT64_MAX);
	case POL_RES_CPUID:
		return parse_cpuid(x, o, r);
	case POL_RES_DISK:
		return parse_disk(x, o, r);
	case POL_RES_NET:
		return parse_net(x, o, r);
	case POL_RES_VSOCK:
		return parse_vsock(x, o, r);
	case POL_RES_RTC:
		return parse_rtc(x, o, r);
	case POL_RES__COUNT:
		break;
	}
	return pj_err(x, "resource", "unknown");
}
