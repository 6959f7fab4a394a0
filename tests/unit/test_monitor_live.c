/* Unit tests for reading the monitor (core/monitor.c) while its vCPU counts:
 * mon_foreach() reports every address with its counts, and a reader thread
 * racing a counting thread only ever sees counts that grow and that agree
 * with each other. Build it with -fsanitize=thread too (see README). */

/* cmocka needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "core/monitor.h"

struct seen {
	unsigned n;
	struct mon_addr a[8];
};

static void record(void *ctx, const struct mon_addr *a)
{
	struct seen *s = ctx;
	if (s->n < 8)
		s->a[s->n] = *a;
	s->n++;
}

static const struct mon_addr *find(const struct seen *s, enum policy_space sp, uint64_t addr)
{
	for (unsigned i = 0; i < s->n && i < 8; i++)
		if (s->a[i].space == sp && s->a[i].addr == addr)
			return &s->a[i];
	return NULL;
}

static void foreach_reports_each_address(void **state)
{
	struct vcpu_stats *st = calloc(1, sizeof(*st));
	mon_count_access(st, POLICY_PIO, 0x3f8, false);
	mon_count_access(st, POLICY_PIO, 0x3f8, true);
	mon_count_access(st, POLICY_MMIO, 0xd0000000, false);

	struct seen s = {0};
	mon_foreach(st, record, &s);
	assert_int_equal(s.n, 2);
	const struct mon_addr *com = find(&s, POLICY_PIO, 0x3f8);
	const struct mon_addr *mm = find(&s, POLICY_MMIO, 0xd0000000);
	assert_non_null(com);
	assert_non_null(mm);
	assert_int_equal(com->count, 2);
	assert_int_equal(com->denied, 1);
	assert_int_equal(mm->count, 1);
	assert_int_equal(mm->denied, 0);
	/* The same port number in the other space is another address. */
	assert_null(find(&s, POLICY_MMIO, 0x3f8));
	free(st);
}

static uint64_t count_of(const struct vcpu_stats *st, enum policy_space sp, uint64_t addr, uint64_t *denied)
{
	uint64_t c = 0, d = 0;
	if (!mon_lookup(st, sp, addr, &c, &d))
		return UINT64_MAX;
	if (denied)
		*denied = d;
	return c;
}

/* The writer remembers the slot it counted last (monitor.h): a new
 * address, the same number in another space, and a return to an earlier
 * address each land in their own slot. */
static void last_slot_follows_the_address(void **state)
{
	struct vcpu_stats *st = calloc(1, sizeof(*st));
	uint64_t d;
	mon_count_access(st, POLICY_PIO, 0x1234, true);
	mon_count_access(st, POLICY_PIO, 0x1234, true);
	mon_count_access(st, POLICY_PIO, 0x80, false);
	mon_count_access(st, POLICY_MMIO, 0x1234, false);
	mon_count_access(st, POLICY_PIO, 0x1234, false);
	mon_count_access(st, POLICY_PIO, 0x80, true);
	assert_int_equal(count_of(st, POLICY_PIO, 0x1234, &d), 3);
	assert_int_equal(d, 2);
	assert_int_equal(count_of(st, POLICY_PIO, 0x80, &d), 2);
	assert_int_equal(d, 1);
	assert_int_equal(count_of(st, POLICY_MMIO, 0x1234, &d), 1);
	assert_int_equal(d, 0);
	assert_int_equal(mon_get(&st->accesses), 6);
	assert_int_equal(mon_get(&st->denied), 3);
	assert_int_equal(mon_get(&st->untracked), 0);
	free(st);
}

/* With the table full, an address without a slot is untracked each time,
 * also when it repeats (its remembered slot is none), and a tracked one
 * after it still counts in its own. */
static void untracked_stays_untracked(void **state)
{
	struct vcpu_stats *st = calloc(1, sizeof(*st));
	const unsigned n = MON_SLOTS + 64;
	for (unsigned i = 0; i < n; i++)
		mon_count_access(st, POLICY_MMIO, 0x100000 + 0x1000ull * i, false);
	uint64_t tracked = 0, untracked = UINT64_MAX;
	for (unsigned i = 0; i < n; i++) {
		uint64_t a = 0x100000 + 0x1000ull * i;
		if (count_of(st, POLICY_MMIO, a, NULL) == 1)
			tracked = a;
		else if (untracked == UINT64_MAX)
			untracked = a;
	}
	assert_int_not_equal(untracked, UINT64_MAX);
	uint64_t before = mon_get(&st->untracked);
	assert_int_equal(before + MON_SLOTS, n); /* every slot taken, the rest untracked */
	mon_count_access(st, POLICY_MMIO, untracked, true);
	mon_count_access(st, POLICY_MMIO, untracked, true);
	mon_count_access(st, POLICY_MMIO, tracked, false);
	mon_count_access(st, POLICY_MMIO, untracked, false);
	assert_int_equal(mon_get(&st->untracked), before + 3);
	assert_int_equal(count_of(st, POLICY_MMIO, untracked, NULL), UINT64_MAX);
	assert_int_equal(count_of(st, POLICY_MMIO, tracked, NULL), 2);
	assert_int_equal(mon_get(&st->accesses), n + 4);
	assert_int_equal(mon_get(&st->denied), 2);
	free(st);
}

static void foreach_empty_calls_nothing(void **state)
{
	struct vcpu_stats *st = calloc(1, sizeof(*st));
	struct seen s = {0};
	mon_foreach(st, record, &s);
	assert_int_equal(s.n, 0);
	free(st);
}

#define ROUNDS 200000
#define NADDR  64

struct race {
	struct vcpu_stats *st;
	_Atomic int done;
	unsigned bad; /* reader's observations that broke an invariant */
	unsigned reads;
	atomic_int go; /* the reader has read once: the writer may start */
};

static void *counter(void *arg)
{
	struct race *r = arg;
	/* On a loaded machine the writer could finish before the reader ever
	 * ran: wait for its first read, so the two really overlap. */
	while (!atomic_load(&r->go))
		sched_yield();
	for (unsigned i = 0; i < ROUNDS; i++) {
		mon_count_exit(r->st, VEXIT_IO);
		/* Every third access is denied: denied <= count always. */
		mon_count_access(r->st, POLICY_PIO, 0x100 + (i % NADDR), i % 3 == 0);
	}
	atomic_store(&r->done, 1);
	return NULL;
}

struct check {
	uint64_t last[NADDR];
	unsigned bad;
};

static void check_slot(void *ctx, const struct mon_addr *a)
{
	struct check *c = ctx;
	if (a->space != POLICY_PIO || a->addr < 0x100 || a->addr >= 0x100 + NADDR) {
		c->bad++;
		return;
	}
	uint64_t *last = &c->last[a->addr - 0x100];
	/* A key is published only after its counts are valid; counts only grow. */
	if (a->count < *last || a->count > ROUNDS / NADDR + 1)
		c->bad++;
	*last = a->count;
}

static void reader_sees_growing_counts(void **state)
{
	struct race r = {.st = calloc(1, sizeof(struct vcpu_stats))};
	struct check c = {0};
	uint64_t last_io = 0, last_acc = 0;
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, counter, &r), 0);
	while (!atomic_load(&r.done)) {
		uint64_t io = mon_get(&r.st->reasons[VEXIT_IO]);
		uint64_t acc = mon_get(&r.st->accesses);
		uint64_t den = mon_get(&r.st->denied);
		if (io < last_io || acc < last_acc || den > acc + 1 || io > ROUNDS)
			r.bad++;
		last_io = io;
		last_acc = acc;
		mon_foreach(r.st, check_slot, &c);
		r.reads++;
		atomic_store(&r.go, 1);
	}
	pthread_join(t, NULL);
	assert_int_equal(r.bad, 0);
	assert_int_equal(c.bad, 0);
	assert_true(r.reads > 0);

	/* After the writer stops, the reader sees the exact totals. */
	assert_int_equal(mon_get(&r.st->reasons[VEXIT_IO]), ROUNDS);
	assert_int_equal(mon_get(&r.st->accesses), ROUNDS);
	assert_int_equal(mon_get(&r.st->denied), (ROUNDS + 2) / 3);
	uint64_t sum = 0;
	for (unsigned a = 0; a < NADDR; a++) {
		uint64_t n, d;
		assert_true(mon_lookup(r.st, POLICY_PIO, 0x100 + a, &n, &d));
		sum += n;
	}
	assert_int_equal(sum + mon_get(&r.st->untracked), ROUNDS);
	free(r.st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(foreach_reports_each_address),
	    cmocka_unit_test(foreach_empty_calls_nothing),
	    cmocka_unit_test(last_slot_follows_the_address),
	    cmocka_unit_test(untracked_stays_untracked),
	    cmocka_unit_test(reader_sees_growing_counts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
