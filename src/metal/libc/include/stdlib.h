/* vigil-metal's libc shim: <stdlib.h> — the heap (libc/malloc.c, over
 * metal_alloc_pages), conversions, sorting, abort. */
#ifndef VIGIL_METAL_STDLIB_H
#define VIGIL_METAL_STDLIB_H
#include <stddef.h>
#define EXIT_SUCCESS 0
#define EXIT_FAILURE 1
void *malloc(size_t n);
void *calloc(size_t nmemb, size_t size);
void *realloc(void *p, size_t n);
void free(void *p);
void *aligned_alloc(size_t align, size_t n);
int posix_memalign(void **out, size_t align, size_t n);
long strtol(const char *restrict s, char **restrict end, int base);
unsigned long strtoul(const char *restrict s, char **restrict end, int base);
long long strtoll(const char *restrict s, char **restrict end, int base);
unsigned long long strtoull(const char *restrict s, char **restrict end, int base);
/* Only for code built with SSE (jansson's real numbers; libc/strtod.c). */
double strtod(const char *restrict s, char **restrict end);
int atoi(const char *s);
void qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));
void *bsearch(const void *key, const void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));
int abs(int v);
long labs(long v);
long long llabs(long long v);
__attribute__((noreturn)) void abort(void);
__attribute__((noreturn)) void exit(int code);
char *getenv(const char *name);
#endif
