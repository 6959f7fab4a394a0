/* The io_uring engine of blk_file (host/blk_uring.c) over temporary images:
 * many I/Os in flight at once, vectored, into aligned buffers (the ring,
 * O_DIRECT) and unaligned ones (the buffered workers); flush; a short read
 * at the end of the image, a write to a read-only image and a full file
 * system fail exactly the requests concerned, and the backend goes on. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cmocka.h>

#include <liburing.h>

#include "host/blk_file.h"
#include "host/evloop.h"
#include "host/exec_evloop.h"
#include <pthread.h>
#include <time.h>

#define IMG (1u << 20)
#define QD 32

struct rec {
	struct blk_io io; /* first: on_done gets &io */
	atomic_int calls;
	int result;
	pthread_t who;
};

static void on_done(struct blk_io *io, int result)
{
	struct rec *r = (struct rec *)io;
	r->result = result;
	r->who = pthread_self();
	atomic_fetch_add(&r->calls, 1);
}

/* io_uring_submit, wrapped (-Wl,--wrap, the Makefile's rule for this
 * file): while submit_busy > 0 it takes nothing and answers EBUSY, as a
 * kernel does that must post completions first. */
static atomic_int submit_busy;
int __real_io_uring_submit(struct io_uring *ring);
int __wrap_io_uring_submit(struct io_uring *ring);
int __wrap_io_uring_submit(struct io_uring *ring)
{
	if (atomic_load(&submit_busy) > 0) {
		atomic_fetch_sub(&submit_busy, 1);
		return -EBUSY;
	}
	return __real_io_uring_submit(ring);
}

static char dir_[64];
static char path_[128];

static void make_image(const char *path, uint64_t size)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static int setup(void **state)
{
	(void)state;
	atomic_store(&submit_busy, 0);
	snprintf(dir_, sizeof(dir_), "/var/tmp/vblk-uring-XXXXXX");
	if (!mkdtemp(dir_))
		return -1;
	snprintf(path_, sizeof(path_), "%s/disk.img", dir_);
	make_image(path_, IMG);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path_);
	rmdir(dir_);
	return 0;
}

static struct blk_backend *open_uring(const char *path, bool ro, enum blk_cache cache, bool *direct)
{
	char err[256] = "";
	struct blk_file_opts o = { .read_only = ro, .engine = BLK_ENGINE_URING, .cache = cache };
	struct blk_backend *be = blk_file_open_opts(path, &o, err, sizeof(err));
	if (!be)
		fail_msg("open: %s", err);
	bool d = false;
	/* The ring must really be there: a silent fall-back to the threads
	 * would make every test below pass without testing it. */
	assert_int_equal(blk_file_engine(be, &d), BLK_ENGINE_URING);
	if (direct)
		*direct = d;
	return be;
}

static void prep(struct rec *r, enum blk_op op, uint64_t off)
{
	memset(r, 0, sizeof(*r));
	r->io.op = op;
	r->io.off = off;
	r->io.done = on_done;
	r->result = 1;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static void *aligned(size_t n)
{
	void *p = NULL;
	assert_int_equal(posix_memalign(&p, 4096, n), 0);
	return p;
}

/* A read the kernel did not take at its submit (every retry busy) stays
 * in the ring and goes with the next unplug, as the device calls it after
 * each run of requests; it does not wait for an unrelated request. */
static void test_refused_submit_goes_next(void **state)
{
	(void)state;
	struct blk_backend *be = open_uring(path_, false, BLK_CACHE_DEFAULT, NULL);
	static struct rec r;
	uint8_t *buf = aligned(4096);

	prep(&r, BLK_READ, 8192);
	r.io.iov[0] = (struct iovec){ buf, 4096 };
	r.io.n = 1;
	atomic_store(&submit_busy, 1000);
	be->ops->submit(be, &r.io);
	be->ops->unplug(be); /* the end of the device's run: refused */
	int left = atomic_load(&submit_busy);
	atomic_store(&submit_busy, 0);
	assert_true(left < 1000); /* it was tried */
	for (int i = 0; i < 200 && !atomic_load(&r.calls); i++) {
		be->ops->unplug(be);
		struct timespec ms5 = { 0, 5 * 1000000L };
		nanosleep(&ms5, NULL);
	}
	assert_int_equal(atomic_load(&r.calls), 1);
	assert_int_equal(r.result, 0);
	assert_int_equal(blk_file_ring_ios(be), 1);
	/* A drain with such a read in flight hands it over itself, and again
	 * on its later looks while the kernel still refuses (three refusals:
	 * its first hand-over and two looks). The alarm ends a drain that
	 * never hands it over again. */
	prep(&r, BLK_READ, 8192);
	r.io.iov[0] = (struct iovec){ buf, 4096 };
	r.io.n = 1;
	atomic_store(&submit_busy, 1000);
	be->ops->submit(be, &r.io);
	be->ops->unplug(be);
	atomic_store(&submit_busy, 3);
	alarm(20);
	be->ops->drain(be);
	alarm(0);
	assert_int_equal(atomic_load(&submit_busy), 0);
	assert_int_equal(atomic_load(&r.calls), 1);
	assert_int_equal(r.result, 0);
	be->ops->free(be);
	free(buf);
}

/* ext4 takes O_DIRECT: the ring's fd is direct. */
static void test_direct_by_default(void **state)
{
	(void)state;
	bool direct = false;
	struct blk_backend *be = open_uring(path_, false, BLK_CACHE_DEFAULT, &direct);
	assert_true(direct);
	be->ops->free(be);
}

/* QD32 writes then QD32 reads, each split over two buffers, all in flight
 * together; every done() once with 0, the data where it should be. */
static void test_rw_many_in_flight(void **state)
{
	(void)state;
	struct blk_backend *be = open_uring(path_, false, BLK_CACHE_DEFAULT, NULL);
	static struct rec w[QD], r[QD];
	uint8_t *src = aligned(QD * 8192), *dst = aligned(QD * 8192);

	fill(src, QD * 8192, 3);
	memset(dst, 0, QD * 8192);
	for (unsigned i = 0; i < QD; i++) {
		/* scattered offsets, so requests do not merge into one */
		prep(&w[i], BLK_WRITE, (uint64_t)((i * 7) % QD) * 8192);
		w[i].io.iov[0] = (struct iovec){ src + i * 8192, 4096 };
		w[i].io.iov[1] = (struct iovec){ src + i * 8192 + 4096, 4096 };
		w[i].io.n = 2;
		be->ops->submit(be, &w[i].io);
	}
	be->ops->drain(be);
	for (unsigned i = 0; i < QD; i++) {
		assert_int_equal(atomic_load(&w[i].calls), 1);
		assert_int_equal(w[i].result, 0);
	}
	for (unsigned i = 0; i < QD; i++) {
		prep(&r[i], BLK_READ, (uint64_t)((i * 7) % QD) * 8192);
		r[i].io.iov[0] = (struct iovec){ dst + i * 8192, 512 };
		r[i].io.iov[1] = (struct iovec){ dst + i * 8192 + 512, 8192 - 512 };
		r[i].io.n = 2;
		be->ops->submit(be, &r[i].io);
	}
	be->ops->drain(be);
	for (unsigned i = 0; i < QD; i++) {
		assert_int_equal(atomic_load(&r[i].calls), 1);
		assert_int_equal(r[i].result, 0);
	}
	assert_memory_equal(src, dst, QD * 8192);
	assert_int_equal(blk_file_ring_ios(be), 2 * QD); /* all through the ring */
	be->ops->free(be);

	/* and on the file, as another reader sees it */
	int fd = open(path_, O_RDONLY);
	assert_true(fd >= 0);
	uint8_t *chk = malloc(8192);
	for (unsigned i = 0; i < QD; i++) {
		assert_int_equal(pread(fd, chk, 8192, (off_t)((i * 7) % QD) * 8192), 8192);
		assert_memory_equal(chk, src + i * 8192, 8192);
	}
	free(chk);
	close(fd);
	free(src);
	free(dst);
}

/* Buffers O_DIRECT cannot take (off by 8 bytes) are served all the same,
 * through the page cache, coherently with the direct ones. */
static void test_unaligned_buffers(void **state)
{
	(void)state;
	struct blk_backend *be = open_uring(path_, false, BLK_CACHE_DEFAULT, NULL);
	uint8_t *raw = aligned(3 * 4096 + 16), *src = raw + 8;
	uint8_t *back = aligned(3 * 4096);
	struct rec w, r;

	fill(src, 3 * 4096, 9);
	prep(&w, BLK_WRITE, 40960);
	w.io.iov[0] = (struct iovec){ src, 3 * 4096 };
	w.io.n = 1;
	be->ops->submit(be, &w.io);
	be->ops->drain(be);
	assert_int_equal(w.result, 0);
	assert_int_equal(blk_file_ring_ios(be), 0); /* the workers took it */
	/* read back through the ring (aligned) */
	prep(&r, BLK_READ, 40960);
	r.io.iov[0] = (struct iovec){ back, 3 * 4096 };
	r.io.n = 1;
	be->ops->submit(be, &r.io);
	be->ops->drain(be);
	assert_int_equal(r.result, 0);
	assert_int_equal(blk_file_ring_ios(be), 1);
	assert_memory_equal(back, src, 3 * 4096);
	be->ops->free(be);
	free(raw);
	free(back);
}

/* A read that runs past the end gets a short transfer: -EIO for it, and
 * only for it; the next request is fine. */
static void test_short_read_fails_only_it(void **state)
{
	(void)state;
	struct blk_backend *be = open_uring(path_, false, BLK_CACHE_DEFAULT, NULL);
	uint8_t *buf = aligned(8192);
	struct rec bad, past, good;

	prep(&bad, BLK_READ, IMG - 4096);
	bad.io.iov[0] = (struct iovec){ buf, 8192 };
	bad.io.n = 1;
	prep(&past, BLK_READ, IMG + 4096);
	past.io.iov[0] = (struct iovec){ buf, 4096 };
	past.io.n = 1;
	prep(&good, BLK_READ, 0);
	good.io.iov[0] = (struct iovec){ buf, 4096 };
	good.io.n = 1;
	be->ops->submit(be, &bad.io);
	be->ops->submit(be, &past.io);
	be->ops->submit(be, &good.io);
	be->ops->drain(be);
	assert_int_equal(bad.result, -EIO);
	assert_int_equal(past.result, -EIO);
	assert_int_equal(good.result, 0);
	be->ops->free(be);
	free(buf);
}

/* Flush completes 0 after writes (Writeback: an fsync through the ring;
 * Unsafe: at once); on a read-only image a write fails, a read works. */
static void test_flush_and_read_only(void **state)
{
	(void)state;
	uint8_t *buf = aligned(4096);
	struct rec w, f;

	for (int unsafe = 0; unsafe < 2; unsafe++) {
		struct blk_backend *be =
			open_uring(path_, false, unsafe ? BLK_CACHE_UNSAFE : BLK_CACHE_WRITEBACK, NULL);
		fill(buf, 4096, 5);
		prep(&w, BLK_WRITE, 0);
		w.io.iov[0] = (struct iovec){ buf, 4096 };
		w.io.n = 1;
		be->ops->submit(be, &w.io);
		be->ops->drain(be);
		prep(&f, BLK_FLUSH, 0);
		be->ops->submit(be, &f.io);
		be->ops->drain(be);
		assert_int_equal(w.result, 0);
		assert_int_equal(f.result, 0);
		assert_int_equal(atomic_load(&f.calls), 1);
		/* Writeback: the fsync went through the ring too */
		assert_int_equal(blk_file_ring_ios(be), unsafe ? 1 : 2);
		be->ops->free(be);
	}

	struct blk_backend *ro = open_uring(path_, true, BLK_CACHE_DEFAULT, NULL);
	assert_true(ro->read_only);
	prep(&w, BLK_WRITE, 0);
	w.io.iov[0] = (struct iovec){ buf, 4096 };
	w.io.n = 1;
	ro->ops->submit(ro, &w.io);
	prep(&f, BLK_READ, 0);
	f.io.iov[0] = (struct iovec){ buf, 4096 };
	f.io.n = 1;
	ro->ops->submit(ro, &f.io);
	ro->ops->drain(ro);
	assert_true(w.result < 0);
	assert_int_equal(f.result, 0);
	ro->ops->free(ro);
	free(buf);
}

/* A sparse 1 MiB image on a 128 KiB tmpfs, sixteen 64 KiB writes to fresh
 * blocks all in flight: some fail (-ENOSPC, or -EIO when one got part
 * way), at least one succeeds, each answered once; a rewrite of an
 * allocated block and a read still work. Skipped where tmpfs cannot be
 * mounted (not root). */
static void test_enospc(void **state)
{
	(void)state;
	char dir[] = "/tmp/vblk-uring-full-XXXXXX";
	char path[64];
	assert_non_null(mkdtemp(dir));
	if (mount("tmpfs", dir, "tmpfs", 0, "size=128k") != 0) {
		rmdir(dir);
		skip();
	}
	snprintf(path, sizeof(path), "%s/disk.img", dir);
	make_image(path, IMG);
	struct blk_backend *be = open_uring(path, false, BLK_CACHE_DEFAULT, NULL);
	enum { N = 16, LEN = 65536 };
	static struct rec w[N];
	uint8_t *src = aligned((size_t)N * LEN);
	fill(src, (size_t)N * LEN, 11);
	for (unsigned i = 0; i < N; i++) {
		prep(&w[i], BLK_WRITE, (uint64_t)i * LEN);
		w[i].io.iov[0] = (struct iovec){ src + (size_t)i * LEN, LEN };
		w[i].io.n = 1;
		be->ops->submit(be, &w[i].io);
	}
	be->ops->drain(be);
	assert_int_equal(blk_file_ring_ios(be), N);
	unsigned ok = 0, bad = 0, first = N;
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(atomic_load(&w[i].calls), 1);
		if (w[i].result == 0) {
			ok++;
			if (first == N)
				first = i;
		} else {
			assert_true(w[i].result == -ENOSPC || w[i].result == -EIO);
			bad++;
		}
	}
	assert_true(ok >= 1);
	assert_true(bad >= 1);
	struct rec again, rd;
	prep(&again, BLK_WRITE, (uint64_t)first * LEN);
	again.io.iov[0] = (struct iovec){ src, 4096 };
	again.io.n = 1;
	be->ops->submit(be, &again.io);
	be->ops->drain(be);
	assert_int_equal(again.result, 0);
	uint8_t *back = aligned(4096);
	prep(&rd, BLK_READ, (uint64_t)first * LEN);
	rd.io.iov[0] = (struct iovec){ back, 4096 };
	rd.io.n = 1;
	be->ops->submit(be, &rd.io);
	be->ops->drain(be);
	assert_int_equal(rd.result, 0);
	assert_memory_equal(back, src, 4096);
	be->ops->free(be);
	free(back);
	free(src);
	unlink(path);
	umount2(dir, MNT_DETACH);
	rmdir(dir);
}

static bool all_done(struct rec *r, unsigned n)
{
	for (int t = 0; t < 5000; t++) {
		unsigned k = 0;
		for (unsigned i = 0; i < n; i++)
			k += atomic_load(&r[i].calls) == 1;
		if (k == n)
			return true;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return false;
}

/* Completions on the device context (the event loop that submits): they
 * arrive there without a drain, all on that one thread; a drain with the
 * loop paused (a snapshot, a reset on the loop itself) still sees every
 * I/O finish, taking the completions itself. */
static void test_completions_on_exec(void **state)
{
	(void)state;
	struct evloop *l = evloop_new();
	assert_non_null(l);
	assert_int_equal(evloop_start(l), 0);
	struct exec ex = evloop_exec(l);
	char err[256] = "";
	struct blk_file_opts o = { .engine = BLK_ENGINE_URING, .ex = &ex };
	struct blk_backend *be = blk_file_open_opts(path_, &o, err, sizeof(err));
	if (!be)
		fail_msg("open: %s", err);
	assert_int_equal(blk_file_engine(be, NULL), BLK_ENGINE_URING);
	static struct rec w[QD], r[QD];
	uint8_t *src = aligned(QD * 4096), *dst = aligned(QD * 4096);
	fill(src, QD * 4096, 5);
	memset(dst, 0, QD * 4096);

	for (unsigned i = 0; i < QD; i++) {
		prep(&w[i], BLK_WRITE, (uint64_t)i * 4096);
		w[i].io.iov[0] = (struct iovec){ src + i * 4096, 4096 };
		w[i].io.n = 1;
		be->ops->submit(be, &w[i].io);
	}
	be->ops->unplug(be);
	assert_true(all_done(w, QD)); /* no drain: the loop took them */
	for (unsigned i = 0; i < QD; i++) {
		assert_int_equal(w[i].result, 0);
		assert_false(pthread_equal(w[i].who, pthread_self()));
		assert_true(pthread_equal(w[i].who, w[0].who));
	}

	assert_int_equal(evloop_pause(l), 0);
	for (unsigned i = 0; i < QD; i++) {
		prep(&r[i], BLK_READ, (uint64_t)i * 4096);
		r[i].io.iov[0] = (struct iovec){ dst + i * 4096, 4096 };
		r[i].io.n = 1;
		be->ops->submit(be, &r[i].io);
	}
	be->ops->drain(be); /* the loop is paused: drain takes them */
	for (unsigned i = 0; i < QD; i++) {
		assert_int_equal(atomic_load(&r[i].calls), 1);
		assert_int_equal(r[i].result, 0);
		assert_true(pthread_equal(r[i].who, pthread_self()));
	}
	assert_memory_equal(src, dst, QD * 4096);
	assert_int_equal(blk_file_ring_ios(be), 2 * QD);
	be->ops->free(be);
	evloop_resume(l);
	evloop_stop(l);
	evloop_free(l);
	free(src);
	free(dst);
}

static atomic_int batch_ends;

static void count_batch_end(void *ctx, bool on_device)
{
	(void)ctx;
	(void)on_device;
	atomic_fetch_add(&batch_ends, 1);
}

/* Every completion there is when the device context looks goes to the
 * device as one run (one batch_end, so one interrupt decision), however
 * many CQEs that is: here 128, twice what one peek takes. */
static void test_one_batch_end_per_look(void **state)
{
	(void)state;
	enum { N = 128 };
	struct evloop *l = evloop_new();
	assert_non_null(l);
	assert_int_equal(evloop_start(l), 0);
	struct exec ex = evloop_exec(l);
	char err[256] = "";
	struct blk_file_opts o = { .engine = BLK_ENGINE_URING, .ex = &ex };
	struct blk_backend *be = blk_file_open_opts(path_, &o, err, sizeof(err));
	if (!be)
		fail_msg("open: %s", err);
	assert_int_equal(blk_file_engine(be, NULL), BLK_ENGINE_URING);
	be->batch_end = count_batch_end;
	be->batch_ctx = NULL;
	atomic_store(&batch_ends, 0);
	static struct rec r[N];
	uint8_t *dst = aligned(N * 4096);

	assert_int_equal(evloop_pause(l), 0);
	for (unsigned i = 0; i < N; i++) {
		prep(&r[i], BLK_READ, (uint64_t)i * 4096);
		r[i].io.iov[0] = (struct iovec){ dst + i * 4096, 4096 };
		r[i].io.n = 1;
		be->ops->submit(be, &r[i].io);
	}
	be->ops->unplug(be);
	/* The kernel completes them meanwhile (this thread, the submitter,
	 * runs their completion work while it sleeps). */
	struct timespec ts = { 0, 200000000 };
	nanosleep(&ts, NULL);
	evloop_resume(l);
	assert_true(all_done(r, N));
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(r[i].result, 0);
	assert_int_equal(atomic_load(&batch_ends), 1);
	be->ops->free(be);
	evloop_stop(l);
	evloop_free(l);
	free(dst);
}

int main(void)
{
	/* A mount namespace of our own where we can have one, so that the
	 * tmpfs of test_enospc is never seen outside (before any thread). */
	if (unshare(CLONE_NEWNS) == 0)
		mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_direct_by_default),
		cmocka_unit_test(test_rw_many_in_flight),
		cmocka_unit_test(test_refused_submit_goes_next),
		cmocka_unit_test(test_unaligned_buffers),
		cmocka_unit_test(test_short_read_fails_only_it),
		cmocka_unit_test(test_flush_and_read_only),
		cmocka_unit_test(test_enospc),
		cmocka_unit_test(test_completions_on_exec),
		cmocka_unit_test(test_one_batch_end_per_look),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
