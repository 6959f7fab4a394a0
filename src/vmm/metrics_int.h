/* metrics_int — what the metrics files (metrics_api.c, metrics_json.c,
 * metrics_prom.c, metrics_fc.c) share: the API request table and the
 * process's own figures. Not for use outside src/vmm/metrics_*.c. */
#ifndef VIGIL_VMM_METRICS_INT_H
#define VIGIL_VMM_METRICS_INT_H

#include <stdbool.h>
#include <stdint.h>

/* One (method, group) pair seen by metrics_count_api(). */
struct api_count {
	const char *method; /* "GET", "PUT", "PATCH", ... */
	const char *group;  /* Firecracker's metric group ("actions", ...) */
	uint64_t count;	    /* requests, failed ones included */
	uint64_t fails;
};

/* Copies the table (at most max entries); returns how many. */
unsigned metrics_api_snapshot(struct api_count *out, unsigned max);
#define METRICS_API_MAX 64

/* Resident set size in bytes and thread count, from /proc/self; 0 when
 * /proc cannot be read. */
uint64_t metrics_rss_bytes(void);
uint64_t metrics_threads(void);

#endif
