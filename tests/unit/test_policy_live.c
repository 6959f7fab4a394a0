/* The policy in force, swapped live: readers deciding in a tight loop
 * while policies with different answers are swapped in thousands of times
 * and the old ones freed at once. Every reader checks that all it decided
 * inside one enter/leave came from one policy (never a mix, never freed
 * memory: ASan and TSan builds run this too). Also: swap waits for a
 * reader that is inside; the overflow readers past POLICY_MAX_READERS;
 * nested enters. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "policy_spec_build.h"

#define PORT 0x60
/* Under TSan every access is instrumented and the swapper's wait spins
 * against readers that share two cores with it: fewer swaps keep the run
 * short there, and still give TSan thousands of enter/leave pairs to check. */
#if defined(__SANITIZE_THREAD__)
#define SWAPS 200
#else
#define SWAPS 2000
#endif
#define MSR 0x10

/* Policy `which` (0 or 1): the port and the MSR answer with rules whose ids
 * say which policy they are in; the verdicts differ too. */
static struct policy *make(int which)
{
	struct policy_spec s = { .mode = POLICY_ENFORCE };
	char id[16];
	snprintf(id, sizeof(id), "p%d-port", which);
	struct policy_rule *r = sb_add(&s, id, POL_RES_PIO, which ? POLICY_REDIRECT : POLICY_DENY);
	sb_range(r, PORT, PORT);
	r->has_value = which;
	r->value = 0x42;
	snprintf(id, sizeof(id), "p%d-msr", which);
	r = sb_add(&s, id, POL_RES_MSR, which ? POLICY_DENY : POLICY_REDIRECT);
	sb_range(r, MSR, MSR);
	r->has_value = !which;
	char err[128];
	struct policy *p = policy_compile(&s, err, sizeof(err));
	policy_spec_free(&s);
	assert_non_null(p);
	return p;
}

struct shared {
	struct policy_slot slot;
	_Atomic bool stop;
	_Atomic unsigned ready;
	_Atomic uint64_t seen[2]; /* decisions that came from policy 0 / 1 */
	_Atomic unsigned bad;
	bool vcpu;                /* readers use the exit path's policy_enter_vcpu */
	_Atomic unsigned next_idx; /* each such reader's vCPU index */
};

static void *reader(void *arg)
{
	struct shared *sh = arg;
	uint64_t seen[2] = { 0, 0 };
	unsigned idx = atomic_fetch_add(&sh->next_idx, 1);
	atomic_fetch_add(&sh->ready, 1);
	while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
		const struct policy *p = sh->vcpu ? policy_enter_vcpu(&sh->slot, idx) : policy_enter(&sh->slot);
		struct policy_decision a, b;
		policy_decide_access(p, POLICY_PIO, PORT, 1, false, true, &a);
		policy_decide_msr(p, MSR, false, &b);
		/* Read what the rules say (freed memory would show here). */
		int wa = a.r ? a.r->id[1] - '0' : -1, wb = b.r ? b.r->id[1] - '0' : -1;
		bool ok = (wa == 0 || wa == 1) && wa == wb && a.r == &policy_spec_of(p)->rules[0] &&
			  a.verdict == (wa ? POLICY_REDIRECT : POLICY_DENY) &&
			  b.verdict == (wa ? POLICY_DENY : POLICY_REDIRECT) && (!wa || a.r->value == 0x42);
		if (sh->vcpu)
			policy_leave_vcpu(&sh->slot, idx);
		else
			policy_leave(&sh->slot);
		if (!ok)
			atomic_fetch_add(&sh->bad, 1);
		else
			seen[wa]++;
	}
	atomic_fetch_add(&sh->seen[0], seen[0]);
	atomic_fetch_add(&sh->seen[1], seen[1]);
	return NULL;
}

static void swap_under_readers(unsigned nreaders, unsigned swaps, bool full_slot, bool vcpu)
{
	struct shared *sh = calloc(1, sizeof(*sh));
	assert_non_null(sh);
	policy_slot_init(&sh->slot, make(0));
	sh->vcpu = vcpu;
	if (vcpu) /* as vm_init does: readers 0..n-1 kept for the vCPUs */
		policy_slot_reserve_vcpus(&sh->slot, nreaders);
	if (full_slot) /* every reader slot taken: the readers share the overflow counter */
		atomic_store(&sh->slot.nreaders, POLICY_MAX_READERS);
	pthread_t t[8];
	for (unsigned i = 0; i < nreaders; i++)
		assert_int_equal(pthread_create(&t[i], NULL, reader, sh), 0);
	while (atomic_load(&sh->ready) < nreaders)
		;
	for (unsigned i = 1; i <= swaps; i++)
		policy_free(policy_swap(&sh->slot, make((int)(i & 1))));
	atomic_store(&sh->stop, true);
	for (unsigned i = 0; i < nreaders; i++)
		pthread_join(t[i], NULL);
	print_message("%u swaps; decisions from policy 0: %llu, from policy 1: %llu\n", swaps,
		      (unsigned long long)sh->seen[0], (unsigned long long)sh->seen[1]);
	assert_int_equal(atomic_load(&sh->bad), 0);
	assert_true(sh->seen[0] + sh->seen[1] > 0);
	if (full_slot)
		assert_int_equal(atomic_load(&sh->slot.overflow), 0);
	policy_slot_fini(&sh->slot);
	free(sh);
}

static void test_live_swap(void **state)
{
	(void)state;
	swap_under_readers(2, SWAPS, false, false);
}

/* The exit path's readers (one counter per vCPU by index). */
static void test_live_swap_vcpu_readers(void **state)
{
	(void)state;
	swap_under_readers(2, SWAPS, false, true);
}

static void test_live_swap_overflow_readers(void **state)
{
	(void)state;
	swap_under_readers(2, SWAPS / 2, true, false);
}

/* --- swap waits for a reader inside ---------------------------------------- */
struct held {
	struct policy_slot slot;
	_Atomic int phase; /* 1: reader inside; 2: may leave; 3: left */
	_Atomic bool swapped;
	struct policy *old;
};

static void *holder(void *arg)
{
	struct held *h = arg;
	const struct policy *p = policy_enter(&h->slot);
	const struct policy *again = policy_enter(&h->slot); /* nested: still inside after the inner leave */
	policy_leave(&h->slot);
	assert_ptr_equal(p, again);
	atomic_store(&h->phase, 1);
	while (atomic_load(&h->phase) != 2)
		;
	struct policy_decision d;
	policy_decide_access(p, POLICY_PIO, PORT, 1, false, true, &d); /* the old one, still whole */
	assert_string_equal(d.r->id, "p0-port");
	atomic_store(&h->phase, 3);
	policy_leave(&h->slot);
	return NULL;
}

static void *swapper(void *arg)
{
	struct held *h = arg;
	h->old = policy_swap(&h->slot, make(1));
	atomic_store(&h->swapped, true);
	return NULL;
}

static void test_swap_waits_for_reader(void **state)
{
	(void)state;
	struct held *h = calloc(1, sizeof(*h));
	assert_non_null(h);
	policy_slot_init(&h->slot, make(0));
	pthread_t r, w;
	assert_int_equal(pthread_create(&r, NULL, holder, h), 0);
	while (atomic_load(&h->phase) != 1)
		;
	const struct policy *first = atomic_load(&h->slot.cur);
	assert_int_equal(pthread_create(&w, NULL, swapper, h), 0);
	/* Until the swapper has published (on a loaded machine it may not run
	 * for a while), then a while longer, in which it must not return. */
	struct timespec ms1 = { 0, 1000 * 1000 }, ms50 = { 0, 50 * 1000 * 1000 };
	while (atomic_load(&h->slot.cur) == first)
		nanosleep(&ms1, NULL);
	nanosleep(&ms50, NULL);
	assert_false(atomic_load(&h->swapped)); /* the reader is still inside the old policy */
	/* A new reader gets the new policy at once, without waiting. */
	const struct policy *np = policy_enter(&h->slot);
	struct policy_decision d;
	policy_decide_access(np, POLICY_PIO, PORT, 1, false, true, &d);
	assert_string_equal(d.r->id, "p1-port");
	policy_leave(&h->slot);
	atomic_store(&h->phase, 2);
	pthread_join(w, NULL);
	pthread_join(r, NULL);
	assert_int_equal(atomic_load(&h->phase), 3);
	assert_true(atomic_load(&h->swapped));
	policy_free(h->old);
	policy_slot_fini(&h->slot);
	free(h);
}

/* A slot set up again at the same address does not reuse this thread's
 * registration with the one before it. */
static void test_slot_reinit(void **state)
{
	(void)state;
	struct policy_slot *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	policy_slot_init(s, make(0));
	policy_enter(s);
	policy_leave(s);
	assert_int_equal(atomic_load(&s->nreaders), 1);
	policy_slot_fini(s);
	policy_slot_init(s, make(1));
	const struct policy *p = policy_enter(s);
	assert_int_equal(atomic_load(&s->nreaders), 1);
	assert_int_equal(atomic_load(&s->readers[0].seq) & 1, 1);
	struct policy_decision d;
	policy_decide_msr(p, MSR, false, &d);
	assert_string_equal(d.r->id, "p1-msr");
	policy_leave(s);
	assert_int_equal(atomic_load(&s->readers[0].seq) & 1, 0);
	policy_slot_fini(s);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_live_swap),
		cmocka_unit_test(test_live_swap_vcpu_readers),
		cmocka_unit_test(test_live_swap_overflow_readers),
		cmocka_unit_test(test_swap_waits_for_reader),
		cmocka_unit_test(test_slot_reinit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
