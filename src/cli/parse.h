/* parse — number and size arguments of the command line, strict: the whole
 * string must parse, no overflow, no sign. */
#ifndef VIGIL_CLI_PARSE_H
#define VIGIL_CLI_PARSE_H

#include <stdint.h>

/* "256M", "1G", "512K", "2048" (a bare number is MiB, as in QEMU's -m),
 * "1048576B". Returns 0 and bytes in *out, or -1. */
int parse_size(const char *s, uint64_t *out);

/* A decimal unsigned integer in [min, max]; 0 or -1. */
int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);

#endif
