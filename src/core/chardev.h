/* chardev — where a character device's output goes (console stdout, a file,
 * nowhere). Filled by host/console.c; unit tests fill it with a buffer. */
#ifndef VIGIL_CORE_CHARDEV_H
#define VIGIL_CORE_CHARDEV_H

#include <stddef.h>
#include <stdint.h>

struct chardev_out {
	void (*write)(void *ctx, const uint8_t *buf, size_t len);
	void *ctx;
};

static inline void chardev_write(const struct chardev_out *o, const uint8_t *buf, size_t len)
{
	if (o->write)
		o->write(o->ctx, buf, len);
}

#endif
