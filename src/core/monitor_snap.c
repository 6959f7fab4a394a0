/* The monitor's counters in a snapshot (section "monitor"): each vCPU's
 * exits by reason and accesses by address, each device's request counts
 * and each policy rule's hits, so that figures read after a restore go on
 * from the snapshot's instead of starting again at zero. The VM must be
 * paused (save) or not yet running (restore): no counter moves meanwhile. */
#include "core/monitor_snap.h"

#include <string.h>

#include "core/snap.h"

#define MON_SNAP_VERSION 1

static void put_c(struct snap_writer *w, const _Atomic uint64_t *c)
{
	snap_put_u64(w, mon_get(c));
}

static void set_c(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, v, memory_order_relaxed);
}

void mon_snap_save(struct snap_writer *w, const struct vm *vm)
{
	snap_begin(w, "monitor", "monitor", MON_SNAP_VERSION);
	snap_put_u32(w, vm->ncpus);
	snap_put_u32(w, VEXIT__COUNT);
	for (unsigned c = 0; c < vm->ncpus; c++) {
		const struct vcpu_stats *s = &vm->stats[c];
		for (unsigned i = 0; i < VEXIT__COUNT; i++)
			put_c(w, &s->reasons[i]);
		put_c(w, &s->accesses);
		put_c(w, &s->denied);
		put_c(w, &s->untracked);
		unsigned used = 0;
		for (unsigned i = 0; i < MON_SLOTS; i++)
			used += mon_get(&s->slots[i].key) != 0;
		snap_put_u32(w, used);
		for (unsigned i = 0; i < MON_SLOTS; i++) {
			if (!mon_get(&s->slots[i].key))
				continue;
			snap_put_u32(w, i);
			put_c(w, &s->slots[i].key);
			put_c(w, &s->slots[i].count);
			put_c(w, &s->slots[i].denied);
		}
	}
	snap_put_u32(w, vm->nr_devs);
	for (unsigned d = 0; d < vm->nr_devs; d++) {
		const struct dev_stats *st = &vm->devs[d].stats;
		snap_put_str(w, vm->devs[d].id);
		put_c(w, &st->requests);
		put_c(w, &st->bytes);
		put_c(w, &st->errors);
		put_c(w, &st->denied);
	}
	snap_end(w);
}

static int restore_cpu(struct snap_reader *r, struct vcpu_stats *s, unsigned reasons)
{
	for (unsigned i = 0; i < reasons; i++) {
		uint64_t v = snap_get_u64(r);
		if (i < VEXIT__COUNT)
			set_c(&s->reasons[i], v);
	}
	set_c(&s->accesses, snap_get_u64(r));
	set_c(&s->denied, snap_get_u64(r));
	set_c(&s->untracked, snap_get_u64(r));
	uint32_t used = snap_get_u32(r);
	if (used > MON_SLOTS)
		return snap_fail(r, "%u address slots, at most %u", used, MON_SLOTS);
	for (uint32_t k = 0; k < used; k++) {
		uint32_t i = snap_get_u32(r);
		uint64_t key = snap_get_u64(r), count = snap_get_u64(r), denied = snap_get_u64(r);
		if (i >= MON_SLOTS || key == 0)
			return snap_fail(r, "address slot %u (key %llu) is out of range", i, (unsigned long long)key);
		set_c(&s->slots[i].count, count);
		set_c(&s->slots[i].denied, denied);
		atomic_store_explicit(&s->slots[i].key, key, memory_order_release);
	}
	return snap_error(r)[0] ? -1 : 0;
}

int mon_snap_restore(struct snap_reader *r, struct vm *vm)
{
	if (snap_open_section(r, "monitor", "monitor", MON_SNAP_VERSION, NULL) < 0)
		return -1;
	uint32_t ncpus = snap_get_u32(r), reasons = snap_get_u32(r);
	if (ncpus != vm->ncpus)
		return snap_fail(r, "counters of %u vCPUs for a VM of %u", ncpus, vm->ncpus);
	/* A newer vigil may count more exit reasons: those are kept unread
	 * (a bound keeps a hostile count from spinning). */
	if (reasons < VEXIT__COUNT || reasons > 4096)
		return snap_fail(r, "%u exit reasons (this vigil has %u)", reasons, (unsigned)VEXIT__COUNT);
	for (unsigned c = 0; c < vm->ncpus; c++) {
		memset(&vm->stats[c], 0, sizeof(vm->stats[c]));
		if (restore_cpu(r, &vm->stats[c], reasons) < 0)
			return -1;
	}
	uint32_t ndev = snap_get_u32(r);
	if (ndev > VM_MAX_DEVICES)
		return snap_fail(r, "%u devices, at most %u", ndev, VM_MAX_DEVICES);
	for (uint32_t d = 0; d < ndev; d++) {
		char id[VDEV_ID_MAX + 1];
		snap_get_str(r, id, sizeof(id));
		uint64_t v[4];
		for (unsigned i = 0; i < 4; i++)
			v[i] = snap_get_u64(r);
		struct vdev *dv = vm_dev_find(vm, id);
		if (snap_error(r)[0])
			return -1;
		if (!dv)
			continue; /* a device this VM no longer has: its counts go */
		set_c(&dv->stats.requests, v[0]);
		set_c(&dv->stats.bytes, v[1]);
		set_c(&dv->stats.errors, v[2]);
		set_c(&dv->stats.denied, v[3]);
	}
	return snap_error(r)[0] ? -1 : 0;
}

void mon_snap_save_policy(struct snap_writer *w, const struct policy *p)
{
	const struct policy_spec *s = policy_spec_of(p);
	snap_begin(w, "policy-hits", "policy-hits", MON_SNAP_VERSION);
	snap_put_u32(w, s->nrules);
	for (unsigned i = 0; i < s->nrules; i++) {
		snap_put_str(w, s->rules[i].id);
		snap_put_u64(w, policy_rule_hits(p, i));
	}
	snap_end(w);
}

int mon_snap_restore_policy(struct snap_reader *r, const struct policy *p)
{
	if (!snap_has(r, "policy-hits"))
		return 0;
	if (snap_open_section(r, "policy-hits", "policy-hits", MON_SNAP_VERSION, NULL) < 0)
		return -1;
	const struct policy_spec *s = policy_spec_of(p);
	uint32_t n = snap_get_u32(r);
	if (n > POLICY_MAX_RULES)
		return snap_fail(r, "%u rules, at most %u", n, (unsigned)POLICY_MAX_RULES);
	for (uint32_t k = 0; k < n; k++) {
		char id[POLICY_ID_MAX + 1];
		snap_get_str(r, id, sizeof(id));
		uint64_t hits = snap_get_u64(r);
		if (snap_error(r)[0])
			return -1;
		/* By rule id. The policy in force now is the snapshot's own, so
		 * rule k is the same rule; only a reordered policy needs the
		 * search (else 10,000 rules would cost 10^8 comparisons). */
		if (k < s->nrules && strcmp(s->rules[k].id, id) == 0) {
			policy_rule_hits_add(p, k, hits);
			continue;
		}
		for (unsigned i = 0; i < s->nrules; i++)
			if (strcmp(s->rules[i].id, id) == 0)
				policy_rule_hits_add(p, i, hits);
	}
	return 0;
}
