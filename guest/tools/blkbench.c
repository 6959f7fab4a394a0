/* blkbench DEV MODE BS QD SECS — a disk benchmark for the lab guest
 * (bench/disk.py): MODE read|write|randread|randwrite, BS bytes per I/O,
 * QD threads each with one O_DIRECT pread/pwrite in flight (the device
 * sees up to QD requests at once), for SECS seconds over the whole device.
 * Prints one line: "blkbench MODE BS QD: IOPS iops MB mb/s". Sequential
 * modes share one cursor, so QD threads walk the disk in order together;
 * random ones pick BS-aligned offsets with a per-thread xorshift. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <time.h>
#include <unistd.h>

static int fd;
static size_t bs;
static uint64_t blocks;
static int writing, random_;
static atomic_uint_fast64_t cursor, ios;
static atomic_int stop;

static void *run(void *arg)
{
	uint64_t x = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);
	void *buf;
	if (posix_memalign(&buf, 4096, bs))
		return NULL;
	memset(buf, 0x5a, bs);
	while (!atomic_load(&stop)) {
		uint64_t b;
		if (random_) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			b = x % blocks;
		} else {
			b = atomic_fetch_add(&cursor, 1) % blocks;
		}
		ssize_t r = writing ? pwrite(fd, buf, bs, (off_t)(b * bs)) : pread(fd, buf, bs, (off_t)(b * bs));
		if (r != (ssize_t)bs) {
			perror("blkbench: I/O");
			exit(1);
		}
		atomic_fetch_add(&ios, 1);
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: blkbench DEV read|write|randread|randwrite BS QD SECS\n");
		return 2;
	}
	writing = strstr(argv[2], "write") != NULL;
	random_ = strncmp(argv[2], "rand", 4) == 0;
	bs = strtoul(argv[3], NULL, 0);
	int qd = atoi(argv[4]);
	double secs = atof(argv[5]);
	fd = open(argv[1], (writing ? O_RDWR : O_RDONLY) | O_DIRECT);
	uint64_t size = 0;
	if (fd < 0 || ioctl(fd, BLKGETSIZE64, &size) < 0 || bs == 0 || bs % 512 || qd < 1 || qd > 256) {
		perror("blkbench");
		return 2;
	}
	blocks = size / bs;
	pthread_t t[256];
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < qd; i++)
		pthread_create(&t[i], NULL, run, (void *)(uintptr_t)i);
	usleep((useconds_t)(secs * 1e6));
	atomic_store(&stop, 1);
	for (int i = 0; i < qd; i++)
		pthread_join(t[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (writing)
		fdatasync(fd);
	double dt = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	double n = (double)atomic_load(&ios);
	printf("blkbench %s %zu %d: %.0f iops %.1f mb/s\n", argv[2], bs, qd, n / dt, n * (double)bs / dt / 1e6);
	return 0;
}
