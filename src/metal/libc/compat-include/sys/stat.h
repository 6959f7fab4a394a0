/* vigil-metal's libc shim: <sys/stat.h> — see unistd.h: stat fails. */
#ifndef VIGIL_METAL_SYS_STAT_H
#define VIGIL_METAL_SYS_STAT_H
#include <sys/types.h>
#define S_IFMT 0170000
#define S_IFDIR 0040000
#define S_IFREG 0100000
#define S_ISDIR(m) (((m) & S_IFMT) == S_IFDIR)
#define S_ISREG(m) (((m) & S_IFMT) == S_IFREG)
struct stat {
	mode_t st_mode;
	off_t st_size;
};
int stat(const char *restrict path, struct stat *restrict st);
int fstat(int fd, struct stat *st);
#endif
