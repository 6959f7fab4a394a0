/* The policy in force (core/policy.h, the slot): a grace period in the
 * manner of RCU. Each reader thread owns one cache-line-sized counter in
 * the slot, odd while it is inside a decision. policy_swap() publishes the
 * new policy, then waits for every counter that was odd to move on; after
 * that no reader can still hold the old one. Readers never wait.
 *
 * Why it is enough: enter's increment and its load of `cur`, and swap's
 * exchange of `cur` and its load of the counter, are all seq_cst, so in
 * their single total order either the reader's load comes after the
 * exchange (it got the new policy), or its increment came before the
 * exchange and swap sees the counter odd and waits for leave's release
 * increment, which orders everything the reader did with the old policy
 * before the caller frees it. The same holds for registering (nreaders)
 * and for the overflow counter. */
#include "core/policy.h"

#include <string.h>

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* This thread's registrations: one per slot it reads (few slots per
 * process; past that the thread reads that slot through the overflow
 * counter). index -1: the slot was full, this thread uses the overflow. */
#define SLOT_REFS 4
struct slot_ref {
	const struct policy_slot *slot;
	uint64_t gen;
	int index;
	unsigned depth; /* nested enters: only the outermost counts */
};
static _Thread_local struct slot_ref refs[SLOT_REFS];

static _Atomic uint64_t slot_gens;

void policy_slot_init(struct policy_slot *s, struct policy *p)
{
	memset(s, 0, sizeof(*s));
	s->gen = atomic_fetch_add_explicit(&slot_gens, 1, memory_order_relaxed) + 1;
	atomic_store(&s->cur, p);
}

void policy_slot_reserve_vcpus(struct policy_slot *s, unsigned n)
{
	if (n > POLICY_MAX_READERS / 2)
		n = 0; /* so many vCPUs: they register like any thread */
	s->nvcpu = n;
	atomic_store(&s->nreaders, n);
}

void policy_slot_fini(struct policy_slot *s)
{
	policy_free(atomic_exchange(&s->cur, NULL));
}

static struct slot_ref *find_ref(const struct policy_slot *s)
{
	for (int i = 0; i < SLOT_REFS; i++)
		if (refs[i].slot == s && refs[i].gen == s->gen)
			return &refs[i];
	return NULL;
}

/* Registers this thread with s, in a free cache entry (or one for a slot
 * that is gone or not in use by this thread right now). NULL: none free. */
static struct slot_ref *add_ref(struct policy_slot *s)
{
	struct slot_ref *ref = NULL;
	for (int i = 0; i < SLOT_REFS && !ref; i++)
		if (!refs[i].slot)
			ref = &refs[i];
	for (int i = 0; i < SLOT_REFS && !ref; i++)
		if (!refs[i].depth)
			ref = &refs[i];
	if (!ref)
		return NULL;
	unsigned n = atomic_fetch_add(&s->nreaders, 1);
	*ref = (struct slot_ref){ .slot = s, .gen = s->gen, .index = n < POLICY_MAX_READERS ? (int)n : -1 };
	if (n >= POLICY_MAX_READERS)
		atomic_store(&s->nreaders, POLICY_MAX_READERS); /* never runs away */
	return ref;
}

const struct policy *policy_enter(struct policy_slot *s)
{
	struct slot_ref *ref = find_ref(s);
	if (!ref)
		ref = add_ref(s);
	if (ref && ref->depth++)
		return atomic_load(&s->cur);
	if (ref && ref->index >= 0)
		atomic_fetch_add(&s->readers[ref->index].seq, 1);
	else
		atomic_fetch_add(&s->overflow, 1);
	return atomic_load(&s->cur);
}

void policy_leave(struct policy_slot *s)
{
	struct slot_ref *ref = find_ref(s);
	/* depth 0: this thread registered after its (overflow) enter, from
	 * a nested one; the outer enter counted in the overflow. */
	if (ref && !ref->depth)
		ref = NULL;
	if (ref && --ref->depth)
		return;
	if (ref && ref->index >= 0)
		atomic_fetch_add_explicit(&s->readers[ref->index].seq, 1, memory_order_release);
	else
		atomic_fetch_sub_explicit(&s->overflow, 1, memory_order_release);
}

struct policy *policy_swap(struct policy_slot *s, struct policy *np)
{
	struct policy *old = atomic_exchange(&s->cur, np);
	/* Flow caches (devices/net_filter.c) re-decide on a new count, even
	 * when the new policy landed at the old one's address. */
	atomic_fetch_add_explicit(&s->swaps, 1, memory_order_release);
	unsigned n = atomic_load(&s->nreaders);
	if (n > POLICY_MAX_READERS)
		n = POLICY_MAX_READERS;
	for (unsigned i = 0; i < n; i++) {
		_Atomic uint64_t *seq = &s->readers[i].seq;
		uint64_t snap = atomic_load(seq);
		if (!(snap & 1))
			continue;
		while (atomic_load_explicit(seq, memory_order_acquire) == snap)
			cpu_relax();
	}
	while (atomic_load(&s->overflow))
		cpu_relax();
	return old;
}
