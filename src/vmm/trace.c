/* The trace and audit writer (vmm/trace.h): a drain thread over the event
 * sink, two outputs each with its own buffer and one write() per batch. */
#define _GNU_SOURCE
#include "vmm/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/devreq.h"
#include "core/event_json.h"
#include "core/errmsg.h"
#include "core/exit.h"
#include "core/policy.h"
#include "host/seccomp.h"

#define OUT_BUF (256 * 1024)
#define LINE_MAX_LEN 2048 /* one record's line, at most (two escaped ids of 128 characters fit) */
#define TICK_MS 10
#define DRAIN_EVERY_MS 50

struct out {
	const char *what; /* "trace", "audit" */
	int fd;           /* -1: closed */
	bool own;         /* we close it */
	char path[4096];
	char *buf;
	size_t len;
	uint64_t nrec; /* records in buf */
	uint64_t lines, failed;
	uint64_t bytes, max; /* written to this file, and its cap (0: none) */
	bool warned;
};

struct vtrace {
	struct evsink *sink;
	char vm_id[80];
	int64_t wall0_s; /* wall time at t = 0 */
	long wall0_ns;
	pthread_mutex_t lock; /* the outputs, and the drain */
	pthread_cond_t cond;
	pthread_t thread;
	bool thread_started, stopping, stopped;
	struct out trace, audit;
};

/* --- outputs ------------------------------------------------------------ */

/* The batch does not reach the file: its records are counted, said once. */
static void out_drop(struct out *o, const char *why)
{
	if (!o->warned)
		fprintf(stderr, "vigil: %s %s: %s: records are dropped and counted\n", o->what, o->path, why);
	o->warned = true;
	o->failed += o->nrec;
	o->lines -= o->nrec;
}

static void out_flush(struct out *o)
{
	size_t done = 0;
	/* A guest can have records made without end (an audit of what it
	 * sweeps): the file stops at its cap, the rest is counted. */
	if (o->fd >= 0 && o->own && o->max && o->len > o->max - (o->bytes < o->max ? o->bytes : o->max)) {
		char why[80];
		snprintf(why, sizeof(why), "reached its cap of %llu bytes (--log-max)", (unsigned long long)o->max);
		out_drop(o, why);
		done = o->len;
	}
	while (o->fd >= 0 && done < o->len) {
		ssize_t n = write(o->fd, o->buf + done, o->len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* What did not reach the file is counted, never retried forever. */
			char why[160];
			snprintf(why, sizeof(why), "cannot write (%s)", n < 0 ? strerror(errno) : "short write");
			out_drop(o, why);
			break;
		}
		done += (size_t)n;
		o->bytes += (uint64_t)n;
	}
	o->len = 0;
	o->nrec = 0;
}

static void out_close(struct out *o)
{
	out_flush(o);
	if (o->own && o->fd >= 0)
		close(o->fd);
	o->fd = -1;
	o->own = false;
	o->path[0] = '\0';
}

static int out_open(struct out *o, const struct out *other, const char *path, bool append, char *err,
		    size_t errlen)
{
	int fd;
	bool own = strcmp(path, "-") != 0;
	if (strlen(path) >= sizeof(o->path))
		return errmsg(err, errlen, "%s: path is too long", o->what);
	struct stat a, b;
	if (own && other->fd >= 0 && other->own && stat(path, &a) == 0 && S_ISREG(a.st_mode) &&
	    fstat(other->fd, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		return errmsg(err, errlen, "%s '%s': the %s is written there already", o->what, path, other->what);
	if (!own)
		fd = STDERR_FILENO;
	else if ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644)) < 0)
		return errmsg(err, errlen, "%s '%s': %s", o->what, path, strerror(errno));
	out_close(o);
	o->fd = fd;
	o->own = own;
	o->warned = false;
	/* An audit file is appended to: what it holds counts toward its cap. */
	struct stat st;
	o->bytes = own && append && fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	strcpy(o->path, path);
	return 0;
}

/* Room for one more line; else the batch goes out first. */
static char *out_reserve(struct out *o)
{
	if (OUT_BUF - o->len < LINE_MAX_LEN)
		out_flush(o);
	return o->buf + o->len;
}

static void out_commit(struct out *o, size_t n)
{
	o->len += n;
	o->nrec++;
	o->lines++;
}

/* --- the drain ------------------------------------------------------------ */

/* The record formatted into the batch, and its newline. */
static void commit_line(struct out *o, char *p, size_t n)
{
	p[n++] = '\n';
	out_commit(o, n);
}

static struct ev_json_clock audit_clock(const struct vtrace *t)
{
	return (struct ev_json_clock){ .wall0_s = t->wall0_s, .wall0_ns = (uint64_t)t->wall0_ns, .vm_id = t->vm_id };
}

static void on_record(void *ctx, const struct vevent *e)
{
	struct vtrace *t = ctx;
	if (e->dest & EV_TO_TRACE && t->trace.fd >= 0) {
		char *p = out_reserve(&t->trace);
		commit_line(&t->trace, p, ev_json_trace(p, LINE_MAX_LEN - 1, e));
	}
	if (e->dest & EV_TO_AUDIT && t->audit.fd >= 0) {
		struct ev_json_clock c = audit_clock(t);
		char *p = out_reserve(&t->audit);
		commit_line(&t->audit, p, ev_json_audit(p, LINE_MAX_LEN - 1, &c, e));
	}
}

static void on_lost(void *ctx, uint64_t now, const char *ring, unsigned dest, uint64_t n)
{
	struct vtrace *t = ctx;
	if (dest & EV_TO_TRACE && t->trace.fd >= 0) {
		char *p = out_reserve(&t->trace);
		commit_line(&t->trace, p, ev_json_lost(p, LINE_MAX_LEN - 1, NULL, now, ring, n));
	}
	if (dest & EV_TO_AUDIT && t->audit.fd >= 0) {
		struct ev_json_clock c = audit_clock(t);
		char *p = out_reserve(&t->audit);
		commit_line(&t->audit, p, ev_json_lost(p, LINE_MAX_LEN - 1, &c, now, ring, n));
	}
}

static const struct ev_drain_ops drain_ops = { .record = on_record, .lost = on_lost };

/* With the lock held. */
static void drain_locked(struct vtrace *t, bool final)
{
	if (t->sink)
		ev_drain(t->sink, final, &drain_ops, t);
	out_flush(&t->trace);
	out_flush(&t->audit);
}

static void *drain_thread(void *arg)
{
	struct vtrace *t = arg;
	unsigned ticks = 0;

	seccomp_enter(SC_TRACE);
	pthread_mutex_lock(&t->lock);
	while (!t->stopping) {
		if (!ev_trace_on(t->sink) && !ev_audit_on(t->sink) && t->trace.fd < 0 && t->audit.fd < 0) {
			pthread_cond_wait(&t->cond, &t->lock);
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&t->cond, &t->lock, &ts);
		if (++ticks >= DRAIN_EVERY_MS / TICK_MS || ev_sink_needs_drain(t->sink)) {
			drain_locked(t, false);
			ticks = 0;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

static unsigned ring_size_from_env(void)
{
	const char *s = getenv("VIGIL_TRACE_RING");
	char *end;
	if (!s)
		return 0;
	unsigned long v = strtoul(s, &end, 0);
	if (*end || v < 2 || v > (1u << 20) || (v & (v - 1)))
		return 0;
	return (unsigned)v;
}

struct vtrace *vtrace_new(const char *vm_id, struct vclock clock, char *err, size_t errlen)
{
	struct vtrace *t = calloc(1, sizeof(*t));
	struct evsink_config c = { .clock = clock, .ring_size = ring_size_from_env() };
	if (!t)
		return errmsg(err, errlen, "out of memory"), NULL;
	t->trace = (struct out){ .what = "trace", .fd = -1, .buf = malloc(OUT_BUF), .max = VTRACE_MAX_DEFAULT };
	t->audit = (struct out){ .what = "audit", .fd = -1, .buf = malloc(OUT_BUF), .max = VTRACE_MAX_DEFAULT };
	snprintf(t->vm_id, sizeof(t->vm_id), "%s", vm_id);
	t->sink = ev_sink_new(&c);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&t->lock, NULL);
	if (!t->sink || !t->trace.buf || !t->audit.buf) {
		vtrace_free(t);
		return errmsg(err, errlen, "out of memory"), NULL;
	}
	vtrace_mark_start(t);
	return t;
}

/* The drain thread, started with the first trace or audit file: a VM that
 * never has one (most) pays neither the thread nor its filter at start-up.
 * Started after the control thread's filter, it carries that list too,
 * which holds everything the trace list does. With the lock held. */
static int start_drain(struct vtrace *t, char *err, size_t errlen)
{
	if (t->thread_started)
		return 0;
	if (pthread_create(&t->thread, NULL, drain_thread, t) != 0)
		return errmsg(err, errlen, "cannot start the trace thread");
	t->thread_started = true;
	return 0;
}

struct evsink *vtrace_sink(struct vtrace *t)
{
	return t ? t->sink : NULL;
}

void vtrace_mark_start(struct vtrace *t)
{
	struct timespec w;
	clock_gettime(CLOCK_REALTIME, &w);
	pthread_mutex_lock(&t->lock);
	ev_sink_mark_start(t->sink);
	t->wall0_s = (int64_t)w.tv_sec;
	t->wall0_ns = w.tv_nsec;
	pthread_mutex_unlock(&t->lock);
}

int vtrace_set_trace(struct vtrace *t, const char *path, char *err, size_t errlen)
{
	int r = 0;
	pthread_mutex_lock(&t->lock);
	if (!path) {
		/* What was queued before the stop still reaches the old file. */
		ev_set_trace(t->sink, false);
		drain_locked(t, false);
		out_close(&t->trace);
	} else {
		drain_locked(t, false);
		r = start_drain(t, err, errlen);
		if (r == 0)
			r = out_open(&t->trace, &t->audit, path, false, err, errlen);
		if (r == 0)
			ev_set_trace(t->sink, true);
	}
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	return r;
}

int vtrace_set_filter(struct vtrace *t, const char *spec, char *err, size_t errlen)
{
	struct evfilter f;
	if (trace_filter_parse(spec, &f, err, errlen) < 0)
		return -1;
	bool none = !spec || !*spec;
	if (ev_set_filter(t->sink, none ? NULL : &f) < 0)
		return errmsg(err, errlen, "filter: changed too often (at most %d times for one VM)", EVF_MAX_PUBLISH);
	return 0;
}

int vtrace_set_audit(struct vtrace *t, const char *path, char *err, size_t errlen)
{
	int r = 0;
	pthread_mutex_lock(&t->lock);
	if (!path || !*path) {
		ev_set_audit(t->sink, false);
		/* Every coalesced record still counting goes to the old log. */
		drain_locked(t, true);
		out_close(&t->audit);
	} else {
		drain_locked(t, false);
		r = start_drain(t, err, errlen);
		if (r == 0)
			r = out_open(&t->audit, &t->trace, path, true, err, errlen);
		if (r == 0)
			ev_set_audit(t->sink, true);
	}
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	return r;
}

bool vtrace_tracing(const struct vtrace *t)
{
	return t && ev_trace_on(t->sink);
}

void vtrace_set_max(struct vtrace *t, uint64_t bytes)
{
	pthread_mutex_lock(&t->lock);
	t->trace.max = t->audit.max = bytes ? bytes : VTRACE_MAX_DEFAULT;
	pthread_mutex_unlock(&t->lock);
}

void vtrace_stats(struct vtrace *t, struct vtrace_stats *st)
{
	struct ev_stats es;
	memset(st, 0, sizeof(*st));
	if (!t)
		return;
	ev_sink_stats(t->sink, &es);
	st->events = es.events;
	st->lost = es.lost;
	st->coalesced = es.coalesced;
	pthread_mutex_lock(&t->lock);
	st->trace_lines = t->trace.lines;
	st->audit_lines = t->audit.lines;
	st->trace_failed = t->trace.failed;
	st->audit_failed = t->audit.failed;
	pthread_mutex_unlock(&t->lock);
}

void vtrace_stop(struct vtrace *t)
{
	if (!t || t->stopped)
		return;
	pthread_mutex_lock(&t->lock);
	t->stopping = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	if (t->thread_started)
		pthread_join(t->thread, NULL);
	t->thread_started = false;
	/* No producer is left: the rings and every pending audit record. */
	drain_locked(t, true);
	if (t->trace.failed || t->audit.failed)
		fprintf(stderr, "vigil: trace: %" PRIu64 " trace and %" PRIu64 " audit records could not be written\n",
			t->trace.failed, t->audit.failed);
	out_close(&t->trace);
	out_close(&t->audit);
	t->stopped = true;
}

void vtrace_free(struct vtrace *t)
{
	if (!t)
		return;
	vtrace_stop(t);
	ev_sink_free(t->sink);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t->trace.buf);
	free(t->audit.buf);
	free(t);
}
