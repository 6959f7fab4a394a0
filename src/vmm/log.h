/* log — Firecracker's logger: lines "<time> [<instance id>:<thread>:<level>:<file>:<line>] message"
 * to a file (PUT /logger's log_path) or stderr, filtered by level, with the
 * level and the origin shown when asked (show_level, show_log_origin). The
 * API logs every request and its result through it. Any thread. */
#ifndef VIGIL_VMM_LOG_H
#define VIGIL_VMM_LOG_H

#include <stddef.h>

#include "vmm/config.h"

/* Applies a PUT /logger. 0 or -1 + err (the file cannot be opened). */
int vlog_configure(const struct vmcfg_logger *l, const char *instance_id, char *err, size_t errlen);
void vlog_close(void);

__attribute__((format(printf, 4, 5))) void vlog(enum vmcfg_log_level level, const char *file, int line,
						  const char *fmt, ...);

#define VLOG_ERROR(...) vlog(LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define VLOG_WARN(...) vlog(LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define VLOG_INFO(...) vlog(LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define VLOG_DEBUG(...) vlog(LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)

#endif
