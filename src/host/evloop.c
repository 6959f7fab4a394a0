#define _GNU_SOURCE
#include "host/evloop.h"
#include "host/seccomp.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* fds are small integers: a table indexed by fd beats a map. It grows to
 * the largest fd watched (bounded by RLIMIT_NOFILE), so any fd the process
 * can hold can be watched. */
#define EVLOOP_MIN_FDS 64
#define EVLOOP_MAX_CALLS 256

struct watch {
	evloop_fn fn;
	void *ctx;
	uint32_t gen; /* bumped on every del, so stale epoll events are dropped */
	bool active;
};

struct call {
	void (*fn)(void *);
	void *ctx;
};

struct evloop {
	int epfd;
	int wake; /* eventfd: evloop_call() and evloop_free() */
	pthread_t thread;
	bool started;
	bool stopping;
	/* pause: the controller sets want_pause and waits for `parked`; the
	 * thread parks between rounds until want_pause is cleared. */
	pthread_cond_t pause_cond;
	bool want_pause, parked;
	pthread_mutex_t lock; /* watches[] and calls[] */
	struct watch *watches;
	unsigned nr_watches;
	struct call calls[EVLOOP_MAX_CALLS];
	unsigned nr_calls;
};

static uint64_t ev_data(int fd, uint32_t gen)
{
	return ((uint64_t)gen << 32) | (uint32_t)fd;
}

struct evloop *evloop_new(void)
{
	struct evloop *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->pause_cond, NULL);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = UINT64_MAX };
	if (l->epfd < 0 || l->wake < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake, &ev) < 0) {
		evloop_free(l);
		return NULL;
	}
	return l;
}

/* l->lock held: makes watches[fd] exist. */
static int watch_grow(struct evloop *l, int fd)
{
	if ((unsigned)fd < l->nr_watches)
		return 0;
	unsigned n = l->nr_watches ? l->nr_watches : EVLOOP_MIN_FDS;
	while (n <= (unsigned)fd)
		n *= 2;
	struct watch *w = realloc(l->watches, n * sizeof(*w));
	if (!w)
		return -ENOMEM;
	memset(w + l->nr_watches, 0, (n - l->nr_watches) * sizeof(*w));
	l->watches = w;
	l->nr_watches = n;
	return 0;
}

static int watch_set(struct evloop *l, int op, int fd, uint32_t events, evloop_fn fn, void *ctx)
{
	if (fd < 0)
		return -EBADF;
	pthread_mutex_lock(&l->lock);
	int g = watch_grow(l, fd);
	if (g < 0) {
		pthread_mutex_unlock(&l->lock);
		return g;
	}
	struct watch *w = &l->watches[fd];
	w->fn = fn;
	w->ctx = ctx;
	w->active = true;
	struct epoll_event ev = { .events = events, .data.u64 = ev_data(fd, w->gen) };
	int r = epoll_ctl(l->epfd, op, fd, &ev) < 0 ? -errno : 0;
	if (r < 0 && op == EPOLL_CTL_ADD)
		w->active = false;
	pthread_mutex_unlock(&l->lock);
	return r;
}

int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_fn fn, void *ctx)
{
	return watch_set(l, EPOLL_CTL_ADD, fd, events, fn, ctx);
}

int evloop_mod(struct evloop *l, int fd, uint32_t events, evloop_fn fn, void *ctx)
{
	return watch_set(l, EPOLL_CTL_MOD, fd, events, fn, ctx);
}

int evloop_del(struct evloop *l, int fd)
{
	if (fd < 0)
		return -EBADF;
	pthread_mutex_lock(&l->lock);
	if ((unsigned)fd >= l->nr_watches) {
		pthread_mutex_unlock(&l->lock);
		return -ENOENT; /* never watched */
	}
	l->watches[fd].active = false;
	l->watches[fd].gen++;
	int r = epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 ? -errno : 0;
	pthread_mutex_unlock(&l->lock);
	return r;
}

int evloop_call(struct evloop *l, void (*fn)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&l->lock);
	if (!l->started) {
		pthread_mutex_unlock(&l->lock);
		return -ESRCH; /* nobody would run it */
	}
	if (l->nr_calls == EVLOOP_MAX_CALLS) {
		pthread_mutex_unlock(&l->lock);
		return -EAGAIN;
	}
	l->calls[l->nr_calls++] = (struct call){ fn, ctx };
	pthread_mutex_unlock(&l->lock);
	/* Queued: it will run, so this is success whatever the wake-up write
	 * says (an eventfd refuses one only when its counter is full, i.e.
	 * the loop is already woken); a caller told otherwise might run fn
	 * itself as well. */
	uint64_t one = 1;
	if (write(l->wake, &one, sizeof(one)) != sizeof(one)) {
		/* see above */
	}
	return 0;
}

static void run_calls(struct evloop *l)
{
	struct call batch[EVLOOP_MAX_CALLS];
	uint64_t n;

	if (read(l->wake, &n, sizeof(n)) < 0) {
		/* EAGAIN: nothing pending beyond what the queue holds */
	}
	pthread_mutex_lock(&l->lock);
	unsigned count = l->nr_calls;
	memcpy(batch, l->calls, count * sizeof(batch[0]));
	l->nr_calls = 0;
	pthread_mutex_unlock(&l->lock);
	for (unsigned i = 0; i < count; i++)
		batch[i].fn(batch[i].ctx);
}

/* Between rounds: parks while a pause is asked for. */
static void park_if_asked(struct evloop *l)
{
	pthread_mutex_lock(&l->lock);
	if (l->want_pause) {
		l->parked = true;
		pthread_cond_broadcast(&l->pause_cond);
		while (l->want_pause && !__atomic_load_n(&l->stopping, __ATOMIC_ACQUIRE))
			pthread_cond_wait(&l->pause_cond, &l->lock);
		l->parked = false;
	}
	pthread_mutex_unlock(&l->lock);
}

static void *loop_thread(void *arg)
{
	struct evloop *l = arg;
	struct epoll_event evs[32];

	/* SCHED_BATCH: a wake-up of this thread (a completion, a kick) does
	 * not preempt the guest's vCPU on a busy CPU; it runs when the CPU
	 * frees or at the next tick, and by then more work has come in. On a
	 * CPU with room nothing changes. Where the host's CPUs were all busy
	 * (the lab's one-CPU L1), the guest's disk interrupts per request over
	 * a bench boot fell from 0.26-0.55 to 0.14-0.28 (README, disk).
	 * Best effort: without it the loop only batches less. */
	struct sched_param sp = { 0 };
	(void)sched_setscheduler(0, SCHED_BATCH, &sp);
	seccomp_enter(SC_EVLOOP);
	while (!__atomic_load_n(&l->stopping, __ATOMIC_ACQUIRE)) {
		park_if_asked(l);
		if (__atomic_load_n(&l->stopping, __ATOMIC_ACQUIRE))
			break;
		int n = epoll_wait(l->epfd, evs, 32, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == UINT64_MAX) {
				run_calls(l);
				continue;
			}
			int fd = (int)(uint32_t)evs[i].data.u64;
			uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
			pthread_mutex_lock(&l->lock);
			struct watch w = l->watches[fd]; /* fd < nr_watches: it was added */
			pthread_mutex_unlock(&l->lock);
			if (w.active && w.gen == gen)
				w.fn(w.ctx, evs[i].events);
		}
	}
	return NULL;
}

int evloop_start(struct evloop *l)
{
	pthread_mutex_lock(&l->lock);
	l->started = pthread_create(&l->thread, NULL, loop_thread, l) == 0;
	pthread_mutex_unlock(&l->lock);
	return l->started ? 0 : -EAGAIN;
}

static int wake(struct evloop *l)
{
	uint64_t one = 1;
	return write(l->wake, &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}

int evloop_pause(struct evloop *l)
{
	pthread_mutex_lock(&l->lock);
	if (!l->started) {
		pthread_mutex_unlock(&l->lock);
		return -ESRCH;
	}
	if (pthread_equal(pthread_self(), l->thread)) {
		pthread_mutex_unlock(&l->lock);
		return -EDEADLK;
	}
	l->want_pause = true;
	pthread_mutex_unlock(&l->lock);
	/* Out of epoll_wait. The current round may consume this wake-up; a
	 * call posted while paused writes it again, and fds stay readable
	 * (level-triggered), so nothing is lost. */
	int r = wake(l);
	pthread_mutex_lock(&l->lock);
	while (r == 0 && !l->parked)
		pthread_cond_wait(&l->pause_cond, &l->lock);
	pthread_mutex_unlock(&l->lock);
	return r;
}

void evloop_resume(struct evloop *l)
{
	pthread_mutex_lock(&l->lock);
	l->want_pause = false;
	pthread_cond_broadcast(&l->pause_cond);
	pthread_mutex_unlock(&l->lock);
}

void evloop_stop(struct evloop *l)
{
	if (l && l->started) {
		pthread_mutex_lock(&l->lock);
		/* Under the lock: a parked thread wakes and sees it. */
		__atomic_store_n(&l->stopping, true, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&l->pause_cond);
		pthread_mutex_unlock(&l->lock);
		uint64_t one = 1;
		if (write(l->wake, &one, sizeof(one)) < 0) {
			/* the loop also wakes on its next event */
		}
		pthread_join(l->thread, NULL);
		pthread_mutex_lock(&l->lock);
		l->started = false;
		l->want_pause = false; /* a stop ends a pause */
		pthread_mutex_unlock(&l->lock);
	}
}

void evloop_free(struct evloop *l)
{
	if (!l)
		return;
	evloop_stop(l);
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->wake >= 0)
		close(l->wake);
	pthread_cond_destroy(&l->pause_cond);
	pthread_mutex_destroy(&l->lock);
	free(l->watches);
	free(l);
}
