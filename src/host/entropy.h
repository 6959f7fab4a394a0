/* entropy — the host's entropy (getrandom) as a core/entropy.h source.
 * Used by the builder (src/cli) and unit tests. Threading: any thread. */
#ifndef VIGIL_HOST_ENTROPY_H
#define VIGIL_HOST_ENTROPY_H

#include "core/entropy.h"

struct entropy host_entropy(void);

#endif
