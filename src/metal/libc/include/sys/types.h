/* vigil-metal's libc shim: <sys/types.h>. */
#ifndef VIGIL_METAL_SYS_TYPES_H
#define VIGIL_METAL_SYS_TYPES_H
#include <stddef.h>
#include <stdint.h>
typedef long ssize_t;
typedef long off_t;
typedef int pid_t;
typedef unsigned mode_t;
typedef unsigned uid_t;
typedef unsigned gid_t;
#endif
