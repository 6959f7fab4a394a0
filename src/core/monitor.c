#include "core/monitor.h"
#include "core/dev.h"

#include <string.h>

#include <inttypes.h>
#include <stdlib.h>

#include "core/devreq.h"

static uint64_t mon_key(enum policy_space space, uint64_t addr)
{
	return (((uint64_t)space << 62) | (addr & ((1ULL << 62) - 1))) + 1;
}

static unsigned mon_hash(uint64_t key)
{
	/* Fibonacci hashing: ports and page-aligned MMIO addresses spread well. */
	return (unsigned)((key * 0x9E3779B97F4A7C15ULL) >> 55) & (MON_SLOTS - 1);
}

static struct mon_slot *mon_slot_for(struct vcpu_stats *s, uint64_t key, bool create)
{
	unsigned h = mon_hash(key);

	for (unsigned i = 0; i < MON_PROBES; i++) {
		struct mon_slot *slot = &s->slots[(h + i) & (MON_SLOTS - 1)];
		if (slot->key == key)
			return slot;
		if (slot->key == 0) {
			if (!create)
				return NULL;
			slot->key = key;
			return slot;
		}
	}
	return NULL;
}

void mon_count_access(struct vcpu_stats *s, enum policy_space space, uint64_t addr, bool denied)
{
	struct mon_slot *slot = mon_slot_for(s, mon_key(space, addr), true);

	s->accesses++;
	s->denied += denied;
	if (!slot) {
		s->untracked++;
		return;
	}
	slot->count++;
	slot->denied += denied;
}

bool mon_lookup(const struct vcpu_stats *s, enum policy_space space, uint64_t addr, uint64_t *count,
		uint64_t *denied)
{
	struct mon_slot *slot = mon_slot_for((struct vcpu_stats *)s, mon_key(space, addr), false);

	if (!slot)
		return false;
	*count = slot->count;
	*denied = slot->denied;
	return true;
}

static int slot_cmp(const void *a, const void *b)
{
	const struct mon_slot *x = a, *y = b;
	return (x->key > y->key) - (x->key < y->key);
}

static void report_vcpu(FILE *out, unsigned cpu, const struct vcpu_stats *s,
			const char *(*name_of)(void *, enum policy_space, uint64_t), void *ctx)
{
	uint64_t total = 0;
	for (int r = 0; r < VEXIT__COUNT; r++)
		total += s->reasons[r];
	fprintf(out, "vcpu%u exits: %" PRIu64, cpu, total);
	for (int r = 0; r < VEXIT__COUNT; r++)
		if (s->reasons[r])
			fprintf(out, " %s=%" PRIu64, vexit_reason_name(r), s->reasons[r]);
	fputc('\n', out);

	/* Sorted copy so the report reads by address, ports first. */
	struct mon_slot *sorted = malloc(sizeof(s->slots));
	unsigned n = 0;
	if (sorted) {
		for (unsigned i = 0; i < MON_SLOTS; i++)
			if (s->slots[i].key)
				sorted[n++] = s->slots[i];
		qsort(sorted, n, sizeof(*sorted), slot_cmp);
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t key = sorted[i].key - 1;
		enum policy_space space = (enum policy_space)(key >> 62);
		uint64_t addr = key & ((1ULL << 62) - 1);
		const char *name = name_of ? name_of(ctx, space, addr) : NULL;
		fprintf(out, "vcpu%u %s 0x%" PRIx64 " %s: %" PRIu64, cpu,
			space == POLICY_PIO ? "port" : "mmio", addr, name ? name : "(unclaimed)",
			sorted[i].count);
		if (sorted[i].denied)
			fprintf(out, " denied=%" PRIu64, sorted[i].denied);
		fputc('\n', out);
	}
	free(sorted);
	fprintf(out, "vcpu%u denied: %" PRIu64 " of %" PRIu64 " accesses", cpu, s->denied, s->accesses);
	if (s->untracked)
		fprintf(out, " (%" PRIu64 " to addresses not tracked)", s->untracked);
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
			exits += stats[c].reasons[r];
		denied += stats[c].denied;
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
