/* pthread — locks without threads (see include/pthread.h). vigil-metal
 * runs one vCPU loop per host CPU and nothing preempts it, so on the only
 * CPU a mutex found locked, or a wait nobody could ever end, is a bug: it
 * stops vigil-metal with a line naming the caller instead of hanging. With
 * more CPUs online the same code spins, as a ticketless spinlock. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>

#include "metal/metal.h"

static void relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

int pthread_mutex_init(pthread_mutex_t *restrict m, const pthread_mutexattr_t *restrict a)
{
	(void)a;
	m->locked = 0;
	return 0;
}

int pthread_mutex_destroy(pthread_mutex_t *m)
{
	(void)m;
	return 0;
}

int pthread_mutex_trylock(pthread_mutex_t *m)
{
	return __atomic_exchange_n(&m->locked, 1, __ATOMIC_ACQUIRE) ? EBUSY : 0;
}

int pthread_mutex_lock(pthread_mutex_t *m)
{
	while (pthread_mutex_trylock(m)) {
		if (metal_cpus_online() <= 1) {
			metal_log("pthread_mutex_lock(%p) from %p: already locked on the only CPU", (void *)m,
				  __builtin_return_address(0));
			metal_crash("deadlock");
		}
		relax();
	}
	return 0;
}

int pthread_mutex_unlock(pthread_mutex_t *m)
{
	__atomic_store_n(&m->locked, 0, __ATOMIC_RELEASE);
	return 0;
}

int pthread_mutexattr_init(pthread_mutexattr_t *a)
{
	a->type = PTHREAD_MUTEX_NORMAL;
	return 0;
}

int pthread_mutexattr_destroy(pthread_mutexattr_t *a)
{
	(void)a;
	return 0;
}

int pthread_mutexattr_settype(pthread_mutexattr_t *a, int type)
{
	a->type = type;
	return 0;
}

int pthread_cond_init(pthread_cond_t *restrict c, const pthread_condattr_t *restrict a)
{
	(void)a;
	c->seq = 0;
	return 0;
}

int pthread_cond_destroy(pthread_cond_t *c)
{
	(void)c;
	return 0;
}

/* Spins until the sequence moves on, or (deadline != UINT64_MAX) until
 * metal_now_ns() passes it: the clock the core's deadlines are computed
 * on, since vigil-metal's vclock is the same TSC (main.c). */
static int wait_seq(pthread_cond_t *c, pthread_mutex_t *m, uint64_t deadline, void *caller)
{
	unsigned seen = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
	if (metal_cpus_online() <= 1 && deadline == UINT64_MAX) {
		/* vcpu.c parks a vCPU for a pause, a mailbox call waits for
		 * its vCPU: on one CPU with no other thread neither can end. */
		metal_log("pthread_cond_wait(%p) from %p: nothing else runs on the only CPU to wake it",
			  (void *)c, caller);
		metal_crash("deadlock");
	}
	pthread_mutex_unlock(m);
	int r = 0;
	while (__atomic_load_n(&c->seq, __ATOMIC_ACQUIRE) == seen) {
		if (deadline != UINT64_MAX && metal_now_ns() >= deadline) {
			r = ETIMEDOUT;
			break;
		}
		relax();
	}
	pthread_mutex_lock(m);
	return r;
}

int pthread_cond_wait(pthread_cond_t *restrict c, pthread_mutex_t *restrict m)
{
	return wait_seq(c, m, UINT64_MAX, __builtin_return_address(0));
}

int pthread_cond_timedwait(pthread_cond_t *restrict c, pthread_mutex_t *restrict m,
			   const struct timespec *restrict abstime)
{
	if (abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000 || abstime->tv_sec < 0)
		return EINVAL;
	uint64_t deadline = (uint64_t)abstime->tv_sec * 1000000000u + (uint64_t)abstime->tv_nsec;
	return wait_seq(c, m, deadline == UINT64_MAX ? UINT64_MAX - 1 : deadline, __builtin_return_address(0));
}

int pthread_cond_signal(pthread_cond_t *c)
{
	__atomic_add_fetch(&c->seq, 1, __ATOMIC_RELEASE);
	return 0;
}

int pthread_cond_broadcast(pthread_cond_t *c)
{
	return pthread_cond_signal(c);
}

int pthread_condattr_init(pthread_condattr_t *a)
{
	a->clock = CLOCK_REALTIME;
	return 0;
}

int pthread_condattr_destroy(pthread_condattr_t *a)
{
	(void)a;
	return 0;
}

int pthread_condattr_setclock(pthread_condattr_t *a, clockid_t clock)
{
	a->clock = clock;
	return 0;
}

/* The first caller runs fn; another CPU arriving meanwhile spins until it
 * is done (fn never calls back into the same once). */
int pthread_once(pthread_once_t *once, void (*fn)(void))
{
	int expect = 0;
	if (__atomic_compare_exchange_n(once, &expect, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) {
		fn();
		__atomic_store_n(once, 2, __ATOMIC_RELEASE);
		return 0;
	}
	while (__atomic_load_n(once, __ATOMIC_ACQUIRE) != 2)
		relax();
	return 0;
}
