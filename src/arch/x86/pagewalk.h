/* pagewalk — the x86 page-table walk, in portable code: a guest virtual
 * address to a guest physical one, as the vCPU's MMU would, reading the
 * tables through gmem. For the introspection API (/vigil/memory?gva=,
 * /vigil/vcpus/{n}/translate), the gdb stub (memory by virtual address,
 * software breakpoints) and core dumps; a bare-metal backend needs the same.
 * Paging modes: off (CR0.PG=0: identity), 32-bit (with 4 MiB PSE pages),
 * PAE, 4-level and 5-level (CR4.LA57) long mode; 2 MiB and 1 GiB pages; the
 * NX, writable and user bits accumulated along the walk. Pure: no state. */
#ifndef VIGIL_ARCH_X86_PAGEWALK_H
#define VIGIL_ARCH_X86_PAGEWALK_H

#include <stdbool.h>
#include <stdint.h>

#include "core/gmem.h"

struct vcpu_state;

struct pw_regs {
	uint64_t cr0, cr3, cr4, efer;
};

struct pw_result {
	uint64_t gpa;       /* the translation of the address given */
	uint64_t page_size; /* 4096, 2 MiB, 4 MiB, 1 GiB; identity: 4096 */
	bool writable, user, nx;
	int levels;         /* table levels walked (0: paging off) */
};

enum pw_error {
	PW_OK = 0,
	PW_NOT_PRESENT = -1, /* a table entry on the way is not present */
	PW_BAD_TABLE = -2,   /* a table lies outside guest RAM */
	PW_RESERVED = -3,    /* reserved bits set / non-canonical address */
	PW_NOT_RAM = -4,     /* pw_read/pw_write: the page maps outside guest RAM */
};

/* The paging registers of a vCPU state. */
struct pw_regs pw_regs_of(const struct vcpu_state *s);
/* Walks `gva`; PW_OK and *res filled, or a negative enum pw_error. */
int pw_translate(const struct gmem *m, const struct pw_regs *r, uint64_t gva, struct pw_result *res);
const char *pw_error_name(int e);

/* Reads / writes `len` bytes at virtual `gva`, page by page; 0, or the
 * pw_error of the first page that does not translate (nothing written
 * then beyond the bytes before it). */
int pw_read(const struct gmem *m, const struct pw_regs *r, uint64_t gva, void *dst, uint64_t len);
int pw_write(const struct gmem *m, const struct pw_regs *r, uint64_t gva, const void *src, uint64_t len);

#endif
