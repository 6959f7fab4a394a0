/* The host entropy source (see host/entropy.h). getrandom() without flags
 * blocks only until the kernel's pool is first initialized, once per boot. */
#include "host/entropy.h"

#include <errno.h>
#include <sys/random.h>

static int fill(void *ctx, void *buf, size_t len)
{
	unsigned char *p = buf;
	(void)ctx;
	while (len) {
		ssize_t r = getrandom(p, len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

struct entropy host_entropy(void)
{
	return (struct entropy){ .fill = fill };
}
