/* pagewalk — the x86 MMU's walk in software (see pagewalk.h). The walk only
 * reads: accessed and dirty bits are left as they are, as KVM_TRANSLATE
 * does. Every table entry is fetched through gmem_ptr(), so a guest's cr3 or
 * table entry pointing anywhere is a PW_BAD_TABLE, never a stray read. */
#include "arch/x86/pagewalk.h"

#include <string.h>

#include "arch/x86/cpu_state.h"

#define CR0_PG	 (1ull << 31)
#define CR4_PSE	 (1ull << 4)
#define CR4_PAE	 (1ull << 5)
#define CR4_LA57 (1ull << 12)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define EFER_NXE (1ull << 11)

#define PTE_P  (1ull << 0)
#define PTE_W  (1ull << 1)
#define PTE_U  (1ull << 2)
#define PTE_PS (1ull << 7)
#define PTE_NX (1ull << 63)
/* Bits 51:12: the next table or the page frame (MAXPHYADDR at most 52). */
#define PTE_ADDR 0x000ffffffffff000ull

#define KIB4 0x1000ull
#define MIB2 0x200000ull
#define MIB4 0x400000ull
#define GIB1 0x40000000ull

struct pw_regs pw_regs_of(const struct vcpu_state *s)
{
	return (struct pw_regs){ .cr0 = s->cr0, .cr3 = s->cr3, .cr4 = s->cr4, .efer = s->efer };
}

const char *pw_error_name(int e)
{
	switch (e) {
	case PW_OK: return "ok";
	case PW_NOT_PRESENT: return "not present";
	case PW_BAD_TABLE: return "page table outside guest memory";
	case PW_RESERVED: return "reserved bit set or non-canonical address";
	case PW_NOT_RAM: return "maps to an address outside guest memory";
	}
	return "unknown page-walk error";
}

static int entry64(const struct gmem *m, uint64_t table, unsigned idx, uint64_t *e)
{
	const void *p = gmem_ptr(m, table + (uint64_t)idx * 8, 8);
	if (!p)
		return PW_BAD_TABLE;
	memcpy(e, p, 8);
	return PW_OK;
}

static int entry32(const struct gmem *m, uint64_t table, unsigned idx, uint32_t *e)
{
	const void *p = gmem_ptr(m, table + (uint64_t)idx * 4, 4);
	if (!p)
		return PW_BAD_TABLE;
	memcpy(e, p, 4);
	return PW_OK;
}

static void leaf(struct pw_result *res, uint64_t base, uint64_t size, uint64_t gva)
{
	res->page_size = size;
	res->gpa = (base & ~(size - 1)) | (gva & (size - 1));
}

/* PAE and long mode share 8-byte entries: walks from `table` with `levels`
 * levels left, the top one indexed at bit `shift`. Big pages are allowed
 * at 1 GiB (shift 30) and 2 MiB (shift 21) only. */
static int walk64(const struct gmem *m, bool nxe, uint64_t table, int levels, unsigned shift, uint64_t gva,
		  struct pw_result *res)
{
	for (; levels > 0; levels--, shift -= 9) {
		uint64_t e;
		int r = entry64(m, table, (unsigned)(gva >> shift) & 511, &e);
		if (r)
			return r;
		res->levels++;
		if (!(e & PTE_P))
			return PW_NOT_PRESENT;
		if ((e & PTE_NX) && !nxe)
			return PW_RESERVED;
		res->writable = res->writable && (e & PTE_W);
		res->user = res->user && (e & PTE_U);
		res->nx = res->nx || (e & PTE_NX);
		if (shift == 12) {
			leaf(res, e & PTE_ADDR, KIB4, gva);
			return PW_OK;
		}
		if (e & PTE_PS) {
			if (shift > 30)
				return PW_RESERVED; /* PS in a PML5E or PML4E */
			uint64_t size = 1ull << shift;
			/* Bit 12 is PAT; the bits from 13 up to the page's own
			 * alignment must be clear. */
			if (e & (size - 1) & ~0x1fffull & PTE_ADDR)
				return PW_RESERVED;
			leaf(res, e & PTE_ADDR, size, gva);
			return PW_OK;
		}
		table = e & PTE_ADDR;
	}
	return PW_RESERVED; /* not reached: the last level is always a leaf */
}

static int walk_long(const struct gmem *m, const struct pw_regs *r, uint64_t gva, struct pw_result *res)
{
	bool la57 = r->cr4 & CR4_LA57;
	unsigned top = la57 ? 56 : 47;
	/* Canonical: bits 63..top all equal to bit top. */
	uint64_t hi = gva >> top;
	if (hi != 0 && hi != (~0ull >> top))
		return PW_RESERVED;
	return walk64(m, r->efer & EFER_NXE, r->cr3 & PTE_ADDR, la57 ? 5 : 4, la57 ? 48 : 39, gva, res);
}

/* PAE: four PDPTEs at cr3 (32-byte aligned); a PDPTE has no W/U/NX bits. */
static int walk_pae(const struct gmem *m, const struct pw_regs *r, uint64_t gva, struct pw_result *res)
{
	uint64_t pdpte;
	if (gva >> 32)
		return PW_RESERVED;
	int e = entry64(m, r->cr3 & 0xffffffe0ull, (unsigned)(gva >> 30) & 3, &pdpte);
	if (e)
		return e;
	res->levels = 1;
	if (!(pdpte & PTE_P))
		return PW_NOT_PRESENT;
	if (pdpte & (0x1e6ull | PTE_NX)) /* bits 2:1, 8:5 and 63 are reserved */
		return PW_RESERVED;
	return walk64(m, r->efer & EFER_NXE, pdpte & PTE_ADDR, 2, 21, gva, res);
}

/* 32-bit paging: 4-byte entries, 4 MiB pages with CR4.PSE (PSE-36: bits
 * 20:13 of the PDE are physical bits 39:32). */
static int walk_32(const struct gmem *m, const struct pw_regs *r, uint64_t gva, struct pw_result *res)
{
	uint32_t pde, pte;
	if (gva >> 32)
		return PW_RESERVED;
	int e = entry32(m, r->cr3 & 0xfffff000ull, (unsigned)(gva >> 22) & 1023, &pde);
	if (e)
		return e;
	res->levels = 1;
	if (!(pde & PTE_P))
		return PW_NOT_PRESENT;
	res->writable = pde & PTE_W;
	res->user = pde & PTE_U;
	if ((pde & PTE_PS) && (r->cr4 & CR4_PSE)) {
		if (pde & (1u << 21))
			return PW_RESERVED;
		uint64_t base = (pde & 0xffc00000u) | ((uint64_t)((pde >> 13) & 0xff) << 32);
		leaf(res, base, MIB4, gva);
		return PW_OK;
	}
	if ((e = entry32(m, pde & 0xfffff000u, (unsigned)(gva >> 12) & 1023, &pte)))
		return e;
	res->levels = 2;
	if (!(pte & PTE_P))
		return PW_NOT_PRESENT;
	res->writable = res->writable && (pte & PTE_W);
	res->user = res->user && (pte & PTE_U);
	leaf(res, pte & 0xfffff000u, KIB4, gva);
	return PW_OK;
}

int pw_translate(const struct gmem *m, const struct pw_regs *r, uint64_t gva, struct pw_result *res)
{
	*res = (struct pw_result){ .writable = true, .user = true };
	if (!(r->cr0 & CR0_PG)) {
		leaf(res, gva, KIB4, gva);
		return PW_OK;
	}
	if ((r->efer & EFER_LMA) || (r->efer & EFER_LME))
		return walk_long(m, r, gva, res);
	if (r->cr4 & CR4_PAE)
		return walk_pae(m, r, gva, res);
	return walk_32(m, r, gva, res);
}

/* One translation per 4 KiB: a big page may straddle the end of a RAM
 * region, and gmem copies only within one. */
static int pw_copy(const struct gmem *m, const struct pw_regs *r, uint64_t gva, uint8_t *dst,
		   const uint8_t *src, uint64_t len)
{
	while (len) {
		struct pw_result res;
		uint64_t n = KIB4 - (gva & (KIB4 - 1));
		if (n > len)
			n = len;
		int e = pw_translate(m, r, gva, &res);
		if (e)
			return e;
		void *p = gmem_ptr(m, res.gpa, n);
		if (!p)
			return PW_NOT_RAM;
		if (src) {
			memcpy(p, src, n), src += n;
			gmem_mark_dirty(m, res.gpa, n); /* a debugger's write: Diff snapshots take it */
		} else
			memcpy(dst, p, n), dst += n;
		gva += n;
		len -= n;
	}
	return PW_OK;
}

int pw_read(const struct gmem *m, const struct pw_regs *r, uint64_t gva, void *dst, uint64_t len)
{
	return pw_copy(m, r, gva, dst, NULL, len);
}

int pw_write(const struct gmem *m, const struct pw_regs *r, uint64_t gva, const void *src, uint64_t len)
{
	return pw_copy(m, r, gva, NULL, src, len);
}
