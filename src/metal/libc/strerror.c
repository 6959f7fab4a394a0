/* strerror — the messages vigil's own lines quote, with glibc's wording so
 * both builds say the same thing. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

int errno;

static const char *const msgs[] = {
	[0] = "Success",
	[EPERM] = "Operation not permitted",
	[ENOENT] = "No such file or directory",
	[ESRCH] = "No such process",
	[EINTR] = "Interrupted system call",
	[EIO] = "Input/output error",
	[ENXIO] = "No such device or address",
	[E2BIG] = "Argument list too long",
	[EBADF] = "Bad file descriptor",
	[EAGAIN] = "Resource temporarily unavailable",
	[ENOMEM] = "Cannot allocate memory",
	[EACCES] = "Permission denied",
	[EFAULT] = "Bad address",
	[EBUSY] = "Device or resource busy",
	[EEXIST] = "File exists",
	[ENODEV] = "No such device",
	[ENOTDIR] = "Not a directory",
	[EISDIR] = "Is a directory",
	[EINVAL] = "Invalid argument",
	[ENOSPC] = "No space left on device",
	[EROFS] = "Read-only file system",
	[EPIPE] = "Broken pipe",
	[ERANGE] = "Numerical result out of range",
	[ENAMETOOLONG] = "File name too long",
	[ENOSYS] = "Function not implemented",
	[EBADMSG] = "Bad message",
	[EOVERFLOW] = "Value too large for defined data type",
	[EMSGSIZE] = "Message too long",
	[ENOTSUP] = "Operation not supported",
	[ECONNRESET] = "Connection reset by peer",
	[ETIMEDOUT] = "Connection timed out",
	[ECONNREFUSED] = "Connection refused",
	[ECANCELED] = "Operation canceled",
};

int strerror_r(int e, char *buf, size_t n)
{
	const char *m = e >= 0 && (size_t)e < sizeof(msgs) / sizeof(msgs[0]) ? msgs[e] : NULL;
	if (m)
		snprintf(buf, n, "%s", m);
	else
		snprintf(buf, n, "Unknown error %d", e);
	return 0;
}

char *strerror(int e)
{
	static char buf[64]; /* no threads: one buffer */
	strerror_r(e, buf, sizeof(buf));
	return buf;
}
