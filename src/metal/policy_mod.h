/* policy_mod — the policy file given as a multiboot module, read with the
 * hosted build's own parser (src/vmm/policy_json*.c over jansson). */
#ifndef VIGIL_METAL_POLICY_MOD_H
#define VIGIL_METAL_POLICY_MOD_H

#include <stddef.h>

#include "core/policy.h"

/* 0 with *out filled (the caller owns it), or -1 with the parser's line. */
int metal_policy_parse(const char *text, size_t len, struct policy_spec *out, char *err, size_t errlen);

#endif
