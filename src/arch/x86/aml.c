#include "arch/x86/aml.h"

#include <errno.h>
#include <string.h>

/* Opcodes and prefixes (ACPI 6.5, 20.2). */
#define AML_ZERO_OP         0x00
#define AML_ONE_OP          0x01
#define AML_NAME_OP         0x08
#define AML_BYTE_PREFIX     0x0A
#define AML_WORD_PREFIX     0x0B
#define AML_DWORD_PREFIX    0x0C
#define AML_STRING_PREFIX   0x0D
#define AML_QWORD_PREFIX    0x0E
#define AML_SCOPE_OP        0x10
#define AML_BUFFER_OP       0x11
#define AML_PACKAGE_OP      0x12
#define AML_DUAL_NAME       0x2E
#define AML_MULTI_NAME      0x2F
#define AML_EXT_OP          0x5B
#define AML_EXT_DEVICE_OP   0x82
#define AML_ROOT_CHAR       '\\'
#define AML_PARENT_CHAR     '^'
#define AML_NULL_NAME       0x00

/* Resource descriptors (ACPI 6.5, 6.4.2). */
#define AML_RES_IO          0x47 /* small item 0x08, 7 bytes */
#define AML_RES_IO_DECODE16 0x01
#define AML_RES_END_TAG     0x79 /* small item 0x0F, 1 byte */
#define AML_RES_IRQ_NOFLAGS 0x22 /* small item 0x04, 2 bytes: the IRQ mask */
#define AML_RES_IRQ_MAX     15
#define AML_RES_DWORD_ADDR  0x87 /* large item 0x07, 23 bytes */
#define AML_RES_WORD_ADDR   0x88 /* large item 0x08, 13 bytes */
#define AML_RES_WORD_LEN    13
#define AML_RES_DWORD_LEN   23
/* Address space descriptors: resource type, general and type flags. */
#define AML_ADDR_MEMORY     0
#define AML_ADDR_IO         1
#define AML_ADDR_BUS        2
#define AML_ADDR_MIN_FIXED  (1u << 2)
#define AML_ADDR_MAX_FIXED  (1u << 3) /* bit 0 clear: producer; bit 1 clear: positive decode */
#define AML_IO_ENTIRE_RANGE 0x3       /* _RNG: ISA and non-ISA ports */
#define AML_MEM_READ_WRITE  0x1       /* _RW; _MEM 0: non-cacheable */

/* Longest integer encoding: prefix + 8 bytes. */
#define AML_INT_MAX_BYTES 9

static void fail(struct aml *a, int err)
{
	if (!a->err)
		a->err = err;
}

void aml_init(struct aml *a, uint8_t *buf, size_t cap)
{
	*a = (struct aml){ .buf = buf, .cap = cap };
}

long aml_finish(const struct aml *a)
{
	return a->err ? a->err : (long)a->len;
}

unsigned aml_pkglen_encode(uint8_t out[4], uint32_t value)
{
	if (value > AML_PKGLEN_MAX)
		return 0;
	if (value < 0x40) {
		out[0] = (uint8_t)value;
		return 1;
	}
	/* Multi-byte form: bits 7-6 of the lead byte count the bytes that
	 * follow, its bits 3-0 hold the low nibble, each following byte the
	 * next 8 bits. */
	unsigned extra = value < (1u << 12) ? 1 : value < (1u << 20) ? 2 : 3;
	out[0] = (uint8_t)((extra << 6) | (value & 0x0F));
	for (unsigned i = 0; i < extra; i++)
		out[1 + i] = (uint8_t)(value >> (4 + 8 * i));
	return 1 + extra;
}

unsigned aml_pkglen_for_body(uint8_t out[4], size_t body)
{
	/* The value counts the PkgLength's own bytes, so try each size in
	 * turn: the first whose total still fits that size's range wins. */
	static const uint32_t limit[4] = { 0x3F, 0xFFF, 0xFFFFF, AML_PKGLEN_MAX };
	for (unsigned n = 1; n <= 4; n++) {
		if (body <= limit[n - 1] - n)
			return aml_pkglen_encode(out, (uint32_t)(body + n));
	}
	return 0;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (a->err)
		return;
	if (n > a->cap - a->len) {
		fail(a, -ENOSPC);
		return;
	}
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

static void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

static int is_lead(char c)
{
	return (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_seg_char(char c)
{
	return is_lead(c) || (c >= '0' && c <= '9');
}

void aml_namestring(struct aml *a, const char *path)
{
	uint8_t out[2 + 255 * 4 + 256];
	size_t n = 0;
	const char *s = path;

	if (*s == AML_ROOT_CHAR)
		out[n++] = (uint8_t)*s++;
	else
		while (*s == AML_PARENT_CHAR && n < 255)
			out[n++] = (uint8_t)*s++;

	/* Count and check the segments first: the prefix byte depends on
	 * how many there are. */
	unsigned nseg = 0;
	uint8_t segs[255][4];
	while (*s) {
		if (nseg == 255 || !is_lead(*s)) {
			fail(a, -EINVAL);
			return;
		}
		unsigned k = 0;
		while (*s && *s != '.') {
			if (k == 4 || !is_seg_char(*s)) {
				fail(a, -EINVAL);
				return;
			}
			segs[nseg][k++] = (uint8_t)*s++;
		}
		while (k < 4)
			segs[nseg][k++] = '_';
		nseg++;
		if (*s == '.' && *++s == '\0') {
			fail(a, -EINVAL); /* trailing dot */
			return;
		}
	}

	if (nseg == 0) {
		/* Only "\" (or "^"...) alone names something; "" does not. */
		if (n == 0) {
			fail(a, -EINVAL);
			return;
		}
		out[n++] = AML_NULL_NAME;
	} else if (nseg == 2) {
		out[n++] = AML_DUAL_NAME;
	} else if (nseg > 2) {
		out[n++] = AML_MULTI_NAME;
		out[n++] = (uint8_t)nseg;
	}
	for (unsigned i = 0; i < nseg; i++) {
		memcpy(out + n, segs[i], 4);
		n += 4;
	}
	aml_bytes(a, out, n);
}

/* Encodes an integer into out; returns its size. */
static size_t encode_integer(uint8_t out[AML_INT_MAX_BYTES], uint64_t v)
{
	size_t size;

	if (v == 0) {
		out[0] = AML_ZERO_OP;
		return 1;
	}
	if (v == 1) {
		out[0] = AML_ONE_OP;
		return 1;
	}
	if (v <= 0xFF) {
		out[0] = AML_BYTE_PREFIX;
		size = 1;
	} else if (v <= 0xFFFF) {
		out[0] = AML_WORD_PREFIX;
		size = 2;
	} else if (v <= 0xFFFFFFFFu) {
		out[0] = AML_DWORD_PREFIX;
		size = 4;
	} else {
		out[0] = AML_QWORD_PREFIX;
		size = 8;
	}
	for (size_t i = 0; i < size; i++)
		out[1 + i] = (uint8_t)(v >> (8 * i));
	return 1 + size;
}

void aml_integer(struct aml *a, uint64_t v)
{
	uint8_t out[AML_INT_MAX_BYTES];
	aml_bytes(a, out, encode_integer(out, v));
}

void aml_string(struct aml *a, const char *s)
{
	for (const char *c = s; *c; c++) {
		if ((unsigned char)*c > 0x7F) {
			fail(a, -EINVAL);
			return;
		}
	}
	aml_byte(a, AML_STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1);
}

void aml_name(struct aml *a, const char *path)
{
	aml_byte(a, AML_NAME_OP);
	aml_namestring(a, path);
}

size_t aml_scope_begin(struct aml *a, const char *path)
{
	aml_byte(a, AML_SCOPE_OP);
	size_t mark = a->len;
	aml_namestring(a, path);
	return mark;
}

size_t aml_device_begin(struct aml *a, const char *name)
{
	static const uint8_t op[2] = { AML_EXT_OP, AML_EXT_DEVICE_OP };
	aml_bytes(a, op, sizeof(op));
	size_t mark = a->len;
	aml_namestring(a, name);
	return mark;
}

size_t aml_package_begin(struct aml *a, uint8_t count)
{
	aml_byte(a, AML_PACKAGE_OP);
	size_t mark = a->len;
	aml_byte(a, count);
	return mark;
}

/* Inserts PkgLength (covering `prefix` and the body written since `mark`)
 * followed by `prefix` at `mark`, shifting the body up. */
static void close_pkg(struct aml *a, size_t mark, const uint8_t *prefix, size_t plen)
{
	uint8_t pl[4];

	if (a->err)
		return;
	if (mark > a->len) {
		fail(a, -EINVAL);
		return;
	}
	size_t body = a->len - mark;
	unsigned n = aml_pkglen_for_body(pl, plen + body);
	if (n == 0) {
		fail(a, -ENOSPC);
		return;
	}
	if (n + plen > a->cap - a->len) {
		fail(a, -ENOSPC);
		return;
	}
	memmove(a->buf + mark + n + plen, a->buf + mark, body);
	memcpy(a->buf + mark, pl, n);
	if (plen)
		memcpy(a->buf + mark + n, prefix, plen);
	a->len += n + plen;
}

void aml_end(struct aml *a, size_t mark)
{
	close_pkg(a, mark, NULL, 0);
}

size_t aml_restemplate_begin(struct aml *a)
{
	aml_byte(a, AML_BUFFER_OP);
	return a->len;
}

static void buffer_end(struct aml *a, size_t mark)
{
	uint8_t size[AML_INT_MAX_BYTES];

	if (a->err)
		return;
	/* BufferSize is a TermArg; a constant of the body's length. */
	close_pkg(a, mark, size, encode_integer(size, a->len - mark));
}

void aml_restemplate_end(struct aml *a, size_t mark)
{
	static const uint8_t end_tag[2] = { AML_RES_END_TAG, 0x00 };
	aml_bytes(a, end_tag, sizeof(end_tag));
	buffer_end(a, mark);
}

void aml_buffer(struct aml *a, const void *p, size_t n)
{
	size_t mark = aml_restemplate_begin(a);
	aml_bytes(a, p, n);
	buffer_end(a, mark);
}

void aml_res_io16(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	if (min > max) {
		fail(a, -EINVAL);
		return;
	}
	const uint8_t d[8] = {
		AML_RES_IO,
		AML_RES_IO_DECODE16,
		(uint8_t)min,
		(uint8_t)(min >> 8),
		(uint8_t)max,
		(uint8_t)(max >> 8),
		align,
		len,
	};
	aml_bytes(a, d, sizeof(d));
}

void aml_res_irq_noflags(struct aml *a, uint8_t irq)
{
	if (irq > AML_RES_IRQ_MAX) {
		fail(a, -EINVAL);
		return;
	}
	uint16_t mask = (uint16_t)(1u << irq);
	const uint8_t d[3] = { AML_RES_IRQ_NOFLAGS, (uint8_t)mask, (uint8_t)(mask >> 8) };
	aml_bytes(a, d, sizeof(d));
}

/* EISA ID letters are 5 bits each ('A' is 1); digits are hex nibbles. */
static int eisa_letter(char c)
{
	return c >= 'A' && c <= 'Z' ? c - '@' : -1;
}

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v = 0;

	if (strlen(id) != 7) {
		fail(a, -EINVAL);
		return;
	}
	for (unsigned i = 0; i < 3; i++) {
		int l = eisa_letter(id[i]);
		if (l < 0) {
			fail(a, -EINVAL);
			return;
		}
		v = v << 5 | (uint32_t)l;
	}
	for (unsigned i = 3; i < 7; i++) {
		int n = hex_nibble(id[i]);
		if (n < 0) {
			fail(a, -EINVAL);
			return;
		}
		v = v << 4 | (uint32_t)n;
	}
	/* The 32 bits are stored big-endian: manufacturer then product. */
	uint32_t be = (v >> 24) | ((v >> 8) & 0xFF00) | ((v << 8) & 0xFF0000) | (v << 24);
	uint8_t out[AML_INT_MAX_BYTES];
	out[0] = AML_DWORD_PREFIX;
	for (unsigned i = 0; i < 4; i++)
		out[1 + i] = (uint8_t)(be >> (8 * i));
	aml_bytes(a, out, 5);
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A Word or DWord Address Space Descriptor for the fixed range [min, max]
 * that the device produces: granularity 0, no translation, length
 * max - min + 1, which must fit the field. */
static void res_addr(struct aml *a, unsigned width, uint8_t type, uint8_t type_flags, uint32_t min,
		     uint32_t max)
{
	uint64_t len = (uint64_t)max - min + 1;
	if (min > max || len >> (8 * width)) {
		fail(a, -EINVAL);
		return;
	}
	uint8_t d[3 + AML_RES_DWORD_LEN];
	uint8_t body = width == 2 ? AML_RES_WORD_LEN : AML_RES_DWORD_LEN;
	d[0] = width == 2 ? AML_RES_WORD_ADDR : AML_RES_DWORD_ADDR;
	d[1] = body;
	d[2] = 0;
	d[3] = type;
	d[4] = AML_ADDR_MIN_FIXED | AML_ADDR_MAX_FIXED;
	d[5] = type_flags;
	put_le(d + 6, 0, width);                 /* granularity */
	put_le(d + 6 + width, min, width);
	put_le(d + 6 + 2 * width, max, width);
	put_le(d + 6 + 3 * width, 0, width);     /* translation offset */
	put_le(d + 6 + 4 * width, len, width);
	aml_bytes(a, d, 3u + body);
}

void aml_res_word_bus_number(struct aml *a, uint16_t min, uint16_t max)
{
	res_addr(a, 2, AML_ADDR_BUS, 0, min, max);
}

void aml_res_word_io(struct aml *a, uint16_t min, uint16_t max)
{
	res_addr(a, 2, AML_ADDR_IO, AML_IO_ENTIRE_RANGE, min, max);
}

void aml_res_dword_memory(struct aml *a, uint32_t min, uint32_t max)
{
	res_addr(a, 4, AML_ADDR_MEMORY, AML_MEM_READ_WRITE, min, max);
}
