/* The snapshot state file's writer and checking reader (core/snap.h). */
#include "core/snap.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/le.h"

static const char HDR_MAGIC[8] = { 'V', 'I', 'G', 'I', 'L', 'S', 'N', 'P' };
static const char END_MAGIC[8] = { 'V', 'I', 'G', 'I', 'L', 'E', 'N', 'D' };
#define SECT_MAGIC 0x54434553u /* "SECT" */
#define HDR_LEN 16
#define END_LEN 16
/* A section header is at most this long: magic, two names, version, len. */
#define SECT_HDR_MIN (4 + 2 + 2 + 4 + 8)

/* CRC-32 (IEEE, as zlib's), eight bytes a step from eight tables (the
 * "slicing-by-8" method): every restore checks the whole file, and the
 * byte-at-a-time loop was most of what reading a snapshot cost. */
static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_tab_init(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_tab[0][i] = c;
	}
	for (unsigned i = 0; i < 256; i++)
		for (unsigned t = 1; t < 8; t++)
			crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

uint32_t snap_crc32(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *b = p;

	pthread_once(&crc_once, crc_tab_init);
	crc = ~crc;
	for (; n >= 8; n -= 8, b += 8) {
		uint32_t lo = (uint32_t)le_load(b, 4) ^ crc, hi = (uint32_t)le_load(b + 4, 4);
		crc = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^ crc_tab[5][(lo >> 16) & 0xff] ^
		      crc_tab[4][lo >> 24] ^ crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
		      crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
	}
	for (; n; n--, b++)
		crc = crc_tab[0][(crc ^ *b) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* ---- writing ---- */
struct snap_writer {
	uint8_t *buf;
	size_t len, cap;
	bool oom;
	bool open;
	size_t sect_start; /* offset of the open section's "SECT" */
	size_t len_at;     /* offset of its u64 length */
	uint32_t nr;
};

static void wr(struct snap_writer *w, const void *p, size_t n)
{
	if (w->oom)
		return;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		while (cap < w->len + n)
			cap *= 2;
		uint8_t *b = realloc(w->buf, cap);
		if (!b) {
			w->oom = true;
			return;
		}
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void wr_le(struct snap_writer *w, uint64_t v, unsigned n)
{
	uint8_t b[8];
	le_store(b, n, v);
	wr(w, b, n);
}

struct snap_writer *snap_writer_new(void)
{
	struct snap_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	wr(w, HDR_MAGIC, sizeof(HDR_MAGIC));
	wr_le(w, SNAP_FORMAT_VERSION, 4);
	wr_le(w, 0, 4);
	return w;
}

void snap_writer_free(struct snap_writer *w)
{
	if (!w)
		return;
	free(w->buf);
	free(w);
}

static void wr_name(struct snap_writer *w, const char *s)
{
	size_t n = strnlen(s, SNAP_ID_MAX);
	wr_le(w, n, 2);
	wr(w, s, n);
}

void snap_begin(struct snap_writer *w, const char *id, const char *kind, uint32_t version)
{
	if (w->open)
		w->oom = true; /* a writer's bug: refuse to finish */
	w->open = true;
	w->sect_start = w->len;
	wr_le(w, SECT_MAGIC, 4);
	wr_name(w, id);
	wr_name(w, kind);
	wr_le(w, version, 4);
	w->len_at = w->len;
	wr_le(w, 0, 8);
}

void snap_put(struct snap_writer *w, const void *p, size_t n)
{
	if (n)
		wr(w, p, n);
}
void snap_put_u8(struct snap_writer *w, uint8_t v) { wr_le(w, v, 1); }
void snap_put_u16(struct snap_writer *w, uint16_t v) { wr_le(w, v, 2); }
void snap_put_u32(struct snap_writer *w, uint32_t v) { wr_le(w, v, 4); }
void snap_put_u64(struct snap_writer *w, uint64_t v) { wr_le(w, v, 8); }
void snap_put_bool(struct snap_writer *w, bool v) { wr_le(w, v ? 1 : 0, 1); }

void snap_put_str(struct snap_writer *w, const char *s)
{
	size_t n = strlen(s);
	wr_le(w, n, 4);
	wr(w, s, n);
}

void snap_end(struct snap_writer *w)
{
	if (!w->open || w->oom) {
		w->oom = true;
		return;
	}
	w->open = false;
	le_store(w->buf + w->len_at, 8, w->len - (w->len_at + 8));
	wr_le(w, snap_crc32(0, w->buf + w->sect_start, w->len - w->sect_start), 4);
	w->nr++;
}

int snap_writer_finish(struct snap_writer *w, const uint8_t **buf, size_t *len)
{
	if (w->open || w->oom)
		return -1;
	wr(w, END_MAGIC, sizeof(END_MAGIC));
	wr_le(w, w->nr, 4);
	wr_le(w, snap_crc32(0, w->buf, w->len), 4);
	if (w->oom)
		return -1;
	w->open = true; /* finished: no more sections */
	*buf = w->buf;
	*len = w->len;
	return 0;
}

/* ---- reading ---- */
struct snap_section {
	char id[SNAP_ID_MAX + 1];
	char kind[SNAP_ID_MAX + 1];
	uint32_t version;
	const uint8_t *data;
	uint64_t len;
};

struct snap_reader {
	struct snap_section *s;
	unsigned n;
	int cur; /* -1: none */
	uint64_t pos;
	char err[SNAP_ERR_MAX];
};

static int open_fail(char *err, size_t errlen, const char *msg)
{
	snprintf(err, errlen, "snapshot file: %s", msg);
	return -1;
}

/* Reads a u16-counted name at *off; 0 or -1. */
static int rd_name(const uint8_t *b, size_t end, size_t *off, char *dst)
{
	if (*off + 2 > end)
		return -1;
	size_t n = le_load(b + *off, 2);
	*off += 2;
	if (n == 0 || n > SNAP_ID_MAX || *off + n > end)
		return -1;
	memcpy(dst, b + *off, n);
	dst[n] = 0;
	if (strlen(dst) != n)
		return -1; /* a NUL inside a name */
	*off += n;
	return 0;
}

struct snap_reader *snap_reader_open(const uint8_t *b, size_t len, char *err, size_t errlen)
{
	if (len < HDR_LEN + END_LEN || memcmp(b, HDR_MAGIC, sizeof(HDR_MAGIC)) != 0) {
		open_fail(err, errlen, len >= 8 && memcmp(b, HDR_MAGIC, 8) == 0 ? "truncated"
				       : "not a vigil snapshot (no VIGILSNP header)");
		return NULL;
	}
	uint32_t fv = (uint32_t)le_load(b + 8, 4);
	if (fv > SNAP_FORMAT_VERSION) {
		snprintf(err, errlen, "snapshot file: format version %u is newer than this vigil's %u", fv,
			 SNAP_FORMAT_VERSION);
		return NULL;
	}
	if (fv == 0 || le_load(b + 12, 4) != 0) {
		open_fail(err, errlen, "bad header (format version 0 or unknown flags)");
		return NULL;
	}
	size_t end = len - END_LEN;
	if (memcmp(b + end, END_MAGIC, sizeof(END_MAGIC)) != 0) {
		open_fail(err, errlen, "truncated (no VIGILEND trailer)");
		return NULL;
	}
	if (snap_crc32(0, b, end + 12) != (uint32_t)le_load(b + end + 12, 4)) {
		open_fail(err, errlen, "corrupted (checksum mismatch)");
		return NULL;
	}
	uint32_t nr = (uint32_t)le_load(b + end + 8, 4);
	/* Each section takes at least SECT_HDR_MIN + 2 + 4 bytes. */
	if ((uint64_t)nr * (SECT_HDR_MIN + 6) > end - HDR_LEN) {
		open_fail(err, errlen, "bad section count");
		return NULL;
	}
	struct snap_reader *r = calloc(1, sizeof(*r));
	if (!r || (nr && !(r->s = calloc(nr, sizeof(*r->s))))) {
		free(r);
		open_fail(err, errlen, "out of memory");
		return NULL;
	}
	r->cur = -1;
	size_t off = HDR_LEN;
	for (uint32_t i = 0; i < nr; i++) {
		struct snap_section *s = &r->s[i];
		size_t start = off;
		if (off + 4 > end || le_load(b + off, 4) != SECT_MAGIC) {
			snprintf(err, errlen, "snapshot file: section %u: bad header", i);
			goto bad;
		}
		off += 4;
		if (rd_name(b, end, &off, s->id) < 0 || rd_name(b, end, &off, s->kind) < 0 || off + 12 > end) {
			snprintf(err, errlen, "snapshot file: section %u: bad name", i);
			goto bad;
		}
		s->version = (uint32_t)le_load(b + off, 4);
		s->len = le_load(b + off + 4, 8);
		off += 12;
		if (s->len > end - off || end - off - s->len < 4) {
			snprintf(err, errlen, "snapshot file: section '%s': length past the end", s->id);
			goto bad;
		}
		s->data = b + off;
		off += s->len;
		if (snap_crc32(0, b + start, off - start) != (uint32_t)le_load(b + off, 4)) {
			snprintf(err, errlen, "snapshot file: section '%s': checksum mismatch", s->id);
			goto bad;
		}
		off += 4;
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(r->s[j].id, s->id) == 0) {
				snprintf(err, errlen, "snapshot file: section '%s' appears twice", s->id);
				goto bad;
			}
		r->n++;
	}
	if (off != end) {
		open_fail(err, errlen, "bytes after the last section");
		goto bad;
	}
	return r;
bad:
	snap_reader_free(r);
	return NULL;
}

void snap_reader_free(struct snap_reader *r)
{
	if (!r)
		return;
	free(r->s);
	free(r);
}

static int seterr(struct snap_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int seterr(struct snap_reader *r, const char *fmt, ...)
{
	if (r->err[0])
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	if (!r->err[0])
		strcpy(r->err, "snapshot error");
	return -1;
}

static int lookup(const struct snap_reader *r, const char *id)
{
	for (unsigned i = 0; i < r->n; i++)
		if (strcmp(r->s[i].id, id) == 0)
			return (int)i;
	return -1;
}

bool snap_has(const struct snap_reader *r, const char *id)
{
	return lookup(r, id) >= 0;
}

int snap_find(struct snap_reader *r, const char *id, const char *kind, uint32_t *version)
{
	int i = lookup(r, id);
	r->cur = -1;
	if (i < 0)
		return seterr(r, "the snapshot has no section '%s' (%s)", id, kind);
	if (strcmp(r->s[i].kind, kind) != 0)
		return seterr(r, "section '%s' holds a %s, not a %s", id, r->s[i].kind, kind);
	r->cur = i;
	r->pos = 0;
	if (version)
		*version = r->s[i].version;
	return r->err[0] ? -1 : 0;
}

int snap_open_section(struct snap_reader *r, const char *id, const char *kind, uint32_t max, uint32_t *version)
{
	uint32_t v = 0;
	if (snap_find(r, id, kind, &v) < 0)
		return -1;
	if (v > max || v == 0) {
		r->cur = -1;
		return seterr(r, "section '%s' (%s) version %u is %s this vigil's %u", id, kind, v,
			      v ? "newer than" : "not known to", max);
	}
	if (version)
		*version = v;
	return 0;
}

size_t snap_left(const struct snap_reader *r)
{
	if (r->cur < 0)
		return 0;
	return (size_t)(r->s[r->cur].len - r->pos);
}

const uint8_t *snap_get_blob(struct snap_reader *r, size_t n)
{
	if (r->cur < 0) {
		seterr(r, "read outside any section");
		return NULL;
	}
	const struct snap_section *s = &r->s[r->cur];
	if (n > s->len - r->pos) {
		seterr(r, "section '%s' (%s) is too short", s->id, s->kind);
		r->pos = s->len;
		return NULL;
	}
	const uint8_t *p = s->data + r->pos;
	r->pos += n;
	return p;
}

void snap_get(struct snap_reader *r, void *p, size_t n)
{
	const uint8_t *b = snap_get_blob(r, n);
	if (b)
		memcpy(p, b, n);
	else
		memset(p, 0, n);
}

static uint64_t get_le(struct snap_reader *r, unsigned n)
{
	const uint8_t *b = snap_get_blob(r, n);
	return b ? le_load(b, n) : 0;
}
uint8_t snap_get_u8(struct snap_reader *r) { return (uint8_t)get_le(r, 1); }
uint16_t snap_get_u16(struct snap_reader *r) { return (uint16_t)get_le(r, 2); }
uint32_t snap_get_u32(struct snap_reader *r) { return (uint32_t)get_le(r, 4); }
uint64_t snap_get_u64(struct snap_reader *r) { return get_le(r, 8); }

bool snap_get_bool(struct snap_reader *r)
{
	uint8_t v = snap_get_u8(r);
	if (v > 1)
		snap_fail(r, "a boolean holds %u", v);
	return v == 1;
}

void snap_get_str(struct snap_reader *r, char *dst, size_t cap)
{
	uint32_t n = snap_get_u32(r);
	dst[0] = 0;
	if (r->err[0])
		return;
	if (n >= cap) {
		snap_fail(r, "a string of %u bytes (at most %zu)", n, cap - 1);
		return;
	}
	const uint8_t *b = snap_get_blob(r, n);
	if (!b)
		return;
	memcpy(dst, b, n);
	dst[n] = 0;
	if (strlen(dst) != n)
		snap_fail(r, "a string holds a NUL");
}

int snap_fail(struct snap_reader *r, const char *fmt, ...)
{
	if (r->err[0])
		return -1;
	char msg[SNAP_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->cur >= 0)
		return seterr(r, "section '%s' (%s): %s", r->s[r->cur].id, r->s[r->cur].kind, msg);
	return seterr(r, "%s", msg);
}

int snap_status(const struct snap_reader *r, char *err, size_t errlen)
{
	if (!r->err[0])
		return 0;
	snprintf(err, errlen, "%s", r->err);
	return -1;
}

const char *snap_error(const struct snap_reader *r)
{
	return r->err;
}

unsigned snap_count(const struct snap_reader *r)
{
	return r->n;
}

int snap_section_info(const struct snap_reader *r, unsigned i, const char **id, const char **kind, uint32_t *version,
		      uint64_t *len)
{
	if (i >= r->n)
		return -1;
	*id = r->s[i].id;
	*kind = r->s[i].kind;
	*version = r->s[i].version;
	*len = r->s[i].len;
	return 0;
}
