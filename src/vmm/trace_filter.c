/* --trace-filter: the compact spec (vmm/trace.h) into a struct evfilter. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errmsg.h"
#include "vmm/trace.h"

#define SPEC_MAX 4096

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;
	if (!*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 0);
	if (errno || *end)
		return -1;
	*v = x;
	return 0;
}

/* "A" or "A-B" (A <= B). */
static int parse_range(char *s, uint64_t *first, uint64_t *last)
{
	char *dash = strchr(s, '-');
	if (dash)
		*dash = '\0';
	if (parse_u64(s, first) < 0 || (dash ? parse_u64(dash + 1, last) : (*last = *first, 0)) < 0)
		return -1;
	return *first <= *last ? 0 : -1;
}

static int kind_value(struct evfilter *f, char *v, char *err, size_t errlen)
{
	for (int k = 0; k < EV__COUNT; k++)
		if (strcmp(v, ev_kind_name(k)) == 0) {
			f->kinds |= 1u << k;
			return 0;
		}
	return errmsg(err, errlen, "--trace-filter: kind '%.32s' is unknown (pio, mmio, msr, cpuid, hlt, shutdown, "
		      "system_event, intr, debug, error, devreq, net, vsock, rtc)", v);
}

static int device_value(struct evfilter *f, char *v, char *err, size_t errlen)
{
	if (f->ndevices == EVF_MAX_DEVICES)
		return errmsg(err, errlen, "--trace-filter: more than %d devices", EVF_MAX_DEVICES);
	if (!*v || strlen(v) >= sizeof(f->devices[0]))
		return errmsg(err, errlen, "--trace-filter: device '%.64s': expected a device id", v);
	strcpy(f->devices[f->ndevices++], v);
	return 0;
}

static int addr_value(struct evfilter *f, char *v, char *err, size_t errlen)
{
	char copy[64];
	snprintf(copy, sizeof(copy), "%s", v);
	if (f->nranges == EVF_MAX_RANGES)
		return errmsg(err, errlen, "--trace-filter: more than %d address ranges", EVF_MAX_RANGES);
	if (parse_range(v, &f->ranges[f->nranges].first, &f->ranges[f->nranges].last) < 0)
		return errmsg(err, errlen, "--trace-filter: addr '%.40s': expected A or A-B (A <= B, hex or decimal)",
			      copy);
	f->nranges++;
	return 0;
}

static int vcpu_value(struct evfilter *f, char *v, char *err, size_t errlen)
{
	char copy[64];
	uint64_t a, b;
	snprintf(copy, sizeof(copy), "%s", v);
	if (parse_range(v, &a, &b) < 0 || b > 63)
		return errmsg(err, errlen, "--trace-filter: vcpu '%.40s': expected N or N-M from 0 to 63", copy);
	for (uint64_t i = a; i <= b; i++)
		f->vcpus |= 1ull << i;
	f->has_vcpus = true;
	return 0;
}

int trace_filter_parse(const char *spec, struct evfilter *f, char *err, size_t errlen)
{
	static const struct {
		const char *key;
		int (*fn)(struct evfilter *, char *, char *, size_t);
	} keys[] = { { "kind", kind_value }, { "device", device_value }, { "addr", addr_value }, { "vcpu", vcpu_value } };
	char buf[SPEC_MAX];
	unsigned seen = 0;

	memset(f, 0, sizeof(*f));
	if (!spec || !*spec)
		return 0;
	if (strlen(spec) >= sizeof(buf))
		return errmsg(err, errlen, "--trace-filter: longer than %d characters", SPEC_MAX - 1);
	strcpy(buf, spec);
	char *save = NULL;
	for (char *cl = strtok_r(buf, ";", &save); cl; cl = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(cl, '=');
		if (!eq)
			return errmsg(err, errlen, "--trace-filter: '%.40s': expected KEY=VALUE[,VALUE...] (kind, device, "
				      "addr, vcpu)", cl);
		*eq = '\0';
		unsigned k;
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]) && strcmp(keys[k].key, cl); k++)
			;
		if (k == sizeof(keys) / sizeof(keys[0]))
			return errmsg(err, errlen, "--trace-filter: unknown key '%.32s' (kind, device, addr, vcpu)", cl);
		if (seen & (1u << k))
			return errmsg(err, errlen, "--trace-filter: '%s' given twice", keys[k].key);
		seen |= 1u << k;
		char *vals = eq + 1, *vsave = NULL;
		if (!*vals)
			return errmsg(err, errlen, "--trace-filter: '%s' has no value", keys[k].key);
		for (char *v = strtok_r(vals, ",", &vsave); v; v = strtok_r(NULL, ",", &vsave))
			if (keys[k].fn(f, v, err, errlen) < 0)
				return -1;
	}
	return 0;
}
