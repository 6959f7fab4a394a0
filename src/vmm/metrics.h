/* metrics — the monitor's figures and the VMM's own, in the formats peers'
 * tools read: GET /vigil/stats (vigil's JSON), GET /metrics (Prometheus text
 * exposition format 0.0.4) and Firecracker's metrics file (one JSON object
 * per line, counters as deltas since the previous line). Counts of API
 * requests are kept here (one VMM per process). */
#ifndef VIGIL_VMM_METRICS_H
#define VIGIL_VMM_METRICS_H

#include <stdbool.h>
#include <stddef.h>

struct vmm;

/* One API request, by Firecracker's metric group ("actions", "boot_source",
 * "drive", "logger", "machine_cfg", "metrics", "network", "vsock", "entropy",
 * "vm", "instance_info", "vmm_version", "vigil", ...) and method. Any thread. */
void metrics_count_api(const char *method, const char *group, bool ok);

/* Bodies for GET /vigil/stats and GET /metrics: malloc'd NUL-terminated
 * text, NULL when out of memory. Control thread. */
char *metrics_stats_json(struct vmm *m);
char *metrics_prometheus(struct vmm *m);

/* PUT /metrics: the file Firecracker-format lines go to (opened for append,
 * a FIFO works too). 0 or -1 + err. */
struct fc_metrics;
struct fc_metrics *fc_metrics_open(const char *path, char *err, size_t errlen);
/* Writes one line (FlushMetrics, and every 60 s). Control thread. */
int fc_metrics_flush(struct fc_metrics *w, struct vmm *m);
void fc_metrics_close(struct fc_metrics *w);

#endif
