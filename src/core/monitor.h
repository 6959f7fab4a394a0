/* monitor — what each vCPU did: exits by reason, accesses by port / MMIO
 * address, and what the policy denied. Each vCPU writes only its own
 * `struct vcpu_stats`; other threads (GET /vigil/stats, /metrics, the
 * metrics file) read it while the vCPU runs. Since the vCPU is the only
 * writer, a count is bumped without a locked instruction (mon_add) and
 * readers load relaxed: no torn value, no cost on the exit path. A slot's key is published with release after its
 * counts are zero, so a reader that acquires a key sees valid counts. */
#ifndef VIGIL_CORE_MONITOR_H
#define VIGIL_CORE_MONITOR_H

#include <stdatomic.h>
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
	_Atomic uint64_t key; /* 0 = empty; else (space << 62 | addr) + 1 */
	_Atomic uint64_t count;
	_Atomic uint64_t denied;
};

struct vcpu_stats {
	_Atomic uint64_t reasons[VEXIT__COUNT];
	_Atomic uint64_t accesses;  /* port + MMIO accesses; each REP element is one */
	_Atomic uint64_t denied;    /* of which the policy denied */
	_Atomic uint64_t untracked; /* accesses to addresses the table had no room for */
	/* The writer's own, never read by others: the key it counted last and
	 * its slot (NULL: untracked, which a key stays once its probes are
	 * taken, slots never being freed). A guest mostly repeats an address. */
	uint64_t last_key;
	struct mon_slot *last_slot;
	struct mon_slot slots[MON_SLOTS];
};

/* Single-writer increment: not a read-modify-write instruction, which is
 * correct only because the owning vCPU is the one thread that writes. On
 * x86-64 one unlocked add to memory (an aligned 8-byte store: readers never
 * see it torn), where the C11 form is a load, an add and a store; under
 * ThreadSanitizer the C11 form, which it understands. */
#if defined(__SANITIZE_THREAD__)
#define MON_C11_ADD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MON_C11_ADD 1
#endif
#endif
static inline void mon_add(_Atomic uint64_t *c, uint64_t n)
{
#if defined(__x86_64__) && !defined(MON_C11_ADD)
	__asm__("addq %1, %0" : "+m"(*(uint64_t *)c) : "er"(n));
#else
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
#endif
}

static inline uint64_t mon_get(const _Atomic uint64_t *c)
{
	return atomic_load_explicit((_Atomic uint64_t *)c, memory_order_relaxed);
}

static inline void mon_count_exit(struct vcpu_stats *s, enum vexit_reason r)
{
	mon_add(&s->reasons[(unsigned)r < VEXIT__COUNT ? r : VEXIT_UNKNOWN], 1);
}

static inline uint64_t mon_key(enum policy_space space, uint64_t addr)
{
	return (((uint64_t)space << 62) | (addr & ((1ULL << 62) - 1))) + 1;
}

/* The slot for a key not counted last (finds or claims it; NULL when the
 * table has no room), remembered as the last (monitor.c). */
struct mon_slot *mon_slot_miss(struct vcpu_stats *s, uint64_t key);

/* Counts one access (on every port / MMIO / MSR exit): its address's slot
 * is the last one's, most of the time, without a search. */
static inline void mon_count_access(struct vcpu_stats *s, enum policy_space space, uint64_t addr, bool denied)
{
	uint64_t key = mon_key(space, addr);
	struct mon_slot *slot = s->last_slot;

	if (__builtin_expect(key != s->last_key, 0))
		slot = mon_slot_miss(s, key);
	mon_add(&s->accesses, 1);
	if (denied)
		mon_add(&s->denied, 1);
	if (__builtin_expect(!slot, 0)) {
		mon_add(&s->untracked, 1);
		return;
	}
	mon_add(&slot->count, 1);
	if (denied)
		mon_add(&slot->denied, 1);
}

/* The policy's lines of the report: each rule's hits, then the mode. */
void mon_report_policy(FILE *out, struct policy_slot *slot);

/* Looks up one address's counts (for tests and reports); false if unseen. */
bool mon_lookup(const struct vcpu_stats *s, enum policy_space space, uint64_t addr, uint64_t *count,
		uint64_t *denied);

/* Prints the per-vCPU report; `name_of` names the device at an address
 * (NULL when unclaimed). */
void mon_report(FILE *out, const struct vcpu_stats *stats, unsigned ncpus,
		const char *(*name_of)(void *ctx, enum policy_space space, uint64_t addr), void *ctx);

/* One tracked address as a reader sees it. */
struct mon_addr {
	enum policy_space space;
	uint64_t addr;
	uint64_t count;
	uint64_t denied;
};

/* Calls fn for every address the vCPU has touched so far (table order, not
 * sorted). Safe while the vCPU runs: counts are a recent value, never torn. */
void mon_foreach(const struct vcpu_stats *s, void (*fn)(void *ctx, const struct mon_addr *a), void *ctx);

/* "port" / "mmio" / "msr" for reports; "pio" / "mmio" / "msr" for JSON keys. */
const char *mon_space_name(enum policy_space sp);
const char *mon_space_key(enum policy_space sp);

struct hv_ops;
/* Prints the hypervisor's own counters (hv_ops.stats) beside vigil's:
 * "vm kvm: name=value ...", one "vcpuN kvm: exits=... ..." line per vCPU
 * (cumulative counters), "total kvm exits: N"; or one line saying why the
 * host has none. Nothing when the backend keeps no statistics. */
void mon_report_hv(FILE *out, const struct hv_ops *hv, unsigned ncpus);

struct vdev;
/* Prints one line per device with a request path: id, kind, requests,
 * bytes, errors, denied. */
void mon_report_devices(FILE *out, const struct vdev *devs, unsigned n);

#endif
