/* malloc — vigil-metal's heap: first-fit over a free list, blocks with a
 * boundary tag (their size and the previous block's) so a free merges with
 * both neighbours at once. Memory comes from metal_alloc_pages in arenas
 * (METAL_HEAP_ARENA, or one big enough for a large request); it never goes
 * back to the page allocator but is reused, which is what the core needs:
 * it frees what it allocates (policies swapped, devices torn down). A bad
 * free (not ours, or twice) stops vigil-metal with a line, as glibc
 * aborts. Single-threaded by construction: one vCPU loop per host CPU, and
 * the heap is only used at set-up and on the boot CPU (the lock is for
 * when application processors join). */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metal/metal.h"

/* One lock for the heap (a spinlock in the shim: never contended on one
 * CPU; with SMP, the CPUs' exit paths may allocate at once). */
static pthread_mutex_t heap_lock = PTHREAD_MUTEX_INITIALIZER;

#define METAL_HEAP_ARENA (8u << 20)
#define ALIGN 16
#define USED 1u
#define FIRST 2u /* first block of its arena: no previous block */
#define TAG_USED 0x7661616c6c6f6321ull
#define TAG_ALIGNED 0x76616c69676e6564ull

struct blk {
	size_t size;      /* whole block with this header, | USED | FIRST */
	size_t prev_size; /* the block before in the arena */
	/* A free block's payload holds its list links; a used one's the data,
	 * and the 16 bytes just before the user's pointer hold the tag. */
};

struct freeb {
	struct blk h;
	struct freeb *next, *prev;
};

/* Every user pointer has this just before it. */
struct utag {
	size_t offset; /* aligned: bytes back to the block's own payload */
	uint64_t tag;  /* TAG_USED or TAG_ALIGNED */
};

#define HDR (sizeof(struct blk) + sizeof(struct utag))
#define MIN_BLK ((size_t)48) /* header, tag, list links */

static struct freeb *free_list;

static size_t bsize(const struct blk *b)
{
	return b->size & ~(size_t)(ALIGN - 1);
}

/* The block after b, or NULL at its arena's end (the end marker: size 0). */
static struct blk *next_of(struct blk *b)
{
	struct blk *n = (struct blk *)((char *)b + bsize(b));
	return bsize(n) ? n : NULL;
}

static struct blk *prev_of(struct blk *b)
{
	return (b->size & FIRST) ? NULL : (struct blk *)((char *)b - b->prev_size);
}

static void list_add(struct freeb *f)
{
	f->prev = NULL;
	f->next = free_list;
	if (free_list)
		free_list->prev = f;
	free_list = f;
}

static void list_del(struct freeb *f)
{
	if (f->prev)
		f->prev->next = f->next;
	else
		free_list = f->next;
	if (f->next)
		f->next->prev = f->prev;
}

static void set_size(struct blk *b, size_t size, size_t flags)
{
	b->size = size | flags;
	struct blk *n = (struct blk *)((char *)b + size);
	n->prev_size = size; /* the next block or the end marker */
}

static bool grow(size_t need)
{
	size_t bytes = need + 64 > METAL_HEAP_ARENA ? ((need + 64 + 4095) & ~(size_t)4095) : METAL_HEAP_ARENA;
	char *a = metal_alloc_pages(bytes, 4096);
	if (!a)
		return false;
	size_t usable = bytes - sizeof(struct blk); /* the end marker */
	struct blk *b = (struct blk *)a;
	set_size(b, usable, FIRST);
	struct blk *end = (struct blk *)(a + usable);
	end->size = USED; /* size 0: stops next_of */
	list_add((struct freeb *)b);
	return true;
}

__attribute__((noreturn)) static void bad_free(const void *p, const char *why)
{
	metal_log("free(%p): %s", p, why);
	metal_crash("heap corruption");
}

static void *alloc_block(size_t n)
{
	if (n > ((size_t)1 << 40))
		return NULL;
	size_t need = (n + HDR + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	if (need < MIN_BLK)
		need = MIN_BLK;
	for (int round = 0; round < 2; round++) {
		for (struct freeb *f = free_list; f; f = f->next) {
			size_t have = bsize(&f->h);
			if (have < need)
				continue;
			list_del(f);
			size_t flags = f->h.size & FIRST;
			struct blk *b = &f->h;
			if (have - need >= MIN_BLK) {
				set_size(b, need, flags | USED);
				struct blk *rest = (struct blk *)((char *)b + need);
				set_size(rest, have - need, 0);
				list_add((struct freeb *)rest);
			} else
				b->size = have | flags | USED;
			struct utag *t = (struct utag *)(b + 1);
			t->offset = 0;
			t->tag = TAG_USED;
			return t + 1;
		}
		if (round == 0 && !grow(need))
			return NULL;
	}
	return NULL;
}

static struct blk *block_of(void *p)
{
	struct utag *t = (struct utag *)p - 1;
	if ((uintptr_t)p % ALIGN)
		bad_free(p, "not a heap pointer");
	if (t->tag == TAG_ALIGNED) {
		p = (char *)p - t->offset;
		t = (struct utag *)p - 1;
	}
	if (t->tag != TAG_USED)
		bad_free(p, "not a heap pointer, or freed twice");
	struct blk *b = (struct blk *)t - 1;
	if (!(b->size & USED))
		bad_free(p, "freed twice");
	return b;
}

void *malloc(size_t n)
{
	pthread_mutex_lock(&heap_lock);
	void *p = alloc_block(n ? n : 1);
	pthread_mutex_unlock(&heap_lock);
	if (!p)
		errno = ENOMEM;
	return p;
}

void free(void *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&heap_lock);
	struct blk *b = block_of(p);
	((struct utag *)(b + 1))->tag = 0;
	size_t flags = b->size & FIRST;
	size_t size = bsize(b);
	struct blk *n = next_of(b);
	if (n && !(n->size & USED)) {
		list_del((struct freeb *)n);
		size += bsize(n);
	}
	struct blk *pv = prev_of(b);
	if (pv && !(pv->size & USED)) {
		list_del((struct freeb *)pv);
		flags = pv->size & FIRST;
		size += bsize(pv);
		b = pv;
	}
	set_size(b, size, flags);
	list_add((struct freeb *)b);
	pthread_mutex_unlock(&heap_lock);
}

void *calloc(size_t nmemb, size_t size)
{
	if (size && nmemb > (size_t)-1 / size) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = malloc(nmemb * size);
	if (p)
		memset(p, 0, nmemb * size);
	return p;
}

/* What the caller may use at p. */
static size_t usable(void *p)
{
	struct blk *b = block_of(p);
	return bsize(b) - HDR - (size_t)((char *)p - (char *)((struct utag *)(b + 1) + 1));
}

void *realloc(void *p, size_t n)
{
	if (!p)
		return malloc(n);
	if (!n) {
		free(p);
		return NULL;
	}
	pthread_mutex_lock(&heap_lock);
	size_t have = usable(p);
	pthread_mutex_unlock(&heap_lock);
	if (n <= have)
		return p;
	void *q = malloc(n);
	if (q) {
		memcpy(q, p, have);
		free(p);
	}
	return q;
}

int posix_memalign(void **out, size_t align, size_t n)
{
	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	if (align <= ALIGN) {
		*out = malloc(n);
		return *out ? 0 : ENOMEM;
	}
	char *raw = malloc(n + align + sizeof(struct utag));
	if (!raw)
		return ENOMEM;
	uintptr_t q = ((uintptr_t)raw + sizeof(struct utag) + align - 1) & ~(uintptr_t)(align - 1);
	struct utag *t = (struct utag *)q - 1;
	t->offset = q - (uintptr_t)raw;
	t->tag = TAG_ALIGNED;
	*out = (void *)q;
	return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
	void *p;
	int e = posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, n);
	if (e) {
		errno = e;
		return NULL;
	}
	return p;
}
