/* gdb_packet — the framing of gdb's remote serial protocol, pure (no I/O):
 * `$data#cs` with a two-digit hex checksum, `}` escapes, run-length
 * encoding (`X*n`), acks (`+`, `-`) and the out-of-band interrupt byte 0x03.
 * The receiver takes bytes one at a time into a bounded buffer, so a client
 * can neither overrun it nor make it allocate. */
#ifndef VIGIL_GDB_PACKET_H
#define VIGIL_GDB_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest packet accepted (decoded) and announced in qSupported. */
#define GDB_PKT_MAX 16384

enum gdb_rx_event {
	GDB_RX_NONE,      /* byte taken, nothing complete yet */
	GDB_RX_PACKET,    /* a packet with a good checksum: rx->buf, rx->len */
	GDB_RX_BAD,       /* checksum wrong or bad encoding: nack it */
	GDB_RX_OVERSIZE,  /* longer than GDB_PKT_MAX: refused (nack) */
	GDB_RX_ACK,       /* '+' */
	GDB_RX_NACK,      /* '-': resend the last reply */
	GDB_RX_INTERRUPT, /* 0x03 outside a packet */
};

struct gdb_rx {
	int state;       /* private */
	uint8_t sum;     /* of the raw bytes between $ and # */
	uint8_t csum;    /* the received checksum's first digit */
	bool esc;        /* the previous raw byte was '}' */
	bool rle;        /* the previous raw byte was '*' */
	bool bad;        /* a bad encoding or overflow seen in this packet */
	bool oversize;
	size_t len;      /* decoded bytes in buf */
	char buf[GDB_PKT_MAX + 1]; /* decoded, NUL-terminated when complete */
};

void gdb_rx_init(struct gdb_rx *rx);
/* Feeds one byte from the client. */
enum gdb_rx_event gdb_rx_byte(struct gdb_rx *rx, uint8_t c);

/* Frames `len` bytes of `data` as `$...#cs` into out (escaping $ # } *).
 * Returns the framed length, or 0 when it does not fit in `cap`. */
size_t gdb_frame(char *out, size_t cap, const char *data, size_t len);

/* Hex helpers shared with the command decoder. */
int gdb_hexval(int c);
/* Parses hex digits from *p up to a byte not a hex digit; at most 16 digits.
 * Returns 0 and advances *p, or -1 (no digit, or too many). */
int gdb_parse_hex(const char **p, const char *end, uint64_t *out);
/* Writes 2*n hex digits of bytes; returns chars written. */
size_t gdb_put_hex(char *out, const uint8_t *bytes, size_t n);
/* Decodes 2*n hex digits into bytes; -1 on a non-hex digit. */
int gdb_get_hex(uint8_t *bytes, const char *in, size_t n);

#endif
