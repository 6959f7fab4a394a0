#define _GNU_SOURCE
#include "host/console.h"
#include "host/fault.h"
#include "host/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

/* Installed with SA_RESETHAND: the default action is back without a call
 * to rt_sigaction, which a vCPU thread's seccomp list does not have. */
static void on_fatal_signal(int sig)
{
	tty_restore();
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
	struct sigaction sa = { .sa_handler = on_fatal_signal, .sa_flags = SA_RESETHAND };
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		sigaction(fatal[i], &sa, NULL);
	return 0;
}

int console_file_arg(const char *arg, char *path, size_t pathlen, uint64_t *max, char *err, size_t errlen)
{
	const char *opt = strstr(arg, ",max=");
	size_t plen = opt ? (size_t)(opt - arg) : strlen(arg);

	*max = CONSOLE_FILE_MAX;
	if (plen == 0) {
		snprintf(err, errlen, "console file: needs a path");
		return -1;
	}
	if (plen >= pathlen) {
		snprintf(err, errlen, "console file: path too long");
		return -1;
	}
	memcpy(path, arg, plen);
	path[plen] = '\0';
	if (!opt)
		return 0;
	const char *v = opt + 5;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	unsigned shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
	if (shift)
		end++;
	if (v[0] < '0' || v[0] > '9' || errno || *end || n == 0 || n > (UINT64_MAX >> shift)) {
		snprintf(err, errlen, "console file: max='%.32s': expected a size in bytes (K, M, G suffixes)", v);
		return -1;
	}
	*max = (uint64_t)n << shift;
	return 0;
}

static void *writer_thread(void *arg);

/* The output buffer and its writer; -1 with a reason. */
static int start_output(struct console *c, char *err, size_t errlen)
{
	c->ring = malloc(CONSOLE_OUT_BUF);
	c->out_stop = false;
	atomic_store(&c->out_abort, false);
	if (!c->ring || pthread_create(&c->out_thread, NULL, writer_thread, c) != 0) {
		snprintf(err, errlen, "console: cannot start its output");
		return -1;
	}
	c->out_started = true;
	return 0;
}

int console_open(struct console *c, const char *spec, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->out_fd = c->in_fd = -1;
	c->wake[0] = c->wake[1] = -1;
	c->out_max = UINT64_MAX;
	atomic_init(&c->stopping, false);
	atomic_init(&c->out_dropped, 0);
	atomic_init(&c->in_dropped, 0);
	pthread_mutex_init(&c->out_lock, NULL);
	pthread_cond_init(&c->out_cond, NULL);
	/* A console reader that went away must not kill the VM. */
	signal(SIGPIPE, SIG_IGN);

	if (strcmp(spec, "none") == 0)
		return 0;
	if (strncmp(spec, "file:", 5) == 0) {
		char path[PATH_MAX];
		if (console_file_arg(spec + 5, path, sizeof(path), &c->out_max, err, errlen) < 0)
			return -1;
		c->out_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (c->out_fd < 0) {
			snprintf(err, errlen, "--console file:%s: %s", path, strerror(errno));
			return -1;
		}
		c->owns_out = true;
		return start_output(c, err, errlen);
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
	return start_output(c, err, errlen);
}

/* From a vCPU (UART) or the event thread (virtio-console): never waits. */
static void console_write(void *ctx, const uint8_t *buf, size_t len)
{
	struct console *c = ctx;

	pthread_mutex_lock(&c->out_lock);
	/* Under the lock: the event thread may still serve virtio-console
	 * while the VM is torn down, and close frees the ring. (No output,
	 * or closed: nothing to do.) */
	if (!c->out_started || !c->ring) {
		pthread_mutex_unlock(&c->out_lock);
		return;
	}
	size_t room = CONSOLE_OUT_BUF - c->ring_len, n = len < room ? len : room;
	for (size_t i = 0, at = (c->ring_head + c->ring_len) % CONSOLE_OUT_BUF; i < n;) {
		size_t run = CONSOLE_OUT_BUF - at < n - i ? CONSOLE_OUT_BUF - at : n - i;
		memcpy(c->ring + at, buf + i, run);
		i += run;
		at = 0;
	}
	c->ring_len += n;
	if (n)
		pthread_cond_signal(&c->out_cond);
	pthread_mutex_unlock(&c->out_lock);
	if (n < len)
		atomic_fetch_add(&c->out_dropped, len - n);
}

/* Writes one chunk, waiting if the reader is slow: only this thread waits,
 * in slices of 100 ms, so that close() can tell it to give up on a reader
 * that never comes back (no pthread_cancel: a thread cancelled inside
 * write() is torn down in ways sanitizers and libc tolerate badly). A
 * chunk is at most a pipe's atomic size, so once poll says writable the
 * write does not block. */
static void write_out(struct console *c, const uint8_t *buf, size_t len)
{
	if (c->out_gone || c->out_written >= c->out_max) {
		atomic_fetch_add(&c->out_dropped, len);
		return;
	}
	if (len > c->out_max - c->out_written) {
		atomic_fetch_add(&c->out_dropped, len - (c->out_max - c->out_written));
		len = (size_t)(c->out_max - c->out_written);
	}
	while (len > 0) {
		struct pollfd pfd = { .fd = c->out_fd, .events = POLLOUT };
		int pr = poll(&pfd, 1, 100);
		if (atomic_load(&c->out_abort)) {
			atomic_fetch_add(&c->out_dropped, len);
			return;
		}
		if (pr == 0 || (pr < 0 && errno == EINTR))
			continue;
		ssize_t n = write(c->out_fd, buf, len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			/* Reader gone: said once, and no more writes. Another error
			 * (a full disk) is said once too, but each chunk tries again. */
			int e = n < 0 ? errno : EIO;
			atomic_fetch_add(&c->out_dropped, len);
			if (e == EPIPE) {
				c->out_gone = true;
				host_fault("console", "its output's reader went away", e,
					   "guest output is dropped from here on, the VM goes on");
			} else {
				host_fault("console", "its output cannot be written", e,
					   "guest output is dropped while it fails, the VM goes on");
			}
			return;
		}
		c->out_written += (uint64_t)n;
		buf += n;
		len -= (size_t)n;
	}
}

static void *writer_thread(void *arg)
{
	struct console *c = arg;
	uint8_t chunk[4096];

	seccomp_enter(SC_CONSOLE_OUT);
	pthread_mutex_lock(&c->out_lock);
	for (;;) {
		while (c->ring_len == 0 && !c->out_stop)
			pthread_cond_wait(&c->out_cond, &c->out_lock);
		if (c->ring_len == 0 || atomic_load(&c->out_abort)) {
			atomic_fetch_add(&c->out_dropped, c->ring_len);
			break;
		}
		size_t n = CONSOLE_OUT_BUF - c->ring_head;
		n = n < c->ring_len ? n : c->ring_len;
		n = n < sizeof(chunk) ? n : sizeof(chunk);
		memcpy(chunk, c->ring + c->ring_head, n);
		c->ring_head = (c->ring_head + n) % CONSOLE_OUT_BUF;
		c->ring_len -= n;
		pthread_mutex_unlock(&c->out_lock);
		write_out(c, chunk, n);
		pthread_mutex_lock(&c->out_lock);
	}
	pthread_mutex_unlock(&c->out_lock);
	return NULL;
}

/* At close: what is buffered gets a moment to reach a live reader; a
 * reader that never reads does not hold vigil up. */
static void stop_output(struct console *c)
{
	if (!c->out_started)
		return;
	pthread_mutex_lock(&c->out_lock);
	c->out_stop = true;
	pthread_cond_signal(&c->out_cond);
	pthread_mutex_unlock(&c->out_lock);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 200 * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	if (pthread_timedjoin_np(c->out_thread, NULL, &ts) != 0) {
		atomic_store(&c->out_abort, true); /* seen within one poll slice */
		pthread_join(c->out_thread, NULL);
	}
	pthread_mutex_lock(&c->out_lock);
	c->out_started = false;
	free(c->ring);
	c->ring = NULL;
	pthread_mutex_unlock(&c->out_lock);
	unsigned long lost = atomic_load(&c->out_dropped);
	if (lost)
		fprintf(stderr, "vigil: console: %lu bytes of guest output dropped (no reader, or past the cap)\n",
			lost);
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

/* Input is read as it arrives, whether or not the guest takes it, so a
 * Ctrl-A x typed behind text the guest never reads still quits; what the
 * device has no room for waits here (up to CONSOLE_IN_BUF: beyond, typed
 * bytes are dropped and counted). Without escapes (input is not a
 * terminal) nothing can quit, so input is simply read at the guest's pace. */
static void *input_thread(void *arg)
{
	struct console *c = arg;
	uint8_t *pend = malloc(CONSOLE_IN_BUF);
	uint8_t buf[4096];
	size_t plen = 0;
	bool after_ctrl_a = false, eof = false;

	seccomp_enter(SC_CONSOLE);
	while (pend && !atomic_load(&c->stopping)) {
		if (plen) {
			size_t n = c->sink.push(c->sink.dev, pend, plen);
			memmove(pend, pend + n, plen - n);
			plen -= n;
		}
		if (eof && !plen)
			break; /* all of it delivered: the guest just gets no more input */
		bool want_in = !eof && (plen < CONSOLE_IN_BUF || c->escapes);
		struct pollfd p[2] = { { .fd = c->wake[0], .events = POLLIN },
				       { .fd = want_in ? c->in_fd : -1, .events = POLLIN } };
		/* Room in the device has no fd: look again soon while input waits. */
		if (poll(p, 2, plen ? 10 : -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents || atomic_load(&c->stopping))
			break;
		if (!p[1].revents)
			continue;
		ssize_t n = read(c->in_fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			eof = true; /* what waits still goes in */
			continue;
		}
		bool quit = false;
		size_t keep = filter_escapes(c, buf, (size_t)n, &after_ctrl_a, &quit);
		if (quit) {
			c->sink.quit(c->sink.quit_ctx);
			break;
		}
		size_t fits = CONSOLE_IN_BUF - plen < keep ? CONSOLE_IN_BUF - plen : keep;
		memcpy(pend + plen, buf, fits);
		plen += fits;
		if (fits < keep)
			atomic_fetch_add(&c->in_dropped, keep - fits);
	}
	free(pend);
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
	stop_output(c);
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

void console_report(const struct console *c, FILE *out)
{
	if (c->out_fd < 0 && !c->out_written && !atomic_load(&c->out_dropped))
		return;
	fprintf(out, "console: written=%" PRIu64 " dropped=%lu%s\n", c->out_written,
		(unsigned long)atomic_load(&c->out_dropped), c->out_gone ? " reader_gone=1" : "");
}
