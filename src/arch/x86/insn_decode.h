/* insn_decode — the few x86 instructions that reach emulated MMIO, decoded
 * from their bytes: a backend without decode assists (SVM under QEMU, or
 * any AMD-V part without them) gets only "this guest-physical address
 * faulted" and must itself work out the access — its width, its direction,
 * the register or immediate involved — and the instruction's length, to
 * step past it. The subset is what Linux's readX/writeX and the device
 * drivers compile to: MOV (88, 89, 8A, 8B, C6 /0, C7 /0, A0-A3 moffs),
 * MOVZX and MOVSX (0F B6/B7/BE/BF), with the legacy prefixes and REX.
 * Anything else is refused, so the backend can fail the access visibly.
 * Pure: no state, no host calls (unit-tested in tests/unit/test_insn_decode.c). */
#ifndef VIGIL_ARCH_X86_INSN_DECODE_H
#define VIGIL_ARCH_X86_INSN_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The code segment's default operand and address size, in bytes:
 * real mode and 16-bit protected mode 2, 32-bit protected mode 4, long mode 8. */
enum insn_mode { INSN_MODE16 = 2, INSN_MODE32 = 4, INSN_MODE64 = 8 };

#define INSN_MAX_LEN 15

/* General registers in the instruction set's encoding order. */
enum insn_gpr {
	GPR_RAX, GPR_RCX, GPR_RDX, GPR_RBX, GPR_RSP, GPR_RBP, GPR_RSI, GPR_RDI,
	GPR_R8, GPR_R9, GPR_R10, GPR_R11, GPR_R12, GPR_R13, GPR_R14, GPR_R15,
	GPR__COUNT
};

struct insn_mmio {
	unsigned len;      /* the instruction's length in bytes */
	unsigned size;     /* bytes the memory access moves: 1, 2, 4 or 8 */
	bool write;        /* a store to memory (else a load from it) */
	bool has_imm;      /* a store of `imm` (else of register `reg`) */
	uint64_t imm;      /* already sign-extended to `size` bytes */
	unsigned reg;      /* enum insn_gpr: a store's source, a load's destination */
	bool high8;        /* reg 4..7 names AH, CH, DH, BH (byte access, no REX) */
	unsigned dst_size; /* a load: bytes of the destination register written */
	bool sign;         /* a load: sign-extend (MOVSX), else zero-extend */
};

/* Decodes the instruction in b[0..n) (n may exceed its length; fewer than
 * its length is an error). 0, or -1 for anything outside the subset, a
 * register operand where memory must be, or too few bytes. */
int insn_decode_mmio(const uint8_t *b, size_t n, enum insn_mode mode, struct insn_mmio *d);

/* A store's value: the low `size` bytes of the source register (AH..BH:
 * bits 15:8), or the immediate. */
uint64_t insn_store_value(const struct insn_mmio *d, uint64_t reg_value);

/* A load's effect on the destination register: `old` is its value before,
 * `mem` the `size` bytes read. Writes of 1 and 2 bytes keep the rest of the
 * register; writes of 4 bytes clear bits 63:32, as the CPU does. */
uint64_t insn_load_result(const struct insn_mmio *d, uint64_t old, uint64_t mem);

#endif
