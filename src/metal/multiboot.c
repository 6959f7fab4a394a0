/* multiboot — see multiboot.h. Layout from the Multiboot 0.6.96 spec,
 * section 3.3 (the boot information format). */
#include <stdio.h>
#include <string.h>

#include "metal/multiboot.h"

#define MBI_MEM (1u << 0)
#define MBI_CMDLINE (1u << 2)
#define MBI_MODS (1u << 3)
#define MBI_MMAP (1u << 6)

struct mbi {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
} __attribute__((packed));

struct mbi_mod {
	uint32_t start, end, string, reserved;
} __attribute__((packed));

struct mbi_mmap {
	uint32_t size;
	uint64_t base, len;
	uint32_t type;
} __attribute__((packed));

static void copy_str(char *dst, uint32_t src)
{
	dst[0] = 0;
	if (!src)
		return;
	const char *s = (const char *)(uintptr_t)src;
	size_t n = strnlen(s, MB_STR_MAX - 1);
	memcpy(dst, s, n);
	dst[n] = 0;
}

int mb_parse(uint32_t magic, uint32_t addr, struct mb_info *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (magic != MB_BOOT_MAGIC || !addr) {
		snprintf(err, errlen, "not started by a multiboot loader (magic %#x)", magic);
		return -1;
	}
	const struct mbi *mi = (const struct mbi *)(uintptr_t)addr;
	if (mi->flags & MBI_CMDLINE)
		copy_str(out->cmdline, mi->cmdline);
	if (mi->flags & MBI_MODS) {
		const struct mbi_mod *m = (const struct mbi_mod *)(uintptr_t)mi->mods_addr;
		for (uint32_t i = 0; i < mi->mods_count; i++) {
			if (out->nr_mods == MB_MAX_MODULES) {
				snprintf(err, errlen, "more than %d multiboot modules", MB_MAX_MODULES);
				return -1;
			}
			if (m[i].end < m[i].start) {
				snprintf(err, errlen, "multiboot module %u ends before it starts", i);
				return -1;
			}
			struct mb_module *o = &out->mods[out->nr_mods++];
			o->start = m[i].start;
			o->end = m[i].end;
			copy_str(o->string, m[i].string);
		}
	}
	if (mi->flags & MBI_MMAP) {
		uint32_t off = 0;
		while (off + sizeof(struct mbi_mmap) <= mi->mmap_length + 0u) {
			const struct mbi_mmap *e = (const struct mbi_mmap *)(uintptr_t)(mi->mmap_addr + off);
			if (e->type == 1 && e->len && out->nr_ram < MB_MAX_RANGES)
				out->ram[out->nr_ram++] = (struct mb_range){ e->base, e->len };
			if (e->size < 20)
				break; /* a malformed entry: stop rather than loop */
			off += e->size + 4;
		}
	} else if (mi->flags & MBI_MEM) {
		out->ram[out->nr_ram++] = (struct mb_range){ 0x100000, (uint64_t)mi->mem_upper << 10 };
	}
	if (!out->nr_ram) {
		snprintf(err, errlen, "the loader gave no memory map");
		return -1;
	}
	return 0;
}
