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

static void out_flush(struct out *o)
{
	size_t done = 0;
	while (o->fd >= 0 && done < o->len) {
		ssize_t n = write(o->fd, o->buf + done, o->len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* What did not reach the file is counted, never retried forever. */
			if (!o->warned)
				fprintf(stderr, "vigil: %s %s: cannot write (%s): records are dropped and counted\n",
					o->what, o->path, n < 0 ? strerror(errno) : "short write");
			o->warned = true;
			o->failed += o->nrec;
			o->lines -= o->nrec;
			break;
		}
		done += (size_t)n;
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

/* --- formatting ----------------------------------------------------------- */

struct line {
	char *p;
	size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void put(struct line *l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(l->p + l->len, l->cap - l->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->len = l->len + (size_t)n < l->cap ? l->len + (size_t)n : l->cap - 1;
}

/* A JSON string (ids are short; anything odd is escaped). */
static void put_str(struct line *l, const char *key, const char *s)
{
	put(l, ",\"%s\":", key);
	if (!s) {
		put(l, "null");
		return;
	}
	put(l, "\"");
	for (size_t i = 0; s[i] && i < 128; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			put(l, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			put(l, "\\u%04x", c);
		else
			put(l, "%c", c);
	}
	put(l, "\"");
}

static void put_hex(struct line *l, const char *key, uint64_t v)
{
	put(l, ",\"%s\":\"0x%" PRIx64 "\"", key, v);
}

static const char *req_name(unsigned k)
{
	static const char *const names[] = { "read", "write", "flush", "other" };
	return k < 4 ? names[k] : "other";
}

static void put_ip(struct line *l, const char *key, uint64_t ip)
{
	put(l, ",\"%s\":\"%u.%u.%u.%u\"", key, (unsigned)(ip >> 24) & 255, (unsigned)(ip >> 16) & 255,
	    (unsigned)(ip >> 8) & 255, (unsigned)ip & 255);
}

static const char *proto_name(unsigned p)
{
	static const char *const names[] = { "any", "tcp", "udp", "icmp" };
	return p < 4 ? names[p] : "any";
}

static const char *vsock_dir_name(unsigned d)
{
	return d == POL_VSOCK_H2G ? "host-to-guest" : "guest-to-host";
}

static void put_decision(struct line *l, const struct vevent *e)
{
	put(l, ",\"verdict\":\"%s\"", policy_verdict_name(e->verdict));
	if (e->has_rule)
		put_str(l, "rule", e->rule);
	if (!e->enforced)
		put(l, ",\"enforced\":false");
}

static size_t format_trace(char *buf, const struct vevent *e)
{
	struct line l = { buf, 0, LINE_MAX_LEN };
	put(&l, "{\"t\":%" PRIu64, e->t);
	if (e->vcpu != EV_NO_VCPU)
		put(&l, ",\"vcpu\":%u", (unsigned)e->vcpu);
	put(&l, ",\"kind\":\"%s\"", ev_kind_name(e->kind));
	switch (e->kind) {
	case EV_PIO:
	case EV_MMIO:
	case EV_MSR:
		put_hex(&l, "addr", e->addr);
		put(&l, ",\"len\":%u,\"write\":%s", (unsigned)e->len, e->write ? "true" : "false");
		put_hex(&l, "value", e->value);
		if (e->kind != EV_MSR)
			put_str(&l, "device", e->device);
		put_decision(&l, e);
		break;
	case EV_CPUID:
		put_hex(&l, "addr", e->addr);
		put_hex(&l, "subleaf", e->extra);
		put_decision(&l, e);
		break;
	case EV_DEVREQ:
		put_str(&l, "device", e->device);
		put(&l, ",\"request\":\"%s\"", req_name(e->write));
		if (e->addr != EV_NO_SECTOR)
			put(&l, ",\"sector\":%" PRIu64 ",\"sectors\":%" PRIu64, e->addr, e->extra);
		put(&l, ",\"bytes\":%" PRIu64, e->value);
		put_decision(&l, e);
		break;
	case EV_NET:
		put_str(&l, "device", e->device);
		put(&l, ",\"direction\":\"%s\",\"proto\":\"%s\"", e->write ? "ingress" : "egress", proto_name(e->proto));
		put_ip(&l, "dst", e->addr);
		put(&l, ",\"port\":%" PRIu64, e->value);
		put_decision(&l, e);
		break;
	case EV_VSOCK:
		put(&l, ",\"port\":%" PRIu64 ",\"direction\":\"%s\"", e->addr, vsock_dir_name(e->proto));
		if (e->verdict == POLICY_REDIRECT)
			put(&l, ",\"to_port\":%" PRIu64, e->extra);
		put_decision(&l, e);
		break;
	case EV_RTC:
		put(&l, ",\"value\":%" PRId64 ",\"offset_s\":%" PRId64, (int64_t)e->addr, (int64_t)e->extra);
		put_decision(&l, e);
		break;
	case EV_SYSTEM_EVENT:
		put_hex(&l, "value", e->value);
		break;
	case EV_DEBUG:
		put_hex(&l, "addr", e->addr);
		put_hex(&l, "value", e->extra);
		break;
	case EV_ERROR:
		put_hex(&l, "value", e->extra);
		break;
	default:
		break;
	}
	put(&l, "}\n");
	return l.len;
}

static void put_ts(struct line *l, const struct vtrace *t, uint64_t ns)
{
	uint64_t total = (uint64_t)t->wall0_ns + ns;
	time_t s = (time_t)(t->wall0_s + (int64_t)(total / 1000000000u));
	struct tm tm;
	gmtime_r(&s, &tm);
	put(l, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%09uZ\"", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(total % 1000000000u));
	put_str(l, "vm", t->vm_id);
}

static size_t format_audit(const struct vtrace *t, char *buf, const struct vevent *e)
{
	struct line l = { buf, 0, LINE_MAX_LEN };
	put_ts(&l, t, e->t);
	put_str(&l, "rule", e->has_rule ? e->rule : "default");
	put_str(&l, "resource", e->resource < POL_RES__COUNT ? policy_resource_name(e->resource) : "device");
	put(&l, ",\"verdict\":\"%s\",\"enforced\":%s", policy_verdict_name(e->verdict),
	    e->enforced ? "true" : "false");
	if (e->vcpu != EV_NO_VCPU)
		put(&l, ",\"vcpu\":%u", (unsigned)e->vcpu);
	const char *access = e->write ? "write" : "read";
	switch (e->kind) {
	case EV_PIO:
	case EV_MMIO:
	case EV_MSR:
		put_hex(&l, e->kind == EV_PIO ? "port" : e->kind == EV_MMIO ? "address" : "msr", e->addr);
		put(&l, ",\"access\":\"%s\"", access);
		put_hex(&l, "value", e->value);
		if (e->kind != EV_MSR)
			put_str(&l, "device", e->device);
		break;
	case EV_CPUID:
		put_hex(&l, "leaf", e->addr);
		put_hex(&l, "subleaf", e->extra);
		break;
	case EV_DEVREQ:
		put_str(&l, e->resource == POL_RES_DISK ? "drive" : "device", e->device);
		if (e->addr != EV_NO_SECTOR)
			put(&l, ",\"sector\":%" PRIu64 ",\"sectors\":%" PRIu64, e->addr, e->extra);
		put(&l, ",\"access\":\"%s\",\"bytes\":%" PRIu64, req_name(e->write), e->value);
		break;
	case EV_NET:
		put_str(&l, "iface", e->device);
		put(&l, ",\"direction\":\"%s\",\"proto\":\"%s\"", e->write ? "ingress" : "egress", proto_name(e->proto));
		put_ip(&l, "dst", e->addr);
		put(&l, ",\"port\":%" PRIu64, e->value);
		break;
	case EV_VSOCK:
		put(&l, ",\"port\":%" PRIu64 ",\"direction\":\"%s\"", e->addr, vsock_dir_name(e->proto));
		if (e->verdict == POLICY_REDIRECT)
			put(&l, ",\"to_port\":%" PRIu64, e->extra);
		break;
	case EV_RTC:
		put(&l, ",\"offset_s\":%" PRId64, (int64_t)e->extra);
		break;
	default:
		break;
	}
	put(&l, ",\"count\":%u}\n", (unsigned)e->count);
	return l.len;
}

/* --- the drain ------------------------------------------------------------ */

static void on_record(void *ctx, const struct vevent *e)
{
	struct vtrace *t = ctx;
	if (e->dest & EV_TO_TRACE && t->trace.fd >= 0) {
		char *p = out_reserve(&t->trace);
		out_commit(&t->trace, format_trace(p, e));
	}
	if (e->dest & EV_TO_AUDIT && t->audit.fd >= 0) {
		char *p = out_reserve(&t->audit);
		out_commit(&t->audit, format_audit(t, p, e));
	}
}

static void on_lost(void *ctx, uint64_t now, const char *ring, unsigned dest, uint64_t n)
{
	struct vtrace *t = ctx;
	struct line l;
	if (dest & EV_TO_TRACE && t->trace.fd >= 0) {
		l = (struct line){ out_reserve(&t->trace), 0, LINE_MAX_LEN };
		put(&l, "{\"t\":%" PRIu64 ",\"kind\":\"lost\"", now);
		put_str(&l, "ring", ring);
		put(&l, ",\"count\":%" PRIu64 "}\n", n);
		out_commit(&t->trace, l.len);
	}
	if (dest & EV_TO_AUDIT && t->audit.fd >= 0) {
		l = (struct line){ out_reserve(&t->audit), 0, LINE_MAX_LEN };
		put_ts(&l, t, now);
		put(&l, ",\"kind\":\"lost\"");
		put_str(&l, "ring", ring);
		put(&l, ",\"count\":%" PRIu64 "}\n", n);
		out_commit(&t->audit, l.len);
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
	t->trace = (struct out){ .what = "trace", .fd = -1, .buf = malloc(OUT_BUF) };
	t->audit = (struct out){ .what = "audit", .fd = -1, .buf = malloc(OUT_BUF) };
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
