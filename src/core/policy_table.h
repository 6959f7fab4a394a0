/* policy_table — the lookup tables a compiled policy decides with (private
 * to src/core/policy*.c).
 *
 * A `ptab` partitions an address space (ports, addresses, MSRs, sectors)
 * into sorted disjoint segments, each labelled with the index of the first
 * rule, in rule order, whose ranges cover it. A query range [first, last]
 * (an access of several bytes, a disk request of several sectors) gets the
 * lowest label among the segments it touches: two binary searches and a
 * min over a segment tree, O(log n) whatever the number of rules.
 *
 * A `pcand` partitions the 16-bit port space of one (direction, protocol)
 * of the network rules; each piece holds the rules whose ports cover it,
 * in rule order, cut after the first that matches every address and
 * interface (nothing after it can decide). */
#ifndef VIGIL_CORE_POLICY_TABLE_H
#define VIGIL_CORE_POLICY_TABLE_H

#include <stddef.h>
#include <stdint.h>

#define PT_NONE UINT32_MAX

/* One rule's range as the builders take it. */
struct ptab_iv {
	uint64_t first, last;
	uint32_t rule;
};

struct ptab_seg {
	uint64_t first, last;
};

struct ptab {
	size_t n;
	struct ptab_seg *seg; /* n, sorted, disjoint */
	uint32_t *min;        /* 2n: a segment tree; leaf i (segment i) at n + i */
	uint32_t *smin;       /* 2n, or NULL: the same over the strict labels only */
};

/* Builds `t` from `iv` (n intervals, in rule order: ascending `rule`).
 * Marks seen[rule] = 1 for every rule that labels some segment. 0 or -ENOMEM. */
int ptab_build(struct ptab *t, const struct ptab_iv *iv, size_t n, uint8_t *seen);
void ptab_free(struct ptab *t);
/* The lowest label among the segments [first, last] touches, or PT_NONE. */
uint32_t ptab_lookup(const struct ptab *t, uint64_t first, uint64_t last);
/* Marks which labels are strict (strict[label] != 0: a rule that is not a
 * plain provide). 0 or -ENOMEM. */
int ptab_mark_strict(struct ptab *t, const uint8_t *strict);
/* The rule for an access to [first, last]: each segment's own label is the
 * rule of its units, and the access takes the lowest strict one among them
 * if there is one, else the lowest (a wide access must not carry a deny's
 * units under a neighbour's provide). PT_NONE: none touched. */
uint32_t ptab_decide(const struct ptab *t, uint64_t first, uint64_t last);
/* The segment holding `x`, or NULL. */
const struct ptab_seg *ptab_segment(const struct ptab *t, uint64_t x, uint32_t *label);

/* Where a pcand piece holding more candidates than this in total would be
 * built, compilation fails instead (memory stays bounded). */
#define PCAND_MAX_ENTRIES (1u << 24)

struct pcand {
	size_t n;          /* pieces */
	uint32_t *start;   /* n: first port of piece k; piece k ends at start[k+1] - 1 */
	uint32_t *off;     /* n + 1: piece k's candidates are rules[off[k] .. off[k+1]) */
	uint32_t *rules;
};

/* `iv` in rule order; final[rule] != 0: that rule matches every flow its
 * ports reach. Marks seen[] like ptab_build. 0, -ENOMEM, or -E2BIG past
 * PCAND_MAX_ENTRIES. */
int pcand_build(struct pcand *c, const struct ptab_iv *iv, size_t n, const uint8_t *final, uint8_t *seen);
void pcand_free(struct pcand *c);
/* The candidates for `port`: *count of them (0: none). */
const uint32_t *pcand_lookup(const struct pcand *c, uint32_t port, size_t *count);

#endif
