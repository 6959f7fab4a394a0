/* fake_dirty — Diff snapshots' view of a device test: whether vigil marked
 * the guest pages a device wrote (gmem's own-write bitmap, region 0). */
#ifndef VIGIL_TESTS_FAKE_DIRTY_H
#define VIGIL_TESTS_FAKE_DIRTY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/gmem.h"

/* Takes (and so clears) region 0's marks; true if every page of
 * [gpa, gpa + len) was marked. */
static inline bool fake_dirty_marked(const struct gmem *m, uint64_t gpa, uint64_t len)
{
	uint64_t words = (m->r[0].size / GMEM_PAGE + 63) / 64;
	uint64_t *b = calloc(words, sizeof(*b));
	if (!b)
		return false;
	gmem_dirty_take(m, 0, b);
	bool all = len > 0;
	for (uint64_t pg = gpa / GMEM_PAGE; len && pg <= (gpa + len - 1) / GMEM_PAGE; pg++)
		all = all && (b[pg / 64] >> (pg % 64) & 1);
	free(b);
	return all;
}

#endif
