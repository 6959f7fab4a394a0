/* The remote protocol's framing, one byte at a time. */
#include "gdb/gdb_packet.h"

#include <string.h>

enum { ST_IDLE, ST_DATA, ST_CS1, ST_CS2 };

void gdb_rx_init(struct gdb_rx *rx)
{
	rx->state = ST_IDLE;
	rx->len = 0;
	rx->bad = rx->oversize = rx->esc = rx->rle = false;
}

int gdb_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void put(struct gdb_rx *rx, char c)
{
	if (rx->len >= GDB_PKT_MAX) {
		rx->oversize = true;
		return;
	}
	rx->buf[rx->len++] = c;
}

/* One raw byte of packet data: escapes and run lengths resolved. */
static void data_byte(struct gdb_rx *rx, uint8_t c)
{
	if (rx->rle) {
		rx->rle = false;
		/* `X*n` repeats X n-29 more times; n is printable, not # or $. */
		if (c < 32 || c > 126 || c == '#' || c == '$' || rx->len == 0) {
			rx->bad = true;
			return;
		}
		char last = rx->buf[rx->len - 1];
		for (int i = 0; i < c - 29 && !rx->oversize; i++)
			put(rx, last);
		return;
	}
	if (rx->esc) {
		rx->esc = false;
		put(rx, (char)(c ^ 0x20));
		return;
	}
	if (c == '}')
		rx->esc = true;
	else if (c == '*')
		rx->rle = true;
	else
		put(rx, (char)c);
}

enum gdb_rx_event gdb_rx_byte(struct gdb_rx *rx, uint8_t c)
{
	switch (rx->state) {
	case ST_IDLE:
		if (c == '$') {
			gdb_rx_init(rx);
			rx->sum = 0;
			rx->state = ST_DATA;
			return GDB_RX_NONE;
		}
		if (c == '+')
			return GDB_RX_ACK;
		if (c == '-')
			return GDB_RX_NACK;
		if (c == 0x03)
			return GDB_RX_INTERRUPT;
		return GDB_RX_NONE; /* noise between packets */
	case ST_DATA:
		if (c == '#') {
			rx->state = ST_CS1;
			return GDB_RX_NONE;
		}
		if (c == '$') { /* a new start: the old packet was cut short */
			gdb_rx_init(rx);
			rx->sum = 0;
			rx->state = ST_DATA;
			return GDB_RX_BAD;
		}
		rx->sum = (uint8_t)(rx->sum + c);
		data_byte(rx, c);
		return GDB_RX_NONE;
	case ST_CS1:
		rx->csum = c;
		rx->state = ST_CS2;
		return GDB_RX_NONE;
	default: {
		rx->state = ST_IDLE;
		int hi = gdb_hexval(rx->csum), lo = gdb_hexval(c);
		if (rx->oversize)
			return GDB_RX_OVERSIZE;
		if (hi < 0 || lo < 0 || (uint8_t)(hi << 4 | lo) != rx->sum || rx->bad || rx->esc || rx->rle)
			return GDB_RX_BAD;
		rx->buf[rx->len] = '\0';
		return GDB_RX_PACKET;
	}
	}
}

/* The bytes the framing escapes: '}' then the byte ^ 0x20. */
static const bool frame_escapes[256] = { ['$'] = true, ['#'] = true, ['}'] = true, ['*'] = true };

size_t gdb_frame(char *out, size_t cap, const char *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	uint8_t sum = 0;

	if (cap < 4)
		return 0;
	/* Replies are mostly hex: one look at the room a fully escaped reply
	 * needs spares the check per byte. */
	bool roomy = len <= (cap - 4) / 2;
	out[o++] = '$';
	for (size_t i = 0; i < len; i++) {
		char c = data[i];
		bool esc = frame_escapes[(uint8_t)c];
		if (!roomy && o + (esc ? 2 : 1) + 3 > cap)
			return 0;
		if (esc) {
			out[o++] = '}';
			sum = (uint8_t)(sum + '}');
			c = (char)(c ^ 0x20);
		}
		out[o++] = c;
		sum = (uint8_t)(sum + (uint8_t)c);
	}
	out[o++] = '#';
	out[o++] = hex[sum >> 4];
	out[o++] = hex[sum & 15];
	return o;
}

int gdb_parse_hex(const char **p, const char *end, uint64_t *out)
{
	uint64_t v = 0;
	int n = 0, d;

	while (*p < end && (d = gdb_hexval((unsigned char)**p)) >= 0) {
		if (++n > 16)
			return -1;
		v = v << 4 | (uint64_t)d;
		(*p)++;
	}
	if (!n)
		return -1;
	*out = v;
	return 0;
}

size_t gdb_put_hex(char *out, const uint8_t *bytes, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[bytes[i] >> 4];
		out[2 * i + 1] = hex[bytes[i] & 15];
	}
	return 2 * n;
}

int gdb_get_hex(uint8_t *bytes, const char *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = gdb_hexval((unsigned char)in[2 * i]), lo = gdb_hexval((unsigned char)in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		bytes[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}
