/* console — the host end of the guest's console: `stdio` (the terminal in
 * raw mode, restored on every exit path; Ctrl-A x quits), `none`, or
 * `file:PATH[,max=SIZE]` (output only, at most SIZE bytes, default
 * CONSOLE_FILE_MAX). Output arrives through a chardev_out from the UART or
 * virtio-console and goes into a bounded buffer that a writer thread
 * drains: a vCPU or the event thread never waits on a reader, and what
 * does not fit (or passes the file's cap) is dropped and counted. Input is
 * read on its own thread as it arrives (so Ctrl-A x is seen at once) and
 * pushed into the device with backpressure: typed-ahead text waits in a
 * bounded buffer, not dropped while it fits. */
#ifndef VIGIL_HOST_CONSOLE_H
#define VIGIL_HOST_CONSOLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

#include "core/chardev.h"

/* Where typed bytes go: a device's receive side, and who to tell on quit. */
struct console_sink {
	size_t (*push)(void *dev, const uint8_t *buf, size_t len);
	bool (*wait_room)(void *dev, int timeout_ms);
	void *dev;
	void (*quit)(void *ctx);
	void *quit_ctx;
};

#define CONSOLE_FILE_MAX (64ULL << 20)
#define CONSOLE_OUT_BUF (256u << 10) /* output the reader may lag behind by */
#define CONSOLE_IN_BUF (64u << 10)   /* typed ahead of the guest */

struct console {
	int out_fd;      /* -1 for none */
	uint64_t out_max; /* bytes the output may take (file); UINT64_MAX for no cap */
	uint64_t out_written;
	bool out_gone;            /* the reader closed (EPIPE): nothing is written any more */
	/* the output buffer (a ring) and its writer thread */
	pthread_mutex_t out_lock;
	pthread_cond_t out_cond;
	uint8_t *ring;
	size_t ring_head, ring_len;
	bool out_stop;
	_Atomic bool out_abort;   /* close() gave up on the reader: drop what is left */
	pthread_t out_thread;
	bool out_started;
	atomic_ulong out_dropped; /* bytes the guest wrote that never left */
	atomic_ulong in_dropped;  /* typed while the guest's buffer was full */
	int in_fd;       /* -1 when there is no input */
	bool owns_out;
	bool escapes;    /* Ctrl-A commands: only when input is a terminal */
	pthread_t thread;
	bool thread_started;
	int wake[2];     /* closes the input thread */
	atomic_bool stopping;
	struct console_sink sink;
};

/* Parses SPEC ("stdio", "none", "file:PATH[,max=SIZE]") and opens it; -1
 * with a one-line reason in err. */
int console_open(struct console *c, const char *spec, char *err, size_t errlen);
/* Splits the ARG of file:ARG into its path and cap (SIZE: bytes, or with a
 * K, M or G suffix; CONSOLE_FILE_MAX without one). 0, or -1 with a reason. */
int console_file_arg(const char *arg, char *path, size_t pathlen, uint64_t *max, char *err, size_t errlen);
struct chardev_out console_chardev(struct console *c);
int console_start_input(struct console *c, const struct console_sink *sink);
/* Stops input, restores the terminal, closes files. Safe to call twice. */
void console_close(struct console *c);
/* --stats: "console: written=N dropped=N" (after console_close too). */
void console_report(const struct console *c, FILE *out);

#endif
