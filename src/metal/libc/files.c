/* files — the POSIX file calls linked code names (the hosted policy
 * parser's reader, jansson's json_load_file and its seed from
 * /dev/urandom) on a machine without files: each fails with ENOSYS, and
 * the callers take their fallback or report it. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int open(const char *path, int flags, ...)
{
	(void)path;
	(void)flags;
	errno = ENOSYS;
	return -1;
}

ssize_t read(int fd, void *buf, size_t n)
{
	(void)fd, (void)buf, (void)n;
	errno = ENOSYS;
	return -1;
}

ssize_t write(int fd, const void *buf, size_t n)
{
	(void)fd, (void)buf, (void)n;
	errno = ENOSYS;
	return -1;
}

int close(int fd)
{
	(void)fd;
	errno = ENOSYS;
	return -1;
}

int access(const char *path, int mode)
{
	(void)path, (void)mode;
	errno = ENOSYS;
	return -1;
}

int stat(const char *restrict path, struct stat *restrict st)
{
	(void)path, (void)st;
	errno = ENOSYS;
	return -1;
}

int fstat(int fd, struct stat *st)
{
	(void)fd, (void)st;
	errno = ENOSYS;
	return -1;
}
