/* log — Firecracker's logger (vmm/log.h): lines
 * "<local time> [<instance id>:<thread>[:LEVEL][:file:line]] message" with
 * the time as %Y-%m-%dT%H:%M:%S.<nanoseconds>, as FC's logging.rs writes
 * them, to PUT /logger's log_path or to stderr. One lock and one write(2)
 * per line, so lines from the API, control and vCPU threads never mix. */
#define _GNU_SOURCE
#include "vmm/log.h"
#include "host/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1;				  /* -1: stderr */
/* Until PUT /logger (or the config file) says otherwise: warnings and errors
 * only, as Firecracker's docs/logger.md gives its default; a plain `vigil run`
 * then prints nothing of its own. */
static enum vmcfg_log_level log_level = LOG_WARN;
static bool log_show_level, log_show_origin;
static char log_module[64];
static char log_id[128] = "anonymous-instance";

int vlog_configure(const struct vmcfg_logger *l, const char *instance_id, char *err, size_t errlen)
{
	int fd = -1;
	if (l->log_path[0]) {
		/* FC's open_file_nonblock: a FIFO opens with no reader yet and a
		 * full one loses a line rather than stalling a vCPU. */
		fd = open(l->log_path, O_RDWR | O_NONBLOCK | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0) {
			snprintf(err, errlen, "Cannot open the log file %s: %s", l->log_path,
				 strerror(errno));
			return -1;
		}
	}
	pthread_mutex_lock(&log_lock);
	if (log_fd >= 0)
		close(log_fd);
	log_fd = fd;
	log_level = l->level;
	log_show_level = l->show_level;
	log_show_origin = l->show_log_origin;
	snprintf(log_module, sizeof(log_module), "%s", l->module);
	if (instance_id && *instance_id)
		snprintf(log_id, sizeof(log_id), "%s", instance_id);
	pthread_mutex_unlock(&log_lock);
	return 0;
}

void vlog_close(void)
{
	pthread_mutex_lock(&log_lock);
	if (log_fd >= 0)
		close(log_fd);
	log_fd = -1;
	pthread_mutex_unlock(&log_lock);
}

static const char *level_name(enum vmcfg_log_level l)
{
	/* Rust's log::Level as FC prints it. */
	switch (l) {
	case LOG_ERROR:
		return "ERROR";
	case LOG_WARN:
		return "WARN";
	case LOG_INFO:
		return "INFO";
	case LOG_DEBUG:
		return "DEBUG";
	case LOG_TRACE:
		return "TRACE";
	case LOG_OFF:
		break;
	}
	return "OFF";
}

static void thread_name(char *buf, size_t len)
{
	/* Rust names the main thread "main"; others carry the name vigil gave
	 * them (pthread_setname_np), "-" when unnamed, as FC. A filtered
	 * thread's name is known without prctl(PR_GET_NAME), which the vCPU
	 * list does not have. */
	const char *given = seccomp_thread_name();
	if (given) {
		snprintf(buf, len, "%s", given);
		return;
	}
	if ((pid_t)syscall(SYS_gettid) == getpid()) {
		snprintf(buf, len, "main");
		return;
	}
	if (pthread_getname_np(pthread_self(), buf, len) != 0 || !buf[0])
		snprintf(buf, len, "-");
}

void vlog(enum vmcfg_log_level level, const char *file, int line, const char *fmt, ...)
{
	char stamp[64], tname[32], head[512], small[1024];
	struct timespec ts;
	struct tm tm;

	pthread_mutex_lock(&log_lock);
	/* The module filter is a prefix of the source path ("src/api"). */
	bool on = level != LOG_OFF && level <= log_level &&
		  (!log_module[0] || (file && strncmp(file, log_module, strlen(log_module)) == 0));
	if (!on) {
		pthread_mutex_unlock(&log_lock);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + n, sizeof(stamp) - n, ".%09ld", ts.tv_nsec);
	thread_name(tname, sizeof(tname));
	int h = snprintf(head, sizeof(head), "%s [%s:%s", stamp, log_id, tname);
	if (log_show_level)
		h += snprintf(head + h, sizeof(head) - (size_t)h, ":%s", level_name(level));
	if (log_show_origin)
		h += snprintf(head + h, sizeof(head) - (size_t)h, ":%s:%d", file ? file : "unknown", line);
	if (h > (int)sizeof(head) - 3)
		h = (int)sizeof(head) - 3;
	h += snprintf(head + h, sizeof(head) - (size_t)h, "] ");

	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	char *msg = small;
	if (m >= (int)sizeof(small)) {
		msg = malloc((size_t)m + 1);
		if (msg) {
			va_start(ap, fmt);
			vsnprintf(msg, (size_t)m + 1, fmt, ap);
			va_end(ap);
		} else {
			msg = small; /* truncated rather than lost */
			m = (int)sizeof(small) - 1;
		}
	}
	if (m < 0)
		m = 0;
	size_t total = (size_t)h + (size_t)m + 1;
	char *out = malloc(total);
	if (out) {
		memcpy(out, head, (size_t)h);
		memcpy(out + h, msg, (size_t)m);
		out[total - 1] = '\n';
		/* One write(2): the line lands whole (O_APPEND file, or a pipe
		 * under PIPE_BUF); a full FIFO drops it, as FC counts a missed log. */
		ssize_t w = write(log_fd >= 0 ? log_fd : STDERR_FILENO, out, total);
		(void)w;
		free(out);
	}
	if (msg != small)
		free(msg);
	pthread_mutex_unlock(&log_lock);
}
