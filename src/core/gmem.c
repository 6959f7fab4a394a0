#include "core/gmem.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

int gmem_add(struct gmem *m, gpa_t gpa, uint64_t size, void *host)
{
	if (size == 0 || host == NULL || gpa + size < gpa)
		return -EINVAL;
	if (m->nr == GMEM_MAX_REGIONS)
		return -ENOSPC;
	for (unsigned i = 0; i < m->nr; i++) {
		const struct gmem_region *r = &m->r[i];
		if (gpa < r->gpa + r->size && r->gpa < gpa + size)
			return -EEXIST;
	}
	m->r[m->nr++] = (struct gmem_region){ .gpa = gpa, .size = size, .host = host };
	m->total += size;
	return 0;
}

void *gmem_ptr(const struct gmem *m, gpa_t gpa, uint64_t len)
{
	if (len == 0)
		return NULL;
	for (unsigned i = 0; i < m->nr; i++) {
		const struct gmem_region *r = &m->r[i];
		/* Written so that no sum can overflow: gpa - r->gpa is only
		 * computed once gpa >= r->gpa. */
		if (gpa < r->gpa)
			continue;
		uint64_t off = gpa - r->gpa;
		if (off >= r->size || len > r->size - off)
			continue;
		return r->host + off;
	}
	return NULL;
}

int gmem_read(const struct gmem *m, gpa_t gpa, void *dst, uint64_t len)
{
	const void *p = gmem_ptr(m, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int gmem_write(const struct gmem *m, gpa_t gpa, const void *src, uint64_t len)
{
	void *p = gmem_ptr(m, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	gmem_mark_dirty(m, gpa, len);
	return 0;
}

static uint64_t region_words(const struct gmem_region *r)
{
	return (r->size / GMEM_PAGE + 63) / 64;
}

int gmem_dirty_track(struct gmem *m, bool on)
{
	for (unsigned i = 0; i < m->nr; i++) {
		struct gmem_region *r = &m->r[i];
		if (on && !r->dirty) {
			r->dirty = calloc(region_words(r), sizeof(uint64_t));
			if (!r->dirty) {
				gmem_dirty_track(m, false);
				return -ENOMEM;
			}
		} else if (!on) {
			free((void *)r->dirty);
			r->dirty = NULL;
		}
	}
	return 0;
}

void gmem_mark_dirty(const struct gmem *m, gpa_t gpa, uint64_t len)
{
	if (len == 0)
		return;
	for (unsigned i = 0; i < m->nr; i++) {
		const struct gmem_region *r = &m->r[i];
		if (!r->dirty || gpa < r->gpa || gpa - r->gpa >= r->size)
			continue;
		uint64_t first = (gpa - r->gpa) / GMEM_PAGE;
		uint64_t end = len > r->size - (gpa - r->gpa) ? r->size : gpa - r->gpa + len;
		uint64_t last = (end - 1) / GMEM_PAGE;
		for (uint64_t pg = first; pg <= last; pg++)
			atomic_fetch_or_explicit(&r->dirty[pg / 64], 1ULL << (pg % 64), memory_order_relaxed);
		return;
	}
}

void gmem_mark_dirty_host(const struct gmem *m, const void *p, uint64_t len)
{
	uintptr_t a = (uintptr_t)p;
	for (unsigned i = 0; i < m->nr; i++) {
		const struct gmem_region *r = &m->r[i];
		uintptr_t base = (uintptr_t)r->host;
		if (a >= base && a - base < r->size) {
			gmem_mark_dirty(m, r->gpa + (a - base), len);
			return;
		}
	}
}

void gmem_dirty_take(const struct gmem *m, unsigned i, uint64_t *out)
{
	if (i >= m->nr || !m->r[i].dirty)
		return;
	const struct gmem_region *r = &m->r[i];
	for (uint64_t w = 0; w < region_words(r); w++)
		out[w] |= atomic_exchange_explicit(&r->dirty[w], 0, memory_order_relaxed);
}
