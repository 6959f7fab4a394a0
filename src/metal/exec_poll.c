/* exec_poll — see exec_poll.h. Lists are short (a handful of virtio
 * queues and console timers), so a scan per poll is cheaper than any
 * structure. Time is metal_now_ns(), the TSC. */
#include "metal/exec_poll.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "metal/metal.h"

/* With SMP, other CPUs post, ring and arm from their exits while the boot
 * CPU polls: the lists are under this lock (a spinlock in the shim), never
 * held across a callback. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

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

/* On the boot CPU outside the poll loop, the caller (vCPU 0's exit
 * handling) is the only code that could be on the device context, which
 * is "not running" in exec.h's sense: -ESRCH, and the caller runs fn
 * itself at once (virtio_pci does, rather than wait for a loop that cannot
 * run while it waits). From a callback of the loop, or from another CPU
 * (whose caller then waits while the boot CPU polls), it is queued. */
static int p_post(void *ctx, void (*fn)(void *), void *arg)
{
	(void)ctx;
	if (!polling && metal_cpu_index() == 0)
		return -ESRCH;
	struct post *p = malloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	*p = (struct post){ fn, arg, NULL };
	pthread_mutex_lock(&lock);
	*posts_tail = p;
	posts_tail = &p->next;
	pthread_mutex_unlock(&lock);
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
	pthread_mutex_lock(&lock);
	t->next = timers;
	timers = t;
	pthread_mutex_unlock(&lock);
	return t;
}

static int p_timer_arm(void *ctx, struct exec_timer *t, uint64_t ms)
{
	(void)ctx;
	pthread_mutex_lock(&lock);
	t->armed = ms != 0;
	t->due = metal_now_ns() + ms * 1000000u;
	pthread_mutex_unlock(&lock);
	return 0;
}

static void p_timer_free(void *ctx, struct exec_timer *t)
{
	(void)ctx;
	pthread_mutex_lock(&lock);
	for (struct exec_timer **pp = &timers; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			pthread_mutex_unlock(&lock);
			free(t);
			return;
		}
	pthread_mutex_unlock(&lock);
}

static struct doorbell *p_doorbell_new(void *ctx, void (*fn)(void *), void *arg)
{
	(void)ctx;
	struct doorbell *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->fn = fn;
	d->arg = arg;
	pthread_mutex_lock(&lock);
	d->next = bells;
	bells = d;
	pthread_mutex_unlock(&lock);
	return d;
}

static void p_doorbell_ring(void *ctx, struct doorbell *db)
{
	(void)ctx;
	__atomic_store_n(&db->rung, true, __ATOMIC_RELEASE);
}

static void p_doorbell_free(void *ctx, struct doorbell *db)
{
	(void)ctx;
	if (!db)
		return;
	pthread_mutex_lock(&lock);
	for (struct doorbell **pp = &bells; *pp; pp = &(*pp)->next)
		if (*pp == db) {
			*pp = db->next;
			pthread_mutex_unlock(&lock);
			free(db);
			return;
		}
	pthread_mutex_unlock(&lock);
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
	pthread_mutex_lock(&lock);
	struct post *p = posts;
	posts = NULL;
	posts_tail = &posts;
	pthread_mutex_unlock(&lock);
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
		void (*fn)(void *) = NULL;
		void *arg = NULL;
		pthread_mutex_lock(&lock);
		for (struct doorbell *d = bells; d; d = d->next)
			if (__atomic_exchange_n(&d->rung, false, __ATOMIC_ACQ_REL)) {
				fn = d->fn;
				arg = d->arg;
				break;
			}
		pthread_mutex_unlock(&lock);
		if (fn) {
			fn(arg);
			ran = again = true;
		}
	}
	uint64_t now = metal_now_ns();
	budget = 256;
	for (bool again = true; again && budget; budget--) {
		again = false;
		void (*fn)(void *) = NULL;
		void *arg = NULL;
		pthread_mutex_lock(&lock);
		for (struct exec_timer *t = timers; t; t = t->next)
			if (t->armed && t->due <= now) {
				t->armed = false;
				fn = t->fn;
				arg = t->arg;
				break;
			}
		pthread_mutex_unlock(&lock);
		if (fn) {
			fn(arg);
			ran = again = true;
		}
	}
	polling = false;
	return ran;
}
