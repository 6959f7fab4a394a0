/* elf_core — the ELF core layout (see elf_core.h):
 *   ELF header | program headers | [section header 0] | notes | pad to 4 KiB | RAM regions
 * A Linux guest's kernel half can take more than 65535 segments (every
 * vmalloc page is one): then e_phnum is PN_XNUM and the count is in the one
 * section header's sh_info, as Linux's own core dumps do it.
 * The note and register layouts are Linux's x86-64 `struct elf_prstatus`
 * and `struct user_regs_struct`, written field by field at their offsets
 * (little-endian host and guest), so no host header is needed. */
#include "arch/x86/elf_core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/cpu_state.h"

#define EHDR_SIZE     64
#define PHDR_SIZE     56
#define PRSTATUS_SIZE 336
#define PRSTATUS_PID  32
#define PRSTATUS_REG  112
#define NOTE_NAME     "CORE"
#define NOTE_SIZE     (12 + 8 + PRSTATUS_SIZE) /* header, "CORE\0" padded to 8, desc */
#define NT_PRSTATUS   1
#define PT_LOAD	      1
#define PT_NOTE	      4
#define PF_X	      1
#define PF_W	      2
#define PF_R	      4
#define PAGE	      4096ull
#define SHDR_SIZE     64
#define PN_XNUM	      0xffff

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint64_t notes_size(const struct elf_core *c)
{
	return (uint64_t)c->ncpus * NOTE_SIZE;
}

static uint64_t nr_phdrs(const struct elf_core *c)
{
	return 1 + c->mem->nr + c->nmaps;
}

/* Where the notes start: after the program headers and, with PN_XNUM, the
 * section header that holds their count. */
static uint64_t notes_start(const struct elf_core *c)
{
	uint64_t nph = nr_phdrs(c);
	return EHDR_SIZE + nph * PHDR_SIZE + (nph >= PN_XNUM ? SHDR_SIZE : 0);
}

static uint64_t data_start(const struct elf_core *c)
{
	uint64_t end = notes_start(c) + notes_size(c);
	return (end + PAGE - 1) & ~(PAGE - 1);
}

/* The file offset of guest physical gpa (which must be RAM), 0 if none. */
static uint64_t file_off(const struct elf_core *c, uint64_t gpa)
{
	uint64_t off = data_start(c);
	for (unsigned i = 0; i < c->mem->nr; i++) {
		const struct gmem_region *r = &c->mem->r[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return off + (gpa - r->gpa);
		off += r->size;
	}
	return 0;
}

uint64_t elf_core_size(const struct elf_core *c)
{
	return data_start(c) + c->mem->total;
}

static void ehdr(uint8_t *p, uint64_t phnum)
{
	static const uint8_t ident[16] = { 0x7f, 'E', 'L', 'F', 2 /* 64-bit */, 1 /* LE */, 1 /* version */ };
	memcpy(p, ident, 16);
	put16(p + 16, 4);	  /* ET_CORE */
	put16(p + 18, 62);	  /* EM_X86_64 */
	put32(p + 20, 1);	  /* EV_CURRENT */
	put64(p + 32, EHDR_SIZE); /* e_phoff */
	put16(p + 52, EHDR_SIZE);
	put16(p + 54, PHDR_SIZE);
	put16(p + 58, SHDR_SIZE);
	if (phnum < PN_XNUM) {
		put16(p + 56, (uint16_t)phnum);
		return;
	}
	/* Section header 0 (SHT_NULL) right after the program headers: sh_size
	 * = e_shnum (1), sh_link = e_shstrndx (0), sh_info = the real count. */
	uint64_t shoff = EHDR_SIZE + phnum * PHDR_SIZE;
	put16(p + 56, PN_XNUM);
	put64(p + 40, shoff);
	put16(p + 60, 1);
	put64(p + shoff + 32, 1);
	put32(p + shoff + 44, (uint32_t)phnum);
}

static void phdr(uint8_t *p, uint32_t type, uint32_t flags, uint64_t off, uint64_t vaddr, uint64_t paddr,
		 uint64_t size, uint64_t align)
{
	put32(p, type);
	put32(p + 4, flags);
	put64(p + 8, off);
	put64(p + 16, vaddr);
	put64(p + 24, paddr);
	put64(p + 32, size); /* p_filesz */
	put64(p + 40, size); /* p_memsz */
	put64(p + 48, align);
}

/* user_regs_struct: r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi
 * rdi orig_rax rip cs eflags rsp ss fs_base gs_base ds es fs gs. */
static void prstatus(uint8_t *p, const struct vcpu_state *s, unsigned cpu)
{
	const uint64_t regs[27] = {
		s->r15, s->r14, s->r13, s->r12, s->rbp, s->rbx, s->r11, s->r10, s->r9,
		s->r8, s->rax, s->rcx, s->rdx, s->rsi, s->rdi, ~0ull, s->rip, s->cs.selector,
		s->rflags, s->rsp, s->ss.selector, s->fs.base, s->gs.base, s->ds.selector, s->es.selector,
		s->fs.selector, s->gs.selector,
	};
	put32(p + PRSTATUS_PID, cpu + 1);
	for (unsigned i = 0; i < 27; i++)
		put64(p + PRSTATUS_REG + i * 8, regs[i]);
}

int elf_core_write(const struct elf_core *c, elf_core_write_fn write, void *ctx)
{
	uint64_t nph = nr_phdrs(c);
	if (nph > UINT32_MAX) /* sh_info's width */
		return -E2BIG;
	uint64_t head = notes_start(c), start = data_start(c);
	uint8_t *h = calloc(1, start);
	if (!h)
		return -ENOMEM;
	ehdr(h, nph);
	uint8_t *ph = h + EHDR_SIZE;
	phdr(ph, PT_NOTE, 0, head, 0, 0, notes_size(c), 4);
	ph += PHDR_SIZE;
	uint64_t off = start;
	for (unsigned i = 0; i < c->mem->nr; i++, ph += PHDR_SIZE) {
		const struct gmem_region *r = &c->mem->r[i];
		phdr(ph, PT_LOAD, PF_R | PF_W | PF_X, off, r->gpa, r->gpa, r->size, PAGE);
		off += r->size;
	}
	for (size_t i = 0; i < c->nmaps; i++, ph += PHDR_SIZE) {
		const struct elf_core_map *mp = &c->maps[i];
		phdr(ph, PT_LOAD, PF_R | PF_W | PF_X, file_off(c, mp->gpa), mp->vaddr, mp->gpa, mp->size, PAGE);
	}
	uint8_t *n = h + head;
	for (unsigned i = 0; i < c->ncpus; i++, n += NOTE_SIZE) {
		put32(n, sizeof(NOTE_NAME));
		put32(n + 4, PRSTATUS_SIZE);
		put32(n + 8, NT_PRSTATUS);
		memcpy(n + 12, NOTE_NAME, sizeof(NOTE_NAME));
		prstatus(n + 20, &c->cpus[i], i);
	}
	int r = write(ctx, 0, h, start);
	free(h);
	off = start;
	for (unsigned i = 0; i < c->mem->nr && !r; i++) {
		r = write(ctx, off, c->mem->r[i].host, c->mem->r[i].size);
		off += c->mem->r[i].size;
	}
	return r;
}

/* ---- the kernel's mappings ------------------------------------------------ */

struct scan {
	const struct gmem *mem;
	struct elf_core_map *maps;
	size_t n, cap, max;
	int err;
};

/* One leaf: its pieces in RAM appended, merged with the previous run when
 * both addresses continue it. */
static void add_leaf(struct scan *s, uint64_t va, uint64_t gpa, uint64_t size)
{
	for (unsigned i = 0; i < s->mem->nr && !s->err; i++) {
		const struct gmem_region *r = &s->mem->r[i];
		uint64_t lo = gpa > r->gpa ? gpa : r->gpa;
		uint64_t hi = gpa + size < r->gpa + r->size ? gpa + size : r->gpa + r->size;
		if (lo >= hi)
			continue;
		uint64_t v = va + (lo - gpa), len = hi - lo;
		struct elf_core_map *last = s->n ? &s->maps[s->n - 1] : NULL;
		if (last && last->vaddr + last->size == v && last->gpa + last->size == lo && last->gpa >= r->gpa) {
			last->size += len;
			continue;
		}
		if (s->n == s->max)
			return;
		if (s->n == s->cap) {
			size_t cap = s->cap ? s->cap * 2 : 64;
			struct elf_core_map *m = realloc(s->maps, cap * sizeof(*m));
			if (!m) {
				s->err = -ENOMEM;
				return;
			}
			s->maps = m, s->cap = cap;
		}
		s->maps[s->n++] = (struct elf_core_map){ v, lo, len };
	}
}

#define PTE_P	 1ull
#define PTE_PS	 0x80ull
#define PTE_ADDR 0x000ffffffffff000ull

/* The table at `table` maps 512 slots of 1 << shift bytes from `va`. A
 * table that is not RAM, or a reserved PS high up, is skipped: the dump
 * shows what can be read. */
static void scan_table(struct scan *s, uint64_t table, unsigned shift, uint64_t va, unsigned from, unsigned to)
{
	const uint64_t *t = gmem_ptr(s->mem, table, PAGE);
	if (!t)
		return;
	for (unsigned i = from; i <= to && !s->err && s->n < s->max; i++) {
		uint64_t e;
		memcpy(&e, &t[i], 8);
		uint64_t v = va + ((uint64_t)i << shift);
		if (!(e & PTE_P))
			continue;
		if (shift == 12 || ((e & PTE_PS) && shift <= 30)) {
			uint64_t size = 1ull << shift;
			add_leaf(s, v, e & PTE_ADDR & ~(size - 1), size);
		} else if (!(e & PTE_PS)) {
			scan_table(s, e & PTE_ADDR, shift - 9, v, 0, 511);
		}
	}
}

static int by_vaddr(const void *a, const void *b)
{
	uint64_t x = ((const struct elf_core_map *)a)->vaddr, y = ((const struct elf_core_map *)b)->vaddr;
	return x < y ? -1 : x > y;
}

int elf_core_kernel_maps(const struct gmem *m, const struct pw_regs *r, size_t max, struct elf_core_map **maps,
			 size_t *n)
{
	struct scan s = { .mem = m, .max = max };
	*maps = NULL;
	*n = 0;
	bool paging = r->cr0 & (1ull << 31), lma = r->efer & (1ull << 10);
	if (!paging || !lma)
		return 0;
	bool la57 = r->cr4 & (1ull << 12);
	unsigned top = la57 ? 48 : 39;
	/* The upper half starts at slot 256 of the top table, sign-extended.
	 * The last slot first: it holds the kernel image and its modules,
	 * which must make it under the cap whatever vmalloc holds. */
	uint64_t base = la57 ? 0xfe00000000000000ull : 0xffff000000000000ull;
	scan_table(&s, r->cr3 & PTE_ADDR, top, base, 511, 511);
	scan_table(&s, r->cr3 & PTE_ADDR, top, base, 256, 510);
	if (s.err) {
		free(s.maps);
		return s.err;
	}
	if (s.n)
		qsort(s.maps, s.n, sizeof(*s.maps), by_vaddr);
	*maps = s.maps;
	*n = s.n;
	return 0;
}
