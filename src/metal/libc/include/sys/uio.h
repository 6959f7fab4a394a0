/* vigil-metal's libc shim: <sys/uio.h> — the scatter/gather element the
 * virtqueue code hands around (no readv/writev: nothing to read from). */
#ifndef VIGIL_METAL_SYS_UIO_H
#define VIGIL_METAL_SYS_UIO_H
#include <sys/types.h>
struct iovec {
	void *iov_base;
	size_t iov_len;
};
#endif
