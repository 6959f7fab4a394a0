/* abort — what ends vigil-metal when its own code gives up: one line, then
 * the machine powers off with metal_crash's code (metal.h), so a test
 * sees both the reason and QEMU's exit. Also the compiler's stack-smashing
 * hook, for code built with a protector (libjansson.a). */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

#include "metal/metal.h"

void abort(void)
{
	metal_log("abort() from %p", __builtin_return_address(0));
	metal_crash("aborted");
}

void exit(int code)
{
	metal_log("exit(%d) from %p", code, __builtin_return_address(0));
	metal_poweroff(code);
}

void __assert_fail(const char *expr, const char *file, unsigned line, const char *func)
{
	metal_log("%s:%u: %s: assertion '%s' failed", file, line, func, expr);
	metal_crash("aborted");
}

/* Read by glibc-built code as %fs:0x28 (main.c points FS at a block that
 * holds it); by our own build, if it ever uses a protector, here. */
uintptr_t __stack_chk_guard = 0x595e9fbd94fda766ull;

__attribute__((noreturn)) void __stack_chk_fail(void);
void __stack_chk_fail(void)
{
	metal_log("stack smashing detected in the function returning to %p", __builtin_return_address(0));
	metal_crash("aborted");
}

char *getenv(const char *name)
{
	(void)name;
	return NULL;
}
