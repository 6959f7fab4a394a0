/* exec_evloop — core/exec.h on the epoll event thread (see exec_evloop.h).
 * Doorbells are eventfds so that KVM's ioeventfd can ring them without a
 * vCPU exit, and so that rings coalesce in the counter. */
#define _GNU_SOURCE
#include "host/exec_evloop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

struct doorbell {
	int fd;
	void (*fn)(void *);
	void *arg;
};

struct exec_timer {
	int fd;
	void (*fn)(void *);
	void *arg;
};

static int post(void *ctx, void (*fn)(void *), void *arg)
{
	return evloop_call(ctx, fn, arg);
}

static void drain_fd(int fd)
{
	uint64_t n;
	if (read(fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: a spurious wake-up; the callback looks at the state anyway */
	}
}

static void timer_event(void *ctx, uint32_t events)
{
	struct exec_timer *t = ctx;
	(void)events;
	drain_fd(t->fd);
	t->fn(t->arg);
}

static struct exec_timer *timer_new(void *ctx, void (*fn)(void *), void *arg)
{
	struct exec_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	*t = (struct exec_timer){ .fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC),
				  .fn = fn, .arg = arg };
	if (t->fd < 0 || evloop_add(ctx, t->fd, EPOLLIN, timer_event, t) < 0) {
		if (t->fd >= 0)
			close(t->fd);
		free(t);
		return NULL;
	}
	return t;
}

static int timer_arm(void *ctx, struct exec_timer *t, uint64_t ms)
{
	struct itimerspec its = { .it_value = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L } };
	(void)ctx;
	return timerfd_settime(t->fd, 0, &its, NULL) < 0 ? -errno : 0;
}

static void timer_free(void *ctx, struct exec_timer *t)
{
	if (!t)
		return;
	evloop_del(ctx, t->fd);
	close(t->fd);
	free(t);
}

static void doorbell_event(void *ctx, uint32_t events)
{
	struct doorbell *db = ctx;
	(void)events;
	drain_fd(db->fd);
	db->fn(db->arg);
}

static struct doorbell *doorbell_new(void *ctx, void (*fn)(void *), void *arg)
{
	struct doorbell *db = calloc(1, sizeof(*db));
	if (!db)
		return NULL;
	*db = (struct doorbell){ .fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), .fn = fn, .arg = arg };
	if (db->fd < 0 || evloop_add(ctx, db->fd, EPOLLIN, doorbell_event, db) < 0) {
		if (db->fd >= 0)
			close(db->fd);
		free(db);
		return NULL;
	}
	return db;
}

static void doorbell_ring(void *ctx, struct doorbell *db)
{
	uint64_t one = 1;
	(void)ctx;
	if (write(db->fd, &one, sizeof(one)) < 0) {
		/* counter saturated: a ring is pending anyway */
	}
}

static void doorbell_free(void *ctx, struct doorbell *db)
{
	if (!db)
		return;
	evloop_del(ctx, db->fd);
	close(db->fd);
	free(db);
}

int evloop_doorbell_fd(const struct doorbell *db)
{
	return db->fd;
}

static const struct exec_ops evloop_exec_ops = {
	.post = post,
	.timer_new = timer_new,
	.timer_arm = timer_arm,
	.timer_free = timer_free,
	.doorbell_new = doorbell_new,
	.doorbell_ring = doorbell_ring,
	.doorbell_free = doorbell_free,
};

struct exec evloop_exec(struct evloop *l)
{
	return (struct exec){ .ops = &evloop_exec_ops, .ctx = l };
}
