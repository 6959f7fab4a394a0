/* Shared between the policy file's reader (policy_json.c), its writer
 * (policy_json_out.c) and cpu-config (cpu_config_json.c). */
#ifndef VIGIL_VMM_POLICY_JSON_INT_H
#define VIGIL_VMM_POLICY_JSON_INT_H

#include <stdint.h>
#include <stddef.h>

/* "0x..." hex or decimal, no sign, no overflow; 0 or -1. */
int policy_parse_u64(const char *s, uint64_t *v);
/* RFC 3339 ("2001-02-03T04:05:06.5Z", "...+02:00") to seconds and
 * nanoseconds since 1970 (UTC); 0 or -1. */
int policy_parse_rfc3339(const char *s, int64_t *sec, uint32_t *nsec);
/* The reverse, always in UTC ("Z"), with the fraction only when nonzero. */
void policy_format_rfc3339(int64_t sec, uint32_t nsec, char *buf, size_t len);

#endif
