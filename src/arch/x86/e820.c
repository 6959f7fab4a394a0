#include "arch/x86/e820.h"

#include <errno.h>

#include "arch/x86/layout.h"

/* Each region yields at most two RAM pieces (below and above the carve-out);
 * plus the one reserved entry. */
#define E820_MAX_PIECES (2 * GMEM_MAX_REGIONS + 1)

static void add_piece(struct e820_entry *p, unsigned *n, uint64_t start, uint64_t end, uint32_t type)
{
	if (end <= start)
		return;
	/* Insertion keeps the list sorted by address; the pieces never
	 * overlap because gmem regions don't and the carve-out is cut out
	 * of every RAM piece. */
	unsigned i = *n;
	while (i > 0 && p[i - 1].addr > start) {
		p[i] = p[i - 1];
		i--;
	}
	p[i] = (struct e820_entry){ .addr = start, .size = end - start, .type = type };
	(*n)++;
}

int e820_build(const struct gmem *m, struct e820_entry *out, unsigned max)
{
	const uint64_t lo = LAYOUT_EBDA_START, hi = LAYOUT_HIMEM;
	struct e820_entry p[E820_MAX_PIECES];
	unsigned n = 0;

	/* The carve-out is listed even when no RAM lies under it: it is the
	 * PC's legacy hole (EBDA, VGA, ROMs, BIOS + ACPI tables), which the
	 * kernel must never take as RAM, whatever backs it. */
	add_piece(p, &n, lo, hi, E820_RESERVED);
	for (unsigned i = 0; i < m->nr; i++) {
		uint64_t start = m->r[i].gpa, end = start + m->r[i].size;
		if (end <= lo || start >= hi) {
			add_piece(p, &n, start, end, E820_RAM);
			continue;
		}
		add_piece(p, &n, start, lo, E820_RAM);
		add_piece(p, &n, hi, end, E820_RAM);
	}

	unsigned k = 0;
	for (unsigned i = 0; i < n; i++) {
		/* gmem lets regions touch; the guest only needs to see RAM. */
		if (k > 0 && p[i].type == E820_RAM && out[k - 1].type == E820_RAM &&
		    out[k - 1].addr + out[k - 1].size == p[i].addr) {
			out[k - 1].size += p[i].size;
			continue;
		}
		if (k == max)
			return -ENOSPC;
		out[k++] = p[i];
	}
	return (int)k;
}
