/* The policy written back as JSON (GET /policy) and RFC 3339 times both
 * ways. The document spells out every default (access, audit, direction)
 * so that a reader sees what is in force, and reads back to the same spec. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vmm/policy_json.h"
#include "vmm/policy_json_int.h"

static int digits(const char **s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++, (*s)++) {
		if (**s < '0' || **s > '9')
			return -1;
		v = v * 10 + (**s - '0');
	}
	*out = v;
	return 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int policy_parse_rfc3339(const char *s, int64_t *sec, uint32_t *nsec)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0;
	uint32_t ns = 0;
	if (digits(&s, 4, &y) || *s++ != '-' || digits(&s, 2, &mo) || *s++ != '-' || digits(&s, 2, &d))
		return -1;
	if (*s != 'T' && *s != 't' && *s != ' ')
		return -1;
	s++;
	if (digits(&s, 2, &h) || *s++ != ':' || digits(&s, 2, &mi) || *s++ != ':' || digits(&s, 2, &se))
		return -1;
	if (*s == '.') {
		int n = 0;
		s++;
		if (*s < '0' || *s > '9')
			return -1;
		for (; *s >= '0' && *s <= '9'; s++, n++)
			if (n < 9)
				ns = ns * 10 + (uint32_t)(*s - '0');
		for (; n < 9; n++)
			ns *= 10;
	}
	if (*s == 'Z' || *s == 'z')
		s++;
	else if (*s == '+' || *s == '-') {
		sign = *s++ == '+' ? 1 : -1;
		if (digits(&s, 2, &oh) || *s++ != ':' || digits(&s, 2, &om) || oh > 23 || om > 59)
			return -1;
	} else
		return -1;
	if (*s || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
		return -1;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo == 2 && d == 29 && !leap)
		return -1;
	*sec = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - sign * (oh * 3600 + om * 60);
	*nsec = ns;
	return 0;
}

void policy_format_rfc3339(int64_t sec, uint32_t nsec, char *buf, size_t len)
{
	time_t t = (time_t)sec;
	struct tm tm;
	char frac[16] = "";
	gmtime_r(&t, &tm);
	if (nsec) {
		snprintf(frac, sizeof(frac), ".%09u", nsec);
		for (size_t n = strlen(frac); frac[n - 1] == '0'; n--)
			frac[n - 1] = 0;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

static json_t *hexnum(uint64_t v)
{
	char b[24];
	snprintf(b, sizeof(b), "0x%" PRIx64, v);
	return json_string(b);
}

/* One range as "0x3f8" or "0x3f8-0x3ff"; several as an array. */
static json_t *ranges(const struct policy_rule *r)
{
	json_t *a = json_array();
	for (unsigned i = 0; a && i < r->nranges; i++) {
		char b[48];
		if (r->ranges[i].first == r->ranges[i].last)
			snprintf(b, sizeof(b), "0x%" PRIx64, r->ranges[i].first);
		else
			snprintf(b, sizeof(b), "0x%" PRIx64 "-0x%" PRIx64, r->ranges[i].first,
				 r->ranges[i].last);
		json_array_append_new(a, json_string(b));
	}
	if (a && json_array_size(a) == 1) {
		json_t *one = json_incref(json_array_get(a, 0));
		json_decref(a);
		return one;
	}
	return a;
}

static const char *access_name(enum policy_access a)
{
	static const char *const n[] = {"any", "read", "write", "flush"};
	return (unsigned)a < 4 ? n[a] : "any";
}

static json_t *cpuid_reg(const struct policy_cpuid_reg *reg)
{
	if (reg->mask == 0xffffffffu) {
		char b[16];
		snprintf(b, sizeof(b), "0x%08x", reg->value);
		return json_string(b);
	}
	char b[35] = "0b";
	for (int i = 0; i < 32; i++) {
		uint32_t bit = 1u << (31 - i);
		b[2 + i] = !(reg->mask & bit) ? 'x' : (reg->value & bit) ? '1' : '0';
	}
	b[34] = 0;
	return json_string(b);
}

static char *ipv4(uint32_t ip, char *b, size_t n)
{
	snprintf(b, n, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
	return b;
}

static void rule_fields(json_t *o, const struct policy_rule *r)
{
	static const char *const lists[POL_RES__COUNT] = {
	    [POL_RES_PIO] = "ports",	[POL_RES_MMIO] = "addresses", [POL_RES_MSR] = "msrs",
	    [POL_RES_DISK] = "sectors", [POL_RES_NET] = "ports",      [POL_RES_VSOCK] = "ports",
	};
	static const char *const regs[] = {"eax", "ebx", "ecx", "edx"};
	char b[64];
	if (lists[r->resource] && r->nranges)
		json_object_set_new(o, lists[r->resource], ranges(r));
	switch (r->resource) {
	case POL_RES_PIO:
	case POL_RES_MMIO:
	case POL_RES_MSR:
		json_object_set_new(o, "access", json_string(access_name(r->access)));
		if (r->has_value)
			json_object_set_new(o, "value", hexnum(r->value));
		if (r->has_to)
			json_object_set_new(o, "to", hexnum(r->to));
		break;
	case POL_RES_CPUID: {
		json_object_set_new(o, "leaf", hexnum(r->leaf));
		if (r->has_subleaf)
			json_object_set_new(o, "subleaf", hexnum(r->subleaf));
		json_t *rg = json_object();
		for (int k = 0; k < 4; k++)
			if (r->regs[k].mask)
				json_object_set_new(rg, regs[k], cpuid_reg(&r->regs[k]));
		json_object_set_new(o, "registers", rg);
		break;
	}
	case POL_RES_DISK:
		json_object_set_new(o, "drive", json_string(r->drive));
		json_object_set_new(o, "access", json_string(access_name(r->access)));
		if (r->overlay)
			json_object_set_new(o, "overlay", json_string(r->overlay));
		break;
	case POL_RES_NET:
		if (r->iface[0])
			json_object_set_new(o, "iface", json_string(r->iface));
		json_object_set_new(o, "direction",
				    json_string(r->dir == POL_DIR_INGRESS ? "ingress" : "egress"));
		json_object_set_new(
		    o, "proto",
		    json_string((const char *const[]){"any", "tcp", "udp", "icmp"}[r->proto & 3]));
		if (r->dst_prefix) {
			char ip[20];
			snprintf(b, sizeof(b), "%s/%u", ipv4(r->dst_ip, ip, sizeof(ip)), r->dst_prefix);
			json_object_set_new(o, "dst", json_string(b));
		}
		if (r->verdict == POLICY_REDIRECT) {
			char ip[20];
			snprintf(b, sizeof(b), "%s:%u", ipv4(r->to_ip, ip, sizeof(ip)), r->to_port);
			json_object_set_new(o, "to", json_string(b));
		}
		break;
	case POL_RES_VSOCK:
		json_object_set_new(
		    o, "direction",
		    json_string(r->vdir == POL_VSOCK_H2G ? "host-to-guest" : "guest-to-host"));
		if (r->verdict == POLICY_REDIRECT)
			json_object_set_new(o, "to_port", json_integer(r->to_vport));
		break;
	case POL_RES_RTC:
		if (r->rtc_kind == POL_RTC_EPOCH) {
			policy_format_rfc3339(r->epoch_s, r->epoch_ns, b, sizeof(b));
			json_object_set_new(o, "epoch", json_string(b));
		} else
			json_object_set_new(o, "offset_s", json_integer(r->offset_s));
		break;
	case POL_RES__COUNT:
		break;
	}
}

json_t *policy_json_dump(const struct policy_spec *s)
{
	json_t *rules = json_array();
	json_t *doc = json_pack("{s:s}", "mode", s->mode == POLICY_PERMISSIVE ? "permissive" : "enforce");
	if (!rules || !doc) {
		json_decref(rules);
		json_decref(doc);
		return NULL;
	}
	for (unsigned i = 0; i < s->nrules; i++) {
		const struct policy_rule *r = &s->rules[i];
		json_t *o =
		    json_pack("{s:s,s:s,s:s,s:b}", "id", r->id, "resource", policy_resource_name(r->resource),
			      "verdict", policy_verdict_name(r->verdict), "audit", r->audit);
		if (!o) {
			json_decref(rules);
			json_decref(doc);
			return NULL;
		}
		rule_fields(o, r);
		json_array_append_new(rules, o);
	}
	json_object_set_new(doc, "rules", rules);
	if (s->max_host_connections)
		json_object_set_new(
		    doc, "limits",
		    json_pack("{s:i}", "max_host_connections", (json_int_t)s->max_host_connections));
	return doc;
}
