/* vigil-metal's libc shim: <stdio.h> — formatting to buffers. */
#ifndef VIGIL_METAL_STDIO_H
#define VIGIL_METAL_STDIO_H
#include <stdarg.h>
#include <stddef.h>
int vsnprintf(char *restrict buf, size_t n, const char *restrict fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
int snprintf(char *restrict buf, size_t n, const char *restrict fmt, ...)
	__attribute__((format(printf, 3, 4)));
#endif
