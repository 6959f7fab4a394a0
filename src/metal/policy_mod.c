/* policy_mod — see policy_mod.h. jansson is Debian's static libjansson.a,
 * built for glibc with SSE and a stack protector: libc/glibc_compat.c gives
 * it what it names, and main.c points FS at a block holding the stack
 * canary. Its SSE use is harmless here: the parse runs once, before the
 * first VMRUN, so no guest FPU/SSE state lives in the registers yet. */
#include "metal/policy_mod.h"

#include "vmm/policy_json.h"

int metal_policy_parse(const char *text, size_t len, struct policy_spec *out, char *err, size_t errlen)
{
	return policy_json_parse_text(text, len, out, err, errlen);
}
