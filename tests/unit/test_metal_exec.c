/* vigil-metal's device context (src/metal/exec_poll.c) and RAM disk
 * (src/metal/ramdisk.c) on the host, with a fake clock: posts outside and
 * inside the poll loop, timers, coalescing doorbells, a doorbell that rings
 * itself, a callback freeing its own timer; RAM disk reads, writes,
 * bounds, flushes and completions that wait for the poll. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/metal/exec_poll.c"
#include "../../src/metal/ramdisk.c"

static uint64_t now;
uint64_t metal_now_ns(void)
{
	return now;
}

static unsigned cpu_here; /* which host CPU the test pretends to be */
unsigned metal_cpu_index(void)
{
	return cpu_here;
}

static struct exec ex;
static int calls[8];

static void count(void *arg)
{
	calls[(intptr_t)arg]++;
}

static void posts_again(void *arg)
{
	(void)arg;
	calls[1]++;
	assert_int_equal(exec_post(&ex, count, (void *)2), 0); /* queued: we are on the loop */
}

static void post(void **state)
{
	(void)state;
	ex = metal_exec();
	memset(calls, 0, sizeof(calls));
	/* Outside the loop the caller is the only one here: it runs fn itself. */
	assert_int_equal(exec_post(&ex, count, (void *)0), -ESRCH);
	assert_int_equal(calls[0], 0);
	polling = true; /* as from a callback */
	assert_int_equal(exec_post(&ex, posts_again, NULL), 0);
	polling = false;
	assert_true(metal_exec_poll());
	assert_int_equal(calls[1], 1);
	assert_int_equal(calls[2], 0); /* the next turn's */
	assert_true(metal_exec_poll());
	assert_int_equal(calls[2], 1);
	assert_false(metal_exec_poll());
	/* From another CPU it is queued: the boot CPU's poll runs it. */
	cpu_here = 1;
	assert_int_equal(exec_post(&ex, count, (void *)6), 0);
	cpu_here = 0;
	assert_int_equal(calls[6], 0);
	assert_true(metal_exec_poll());
	assert_int_equal(calls[6], 1);
}

static struct exec_timer *self_freeing;
static void free_self(void *arg)
{
	(void)arg;
	calls[3]++;
	ex.ops->timer_free(ex.ctx, self_freeing);
}

static void timer_calls(void **state)
{
	(void)state;
	ex = metal_exec();
	memset(calls, 0, sizeof(calls));
	now = 1000;
	struct exec_timer *t = ex.ops->timer_new(ex.ctx, count, (void *)0);
	self_freeing = ex.ops->timer_new(ex.ctx, free_self, NULL);
	assert_non_null(t);
	ex.ops->timer_arm(ex.ctx, t, 5);
	ex.ops->timer_arm(ex.ctx, self_freeing, 1);
	metal_exec_poll();
	assert_int_equal(calls[0] + calls[3], 0);
	now += 1000000; /* 1 ms */
	metal_exec_poll();
	assert_int_equal(calls[3], 1);
	assert_int_equal(calls[0], 0);
	now += 4000000;
	metal_exec_poll();
	assert_int_equal(calls[0], 1);
	now += 100000000;
	metal_exec_poll();
	assert_int_equal(calls[0], 1); /* one-shot */
	ex.ops->timer_arm(ex.ctx, t, 1);
	ex.ops->timer_arm(ex.ctx, t, 0); /* disarmed */
	now += 100000000;
	metal_exec_poll();
	assert_int_equal(calls[0], 1);
	ex.ops->timer_free(ex.ctx, t);
}

static struct doorbell *self_ringing;
static void ring_again(void *arg)
{
	(void)arg;
	calls[4]++;
	ex.ops->doorbell_ring(ex.ctx, self_ringing);
}

static void doorbells(void **state)
{
	(void)state;
	ex = metal_exec();
	memset(calls, 0, sizeof(calls));
	struct doorbell *d = ex.ops->doorbell_new(ex.ctx, count, (void *)5);
	ex.ops->doorbell_ring(ex.ctx, d);
	ex.ops->doorbell_ring(ex.ctx, d); /* coalesced */
	metal_exec_poll();
	assert_int_equal(calls[5], 1);
	metal_exec_poll();
	assert_int_equal(calls[5], 1);
	self_ringing = ex.ops->doorbell_new(ex.ctx, ring_again, NULL);
	ex.ops->doorbell_ring(ex.ctx, self_ringing);
	metal_exec_poll(); /* bounded: the poll returns */
	assert_true(calls[4] >= 1 && calls[4] <= 256);
	ex.ops->doorbell_free(ex.ctx, self_ringing);
	ex.ops->doorbell_free(ex.ctx, d);
	ex.ops->doorbell_free(ex.ctx, NULL);
	metal_exec_poll();
}

static int io_result = 1, io_done_calls;
static void io_done(struct blk_io *io, int result)
{
	(void)io;
	io_result = result;
	io_done_calls++;
}

static void ramdisk(void **state)
{
	(void)state;
	char e[128];
	static uint8_t disk[4096];
	assert_null(metal_ramdisk_new(disk, 1000, e, sizeof(e)));
	assert_non_null(strstr(e, "512-byte sectors"));
	struct blk_backend *be = metal_ramdisk_new(disk, sizeof(disk), e, sizeof(e));
	assert_non_null(be);
	assert_int_equal(be->size, 4096);
	char w[600], r[600];
	memset(w, 'x', sizeof(w));
	struct blk_io io = { .op = BLK_WRITE, .off = 512, .n = 2, .done = io_done };
	io.iov[0] = (struct iovec){ w, 100 };
	io.iov[1] = (struct iovec){ w + 100, 500 };
	be->ops->submit(be, &io);
	assert_int_equal(io_done_calls, 0); /* completions wait for the poll */
	assert_memory_equal(disk + 512, w, 600); /* the data is there already */
	metal_ramdisk_poll();
	assert_int_equal(io_done_calls, 1);
	assert_int_equal(io_result, 0);
	io = (struct blk_io){ .op = BLK_READ, .off = 512, .n = 1, .done = io_done };
	io.iov[0] = (struct iovec){ r, 600 };
	be->ops->submit(be, &io);
	be->ops->drain(be);
	assert_int_equal(io_done_calls, 2);
	assert_memory_equal(r, w, 600);
	/* Past the end: -EIO, nothing written beyond. */
	io = (struct blk_io){ .op = BLK_WRITE, .off = 4096 - 100, .n = 1, .done = io_done };
	io.iov[0] = (struct iovec){ w, 200 };
	be->ops->submit(be, &io);
	metal_ramdisk_poll();
	assert_int_equal(io_result, -EIO);
	io = (struct blk_io){ .op = BLK_READ, .off = UINT64_MAX - 10, .n = 1, .done = io_done };
	io.iov[0] = (struct iovec){ r, 100 };
	be->ops->submit(be, &io);
	metal_ramdisk_poll();
	assert_int_equal(io_result, -EIO);
	io = (struct blk_io){ .op = BLK_FLUSH, .done = io_done };
	be->ops->submit(be, &io);
	metal_ramdisk_poll();
	assert_int_equal(io_result, 0);
	io = (struct blk_io){ .op = BLK_WRITE, .off = 0, .n = 1, .redirect = true, .done = io_done };
	io.iov[0] = (struct iovec){ w, 512 };
	be->ops->submit(be, &io);
	metal_ramdisk_poll();
	assert_int_equal(io_result, -ENOTSUP); /* no overlay without files */
	assert_int_equal(be->ops->overlay(be, "/x"), -ENOTSUP);
	be->ops->free(be);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(post), cmocka_unit_test(timer_calls), cmocka_unit_test(doorbells), cmocka_unit_test(ramdisk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
