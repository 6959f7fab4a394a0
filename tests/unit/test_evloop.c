/* Unit tests for the event loop's pause/resume (src/host/evloop.c), which
 * the control plane's VM pause uses: pause returns only after the round in
 * progress, nothing runs while paused, and what arrived meanwhile is
 * delivered after resume. Real eventfds, the real event thread. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "host/evloop.h"

struct rec {
	int fd;
	atomic_int fd_events, calls;
	atomic_int slow_started, slow_done;
	int pause_ret;
	struct evloop *l;
};

static void msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int wait_for(atomic_int *v, int want)
{
	for (int i = 0; i < 5000 && atomic_load(v) < want; i++)
		msleep(1);
	return atomic_load(v);
}

static void on_fd(void *ctx, uint32_t events)
{
	struct rec *r = ctx;
	uint64_t n;
	(void)events;
	if (read(r->fd, &n, sizeof(n)) == sizeof(n))
		atomic_fetch_add(&r->fd_events, 1);
}

static void on_call(void *ctx)
{
	struct rec *r = ctx;
	atomic_fetch_add(&r->calls, 1);
}

static void slow_call(void *ctx)
{
	struct rec *r = ctx;
	atomic_store(&r->slow_started, 1);
	msleep(150);
	atomic_store(&r->slow_done, 1);
}

static void pause_from_callback(void *ctx)
{
	struct rec *r = ctx;
	r->pause_ret = evloop_pause(r->l);
	atomic_fetch_add(&r->calls, 1);
}

static void ring(int fd)
{
	uint64_t one = 1;
	assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
}

static void setup_rec(struct rec *r)
{
	*r = (struct rec){ .fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) };
	assert_true(r->fd >= 0);
	r->l = evloop_new();
	assert_non_null(r->l);
	assert_int_equal(evloop_add(r->l, r->fd, EPOLLIN, on_fd, r), 0);
}

static void free_rec(struct rec *r)
{
	evloop_free(r->l);
	close(r->fd);
}

/* The event thread is batch-scheduled: its wake-ups do not preempt a
 * vCPU (or anything else) running on a busy CPU. */
static atomic_int policy_seen = -2;

static void record_policy(void *ctx)
{
	(void)ctx;
	atomic_store(&policy_seen, sched_getscheduler(0));
}

static void test_event_thread_is_batch_scheduled(void **state)
{
	(void)state;
	struct rec r;
	setup_rec(&r);
	assert_int_equal(evloop_start(r.l), 0);
	assert_int_equal(evloop_call(r.l, record_policy, NULL), 0);
	wait_for(&policy_seen, -1); /* sched_getscheduler's answer, or its -1 */
	assert_int_equal(atomic_load(&policy_seen), SCHED_BATCH);
	/* The caller's own thread keeps its policy. */
	assert_int_equal(sched_getscheduler(0), SCHED_OTHER);
	free_rec(&r);
}

static void test_nothing_runs_while_paused(void **state)
{
	(void)state;
	struct rec r;
	setup_rec(&r);
	assert_int_equal(evloop_pause(r.l), -ESRCH); /* not running */
	assert_int_equal(evloop_start(r.l), 0);

	ring(r.fd);
	assert_int_equal(wait_for(&r.fd_events, 1), 1);

	assert_int_equal(evloop_pause(r.l), 0);
	ring(r.fd);
	assert_int_equal(evloop_call(r.l, on_call, &r), 0);
	msleep(150);
	assert_int_equal(atomic_load(&r.fd_events), 1);
	assert_int_equal(atomic_load(&r.calls), 0);

	evloop_resume(r.l);
	assert_int_equal(wait_for(&r.fd_events, 2), 2);
	assert_int_equal(wait_for(&r.calls, 1), 1);

	/* Pause and resume again: still a working loop. */
	assert_int_equal(evloop_pause(r.l), 0);
	evloop_resume(r.l);
	ring(r.fd);
	assert_int_equal(wait_for(&r.fd_events, 3), 3);
	free_rec(&r);
}

static void test_pause_waits_for_the_round(void **state)
{
	(void)state;
	struct rec r;
	setup_rec(&r);
	assert_int_equal(evloop_start(r.l), 0);
	assert_int_equal(evloop_call(r.l, slow_call, &r), 0);
	assert_int_equal(wait_for(&r.slow_started, 1), 1);
	assert_int_equal(evloop_pause(r.l), 0);
	assert_int_equal(atomic_load(&r.slow_done), 1); /* the callback in progress finished first */
	evloop_resume(r.l);
	free_rec(&r);
}

static void test_pause_from_callback_refused(void **state)
{
	(void)state;
	struct rec r;
	setup_rec(&r);
	assert_int_equal(evloop_start(r.l), 0);
	r.pause_ret = 1;
	assert_int_equal(evloop_call(r.l, pause_from_callback, &r), 0);
	assert_int_equal(wait_for(&r.calls, 1), 1);
	assert_int_equal(r.pause_ret, -EDEADLK);
	free_rec(&r);
}

static void test_stop_while_paused(void **state)
{
	(void)state;
	struct rec r;
	setup_rec(&r);
	assert_int_equal(evloop_start(r.l), 0);
	assert_int_equal(evloop_pause(r.l), 0);
	ring(r.fd);
	evloop_stop(r.l); /* joins: the parked thread must see the stop */
	assert_int_equal(atomic_load(&r.fd_events), 0);
	free_rec(&r);
}

/* A busy process holds fds far above 1024 (vsock streams, disks, TAPs):
 * the loop must watch any fd number the process can have. */
static void test_high_fd_watched(void **state)
{
	(void)state;
	struct rlimit rl;
	const int high = 1500;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur <= (rlim_t)high + 1) {
		rl.rlim_cur = rl.rlim_max;
		if (rl.rlim_cur <= (rlim_t)high + 1 || setrlimit(RLIMIT_NOFILE, &rl) < 0)
			skip();
	}
	struct rec r;
	setup_rec(&r);
	int fd = dup2(r.fd, high);
	assert_int_equal(fd, high);
	struct rec hr = { .fd = fd, .l = r.l };
	assert_int_equal(evloop_add(r.l, fd, EPOLLIN, on_fd, &hr), 0);
	assert_int_equal(evloop_start(r.l), 0);
	ring(fd);
	assert_int_equal(wait_for(&hr.fd_events, 1), 1);
	assert_int_equal(evloop_del(r.l, fd), 0);
	close(fd);
	free_rec(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_thread_is_batch_scheduled),
		cmocka_unit_test(test_nothing_runs_while_paused),
		cmocka_unit_test(test_pause_waits_for_the_round),
		cmocka_unit_test(test_pause_from_callback_refused),
		cmocka_unit_test(test_stop_while_paused),
		cmocka_unit_test(test_high_fd_watched),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
