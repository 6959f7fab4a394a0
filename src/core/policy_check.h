/* policy_check — what one rule says on its own, and the helpers the
 * compiler's messages share (private to src/core/policy*.c). */
#ifndef VIGIL_CORE_POLICY_CHECK_H
#define VIGIL_CORE_POLICY_CHECK_H

#include "core/policy_impl.h"

/* One compilation in progress. */
struct pol_cc {
	const struct policy_spec *s;
	struct policy *p;
	char *err;
	size_t errlen;
	uint32_t bad;  /* the rule err names (UINT32_MAX: none yet) */
	uint8_t *seen; /* nrules: the rule labels some table entry */
	uint8_t *strict; /* nrules: the rule is not a plain provide (ptab_mark_strict) */
	struct ptab_iv *iv;
};

/* Records the refusal of rule i unless an earlier rule is refused already. */
__attribute__((format(printf, 3, 4))) void pol_refuse(struct pol_cc *c, uint32_t i, const char *fmt, ...);
/* The id's length as it may be printed (%.*s). */
int pol_id_len(const struct policy_rule *r);
/* The JSON name of a resource's range list ("ports", "msrs", ...) and its
 * largest value. */
const char *pol_range_field(enum policy_resource res);
uint64_t pol_range_max(enum policy_resource res);
/* pio, mmio, msr: numbers shown in hex. */
bool pol_addr_like(enum policy_resource res);
/* "0x2f8-0x2ff", "17", "every sector": a range as a message shows it. */
const char *pol_range_text(char *buf, size_t len, enum policy_resource res, uint64_t first, uint64_t last);

/* Rule i on its own; false (and err) when it cannot be used. */
bool pol_check_rule(struct pol_cc *c, uint32_t i);
/* Refuses a repeated id; 0 or -ENOMEM. */
int pol_check_ids(struct pol_cc *c);

/* Pointers to the rules of resource res (-1: all), sorted by cmp. qsort has
 * no context: comparators end with pol_by_ptr, which keeps rule order
 * among equal keys. NULL with *n = 0 when there are none; NULL with
 * *n = SIZE_MAX: no memory. */
const struct policy_rule **pol_sorted_rules(const struct policy_spec *s, int res,
					    int (*cmp)(const void *, const void *), size_t *n);
int pol_by_ptr(const struct policy_rule *x, const struct policy_rule *y);

static inline uint32_t pol_index_of(const struct pol_cc *c, const struct policy_rule *r)
{
	return (uint32_t)(r - c->s->rules);
}

#endif
