/* event_json — see event_json.h. */
#include "core/event_json.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "core/devreq.h"
#include "core/policy.h"

struct line {
	char *p;
	size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void put(struct line *l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(l->p + l->len, l->cap - l->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->len = l->len + (size_t)n < l->cap ? l->len + (size_t)n : l->cap - 1;
}

/* A JSON string (ids are short; anything odd is escaped). */
static void put_str(struct line *l, const char *key, const char *s)
{
	put(l, ",\"%s\":", key);
	if (!s) {
		put(l, "null");
		return;
	}
	put(l, "\"");
	for (size_t i = 0; s[i] && i < 128; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			put(l, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			put(l, "\\u%04x", c);
		else
			put(l, "%c", c);
	}
	put(l, "\"");
}

static void put_hex(struct line *l, const char *key, uint64_t v)
{
	put(l, ",\"%s\":\"0x%" PRIx64 "\"", key, v);
}

static const char *req_name(unsigned k)
{
	static const char *const names[] = { "read", "write", "flush", "other" };
	return k < 4 ? names[k] : "other";
}

static void put_ip(struct line *l, const char *key, uint64_t ip)
{
	put(l, ",\"%s\":\"%u.%u.%u.%u\"", key, (unsigned)(ip >> 24) & 255, (unsigned)(ip >> 16) & 255,
	    (unsigned)(ip >> 8) & 255, (unsigned)ip & 255);
}

static const char *proto_name(unsigned p)
{
	static const char *const names[] = { "any", "tcp", "udp", "icmp" };
	return p < 4 ? names[p] : "any";
}

static const char *vsock_dir_name(unsigned d)
{
	return d == POL_VSOCK_H2G ? "host-to-guest" : "guest-to-host";
}

static void put_decision(struct line *l, const struct vevent *e)
{
	put(l, ",\"verdict\":\"%s\"", policy_verdict_name(e->verdict));
	if (e->has_rule)
		put_str(l, "rule", e->rule);
	if (!e->enforced)
		put(l, ",\"enforced\":false");
}

size_t ev_json_trace(char *buf, size_t cap, const struct vevent *e)
{
	struct line l = { buf, 0, cap };
	put(&l, "{\"t\":%" PRIu64, e->t);
	if (e->vcpu != EV_NO_VCPU)
		put(&l, ",\"vcpu\":%u", (unsigned)e->vcpu);
	put(&l, ",\"kind\":\"%s\"", ev_kind_name(e->kind));
	switch (e->kind) {
	case EV_PIO:
	case EV_MMIO:
	case EV_MSR:
		put_hex(&l, "addr", e->addr);
		put(&l, ",\"len\":%u,\"write\":%s", (unsigned)e->len, e->write ? "true" : "false");
		put_hex(&l, "value", e->value);
		if (e->kind != EV_MSR)
			put_str(&l, "device", e->device);
		put_decision(&l, e);
		break;
	case EV_CPUID:
		put_hex(&l, "addr", e->addr);
		put_hex(&l, "subleaf", e->extra);
		put_decision(&l, e);
		break;
	case EV_DEVREQ:
		put_str(&l, "device", e->device);
		put(&l, ",\"request\":\"%s\"", req_name(e->write));
		if (e->addr != EV_NO_SECTOR)
			put(&l, ",\"sector\":%" PRIu64 ",\"sectors\":%" PRIu64, e->addr, e->extra);
		put(&l, ",\"bytes\":%" PRIu64, e->value);
		put_decision(&l, e);
		break;
	case EV_NET:
		put_str(&l, "device", e->device);
		put(&l, ",\"direction\":\"%s\",\"proto\":\"%s\"", e->write ? "ingress" : "egress", proto_name(e->proto));
		put_ip(&l, "dst", e->addr);
		put(&l, ",\"port\":%" PRIu64, e->value);
		put_decision(&l, e);
		break;
	case EV_VSOCK:
		put(&l, ",\"port\":%" PRIu64 ",\"direction\":\"%s\"", e->addr, vsock_dir_name(e->proto));
		if (e->verdict == POLICY_REDIRECT)
			put(&l, ",\"to_port\":%" PRIu64, e->extra);
		put_decision(&l, e);
		break;
	case EV_RTC:
		put(&l, ",\"value\":%" PRId64 ",\"offset_s\":%" PRId64, (int64_t)e->addr, (int64_t)e->extra);
		put_decision(&l, e);
		break;
	case EV_SYSTEM_EVENT:
		put_hex(&l, "value", e->value);
		break;
	case EV_DEBUG:
		put_hex(&l, "addr", e->addr);
		put_hex(&l, "value", e->extra);
		break;
	case EV_ERROR:
		put_hex(&l, "value", e->extra);
		break;
	default:
		break;
	}
	put(&l, "}");
	return l.len;
}

static void put_ts(struct line *l, const struct ev_json_clock *c, uint64_t ns)
{
	uint64_t total = c->wall0_ns + ns;
	time_t s = (time_t)(c->wall0_s + (int64_t)(total / 1000000000u));
	struct tm tm;
	gmtime_r(&s, &tm);
	put(l, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%09uZ\"", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(total % 1000000000u));
	put_str(l, "vm", c->vm_id);
}

size_t ev_json_audit(char *buf, size_t cap, const struct ev_json_clock *c, const struct vevent *e)
{
	struct line l = { buf, 0, cap };
	put_ts(&l, c, e->t);
	put_str(&l, "rule", e->has_rule ? e->rule : "default");
	put_str(&l, "resource", e->resource < POL_RES__COUNT ? policy_resource_name(e->resource) : "device");
	put(&l, ",\"verdict\":\"%s\",\"enforced\":%s", policy_verdict_name(e->verdict),
	    e->enforced ? "true" : "false");
	if (e->vcpu != EV_NO_VCPU)
		put(&l, ",\"vcpu\":%u", (unsigned)e->vcpu);
	const char *access = e->write ? "write" : "read";
	switch (e->kind) {
	case EV_PIO:
	case EV_MMIO:
	case EV_MSR:
		put_hex(&l, e->kind == EV_PIO ? "port" : e->kind == EV_MMIO ? "address" : "msr", e->addr);
		put(&l, ",\"access\":\"%s\"", access);
		put_hex(&l, "value", e->value);
		if (e->kind != EV_MSR)
			put_str(&l, "device", e->device);
		break;
	case EV_CPUID:
		put_hex(&l, "leaf", e->addr);
		put_hex(&l, "subleaf", e->extra);
		break;
	case EV_DEVREQ:
		put_str(&l, e->resource == POL_RES_DISK ? "drive" : "device", e->device);
		if (e->addr != EV_NO_SECTOR)
			put(&l, ",\"sector\":%" PRIu64 ",\"sectors\":%" PRIu64, e->addr, e->extra);
		put(&l, ",\"access\":\"%s\",\"bytes\":%" PRIu64, req_name(e->write), e->value);
		break;
	case EV_NET:
		put_str(&l, "iface", e->device);
		put(&l, ",\"direction\":\"%s\",\"proto\":\"%s\"", e->write ? "ingress" : "egress", proto_name(e->proto));
		put_ip(&l, "dst", e->addr);
		put(&l, ",\"port\":%" PRIu64, e->value);
		break;
	case EV_VSOCK:
		put(&l, ",\"port\":%" PRIu64 ",\"direction\":\"%s\"", e->addr, vsock_dir_name(e->proto));
		if (e->verdict == POLICY_REDIRECT)
			put(&l, ",\"to_port\":%" PRIu64, e->extra);
		break;
	case EV_RTC:
		put(&l, ",\"offset_s\":%" PRId64, (int64_t)e->extra);
		break;
	default:
		break;
	}
	put(&l, ",\"count\":%u}", (unsigned)e->count);
	return l.len;
}

size_t ev_json_lost(char *buf, size_t cap, const struct ev_json_clock *c, uint64_t now, const char *ring,
		    uint64_t n)
{
	struct line l = { buf, 0, cap };
	if (c) {
		put_ts(&l, c, now);
		put(&l, ",\"kind\":\"lost\"");
	} else {
		put(&l, "{\"t\":%" PRIu64 ",\"kind\":\"lost\"", now);
	}
	put_str(&l, "ring", ring);
	put(&l, ",\"count\":%" PRIu64 "}", n);
	return l.len;
}
