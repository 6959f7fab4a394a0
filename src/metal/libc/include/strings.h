/* vigil-metal's libc shim: <strings.h>. */
#ifndef VIGIL_METAL_STRINGS_H
#define VIGIL_METAL_STRINGS_H
#include <string.h>
#endif
