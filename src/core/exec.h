/* exec — the device context as the portable part sees it: run a function
 * there, arm a timer, and "doorbells" (a handle that, rung from any thread,
 * calls its callback on the device context; rings coalesce while one is
 * pending). The Linux host implements it with the epoll event thread
 * (src/host/exec_evloop.c); a bare-metal build would use a per-core poll
 * loop. Used by virtio_pci (lifecycle steps, queue kicks) and device models.
 * Threading: post/ring/timer_arm may be called from any thread; every
 * callback runs on the one device context, one at a time, and must not
 * block. */
#ifndef VIGIL_CORE_EXEC_H
#define VIGIL_CORE_EXEC_H

#include <stdint.h>

struct exec_timer;
struct doorbell;

struct exec_ops {
	/* Runs fn(arg) on the device context soon; -ESRCH when it is not
	 * running (then nobody else is on it: the caller may run fn itself). */
	int (*post)(void *ctx, void (*fn)(void *arg), void *arg);
	/* A one-shot timer calling fn(arg) on the device context; NULL on failure. */
	struct exec_timer *(*timer_new)(void *ctx, void (*fn)(void *arg), void *arg);
	/* (Re)arms after ms milliseconds; 0 disarms. */
	int (*timer_arm)(void *ctx, struct exec_timer *t, uint64_t ms);
	void (*timer_free)(void *ctx, struct exec_timer *t);
	/* A doorbell calling fn(arg) on the device context when rung; NULL on failure. */
	struct doorbell *(*doorbell_new)(void *ctx, void (*fn)(void *arg), void *arg);
	void (*doorbell_ring)(void *ctx, struct doorbell *db);
	/* No callback for db after this returns if called on the device
	 * context or with it stopped. NULL is fine. */
	void (*doorbell_free)(void *ctx, struct doorbell *db);
};

struct exec {
	const struct exec_ops *ops;
	void *ctx;
};

static inline int exec_post(const struct exec *e, void (*fn)(void *), void *arg)
{
	return e->ops->post(e->ctx, fn, arg);
}

#endif
