#define _GNU_SOURCE
#include "host/console.h"
#include "host/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CTRL_A 0x01

/* The terminal state to restore; global because fatal-signal handlers and
 * atexit() have no other way to reach it. */
static struct termios saved_tty;
static volatile sig_atomic_t tty_raw;

static void tty_restore(void)
{
	if (tty_raw) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
		tty_raw = 0;
	}
}

static void on_fatal_signal(int sig)
{
	tty_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int tty_make_raw(void)
{
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL };
	struct termios t;

	if (tcgetattr(STDIN_FILENO, &saved_tty) < 0)
		return -1;
	t = saved_tty;
	cfmakeraw(&t);
	t.c_oflag |= OPOST | ONLCR; /* keep host-side newlines readable */
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) < 0)
		return -1;
	tty_raw = 1;
	atexit(tty_restore);
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		signal(fatal[i], on_fatal_signal);
	return 0;
}

int console_open(struct console *c, const char *spec, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->out_fd = c->in_fd = -1;
	c->wake[0] = c->wake[1] = -1;
	atomic_init(&c->stopping, false);
	/* A console reader that went away must not kill the VM. */
	signal(SIGPIPE, SIG_IGN);

	if (strcmp(spec, "none") == 0)
		return 0;
	if (strncmp(spec, "file:", 5) == 0) {
		if (spec[5] == '\0') {
			snprintf(err, errlen, "--console file: needs a path");
			return -1;
		}
		c->out_fd = open(spec + 5, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (c->out_fd < 0) {
			snprintf(err, errlen, "--console %s: %s", spec, strerror(errno));
			return -1;
		}
		c->owns_out = true;
		return 0;
	}
	if (strcmp(spec, "stdio") != 0) {
		snprintf(err, errlen, "--console '%s': expected stdio, none or file:PATH", spec);
		return -1;
	}
	c->out_fd = STDOUT_FILENO;
	c->in_fd = STDIN_FILENO;
	if (isatty(STDIN_FILENO)) {
		if (tty_make_raw() < 0) {
			snprintf(err, errlen, "cannot put the terminal in raw mode: %s", strerror(errno));
			return -1;
		}
		c->escapes = true;
	}
	return 0;
}

static void console_write(void *ctx, const uint8_t *buf, size_t len)
{
	struct console *c = ctx;

	while (len > 0 && c->out_fd >= 0) {
		ssize_t n = write(c->out_fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* reader gone or disk full: drop, never stall the vCPU */
		buf += n;
		len -= (size_t)n;
	}
}

struct chardev_out console_chardev(struct console *c)
{
	return (struct chardev_out){ .write = console_write, .ctx = c };
}

/* Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A, as in QEMU and screen.
 * Returns the number of bytes left in buf for the guest; sets *quit. */
static size_t filter_escapes(struct console *c, uint8_t *buf, size_t n, bool *after_ctrl_a, bool *quit)
{
	size_t out = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t ch = buf[i];
		if (*after_ctrl_a) {
			*after_ctrl_a = false;
			if (ch == 'x' || ch == 'X') {
				*quit = true;
				return out;
			}
			if (ch == CTRL_A)
				buf[out++] = CTRL_A;
			continue;
		}
		if (c->escapes && ch == CTRL_A) {
			*after_ctrl_a = true;
			continue;
		}
		buf[out++] = ch;
	}
	return out;
}

/* Feeds `len` bytes into the device, waiting for room; false if stopping. */
static bool feed(struct console *c, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		if (atomic_load(&c->stopping))
			return false;
		size_t n = c->sink.push(c->sink.dev, buf, len);
		buf += n;
		len -= n;
		if (len > 0)
			c->sink.wait_room(c->sink.dev, 100);
	}
	return true;
}

static void *input_thread(void *arg)
{
	struct console *c = arg;
	uint8_t buf[4096];
	bool after_ctrl_a = false;

	seccomp_enter(SC_CONSOLE);
	for (;;) {
		struct pollfd p[2] = { { .fd = c->in_fd, .events = POLLIN }, { .fd = c->wake[0], .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents || atomic_load(&c->stopping))
			break;
		ssize_t n = read(c->in_fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break; /* EOF: the guest just gets no more input */
		bool quit = false;
		size_t keep = filter_escapes(c, buf, (size_t)n, &after_ctrl_a, &quit);
		if (!feed(c, buf, keep))
			break;
		if (quit) {
			c->sink.quit(c->sink.quit_ctx);
			break;
		}
	}
	return NULL;
}

int console_start_input(struct console *c, const struct console_sink *sink)
{
	if (c->in_fd < 0)
		return 0;
	c->sink = *sink;
	if (pipe2(c->wake, O_CLOEXEC) < 0)
		return -1;
	if (pthread_create(&c->thread, NULL, input_thread, c) != 0)
		return -1;
	c->thread_started = true;
	return 0;
}

void console_close(struct console *c)
{
	atomic_store(&c->stopping, true);
	if (c->thread_started) {
		if (write(c->wake[1], "x", 1) < 0) {
			/* the thread still sees `stopping` within its poll period */
		}
		pthread_join(c->thread, NULL);
		c->thread_started = false;
	}
	for (int i = 0; i < 2; i++)
		if (c->wake[i] >= 0) {
			close(c->wake[i]);
			c->wake[i] = -1;
		}
	if (c->owns_out && c->out_fd >= 0) {
		close(c->out_fd);
		c->owns_out = false;
	}
	c->out_fd = -1;
	tty_restore();
}
