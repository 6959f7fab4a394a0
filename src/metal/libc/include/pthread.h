/* vigil-metal's libc shim: <pthread.h> — the locks the portable part
 * takes, without threads. Each vCPU loop owns its host CPU and nothing
 * preempts it, so a mutex is a spinlock (taken twice on the only CPU it is
 * a bug, reported, never a silent hang) and a condition variable is a
 * sequence count that a waiter spins on while another CPU may bump it.
 * With one CPU online nobody else could signal: a wait fails loudly
 * (libc/pthread.c), a timed wait times out at its deadline. */
#ifndef VIGIL_METAL_PTHREAD_H
#define VIGIL_METAL_PTHREAD_H
#include <time.h>
typedef struct {
	volatile int locked;
} pthread_mutex_t;
typedef struct {
	int type;
} pthread_mutexattr_t;
typedef struct {
	volatile unsigned seq;
} pthread_cond_t;
typedef struct {
	clockid_t clock;
} pthread_condattr_t;
typedef volatile int pthread_once_t; /* 0 not run, 1 running, 2 done */
#define PTHREAD_ONCE_INIT 0
#define PTHREAD_MUTEX_INITIALIZER { 0 }
#define PTHREAD_COND_INITIALIZER { 0 }
#define PTHREAD_MUTEX_NORMAL 0
#define PTHREAD_MUTEX_ERRORCHECK 2
int pthread_mutex_init(pthread_mutex_t *restrict m, const pthread_mutexattr_t *restrict a);
int pthread_mutex_destroy(pthread_mutex_t *m);
int pthread_mutex_lock(pthread_mutex_t *m);
int pthread_mutex_trylock(pthread_mutex_t *m);
int pthread_mutex_unlock(pthread_mutex_t *m);
int pthread_mutexattr_init(pthread_mutexattr_t *a);
int pthread_mutexattr_destroy(pthread_mutexattr_t *a);
int pthread_mutexattr_settype(pthread_mutexattr_t *a, int type);
int pthread_cond_init(pthread_cond_t *restrict c, const pthread_condattr_t *restrict a);
int pthread_cond_destroy(pthread_cond_t *c);
int pthread_cond_wait(pthread_cond_t *restrict c, pthread_mutex_t *restrict m);
int pthread_cond_timedwait(pthread_cond_t *restrict c, pthread_mutex_t *restrict m,
			   const struct timespec *restrict abstime);
int pthread_cond_signal(pthread_cond_t *c);
int pthread_cond_broadcast(pthread_cond_t *c);
int pthread_condattr_init(pthread_condattr_t *a);
int pthread_condattr_destroy(pthread_condattr_t *a);
int pthread_condattr_setclock(pthread_condattr_t *a, clockid_t clock);
int pthread_once(pthread_once_t *once, void (*fn)(void));
#endif
