/* Unit tests for the snapshot state file (src/core/snap.c): every value
 * written comes back, and the reader refuses every kind of damage before a
 * loader sees a field — truncation at any length, any flipped bit, a
 * version from the future, duplicate ids — and turns a loader's misreads
 * (past a section's end, a missing section, the wrong kind, a bad boolean)
 * into one sticky error. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/snap.h"

/* A small file with two sections holding one of each kind of value. */
static uint8_t *make_file(size_t *len)
{
	struct snap_writer *w = snap_writer_new();
	assert_non_null(w);
	snap_begin(w, "com1", "uart-16550", 3);
	snap_put_u8(w, 0xab);
	snap_put_u16(w, 0xbeef);
	snap_put_u32(w, 0xdeadbeefu);
	snap_put_u64(w, 0x0123456789abcdefULL);
	snap_put_bool(w, true);
	snap_put_bool(w, false);
	snap_put_str(w, "hello");
	snap_put(w, "\x01\x02\x03", 3);
	snap_end(w);
	snap_begin(w, "rtc", "rtc-cmos", 1);
	snap_put_u32(w, 7);
	snap_end(w);
	const uint8_t *buf;
	assert_int_equal(snap_writer_finish(w, &buf, len), 0);
	uint8_t *copy = malloc(*len);
	assert_non_null(copy);
	memcpy(copy, buf, *len);
	snap_writer_free(w);
	return copy;
}

/* The checksum is zlib's CRC-32: the standard check value, and a bit at a
 * time reference over every length and alignment the eight-byte steps and
 * the byte tail split differently. */
static uint32_t crc_ref(uint32_t crc, const uint8_t *b, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *b++;
		for (int k = 0; k < 8; k++)
			crc = (crc & 1) ? 0xedb88320u ^ (crc >> 1) : crc >> 1;
	}
	return ~crc;
}

static void test_crc32(void **state)
{
	(void)state;
	assert_int_equal(snap_crc32(0, "123456789", 9), 0xcbf43926u);
	assert_int_equal(snap_crc32(0, "", 0), 0);
	uint8_t buf[80];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 151 + 7);
	for (size_t off = 0; off < 8; off++)
		for (size_t n = 0; off + n <= sizeof(buf); n++)
			assert_int_equal(snap_crc32(0, buf + off, n), crc_ref(0, buf + off, n));
	/* Chained: the CRC of a whole is the CRC of its parts run on. */
	assert_int_equal(snap_crc32(snap_crc32(0, buf, 13), buf + 13, 50), crc_ref(0, buf, 63));
}

static void test_round_trip(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = make_file(&len);
	char err[SNAP_ERR_MAX] = "";
	struct snap_reader *r = snap_reader_open(f, len, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(snap_count(r), 2);
	assert_true(snap_has(r, "com1"));
	assert_false(snap_has(r, "com2"));

	uint32_t v = 0;
	assert_int_equal(snap_open_section(r, "com1", "uart-16550", 3, &v), 0);
	assert_int_equal(v, 3);
	assert_int_equal(snap_get_u8(r), 0xab);
	assert_int_equal(snap_get_u16(r), 0xbeef);
	assert_int_equal(snap_get_u32(r), 0xdeadbeefu);
	assert_true(snap_get_u64(r) == 0x0123456789abcdefULL);
	assert_true(snap_get_bool(r));
	assert_false(snap_get_bool(r));
	char s[16];
	snap_get_str(r, s, sizeof(s));
	assert_string_equal(s, "hello");
	assert_int_equal(snap_left(r), 3);
	const uint8_t *b = snap_get_blob(r, 3);
	assert_non_null(b);
	assert_memory_equal(b, "\x01\x02\x03", 3);
	assert_int_equal(snap_left(r), 0);
	assert_int_equal(snap_status(r, err, sizeof(err)), 0);
	assert_string_equal(snap_error(r), "");

	/* Sections are found by id in any order. */
	assert_int_equal(snap_open_section(r, "rtc", "rtc-cmos", 1, NULL), 0);
	assert_int_equal(snap_get_u32(r), 7);
	assert_int_equal(snap_open_section(r, "com1", "uart-16550", 5, NULL), 0);
	assert_int_equal(snap_get_u8(r), 0xab);

	const char *id, *kind;
	uint64_t slen;
	assert_int_equal(snap_section_info(r, 1, &id, &kind, &v, &slen), 0);
	assert_string_equal(id, "rtc");
	assert_string_equal(kind, "rtc-cmos");
	assert_int_equal(slen, 4);
	assert_int_equal(snap_section_info(r, 2, &id, &kind, &v, &slen), -1);
	assert_int_equal(snap_status(r, err, sizeof(err)), 0);
	snap_reader_free(r);
	free(f);
}

static void test_truncated_everywhere(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = make_file(&len);
	char err[SNAP_ERR_MAX];
	for (size_t n = 0; n < len; n++) {
		/* A copy of exactly n bytes, so ASan sees any read past it. */
		uint8_t *t = malloc(n ? n : 1);
		memcpy(t, f, n);
		err[0] = 0;
		struct snap_reader *r = snap_reader_open(t, n, err, sizeof(err));
		if (r)
			fail_msg("a file cut to %zu of %zu bytes opened", n, len);
		assert_true(err[0] != 0);
		free(t);
	}
	free(f);
}

static void test_bit_flips_everywhere(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = make_file(&len);
	char err[SNAP_ERR_MAX];
	for (size_t i = 0; i < len; i++)
		for (unsigned bit = 0; bit < 8; bit++) {
			f[i] ^= (uint8_t)(1u << bit);
			err[0] = 0;
			struct snap_reader *r = snap_reader_open(f, len, err, sizeof(err));
			if (r)
				fail_msg("bit %u of byte %zu flipped and the file opened", bit, i);
			assert_true(err[0] != 0);
			f[i] ^= (uint8_t)(1u << bit);
		}
	/* And the untouched file still opens (the loop restored every bit). */
	struct snap_reader *r = snap_reader_open(f, len, err, sizeof(err));
	assert_non_null(r);
	snap_reader_free(r);
	free(f);
}

static void test_future_versions(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = make_file(&len);
	char err[SNAP_ERR_MAX] = "";
	struct snap_reader *r = snap_reader_open(f, len, err, sizeof(err));
	assert_non_null(r);
	/* The section is version 3; this loader knows up to 2. */
	assert_int_equal(snap_open_section(r, "com1", "uart-16550", 2, NULL), -1);
	assert_non_null(strstr(snap_error(r), "newer than"));
	assert_non_null(strstr(snap_error(r), "com1"));
	snap_reader_free(r);

	/* A format version from the future is refused before anything else. */
	f[8] = SNAP_FORMAT_VERSION + 1;
	err[0] = 0;
	assert_null(snap_reader_open(f, len, err, sizeof(err)));
	assert_non_null(strstr(err, "newer than"));
	free(f);
}

static void test_past_end_is_sticky(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = make_file(&len);
	char err[SNAP_ERR_MAX] = "";
	struct snap_reader *r = snap_reader_open(f, len, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(snap_open_section(r, "rtc", "rtc-cmos", 1, NULL), 0);
	assert_int_equal(snap_get_u16(r), 7);
	assert_int_equal(snap_get_u32(r), 0); /* 2 bytes left: zeroes and the error */
	assert_int_equal(snap_status(r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too short"));
	assert_non_null(strstr(err, "rtc"));
	/* Sticky: later reads stay zero, the first error stays, even a good
	 * section does not clear it. */
	assert_int_equal(snap_get_u8(r), 0);
	assert_int_equal(snap_fail(r, "something else"), -1);
	assert_int_equal(snap_open_section(r, "com1", "uart-16550", 3, NULL), -1);
	assert_non_null(strstr(snap_error(r), "too short"));
	snap_reader_free(r);
	free(f);
}

static void test_missing_and_wrong_kind(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = make_file(&len);
	char err[SNAP_ERR_MAX] = "";
	struct snap_reader *r = snap_reader_open(f, len, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(snap_open_section(r, "net1", "virtio-net", 1, NULL), -1);
	assert_non_null(strstr(snap_error(r), "no section 'net1'"));
	/* Reading with no section open is an error too (zeroes). */
	assert_int_equal(snap_get_u32(r), 0);
	snap_reader_free(r);

	r = snap_reader_open(f, len, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(snap_open_section(r, "com1", "rtc-cmos", 1, NULL), -1);
	assert_non_null(strstr(snap_error(r), "holds a uart-16550, not a rtc-cmos"));
	snap_reader_free(r);
	free(f);
}

static void test_duplicate_id(void **state)
{
	(void)state;
	struct snap_writer *w = snap_writer_new();
	snap_begin(w, "com1", "uart-16550", 1);
	snap_put_u8(w, 1);
	snap_end(w);
	snap_begin(w, "com1", "rtc-cmos", 1);
	snap_end(w);
	const uint8_t *buf;
	size_t len;
	assert_int_equal(snap_writer_finish(w, &buf, &len), 0);
	char err[SNAP_ERR_MAX] = "";
	assert_null(snap_reader_open(buf, len, err, sizeof(err)));
	assert_non_null(strstr(err, "appears twice"));
	snap_writer_free(w);
}

static void test_bad_values(void **state)
{
	(void)state;
	struct snap_writer *w = snap_writer_new();
	snap_begin(w, "x", "k", 1);
	snap_put_u8(w, 2); /* not a boolean */
	snap_put_str(w, "0123456789");
	snap_end(w);
	const uint8_t *buf;
	size_t len;
	assert_int_equal(snap_writer_finish(w, &buf, &len), 0);
	char err[SNAP_ERR_MAX] = "";
	struct snap_reader *r = snap_reader_open(buf, len, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(snap_open_section(r, "x", "k", 1, NULL), 0);
	(void)snap_get_bool(r);
	assert_non_null(strstr(snap_error(r), "a boolean holds 2"));
	snap_reader_free(r);

	r = snap_reader_open(buf, len, err, sizeof(err));
	assert_int_equal(snap_open_section(r, "x", "k", 1, NULL), 0);
	(void)snap_get_u8(r);
	char s[8];
	snap_get_str(r, s, sizeof(s)); /* 10 bytes into 7 + NUL */
	assert_string_equal(s, "");
	assert_non_null(strstr(snap_error(r), "string of 10 bytes"));
	snap_reader_free(r);
	snap_writer_free(w);
}

static void test_writer_misuse(void **state)
{
	(void)state;
	const uint8_t *buf;
	size_t len;
	struct snap_writer *w = snap_writer_new();
	snap_begin(w, "a", "k", 1);
	assert_int_equal(snap_writer_finish(w, &buf, &len), -1); /* still open */
	snap_writer_free(w);
	w = snap_writer_new();
	snap_begin(w, "a", "k", 1);
	snap_begin(w, "b", "k", 1); /* the first never ended */
	snap_end(w);
	assert_int_equal(snap_writer_finish(w, &buf, &len), -1);
	snap_writer_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_bit_flips_everywhere),
		cmocka_unit_test(test_future_versions),
		cmocka_unit_test(test_past_end_is_sticky),
		cmocka_unit_test(test_missing_and_wrong_kind),
		cmocka_unit_test(test_duplicate_id),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_writer_misuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
