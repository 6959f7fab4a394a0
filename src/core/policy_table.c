/* The policy's lookup tables (core/policy_table.h). Both builders cut the
 * space at every range's first and last + 1 into elementary pieces, then
 * walk the rules in order: a ptab paints each piece with the first rule that
 * reaches it (a union-find skips painted pieces, so building is
 * O(n log n) however the ranges overlap); a pcand appends rules to each
 * piece until one matches unconditionally. */
#include "core/policy_table.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Sorted, unique: every first and every last + 1 (none past UINT64_MAX). */
static uint64_t *cut_points(const struct ptab_iv *iv, size_t n, size_t *m)
{
	uint64_t *b = malloc(2 * n * sizeof(*b));
	if (!b)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		b[k++] = iv[i].first;
		if (iv[i].last != UINT64_MAX)
			b[k++] = iv[i].last + 1;
	}
	qsort(b, k, sizeof(*b), cmp_u64);
	size_t u = 0;
	for (size_t i = 0; i < k; i++)
		if (!u || b[u - 1] != b[i])
			b[u++] = b[i];
	*m = u;
	return b;
}

/* Index of the cut point equal to x (x is one by construction). */
static size_t cut_index(const uint64_t *b, size_t m, uint64_t x)
{
	size_t lo = 0, hi = m;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (b[mid] <= x)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* The pieces interval iv covers: [*k0, *k1]. */
static void piece_span(const uint64_t *b, size_t m, const struct ptab_iv *iv, size_t *k0, size_t *k1)
{
	*k0 = cut_index(b, m, iv->first);
	*k1 = iv->last == UINT64_MAX ? m - 1 : cut_index(b, m, iv->last + 1) - 1;
}

/* Union-find "next open piece at or after k". */
static size_t next_open(size_t *nx, size_t k)
{
	size_t r = k;
	while (nx[r] != r)
		r = nx[r];
	while (nx[k] != r) {
		size_t t = nx[k];
		nx[k] = r;
		k = t;
	}
	return r;
}

static size_t *open_all(size_t m)
{
	size_t *nx = malloc((m + 1) * sizeof(*nx));
	if (nx)
		for (size_t k = 0; k <= m; k++)
			nx[k] = k;
	return nx;
}

int ptab_build(struct ptab *t, const struct ptab_iv *iv, size_t n, uint8_t *seen)
{
	memset(t, 0, sizeof(*t));
	if (!n)
		return 0;
	size_t m;
	uint64_t *b = cut_points(iv, n, &m);
	uint32_t *lab = b ? malloc(m * sizeof(*lab)) : NULL;
	size_t *nx = lab ? open_all(m) : NULL;
	if (!nx)
		goto nomem;
	for (size_t k = 0; k < m; k++)
		lab[k] = PT_NONE;
	for (size_t i = 0; i < n; i++) {
		size_t k0, k1;
		piece_span(b, m, &iv[i], &k0, &k1);
		for (size_t k = next_open(nx, k0); k <= k1; k = next_open(nx, k + 1)) {
			lab[k] = iv[i].rule;
			nx[k] = k + 1;
		}
	}
	/* Adjacent pieces with one label become one segment. */
	size_t ns = 0;
	for (size_t k = 0; k < m; k++)
		if (lab[k] != PT_NONE && (!k || lab[k - 1] != lab[k]))
			ns++;
	t->seg = malloc(ns * sizeof(*t->seg));
	t->min = malloc(2 * ns * sizeof(*t->min));
	if (!t->seg || !t->min)
		goto nomem;
	size_t s = 0;
	for (size_t k = 0; k < m; k++) {
		if (lab[k] == PT_NONE)
			continue;
		uint64_t end = k + 1 < m ? b[k + 1] - 1 : UINT64_MAX;
		if (k && lab[k - 1] == lab[k]) {
			t->seg[s - 1].last = end;
			continue;
		}
		t->seg[s] = (struct ptab_seg){ b[k], end };
		t->min[ns + s] = lab[k];
		if (seen)
			seen[lab[k]] = 1;
		s++;
	}
	t->n = ns;
	for (size_t i = ns - 1; i >= 1; i--)
		t->min[i] = t->min[2 * i] < t->min[2 * i + 1] ? t->min[2 * i] : t->min[2 * i + 1];
	free(b);
	free(lab);
	free(nx);
	return 0;
nomem:
	free(b);
	free(lab);
	free(nx);
	ptab_free(t);
	return -ENOMEM;
}

void ptab_free(struct ptab *t)
{
	free(t->seg);
	free(t->min);
	free(t->smin);
	memset(t, 0, sizeof(*t));
}

/* Index of the first segment ending at or after x (n if none). Branch-free
 * halving: the exit path's cost does not hang on guessing the way. */
static size_t first_ending_from(const struct ptab *t, uint64_t x)
{
	if (!t->n)
		return 0;
	const struct ptab_seg *base = t->seg;
	size_t n = t->n;
	while (n > 1) {
		size_t half = n / 2;
		base = base[half - 1].last < x ? base + half : base;
		n -= half;
	}
	return (size_t)(base - t->seg) + (base->last < x);
}

static uint32_t tree_min(const struct ptab *t, const uint32_t *tree, size_t lo, size_t end)
{
	uint32_t best = PT_NONE;
	for (size_t l = lo + t->n, r = end + t->n; l < r; l >>= 1, r >>= 1) {
		if (l & 1) {
			uint32_t v = tree[l++];
			best = v < best ? v : best;
		}
		if (r & 1) {
			uint32_t v = tree[--r];
			best = v < best ? v : best;
		}
	}
	return best;
}

static uint32_t lookup(const struct ptab *t, const uint32_t *tree, uint64_t first, uint64_t last)
{
	size_t lo = first_ending_from(t, first);
	if (lo == t->n || t->seg[lo].first > last)
		return PT_NONE;
	/* Most queries (one port, an 8-byte access) touch one or two
	 * segments: walk a few, else find the end and ask the tree. */
	uint32_t best = tree[t->n + lo];
	size_t k = lo + 1;
	for (int step = 0; step < 4; step++, k++) {
		if (k == t->n || t->seg[k].first > last)
			return best;
		uint32_t v = tree[t->n + k];
		best = v < best ? v : best;
	}
	size_t a = k, z = t->n; /* one past the last segment starting at or before `last` */
	while (a < z) {
		size_t mid = a + (z - a) / 2;
		if (t->seg[mid].first <= last)
			a = mid + 1;
		else
			z = mid;
	}
	uint32_t rest = tree_min(t, tree, k, a);
	return rest < best ? rest : best;
}

uint32_t ptab_lookup(const struct ptab *t, uint64_t first, uint64_t last)
{
	return lookup(t, t->min, first, last);
}

int ptab_mark_strict(struct ptab *t, const uint8_t *strict)
{
	free(t->smin);
	t->smin = NULL;
	if (!t->n)
		return 0;
	if (!(t->smin = malloc(2 * t->n * sizeof(*t->smin))))
		return -ENOMEM;
	for (size_t s = 0; s < t->n; s++)
		t->smin[t->n + s] = strict[t->min[t->n + s]] ? t->min[t->n + s] : PT_NONE;
	for (size_t i = t->n - 1; i >= 1; i--)
		t->smin[i] = t->smin[2 * i] < t->smin[2 * i + 1] ? t->smin[2 * i] : t->smin[2 * i + 1];
	return 0;
}

uint32_t ptab_decide(const struct ptab *t, uint64_t first, uint64_t last)
{
	uint32_t i = lookup(t, t->min, first, last);
	if (i == PT_NONE || !t->smin || first == last)
		return i;
	uint32_t j = lookup(t, t->smin, first, last);
	return j != PT_NONE ? j : i;
}

const struct ptab_seg *ptab_segment(const struct ptab *t, uint64_t x, uint32_t *label)
{
	size_t k = first_ending_from(t, x);
	if (k == t->n || t->seg[k].first > x)
		return NULL;
	*label = t->min[t->n + k];
	return &t->seg[k];
}

/* One pass over the rules: counts (fill == false) or writes the candidates. */
static int pcand_pass(struct pcand *c, const uint64_t *b, size_t m, const struct ptab_iv *iv, size_t n,
		      const uint8_t *final, uint32_t *cnt, uint32_t *lastr, size_t *nx, bool fill)
{
	size_t total = 0;
	for (size_t k = 0; k < m; k++)
		lastr[k] = PT_NONE;
	for (size_t k = 0; k <= m; k++)
		nx[k] = k;
	for (size_t i = 0; i < n; i++) {
		size_t k0, k1;
		uint32_t rule = iv[i].rule;
		piece_span(b, m, &iv[i], &k0, &k1);
		for (size_t k = next_open(nx, k0); k <= k1; k = next_open(nx, k + 1)) {
			if (lastr[k] != rule) {
				lastr[k] = rule;
				if (fill)
					c->rules[cnt[k]++] = rule;
				else if (cnt[k]++, ++total > PCAND_MAX_ENTRIES)
					return -E2BIG;
			}
			if (final[rule])
				nx[k] = k + 1;
		}
	}
	return 0;
}

int pcand_build(struct pcand *c, const struct ptab_iv *iv, size_t n, const uint8_t *final, uint8_t *seen)
{
	memset(c, 0, sizeof(*c));
	if (!n)
		return 0;
	int rc = -ENOMEM;
	size_t m;
	uint64_t *b = cut_points(iv, n, &m);
	uint32_t *cnt = b ? calloc(m, sizeof(*cnt)) : NULL;
	uint32_t *lastr = cnt ? malloc(m * sizeof(*lastr)) : NULL;
	size_t *nx = lastr ? malloc((m + 1) * sizeof(*nx)) : NULL;
	if (!nx)
		goto out;
	if ((rc = pcand_pass(c, b, m, iv, n, final, cnt, lastr, nx, false)) < 0)
		goto out;
	rc = -ENOMEM;
	c->start = malloc(m * sizeof(*c->start));
	c->off = malloc((m + 1) * sizeof(*c->off));
	if (!c->start || !c->off)
		goto out;
	c->off[0] = 0;
	for (size_t k = 0; k < m; k++) {
		c->start[k] = (uint32_t)b[k];
		c->off[k + 1] = c->off[k] + cnt[k];
		cnt[k] = c->off[k]; /* now: where piece k's next candidate goes */
	}
	if (!(c->rules = malloc((c->off[m] ? c->off[m] : 1) * sizeof(*c->rules))))
		goto out;
	pcand_pass(c, b, m, iv, n, final, cnt, lastr, nx, true);
	c->n = m;
	if (seen)
		for (uint32_t i = 0; i < c->off[m]; i++)
			seen[c->rules[i]] = 1;
	rc = 0;
out:
	free(b);
	free(cnt);
	free(lastr);
	free(nx);
	if (rc < 0)
		pcand_free(c);
	return rc;
}

void pcand_free(struct pcand *c)
{
	free(c->start);
	free(c->off);
	free(c->rules);
	memset(c, 0, sizeof(*c));
}

const uint32_t *pcand_lookup(const struct pcand *c, uint32_t port, size_t *count)
{
	*count = 0;
	if (!c->n || port < c->start[0])
		return NULL;
	size_t lo = 0, hi = c->n;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->start[mid] <= port)
			lo = mid;
		else
			hi = mid;
	}
	*count = c->off[lo + 1] - c->off[lo];
	return c->rules + c->off[lo];
}
