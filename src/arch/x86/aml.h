/* aml — a tiny encoder for ACPI Machine Language (ACPI 6.5, chapter 20), just
 * enough for a static DSDT: names, integers, strings, packages, buffers,
 * scopes, devices, EISA IDs and resource templates (I/O ports and bridge
 * address windows). No methods, no operators.
 * Used by the ACPI table builder (arch/x86/acpi.c).
 *
 * The encoder writes into a caller-owned buffer. Errors are sticky: after the
 * first one (-ENOSPC when the buffer is full, -EINVAL for a malformed name or
 * value) every call is a no-op, and aml_finish() reports it, so a builder can
 * emit a whole tree and check once at the end.
 *
 * Objects with a PkgLength (Scope, Device, Package, Buffer) are opened with
 * a *_begin() call that returns a mark and closed with the matching end call;
 * the length is only known then, so the body is shifted up to make room for
 * it. Marks nest like the objects do. */
#ifndef VIGIL_ARCH_X86_AML_H
#define VIGIL_ARCH_X86_AML_H

#include <stddef.h>
#include <stdint.h>

struct aml {
	uint8_t *buf;
	size_t cap;
	size_t len;
	int err; /* first error, 0 if none */
};

/* Largest value a PkgLength can hold (4-byte form, 28 bits). */
#define AML_PKGLEN_MAX 0x0FFFFFFFu

void aml_init(struct aml *a, uint8_t *buf, size_t cap);

/* Bytes written so far, or the first error (negative errno). */
long aml_finish(const struct aml *a);

/* Encodes `value` as a PkgLength in its shortest form. `value` is the
 * whole package length, which counts the PkgLength bytes themselves.
 * Returns the number of bytes (1..4), or 0 if value > AML_PKGLEN_MAX. */
unsigned aml_pkglen_encode(uint8_t out[4], uint32_t value);

/* Encodes the PkgLength for a body of `body` bytes following it: the value is
 * body plus the PkgLength's own size. Returns 1..4, or 0 if too large. */
unsigned aml_pkglen_for_body(uint8_t out[4], size_t body);

/* Raw bytes (for anything the encoder does not model). */
void aml_bytes(struct aml *a, const void *p, size_t n);

/* A NameString: an optional root prefix "\" or parent prefixes "^", then
 * dot-separated segments of 1-4 characters ([A-Z_] then [A-Z0-9_]), padded
 * with '_' to 4 ("_S5" is "_S5_"). "\" alone is the root (NullName). */
void aml_namestring(struct aml *a, const char *path);

/* The shortest integer encoding: ZeroOp, OneOp, ByteConst, WordConst,
 * DWordConst or QWordConst. */
void aml_integer(struct aml *a, uint64_t v);

/* A String: ASCII 0x01-0x7F, NUL-terminated in AML. */
void aml_string(struct aml *a, const char *s);

/* Name(path, <data object>): emits NameOp and the name; the caller emits the
 * data object right after (aml_integer, aml_string, a package...). */
void aml_name(struct aml *a, const char *path);

/* Scope(path){...} and Device(name){...}. */
size_t aml_scope_begin(struct aml *a, const char *path);
size_t aml_device_begin(struct aml *a, const char *name);

/* Package(){...} with `count` elements; the caller emits exactly that many
 * data objects before closing it. */
size_t aml_package_begin(struct aml *a, uint8_t count);

/* Closes a Scope, Device or Package opened at `mark`. */
void aml_end(struct aml *a, size_t mark);

/* Buffer(){bytes}: the BufferSize is the number of bytes. */
void aml_buffer(struct aml *a, const void *p, size_t n);

/* ResourceTemplate(){...}: a Buffer whose body is resource descriptors,
 * closed by aml_restemplate_end(), which appends the End Tag (checksum 0,
 * meaning "not checksummed") and the BufferSize. */
size_t aml_restemplate_begin(struct aml *a);
void aml_restemplate_end(struct aml *a, size_t mark);

/* IO(Decode16, min, max, align, len): the small I/O port descriptor. */
void aml_res_io16(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len);

/* IRQNoFlags(){irq}: the 2-byte IRQ descriptor (ISA IRQ 0..15, edge, active
 * high, exclusive); -EINVAL for irq > 15. */
void aml_res_irq_noflags(struct aml *a, uint8_t irq);

/* Address space descriptors for a bridge's windows, all ResourceProducer,
 * PosDecode, MinFixed, MaxFixed, granularity 0, no translation, length
 * max - min + 1 (-EINVAL if min > max or the length does not fit):
 *   WordBusNumber (..., 0, min, max, 0, len)
 *   WordIO (..., EntireRange, 0, min, max, 0, len)
 *   DWordMemory (..., NonCacheable, ReadWrite, 0, min, max, 0, len) */
void aml_res_word_bus_number(struct aml *a, uint16_t min, uint16_t max);
void aml_res_word_io(struct aml *a, uint16_t min, uint16_t max);
void aml_res_dword_memory(struct aml *a, uint32_t min, uint32_t max);

/* EisaId("PNP0A03"): three letters A-Z and four hex digits (upper case),
 * compressed into a DWordConst (0x030AD041 for PNP0A03). */
void aml_eisaid(struct aml *a, const char *id);

#endif
