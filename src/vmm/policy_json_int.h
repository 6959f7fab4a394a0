/* Shared between the policy file's reader (policy_json.c), its writer
 * (policy_json_out.c) and cpu-config (cpu_config_json.c). */
#ifndef VIGIL_VMM_POLICY_JSON_INT_H
#define VIGIL_VMM_POLICY_JSON_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/policy.h"

/* "0x..." hex or decimal, no sign, no overflow; 0 or -1. */
int policy_parse_u64(const char *s, uint64_t *v);
/* RFC 3339 ("2001-02-03T04:05:06.5Z", "...+02:00") to seconds and
 * nanoseconds since 1970 (UTC); 0 or -1. */
int policy_parse_rfc3339(const char *s, int64_t *sec, uint32_t *nsec);
/* The reverse, always in UTC ("Z"), with the fraction only when nonzero. */
void policy_format_rfc3339(int64_t sec, uint32_t nsec, char *buf, size_t len);

/* --- the reader's pieces (policy_json*.c) ------------------------------ */

/* Where in the document a reader is, for its messages. */
struct pj_ctx {
	char *err;
	size_t errlen;
	unsigned n;	/* 1-based position in "rules" */
	const char *id; /* NULL until known */
};

/* `policy: rule "ID" (#N): FIELD: MESSAGE` (`rule #N` before the id is
 * known; no "FIELD: " when field is NULL). Returns -1. */
__attribute__((format(printf, 3, 4))) int pj_err(struct pj_ctx *x, const char *field, const char *fmt, ...);
/* A value from the document, short and printable, for a message. */
void pj_shown(const char *s, char *out, size_t len);
/* A JSON integer >= 0 or a hex/decimal string, at most max. */
int pj_num(struct pj_ctx *x, const char *field, json_t *v, uint64_t max, uint64_t *out);
/* A list field (one value or "A-B" range, or an array of 1..256) into
 * r->ranges; reversed and overlapping entries refused. */
int pj_ranges(struct pj_ctx *x, const char *field, json_t *v, uint64_t max, struct policy_rule *r);
/* One of names[] (NULL-terminated): its index. */
int pj_enum(struct pj_ctx *x, const char *field, json_t *v, const char *const *names, int *out);
/* A drive_id / iface_id. */
int pj_name(struct pj_ctx *x, const char *field, json_t *v, char *out, size_t size);

/* Whether `key` is one of the resource's own match fields. */
bool pj_known_field(enum policy_resource res, const char *key);
/* The resource's match fields of rule object o into r (its verdict known). */
int pj_match_fields(struct pj_ctx *x, json_t *o, struct policy_rule *r);

#endif
