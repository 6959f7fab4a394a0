/* snap — vigil's snapshot state file: a header, then one section per part
 * of the VM (a vCPU, the interrupt controllers, a device, the policy, the
 * counters), each named by the id of what it belongs to, with a kind, its
 * own version, its length and a CRC32, and a trailer whose CRC32 covers the
 * whole file. Guest memory is not here: it is the memory file beside it.
 *
 * The reader checks everything before anyone reads a field: the magic, the
 * format version, the trailer's CRC (a truncated or corrupted file), every
 * section's bounds and CRC. Reading past a section's end, a missing
 * section, or a version from the future is an error with one line naming
 * the section; errors are sticky, so a loader can read a whole section and
 * check once. Portable: no host I/O (the caller reads and writes the file).
 *
 * Layout (all numbers little-endian):
 *   header  "VIGILSNP" u32 format_version u32 flags(0)
 *   section u32 "SECT" u16 id_len id u16 kind_len kind u32 version
 *           u64 len payload[len] u32 crc32(from "SECT" to the payload's end)
 *   trailer "VIGILEND" u32 nr_sections u32 crc32(every byte before it)
 */
#ifndef VIGIL_CORE_SNAP_H
#define VIGIL_CORE_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_FORMAT_VERSION 1
#define SNAP_ID_MAX 64
#define SNAP_ERR_MAX 256

uint32_t snap_crc32(uint32_t crc, const void *p, size_t n);

/* ---- writing ---- */
struct snap_writer;

struct snap_writer *snap_writer_new(void);
void snap_writer_free(struct snap_writer *w);

/* Opens a section (the previous one must be ended). */
void snap_begin(struct snap_writer *w, const char *id, const char *kind, uint32_t version);
void snap_put(struct snap_writer *w, const void *p, size_t n);
void snap_put_u8(struct snap_writer *w, uint8_t v);
void snap_put_u16(struct snap_writer *w, uint16_t v);
void snap_put_u32(struct snap_writer *w, uint32_t v);
void snap_put_u64(struct snap_writer *w, uint64_t v);
void snap_put_bool(struct snap_writer *w, bool v);
/* u32 length, then the bytes (no NUL). */
void snap_put_str(struct snap_writer *w, const char *s);
void snap_end(struct snap_writer *w);

/* The finished file (trailer added): 0 with *buf and *len valid until the
 * writer is freed; -1 if a section is still open or memory ran out. */
int snap_writer_finish(struct snap_writer *w, const uint8_t **buf, size_t *len);

/* ---- reading ---- */
struct snap_reader;

/* Checks the whole file (see above); buf must outlive the reader. NULL
 * with one line in err. */
struct snap_reader *snap_reader_open(const uint8_t *buf, size_t len, char *err, size_t errlen);
void snap_reader_free(struct snap_reader *r);

/* Positions on the section `id`: 0 with its version in *version; -1 (and
 * the sticky error) when it is missing or its kind is not `kind`. */
int snap_find(struct snap_reader *r, const char *id, const char *kind, uint32_t *version);
/* Like snap_find, and refuses a version above `max` ("newer than this
 * vigil"). */
int snap_open_section(struct snap_reader *r, const char *id, const char *kind, uint32_t max, uint32_t *version);
bool snap_has(const struct snap_reader *r, const char *id);

/* Reads from the current section; past its end: zeroes, and the sticky
 * error ("section 'x' is too short"). */
void snap_get(struct snap_reader *r, void *p, size_t n);
uint8_t snap_get_u8(struct snap_reader *r);
uint16_t snap_get_u16(struct snap_reader *r);
uint32_t snap_get_u32(struct snap_reader *r);
uint64_t snap_get_u64(struct snap_reader *r);
bool snap_get_bool(struct snap_reader *r);
/* A string into dst (cap bytes with its NUL); too long: the error. */
void snap_get_str(struct snap_reader *r, char *dst, size_t cap);
/* A pointer to the next n bytes of the section (NULL and the error when
 * fewer remain): for blobs read in place. */
const uint8_t *snap_get_blob(struct snap_reader *r, size_t n);
size_t snap_left(const struct snap_reader *r);

/* Records a loader's own error about the current section (the first error
 * wins): "section 'id': <message>". Returns -1. */
__attribute__((format(printf, 2, 3))) int snap_fail(struct snap_reader *r, const char *fmt, ...);
/* 0 while no error; else -1 with the message copied to err. */
int snap_status(const struct snap_reader *r, char *err, size_t errlen);
const char *snap_error(const struct snap_reader *r); /* "" while none */

/* Walks the sections in file order (vigil snapshot describe). */
unsigned snap_count(const struct snap_reader *r);
int snap_section_info(const struct snap_reader *r, unsigned i, const char **id, const char **kind, uint32_t *version,
		      uint64_t *len);

#endif
