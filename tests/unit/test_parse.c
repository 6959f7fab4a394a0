/* Unit tests for the command line's number parsers (cli/parse.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>

#include "cli/parse.h"

#define KiB 1024ULL
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)
#define TiB (1024 * GiB)

static void ok_size(const char *s, uint64_t want)
{
	uint64_t v = 0xdeadbeef;
	if (parse_size(s, &v) != 0)
		fail_msg("parse_size(\"%s\") refused", s);
	if (v != want)
		fail_msg("parse_size(\"%s\") = %llu, want %llu", s, (unsigned long long)v,
			 (unsigned long long)want);
}

static void bad_size(const char *s)
{
	uint64_t v = 0xdeadbeef;
	if (parse_size(s, &v) != -1)
		fail_msg("parse_size(\"%s\") accepted (%llu)", s, (unsigned long long)v);
	assert_int_equal(v, 0xdeadbeef); /* *out untouched on failure */
}

static void test_parse_size_accepts(void **state)
{
	(void)state;
	ok_size("256M", 256 * MiB);
	ok_size("1G", GiB);
	ok_size("512K", 512 * KiB);
	ok_size("2048", 2048 * MiB); /* bare number: MiB */
	ok_size("1048576B", MiB);
	ok_size("1GiB", GiB);
	ok_size("1gb", GiB);
	ok_size("1GB", GiB);
	ok_size("1gib", GiB);
	ok_size("256MiB", 256 * MiB);
	ok_size("256mb", 256 * MiB);
	ok_size("4k", 4 * KiB);
	ok_size("4KiB", 4 * KiB);
	ok_size("1T", TiB);
	ok_size("1b", 1);
	ok_size("0", 0);
	ok_size("0B", 0);
	ok_size("007M", 7 * MiB);
}

static void test_parse_size_limits(void **state)
{
	(void)state;
	/* The largest values that still fit in 64 bits, per unit. */
	ok_size("18446744073709551615B", UINT64_MAX);
	ok_size("17179869183G", 17179869183ULL * GiB);
	ok_size("16777215T", 16777215ULL * TiB);
	ok_size("17592186044415", 17592186044415ULL * MiB);
	bad_size("17179869184G");
	bad_size("16777216T");
	bad_size("17592186044416"); /* bare MiB overflow */
	bad_size("18014398509481984K");
	bad_size("18446744073709551615G");
	bad_size("18446744073709551616B"); /* strtoull range */
	bad_size("99999999999999999999999999");
}

static void test_parse_size_rejects(void **state)
{
	(void)state;
	bad_size("");
	bad_size("-1");
	bad_size("+1");
	bad_size("1X");
	bad_size("M");
	bad_size("G1");
	bad_size(" 1G");
	bad_size("1G ");
	bad_size("1 G");
	bad_size("1.5G");
	bad_size("1GG");
	bad_size("1GiBB");
	bad_size("1Bi");     /* "i" belongs to binary prefixes only */
	bad_size("1iB");
	bad_size("0x10M");
	bad_size("1e3M");
	bad_size("1G\n");
	bad_size("1P");
	uint64_t v = 7;
	assert_int_equal(parse_size(NULL, &v), -1);
	assert_int_equal(v, 7);
}

static void ok_uint(const char *s, unsigned min, unsigned max, unsigned want)
{
	unsigned v = 0xdead;
	if (parse_uint(s, min, max, &v) != 0)
		fail_msg("parse_uint(\"%s\", %u, %u) refused", s, min, max);
	assert_int_equal(v, want);
}

static void bad_uint(const char *s, unsigned min, unsigned max)
{
	unsigned v = 0xdead;
	if (parse_uint(s, min, max, &v) != -1)
		fail_msg("parse_uint(\"%s\", %u, %u) accepted (%u)", s, min, max, v);
	assert_int_equal(v, 0xdead);
}

static void test_parse_uint(void **state)
{
	(void)state;
	ok_uint("1", 1, 64, 1);
	ok_uint("64", 1, 64, 64);
	ok_uint("32", 1, 64, 32);
	ok_uint("0", 0, 10, 0);
	ok_uint("010", 1, 64, 10); /* decimal, not octal */
	bad_uint("0", 1, 64);
	bad_uint("65", 1, 64);
	bad_uint("", 1, 64);
	bad_uint("-1", 0, UINT_MAX);
	bad_uint("+1", 0, 10);
	bad_uint(" 1", 0, 10);
	bad_uint("1 ", 0, 10);
	bad_uint("1k", 0, 10000);
	bad_uint("0x10", 0, 100);
	bad_uint("abc", 0, 100);
	ok_uint("4294967295", 0, UINT_MAX, UINT_MAX);
	bad_uint("4294967296", 0, UINT_MAX);           /* fits unsigned long, not unsigned */
	bad_uint("18446744073709551615", 0, UINT_MAX);
	bad_uint("18446744073709551616", 0, UINT_MAX); /* strtoul range */
	bad_uint(NULL, 0, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size_accepts),
		cmocka_unit_test(test_parse_size_limits),
		cmocka_unit_test(test_parse_size_rejects),
		cmocka_unit_test(test_parse_uint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
