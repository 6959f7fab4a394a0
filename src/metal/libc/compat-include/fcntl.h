/* vigil-metal's libc shim: <fcntl.h> — for the hosted policy parser's file
 * reader, which vigil-metal links but never calls (no file system): open
 * fails with ENOSYS. */
#ifndef VIGIL_METAL_FCNTL_H
#define VIGIL_METAL_FCNTL_H
#define O_RDONLY 0
#define O_WRONLY 1
#define O_RDWR 2
#define O_CLOEXEC 02000000
int open(const char *path, int flags, ...);
#endif
