/* vigil-metal's libc shim: <inttypes.h> (LP64). */
#ifndef VIGIL_METAL_INTTYPES_H
#define VIGIL_METAL_INTTYPES_H
#include <stdint.h>
#define PRId8 "d"
#define PRId16 "d"
#define PRId32 "d"
#define PRId64 "ld"
#define PRIi64 "li"
#define PRIu8 "u"
#define PRIu16 "u"
#define PRIu32 "u"
#define PRIu64 "lu"
#define PRIx8 "x"
#define PRIx16 "x"
#define PRIx32 "x"
#define PRIx64 "lx"
#define PRIX8 "X"
#define PRIX16 "X"
#define PRIX32 "X"
#define PRIX64 "lX"
#define PRIo64 "lo"
#define PRIdMAX "jd"
#define PRIuMAX "ju"
#define PRIxPTR "lx"
#define PRIuPTR "lu"
#define SCNu64 "lu"
#define SCNx64 "lx"
#define SCNu32 "u"
#define SCNx32 "x"
uintmax_t strtoumax(const char *restrict s, char **restrict end, int base);
#endif
