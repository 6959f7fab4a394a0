/* gdb's packet framing: checksums, escapes, run lengths, acks, the
 * interrupt byte, oversize packets, and framing of replies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gdb/gdb_packet.h"

static struct gdb_rx rx;

/* Feeds a string; returns the last event that was not NONE. */
static enum gdb_rx_event feed(const char *s, size_t n)
{
	enum gdb_rx_event last = GDB_RX_NONE;
	for (size_t i = 0; i < n; i++) {
		enum gdb_rx_event e = gdb_rx_byte(&rx, (uint8_t)s[i]);
		if (e != GDB_RX_NONE)
			last = e;
	}
	return last;
}
#define FEED(s) feed(s, sizeof(s) - 1)

static void test_good_packet(void **state)
{
	(void)state;
	gdb_rx_init(&rx);
	assert_int_equal(FEED("$qSupported#37"), GDB_RX_PACKET);
	assert_string_equal(rx.buf, "qSupported");
	assert_int_equal(rx.len, 10);
	assert_int_equal(FEED("$g#67"), GDB_RX_PACKET);
	assert_string_equal(rx.buf, "g");
	assert_int_equal(FEED("$g#6A"), GDB_RX_BAD); /* upper-case digits are fine; the sum is not */
	assert_int_equal(FEED("$g#67"), GDB_RX_PACKET);
}

static void test_bad_checksum_and_digits(void **state)
{
	(void)state;
	gdb_rx_init(&rx);
	assert_int_equal(FEED("$g#00"), GDB_RX_BAD);
	assert_int_equal(FEED("$g#zz"), GDB_RX_BAD);
	/* a new '$' inside a packet: the cut one is bad, the new one counts */
	assert_int_equal(feed("$m10$g#67", 9), GDB_RX_PACKET);
	assert_string_equal(rx.buf, "g");
}

static void test_acks_interrupt_noise(void **state)
{
	(void)state;
	gdb_rx_init(&rx);
	assert_int_equal(gdb_rx_byte(&rx, '+'), GDB_RX_ACK);
	assert_int_equal(gdb_rx_byte(&rx, '-'), GDB_RX_NACK);
	assert_int_equal(gdb_rx_byte(&rx, 0x03), GDB_RX_INTERRUPT);
	assert_int_equal(FEED("garbage\xff\x00 ###"), GDB_RX_NONE);
	/* 0x03 inside a packet is data, not an interrupt */
	char p[] = "$a\x03#00";
	p[4] = "0123456789abcdef"[(('a' + 3) >> 4) & 15];
	p[5] = "0123456789abcdef"[('a' + 3) & 15];
	assert_int_equal(feed(p, 6), GDB_RX_PACKET);
	assert_int_equal(rx.len, 2);
	assert_int_equal(rx.buf[1], 3);
}

static void test_escape_and_rle(void **state)
{
	(void)state;
	char out[64];
	gdb_rx_init(&rx);
	/* X with a '#' in its binary data: framed escaped, received whole */
	const char data[] = { 'X', '#', '$', '}', '*', 'z' };
	size_t n = gdb_frame(out, sizeof(out), data, sizeof(data));
	assert_true(n > 0);
	assert_int_equal(feed(out, n), GDB_RX_PACKET);
	assert_int_equal(rx.len, sizeof(data));
	assert_memory_equal(rx.buf, data, sizeof(data));
	/* "0* " is "0000" (the space is 32: three more) */
	n = gdb_frame(out, sizeof(out), "x", 1); /* a checksum to patch below */
	char rle[16] = "$0* #";
	unsigned sum = '0' + '*' + ' ';
	snprintf(rle + 5, sizeof(rle) - 5, "%02x", sum & 0xff);
	assert_int_equal(feed(rle, 7), GDB_RX_PACKET);
	assert_string_equal(rx.buf, "0000");
	/* a run length with nothing before it is bad */
	char bad[16] = "$* #";
	snprintf(bad + 4, sizeof(bad) - 4, "%02x", ('*' + ' ') & 0xff);
	assert_int_equal(feed(bad, 6), GDB_RX_BAD);
	/* a dangling escape is bad */
	char esc[16] = "$a}#";
	snprintf(esc + 4, sizeof(esc) - 4, "%02x", ('a' + '}') & 0xff);
	assert_int_equal(feed(esc, 6), GDB_RX_BAD);
}

static void test_oversize(void **state)
{
	(void)state;
	gdb_rx_init(&rx);
	gdb_rx_byte(&rx, '$');
	for (int i = 0; i < GDB_PKT_MAX + 100; i++)
		assert_int_equal(gdb_rx_byte(&rx, 'm'), GDB_RX_NONE);
	assert_true(rx.len <= GDB_PKT_MAX);
	assert_int_equal(FEED("#00"), GDB_RX_OVERSIZE);
	/* a run length cannot blow the buffer either */
	gdb_rx_byte(&rx, '$');
	for (int i = 0; i < GDB_PKT_MAX; i++) {
		gdb_rx_byte(&rx, 'a');
		gdb_rx_byte(&rx, '*');
		gdb_rx_byte(&rx, '~');
	}
	assert_true(rx.len <= GDB_PKT_MAX);
	assert_int_equal(FEED("#00"), GDB_RX_OVERSIZE);
	assert_int_equal(FEED("$g#67"), GDB_RX_PACKET); /* and it recovers */
}

static void test_frame(void **state)
{
	(void)state;
	char out[16];
	assert_int_equal(gdb_frame(out, sizeof(out), "OK", 2), 6);
	assert_memory_equal(out, "$OK#9a", 6);
	assert_int_equal(gdb_frame(out, sizeof(out), "", 0), 4);
	assert_memory_equal(out, "$#00", 4);
	assert_int_equal(gdb_frame(out, 5, "OK", 2), 0); /* does not fit */
	/* an escaped byte takes two: fits exactly, or not at all */
	assert_int_equal(gdb_frame(out, 7, "a#", 2), 7);
	assert_memory_equal(out, "$a}\x03#", 5);
	assert_int_equal(gdb_frame(out, 6, "a#", 2), 0);
}

/* The framing as the protocol states it, a byte and a room check at a time. */
static size_t frame_ref(char *out, size_t cap, const char *data, size_t len)
{
	size_t o = 0;
	unsigned sum = 0;

	if (cap < 4)
		return 0;
	out[o++] = '$';
	for (size_t i = 0; i < len; i++) {
		char c = data[i];
		if (c == '$' || c == '#' || c == '}' || c == '*') {
			if (o + 2 + 3 > cap)
				return 0;
			out[o++] = '}';
			sum += '}';
			c = (char)(c ^ 0x20);
		} else if (o + 1 + 3 > cap) {
			return 0;
		}
		out[o++] = c;
		sum += (uint8_t)c;
	}
	snprintf(out + o, 4, "#%02x", sum & 0xff);
	return o + 3;
}

/* Every room from none to more than enough, on data with and without bytes
 * to escape: the same frame as the reference, or 0 where it does not fit. */
static void test_frame_matches_reference(void **state)
{
	(void)state;
	char data[40], got[96], want[96];
	unsigned seed = 7;

	for (int round = 0; round < 200; round++) {
		size_t len = (size_t)(round % 40);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			data[i] = round % 3 ? "0123456789abcdef"[(seed >> 16) & 15] : (char)(seed >> 16);
		}
		for (size_t cap = 0; cap <= 2 * len + 6; cap++) {
			size_t n = gdb_frame(got, cap, data, len);
			assert_int_equal(n, frame_ref(want, cap, data, len));
			if (n)
				assert_memory_equal(got, want, n);
		}
	}
}

static void test_hex(void **state)
{
	(void)state;
	const char *s = "1f,";
	uint64_t v;
	assert_int_equal(gdb_parse_hex(&s, s + 3, &v), 0);
	assert_int_equal(v, 0x1f);
	assert_int_equal(*s, ',');
	const char *big = "12345678123456789";
	assert_int_equal(gdb_parse_hex(&big, big + 17, &v), -1);
	const char *none = ",";
	assert_int_equal(gdb_parse_hex(&none, none + 1, &v), -1);
	uint8_t b[2];
	assert_int_equal(gdb_get_hex(b, "a0ff", 2), 0);
	assert_int_equal(b[0], 0xa0);
	assert_int_equal(gdb_get_hex(b, "g0", 1), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_packet),   cmocka_unit_test(test_bad_checksum_and_digits),
		cmocka_unit_test(test_acks_interrupt_noise), cmocka_unit_test(test_escape_and_rle),
		cmocka_unit_test(test_oversize),      cmocka_unit_test(test_frame),
		cmocka_unit_test(test_frame_matches_reference), cmocka_unit_test(test_hex),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
