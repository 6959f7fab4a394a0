/* faultfs — a test-only FUSE file system (libfuse3) that serves one image
 * file whose reads and writes touching a chosen byte range fail with EIO:
 * the disk that goes bad under a running VM (issue 11, deliverable 6),
 * where this kernel has no device-mapper to make one.
 *
 *     faultfs BACKING MOUNTPOINT FROM TO [fuse options]
 *
 * MOUNTPOINT/disk.img is BACKING; a read or write of [off, off + len) that
 * overlaps [FROM, TO) bytes fails with EIO and leaves BACKING as it was,
 * everything else goes through with pread/pwrite. Files are opened with
 * direct_io, so the kernel's page cache never widens a request: each of
 * the guest's requests reaches this process with its own offset and
 * length, and only those in the range fail. The counts of refused reads
 * and writes are logged to stderr as they happen ("faultfs: EIO write
 * off=N len=N"), for the test to compare with what the guest saw. */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *image = "/disk.img";
static int backing = -1;
static uint64_t fail_from, fail_to;

static bool in_range(off_t off, size_t len)
{
	uint64_t a = (uint64_t)off, b = a + len;
	return a < fail_to && b > fail_from;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof(*st));
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (strcmp(path, image) != 0)
		return -ENOENT;
	struct stat b;
	if (fstat(backing, &b) < 0)
		return -errno;
	st->st_mode = S_IFREG | 0644;
	st->st_nlink = 1;
	st->st_size = b.st_size;
	st->st_blocks = b.st_blocks;
	return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	(void)flags;
	if (strcmp(path, "/") != 0)
		return -ENOENT;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, image + 1, NULL, 0, 0);
	return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, image) != 0)
		return -ENOENT;
	fi->direct_io = 1;
	return 0;
}

static int fs_read(const char *path, char *buf, size_t len, off_t off, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	if (in_range(off, len)) {
		fprintf(stderr, "faultfs: EIO read off=%jd len=%zu\n", (intmax_t)off, len);
		return -EIO;
	}
	ssize_t n = pread(backing, buf, len, off);
	return n < 0 ? -errno : (int)n;
}

static int fs_write(const char *path, const char *buf, size_t len, off_t off, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	if (in_range(off, len)) {
		fprintf(stderr, "faultfs: EIO write off=%jd len=%zu\n", (intmax_t)off, len);
		return -EIO;
	}
	ssize_t n = pwrite(backing, buf, len, off);
	return n < 0 ? -errno : (int)n;
}

static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	return (datasync ? fdatasync(backing) : fsync(backing)) < 0 ? -errno : 0;
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	(void)fi;
	if (strcmp(path, image) != 0)
		return -ENOENT;
	return ftruncate(backing, size) < 0 ? -errno : 0;
}

static const struct fuse_operations ops = {
	.getattr = fs_getattr,
	.readdir = fs_readdir,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
	.fsync = fs_fsync,
	.truncate = fs_truncate,
};

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 0);
	if (errno || !*s || *end)
		return false;
	*v = n;
	return true;
}

int main(int argc, char **argv)
{
	if (argc < 5 || !parse_u64(argv[3], &fail_from) || !parse_u64(argv[4], &fail_to) || fail_to < fail_from) {
		fprintf(stderr, "usage: faultfs BACKING MOUNTPOINT FROM TO [fuse options]\n");
		return 1;
	}
	backing = open(argv[1], O_RDWR | O_CLOEXEC);
	if (backing < 0) {
		fprintf(stderr, "faultfs: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	setvbuf(stderr, NULL, _IOLBF, 0);
	/* fuse_main's own arguments: the program, the mount point, the rest */
	char *fargv[64];
	int fargc = 0;
	fargv[fargc++] = argv[0];
	fargv[fargc++] = argv[2];
	for (int i = 5; i < argc && fargc < 63; i++)
		fargv[fargc++] = argv[i];
	fargv[fargc] = NULL;
	return fuse_main(fargc, fargv, &ops, NULL);
}
