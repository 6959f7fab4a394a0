/* vigil-metal's libc shim: <unistd.h> — names the hosted policy parser
 * uses for files; without a file system they fail with ENOSYS. */
#ifndef VIGIL_METAL_UNISTD_H
#define VIGIL_METAL_UNISTD_H
#include <sys/types.h>
#define F_OK 0
#define X_OK 1
#define W_OK 2
#define R_OK 4
ssize_t read(int fd, void *buf, size_t n);
ssize_t write(int fd, const void *buf, size_t n);
int close(int fd);
int access(const char *path, int mode);
#endif
