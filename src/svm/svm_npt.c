/* svm_npt — the nested page tables: each gmem region mapped
 * guest-physical → its host address (physical in vigil-metal), 2 MiB pages
 * where both sides are aligned, 4 KiB elsewhere. Nothing else is mapped:
 * the guest reaches no host memory, and every access outside its RAM is a
 * nested page fault the backend turns into MMIO. Built once; never changed
 * while the guest runs (so no TLB flush is ever owed for it). */
#include <stdio.h>

#include "core/vm.h"
#include "metal/metal.h"
#include "svm/svm_int.h"

#define NPT_P  1ull
#define NPT_RW 2ull
#define NPT_US 4ull
#define NPT_PS 0x80ull
#define NPT_TABLE (NPT_P | NPT_RW | NPT_US)
#define NPT_ADDR 0x000ffffffffff000ull
#define M2 0x200000ull
#define K4 0x1000ull

static uint64_t *pages_made;

/* The table below entry `t[i]`, made if missing. */
static uint64_t *child(uint64_t *t, unsigned i)
{
	if (!(t[i] & NPT_P)) {
		uint64_t *n = metal_alloc_pages(4096, 4096);
		if (!n)
			return NULL;
		(*pages_made)++;
		t[i] = (uint64_t)(uintptr_t)n | NPT_TABLE;
	}
	return (uint64_t *)(uintptr_t)(t[i] & NPT_ADDR);
}

static int map_page(uint64_t *pml4, uint64_t gpa, uint64_t hpa, bool big)
{
	uint64_t *pdpt = child(pml4, (gpa >> 39) & 511);
	uint64_t *pd = pdpt ? child(pdpt, (gpa >> 30) & 511) : NULL;
	if (!pd)
		return -1;
	unsigned i = (gpa >> 21) & 511;
	if (big) {
		pd[i] = hpa | NPT_TABLE | NPT_PS;
		return 0;
	}
	uint64_t *pt = child(pd, i);
	if (!pt)
		return -1;
	pt[(gpa >> 12) & 511] = hpa | NPT_TABLE;
	return 0;
}

int svm_npt_build(struct svm *s, char *err, size_t errlen)
{
	const struct gmem *m = &s->vm->mem;
	s->npt = metal_alloc_pages(4096, 4096);
	if (!s->npt)
		goto nomem;
	s->npt_pages = 1;
	pages_made = &s->npt_pages;
	for (unsigned r = 0; r < m->nr; r++) {
		uint64_t gpa = m->r[r].gpa, hpa = (uint64_t)(uintptr_t)m->r[r].host, left = m->r[r].size;
		if ((gpa | hpa | left) & (K4 - 1)) {
			snprintf(err, errlen, "guest RAM region %u (gpa %#llx) is not page aligned", r,
				 (unsigned long long)gpa);
			return -1;
		}
		while (left) {
			bool big = !((gpa | hpa) & (M2 - 1)) && left >= M2;
			if (map_page(s->npt, gpa, hpa, big) < 0)
				goto nomem;
			uint64_t step = big ? M2 : K4;
			gpa += step;
			hpa += step;
			left -= step;
		}
	}
	return 0;
nomem:
	snprintf(err, errlen, "no memory left for the nested page tables");
	return -1;
}
