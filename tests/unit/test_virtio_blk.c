/* Unit tests for devices/virtio_blk: the device driven without a transport,
 * through a fake guest memory with hand-laid split rings, against a temp
 * image file. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_dirty.h"
#include "fake_guest.h"

#include "core/devreq.h"
#include "core/exec.h"
#include "core/policy.h"
#include "devices/virtio_blk.h"
#include "host/evloop.h"
#include "host/exec_evloop.h"
#include "host/blk_file.h"
#include "virtio/virtio_dev.h"

#define RAM_SIZE (16 * MiB)
#define QSIZE 256
#define DESC_GPA 0x1000
#define AVAIL_GPA 0x2000
#define USED_GPA 0x3000
#define BUF_GPA 0x10000
#define IMG_SECTORS 2048u /* 1 MiB image */
#define IMG_BYTES (IMG_SECTORS * 512u)

struct seg {
	uint64_t gpa;
	uint32_t len;
	bool write; /* device-writable */
};

struct rig {
	struct fake_guest g;
	struct dev_stats stats;

	struct virtio_dev *d;
	char path[64];
	uint16_t next_desc;
	uint16_t avail_idx;
	uint64_t next_buf;
	atomic_int raises;
	atomic_int config_raises;
	struct policy_slot *slot; /* a test's policy, or NULL */
	const char *overlay;      /* given at build (what the builder does) */
	bool overlay_only;
};

static void rec_raise(struct virtio_dev *d, int q)
{
	struct rig *r = d->transport;
	if (q < 0)
		atomic_fetch_add(&r->config_raises, 1);
	else
		atomic_fetch_add(&r->raises, 1);
}

/* A temp image of IMG_BYTES with a known pattern. */
static void make_image(struct rig *r, size_t bytes)
{
	strcpy(r->path, "/tmp/vblk-XXXXXX");
	int fd = mkstemp(r->path);
	assert_true(fd >= 0);
	uint8_t *p = malloc(bytes ? bytes : 1);
	assert_non_null(p);
	fill_pattern(p, bytes, 7);
	assert_int_equal(write(fd, p, bytes), (ssize_t)bytes);
	free(p);
	close(fd);
}

static void enable_queue(struct rig *r);

/* The engine the device's tests run over: main() runs them once over each
 * (VIGIL_TEST_BLK_IO=threads|uring: only that one). */
static enum blk_engine engine_ = BLK_ENGINE_DEFAULT;
static enum blk_engine test_engine(void)
{
	return engine_;
}

static void start_device(struct rig *r, bool ro, const char *id)
{
	struct virtio_blk_config cfg = { .path = r->path, .read_only = ro, .id = id, .overlay = r->overlay,
					 .overlay_only = r->overlay_only, .engine = test_engine() };
	struct dev_gate gate = { .stats = &r->stats, .policy = r->slot, .id = "disk0", .read_only = ro };
	char err[256] = "";

	r->d = host_blk_new(&cfg, &r->g.m, gate, err, sizeof(err));
	if (!r->d)
		fail_msg("virtio_blk_new: %s", err);
	enable_queue(r);
}

/* Plays the driver's handshake on r->d: queue 0 at the rig's rings, DRIVER_OK. */
static void enable_queue(struct rig *r)
{
	struct virtq *q = &r->d->vq[0];
	q->size = QSIZE;
	q->desc_gpa = DESC_GPA;
	q->avail_gpa = AVAIL_GPA;
	q->used_gpa = USED_GPA;
	assert_int_equal(virtq_enable(q, &r->g.m), 0);
	r->d->features = r->d->host_features | VIRTIO_BIT(VIRTIO_F_VERSION_1);
	r->d->transport = r;
	r->d->raise = rec_raise;
	atomic_store(&r->d->status, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER |
					    VIRTIO_S_FEATURES_OK | VIRTIO_S_DRIVER_OK);
}

/* A rig with guest RAM and a temp image, no device yet. */
static struct rig *rig_image(void)
{
	struct rig *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	assert_int_equal(fake_guest_init(&r->g, RAM_SIZE), 0);
	r->stats.name = "blk-test";
	r->next_buf = BUF_GPA;
	make_image(r, IMG_BYTES);
	return r;
}

static struct rig *rig_new(bool ro, const char *id)
{
	struct rig *r = rig_image();
	start_device(r, ro, id);
	return r;
}

static void rig_free(struct rig *r)
{
	virtio_blk_free(r->d);
	if (r->slot) {
		policy_slot_fini(r->slot);
		free(r->slot);
	}
	unlink(r->path);
	fake_guest_fini(&r->g);
	free(r);
}

static uint8_t *host(struct rig *r, uint64_t gpa)
{
	return r->g.ram + gpa;
}

/* A zeroed guest buffer. */
static uint64_t gbuf(struct rig *r, uint32_t len)
{
	uint64_t gpa = r->next_buf;
	r->next_buf = (r->next_buf + len + 15) & ~15ull;
	assert_true(r->next_buf < RAM_SIZE);
	memset(host(r, gpa), 0, len);
	return gpa;
}

static uint64_t header(struct rig *r, uint32_t type, uint64_t sector)
{
	uint64_t gpa = gbuf(r, 16);
	put32(host(r, gpa), type);
	put32(host(r, gpa + 4), 0);
	put64(host(r, gpa + 8), sector);
	return gpa;
}

/* Writes the chain's descriptors and makes it available (no kick). */
static uint16_t post(struct rig *r, const struct seg *s, unsigned n)
{
	struct virtq_desc *desc = (struct virtq_desc *)(void *)host(r, DESC_GPA);
	uint16_t head = r->next_desc;

	assert_true(r->next_desc + n <= QSIZE);
	for (unsigned i = 0; i < n; i++) {
		struct virtq_desc *dd = &desc[r->next_desc];
		dd->addr = s[i].gpa;
		dd->len = s[i].len;
		dd->flags = (uint16_t)((s[i].write ? VIRTQ_DESC_F_WRITE : 0) |
				       (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
		dd->next = (uint16_t)(r->next_desc + 1);
		r->next_desc++;
	}
	struct virtq_avail *av = (struct virtq_avail *)(void *)host(r, AVAIL_GPA);
	av->ring[r->avail_idx % QSIZE] = head;
	r->avail_idx++;
	__atomic_store_n(&av->idx, r->avail_idx, __ATOMIC_RELEASE);
	return head;
}

static void kick(struct rig *r)
{
	r->d->ops->queue_notify(r->d, 0);
}

static struct virtq_used *used(struct rig *r)
{
	return (struct virtq_used *)(void *)host(r, USED_GPA);
}

/* Waits up to 5 s for used->idx to reach n. */
static bool wait_used(struct rig *r, uint16_t n)
{
	for (int i = 0; i < 5000; i++) {
		if (__atomic_load_n(&used(r)->idx, __ATOMIC_ACQUIRE) == n)
			return true;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return false;
}

/* The used length reported for head; -1 if it is not in the used ring. */
static int64_t used_len(struct rig *r, uint16_t head)
{
	uint16_t n = __atomic_load_n(&used(r)->idx, __ATOMIC_ACQUIRE);
	for (uint16_t i = 0; i < n && i < QSIZE; i++)
		if (used(r)->ring[i].id == head)
			return used(r)->ring[i].len;
	return -1;
}

/* Posts one chain, kicks, waits for it; returns its head. */
static uint16_t run1(struct rig *r, const struct seg *s, unsigned n)
{
	uint16_t before = __atomic_load_n(&used(r)->idx, __ATOMIC_ACQUIRE);
	uint16_t head = post(r, s, n);
	kick(r);
	assert_true(wait_used(r, (uint16_t)(before + 1)));
	return head;
}

static void file_read(struct rig *r, uint64_t off, void *buf, size_t len)
{
	int fd = open(r->path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static uint64_t file_sum(struct rig *r)
{
	uint8_t *p = malloc(IMG_BYTES);
	assert_non_null(p);
	file_read(r, 0, p, IMG_BYTES);
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < IMG_BYTES; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	free(p);
	return h;
}

static uint64_t stat_of(_Atomic uint64_t *v)
{
	return atomic_load(v);
}

/* ---- happy paths ---- */

static void test_read(void **state)
{
	(void)state;
	struct rig *r = rig_new(false, NULL);
	uint64_t data = gbuf(r, 1024), st = gbuf(r, 1);
	*host(r, st) = 0xaa;
	struct seg s[] = { { header(r, VIRTIO_BLK_T_IN, 5), 16, false },
			   { data, 1024, true },
			   { st, 1, true } };
	uint16_t head = run1(r, s, 3);

	assert_int_equal(*host(r, st), VIRTIO_BLK_S_OK);
	assert_int_equal(used_len(r, head), 1025);
	uint8_t want[1024];
	file_read(r, 5 * 512, want, sizeof(want));
	assert_memory_equal(host(r, data), want, sizeof(want));
	assert_int_equal(stat_of(&r->stats.requests), 1);
	assert_int_equal(stat_of(&r->stats.bytes), 1024);
	assert_int_equal(stat_of(&r->stats.errors), 0);
	assert_true(atomic_load(&r->raises) >= 1);
	rig_free(r);
}

/* Header split over two descriptors, data over three, status at the end of
 * the last data buffer: any layout is valid. */
static void test_read_any_layout(void **state)
{
	(void)state;
	struct rig *r = rig_new(false, NULL);
	uint64_t h = header(r, VIRTIO_BLK_T_IN, IMG_SECTORS - 3);
	uint64_t d1 = gbuf(r, 100), d2 = gbuf(r, 1000), d3 = gbuf(r, 437);
	struct seg s[] = { { h, 8, false }, { h + 8, 8, false }, { d1, 100, true },
			   { d2, 1000, true }, { d3, 437, true } };
	uint16_t head = run1(r, s, 5);

	assert_int_equal(*host(r, d3 + 436), VIRTIO_BLK_S_OK);
	assert_int_equal(used_len(r, head), 1537);
	uint8_t want[1536], got[1536];
	file_read(r, (IMG_SECTORS - 3) * 512ull, want, sizeof(want));
	memcpy(got, host(r, d1), 100);
	memcpy(got + 100, host(r, d2), 1000);
	memcpy(got + 1100, host(r, d3), 436);
	assert_memory_equal(got, want, sizeof(want));
	rig_free(r);
}

static void test_write(void **state)
{
	(void)state;
	struct rig *r = rig_new(false, NULL);
	uint64_t d1 = gbuf(r, 1024), d2 = gbuf(r, 512), st = gbuf(r, 1);
	fill_pattern(host(r, d1), 1024, 99);
	fill_pattern(host(r, d2), 512, 100);
	*host(r, st) = 0xaa;
	struct seg s[] = { { header(r, VIRTIO_BLK_T_OUT, 10), 16, false },
			   { d1, 1024, false },
			   { d2, 512, false },
			   { st, 1, true } };
	uint16_t head = run1(r, s, 4);

	assert_int_equal(*host(r, st), VIRTIO_BLK_S_OK);
	assert_int_equal(used_len(r, head), 1);
	uint8_t got[1536], before[512];
	file_read(r, 10 * 512, got, sizeof(got));
	assert_memory_equal(got, host(r, d1), 1024);
	assert_memory_equal(got + 1024, host(r, d2), 512);
	/* The neighbours are the original pattern. */
	uint8_t *orig = malloc(IMG_BYTES);
	fill_pattern(orig, IMG_BYTES, 7);
	file_read(r, 9 * 512, before, 512);
	assert_memory_equal(before, orig + 9 * 512, 512);
	file_read(r, 13 * 512, before, 512);
	assert_memory_equal(before, orig + 13 * 512, 512);
	free(orig);
	assert_int_equal(stat_of(&r->stats.requests), 1);
	assert_int_equal(stat_of(&r->stats.bytes), 1536);
	rig_free(r);
}

static void test_flush(void **state)
{
	(void)state;
	struct rig *r = rig_new(false, NULL);
	uint64_t st = gbuf(r, 1);
	*host(r, st) = 0xaa;
	struct seg s[] = { { header(r, VIRTIO_BLK_T_FLUSH, 0), 16, false }, { st, 1, true } };
	uint16_t head = run1(r, s, 2);

	assert_int_equal(*host(r, st), VIRTIO_BLK_S_OK);
	assert_int_equal(used_len(r, head), 1);
	assert_int_equal(stat_of(&r->stats.requests), 1);
	assert_int_equal(stat_of(&r->stats.errors), 0);
	rig_free(r);
}

static void test_get_id(void **state)
{
	(void)state;
	struct rig *r = rig_new(false, "vigil-disk-1");
	uint64_t data = gbuf(r, 20), st = gbuf(r, 1);
	memset(host(r, data), 0xee, 20);
	struct seg s[] = { { header(r, VIRTIO_BLK_T_GET_ID, 0), 16, false },
			   { data, 20, true },
			   { st, 1, true } };
	uint16_t head = run1(r, s, 3);

	assert_int_equal(*host(r, st), VIRTIO_BLK_S_OK);
	assert_int_equal(used_len(r, head), 21);
	uint8_t want[20] = "vigil-disk-1"; /* zero-padded */
	assert_memory_equal(host(r, data), want, 20);
	rig_free(r);
}

/* Without id=, the file name (after the last '/'), cut to 20 bytes. */
static void test_get_id_default(void **state)
{
	(void)state;
	struct rig *r = rig_new(false, NULL);
	uint64_t data = gbuf(r, 8), st = gbuf(r, 1);
	struct seg s[] = { { header(r, VIRTIO_BLK_T_GET_ID, 0), 16, false },
			   { data, 8, true },
			   { st, 1, true } };
	uint16_t head = run1(r, s, 3);

	assert_int_equal(*host(r, st), VIRTIO_BLK_S_OK);
	assert_int_equal(used_len(r, head), 9); /* the buffer bounds the copy */
	assert_memory_equal(host(r, data), r->path + 5, 8); /* "vblk-XXX" */
	rig_free(r);
}

static void test_config(void **state)
{
	(void)state;
	struct rig *r = rig_new(false, NULL);
	struct virtio_dev *d = r->d;
	uint8_t c[VIRTIO_BLK_CONFIG_LEN];

	assert_int_equal(d->device_id, VIRTIO_ID_BLOCK);
	assert_int_equal(d->num_queues, 1);
	assert_int_equal(d->queue_max, 1024);
	assert_int_equal(d->config_len, 60);
	assert_int_equal(d->host_features, VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) |
						   VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
						   VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE));
	d->ops->config_read(d, 0, c, sizeof(c));
	assert_int_equal(get64(c), IMG_SECTORS);
	assert_int_equal(get32(c + 8), 0);   /* size_max: not offered */
	assert_int_equal(get32(c + 12), 62); /* seg_max */
	assert_int_equal(get32(c + 20), 512);
	assert_int_equal(get16(c + 34), 1);
	assert_int_equal(virtio_blk_capacity(d), IMG_SECTORS);
	/* Partial and unaligned reads. */
	uint8_t b4[4];
	d->ops->config_read(d, 20, b4, 4);
	assert_int_equal(get32(b4), 512);
	d->ops->config_read(d, 1, b4, 2);
	assert_int_equal(get16(b4), IMG_SECTORS >> 8);
	/* Nothing is writable: no config_write, so the transport drops writes. */
	assert_null(d->ops->config_write);
	d->ops->config_read(d, 0, c, 8);
	assert_int_equal(get64(c), IMG_SECTORS);
	rig_free(r);
}

/* ---- read-only ---- */

static void test_read_only(void **state)
{
	(void)state;
	struct rig *r = rig_new(true, NULL);
	uint64_t sum = file_sum(r);
	assert_true(r->d->host_features & VIRTIO_BIT(VIRTIO_BLK_F_RO));

	uint64_t data = gbuf(r, 512), st = gbuf(r, 1);
	fill_pattern(host(r, data), 512, 3);
	struct seg w[] = { { header(r, VIRTIO_BLK_T_OUT, 0), 16, false },
			   { data, 512, false },
			   { st, 1, true } };
	uint16_t head = run1(r, w, 3);
	assert_int_equal(*host(r, st), VIRTIO_BLK_S_IOERR);
	assert_int_equal(used_len(r, head), 1);
	assert_int_equal(file_sum(r), sum);
	assert_int_equal(stat_of(&r->stats.requests), 1);
	assert_int_equal(stat_of(&r->stats.denied), 1);
	assert_int_equal(stat_of(&r->stats.bytes), 0);
	assert_int_equal(stat_of(&r->stats.errors), 0);

	/* Reads and flushes still work. */
	uint64_t rd = gbuf(r, 512), st2 = gbuf(r, 1);
	struct seg rs[] = { { header(r, VIRTIO_BLK_T_IN, 1), 16, false },
			    { rd, 512, true },
			    { st2, 1, true } };
	run1(r, rs, 3);
	assert_int_equal(*host(r, st2), VIRTIO_BLK_S_OK);
	uint8_t want[512];
	file_read(r, 512, want, 512);
	assert_memory_equal(host(r, rd), want, 512);

	uint64_t st3 = gbuf(r, 1);
	*host(r, st3) = 0xaa;
	struct seg f[] = { { header(r, VIRTIO_BLK_T_FLUSH, 0), 16, false }, { st3, 1, true } };
	run1(r, f, 2);
	assert_int_equal(*host(r, st3), VIRTIO_BLK_S_OK);
	assert_int_equal(stat_of(&r->stats.requests), 3);
	assert_int_equal(stat_of(&r->stats.denied), 1);
	rig_free(r);
}

/* The gate alone (a writable file, a read-only gate) still stops writes. */
static void test_read_only_gate(void **state)
{
	(void)state;
	struct rig *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	assert_int_equal(fake_guest_init(&r->g, RAM_SIZE), 0);
	r->next_buf = BUF_GPA;
	make_image(r, IMG_BYTES);
	struct virtio_blk_config cfg = { .path = r->path };
	struct dev_gate gate = { .stats = &r->stats, .policy = NULL, .read_only = true };
	char err[128];
	r->d = host_blk_new(&cfg, &r->g.m, gate, err, sizeof(err));
	assert_non_null(r->d);
	assert_true(r->d->host_features & VIRTIO_BIT(VIRTIO_BLK_F_RO));
	rig_free(r);
}

/* ---- malformed requests ---- */

/* Runs one OUT or IN request expected to fail with `want`; checks the file
 * is unchanged and one error was counted. */
static void expect_fail(struct rig *r, const struct seg *s, unsigned n, uint64_t st,
			uint8_t want, int64_t want_len)
{
	uint64_t sum = file_sum(r);
	uint64_t errs = stat_of(&r->stats.errors);
	*host(r, st) = 0xaa;
	uint16_t head = run1(r, s, n);
	assert_int_equal(*host(r, st), want);
	assert_int_equal(used_len(r, head), want_len);
	assert_int_equal(file_sum(r), sum);
	assert_int_equal(stat_of(&r->stats.errors), errs + 1);
}

static void test_beyond_capacity(void **state)
{
	(void)state;
	struct rig *r = rig_new(false, NULL);
	uint64_t data = gbuf(r, 1024), st = gbuf(r, 1);
	fill_pattern(host(r, data), 1024, 5);
	/* Last sector plus one. */
	struct seg a[] = { { header(r, VIRTIO_BLK_T_OUT, IMG_SECTORS - 1), 16, false },
			   { data, 1024, false },
			   { st, 1, true } };
	expect_fail(r, a, 3, st, VIRTIO_BLK_S_IOERR, 1);
	/* Starting at capacity. */
	struct seg b[] = { { header(r, VIRTIO_BLK_T_OUT, IMG_SECTORS), 16, false },
			   { data, 512, false },
			   { st, 1, true } };
	expect_fail(r, b, 3, st, VIRTIO_BLK_S_IOERR, 1);
	/* A read past the end leaves the buffer alone. */
	uint64_t rd = gbuf(r, 512);
	memset(host(r, rd), 0x5a, 512);
	struct seg c[] = { { header(r, VIRTIO_BLK_T_IN, IMG_SECTORS), 16, false },
			   { rd, 512, true },
			   { st, 1, true } };
	expect_fail(r, c, 3, st, VIRTIO_BLK_S_IOERR, 1);
	assert_int_equal(host(r, rd)[0], 0x5a);
	assert_int_equal(host(r, rd)[511], 0x5a);
	/* Exactly the last sector is fine. */
	struct seg ok[] = { { header(r, VIRTIO_BLK_T_OUT, IMG_SECTORS - 1), 16, false },
			    { data, 512, false },
			    { st, 1, true } };
	run1(r, ok, 3);
	assert_int_equal(*host(r, st), VIRTIO_BLK_S_OK);
	uint8_t got[512];
	file_read(r, IMG_BYTES - 512, got, 512);
	assert_memory_equal(got, host(r, data), 512);
	assert_int_equal(stat_of(&r->stats.errors), 3);
	rig_free(r);
}

/* sector * 512 wraps to a small offset: must not write at that offset. */
static void test_sector_overflow(void **state)
{
	(void)state;
	struct rig *r = rig_new(false, NULL);
	uint64_t data = gbuf(r, 512), st = gbuf(r, 1);
	fill_pattern(host(r, data), 512, 6);
	struct seg a[] = { { header(r, VIRTIO_BLK_T_OUT, 1ull << 55), 16, false },
			   { data, 512, false },
			   { st, 1, true } };
	expect_fail(r, a, 3, st, VIRTIO_BLK_S_IOERR, 1);
	struct seg b[] = { { header(r, VIRTIO_BLK_T_OUT, UINT64_MAX), 16, false },
			   { data, 512, false },
			   { st, 1, true } };
	expect_fail(r, b, 3, st, VIRTIO_BLK_S_IOERR, 1);
	struct seg c[] = { { header(r, VIRTIO_BLK_T_OUT, UINT64_MAX / 512 + 1), 16, false },
			   { data, 512, false },
			   { st, 1, true } };
	expect_fail(r, c, 3, st, VIRTIO_BLK_S_IOERR, 1);
	rig_free(r);
}

static void test_bad_length(void **state)
{
	(void)state;
	struct rig *r = rig_new(false, NULL);
	uint64_t data = gbuf(r, 1024), st = gbuf(r, 1);
	struct seg a[] = { { header(r, VIRTIO_BLK_T_OUT, 0), 16, false },
			   { data, 513, false },
			   { st, 1, true } };
	expect_fail(r, a, 3, st, VIRTIO_BLK_S_IOERR, 1);
	memset(host(r, data), 0x5a, 100);
	struct seg b[] = { { header(r, VIRTIO_BLK_T_IN, 0), 16, false },
			   { data, 100, true },
			   { st, 1, true } };
	expect_fail(r, b, 3, st, VIRTIO_BLK_S_IOERR, 1);
	assert_int_equal(host(r, data)[0], 0x5a);
	assert_int_equal(stat_of(&r->stats.requests), 0); /* never reached the gate */
	rig_free(r);
}

static void test_header_too_short(void **state)
{
	(void)state;
	struct rig *r = rig_new(false, NULL);
	uint64_t data = gbuf(r, 512), st = gbuf(r, 1);
	struct seg a[] = { { header(r, VIRTIO_BLK_T_OUT, 0), 15, false },
			   { st, 1, true } };
	expect_fail(r, a, 2, st, VIRTIO_BLK_S_IOERR, 1);
	/* No readable part at all. */
	struct seg b[] = { { data, 512, true }, { st, 1, true } };
	expect_fail(r, b, 2, st, VIRTIO_BLK_S_IOERR, 1);
	rig_free(r);
}

static void test_status_not_writable(void **state)
{
	(void)state;
	struct rig *r = rig_new(false, NULL);
	uint64_t data = gbuf(r, 512), st = gbuf(r, 1);
	fill_pattern(host(r, data), 512, 8);
	/* Everything readable: no status byte to write, used length 0. */
	struct seg a[] = { { header(r, VIRTIO_BLK_T_OUT, 0), 16, false },
			   { data, 512, false },
			   { st, 1, false } };
	expect_fail(r, a, 3, st, 0xaa, 0);
	rig_free(r);
}

static void test_wrong_direction(void **state)
{
	(void)state;
	struct rig *r = rig_new(false, NULL);
	uint64_t data = gbuf(r, 512), st = gbuf(r, 1);
	/* IN with a device-readable data buffer: nothing may be written into it. */
	memset(host(r, data), 0x5a, 512);
	struct seg a[] = { { header(r, VIRTIO_BLK_T_IN, 0), 16, false },
			   { data, 512, false },
			   { st, 1, true } };
	expect_fail(r, a, 3, st, VIRTIO_BLK_S_IOERR, 1);
	for (int i = 0; i < 512; i++)
		assert_int_equal(host(r, data)[i], 0x5a);
	/* OUT with a device-writable data buffer. */
	struct seg b[] = { { header(r, VIRTIO_BLK_T_OUT, 0), 16, false },
			   { data, 512, true },
			   { st, 1, true } };
	expect_fail(r, b, 3, st, VIRTIO_BLK_S_IOERR, 1);
	for (int i = 0; i < 512; i++)
		assert_int_equal(host(r, data)[i], 0x5a);
	rig_free(r);
}

static void test_unknown_type(void **state)
{
	(void)state;
	struct rig *r = rig_new(false, NULL);
	uint64_t st = gbuf(r, 1);
	struct seg a[] = { { header(r, 99, 0), 16, false }, { st, 1, true } };
	expect_fail(r, a, 2, st, VIRTIO_BLK_S_UNSUPP, 1);
	struct seg b[] = { { header(r, 11 /* DISCARD, not offered */, 0), 16, false },
			   { st, 1, true } };
	expect_fail(r, b, 2, st, VIRTIO_BLK_S_UNSUPP, 1);
	rig_free(r);
}

/* A chain virtq rejects (a buffer outside RAM) is returned with length 0
 * and counted; the queue goes on. */
static void test_bad_chain(void **state)
{
	(void)state;
	struct rig *r = rig_new(false, NULL);
	uint64_t st = gbuf(r, 1);
	struct seg a[] = { { header(r, VIRTIO_BLK_T_IN, 0), 16, false },
			   { RAM_SIZE - 256, 512, true },
			   { st, 1, true } };
	uint16_t head = run1(r, a, 3);
	assert_int_equal(used_len(r, head), 0);
	assert_int_equal(stat_of(&r->stats.errors), 1);

	uint64_t data = gbuf(r, 512);
	struct seg b[] = { { header(r, VIRTIO_BLK_T_IN, 0), 16, false },
			   { data, 512, true },
			   { st, 1, true } };
	head = run1(r, b, 3);
	assert_int_equal(used_len(r, head), 513);
	assert_int_equal(*host(r, st), VIRTIO_BLK_S_OK);
	assert_false(atomic_load(&r->d->status) & VIRTIO_S_DEVICE_NEEDS_RESET);
	rig_free(r);
}

/* An avail index that runs away breaks the queue: NEEDS_RESET + config
 * interrupt, and no more processing. */
static void test_broken_queue(void **state)
{
	(void)state;
	struct rig *r = rig_new(false, NULL);
	struct virtq_avail *av = (struct virtq_avail *)(void *)host(r, AVAIL_GPA);
	__atomic_store_n(&av->idx, (uint16_t)(QSIZE + 1), __ATOMIC_RELEASE);
	kick(r);
	assert_true(atomic_load(&r->d->status) & VIRTIO_S_DEVICE_NEEDS_RESET);
	assert_int_equal(atomic_load(&r->config_raises), 1);
	assert_int_equal(used(r)->idx, 0);
	kick(r); /* ignored: not live */
	assert_int_equal(atomic_load(&r->config_raises), 1);
	rig_free(r);
}

/* ---- concurrency ---- */

static void test_many_in_flight(void **state)
{
	(void)state;
	struct rig *r = rig_new(false, NULL);
	enum { N = 64 };
	uint64_t data[N], st[N];
	uint16_t head[N];

	/* 64 writes of 4 KiB at distinct places, one kick. */
	for (int i = 0; i < N; i++) {
		data[i] = gbuf(r, 4096);
		st[i] = gbuf(r, 1);
		*host(r, st[i]) = 0xaa;
		fill_pattern(host(r, data[i]), 4096, 1000u + (uint32_t)i);
		struct seg s[] = { { header(r, VIRTIO_BLK_T_OUT, (uint64_t)i * 24), 16, false },
				   { data[i], 4096, false },
				   { st[i], 1, true } };
		head[i] = post(r, s, 3);
	}
	kick(r);
	assert_true(wait_used(r, N));
	for (int i = 0; i < N; i++) {
		assert_int_equal(*host(r, st[i]), VIRTIO_BLK_S_OK);
		assert_int_equal(used_len(r, head[i]), 1);
		uint8_t got[4096];
		file_read(r, (uint64_t)i * 24 * 512, got, sizeof(got));
		assert_memory_equal(got, host(r, data[i]), 4096);
	}
	assert_int_equal(stat_of(&r->stats.requests), N);
	assert_int_equal(stat_of(&r->stats.bytes), N * 4096);

	/* Reset the descriptor table (all chains are back) and read them
	 * back, again all at once. */
	r->next_desc = 0;
	uint64_t rd[N];
	for (int i = 0; i < N; i++) {
		rd[i] = gbuf(r, 4096);
		*host(r, st[i]) = 0xaa;
		struct seg s[] = { { header(r, VIRTIO_BLK_T_IN, (uint64_t)i * 24), 16, false },
				   { rd[i], 4096, true },
				   { st[i], 1, true } };
		head[i] = post(r, s, 3);
	}
	kick(r);
	assert_true(wait_used(r, 2 * N));
	for (int i = 0; i < N; i++) {
		assert_int_equal(*host(r, st[i]), VIRTIO_BLK_S_OK);
		assert_memory_equal(host(r, rd[i]), host(r, data[i]), 4096);
	}
	/* Every used entry of the second round is one of its heads, once. */
	int seen[QSIZE] = { 0 };
	for (int i = N; i < 2 * N; i++) {
		assert_int_equal(used(r)->ring[i].len, 4097);
		seen[used(r)->ring[i].id]++;
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(seen[head[i]], 1);
	rig_free(r);
}

/* reset returns only after every request in flight completed. */
static void test_reset_waits(void **state)
{
	(void)state;
	struct rig *r = rig_new(false, NULL);
	enum { N = 64 };
	for (int i = 0; i < N; i++) {
		uint64_t d = gbuf(r, 8192), st = gbuf(r, 1);
		struct seg s[] = { { header(r, VIRTIO_BLK_T_IN, (uint64_t)i * 16), 16, false },
				   { d, 8192, true },
				   { st, 1, true } };
		post(r, s, 3);
	}
	kick(r);
	r->d->ops->reset(r->d);
	assert_int_equal(__atomic_load_n(&used(r)->idx, __ATOMIC_ACQUIRE), N);
	rig_free(r);
}

/* ---- parse and open ---- */

static void test_parse_good(void **state)
{
	(void)state;
	struct virtio_blk_config c;
	char err[128] = "";

	assert_int_equal(virtio_blk_parse("path=/tmp/a.img", &c, err, sizeof(err)), 0);
	assert_string_equal(c.path, "/tmp/a.img");
	assert_false(c.read_only);
	assert_null(c.id);

	assert_int_equal(virtio_blk_parse("path=build/x.ext4,ro,id=root-disk", &c, err,
					  sizeof(err)),
			 0);
	assert_string_equal(c.path, "build/x.ext4");
	assert_true(c.read_only);
	assert_string_equal(c.id, "root-disk");

	assert_int_equal(virtio_blk_parse("ro,id=12345678901234567890,path=p=q", &c, err,
					  sizeof(err)),
			 0);
	assert_string_equal(c.path, "p=q");
	assert_string_equal(c.id, "12345678901234567890");
	assert_true(c.read_only);
	assert_int_equal(c.engine, BLK_ENGINE_DEFAULT);
	assert_int_equal(c.cache, BLK_CACHE_DEFAULT);
	assert_false(c.buffered);

	assert_int_equal(virtio_blk_parse("path=d,io=uring,cache=unsafe,direct=off", &c, err, sizeof(err)), 0);
	assert_int_equal(c.engine, BLK_ENGINE_URING);
	assert_int_equal(c.cache, BLK_CACHE_UNSAFE);
	assert_true(c.buffered);
	assert_int_equal(virtio_blk_parse("io=threads,cache=writeback,direct=on,path=d", &c, err, sizeof(err)), 0);
	assert_int_equal(c.engine, BLK_ENGINE_THREADS);
	assert_int_equal(c.cache, BLK_CACHE_WRITEBACK);
	assert_false(c.buffered);
}

static void expect_parse_error(const char *spec, const char *needle)
{
	struct virtio_blk_config c;
	char err[128] = "";

	assert_int_equal(virtio_blk_parse(spec, &c, err, sizeof(err)), -1);
	if (!strstr(err, needle))
		fail_msg("'%s': error '%s' lacks '%s'", spec, err, needle);
	assert_null(strchr(err, '\n'));
}

static void test_parse_bad(void **state)
{
	(void)state;
	expect_parse_error("", "empty");
	expect_parse_error("ro", "missing path");
	expect_parse_error("path=", "empty path");
	expect_parse_error("path=a,size=1G", "unknown option 'size'");
	expect_parse_error("path=a,io=aio", "io 'aio'");
	expect_parse_error("path=a,io=uring,io=threads", "io given twice");
	expect_parse_error("path=a,io", "'io' needs a value");
	expect_parse_error("path=a,cache=none", "cache 'none'");
	expect_parse_error("path=a,cache=unsafe,cache=unsafe", "cache given twice");
	expect_parse_error("path=a,direct=yes", "direct 'yes'");
	expect_parse_error("path=a,direct=on,direct=on", "direct given twice");
	expect_parse_error("file=a", "unknown option 'file'");
	expect_parse_error("path=a,id=123456789012345678901", "longer than 20");
	expect_parse_error("path=a,path=b", "twice");
	expect_parse_error("path=a,ro,ro", "twice");
	expect_parse_error("path=a,ro=yes", "no value");
	expect_parse_error("path", "needs a value");
	expect_parse_error("path=a,,ro", "empty option");
	char *big = malloc(VIRTIO_BLK_SPEC_MAX + 10);
	memset(big, 'a', VIRTIO_BLK_SPEC_MAX + 9);
	big[VIRTIO_BLK_SPEC_MAX + 9] = '\0';
	memcpy(big, "path=", 5);
	expect_parse_error(big, "longer");
	free(big);
}

static void expect_new_error(const char *path, bool ro, const char *needle)
{
	struct fake_guest g;
	struct dev_stats stats = { .name = "x" };

	struct virtio_blk_config c = { .path = path, .read_only = ro };
	struct dev_gate gate = { .stats = &stats, .policy = NULL };
	char err[256] = "";

	assert_int_equal(fake_guest_init(&g, 1 * MiB), 0);
	struct virtio_dev *d = host_blk_new(&c, &g.m, gate, err, sizeof(err));
	if (d) {
		virtio_blk_free(d);
		fail_msg("%s: opened", path);
	}
	if (!strstr(err, needle))
		fail_msg("%s: error '%s' lacks '%s'", path, err, needle);
	assert_null(strchr(err, '\n'));
	fake_guest_fini(&g);
}

static void test_new_errors(void **state)
{
	(void)state;
	expect_new_error("/nonexistent/vigil-disk.img", false, "No such file");
	expect_new_error("/tmp", false, "directory");
	expect_new_error("/tmp", true, "directory");
	expect_new_error("/dev/null", false, "not a regular file");

	char path[] = "/tmp/vblk-odd-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	expect_new_error(path, false, "empty");
	assert_int_equal(ftruncate(fd, 1000), 0);
	expect_new_error(path, false, "not a multiple of 512");
	assert_int_equal(ftruncate(fd, 1536), 0);

	/* 1536 is fine; a second writer of the same image is refused, a second
	 * reader of a read-only one is not. */
	struct fake_guest g;
	assert_int_equal(fake_guest_init(&g, 1 * MiB), 0);
	struct virtio_blk_config c = { .path = path };
	char err[256] = "";
	struct dev_gate gate = { 0 };
	struct virtio_dev *d = host_blk_new(&c, &g.m, gate, err, sizeof(err));
	assert_non_null(d);
	assert_int_equal(virtio_blk_capacity(d), 3);
	expect_new_error(path, false, "in use");
	expect_new_error(path, true, "in use");
	virtio_blk_free(d);

	c.read_only = true;
	struct virtio_dev *r1 = host_blk_new(&c, &g.m, gate, err, sizeof(err));
	struct virtio_dev *r2 = host_blk_new(&c, &g.m, gate, err, sizeof(err));
	assert_non_null(r1);
	assert_non_null(r2);
	virtio_blk_free(r1);
	virtio_blk_free(r2);
	virtio_blk_free(NULL);
	fake_guest_fini(&g);
	close(fd);
	unlink(path);
}


/* ---- lifecycle: quiesce / resume ---- */

/* A backend whose I/O takes 100 ms, on a thread of its own, into memory:
 * long enough for quiesce() to find a request in flight. */
struct slow_be {
	struct blk_backend be; /* first */
	uint8_t img[IMG_BYTES];
	pthread_mutex_t lock;
	pthread_cond_t idle;
	unsigned inflight, submitted;
};

struct slow_io {
	struct slow_be *s;
	struct blk_io *io;
};

static void *slow_run(void *arg)
{
	struct slow_io *w = arg;
	struct timespec ts = { 0, 100 * 1000000L };
	nanosleep(&ts, NULL);
	uint64_t off = w->io->off;
	for (unsigned i = 0; i < w->io->n; i++) {
		struct iovec *v = &w->io->iov[i];
		if (w->io->op == BLK_WRITE)
			memcpy(w->s->img + off, v->iov_base, v->iov_len);
		else if (w->io->op == BLK_READ)
			memcpy(v->iov_base, w->s->img + off, v->iov_len);
		off += v->iov_len;
	}
	w->io->done(w->io, 0);
	pthread_mutex_lock(&w->s->lock);
	if (--w->s->inflight == 0)
		pthread_cond_broadcast(&w->s->idle);
	pthread_mutex_unlock(&w->s->lock);
	free(w);
	return NULL;
}

static void slow_submit(struct blk_backend *be, struct blk_io *io)
{
	struct slow_be *s = (struct slow_be *)be;
	struct slow_io *w = malloc(sizeof(*w));
	pthread_t t;
	assert_non_null(w);
	*w = (struct slow_io){ s, io };
	pthread_mutex_lock(&s->lock);
	s->inflight++;
	s->submitted++;
	pthread_mutex_unlock(&s->lock);
	assert_int_equal(pthread_create(&t, NULL, slow_run, w), 0);
	pthread_detach(t);
}

static void slow_drain(struct blk_backend *be)
{
	struct slow_be *s = (struct slow_be *)be;
	pthread_mutex_lock(&s->lock);
	while (s->inflight)
		pthread_cond_wait(&s->idle, &s->lock);
	pthread_mutex_unlock(&s->lock);
}

static void slow_free(struct blk_backend *be)
{
	slow_drain(be);
	/* the test frees it: it still reads img */
}

static const struct blk_backend_ops slow_ops = { .submit = slow_submit, .drain = slow_drain, .free = slow_free };

static void test_quiesce_waits_for_write_in_flight(void **state)
{
	(void)state;
	struct rig *r = calloc(1, sizeof(*r));
	struct slow_be *s = calloc(1, sizeof(*s));
	char err[128] = "";
	assert_non_null(r);
	assert_non_null(s);
	assert_int_equal(fake_guest_init(&r->g, RAM_SIZE), 0);
	r->stats.name = "blk-test";
	r->next_buf = BUF_GPA;
	s->be = (struct blk_backend){ .ops = &slow_ops, .size = IMG_BYTES };
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->idle, NULL);
	struct dev_gate gate = { .stats = &r->stats, .policy = NULL };
	r->d = virtio_blk_new_backend(&s->be, NULL, &r->g.m, gate, err, sizeof(err));
	assert_non_null(r->d);
	assert_non_null(r->d->ops->quiesce);
	assert_non_null(r->d->ops->resume);
	enable_queue(r);

	/* A write goes in flight... */
	uint64_t data = gbuf(r, 512), status = gbuf(r, 1);
	fill_pattern(host(r, data), 512, 3);
	host(r, status)[0] = 0xee;
	struct seg w1[] = { { header(r, VIRTIO_BLK_T_OUT, 4), 16, false }, { data, 512, false },
			    { status, 1, true } };
	uint16_t h1 = post(r, w1, 3);
	kick(r);
	assert_int_equal(s->submitted, 1);
	assert_int_equal(__atomic_load_n(&used(r)->idx, __ATOMIC_ACQUIRE), 0); /* still in flight */

	/* ...and has landed, and been completed, when quiesce returns. */
	r->d->ops->quiesce(r->d);
	assert_int_equal(__atomic_load_n(&used(r)->idx, __ATOMIC_ACQUIRE), 1);
	assert_int_equal(used_len(r, h1), 1);
	assert_int_equal(host(r, status)[0], VIRTIO_BLK_S_OK);
	assert_memory_equal(s->img + 4 * 512, host(r, data), 512);

	/* Quiesced: a new request is not taken... */
	uint64_t data2 = gbuf(r, 512), status2 = gbuf(r, 1);
	fill_pattern(host(r, data2), 512, 5);
	struct seg w2[] = { { header(r, VIRTIO_BLK_T_OUT, 8), 16, false }, { data2, 512, false },
			    { status2, 1, true } };
	uint16_t h2 = post(r, w2, 3);
	kick(r);
	assert_int_equal(s->submitted, 1);
	struct timespec ts = { 0, 150 * 1000000L };
	nanosleep(&ts, NULL);
	assert_int_equal(__atomic_load_n(&used(r)->idx, __ATOMIC_ACQUIRE), 1);

	/* ...until resume, which looks at the queue without a new kick. */
	r->d->ops->resume(r->d);
	assert_int_equal(s->submitted, 2);
	assert_true(wait_used(r, 2));
	assert_int_equal(used_len(r, h2), 1);
	assert_memory_equal(s->img + 8 * 512, host(r, data2), 512);

	virtio_blk_free(r->d);
	pthread_cond_destroy(&s->idle);
	pthread_mutex_destroy(&s->lock);
	free(s);
	fake_guest_fini(&r->g);
	free(r);
}

/* PATCH /drives: the same drive on a bigger image; its data is what reads
 * return, the driver hears of the change, the old image can be reopened
 * (its lock went with it), and a read-only image is refused under a
 * read-write drive with the drive still working. */
static void test_swap_image(void **state)
{
	(void)state;
	struct rig *r = rig_new(false, NULL);
	char err[256];
	char other[32] = "/tmp/vblk2-XXXXXX";
	int fd = mkstemp(other);
	assert_true(fd >= 0);
	uint8_t *big = calloc(1, 2 * IMG_BYTES);
	assert_non_null(big);
	fill_pattern(big, 2 * IMG_BYTES, 9);
	assert_int_equal(write(fd, big, 2 * IMG_BYTES), (ssize_t)(2 * IMG_BYTES));
	close(fd);

	virtio_blk_detach(r->d);
	struct blk_backend *be = blk_file_open(other, false, err, sizeof(err));
	assert_non_null(be);
	assert_int_equal(virtio_blk_attach(r->d, be, err, sizeof(err)), 0);
	assert_int_equal(virtio_blk_capacity(r->d), 2 * IMG_SECTORS);
	assert_int_equal(atomic_load(&r->config_raises), 1);
	uint8_t c[8];
	r->d->ops->config_read(r->d, 0, c, 8);
	assert_int_equal(get64(c), 2 * IMG_SECTORS);
	/* A sector only the new image has. */
	uint64_t data = gbuf(r, 512), st = gbuf(r, 1);
	struct seg rd[] = { { header(r, VIRTIO_BLK_T_IN, IMG_SECTORS + 3), 16, false },
			    { data, 512, true },
			    { st, 1, true } };
	run1(r, rd, 3);
	assert_int_equal(*host(r, st), VIRTIO_BLK_S_OK);
	assert_memory_equal(host(r, data), big + (IMG_SECTORS + 3) * 512, 512);

	/* Back to the first image: its lock was released with its backend. */
	virtio_blk_detach(r->d);
	be = blk_file_open(r->path, false, err, sizeof(err));
	assert_non_null(be);
	assert_int_equal(virtio_blk_attach(r->d, be, err, sizeof(err)), 0);
	assert_int_equal(virtio_blk_capacity(r->d), IMG_SECTORS);

	/* A read-only image cannot take a read-write drive's place. */
	be = blk_file_open(other, true, err, sizeof(err));
	assert_non_null(be);
	assert_int_equal(virtio_blk_attach(r->d, be, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "read-only"));
	assert_int_equal(virtio_blk_capacity(r->d), IMG_SECTORS);

	free(big);
	unlink(other);
	rig_free(r);
}

/* ---- the policy ---- */

/* One disk rule on drive "disk0"; sectors [first, last] unless first > last. */
static struct policy_slot *one_rule(enum policy_verdict v, enum policy_access acc, uint64_t first, uint64_t last,
				    const char *overlay, enum policy_mode mode)
{
	struct policy_range range = { first, last };
	struct policy_rule rule = { .resource = POL_RES_DISK, .verdict = v, .audit = true, .access = acc,
				    .nranges = first <= last ? 1 : 0, .ranges = &range,
				    .overlay = (char *)overlay };
	struct policy_spec spec = { .mode = mode, .nrules = 1, .rules = &rule };
	char err[160];

	snprintf(rule.id, sizeof(rule.id), "disk-rule");
	snprintf(rule.drive, sizeof(rule.drive), "disk0");
	struct policy *p = policy_compile(&spec, err, sizeof(err));
	if (!p)
		fail_msg("policy_compile: %s", err);
	struct policy_slot *slot = calloc(1, sizeof(*slot));
	assert_non_null(slot);
	policy_slot_init(slot, p);
	return slot;
}

static struct rig *rig_policy(struct policy_slot *slot, const char *overlay, bool overlay_only)
{
	struct rig *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	assert_int_equal(fake_guest_init(&r->g, RAM_SIZE), 0);
	r->stats.name = "blk-test";
	r->next_buf = BUF_GPA;
	r->slot = slot;
	r->overlay = overlay;
	r->overlay_only = overlay_only;
	make_image(r, IMG_BYTES);
	start_device(r, false, NULL);
	return r;
}

/* One read or write of n sectors at `sector` from/into guest buffer buf;
 * returns the status byte. */
static uint8_t rw(struct rig *r, bool write, uint64_t sector, uint64_t buf, uint32_t n)
{
	uint64_t st = gbuf(r, 1);
	*host(r, st) = 0xaa;
	struct seg s[] = { { header(r, write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, sector), 16, false },
			   { buf, n * 512, !write },
			   { st, 1, true } };
	if (r->next_desc + 3 > QSIZE)
		fail_msg("test posts too many chains");
	run1(r, s, 3);
	return *host(r, st);
}

/* A rig whose policy slot holds a policy without rules (one swapped in
 * later, as PUT /policy does). */
static struct rig *rig_no_policy(void)
{
	struct policy_spec none = { .mode = POLICY_ENFORCE };
	char err[160];
	struct policy_slot *slot = calloc(1, sizeof(*slot));
	assert_non_null(slot);
	policy_slot_init(slot, policy_compile(&none, err, sizeof(err)));
	return rig_policy(slot, NULL, false);
}

/* Puts the policy of `from` (one_rule's) in force in slot; frees from. */
static void swap_in(struct policy_slot *slot, struct policy_slot *from)
{
	policy_free(policy_swap(slot, atomic_exchange(&from->cur, NULL)));
	free(from);
}

/* Deny on a sector range: a request overlapping it fails and the image
 * does not change; the others are served. */
static void test_policy_deny_sectors(void **state)
{
	(void)state;
	struct rig *r = rig_policy(one_rule(POLICY_DENY, POL_ACC_ANY, 100, 199, NULL, POLICY_ENFORCE), NULL, false);
	uint64_t before = file_sum(r);
	uint64_t b = gbuf(r, 4096);

	fill_pattern(host(r, b), 4096, 5);
	assert_int_equal(rw(r, true, 96, b, 8), VIRTIO_BLK_S_IOERR); /* 96..103 overlaps 100 */
	assert_int_equal(rw(r, true, 199, b, 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(r, false, 150, b, 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(file_sum(r), before);
	assert_int_equal(stat_of(&r->stats.denied), 3);

	/* A flush names no sectors: the range rule does not match it. */
	uint64_t fst = gbuf(r, 1);
	*host(r, fst) = 0xaa;
	struct seg fl[] = { { header(r, VIRTIO_BLK_T_FLUSH, 150), 16, false }, { fst, 1, true } };
	run1(r, fl, 2);
	assert_int_equal(*host(r, fst), VIRTIO_BLK_S_OK);
	assert_int_equal(rw(r, false, 92, b, 8), VIRTIO_BLK_S_OK); /* 92..99 */
	assert_int_equal(rw(r, true, 200, b, 8), VIRTIO_BLK_S_OK);
	assert_true(file_sum(r) != before);
	assert_int_equal(stat_of(&r->stats.denied), 3);
	assert_int_equal(policy_rule_hits(r->slot->cur, 0), 3);
	rig_free(r);
}

/* Permissive: the same rule decides (counted on it), the write is served. */
/* A rule without sectors matches flushes: denied, the guest sees IOERR. */
static void test_policy_deny_flush(void **state)
{
	(void)state;
	struct rig *r = rig_policy(one_rule(POLICY_DENY, POL_ACC_FLUSH, 1, 0, NULL, POLICY_ENFORCE), NULL, false);
	uint64_t fst = gbuf(r, 1), b = gbuf(r, 512);
	*host(r, fst) = 0xaa;
	struct seg fl[] = { { header(r, VIRTIO_BLK_T_FLUSH, 0), 16, false }, { fst, 1, true } };
	run1(r, fl, 2);
	assert_int_equal(*host(r, fst), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(r, true, 5, b, 1), VIRTIO_BLK_S_OK); /* writes are not flushes */
	assert_int_equal(stat_of(&r->stats.denied), 1);
	rig_free(r);
}

static void test_policy_permissive(void **state)
{
	(void)state;
	struct rig *r = rig_policy(one_rule(POLICY_DENY, POL_ACC_WRITE, 100, 199, NULL, POLICY_PERMISSIVE), NULL,
				   false);
	uint64_t before = file_sum(r);
	uint64_t b = gbuf(r, 512);

	fill_pattern(host(r, b), 512, 5);
	assert_int_equal(rw(r, true, 150, b, 1), VIRTIO_BLK_S_OK);
	assert_true(file_sum(r) != before);
	assert_int_equal(stat_of(&r->stats.denied), 0);
	assert_int_equal(policy_rule_hits(r->slot->cur, 0), 1);
	rig_free(r);
}

static void tmp_overlay(char *path, size_t len)
{
	snprintf(path, len, "/tmp/vblk-ovl-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	unlink(path); /* the device creates it */
}

/* The blocks of an overlay file that are data: [first, end) of each extent. */
static unsigned extents(const char *path, off_t *out, unsigned max)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	unsigned n = 0;
	off_t off = 0, d;
	while (n + 2 <= max && (d = lseek(fd, off, SEEK_DATA)) >= 0) {
		off_t h = lseek(fd, d, SEEK_HOLE);
		out[n++] = d;
		out[n++] = h;
		off = h;
	}
	close(fd);
	return n;
}

/* Copy-on-write: partial-block writes land in the overlay as whole blocks,
 * read back merged with the base, the base never changes, and the overlay
 * is found again by a new device (another run). */
static void test_policy_overlay(void **state)
{
	(void)state;
	char ovl[64];
	tmp_overlay(ovl, sizeof(ovl));
	struct rig *r = rig_policy(one_rule(POLICY_REDIRECT, POL_ACC_WRITE, 1, 0, ovl, POLICY_ENFORCE), NULL, false);
	uint64_t before = file_sum(r);
	uint8_t *want = malloc(IMG_BYTES);
	fill_pattern(want, IMG_BYTES, 7);

	/* Sector 9 (inside block 1), then sectors 7..16 (end of block 0,
	 * all of block 1, start of block 2). */
	uint64_t w1 = gbuf(r, 512), w2 = gbuf(r, 10 * 512);
	fill_pattern(host(r, w1), 512, 41);
	fill_pattern(host(r, w2), 10 * 512, 42);
	assert_int_equal(rw(r, true, 9, w1, 1), VIRTIO_BLK_S_OK);
	memcpy(want + 9 * 512, host(r, w1), 512);
	uint64_t rb = gbuf(r, 32 * 512);
	assert_int_equal(rw(r, false, 0, rb, 32), VIRTIO_BLK_S_OK);
	assert_memory_equal(host(r, rb), want, 32 * 512);
	assert_int_equal(file_sum(r), before);

	assert_int_equal(rw(r, true, 7, w2, 10), VIRTIO_BLK_S_OK);
	memcpy(want + 7 * 512, host(r, w2), 10 * 512);
	memset(host(r, rb), 0, 32 * 512);
	assert_int_equal(rw(r, false, 0, rb, 32), VIRTIO_BLK_S_OK);
	assert_memory_equal(host(r, rb), want, 32 * 512);
	/* A read of one sector that straddles nothing: from the overlay. */
	uint64_t one = gbuf(r, 512);
	assert_int_equal(rw(r, false, 16, one, 1), VIRTIO_BLK_S_OK);
	assert_memory_equal(host(r, one), want + 16 * 512, 512);
	assert_int_equal(file_sum(r), before);
	assert_int_equal(stat_of(&r->stats.denied), 0);

	/* The overlay: the image's size, blocks 0..2 as one data extent. */
	struct stat st;
	assert_int_equal(stat(ovl, &st), 0);
	assert_int_equal(st.st_size, IMG_BYTES);
	off_t ext[8];
	assert_int_equal(extents(ovl, ext, 8), 2);
	assert_int_equal(ext[0], 0);
	assert_int_equal(ext[1], 3 * 4096);

	/* Another run: the overlay is given at build, and read from the first
	 * request on, with the base opened read-only. */
	virtio_blk_free(r->d);
	r->overlay = ovl;
	r->overlay_only = true;
	r->next_desc = 0;
	r->avail_idx = 0;
	memset(used(r), 0, 4 + 8 * QSIZE);
	start_device(r, false, NULL);
	assert_false(r->d->host_features & VIRTIO_BIT(VIRTIO_BLK_F_RO));
	memset(host(r, rb), 0, 32 * 512);
	assert_int_equal(rw(r, false, 0, rb, 32), VIRTIO_BLK_S_OK);
	assert_memory_equal(host(r, rb), want, 32 * 512);
	assert_int_equal(file_sum(r), before);

	free(want);
	unlink(ovl);
	rig_free(r);
}

/* An overlay that cannot be opened: the redirected write fails, the base is
 * untouched. */
static void test_policy_overlay_unusable(void **state)
{
	(void)state;
	struct rig *r = rig_policy(one_rule(POLICY_REDIRECT, POL_ACC_WRITE, 1, 0, "/nonexistent-dir/ovl",
					    POLICY_ENFORCE), NULL, false);
	uint64_t before = file_sum(r);
	uint64_t b = gbuf(r, 512);
	assert_int_equal(rw(r, true, 3, b, 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(file_sum(r), before);
	rig_free(r);
}

/* 64 one-sector writes in flight at once into 8 blocks not yet in the
 * overlay (the workers race to copy the same blocks in): every sector reads
 * back as written, the base never changes. */
static void overlay_concurrent_round(void)
{
	enum { N = 64 };
	char ovl[64];
	tmp_overlay(ovl, sizeof(ovl));
	struct rig *r = rig_policy(one_rule(POLICY_REDIRECT, POL_ACC_ANY, 1, 0, ovl, POLICY_ENFORCE), NULL, false);
	uint64_t before = file_sum(r);
	uint64_t data[N], st[N];

	for (int i = 0; i < N; i++) {
		data[i] = gbuf(r, 512);
		st[i] = gbuf(r, 1);
		*host(r, st[i]) = 0xaa;
		fill_pattern(host(r, data[i]), 512, 2000u + (uint32_t)i);
		/* Sectors 1, 2, ...: odd order within each block across chains. */
		uint64_t sector = 8 + (uint64_t)((i * 37) % N);
		struct seg s[] = { { header(r, VIRTIO_BLK_T_OUT, sector), 16, false },
				   { data[i], 512, false },
				   { st[i], 1, true } };
		post(r, s, 3);
	}
	kick(r);
	assert_true(wait_used(r, N));
	for (int i = 0; i < N; i++)
		assert_int_equal(*host(r, st[i]), VIRTIO_BLK_S_OK);

	uint64_t rb = gbuf(r, (N + 16) * 512);
	r->next_desc = 0;
	assert_int_equal(rw(r, false, 0, rb, N + 16), VIRTIO_BLK_S_OK);
	uint8_t *want = malloc(IMG_BYTES);
	fill_pattern(want, IMG_BYTES, 7);
	for (int i = 0; i < N; i++)
		memcpy(want + (8 + (uint64_t)((i * 37) % N)) * 512, host(r, data[i]), 512);
	assert_memory_equal(host(r, rb), want, (N + 16) * 512);
	assert_int_equal(file_sum(r), before);
	free(want);
	unlink(ovl);
	rig_free(r);
}

/* A redirect added live (PUT /policy): the overlay opens on the first
 * redirected write; once the redirect is gone again, blocks the overlay
 * holds stay there (a write to them goes to the overlay), others go to the
 * base. */
static void test_policy_overlay_live(void **state)
{
	(void)state;
	char ovl[64], err[160];
	tmp_overlay(ovl, sizeof(ovl));
	struct rig *r = rig_no_policy();
	struct policy_slot *slot = r->slot;
	uint8_t *want = malloc(IMG_BYTES), got[512];
	fill_pattern(want, IMG_BYTES, 7);
	uint64_t b1 = gbuf(r, 512), b2 = gbuf(r, 512), b3 = gbuf(r, 512), rb = gbuf(r, 64 * 512);
	fill_pattern(host(r, b1), 512, 61);
	fill_pattern(host(r, b2), 512, 62);
	fill_pattern(host(r, b3), 512, 63);

	assert_int_equal(rw(r, true, 9, b1, 1), VIRTIO_BLK_S_OK); /* to the base */
	file_read(r, 9 * 512, got, 512);
	assert_memory_equal(got, host(r, b1), 512);
	memcpy(want + 9 * 512, host(r, b1), 512);
	struct stat st;
	assert_int_equal(stat(ovl, &st), -1);

	struct policy_slot *cow = one_rule(POLICY_REDIRECT, POL_ACC_WRITE, 1, 0, ovl, POLICY_ENFORCE);
	swap_in(slot, cow);
	assert_int_equal(rw(r, true, 20, b2, 1), VIRTIO_BLK_S_OK); /* to the overlay */
	assert_int_equal(stat(ovl, &st), 0);
	file_read(r, 20 * 512, got, 512);
	assert_memory_equal(got, want + 20 * 512, 512); /* base untouched */
	memcpy(want + 20 * 512, host(r, b2), 512);

	struct policy_spec none = { .mode = POLICY_ENFORCE };
	policy_free(policy_swap(slot, policy_compile(&none, err, sizeof(err))));
	assert_int_equal(rw(r, true, 21, b3, 1), VIRTIO_BLK_S_OK); /* block 2 is the overlay's */
	file_read(r, 21 * 512, got, 512);
	assert_memory_equal(got, want + 21 * 512, 512);
	memcpy(want + 21 * 512, host(r, b3), 512);
	assert_int_equal(rw(r, false, 0, rb, 64), VIRTIO_BLK_S_OK);
	assert_memory_equal(host(r, rb), want, 64 * 512);
	free(want);
	unlink(ovl);
	rig_free(r);
}

/* The swap of a policy with a redirect opens its overlay first (on the
 * control thread: virtio_blk_open_overlay): one of the wrong size is
 * refused and leaves the drive unnamed, so the right one is taken next;
 * the redirected write then finds it open. */
static void test_policy_overlay_opened_at_swap(void **state)
{
	(void)state;
	char ovl[64], bad[64], err[256];
	tmp_overlay(ovl, sizeof(ovl));
	tmp_overlay(bad, sizeof(bad));
	int fd = open(bad, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0 && ftruncate(fd, 4096) == 0);
	close(fd);
	struct rig *r = rig_no_policy();
	struct policy_slot *slot = r->slot;

	assert_int_equal(virtio_blk_open_overlay(r->d, bad, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "4096 bytes, but the image has"));
	struct stat st;
	assert_int_equal(stat(ovl, &st), -1);
	assert_int_equal(virtio_blk_open_overlay(r->d, ovl, err, sizeof(err)), 0);
	assert_int_equal(stat(ovl, &st), 0); /* made now, before any write */
	assert_int_equal(st.st_size, IMG_BYTES);

	struct policy_slot *cow = one_rule(POLICY_REDIRECT, POL_ACC_WRITE, 1, 0, ovl, POLICY_ENFORCE);
	swap_in(slot, cow);
	uint64_t before = file_sum(r), b = gbuf(r, 512), rb = gbuf(r, 512);
	fill_pattern(host(r, b), 512, 71);
	assert_int_equal(rw(r, true, 5, b, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(file_sum(r), before); /* the base untouched */
	assert_int_equal(rw(r, false, 5, rb, 1), VIRTIO_BLK_S_OK);
	assert_memory_equal(host(r, rb), host(r, b), 512);
	unlink(ovl);
	unlink(bad);
	rig_free(r);
}

static void test_policy_overlay_concurrent(void **state)
{
	(void)state;
	/* A race shows in few rounds: many rounds. */
	for (int i = 0; i < 40; i++)
		overlay_concurrent_round();
}

/* A write held in flight: the guest page it writes from is missing under
 * a userfaultfd, so the backend's pwritev (or the ring's) waits in the
 * kernel until the test supplies the page. Returns the uffd, or -1 where
 * userfaultfd is not allowed. */
static int hold_page(void *page)
{
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		return -1;
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .range = { (uintptr_t)page, 4096 }, .mode = UFFDIO_REGISTER_MODE_MISSING };
	if (ioctl(uffd, UFFDIO_API, &api) < 0 || madvise(page, 4096, MADV_DONTNEED) < 0 ||
	    ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
		close(uffd);
		return -1;
	}
	return uffd;
}

/* Waits (5 s) for the held page to be touched. */
static bool page_touched(int uffd)
{
	struct pollfd p = { .fd = uffd, .events = POLLIN };
	struct uffd_msg msg;
	return poll(&p, 1, 5000) == 1 && read(uffd, &msg, sizeof(msg)) == (ssize_t)sizeof(msg) &&
	       msg.event == UFFD_EVENT_PAGEFAULT;
}

/* Supplies the held page with `src` (4 KiB): the write goes on. */
static void release_page(int uffd, void *page, const void *src)
{
	struct uffdio_copy cp = { .dst = (uintptr_t)page, .src = (uintptr_t)src, .len = 4096 };
	assert_int_equal(ioctl(uffd, UFFDIO_COPY, &cp), 0);
	struct uffdio_range range = { (uintptr_t)page, 4096 };
	ioctl(uffd, UFFDIO_UNREGISTER, &range);
	close(uffd);
}

/* A redirect arrives (PUT /policy) while a write to sector 0 is in flight to
 * the base: the first redirected write, to sector 1 of the same 4 KiB
 * block, must not copy the block into the overlay before sector 0 has
 * landed, or sector 0's write is lost under the overlay's copy. */
static void test_policy_overlay_after_write_in_flight(void **state)
{
	(void)state;
	char ovl[64];
	tmp_overlay(ovl, sizeof(ovl));
	struct rig *r = rig_no_policy();
	struct policy_slot *slot = r->slot;
	uint64_t page = RAM_SIZE - 2 * 4096; /* page-aligned, above every gbuf */
	uint8_t data0[4096], *want = malloc(IMG_BYTES);
	fill_pattern(data0, sizeof(data0), 81);
	fill_pattern(want, IMG_BYTES, 7);
	int uffd = hold_page(host(r, page));
	if (uffd < 0) {
		free(want);
		rig_free(r);
		skip();
	}

	uint64_t st0 = gbuf(r, 1);
	*host(r, st0) = 0xaa;
	struct seg w0[] = { { header(r, VIRTIO_BLK_T_OUT, 0), 16, false }, { page, 512, false }, { st0, 1, true } };
	post(r, w0, 3);
	kick(r);
	assert_true(page_touched(uffd)); /* sector 0's write is in flight */

	struct policy_slot *cow = one_rule(POLICY_REDIRECT, POL_ACC_WRITE, 1, 0, ovl, POLICY_ENFORCE);
	swap_in(slot, cow);
	uint64_t b1 = gbuf(r, 512), st1 = gbuf(r, 1);
	fill_pattern(host(r, b1), 512, 82);
	*host(r, st1) = 0xaa;
	struct seg w1[] = { { header(r, VIRTIO_BLK_T_OUT, 1), 16, false }, { b1, 512, false }, { st1, 1, true } };
	post(r, w1, 3);
	kick(r);
	/* Time for the redirected write to run ahead, if it may. */
	struct timespec ts = { 0, 100 * 1000000 };
	nanosleep(&ts, NULL);
	release_page(uffd, host(r, page), data0);
	assert_true(wait_used(r, 2));
	assert_int_equal(*host(r, st0), VIRTIO_BLK_S_OK);
	assert_int_equal(*host(r, st1), VIRTIO_BLK_S_OK);

	memcpy(want, data0, 512);
	memcpy(want + 512, host(r, b1), 512);
	uint64_t rb = gbuf(r, 16 * 512);
	assert_int_equal(rw(r, false, 0, rb, 16), VIRTIO_BLK_S_OK);
	assert_memory_equal(host(r, rb), want, 16 * 512);
	free(want);
	unlink(ovl);
	rig_free(r);
}

/* ---- faults lose nothing (issue 11) ---- */

/* A sparse 1 MiB image on a 128 KiB tmpfs: sixteen 64 KiB writes to fresh
 * sectors. The host runs out of space part-way: those requests, and only
 * those, get VIRTIO_BLK_S_IOERR and are counted as errors; the writes that
 * completed read back intact, and the device goes on serving (a rewrite of
 * allocated sectors and a read succeed). Skipped where tmpfs cannot be
 * mounted (not root). */
#define FULL_WRITES 16
#define FULL_LEN 65536u
static void test_enospc(void **state)
{
	(void)state;
	char dir[] = "/tmp/vblk-full-XXXXXX";
	assert_non_null(mkdtemp(dir));
	if (mount("tmpfs", dir, "tmpfs", 0, "size=128k") != 0) {
		rmdir(dir);
		skip();
	}
	struct rig *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	assert_int_equal(fake_guest_init(&r->g, RAM_SIZE), 0);
	r->stats.name = "blk-full";
	r->next_buf = BUF_GPA;
	snprintf(r->path, sizeof(r->path), "%s/disk.img", dir);
	int fd = open(r->path, O_CREAT | O_RDWR, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, IMG_BYTES), 0);
	close(fd);
	start_device(r, false, NULL);

	uint64_t data[FULL_WRITES];
	uint8_t status[FULL_WRITES];
	unsigned ok = 0, ioerr = 0;
	for (unsigned i = 0; i < FULL_WRITES; i++) {
		data[i] = gbuf(r, FULL_LEN);
		fill_pattern(host(r, data[i]), FULL_LEN, 200 + i);
		uint64_t st = gbuf(r, 1);
		*host(r, st) = 0xaa;
		struct seg s[] = { { header(r, VIRTIO_BLK_T_OUT, i * (FULL_LEN / 512)), 16, false },
				   { data[i], FULL_LEN, false },
				   { st, 1, true } };
		run1(r, s, 3);
		status[i] = *host(r, st);
		if (status[i] == VIRTIO_BLK_S_OK)
			ok++;
		else if (status[i] == VIRTIO_BLK_S_IOERR)
			ioerr++;
	}
	assert_true(ok >= 1);
	assert_true(ioerr >= 1);
	assert_int_equal(ok + ioerr, FULL_WRITES); /* every request answered, OK or IOERR */
	assert_int_equal(stat_of(&r->stats.errors), ioerr);
	uint8_t *got = malloc(FULL_LEN);
	assert_non_null(got);
	for (unsigned i = 0; i < FULL_WRITES; i++) {
		if (status[i] != VIRTIO_BLK_S_OK)
			continue;
		file_read(r, (uint64_t)i * FULL_LEN, got, FULL_LEN);
		assert_memory_equal(got, host(r, data[i]), FULL_LEN);
	}
	/* Still serving: a rewrite of the first (allocated) write, read back. */
	unsigned first = 0;
	while (status[first] != VIRTIO_BLK_S_OK)
		first++;
	uint64_t d = gbuf(r, 512), st = gbuf(r, 1);
	fill_pattern(host(r, d), 512, 77);
	struct seg w[] = { { header(r, VIRTIO_BLK_T_OUT, first * (FULL_LEN / 512)), 16, false },
			   { d, 512, false },
			   { st, 1, true } };
	run1(r, w, 3);
	assert_int_equal(*host(r, st), VIRTIO_BLK_S_OK);
	uint64_t rd = gbuf(r, 512), st2 = gbuf(r, 1);
	struct seg rq[] = { { header(r, VIRTIO_BLK_T_IN, first * (FULL_LEN / 512)), 16, false },
			    { rd, 512, true },
			    { st2, 1, true } };
	run1(r, rq, 3);
	assert_int_equal(*host(r, st2), VIRTIO_BLK_S_OK);
	assert_memory_equal(host(r, rd), host(r, d), 512);
	assert_int_equal(stat_of(&r->stats.errors), ioerr); /* no new errors */
	free(got);
	rig_free(r);
	umount2(dir, MNT_DETACH);
	rmdir(dir);
}

/* ---- several queues, batched completions (a backend that holds I/O) ---- */

struct held_be {
	struct blk_backend be;
	struct blk_io *io[64];
	unsigned n, unplugs, at_unplug;
	uint8_t img[IMG_BYTES];
};

static void held_submit(struct blk_backend *be, struct blk_io *io)
{
	struct held_be *h = (struct held_be *)be;
	assert_true(h->n < 64);
	h->io[h->n++] = io;
}

/* Completes the oldest held I/O (reads get the image's bytes). */
static void held_complete(struct held_be *h)
{
	assert_true(h->n > 0);
	struct blk_io *io = h->io[0];
	memmove(h->io, h->io + 1, --h->n * sizeof(h->io[0]));
	uint64_t off = io->off;
	for (unsigned i = 0; i < io->n; i++) {
		if (io->op == BLK_READ)
			memcpy(io->iov[i].iov_base, h->img + off, io->iov[i].iov_len);
		off += io->iov[i].iov_len;
	}
	io->done(io, 0);
}

/* The same with a result: reads only fill their buffers on success. */
static void held_complete_res(struct held_be *h, int result)
{
	assert_true(h->n > 0);
	struct blk_io *io = h->io[0];
	memmove(h->io, h->io + 1, --h->n * sizeof(h->io[0]));
	uint64_t off = io->off;
	for (unsigned i = 0; i < io->n && result == 0; i++) {
		if (io->op == BLK_READ)
			memcpy(io->iov[i].iov_base, h->img + off, io->iov[i].iov_len);
		else
			memcpy(h->img + off, io->iov[i].iov_base, io->iov[i].iov_len);
		off += io->iov[i].iov_len;
	}
	io->done(io, result);
}

static void held_drain(struct blk_backend *be)
{
	struct held_be *h = (struct held_be *)be;
	while (h->n)
		held_complete(h);
	if (be->batch_end)
		be->batch_end(be->batch_ctx, true);
}

static void held_unplug(struct blk_backend *be)
{
	struct held_be *h = (struct held_be *)be;
	h->unplugs++;
	h->at_unplug = h->n;
}

static const struct blk_backend_ops held_ops = { .submit = held_submit, .drain = held_drain,
						 .free = held_drain, .unplug = held_unplug };

static atomic_int raised_q[VIRTIO_MAX_QUEUES];

static void q_raise(struct virtio_dev *d, int q)
{
	(void)d;
	if (q >= 0 && q < VIRTIO_MAX_QUEUES)
		atomic_fetch_add(&raised_q[q], 1);
}

/* Queue q's rings: queue 0 at the rig's, the others above them. */
#define QRING(q) (0x100000u + 0x4000u * (q))

static struct virtio_dev *held_device_ex(struct rig *r, struct held_be *h, unsigned queues, bool batches,
				     const struct exec *ex)
{
	char err[128] = "";
	assert_int_equal(fake_guest_init(&r->g, RAM_SIZE), 0);
	r->stats.name = "blk-test";
	r->next_buf = BUF_GPA;
	h->be = (struct blk_backend){ .ops = &held_ops, .size = IMG_BYTES, .batches = batches };
	fill_pattern(h->img, IMG_BYTES, 9);
	struct virtio_blk_config cfg = { .path = "held.img", .queues = queues, .ex = ex };
	struct dev_gate gate = { .stats = &r->stats, .policy = NULL };
	struct virtio_dev *d = virtio_blk_new_backend(&h->be, &cfg, &r->g.m, gate, err, sizeof(err));
	if (!d)
		fail_msg("virtio_blk_new_backend: %s", err);
	r->d = d;
	for (unsigned q = 0; q < d->num_queues; q++) {
		struct virtq *vq = &d->vq[q];
		vq->size = QSIZE;
		vq->desc_gpa = QRING(q);
		vq->avail_gpa = QRING(q) + 0x1000;
		vq->used_gpa = QRING(q) + 0x2000;
		assert_int_equal(virtq_enable(vq, &r->g.m), 0);
	}
	d->features = d->host_features | VIRTIO_BIT(VIRTIO_F_VERSION_1);
	d->transport = r;
	d->raise = q_raise;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		atomic_store(&raised_q[q], 0);
	atomic_store(&d->status, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK |
					 VIRTIO_S_DRIVER_OK);
	return d;
}

static struct virtio_dev *held_device(struct rig *r, struct held_be *h, unsigned queues, bool batches)
{
	return held_device_ex(r, h, queues, batches, NULL);
}

/* A device context the test runs by hand: one doorbell, rung or not. */
struct hand_exec {
	void (*fn)(void *);
	void *arg;
	int made, rung, freed;
};

static struct doorbell *hand_doorbell_new(void *ctx, void (*fn)(void *), void *arg)
{
	struct hand_exec *e = ctx;
	e->fn = fn;
	e->arg = arg;
	e->made++;
	return (struct doorbell *)e;
}

static void hand_doorbell_ring(void *ctx, struct doorbell *db)
{
	(void)db;
	((struct hand_exec *)ctx)->rung++;
}

static void hand_doorbell_free(void *ctx, struct doorbell *db)
{
	(void)db;
	((struct hand_exec *)ctx)->freed++;
}

static const struct exec_ops hand_exec_ops = { .doorbell_new = hand_doorbell_new,
					       .doorbell_ring = hand_doorbell_ring,
					       .doorbell_free = hand_doorbell_free };

/* Answers a ring of the doorbell, as the device context would. */
static void hand_run(struct hand_exec *e)
{
	assert_true(e->rung > 0);
	e->rung = 0;
	e->fn(e->arg);
}

/* A three-buffer chain at descriptors slot*3.. of queue q, made available
 * and published; returns the avail index it took. */
static uint16_t post_chain3(struct rig *r, unsigned q, unsigned slot, const struct seg *s)
{
	struct virtq_desc *desc = (struct virtq_desc *)(void *)host(r, QRING(q));
	for (unsigned i = 0; i < 3; i++) {
		struct virtq_desc *dd = &desc[slot * 3 + i];
		dd->addr = s[i].gpa;
		dd->len = s[i].len;
		dd->flags = (uint16_t)((s[i].write ? VIRTQ_DESC_F_WRITE : 0) | (i < 2 ? VIRTQ_DESC_F_NEXT : 0));
		dd->next = (uint16_t)(slot * 3 + i + 1);
	}
	struct virtq_avail *av = (struct virtq_avail *)(void *)host(r, QRING(q) + 0x1000);
	uint16_t idx = av->idx;
	av->ring[idx % QSIZE] = (uint16_t)(slot * 3);
	__atomic_store_n(&av->idx, (uint16_t)(idx + 1), __ATOMIC_RELEASE);
	return idx;
}

/* A 512-byte read of `sector` on queue q (descriptors from slot*3); its
 * data buffer's address in *data. */
static void post_read_q(struct rig *r, unsigned q, unsigned slot, uint64_t sector, uint64_t *data)
{
	uint64_t h = header(r, VIRTIO_BLK_T_IN, sector);
	*data = gbuf(r, 513);
	struct seg s[] = { { h, 16, false }, { *data, 512, true }, { *data + 512, 1, true } };
	post_chain3(r, q, slot, s);
}

static uint16_t used_idx_q(struct rig *r, unsigned q)
{
	return __atomic_load_n(&((struct virtq_used *)(void *)host(r, QRING(q) + 0x2000))->idx, __ATOMIC_ACQUIRE);
}

/* Two queues: offered as VIRTIO_BLK_F_MQ with num_queues 2; a request on
 * queue 1 completes on queue 1's used ring and interrupts queue 1 only; a
 * notification for a queue the device does not have is ignored. */
static void test_mq_queues_apart(void **state)
{
	(void)state;
	struct rig *r = calloc(1, sizeof(*r));
	struct held_be *h = calloc(1, sizeof(*h));
	assert_non_null(r);
	assert_non_null(h);
	struct virtio_dev *d = held_device(r, h, 2, true);
	assert_int_equal(d->num_queues, 2);
	assert_true(d->host_features & VIRTIO_BIT(VIRTIO_BLK_F_MQ));
	uint8_t nq[2];
	d->ops->config_read(d, 34, nq, 2);
	assert_int_equal(nq[0] | nq[1] << 8, 2);

	uint64_t data;
	post_read_q(r, 1, 0, 7, &data);
	d->ops->queue_notify(d, 0); /* queue 0 has nothing */
	assert_int_equal(h->n, 0);
	d->ops->queue_notify(d, 1);
	assert_int_equal(h->n, 1);
	d->ops->queue_notify(d, 2); /* hostile: no queue 2 */
	d->ops->queue_notify(d, 0xffffffffu);
	assert_int_equal(h->n, 1);
	held_complete(h);
	h->be.batch_end(h->be.batch_ctx, true);
	assert_int_equal(used_idx_q(r, 1), 1);
	assert_int_equal(used_idx_q(r, 0), 0);
	assert_int_equal(atomic_load(&raised_q[1]), 1);
	assert_int_equal(atomic_load(&raised_q[0]), 0);
	assert_memory_equal(host(r, data), h->img + 7 * 512, 512);
	assert_int_equal(host(r, data + 512)[0], VIRTIO_BLK_S_OK);

	/* Quiesced (pause, snapshot): a kick on queue 1 is not served; resume
	 * looks at every queue, queue 1 included, without a new kick. */
	d->ops->quiesce(d);
	uint64_t data2;
	post_read_q(r, 1, 1, 9, &data2);
	d->ops->queue_notify(d, 1);
	assert_int_equal(h->n, 0);
	d->ops->resume(d);
	assert_int_equal(h->n, 1);
	held_complete(h);
	h->be.batch_end(h->be.batch_ctx, true);
	assert_int_equal(used_idx_q(r, 1), 2);
	assert_memory_equal(host(r, data2), h->img + 9 * 512, 512);

	/* One queue: no F_MQ, num_queues 1. */
	virtio_blk_free(d);
	fake_guest_fini(&r->g);
	memset(r, 0, sizeof(*r));
	d = held_device(r, h, 1, true);
	assert_int_equal(d->num_queues, 1);
	assert_false(d->host_features & VIRTIO_BIT(VIRTIO_BLK_F_MQ));
	d->ops->config_read(d, 34, nq, 2);
	assert_int_equal(nq[0] | nq[1] << 8, 1);
	virtio_blk_free(d);
	fake_guest_fini(&r->g);
	free(h);
	free(r);
}

/* Diff snapshots: a read in flight when the driver points its data and
 * status descriptors elsewhere. The backend fills the buffers the device
 * popped, so those pages are marked, whatever the ring names now. */
static void test_read_in_flight_marks_popped_buffers(void **state)
{
	(void)state;
	struct rig *r = calloc(1, sizeof(*r));
	struct held_be *h = calloc(1, sizeof(*h));
	assert_non_null(r);
	assert_non_null(h);
	struct virtio_dev *d = held_device(r, h, 1, true);
	uint64_t data;
	post_read_q(r, 0, 0, 3, &data);
	d->ops->queue_notify(d, 0);
	assert_int_equal(h->n, 1);

	assert_int_equal(gmem_dirty_track(&r->g.m, true), 0);
	uint64_t elsewhere = (gbuf(r, 3 * 4096) + 4095) & ~4095ull;
	struct virtq_desc *desc = (struct virtq_desc *)(void *)host(r, QRING(0));
	desc[1].addr = elsewhere;
	desc[2].addr = elsewhere + 4096;
	held_complete(h);
	h->be.batch_end(h->be.batch_ctx, true);
	assert_int_equal(used_idx_q(r, 0), 1);
	assert_memory_equal(host(r, data), h->img + 3 * 512, 512);
	assert_int_equal(host(r, data + 512)[0], VIRTIO_BLK_S_OK);
	assert_true(fake_dirty_marked(&r->g.m, data, 513));

	gmem_dirty_track(&r->g.m, false);
	virtio_blk_free(d);
	fake_guest_fini(&r->g);
	free(h);
	free(r);
}

static uint16_t avail_event_q(struct rig *r, unsigned q)
{
	return *(uint16_t *)(void *)host(r, QRING(q) + 0x2000 + 4 + 8u * QSIZE);
}

/* A driver that adds requests while others are in flight need not kick:
 * the device leaves avail_event where it was while it has requests out,
 * and looks at the ring again after each run of completions — in place
 * when they come on the device context, through its doorbell when they
 * come on a backend thread, never from inside a drain. Only when a queue
 * is empty with nothing in flight is the driver asked to kick again. */
static void test_no_kick_asked_while_in_flight(void **state)
{
	(void)state;
	struct rig *r = calloc(1, sizeof(*r));
	struct held_be *h = calloc(1, sizeof(*h));
	struct hand_exec e = { 0 };
	struct exec ex = { .ops = &hand_exec_ops, .ctx = &e };
	assert_non_null(r);
	assert_non_null(h);
	struct virtio_dev *d = held_device_ex(r, h, 1, true, &ex);
	assert_int_equal(e.made, 1);
	d->vq[0].event_idx = true;
	*(uint16_t *)(void *)host(r, QRING(0) + 0x2000 + 4 + 8u * QSIZE) = 0x7777;
	struct virtio_blk_stat_values st;
	uint64_t data[6];

	/* A, kicked; B added while A is out (no kick: avail_event unmoved). */
	post_read_q(r, 0, 0, 1, &data[0]);
	d->ops->queue_notify(d, 0);
	assert_int_equal(h->n, 1);
	assert_int_equal(avail_event_q(r, 0), 0x7777);
	post_read_q(r, 0, 1, 2, &data[1]);
	/* A completes on the device context: B is taken in place. */
	held_complete(h);
	h->be.batch_end(h->be.batch_ctx, true);
	assert_int_equal(used_idx_q(r, 0), 1);
	assert_int_equal(h->n, 1);
	assert_int_equal(avail_event_q(r, 0), 0x7777);
	/* B completes: empty, nothing out, so the driver is asked to kick. */
	held_complete(h);
	h->be.batch_end(h->be.batch_ctx, true);
	assert_int_equal(used_idx_q(r, 0), 2);
	assert_int_equal(h->n, 0);
	assert_int_equal(avail_event_q(r, 0), 2);
	assert_int_equal(e.rung, 0);

	/* C kicked, D added; their completions come on a backend thread: the
	 * doorbell looks, not the completing thread. */
	post_read_q(r, 0, 2, 3, &data[2]);
	d->ops->queue_notify(d, 0);
	post_read_q(r, 0, 3, 4, &data[3]);
	held_complete(h);
	h->be.batch_end(h->be.batch_ctx, false);
	assert_int_equal(h->n, 0);
	assert_int_equal(e.rung, 1);
	hand_run(&e);
	assert_int_equal(h->n, 1);
	assert_int_equal(avail_event_q(r, 0), 2);
	held_complete(h);
	h->be.batch_end(h->be.batch_ctx, false);
	hand_run(&e);
	assert_int_equal(used_idx_q(r, 0), 4);
	assert_int_equal(avail_event_q(r, 0), 4);

	/* E out, F added, then a pause: the drain completes E but takes
	 * nothing new; resume serves F. */
	post_read_q(r, 0, 4, 5, &data[4]);
	d->ops->queue_notify(d, 0);
	post_read_q(r, 0, 5, 6, &data[5]);
	d->ops->quiesce(d);
	assert_int_equal(used_idx_q(r, 0), 5);
	assert_int_equal(h->n, 0);
	virtio_blk_get_stats(d, &st);
	assert_int_equal(st.requests, 5);
	if (e.rung)
		hand_run(&e); /* quiesced: looks, takes nothing */
	assert_int_equal(h->n, 0);
	d->ops->resume(d);
	assert_int_equal(h->n, 1);
	held_complete(h);
	h->be.batch_end(h->be.batch_ctx, true);
	assert_int_equal(used_idx_q(r, 0), 6);
	assert_int_equal(avail_event_q(r, 0), 6);

	for (unsigned i = 0; i < 6; i++) {
		assert_memory_equal(host(r, data[i]), h->img + (i + 1) * 512, 512);
		assert_int_equal(host(r, data[i] + 512)[0], VIRTIO_BLK_S_OK);
	}
	virtio_blk_get_stats(d, &st);
	assert_int_equal(st.requests, 6);
	assert_int_equal(st.notifies, 4); /* A, C, E kicked; resume */
	assert_true(st.looks >= 4);
	virtio_blk_free(d);
	assert_int_equal(e.freed, 1);
	fake_guest_fini(&r->g);
	free(h);
	free(r);
}

/* A run of completions from a batching backend raises one interrupt, after
 * batch_end; the turn's submits are unplugged once, after the last. A
 * backend that does not batch interrupts once per completion. */
static void test_batched_interrupts(void **state)
{
	(void)state;
	for (int batches = 1; batches >= 0; batches--) {
		struct rig *r = calloc(1, sizeof(*r));
		struct held_be *h = calloc(1, sizeof(*h));
		assert_non_null(r);
		assert_non_null(h);
		struct virtio_dev *d = held_device(r, h, 2, batches);
		uint64_t data[8];
		for (unsigned i = 0; i < 8; i++)
			post_read_q(r, 0, i, 2 * i, &data[i]); /* not adjacent: not merged */
		d->ops->queue_notify(d, 0);
		assert_int_equal(h->n, 8);
		assert_int_equal(h->unplugs, 1);
		assert_int_equal(h->at_unplug, 8);
		for (unsigned i = 0; i < 8; i++)
			held_complete(h);
		assert_int_equal(used_idx_q(r, 0), 8);
		assert_int_equal(atomic_load(&raised_q[0]), batches ? 0 : 8);
		h->be.batch_end(h->be.batch_ctx, true);
		assert_int_equal(atomic_load(&raised_q[0]), batches ? 1 : 8);
		h->be.batch_end(h->be.batch_ctx, true); /* nothing new: no interrupt */
		assert_int_equal(atomic_load(&raised_q[0]), batches ? 1 : 8);
		for (unsigned i = 0; i < 8; i++)
			assert_memory_equal(host(r, data[i]), h->img + 2 * i * 512, 512);
		struct virtio_blk_stat_values st;
		virtio_blk_get_stats(d, &st);
		assert_int_equal(st.requests, 8);
		assert_int_equal(st.completions, 8);
		assert_int_equal(st.interrupts, batches ? 1 : 8);
		virtio_blk_free(d);
		fake_guest_fini(&r->g);
		free(h);
		free(r);
	}
}

/* A write of 512 bytes at `sector` on queue 0 from slot*3; its status
 * byte's address in *st. */
static void post_write_q(struct rig *r, unsigned slot, uint64_t sector, uint8_t fillb, uint64_t *st)
{
	uint64_t h = header(r, VIRTIO_BLK_T_OUT, sector), d = gbuf(r, 512);
	*st = gbuf(r, 1);
	memset(host(r, d), fillb, 512);
	host(r, *st)[0] = 0xee;
	struct seg s[] = { { h, 16, false }, { d, 512, false }, { *st, 1, true } };
	post_chain3(r, 0, slot, s);
}

/* Adjacent reads of one turn go to the backend as one I/O (a read that
 * does not continue them starts another), each request gets its own
 * bytes; a merged write run that fails is retried one request at a time,
 * so only the request that fails again sees IOERR. */
static void test_merge_adjacent(void **state)
{
	(void)state;
	struct rig *r = calloc(1, sizeof(*r));
	struct held_be *h = calloc(1, sizeof(*h));
	assert_non_null(r);
	assert_non_null(h);
	struct virtio_dev *d = held_device(r, h, 1, true);
	uint64_t data[5];
	for (unsigned i = 0; i < 4; i++)
		post_read_q(r, 0, i, 10 + i, &data[i]);
	post_read_q(r, 0, 4, 100, &data[4]);
	d->ops->queue_notify(d, 0);
	assert_int_equal(h->n, 2);
	assert_int_equal(h->io[0]->off, 10 * 512);
	assert_int_equal(h->io[0]->n, 4);
	assert_int_equal(h->io[1]->off, 100 * 512);
	assert_int_equal(h->at_unplug, 2);
	held_complete(h);
	held_complete(h);
	h->be.batch_end(h->be.batch_ctx, true);
	assert_int_equal(used_idx_q(r, 0), 5);
	for (unsigned i = 0; i < 4; i++) {
		assert_memory_equal(host(r, data[i]), h->img + (10 + i) * 512, 512);
		assert_int_equal(host(r, data[i] + 512)[0], VIRTIO_BLK_S_OK);
	}
	assert_memory_equal(host(r, data[4]), h->img + 100 * 512, 512);
	struct virtio_blk_stat_values st;
	virtio_blk_get_stats(d, &st);
	assert_int_equal(st.merged, 3);

	/* Three adjacent writes: one I/O; it fails; each goes again alone. */
	uint64_t ws[3];
	for (unsigned i = 0; i < 3; i++)
		post_write_q(r, 5 + i, 200 + i, (uint8_t)(0x10 + i), &ws[i]);
	d->ops->queue_notify(d, 0);
	assert_int_equal(h->n, 1);
	assert_int_equal(h->io[0]->n, 3);
	held_complete_res(h, -EIO);
	assert_int_equal(h->n, 3); /* retried apart */
	assert_int_equal(h->io[0]->off, 200 * 512);
	assert_int_equal(h->io[1]->off, 201 * 512);
	assert_int_equal(h->io[2]->off, 202 * 512);
	assert_int_equal(h->io[0]->n, 1);
	held_complete_res(h, 0);
	held_complete_res(h, -EIO);
	held_complete_res(h, 0);
	h->be.batch_end(h->be.batch_ctx, true);
	assert_int_equal(used_idx_q(r, 0), 8);
	assert_int_equal(host(r, ws[0])[0], VIRTIO_BLK_S_OK);
	assert_int_equal(host(r, ws[1])[0], VIRTIO_BLK_S_IOERR);
	assert_int_equal(host(r, ws[2])[0], VIRTIO_BLK_S_OK);
	assert_int_equal(h->img[200 * 512], 0x10);
	assert_int_equal(h->img[202 * 512 + 511], 0x12);
	virtio_blk_get_stats(d, &st);
	assert_int_equal(st.retried, 1);
	assert_int_equal(stat_of(&r->stats.errors), 1);
	virtio_blk_free(d);
	fake_guest_fini(&r->g);
	free(h);
	free(r);
}

/* host_blk_new with queues: the file backend carries requests of every
 * queue (the ring sized for all of them) and completes each on its own. */
static void test_mq_file(void **state)
{
	(void)state;
	struct rig *r = rig_image();
	struct virtio_blk_config cfg = { .path = r->path, .engine = test_engine(), .queues = 4 };
	struct dev_gate gate = { .stats = &r->stats, .policy = NULL, .id = "disk0" };
	char err[256] = "";
	struct virtio_dev *d = host_blk_new(&cfg, &r->g.m, gate, err, sizeof(err));
	if (!d)
		fail_msg("host_blk_new: %s", err);
	r->d = d;
	for (unsigned q = 0; q < 4; q++) {
		struct virtq *vq = &d->vq[q];
		vq->size = QSIZE;
		vq->desc_gpa = QRING(q);
		vq->avail_gpa = QRING(q) + 0x1000;
		vq->used_gpa = QRING(q) + 0x2000;
		assert_int_equal(virtq_enable(vq, &r->g.m), 0);
	}
	d->features = d->host_features | VIRTIO_BIT(VIRTIO_F_VERSION_1);
	d->transport = r;
	d->raise = q_raise;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		atomic_store(&raised_q[q], 0);
	atomic_store(&d->status, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK |
					 VIRTIO_S_DRIVER_OK);
	uint64_t data[4][16];
	for (unsigned q = 0; q < 4; q++)
		for (unsigned i = 0; i < 16; i++)
			post_read_q(r, q, i, q * 16 + i, &data[q][i]);
	for (unsigned q = 0; q < 4; q++)
		d->ops->queue_notify(d, q);
	for (unsigned q = 0; q < 4; q++) {
		for (int t = 0; t < 5000 && used_idx_q(r, q) != 16; t++) {
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
		}
		assert_int_equal(used_idx_q(r, q), 16);
	}
	uint8_t want[512];
	for (unsigned q = 0; q < 4; q++)
		for (unsigned i = 0; i < 16; i++) {
			file_read(r, (q * 16 + i) * 512ull, want, 512);
			assert_memory_equal(host(r, data[q][i]), want, 512);
			assert_int_equal(host(r, data[q][i] + 512)[0], VIRTIO_BLK_S_OK);
		}
	/* Every queue heard of its completions (at least once each). */
	for (unsigned q = 0; q < 4; q++)
		assert_true(atomic_load(&raised_q[q]) >= 1);
	virtio_blk_free(d);
	unlink(r->path);
	fake_guest_fini(&r->g);
	free(r);
}

/* A driver that kicks only when avail_event asks it to (vring_need_event,
 * as Linux's), keeping 32 reads in flight, against a real device context
 * (the event loop) and the file backend: every request completes. A queue
 * left unarmed with nothing coming to look at it again would stall this
 * (the deadline), and under ThreadSanitizer the completions racing the
 * device context's looks are checked too. */
struct kick_ctx {
	struct virtio_dev *d;
	atomic_int kicks;
};

static void kick_on_device(void *arg)
{
	struct kick_ctx *k = arg;
	atomic_fetch_add(&k->kicks, 1);
	k->d->ops->queue_notify(k->d, 0);
}

#define KD_SLOTS 32u
#define KD_TOTAL 3000u

static void kd_post(struct rig *r, const struct exec *ex, struct kick_ctx *k, unsigned slot, uint64_t hdr,
		    uint64_t data, uint64_t sector)
{
	put32(host(r, hdr), VIRTIO_BLK_T_IN);
	put32(host(r, hdr + 4), 0);
	put64(host(r, hdr + 8), sector);
	memset(host(r, data), 0, 513);
	struct seg sg[] = { { hdr, 16, false }, { data, 512, true }, { data + 512, 1, true } };
	uint16_t old = post_chain3(r, 0, slot, sg), new = (uint16_t)(old + 1);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint16_t ev = __atomic_load_n((uint16_t *)(void *)host(r, QRING(0) + 0x2000 + 4 + 8u * QSIZE),
				      __ATOMIC_ACQUIRE);
	if ((uint16_t)(new - ev - 1) < (uint16_t)(new - old))
		assert_int_equal(exec_post(ex, kick_on_device, k), 0);
}

static void test_driver_kicks_only_when_asked(void **state)
{
	(void)state;
	struct rig *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	assert_int_equal(fake_guest_init(&r->g, RAM_SIZE), 0);
	r->stats.name = "blk-test";
	make_image(r, IMG_BYTES);
	uint8_t *img = malloc(IMG_BYTES);
	assert_non_null(img);
	fill_pattern(img, IMG_BYTES, 7);
	struct evloop *l = evloop_new();
	assert_non_null(l);
	assert_int_equal(evloop_start(l), 0);
	struct exec ex = evloop_exec(l);
	struct virtio_blk_config cfg = { .path = r->path, .engine = test_engine(), .ex = &ex };
	struct dev_gate gate = { .stats = &r->stats, .policy = NULL, .id = "disk0" };
	char err[256] = "";
	struct virtio_dev *d = host_blk_new(&cfg, &r->g.m, gate, err, sizeof(err));
	if (!d)
		fail_msg("host_blk_new: %s", err);
	struct virtq *vq = &d->vq[0];
	vq->size = QSIZE;
	vq->desc_gpa = QRING(0);
	vq->avail_gpa = QRING(0) + 0x1000;
	vq->used_gpa = QRING(0) + 0x2000;
	vq->event_idx = true;
	assert_int_equal(virtq_enable(vq, &r->g.m), 0);
	d->features = d->host_features | VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	d->transport = r;
	d->raise = q_raise;
	atomic_store(&d->status, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK |
					 VIRTIO_S_DRIVER_OK);
	struct kick_ctx k = { .d = d };
	/* Page-aligned buffers, so an O_DIRECT ring may take them. */
	uint64_t hdr[KD_SLOTS], data[KD_SLOTS], sector[KD_SLOTS];
	for (unsigned i = 0; i < KD_SLOTS; i++) {
		hdr[i] = 0x200000u + 0x2000u * i;
		data[i] = hdr[i] + 0x1000u;
	}
	unsigned posted = 0, done = 0;
	for (; posted < KD_SLOTS; posted++) {
		sector[posted] = (posted * 7u) % IMG_SECTORS;
		kd_post(r, &ex, &k, posted, hdr[posted], data[posted], sector[posted]);
	}
	const struct virtq_used *used = (const struct virtq_used *)(const void *)host(r, QRING(0) + 0x2000);
	uint16_t seen = 0;
	time_t deadline = time(NULL) + 60;
	while (done < KD_TOTAL && time(NULL) < deadline) {
		uint16_t u = used_idx_q(r, 0);
		if (u == seen) {
			struct timespec ts = { 0, 20000 };
			nanosleep(&ts, NULL);
			continue;
		}
		for (; seen != u; seen++) {
			unsigned slot = used->ring[seen % QSIZE].id / 3;
			assert_true(slot < KD_SLOTS);
			assert_int_equal(host(r, data[slot] + 512)[0], VIRTIO_BLK_S_OK);
			assert_memory_equal(host(r, data[slot]), img + sector[slot] * 512, 512);
			done++;
			if (posted < KD_TOTAL) {
				sector[slot] = (posted * 7u) % IMG_SECTORS;
				kd_post(r, &ex, &k, slot, hdr[slot], data[slot], sector[slot]);
				posted++;
			}
		}
	}
	assert_int_equal(done, KD_TOTAL);
	evloop_stop(l);
	struct virtio_blk_stat_values st;
	virtio_blk_get_stats(d, &st);
	print_message("%u requests, %d kicks, %" PRIu64 " looks\n", KD_TOTAL, atomic_load(&k.kicks), st.looks);
	assert_int_equal(st.requests, KD_TOTAL);
	assert_true(st.looks >= 1); /* completions took requests nobody kicked for */
	virtio_blk_free(d);
	evloop_free(l);
	unlink(r->path);
	free(img);
	fake_guest_fini(&r->g);
	free(r);
}

/* ---- teardown and the largest requests ---- */

/* The VM torn down (the event loop stopped, then virtio_blk_free) while a
 * read is on a ring reaped on the event thread and a write through an
 * overlay made since waits on a worker for it (the overlay's bypass
 * count): the free drains the ring itself first, so it returns, with both
 * requests completed. */
struct free_arg {
	struct virtio_dev *d;
	atomic_bool done;
};

static void *free_thread(void *arg)
{
	struct free_arg *a = arg;
	virtio_blk_free(a->d);
	atomic_store(&a->done, true);
	return NULL;
}

static void test_teardown_with_the_ring_unreaped(void **state)
{
	(void)state;
	struct rig *r = rig_image();
	char ovl[64];
	tmp_overlay(ovl, sizeof(ovl));

	struct evloop *l = evloop_new();
	assert_non_null(l);
	assert_int_equal(evloop_start(l), 0);
	struct exec ex = evloop_exec(l);
	/* The ring reaped on the device context, as add_drives() builds it. */
	struct blk_file_opts o = { .engine = BLK_ENGINE_URING, .buffered = true, .ex = &ex };
	char err[256] = "";
	struct blk_backend *be = blk_file_open_opts(r->path, &o, err, sizeof(err));
	if (!be)
		fail_msg("blk_file_open_opts: %s", err);
	if (blk_file_engine(be, NULL) != BLK_ENGINE_URING) {
		print_message("no io_uring here: skipped\n");
		be->ops->free(be);
		evloop_free(l);
		goto out;
	}
	/* The device without cfg.ex (no look doorbell), so the recovery below
	 * cannot run a look on a freed device. */
	struct virtio_blk_config cfg = { .path = r->path };
	struct dev_gate gate = { .stats = &r->stats, .policy = NULL, .id = "disk0" };
	struct virtio_dev *d = virtio_blk_new_backend(be, &cfg, &r->g.m, gate, err, sizeof(err));
	assert_non_null(d);
	r->d = d;
	struct virtq *vq = &d->vq[0];
	vq->size = QSIZE;
	vq->desc_gpa = QRING(0);
	vq->avail_gpa = QRING(0) + 0x1000;
	vq->used_gpa = QRING(0) + 0x2000;
	assert_int_equal(virtq_enable(vq, &r->g.m), 0);
	d->features = d->host_features | VIRTIO_BIT(VIRTIO_F_VERSION_1);
	d->transport = r;
	d->raise = q_raise;
	atomic_store(&d->status, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK |
					 VIRTIO_S_DRIVER_OK);

	/* The VM is being torn down: the event loop has stopped (in the race,
	 * with the read below still in the kernel - stopping first makes the
	 * same state deterministic). */
	evloop_stop(l);

	/* 1. A read the ring takes (no overlay yet). Its CQE is posted but
	 *    nobody reaps it: f->bypass stays 1. */
	uint64_t data;
	post_read_q(r, 0, 0, 3, &data);
	d->ops->queue_notify(d, 0);
	assert_int_equal(blk_file_ring_ios(be), 1);

	/* 2. The overlay appears (a policy with a redirect swapped in live:
	 *    machine_open_overlays -> virtio_blk_open_overlay). */
	assert_int_equal(virtio_blk_open_overlay(d, ovl, err, sizeof(err)), 0);

	/* 3. Any write now goes to a worker and waits there for bypass == 0. */
	uint64_t h = header(r, VIRTIO_BLK_T_OUT, 100);
	uint64_t w = gbuf(r, 513);
	struct seg s[] = { { h, 16, false }, { w, 512, false }, { w + 512, 1, true } };
	post_chain3(r, 0, 1, s);
	d->ops->queue_notify(d, 0);
	struct timespec ms100 = { 0, 100000000 };
	nanosleep(&ms100, NULL);

	/* 4. The teardown's virtio_blk_free(): must return. */
	struct free_arg a = { .d = d };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, free_thread, &a), 0);
	bool hung = true;
	for (int i = 0; i < 50; i++) {
		if (atomic_load(&a.done)) {
			hung = false;
			break;
		}
		nanosleep(&ms100, NULL);
	}
	if (hung) {
		/* No way back: the loop cannot be restarted (stopping stays set) and
		 * nothing else reaps the ring. Fail; the process exit ends the
		 * blocked threads. */
		unlink(ovl);
		unlink(r->path);
		fail_msg("virtio_blk_free still blocked after 5 s");
	}
	pthread_join(t, NULL);
	evloop_free(l);
	unlink(ovl);
out:
	unlink(r->path);
	fake_guest_fini(&r->g);
	free(r);
}


/* One read of 62 x 36 MiB descriptors (aliasing the same guest RAM, which
 * the device allows), 2.18 GiB, from a sparse 2.5 GiB image: the kernel
 * moves at most MAX_RW_COUNT (0x7ffff000) per readv, so the ring hands such
 * a request to the workers, which go on after a short transfer. Both
 * engines answer OK. */
static uint8_t big_read(enum blk_engine engine)
{
	struct rig *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	const uint64_t seg = 36ull << 20, ram = 40ull << 20, img = 2560ull << 20;
	assert_int_equal(fake_guest_init(&r->g, ram), 0);
	r->stats.name = "blk-test";
	strcpy(r->path, "/tmp/vblk-big-XXXXXX");
	int fd = mkstemp(r->path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)img), 0);
	close(fd);
	struct virtio_blk_config cfg = { .path = r->path, .engine = engine, .buffered = true };
	struct dev_gate gate = { .stats = &r->stats, .policy = NULL, .id = "disk0" };
	char err[256] = "";
	struct virtio_dev *d = host_blk_new(&cfg, &r->g.m, gate, err, sizeof(err));
	if (!d)
		fail_msg("host_blk_new: %s", err);
	r->d = d;
	struct virtq *vq = &d->vq[0];
	vq->size = 128;
	vq->desc_gpa = 0x1000;
	vq->avail_gpa = 0x2000;
	vq->used_gpa = 0x3000;
	assert_int_equal(virtq_enable(vq, &r->g.m), 0);
	d->features = d->host_features | VIRTIO_BIT(VIRTIO_F_VERSION_1);
	d->transport = r;
	d->raise = q_raise;
	atomic_store(&d->status, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK |
					 VIRTIO_S_DRIVER_OK);
	struct virtq_desc *desc = (struct virtq_desc *)(void *)host(r, 0x1000);
	uint64_t hdr = 0x8000, st = 0x8100, buf = 0x100000;
	put32(host(r, hdr), VIRTIO_BLK_T_IN);
	put32(host(r, hdr + 4), 0);
	put64(host(r, hdr + 8), 0);
	*host(r, st) = 0xaa;
	desc[0] = (struct virtq_desc){ hdr, 16, VIRTQ_DESC_F_NEXT, 1 };
	for (unsigned i = 1; i <= 62; i++)
		desc[i] = (struct virtq_desc){ buf, (uint32_t)seg, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE,
					       (uint16_t)(i + 1) };
	desc[63] = (struct virtq_desc){ st, 1, VIRTQ_DESC_F_WRITE, 0 };
	struct virtq_avail *av = (struct virtq_avail *)(void *)host(r, 0x2000);
	av->ring[0] = 0;
	__atomic_store_n(&av->idx, 1, __ATOMIC_RELEASE);
	d->ops->queue_notify(d, 0);
	struct virtq_used *u = (struct virtq_used *)(void *)host(r, 0x3000);
	for (int i = 0; i < 30000 && __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) != 1; i++) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	assert_int_equal(__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE), 1);
	uint8_t status = *host(r, st);
	assert_int_equal(u->ring[0].len, status == VIRTIO_BLK_S_OK ? 62 * seg + 1 : 1);
	virtio_blk_free(d);
	unlink(r->path);
	fake_guest_fini(&r->g);
	free(r);
	return status;
}

static void test_request_past_max_rw_count(void **state)
{
	(void)state;
	uint8_t threads = big_read(BLK_ENGINE_THREADS);
	uint8_t uring = big_read(BLK_ENGINE_URING);
	assert_int_equal(threads, VIRTIO_BLK_S_OK);
	assert_int_equal(uring, VIRTIO_BLK_S_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_swap_image),
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_read_any_layout),
		cmocka_unit_test(test_write),
		cmocka_unit_test(test_flush),
		cmocka_unit_test(test_get_id),
		cmocka_unit_test(test_get_id_default),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_read_only),
		cmocka_unit_test(test_read_only_gate),
		cmocka_unit_test(test_beyond_capacity),
		cmocka_unit_test(test_sector_overflow),
		cmocka_unit_test(test_bad_length),
		cmocka_unit_test(test_header_too_short),
		cmocka_unit_test(test_status_not_writable),
		cmocka_unit_test(test_wrong_direction),
		cmocka_unit_test(test_unknown_type),
		cmocka_unit_test(test_bad_chain),
		cmocka_unit_test(test_broken_queue),
		cmocka_unit_test(test_many_in_flight),
		cmocka_unit_test(test_reset_waits),
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_new_errors),
		cmocka_unit_test(test_quiesce_waits_for_write_in_flight),
		cmocka_unit_test(test_policy_deny_sectors),
		cmocka_unit_test(test_policy_deny_flush),
		cmocka_unit_test(test_policy_permissive),
		cmocka_unit_test(test_policy_overlay),
		cmocka_unit_test(test_policy_overlay_unusable),
		cmocka_unit_test(test_policy_overlay_live),
		cmocka_unit_test(test_policy_overlay_concurrent),
		cmocka_unit_test(test_policy_overlay_opened_at_swap),
		cmocka_unit_test(test_policy_overlay_after_write_in_flight),
		cmocka_unit_test(test_enospc),
		cmocka_unit_test(test_mq_queues_apart),
		cmocka_unit_test(test_read_in_flight_marks_popped_buffers),
		cmocka_unit_test(test_no_kick_asked_while_in_flight),
		cmocka_unit_test(test_driver_kicks_only_when_asked),
		cmocka_unit_test(test_batched_interrupts),
		cmocka_unit_test(test_mq_file),
		cmocka_unit_test(test_merge_adjacent),
	};
	const char *only = getenv("VIGIL_TEST_BLK_IO");
	int failed = 0;
	if (!only || strcmp(only, "threads") == 0) {
		engine_ = BLK_ENGINE_THREADS;
		failed += cmocka_run_group_tests_name("virtio_blk over threads", tests, NULL, NULL);
	}
	if (!only || strcmp(only, "uring") == 0) {
		engine_ = BLK_ENGINE_URING;
		failed += cmocka_run_group_tests_name("virtio_blk over io_uring", tests, NULL, NULL);
	}
	/* Each picks its engines itself. */
	const struct CMUnitTest once[] = {
		cmocka_unit_test(test_teardown_with_the_ring_unreaped),
		cmocka_unit_test(test_request_past_max_rw_count),
	};
	if (!only)
		failed += cmocka_run_group_tests_name("virtio_blk teardown and large requests", once, NULL, NULL);
	return failed;
}
