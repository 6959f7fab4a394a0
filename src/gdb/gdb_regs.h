/* gdb_regs — the x86-64 register file gdb is told about (the target
 * description served as target.xml) and its mapping onto struct vcpu_state:
 * register n of g/G/p/P is the n-th <reg> of the description. */
#ifndef VIGIL_GDB_REGS_H
#define VIGIL_GDB_REGS_H

#include <stdint.h>

#include "arch/x86/cpu_state.h"

/* gdb's amd64 core (16 GPRs, rip, eflags, 6 selectors, x87), fs_base and
 * gs_base, then cr0 cr2 cr3 cr4 cr8 efer. */
#define GDB_NR_REGS 48
#define GDB_REG_MAX 10 /* bytes of the widest (st0..st7) */

extern const char gdb_target_xml[];

/* Register r's size in bytes, its value little-endian into out, and a
 * write of it from in (gdb_reg_size(r) bytes each); r < GDB_NR_REGS. */
unsigned gdb_reg_size(unsigned r);
void gdb_reg_get(struct vcpu_state *s, unsigned r, uint8_t *out);
void gdb_reg_set(struct vcpu_state *s, unsigned r, const uint8_t *in);

#endif
