/* exec_poll — core/exec.h on bare metal: no event thread, so posted work,
 * timers and doorbells wait in lists that the poll loop (metal_poll, run
 * between two guest entries and while the backend idles) works off on the
 * vCPU's own CPU. One context, one caller at a time: callbacks never run
 * nested. */
#ifndef VIGIL_METAL_EXEC_POLL_H
#define VIGIL_METAL_EXEC_POLL_H

#include <stdbool.h>

#include "core/exec.h"

struct exec metal_exec(void);
/* Runs whatever is due; true if anything ran. */
bool metal_exec_poll(void);

#endif
