/* monitor — the per-vCPU exit and access counters (core/monitor.h): the
 * writer side on the exit path (core/exit.c), the reader side for reports
 * (cli --stats) and live figures (vmm/metrics.c). */
#include "core/monitor.h"
#include "core/dev.h"

#include <errno.h>
#include <string.h>

#include <inttypes.h>
#include <stdlib.h>

#include "core/devreq.h"
#include "core/vcpu.h"

static unsigned mon_hash(uint64_t key)
{
	/* Fibonacci hashing: ports and page-aligned MMIO addresses spread well. */
	return (unsigned)((key * 0x9E3779B97F4A7C15ULL) >> 55) & (MON_SLOTS - 1);
}

/* The writer reads keys relaxed (it wrote them); readers acquire, pairing
 * with the release that publishes a key. */
static struct mon_slot *mon_slot_for(struct vcpu_stats *s, uint64_t key, bool create)
{
	unsigned h = mon_hash(key);
	memory_order mo = create ? memory_order_relaxed : memory_order_acquire;

	for (unsigned i = 0; i < MON_PROBES; i++) {
		struct mon_slot *slot = &s->slots[(h + i) & (MON_SLOTS - 1)];
		uint64_t k = atomic_load_explicit(&slot->key, mo);
		if (k == key)
			return slot;
		if (k == 0) {
			if (!create)
				return NULL;
			/* Counts of an empty slot are zero (calloc); release so a
			 * reader that sees the key also sees those zeros. */
			atomic_store_explicit(&slot->key, key, memory_order_release);
			return slot;
		}
	}
	return NULL;
}

struct mon_slot *mon_slot_miss(struct vcpu_stats *s, uint64_t key)
{
	struct mon_slot *slot = mon_slot_for(s, key, true);
	s->last_key = key;
	s->last_slot = slot;
	return slot;
}

bool mon_lookup(const struct vcpu_stats *s, enum policy_space space, uint64_t addr, uint64_t *count,
		uint64_t *denied)
{
	struct mon_slot *slot = mon_slot_for((struct vcpu_stats *)s, mon_key(space, addr), false);

	if (!slot)
		return false;
	*count = mon_get(&slot->count);
	*denied = mon_get(&slot->denied);
	return true;
}

void mon_foreach(const struct vcpu_stats *s, void (*fn)(void *ctx, const struct mon_addr *a), void *ctx)
{
	for (unsigned i = 0; i < MON_SLOTS; i++) {
		const struct mon_slot *slot = &s->slots[i];
		uint64_t k = atomic_load_explicit((_Atomic uint64_t *)&slot->key, memory_order_acquire);
		if (!k)
			continue;
		k--;
		struct mon_addr a = {
			.space = (enum policy_space)(k >> 62),
			.addr = k & ((1ULL << 62) - 1),
			.count = mon_get(&slot->count),
			.denied = mon_get(&slot->denied),
		};
		fn(ctx, &a);
	}
}

const char *mon_space_name(enum policy_space sp)
{
	return sp == POLICY_PIO ? "port" : sp == POLICY_MMIO ? "mmio" : "msr";
}

const char *mon_space_key(enum policy_space sp)
{
	return sp == POLICY_PIO ? "pio" : sp == POLICY_MMIO ? "mmio" : "msr";
}

/* Sort key: ports first, then by address — the order keys encode. */
static int addr_cmp(const void *a, const void *b)
{
	const struct mon_addr *x = a, *y = b;
	if (x->space != y->space)
		return x->space < y->space ? -1 : 1;
	return (x->addr > y->addr) - (x->addr < y->addr);
}

struct addr_list {
	struct mon_addr *v;
	unsigned n;
};

static void collect(void *ctx, const struct mon_addr *a)
{
	struct addr_list *l = ctx;
	if (l->n < MON_SLOTS)
		l->v[l->n++] = *a;
}

static void report_vcpu(FILE *out, unsigned cpu, const struct vcpu_stats *s,
			const char *(*name_of)(void *, enum policy_space, uint64_t), void *ctx)
{
	uint64_t total = 0;
	for (int r = 0; r < VEXIT__COUNT; r++)
		total += mon_get(&s->reasons[r]);
	fprintf(out, "vcpu%u exits: %" PRIu64, cpu, total);
	for (int r = 0; r < VEXIT__COUNT; r++)
		if (mon_get(&s->reasons[r]))
			fprintf(out, " %s=%" PRIu64, vexit_reason_name(r), mon_get(&s->reasons[r]));
	fputc('\n', out);

	/* Sorted copy so the report reads by address, ports first. */
	struct addr_list l = { .v = malloc(MON_SLOTS * sizeof(struct mon_addr)) };
	if (l.v) {
		mon_foreach(s, collect, &l);
		qsort(l.v, l.n, sizeof(*l.v), addr_cmp);
	}
	for (unsigned i = 0; i < l.n; i++) {
		const struct mon_addr *a = &l.v[i];
		const char *name = name_of ? name_of(ctx, a->space, a->addr) : NULL;
		fprintf(out, "vcpu%u %s 0x%" PRIx64 " %s: %" PRIu64, cpu, mon_space_name(a->space),
			a->addr, name ? name : a->space == POLICY_MSR ? "(filtered)" : "(unclaimed)", a->count);
		if (a->denied)
			fprintf(out, " denied=%" PRIu64, a->denied);
		fputc('\n', out);
	}
	free(l.v);
	fprintf(out, "vcpu%u denied: %" PRIu64 " of %" PRIu64 " accesses", cpu, mon_get(&s->denied),
		mon_get(&s->accesses));
	if (mon_get(&s->untracked))
		fprintf(out, " (%" PRIu64 " to addresses not tracked)", mon_get(&s->untracked));
	fputc('\n', out);
}

void mon_report(FILE *out, const struct vcpu_stats *stats, unsigned ncpus,
		const char *(*name_of)(void *ctx, enum policy_space space, uint64_t addr), void *ctx)
{
	uint64_t exits = 0, denied = 0;

	fprintf(out, "--- vigil stats: %u vCPU%s ---\n", ncpus, ncpus == 1 ? "" : "s");
	for (unsigned c = 0; c < ncpus; c++) {
		report_vcpu(out, c, &stats[c], name_of, ctx);
		for (int r = 0; r < VEXIT__COUNT; r++)
			exits += mon_get(&stats[c].reasons[r]);
		denied += mon_get(&stats[c].denied);
	}
	fprintf(out, "total exits: %" PRIu64 "\n", exits);
	fprintf(out, "total denied: %" PRIu64 "\n", denied);
}

void mon_report_devices(FILE *out, const struct vdev *devs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		const struct dev_stats *s = &devs[i].stats;
		/* Only devices with a request path (virtio) count requests. */
		if (strncmp(devs[i].kind, "virtio-", 7) != 0)
			continue;
		fprintf(out, "device %s (%s): requests=%" PRIu64 " bytes=%" PRIu64 " errors=%" PRIu64 " denied=%" PRIu64 "\n",
			devs[i].id, devs[i].kind, atomic_load(&s->requests), atomic_load(&s->bytes),
			atomic_load(&s->errors), atomic_load(&s->denied));
	}
}

struct hv_line {
	FILE *out;
	uint64_t exits;
};

static void put_hv_stat(void *ctx, const char *name, uint64_t value, bool cumulative)
{
	struct hv_line *l = ctx;
	if (!cumulative)
		return;
	fprintf(l->out, " %s=%" PRIu64, name, value);
	if (strcmp(name, "exits") == 0)
		l->exits += value;
}

void mon_report_hv(FILE *out, const struct hv_ops *hv, unsigned ncpus)
{
	if (!hv->stats)
		return;
	const char *who = hv->name ? hv->name : "hypervisor", *why = NULL;
	struct hv_line l = { out, 0 };
	for (int c = -1; c < (int)ncpus; c++) {
		if (c < 0)
			fprintf(out, "vm %s:", who);
		else
			fprintf(out, "vcpu%d %s:", c, who);
		int r = hv->stats(hv->hv, c, put_hv_stat, &l, &why);
		if (r == -ENOTSUP) {
			fprintf(out, " unavailable: %s\n", why ? why : "not supported");
			return;
		}
		fprintf(out, r < 0 ? " unreadable\n" : "\n");
	}
	fprintf(out, "total %s exits: %" PRIu64 "\n", who, l.exits);
}

void mon_report_policy(FILE *out, struct policy_slot *slot)
{
	const struct policy *p = policy_enter(slot);
	const struct policy_spec *s = policy_spec_of(p);
	for (unsigned i = 0; i < s->nrules; i++)
		fprintf(out, "policy rule %s (%s %s): hits=%llu\n", s->rules[i].id,
			policy_resource_name(s->rules[i].resource), policy_verdict_name(s->rules[i].verdict),
			(unsigned long long)policy_rule_hits(p, i));
	if (s->nrules)
		fprintf(out, "policy mode: %s\n", s->mode == POLICY_PERMISSIVE ? "permissive" : "enforce");
	policy_leave(slot);
}
