/* mem — the machine's free RAM as one bump allocator per usable range: the
 * multiboot map, less the first MiB (firmware, the loader's info block), the
 * image itself and every module. Nothing is freed: what vigil-metal
 * allocates (guest RAM, VMCBs, nested page tables) lives as long as the
 * machine. */
#include <string.h>

#include "metal/mem.h"
#include "metal/metal.h"

extern char __image_start[], __image_end[];

static struct mb_range free_ranges[MB_MAX_RANGES * 2];
static unsigned nr_free;

static void add_free(uint64_t base, uint64_t end)
{
	if (end > base && nr_free < sizeof(free_ranges) / sizeof(free_ranges[0]))
		free_ranges[nr_free++] = (struct mb_range){ base, end - base };
}

/* Cuts [cut_lo, cut_hi) out of every free range. */
static void carve(uint64_t cut_lo, uint64_t cut_hi)
{
	unsigned n = nr_free;
	for (unsigned i = 0; i < n; i++) {
		uint64_t lo = free_ranges[i].base, hi = lo + free_ranges[i].len;
		if (cut_hi <= lo || cut_lo >= hi)
			continue;
		free_ranges[i].len = 0;
		add_free(lo, cut_lo > lo ? cut_lo : lo);
		add_free(cut_hi < hi ? cut_hi : hi, hi);
	}
}

void metal_mem_init(const struct mb_info *mb)
{
	nr_free = 0;
	for (unsigned i = 0; i < mb->nr_ram; i++) {
		uint64_t lo = mb->ram[i].base, hi = lo + mb->ram[i].len;
		if (hi > METAL_MAPPED_END)
			hi = METAL_MAPPED_END; /* the boot tables map 4 GiB */
		add_free(lo, hi);
	}
	carve(0, 0x100000);
	carve((uintptr_t)__image_start, (uintptr_t)__image_end);
	for (unsigned i = 0; i < mb->nr_mods; i++)
		carve(mb->mods[i].start & ~0xfffull, (mb->mods[i].end + 0xfff) & ~0xfffull);
}

void *metal_alloc_pages(size_t bytes, size_t align)
{
	if (!bytes || (align & (align - 1)))
		return NULL;
	if (align < 4096)
		align = 4096;
	bytes = (bytes + 4095) & ~(size_t)4095;
	/* The highest range that fits: guest RAM then comes from the top,
	 * leaving low memory to the small tables. */
	for (unsigned i = nr_free; i-- > 0;) {
		struct mb_range *r = &free_ranges[i];
		uint64_t end = r->base + r->len;
		if (r->len < bytes)
			continue;
		uint64_t start = (end - bytes) & ~(uint64_t)(align - 1);
		if (start < r->base)
			continue;
		/* What lies above the allocation stays free. */
		add_free(start + bytes, end);
		r->len = start - r->base;
		void *p = (void *)(uintptr_t)start;
		memset(p, 0, bytes);
		return p;
	}
	return NULL;
}

uint64_t metal_free_bytes(void)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < nr_free; i++)
		sum += free_ranges[i].len;
	return sum;
}
