/* console — the host end of the guest's console: `stdio` (the terminal in
 * raw mode, restored on every exit path; Ctrl-A x quits), `none`, or
 * `file:PATH` (output only). Output arrives through a chardev_out from the
 * UART; input is read on its own thread and pushed into the UART with
 * backpressure, so typed-ahead text is not dropped. */
#ifndef VIGIL_HOST_CONSOLE_H
#define VIGIL_HOST_CONSOLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
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

struct console {
	int out_fd;      /* -1 for none */
	int in_fd;       /* -1 when there is no input */
	bool owns_out;
	bool escapes;    /* Ctrl-A commands: only when input is a terminal */
	pthread_t thread;
	bool thread_started;
	int wake[2];     /* closes the input thread */
	atomic_bool stopping;
	struct console_sink sink;
};

/* Parses SPEC ("stdio", "none", "file:PATH") and opens it; -1 with a
 * one-line reason in err. */
int console_open(struct console *c, const char *spec, char *err, size_t errlen);
struct chardev_out console_chardev(struct console *c);
int console_start_input(struct console *c, const struct console_sink *sink);
/* Stops input, restores the terminal, closes files. Safe to call twice. */
void console_close(struct console *c);

#endif
