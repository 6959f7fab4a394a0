/* The MMIO instruction subset (insn_decode.h): prefixes, opcode, ModRM and
 * its SIB/displacement (only their length matters: the faulting address
 * comes from the hardware), then the immediate. */
#include "arch/x86/insn_decode.h"

struct cursor {
	const uint8_t *b;
	size_t n, at;
};

static int next(struct cursor *c, uint8_t *v)
{
	if (c->at >= c->n || c->at >= INSN_MAX_LEN)
		return -1;
	*v = c->b[c->at++];
	return 0;
}

static int skip(struct cursor *c, size_t k)
{
	if (k > c->n - c->at || c->at + k > INSN_MAX_LEN)
		return -1;
	c->at += k;
	return 0;
}

static uint64_t sext(uint64_t v, unsigned bytes)
{
	if (bytes >= 8)
		return v;
	unsigned sh = 64 - 8 * bytes;
	return (uint64_t)((int64_t)(v << sh) >> sh);
}

static uint64_t mask_of(unsigned bytes)
{
	return bytes >= 8 ? ~0ULL : (1ULL << (8 * bytes)) - 1;
}

/* Reads an immediate of `bytes` (little-endian). */
static int imm(struct cursor *c, unsigned bytes, uint64_t *v)
{
	*v = 0;
	for (unsigned i = 0; i < bytes; i++) {
		uint8_t x;
		if (next(c, &x) < 0)
			return -1;
		*v |= (uint64_t)x << (8 * i);
	}
	return 0;
}

/* ModRM with a memory operand: its reg field (REX.R applied) and the
 * bytes that follow it (SIB, displacement) consumed. */
static int modrm_mem(struct cursor *c, unsigned asize, unsigned rex, unsigned *reg)
{
	uint8_t m;
	if (next(c, &m) < 0)
		return -1;
	unsigned mod = m >> 6, rm = m & 7;
	*reg = ((m >> 3) & 7) | ((rex & 4) ? 8 : 0);
	if (mod == 3)
		return -1; /* a register operand: cannot have faulted on memory */
	if (asize == 2) {
		if (mod == 0)
			return rm == 6 ? skip(c, 2) : 0;
		return skip(c, mod == 1 ? 1 : 2);
	}
	if (rm == 4) {
		uint8_t sib;
		if (next(c, &sib) < 0)
			return -1;
		if (mod == 0 && (sib & 7) == 5)
			return skip(c, 4);
	} else if (mod == 0 && rm == 5) {
		return skip(c, 4); /* disp32, RIP-relative in long mode */
	}
	return mod == 0 ? 0 : skip(c, mod == 1 ? 1 : 4);
}

int insn_decode_mmio(const uint8_t *b, size_t n, enum insn_mode mode, struct insn_mmio *d)
{
	struct cursor c = { b, n, 0 };
	bool opsz = false, adsz = false;
	unsigned rex = 0;
	uint8_t op;

	*d = (struct insn_mmio){ 0 };
	for (;;) {
		if (next(&c, &op) < 0)
			return -1;
		switch (op) {
		case 0x66: opsz = true; rex = 0; continue;
		case 0x67: adsz = true; rex = 0; continue;
		case 0xf0: case 0xf2: case 0xf3:
		case 0x26: case 0x2e: case 0x36: case 0x3e: case 0x64: case 0x65:
			rex = 0; /* a REX before a legacy prefix is ignored */
			continue;
		default:
			break;
		}
		if (mode == INSN_MODE64 && (op & 0xf0) == 0x40) {
			rex = op;
			continue;
		}
		break;
	}
	unsigned osize = mode == INSN_MODE16 ? (opsz ? 4 : 2) : (opsz ? 2 : 4);
	if (mode == INSN_MODE64 && (rex & 8))
		osize = 8;
	unsigned asize = mode == INSN_MODE64 ? (adsz ? 4 : 8) : mode == INSN_MODE32 ? (adsz ? 2 : 4) : (adsz ? 4 : 2);
	unsigned reg = 0;
	uint64_t v;

	switch (op) {
	case 0x88: case 0x89: case 0x8a: case 0x8b:
		if (modrm_mem(&c, asize, rex, &reg) < 0)
			return -1;
		d->size = (op & 1) ? osize : 1;
		d->write = op <= 0x89;
		d->reg = reg;
		d->high8 = d->size == 1 && !rex && reg >= 4 && reg < 8;
		d->dst_size = d->size;
		break;
	case 0xc6: case 0xc7:
		if (modrm_mem(&c, asize, rex, &reg) < 0 || (reg & 7) != 0)
			return -1;
		d->size = op == 0xc6 ? 1 : osize;
		d->write = true;
		d->has_imm = true;
		if (imm(&c, d->size > 4 ? 4 : d->size, &v) < 0)
			return -1;
		d->imm = sext(v, d->size > 4 ? 4 : d->size) & mask_of(d->size);
		break;
	case 0xa0: case 0xa1: case 0xa2: case 0xa3:
		if (skip(&c, asize) < 0)
			return -1;
		d->size = (op & 1) ? osize : 1;
		d->write = op >= 0xa2;
		d->reg = GPR_RAX;
		d->dst_size = d->size;
		break;
	case 0x0f:
		if (next(&c, &op) < 0)
			return -1;
		if (op != 0xb6 && op != 0xb7 && op != 0xbe && op != 0xbf)
			return -1;
		if (modrm_mem(&c, asize, rex, &reg) < 0)
			return -1;
		d->size = (op & 1) ? 2 : 1;
		d->reg = reg;
		d->dst_size = osize;
		d->sign = op >= 0xbe;
		break;
	default:
		return -1;
	}
	d->len = (unsigned)c.at;
	return 0;
}

uint64_t insn_store_value(const struct insn_mmio *d, uint64_t reg_value)
{
	if (d->has_imm)
		return d->imm;
	if (d->high8)
		return (reg_value >> 8) & 0xff;
	return reg_value & mask_of(d->size);
}

uint64_t insn_load_result(const struct insn_mmio *d, uint64_t old, uint64_t mem)
{
	uint64_t v = mem & mask_of(d->size);
	if (d->sign)
		v = sext(v, d->size);
	if (d->high8)
		return (old & ~0xff00ULL) | ((v & 0xff) << 8);
	switch (d->dst_size) {
	case 1: return (old & ~0xffULL) | (v & 0xff);
	case 2: return (old & ~0xffffULL) | (v & 0xffff);
	case 4: return v & 0xffffffffULL;
	default: return v;
	}
}
