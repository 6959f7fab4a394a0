/* stdio — a FILE over the console: stdout and stderr are COM1 (the
 * --stats report goes where vigil-metal's lines go), and each line starts
 * "vigil-metal: " like every line of vigil-metal's own, so a reader tells
 * them from the guest's output. Output is buffered per stream up to a
 * newline, so a report line is written whole.
 * No files: fopen fails with ENOSYS. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metal/metal.h"

struct metal_file {
	char buf[256];
	size_t len;
	int readable;
	bool mid_line; /* the prefix went out for the line being written */
};

static struct metal_file files[3] = { [0] = { .readable = 1 } };
FILE *stdin = &files[0], *stdout = &files[1], *stderr = &files[2];

int fflush(FILE *f)
{
	if (f && f->len) {
		if (!f->mid_line) {
			if (!metal_serial_at_line_start())
				metal_serial_putc('\n'); /* after a guest's unfinished line */
			metal_serial_write("vigil-metal: ", 13);
		}
		metal_serial_write(f->buf, f->len);
		f->mid_line = f->buf[f->len - 1] != '\n';
		f->len = 0;
	}
	return 0;
}

static void put(FILE *f, char c)
{
	if (f->len == sizeof(f->buf))
		fflush(f);
	f->buf[f->len++] = c;
	if (c == '\n')
		fflush(f);
}

size_t fwrite(const void *restrict p, size_t size, size_t n, FILE *restrict f)
{
	if (!f || f->readable)
		return 0;
	const char *s = p;
	for (size_t i = 0; i < size * n; i++)
		put(f, s[i]);
	return n;
}

int fputc(int c, FILE *f)
{
	char ch = (char)c;
	return fwrite(&ch, 1, 1, f) == 1 ? (unsigned char)c : EOF;
}

int putc(int c, FILE *f)
{
	return fputc(c, f);
}

int putchar(int c)
{
	return fputc(c, stdout);
}

int fputs(const char *restrict s, FILE *restrict f)
{
	size_t n = strlen(s);
	return fwrite(s, 1, n, f) == n || n == 0 ? 0 : EOF;
}

int puts(const char *s)
{
	return fputs(s, stdout) < 0 || fputc('\n', stdout) < 0 ? EOF : 0;
}

int vfprintf(FILE *restrict f, const char *restrict fmt, va_list ap)
{
	char small[512];
	va_list again;
	va_copy(again, ap);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	if (n < 0) {
		va_end(again);
		return n;
	}
	if ((size_t)n < sizeof(small)) {
		fwrite(small, 1, (size_t)n, f);
	} else {
		/* A long line (a policy rule's id list): formatted whole. */
		char *big = malloc((size_t)n + 1);
		if (big) {
			vsnprintf(big, (size_t)n + 1, fmt, again);
			fwrite(big, 1, (size_t)n, f);
			free(big);
		} else
			fwrite(small, 1, sizeof(small) - 1, f);
	}
	va_end(again);
	return n;
}

int fprintf(FILE *restrict f, const char *restrict fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vfprintf(f, fmt, ap);
	va_end(ap);
	return n;
}

int printf(const char *restrict fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vfprintf(stdout, fmt, ap);
	va_end(ap);
	return n;
}

int vsprintf(char *restrict buf, const char *restrict fmt, va_list ap)
{
	return vsnprintf(buf, (size_t)1 << 30, fmt, ap);
}

int sprintf(char *restrict buf, const char *restrict fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsprintf(buf, fmt, ap);
	va_end(ap);
	return n;
}

FILE *fopen(const char *restrict path, const char *restrict mode)
{
	(void)path;
	(void)mode;
	errno = ENOSYS;
	return NULL;
}

int fclose(FILE *f)
{
	(void)f;
	return EOF;
}

int fgetc(FILE *f)
{
	(void)f;
	return EOF;
}
