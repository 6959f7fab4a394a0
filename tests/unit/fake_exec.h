/* fake_exec — a device context the test runs by hand, for device models
 * tested without an event thread: post() answers "not running" (the
 * caller runs the step itself), timers are made but never fire, and a
 * doorbell only counts its rings (the test calls fake_doorbell.fn when it
 * wants the doorbell's turn). One doorbell: the last one made. A clock
 * that stands at 0. */
#ifndef VIGIL_TESTS_FAKE_EXEC_H
#define VIGIL_TESTS_FAKE_EXEC_H

#include <errno.h>

#include "core/clock.h"
#include "core/exec.h"

struct exec_timer {
	int unused;
};
struct doorbell {
	void (*fn)(void *);
	void *arg;
	int rung;
};
static struct exec_timer fake_timer;
static struct doorbell fake_doorbell;

static int fake_post(void *ctx, void (*fn)(void *), void *arg)
{
	(void)ctx, (void)fn, (void)arg;
	return -ESRCH;
}
static struct exec_timer *fake_timer_new(void *ctx, void (*fn)(void *), void *arg)
{
	(void)ctx, (void)fn, (void)arg;
	return &fake_timer;
}
static int fake_timer_arm(void *ctx, struct exec_timer *t, uint64_t ms)
{
	(void)ctx, (void)t, (void)ms;
	return 0;
}
static void fake_timer_free(void *ctx, struct exec_timer *t)
{
	(void)ctx, (void)t;
}
static struct doorbell *fake_doorbell_new(void *ctx, void (*fn)(void *), void *arg)
{
	(void)ctx;
	fake_doorbell = (struct doorbell){ fn, arg, 0 };
	return &fake_doorbell;
}
static void fake_doorbell_ring(void *ctx, struct doorbell *db)
{
	(void)ctx;
	db->rung++;
}
static void fake_doorbell_free(void *ctx, struct doorbell *db)
{
	(void)ctx, (void)db;
}
static const struct exec_ops fake_exec_ops = { .post = fake_post, .timer_new = fake_timer_new,
					       .timer_arm = fake_timer_arm, .timer_free = fake_timer_free,
					       .doorbell_new = fake_doorbell_new,
					       .doorbell_ring = fake_doorbell_ring,
					       .doorbell_free = fake_doorbell_free };
static const struct exec fake_exec = { &fake_exec_ops, NULL };

static uint64_t fake_mono(void *ctx)
{
	(void)ctx;
	return 0;
}
static int64_t fake_wall(void *ctx)
{
	(void)ctx;
	return 0;
}
static const struct vclock fake_clk = { fake_mono, fake_wall, NULL };

#endif
