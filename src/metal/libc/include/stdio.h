/* vigil-metal's libc shim: <stdio.h> — formatting to buffers, and a FILE
 * over the console for what the portable part writes to a stream it was
 * handed (the --stats report, the trace): stdout and stderr both go to
 * COM1. No fopen: there is no file system. */
#ifndef VIGIL_METAL_STDIO_H
#define VIGIL_METAL_STDIO_H
#include <stdarg.h>
#include <stddef.h>
#define EOF (-1)
typedef struct metal_file FILE;
extern FILE *stdin, *stdout, *stderr;
int vsnprintf(char *restrict buf, size_t n, const char *restrict fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
int snprintf(char *restrict buf, size_t n, const char *restrict fmt, ...)
	__attribute__((format(printf, 3, 4)));
int vsprintf(char *restrict buf, const char *restrict fmt, va_list ap) __attribute__((format(printf, 2, 0)));
int sprintf(char *restrict buf, const char *restrict fmt, ...) __attribute__((format(printf, 2, 3)));
int vfprintf(FILE *restrict f, const char *restrict fmt, va_list ap) __attribute__((format(printf, 2, 0)));
int fprintf(FILE *restrict f, const char *restrict fmt, ...) __attribute__((format(printf, 2, 3)));
int printf(const char *restrict fmt, ...) __attribute__((format(printf, 1, 2)));
int fputs(const char *restrict s, FILE *restrict f);
int puts(const char *s);
int fputc(int c, FILE *f);
int putc(int c, FILE *f);
int putchar(int c);
size_t fwrite(const void *restrict p, size_t size, size_t n, FILE *restrict f);
int fflush(FILE *f);
int sscanf(const char *restrict s, const char *restrict fmt, ...);
/* Present for code that names them; there are no files: they fail. */
FILE *fopen(const char *restrict path, const char *restrict mode);
int fclose(FILE *f);
int fgetc(FILE *f);
#endif
