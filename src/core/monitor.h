/* monitor — what each vCPU did: exits by reason, accesses by port / MMIO
 * address, and what the policy denied. Each vCPU writes only its own
 * `struct vcpu_stats` (no locks, no atomics on the hot path); the report is
 * read after the vCPU threads have stopped. */
#ifndef VIGIL_CORE_MONITOR_H
#define VIGIL_CORE_MONITOR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/exit.h"
#include "core/policy.h"

/* Distinct addresses tracked per vCPU; the rest are summed in `untracked`.
 * A power of two: the table is open-addressed. */
#define MON_SLOTS 512
#define MON_PROBES 16

struct mon_slot {
	uint64_t key; /* 0 = empty; else (space << 62 | addr) + 1 */
	uint64_t count;
	uint64_t denied;
};

struct vcpu_stats {
	uint64_t reasons[VEXIT__COUNT];
	uint64_t accesses;  /* port + MMIO accesses; each REP element is one */
	uint64_t denied;    /* of which the policy denied */
	uint64_t untracked; /* accesses to addresses the table had no room for */
	struct mon_slot slots[MON_SLOTS];
};

static inline void mon_count_exit(struct vcpu_stats *s, enum vexit_reason r)
{
	s->reasons[r < VEXIT__COUNT ? r : VEXIT_UNKNOWN]++;
}

void mon_count_access(struct vcpu_stats *s, enum policy_space space, uint64_t addr, bool denied);

/* Looks up one address's counts (for tests and reports); false if unseen. */
bool mon_lookup(const struct vcpu_stats *s, enum policy_space space, uint64_t addr, uint64_t *count,
		uint64_t *denied);

/* Prints the per-vCPU report; `name_of` names the device at an address
 * (NULL when unclaimed). */
void mon_report(FILE *out, const struct vcpu_stats *stats, unsigned ncpus,
		const char *(*name_of)(void *ctx, enum policy_space space, uint64_t addr), void *ctx);

struct vdev;
/* Prints one line per device with a request path: id, kind, requests,
 * bytes, errors, denied. */
void mon_report_devices(FILE *out, const struct vdev *devs, unsigned n);

#endif
