/* metrics_api — counts of API requests by method and Firecracker metric
 * group (metrics_count_api), for Firecracker's metrics file and /metrics;
 * and the process figures /metrics reports. Called by the API server. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmm/metrics.h"
#include "vmm/metrics_int.h"

/* API requests are rare (one at a time, FC-style), so one lock is fine. */
static pthread_mutex_t api_lock = PTHREAD_MUTEX_INITIALIZER;
static struct api_count api_table[METRICS_API_MAX];
static char api_names[METRICS_API_MAX][2][24];
static unsigned api_n;

void metrics_count_api(const char *method, const char *group, bool ok)
{
	if (!method || !group)
		return;
	pthread_mutex_lock(&api_lock);
	unsigned i;
	for (i = 0; i < api_n; i++)
		if (strcmp(api_table[i].method, method) == 0 && strcmp(api_table[i].group, group) == 0)
			break;
	if (i == api_n && api_n < METRICS_API_MAX) {
		snprintf(api_names[i][0], sizeof(api_names[i][0]), "%s", method);
		snprintf(api_names[i][1], sizeof(api_names[i][1]), "%s", group);
		api_table[i] = (struct api_count){.method = api_names[i][0], .group = api_names[i][1]};
		api_n++;
	}
	if (i < api_n) {
		api_table[i].count++;
		api_table[i].fails += !ok;
	}
	pthread_mutex_unlock(&api_lock);
}

unsigned metrics_api_snapshot(struct api_count *out, unsigned max)
{
	pthread_mutex_lock(&api_lock);
	unsigned n = api_n < max ? api_n : max;
	memcpy(out, api_table, n * sizeof(*out));
	pthread_mutex_unlock(&api_lock);
	return n;
}

uint64_t metrics_rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "re");
	unsigned long long size, resident;
	int n = f ? fscanf(f, "%llu %llu", &size, &resident) : 0;
	if (f)
		fclose(f);
	if (n != 2)
		return 0;
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

uint64_t metrics_threads(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long long t = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %llu", &t) == 1)
			break;
	fclose(f);
	return t;
}
