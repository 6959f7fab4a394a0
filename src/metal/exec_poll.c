/* exec_poll — see exec_poll.h. Lists are short (a handful of virtio
 * queues and console timers), so a scan per poll is cheaper than any
 * structure. Time is metal_now_ns(), the TSC. */
#include "metal/exec_poll.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "metal/metal.h"

struct exec_timer {
	void (*fn)(void *);
	void *arg;
	uint64_t due; /* ns */
	bool armed;
	struct exec_timer *next;
};

struct doorbell {
	void (*fn)(void *);
	void *arg;
	bool rung;
	struct doorbell *next;
};

struct post {
	void (*fn)(void *);
	void *arg;
	struct post *next;
};

static bool polling;
static struct exec_timer *timers;
static struct doorbell *bells;
static struct post *posts, **posts_tail = &posts;

/* Outside the poll loop the caller (a vCPU's exit handling) is the only
 * code on this CPU, so the device context is "not running" in exec.h's
 * sense: -ESRCH, and the caller runs fn itself at once (virtio_pci does,
 * rather than wait for a loop that cannot run while it waits). From a
 * callback of the loop, the work is queued for the next turn. */
static int p_post(void *ctx, void (*fn)(void *), void *arg)
{
	(void)ctx;
	if (!polling)
		return -ESRCH;
	struct post *p = malloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	*p = (struct post){ fn, arg, NULL };
	*posts_tail = p;
	posts_tail = &p->next;
	return 0;
}

static struct exec_timer *p_timer_new(void *ctx, void (*fn)(void *), void *arg)
{
	(void)ctx;
	struct exec_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->fn = fn;
	t->arg = arg;
	t->next = timers;
	timers = t;
	return t;
}

static int p_timer_arm(void *ctx, struct exec_timer *t, uint64_t ms)
{
	(void)ctx;
	t->armed = ms != 0;
	t->due = metal_now_ns() + ms * 1000000u;
	return 0;
}

static void p_timer_free(void *ctx, struct exec_timer *t)
{
	(void)ctx;
	for (struct exec_timer **pp = &timers; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			free(t);
			return;
		}
}

static struct doorbell *p_doorbell_new(void *ctx, void (*fn)(void *), void *arg)
{
	(void)ctx;
	struct doorbell *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->fn = fn;
	d->arg = arg;
	d->next = bells;
	bells = d;
	return d;
}

static void p_doorbell_ring(void *ctx, struct doorbell *db)
{
	(void)ctx;
	db->rung = true;
}

static void p_doorbell_free(void *ctx, struct doorbell *db)
{
	(void)ctx;
	if (!db)
		return;
	for (struct doorbell **pp = &bells; *pp; pp = &(*pp)->next)
		if (*pp == db) {
			*pp = db->next;
			free(db);
			return;
		}
}

static const struct exec_ops ops = {
	.post = p_post,
	.timer_new = p_timer_new,
	.timer_arm = p_timer_arm,
	.timer_free = p_timer_free,
	.doorbell_new = p_doorbell_new,
	.doorbell_ring = p_doorbell_ring,
	.doorbell_free = p_doorbell_free,
};

struct exec metal_exec(void)
{
	return (struct exec){ .ops = &ops, .ctx = NULL };
}

bool metal_exec_poll(void)
{
	bool ran = false;
	if (polling)
		return false; /* a callback that idles the backend: not nested */
	polling = true;
	/* Work posted by what runs here waits for the next poll. */
	struct post *p = posts;
	posts = NULL;
	posts_tail = &posts;
	while (p) {
		struct post *next = p->next;
		p->fn(p->arg);
		free(p);
		p = next;
		ran = true;
	}
	/* A callback may free its own doorbell or timer: restart the scan
	 * after every call; bounded, so one that rings itself cannot keep the
	 * vCPU out of the guest. */
	unsigned budget = 256;
	for (bool again = true; again && budget; budget--) {
		again = false;
		for (struct doorbell *d = bells; d; d = d->next)
			if (d->rung) {
				d->rung = false;
				d->fn(d->arg);
				ran = again = true;
				break;
			}
	}
	uint64_t now = metal_now_ns();
	budget = 256;
	for (bool again = true; again && budget; budget--) {
		again = false;
		for (struct exec_timer *t = timers; t; t = t->next)
			if (t->armed && t->due <= now) {
				t->armed = false;
				t->fn(t->arg);
				ran = again = true;
				break;
			}
	}
	polling = false;
	return ran;
}
