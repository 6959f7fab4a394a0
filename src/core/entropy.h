/* entropy — random bytes from the host without naming how it gets them
 * (Linux: getrandom(), src/host/entropy.c; tests: a pattern or a failure).
 * Used by virtio_rng (the guest's entropy) and virtio_net (a random MAC).
 * Threading: fill may be called from any thread. */
#ifndef VIGIL_CORE_ENTROPY_H
#define VIGIL_CORE_ENTROPY_H

#include <stddef.h>

struct entropy {
	/* Fills all len bytes: 0, or -errno and the buffer's contents are
	 * not to be used. */
	int (*fill)(void *ctx, void *buf, size_t len);
	void *ctx;
};

static inline int entropy_fill(const struct entropy *e, void *buf, size_t len)
{
	return e->fill(e->ctx, buf, len);
}

#endif
