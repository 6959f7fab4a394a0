/* insn_decode: the MMIO subset, byte sequences taken from GNU as (long mode,
 * 32-bit and 16-bit), their lengths, widths, directions and operands; what
 * a load does to the destination register; and refusals (register
 * operands, other opcodes, truncated bytes, over-long prefix runs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/insn_decode.h"

struct want {
	const char *what;
	uint8_t bytes[16];
	unsigned n;
	enum insn_mode mode;
	unsigned len, size, reg, dst_size;
	bool write, has_imm, high8, sign;
	uint64_t imm;
};

static const struct want cases[] = {
	{ "movl $0xdeadbeef,(%rbx)", { 0xc7, 0x03, 0xef, 0xbe, 0xad, 0xde }, 6, INSN_MODE64, 6, 4, 0, 0, true, true,
	  false, false, 0xdeadbeef },
	{ "mov (%rbx),%eax", { 0x8b, 0x03 }, 2, INSN_MODE64, 2, 4, GPR_RAX, 4, false, false, false, false, 0 },
	{ "mov %al,(%rdi)", { 0x88, 0x07 }, 2, INSN_MODE64, 2, 1, GPR_RAX, 1, true, false, false, false, 0 },
	{ "mov %ah,(%rdi)", { 0x88, 0x27 }, 2, INSN_MODE64, 2, 1, 4, 1, true, false, true, false, 0 },
	{ "mov (%rsi),%bh", { 0x8a, 0x3e }, 2, INSN_MODE64, 2, 1, 7, 1, false, false, true, false, 0 },
	{ "mov %r9w,0x10(%rax,%rcx,4)", { 0x66, 0x44, 0x89, 0x4c, 0x88, 0x10 }, 6, INSN_MODE64, 6, 2, GPR_R9, 2,
	  true, false, false, false, 0 },
	{ "mov 0x12345678(%rip),%r12", { 0x4c, 0x8b, 0x25, 0x78, 0x56, 0x34, 0x12 }, 7, INSN_MODE64, 7, 8, GPR_R12,
	  8, false, false, false, false, 0 },
	{ "movq $-2,0x100(%rbp)", { 0x48, 0xc7, 0x85, 0x00, 0x01, 0x00, 0x00, 0xfe, 0xff, 0xff, 0xff }, 11,
	  INSN_MODE64, 11, 8, 0, 0, true, true, false, false, 0xfffffffffffffffeULL },
	{ "movb $0x7f,(%rax)", { 0xc6, 0x00, 0x7f }, 3, INSN_MODE64, 3, 1, 0, 0, true, true, false, false, 0x7f },
	{ "movzbl (%rdx),%ecx", { 0x0f, 0xb6, 0x0a }, 3, INSN_MODE64, 3, 1, GPR_RCX, 4, false, false, false, false,
	  0 },
	{ "movzwq (%rdx),%r8", { 0x4c, 0x0f, 0xb7, 0x02 }, 4, INSN_MODE64, 4, 2, GPR_R8, 8, false, false, false,
	  false, 0 },
	{ "movsbl -1(%rbx),%eax", { 0x0f, 0xbe, 0x43, 0xff }, 4, INSN_MODE64, 4, 1, GPR_RAX, 4, false, false, false,
	  true, 0 },
	{ "movswq (%rsp),%rax", { 0x48, 0x0f, 0xbf, 0x04, 0x24 }, 5, INSN_MODE64, 5, 2, GPR_RAX, 8, false, false,
	  false, true, 0 },
	{ "mov %eax,%fs:(%rbx)", { 0x64, 0x89, 0x03 }, 3, INSN_MODE64, 3, 4, GPR_RAX, 4, true, false, false, false,
	  0 },
	{ "movabs 0xfee00030,%eax", { 0xa1, 0x30, 0x00, 0xe0, 0xfe, 0, 0, 0, 0 }, 9, INSN_MODE64, 9, 4, GPR_RAX, 4,
	  false, false, false, false, 0 },
	{ "mov %sil,(%rax)", { 0x40, 0x88, 0x30 }, 3, INSN_MODE64, 3, 1, GPR_RSI, 1, true, false, false, false, 0 },
	{ "movw $0x1234,0(%r13)", { 0x66, 0x41, 0xc7, 0x45, 0x00, 0x34, 0x12 }, 7, INSN_MODE64, 7, 2, 0, 0, true,
	  true, false, false, 0x1234 },
	{ "mov 0(,%rax,8),%edx", { 0x8b, 0x14, 0xc5, 0, 0, 0, 0 }, 7, INSN_MODE64, 7, 4, GPR_RDX, 4, false, false,
	  false, false, 0 },
	/* 32-bit protected mode: 0x40-0x4f are INC/DEC, not REX */
	{ "mov %eax,0xfee000b0 (32)", { 0xa3, 0xb0, 0x00, 0xe0, 0xfe }, 5, INSN_MODE32, 5, 4, GPR_RAX, 4, true,
	  false, false, false, 0 },
	{ "mov 0x8(%esi),%cx (32)", { 0x66, 0x8b, 0x4e, 0x08 }, 4, INSN_MODE32, 4, 2, GPR_RCX, 2, false, false,
	  false, false, 0 },
	{ "movl $1,(%bx,%si) addr16 (32)", { 0x67, 0xc7, 0x00, 1, 0, 0, 0 }, 7, INSN_MODE32, 7, 4, 0, 0, true, true,
	  false, false, 1 },
	/* 16-bit: disp16 forms, 66 makes it 32-bit */
	{ "mov 0x1234,%ax (16)", { 0x8b, 0x06, 0x34, 0x12 }, 4, INSN_MODE16, 4, 2, GPR_RAX, 2, false, false, false,
	  false, 0 },
	{ "mov %eax,0x10(%di) (16)", { 0x66, 0x89, 0x45, 0x10 }, 4, INSN_MODE16, 4, 4, GPR_RAX, 4, true, false,
	  false, false, 0 },
	{ "mov %dl,0x1000(%bx) (16)", { 0x88, 0x97, 0x00, 0x10 }, 4, INSN_MODE16, 4, 1, GPR_RDX, 1, true, false,
	  false, false, 0 },
};

static void test_subset(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct want *w = &cases[i];
		struct insn_mmio d;
		print_message("%s\n", w->what);
		assert_int_equal(insn_decode_mmio(w->bytes, w->n, w->mode, &d), 0);
		assert_int_equal(d.len, w->len);
		assert_int_equal(d.size, w->size);
		assert_int_equal(d.write, w->write);
		assert_int_equal(d.has_imm, w->has_imm);
		if (w->has_imm) {
			assert_int_equal(d.imm, w->imm);
		} else {
			assert_int_equal(d.reg, w->reg);
			assert_int_equal(d.high8, w->high8);
		}
		if (!w->write) {
			assert_int_equal(d.dst_size, w->dst_size);
			assert_int_equal(d.sign, w->sign);
		}
		/* Every byte is needed: one fewer is refused. */
		assert_int_equal(insn_decode_mmio(w->bytes, w->len - 1, w->mode, &d), -1);
	}
}

static void test_refused(void **state)
{
	(void)state;
	struct insn_mmio d;
	static const uint8_t regop[] = { 0x89, 0xc3 };      /* mov %eax,%ebx */
	static const uint8_t addop[] = { 0x01, 0x03 };      /* add %eax,(%rbx) */
	static const uint8_t c7_1[] = { 0xc7, 0x0b, 0, 0, 0, 0 }; /* C7 /1: undefined */
	static const uint8_t sse[] = { 0x0f, 0x10, 0x03 }; /* movups */
	uint8_t prefixes[16];
	memset(prefixes, 0x66, sizeof(prefixes));
	assert_int_equal(insn_decode_mmio(regop, sizeof(regop), INSN_MODE64, &d), -1);
	assert_int_equal(insn_decode_mmio(addop, sizeof(addop), INSN_MODE64, &d), -1);
	assert_int_equal(insn_decode_mmio(c7_1, sizeof(c7_1), INSN_MODE64, &d), -1);
	assert_int_equal(insn_decode_mmio(sse, sizeof(sse), INSN_MODE64, &d), -1);
	assert_int_equal(insn_decode_mmio(prefixes, sizeof(prefixes), INSN_MODE64, &d), -1);
	assert_int_equal(insn_decode_mmio(prefixes, 0, INSN_MODE64, &d), -1);
	/* 14 prefixes + 89 03 is 16 bytes: past the architectural 15 */
	uint8_t longer[16];
	memset(longer, 0x3e, 14);
	longer[14] = 0x89;
	longer[15] = 0x03;
	assert_int_equal(insn_decode_mmio(longer, sizeof(longer), INSN_MODE64, &d), -1);
	/* 13 prefixes + 89 03 = 15: fine */
	assert_int_equal(insn_decode_mmio(longer + 1, 15, INSN_MODE64, &d), 0);
	assert_int_equal(d.len, 15);
	/* a REX followed by a legacy prefix is dropped: 48 66 89 03 is a 16-bit store */
	static const uint8_t rexlost[] = { 0x48, 0x66, 0x89, 0x03 };
	assert_int_equal(insn_decode_mmio(rexlost, sizeof(rexlost), INSN_MODE64, &d), 0);
	assert_int_equal(d.size, 2);
}

static void test_values(void **state)
{
	(void)state;
	struct insn_mmio d = { .size = 4, .dst_size = 4 };
	assert_int_equal(insn_load_result(&d, 0xffffffffffffffffULL, 0x12345678), 0x12345678);
	d = (struct insn_mmio){ .size = 2, .dst_size = 2 };
	assert_int_equal(insn_load_result(&d, 0x1111111111111111ULL, 0xabcd), 0x111111111111abcdULL);
	d = (struct insn_mmio){ .size = 1, .dst_size = 1, .high8 = true };
	assert_int_equal(insn_load_result(&d, 0x1111111111111111ULL, 0xab), 0x111111111111ab11ULL);
	assert_int_equal(insn_store_value(&d, 0x1234), 0x12);
	d = (struct insn_mmio){ .size = 1, .dst_size = 8, .sign = true };
	assert_int_equal(insn_load_result(&d, 0, 0x80), 0xffffffffffffff80ULL);
	d = (struct insn_mmio){ .size = 2, .dst_size = 4, .sign = true };
	assert_int_equal(insn_load_result(&d, 0xffffffff00000000ULL, 0x8000), 0xffff8000ULL);
	d = (struct insn_mmio){ .size = 1, .dst_size = 4 };
	assert_int_equal(insn_load_result(&d, ~0ULL, 0x1ff), 0xff);
	d = (struct insn_mmio){ .size = 8, .dst_size = 8 };
	assert_int_equal(insn_store_value(&d, 0x123456789abcdef0ULL), 0x123456789abcdef0ULL);
	d = (struct insn_mmio){ .size = 2 };
	assert_int_equal(insn_store_value(&d, 0x123456789abcdef0ULL), 0xdef0);
}

/* Hostile bytes: whatever they are, the decoder stays inside them and
 * within 15 bytes, and what it accepts is a sane access. */
static void test_random(void **state)
{
	(void)state;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 200000; i++) {
		uint8_t b[INSN_MAX_LEN];
		size_t n = 1 + (size_t)(i % INSN_MAX_LEN);
		for (size_t k = 0; k < n; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			b[k] = (uint8_t)x;
		}
		if (i % 3 == 0)
			b[0] = (uint8_t)(0x88 + (x >> 40) % 4); /* often one of the MOVs */
		struct insn_mmio d;
		enum insn_mode mode = (enum insn_mode)(2u << (i % 3));
		if (insn_decode_mmio(b, n, mode, &d) != 0)
			continue;
		assert_true(d.len >= 2 && d.len <= n);
		assert_true(d.size == 1 || d.size == 2 || d.size == 4 || d.size == 8);
		assert_true(d.reg < GPR__COUNT);
		assert_true(!d.high8 || (d.reg >= 4 && d.reg < 8));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subset),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
