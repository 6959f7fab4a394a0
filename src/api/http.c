/* http — libmicrohttpd on a Unix socket for the API (see http.h). Bytes from
 * the socket are hostile: the body size is checked against Content-Length
 * up front and against the running total, a silent client is dropped after
 * API_CONN_TIMEOUT_S, and connections are polled with epoll (or poll), so
 * neither many clients nor a slow one stops the others being served. */
#include "api/http.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/mhd.h"
#include "api/routes.h"
#include "core/errmsg.h"
#include "host/seccomp.h"
#include "vmm/log.h"
#include "vmm/metrics.h"
#include "vmm/policy_json.h"
#include "vmm/vmm.h"

#define API_CONN_TIMEOUT_S 10u
#define API_CONN_LIMIT	   1024u

struct request {
	char *body;
	size_t len;
	size_t seen; /* bytes received, kept or not */
	size_t limit; /* API_MAX_BODY; a whole policy may be larger */
	bool too_big;
	bool answered; /* an early error response is queued */
};

struct job {
	struct vmm *m;
	const char *method, *url;
	const char *body;
	size_t len;
	struct api_response resp;
};

static struct MHD_Daemon *daemon_;
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

/* Runs on the control thread: route, then count, as Firecracker's VMM
 * thread answers one request at a time. */
static void run_job(void *arg)
{
	struct job *j = arg;

	api_handle(j->m, j->method, j->url, j->body, j->len, &j->resp);
	vmm_count_api_request(j->m);
}

/* Log text from the client printable and bounded. */
static void printable(char *dst, size_t size, const char *s, size_t len)
{
	size_t i;
	for (i = 0; i < len && i + 1 < size; i++)
		dst[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	dst[i] = 0;
}

static enum MHD_Result send_resp(struct MHD_Connection *conn, int status, char *body, size_t len,
				 const char *type)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (body)
		r = mhd.create_response_from_buffer(len ? len : strlen(body), body, MHD_RESPMEM_MUST_FREE);
	else
		r = mhd.create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	mhd.add_response_header(r, "Server", "Firecracker API");
	mhd.add_response_header(r, "Content-Type", type ? type : "application/json");
	ret = mhd.queue_response(conn, (unsigned)status, r);
	mhd.destroy_response(r);
	return ret;
}

static enum MHD_Result send_fault(struct MHD_Connection *conn, const char *method, const char *msg)
{
	struct api_response out = {0};

	api_fault(&out, msg);
	VLOG_INFO("The API server refused a %.16s request: %s", method, msg);
	metrics_count_api(method, "invalid", false);
	return send_resp(conn, out.status, out.body, out.len, out.content_type);
}

static enum MHD_Result too_big(struct MHD_Connection *conn, struct request *rq, const char *method,
			       size_t size)
{
	char msg[160];

	rq->too_big = true;
	snprintf(msg, sizeof(msg),
		 "Request payload with size %zu is larger than the limit of %zu allowed by server.", size,
		 rq->limit);
	/* libmicrohttpd takes an early answer only before the body starts
	 * (a declared Content-Length); in the middle of a chunked body the
	 * rest is read and dropped, and the answer sent at its end. */
	rq->answered = send_fault(conn, method, msg) == MHD_YES;
	return MHD_YES;
}

/* libmicrohttpd hands the query over decoded, key by key: it goes back
 * together as "k=v&k=v" for the router, anything but [A-Za-z0-9._~-]
 * percent-encoded again so that a decoded '&' or '=' cannot forge a key. */
struct query {
	char buf[512];
	size_t len;
	bool overflow;
};

static void query_put(struct query *q, const char *s)
{
	for (; *s; s++) {
		char enc[4];
		unsigned char c = (unsigned char)*s;
		bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			     strchr("._~-", c);
		int n = plain ? (enc[0] = (char)c, 1) : snprintf(enc, sizeof(enc), "%%%02X", c);
		if (q->len + (size_t)n >= sizeof(q->buf)) {
			q->overflow = true;
			return;
		}
		memcpy(q->buf + q->len, enc, (size_t)n);
		q->len += (size_t)n;
	}
	q->buf[q->len] = 0;
}

static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct query *q = cls;
	if (q->len && q->len + 1 < sizeof(q->buf))
		q->buf[q->len++] = '&', q->buf[q->len] = 0;
	query_put(q, key ? key : "");
	if (value) {
		if (q->len + 1 < sizeof(q->buf))
			q->buf[q->len++] = '=', q->buf[q->len] = 0;
		query_put(q, value);
	}
	return q->overflow ? MHD_NO : MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct request *rq = *con_cls;
	char logbody[256], logurl[128];

	if (!rq) {
		const char *cl =
		    mhd.lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (!(rq = calloc(1, sizeof(*rq))))
			return MHD_NO;
		*con_cls = rq;
		rq->limit = strcmp(url, "/policy") == 0 ? POLICY_FILE_MAX : API_MAX_BODY;
		if (cl) {
			char *end;
			errno = 0;
			unsigned long long n = strtoull(cl, &end, 10);
			if (errno || end == cl || n > rq->limit)
				return too_big(conn, rq, method, errno ? SIZE_MAX : (size_t)n);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0; /* consumed, or discarded once too big */
		rq->seen = rq->seen + n < rq->seen ? SIZE_MAX : rq->seen + n;
		if (rq->too_big)
			return MHD_YES;
		if (n > rq->limit - rq->len)
			return too_big(conn, rq, method, rq->len + n);
		char *nb = realloc(rq->body, rq->len + n + 1);
		if (!nb)
			return MHD_NO;
		memcpy(nb + rq->len, upload_data, n);
		rq->body = nb;
		rq->len += n;
		rq->body[rq->len] = 0;
		return MHD_YES;
	}
	if (rq->answered)
		return MHD_YES;
	if (rq->too_big) {
		too_big(conn, rq, method, rq->seen);
		return rq->answered ? MHD_YES : MHD_NO;
	}

	printable(logurl, sizeof(logurl), url, strlen(url));
	printable(logbody, sizeof(logbody), rq->body ? rq->body : "", rq->len);
	VLOG_INFO("The API server received a %.16s request on \"%s\" with body \"%s\"%s.", method, logurl,
		  logbody, rq->len >= sizeof(logbody) ? "..." : "");

	struct query q = {.len = 0};
	char full[sizeof(q.buf) + 1024];
	mhd.get_connection_values(conn, MHD_GET_ARGUMENT_KIND, query_arg, &q);
	if (q.overflow || strlen(url) >= sizeof(full) - sizeof(q.buf) - 1)
		return send_fault(conn, method, "The request's URL is too long.");
	snprintf(full, sizeof(full), "%s%s%s", url, q.len ? "?" : "", q.buf);
	struct job j = {.m = cls, .method = method, .url = full, .body = rq->body, .len = rq->len};
	if (vmm_call(j.m, run_job, &j) < 0)
		return send_fault(conn, method, "The VMM is shutting down.");
	VLOG_INFO("The API server answered %.16s \"%s\" with %d%s%s", method, logurl, j.resp.status,
		  j.resp.status >= 300 && j.resp.body ? ": " : "",
		  j.resp.status >= 300 && j.resp.body ? j.resp.body : "");
	metrics_count_api(method, j.resp.group ? j.resp.group : "invalid", j.resp.status < 300);
	return send_resp(conn, j.resp.status, j.resp.body, j.resp.len, j.resp.content_type);
}

/* libmicrohttpd starts its thread without a hook: the thread confines
 * itself at its first connection, which api_server_start makes at once. */
static _Atomic bool api_confined;

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
			  enum MHD_ConnectionNotificationCode code)
{
	if (!atomic_load(&api_confined)) {
		seccomp_enter(SC_API);
		atomic_store(&api_confined, true);
	}
}

/* A connection of our own, closed once the HTTP thread has its filter:
 * the filter is in before the guest's first instruction. */
static void confine_api_thread(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
		for (int i = 0; i < 2000 && !atomic_load(&api_confined); i++)
			usleep(1000);
	if (fd >= 0)
		close(fd);
	if (!atomic_load(&api_confined) && seccomp_mode() == SECCOMP_MODE_ON) {
		fprintf(stderr, "vigil: seccomp: the API thread did not install its filter\n");
		_exit(1);
	}
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct request *rq = *con_cls;

	if (rq) {
		free(rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

/* Refuses to take over a path something else owns: a live API socket (two
 * VMMs on one socket) or a file that is not a socket at all. */
static int clear_path(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, live;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : errmsg(err, errlen, "--api-sock %s: %s", path, strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return errmsg(err, errlen, "--api-sock %s: exists and is not a socket", path);
	strcpy(a.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return errmsg(err, errlen, "socket: %s", strerror(errno));
	live = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	if (live)
		return errmsg(err, errlen, "--api-sock %s: another process is listening on it", path);
	if (unlink(path) < 0)
		return errmsg(err, errlen, "--api-sock %s: cannot remove the stale socket: %s", path,
			      strerror(errno));
	return 0;
}

static int listen_unix(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd;
	mode_t old;

	if (strlen(path) >= sizeof(a.sun_path))
		return errmsg(err, errlen, "--api-sock %s: path too long (at most %zu bytes)", path,
			      sizeof(a.sun_path) - 1);
	if (clear_path(path, err, errlen) < 0)
		return -1;
	/* Bound and listening under a temporary name, then renamed into place:
	 * a client that waits for the path to appear (as Firecracker's users'
	 * scripts do) never meets a socket that is not listening yet. */
	char tmp[sizeof(a.sun_path)];
	bool renamed = snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid()) < (int)sizeof(tmp);
	const char *at = renamed ? tmp : path;
	if (renamed)
		unlink(tmp);
	strcpy(a.sun_path, at);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
		return errmsg(err, errlen, "socket: %s", strerror(errno));
	/* The socket is the VMM's control: owner only from the first moment
	 * (umask), and again explicitly before anyone can connect. */
	old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&a, sizeof(a));
	umask(old);
	if (rc < 0 || chmod(at, 0600) < 0 || listen(fd, 128) < 0 || (renamed && rename(tmp, path) < 0)) {
		errmsg(err, errlen, "--api-sock %s: %s", path, strerror(errno));
		if (rc == 0)
			unlink(at);
		close(fd);
		return -1;
	}
	return fd;
}

int api_server_start(const char *path, struct vmm *m, char *err, size_t errlen)
{
	static const unsigned flags[] = {MHD_USE_EPOLL_INTERNAL_THREAD, MHD_USE_POLL_INTERNAL_THREAD};
	int fd;

	if (daemon_)
		return errmsg(err, errlen, "the API server is already running");
	if (mhd_load(err, errlen) < 0)
		return -1;
	if ((fd = listen_unix(path, err, errlen)) < 0)
		return -1;
	/* libmicrohttpd's thread inherits this thread's signal mask: with every
	 * signal blocked there, SIGTERM and friends go to the control loop
	 * (its handler or signalfd), never kill the process from the HTTP thread. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (size_t i = 0; i < 2 && !daemon_; i++)
		daemon_ = mhd.start_daemon(flags[i], 0, NULL, NULL, on_request, m, MHD_OPTION_LISTEN_SOCKET,
					   fd, MHD_OPTION_CONNECTION_TIMEOUT, API_CONN_TIMEOUT_S,
					   MHD_OPTION_CONNECTION_LIMIT, API_CONN_LIMIT,
					   MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
					   MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL, MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL); /* the caller's own mask is its business */
	if (!daemon_) {
		close(fd);
		unlink(path);
		return errmsg(err, errlen, "--api-sock %s: cannot start the HTTP server", path);
	}
	snprintf(sock_path, sizeof(sock_path), "%s", path);
	confine_api_thread(path);
	return 0;
}

void api_server_stop(void)
{
	if (!daemon_)
		return;
	mhd.stop_daemon(daemon_); /* closes the listening socket too */
	daemon_ = NULL;
	unlink(sock_path);
	sock_path[0] = 0;
}
