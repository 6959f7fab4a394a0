/* fuzz_pool — large zeroed allocations kept across runs, for targets whose
 * code under test callocs big blocks per run (virtio-blk's per-queue job
 * arrays, 2.7 MB each; the network filter's flow table, 400 KB). Under ASan
 * every such calloc is a fresh mmap and every free poisons its whole
 * shadow (then the quarantine's recycling poisons it again): tens of
 * megabytes of shadow memset and page faults per run, most of those
 * targets' time, for pages the run never touched.
 *
 * A target that includes this header (once) and links with
 *   -Wl,--wrap=calloc -Wl,--wrap=free -Wl,--wrap=realloc
 * gets callocs of at least POOL_MIN bytes from a few fixed mappings
 * instead: zero-filled as calloc promises, with what ASan would have
 * caught still caught —
 *   - the block ends where its mapping's writable part ends (the last
 *     granule's slack poisoned in ASan's shadow), then a PROT_NONE guard
 *     page: a step past the end faults; a guard page before it too (the
 *     head slack poisoned);
 *   - a freed block is poisoned in ASan's shadow (up to POOL_SCAN_MAX) or
 *     its mapping PROT_NONE (bigger ones) until the slot is handed out
 *     again: a use after free is reported, or faults;
 *   - a free of an address inside a slot that is not its block, a double
 *     free, or a realloc of a pooled block traps;
 *   - pool_check_idle() traps when a block is still held (a leak: the
 *     targets call it after their teardown, as LeakSanitizer would have
 *     reported it at exit).
 * Freeing a block leaves it zero for the next run: up to POOL_SCAN_MAX,
 * by zeroing its resident pages in place (mincore; they stay resident, so
 * the next run does not fault them in again — the flow table's buckets,
 * memset to 0xff every run); a bigger block (virtio-blk's, mostly never
 * touched) gets fresh PROT_NONE pages mapped over it (MAP_FIXED), cheaper
 * there than mincore and mprotect, which walk all its page tables. */
#ifndef VIGIL_FUZZ_POOL_H
#define VIGIL_FUZZ_POOL_H

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sanitizer/asan_interface.h>

#include "fuzz_input.h"

#define POOL_MIN (128u << 10)   /* ASan's primary allocator serves smaller ones cheaply */
#define POOL_SLOTS 4
#define POOL_SPAN (64ul << 20)  /* virtual reservation per slot */
#define POOL_PAGE 4096ul
#define POOL_SCAN_MAX (4ul << 20) /* blocks up to this size are zeroed in place on free */
#define POOL_MEMSET_PAGES 64      /* ... by memset while at most this many pages are resident */
/* The pool is harness, not code under test: no coverage of its own (its
 * page scans would be most of a run's edges and compares). */
#define POOL_FN FUZZ_NOCOV

void *__real_calloc(size_t n, size_t size);
void __real_free(void *p);
void *__real_realloc(void *p, size_t size);
void *__wrap_calloc(size_t n, size_t size);
void __wrap_free(void *p);
void *__wrap_realloc(void *p, size_t size);

struct pool_slot {
	uint8_t *base;   /* POOL_SPAN bytes: guard page, usable pages, guard page(s) */
	uint8_t *block;  /* the block handed out, NULL when free */
	size_t size;     /* its size */
	size_t usable;   /* writable bytes after the first guard page */
	size_t poisoned; /* bytes after the guard page poisoned by the last release */
};

static struct pool_slot pool[POOL_SLOTS];
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

POOL_FN static struct pool_slot *pool_find(const void *p)
{
	for (unsigned i = 0; i < POOL_SLOTS; i++)
		if (pool[i].base && (const uint8_t *)p >= pool[i].base &&
		    (const uint8_t *)p < pool[i].base + POOL_SPAN)
			return &pool[i];
	return NULL;
}

POOL_FN static void *pool_alloc(size_t size)
{
	size_t rounded = (size + 15) & ~(size_t)15;
	size_t usable = (rounded + POOL_PAGE - 1) & ~(POOL_PAGE - 1);
	if (usable + 2 * POOL_PAGE > POOL_SPAN)
		return NULL;
	struct pool_slot *s = NULL;
	for (unsigned i = 0; i < POOL_SLOTS && !s; i++)
		if (!pool[i].block)
			s = &pool[i];
	if (!s)
		return NULL;
	if (!s->base) {
		void *m = mmap(NULL, POOL_SPAN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (m == MAP_FAILED)
			return NULL;
		s->base = m;
	}
	uint8_t *start = s->base + POOL_PAGE;
	if (s->poisoned)
		ASAN_UNPOISON_MEMORY_REGION(start, s->poisoned);
	s->poisoned = 0;
	if (usable <= POOL_SCAN_MAX ? mprotect(start, usable, PROT_READ | PROT_WRITE) != 0
				    : mmap(start, usable, PROT_READ | PROT_WRITE,
					   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED)
		__builtin_trap();
	s->block = start + usable - rounded;
	s->size = size;
	s->usable = usable;
	/* Head slack (before the block) and tail slack (past size): poisoned. */
	if (s->block > start)
		ASAN_POISON_MEMORY_REGION(start, (size_t)(s->block - start));
	if (rounded > size)
		ASAN_POISON_MEMORY_REGION(s->block + size, rounded - size);
	return s->block;
}

POOL_FN static void pool_release(struct pool_slot *s, void *p)
{
	if (p != s->block)
		__builtin_trap(); /* not a block the pool handed out, or freed twice */
	uint8_t *start = s->base + POOL_PAGE;
	size_t rounded = (s->size + 15) & ~(size_t)15;
	if (s->block > start)
		ASAN_UNPOISON_MEMORY_REGION(start, (size_t)(s->block - start));
	if (rounded > s->size)
		ASAN_UNPOISON_MEMORY_REGION(s->block + s->size, rounded - s->size);
	if (s->usable > POOL_SCAN_MAX) {
		/* A fresh PROT_NONE mapping over the writable part: the pages
		 * this run touched are gone (zero again next time), and the
		 * block faults until it is handed out again. */
		if (mmap(start, s->usable, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) ==
		    MAP_FAILED)
			__builtin_trap();
		s->block = NULL;
		return;
	}
	/* Small enough to scan: zero the resident pages (what this run and
	 * earlier ones touched) in place, so the next run does not fault
	 * them in again; when they are many, drop them instead. Pages past
	 * the writable part were zeroed when they were last in it. */
	static uint64_t vec[POOL_SCAN_MAX / POOL_PAGE / 8 + 1];
	unsigned char *v = (unsigned char *)vec;
	size_t pages = s->usable / POOL_PAGE, words = (pages + 7) / 8, touched = 0;
	memset(vec, 0, words * 8);
	if (mincore(start, s->usable, v) != 0) {
		touched = SIZE_MAX;
	} else {
		for (size_t w = 0; w < words; w++)
			if (vec[w])
				for (size_t i = w * 8; i < w * 8 + 8 && i < pages; i++)
					touched += v[i] & 1;
	}
	if (touched <= POOL_MEMSET_PAGES) {
		for (size_t w = 0; w < words; w++)
			if (vec[w])
				for (size_t i = w * 8; i < w * 8 + 8 && i < pages; i++)
					if (v[i] & 1)
						memset(start + i * POOL_PAGE, 0, POOL_PAGE);
	} else if (madvise(start, s->usable, MADV_DONTNEED) != 0) {
		memset(start, 0, s->usable);
	}
	/* Freed: poisoned as ASan's free would (use-after-poison reports),
	 * which is cheaper than mprotect for resident pages. */
	ASAN_POISON_MEMORY_REGION(start, s->usable);
	s->poisoned = s->usable;
	s->block = NULL;
}

POOL_FN void *__wrap_calloc(size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total) || total < POOL_MIN)
		return __real_calloc(n, size);
	pthread_mutex_lock(&pool_lock);
	void *p = pool_alloc(total);
	pthread_mutex_unlock(&pool_lock);
	return p ? p : __real_calloc(n, size);
}

POOL_FN void __wrap_free(void *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&pool_lock);
	struct pool_slot *s = pool_find(p);
	if (s)
		pool_release(s, p);
	pthread_mutex_unlock(&pool_lock);
	if (!s)
		__real_free(p);
}

POOL_FN void *__wrap_realloc(void *p, size_t size)
{
	if (p && pool_find(p))
		__builtin_trap(); /* no code under test reallocs these blocks */
	return __real_realloc(p, size);
}

/* After a run's teardown: every pooled block is back (none leaked). */
POOL_FN static inline void pool_check_idle(void)
{
	for (unsigned i = 0; i < POOL_SLOTS; i++)
		if (pool[i].block)
			__builtin_trap();
}

#endif
