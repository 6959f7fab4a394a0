/* policy_json — the policy file (docs/POLICY.md, docs/policy.schema.json)
 * read into a `struct policy_spec` (core/policy.h) and written back
 * (GET /policy). Used by the CLI (--policy, `vigil policy check`), the config
 * file's "policy" key and the API (PUT /policy). Input is untrusted: every
 * error is one line that names the rule (id and position) and the field,
 * e.g. `policy: rule "com2" (#3): ports: reversed range "0x3ff-0x3f8"`.
 * Checks that need the host (an overlay's directory is writable) are done
 * here, which is why this lives in vmm/ and not in core/. */
#ifndef VIGIL_VMM_POLICY_JSON_H
#define VIGIL_VMM_POLICY_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "core/policy.h"

/* Files (and PUT /policy bodies) larger than this are refused unread. */
#define POLICY_FILE_MAX (4u << 20)

/* Decodes a policy document into *out (which the caller then owns and
 * frees with policy_spec_free). 0, or -1 + err with *out zeroed. */
int policy_json_parse(json_t *doc, struct policy_spec *out, char *err, size_t errlen);

/* Text (a file's or a request body's) to a spec: size limit, JSON syntax
 * (line and column), then policy_json_parse. */
int policy_json_parse_text(const char *text, size_t len, struct policy_spec *out, char *err, size_t errlen);
int policy_json_load_file(const char *path, struct policy_spec *out, char *err, size_t errlen);

/* Parses and compiles (policy_compile's meaning checks: shadowed rules,
 * duplicate ids, ...), so one call gives the whole verdict. The compiled
 * policy, or NULL + err; *out holds the spec on success only. */
struct policy *policy_json_build(json_t *doc, struct policy_spec *out, char *err, size_t errlen);

/* The spec as the document policy_json_parse reads back to the same spec
 * (numbers as hex strings, every default spelled out). NULL: out of memory. */
json_t *policy_json_dump(const struct policy_spec *s);

/* Firecracker's custom CPU template (PUT /cpu-config, the config file's
 * "cpu-config"; x86: cpuid_modifiers, msr_modifiers) as redirect rules
 * "cpu-config.cpuid.N" / "cpu-config.msr.N" put first in *s, in place of
 * the cpu-config rules it had. Compiled before *s changes; 0 or -1 + err
 * with *s as it was. See cpu_config_json.c for what each becomes. */
int cpu_config_json_apply(json_t *o, struct policy_spec *s, char *err, size_t errlen);

/* A live change (PUT /policy after InstanceStart) may not change what was
 * fixed when the vCPUs and the board were made: the cpuid rules (KVM's
 * CPUID table) and the rtc rules (the CMOS clock's start). 0, or -1 + err
 * naming the first rule that differs. */
int policy_check_live_change(const struct policy_spec *cur, const struct policy_spec *next, char *err,
			     size_t errlen);

#endif
