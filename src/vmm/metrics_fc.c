/* metrics_fc — Firecracker's metrics file (PUT /metrics, FlushMetrics, the
 * control loop's 60 s timer): one JSON object per line in Firecracker's
 * groups and field names (src/vmm/src/logger/metrics.rs), counters as deltas
 * since the previous line, and vigil's monitor counts beside them under
 * "vigil". What vigil does not measure is reported as 0. Control thread. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/exit.h"
#include "core/monitor.h"
#include "core/vm.h"
#include "vmm/metrics.h"
#include "vmm/metrics_int.h"
#include "vmm/vmm.h"

/* Last flushed value of every counter, by its path in the line
 * ("vigil.vcpus.0.io"): open addressing, never shrinks. */
#define LAST_SLOTS 4096

struct last {
	char *key;
	uint64_t value;
};

struct fc_metrics {
	int fd;
	uint64_t missed; /* lines a full FIFO refused (logger.missed_metrics_count) */
	uint64_t missed_flushed;
	struct last last[LAST_SLOTS];
};

static uint64_t delta(struct fc_metrics *w, const char *key, uint64_t now)
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *p = key; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	for (unsigned i = 0; i < LAST_SLOTS; i++) {
		struct last *l = &w->last[(h + i) & (LAST_SLOTS - 1)];
		if (!l->key) {
			l->key = strdup(key);
			if (!l->key)
				return now;
			l->value = now;
			return now;
		}
		if (strcmp(l->key, key) == 0) {
			/* A counter that went back (a new VM) restarts from 0. */
			uint64_t d = now >= l->value ? now - l->value : now;
			l->value = now;
			return d;
		}
	}
	return now; /* table full: report the running total rather than lose it */
}

static void set(json_t *o, const char *k, uint64_t v)
{
	json_object_set_new(o, k, json_integer((json_int_t)v));
}

/* A group of counters vigil does not measure: all zero. */
static json_t *zeros(const char *const *names)
{
	json_t *o = json_object();
	for (; *names; names++)
		set(o, *names, 0);
	return o;
}

static const char *const get_groups[] = {"instance_info", "machine_cfg",    "mmds",
					 "vmm_version",	  "hotplug_memory", NULL};
static const char *const put_groups[] = {"actions", "boot_source", "drive",	     "logger", "machine_cfg",
					 "cpu_cfg", "metrics",	   "network",	     "mmds",   "vsock",
					 "pmem",    "serial",	   "hotplug_memory", NULL};
static const char *const patch_groups[] = {"drive", "network", "machine_cfg", "mmds", "hotplug_memory", NULL};

static json_t *api_group(struct fc_metrics *w, const char *method, const char *const *groups,
			 const struct api_count *api, unsigned n, bool get)
{
	json_t *o = json_object();
	char name[64], key[96];
	for (; *groups; groups++) {
		uint64_t count = 0, fails = 0;
		for (unsigned i = 0; i < n; i++)
			if (strcmp(api[i].method, method) == 0 && strcmp(api[i].group, *groups) == 0) {
				count = api[i].count;
				fails = api[i].fails;
			}
		snprintf(name, sizeof(name), "%s_count", *groups);
		snprintf(key, sizeof(key), "api.%s.%s", method, name);
		set(o, name, delta(w, key, count));
		/* Firecracker counts failures of PUT and PATCH only. */
		if (get)
			continue;
		snprintf(name, sizeof(name), "%s_fails", *groups);
		snprintf(key, sizeof(key), "api.%s.%s", method, name);
		set(o, name, delta(w, key, fails));
	}
	return o;
}

static json_t *latency_agg(void)
{
	return json_pack("{s:i, s:i, s:i}", "min_us", 0, "max_us", 0, "sum_us", 0);
}

static json_t *vcpu_group(struct fc_metrics *w, struct vm *vm)
{
	/* vigil counts I/O exits but not by direction, so the in/out and
	 * read/write split is 0; failures are the exits that stop a vCPU on an
	 * error (internal error, failed entry, unknown). */
	uint64_t failures = 0;
	for (unsigned c = 0; vm && c < vm->ncpus; c++)
		failures += mon_get(&vm->stats[c].reasons[VEXIT_INTERNAL_ERROR]) +
			    mon_get(&vm->stats[c].reasons[VEXIT_FAIL_ENTRY]) +
			    mon_get(&vm->stats[c].reasons[VEXIT_UNKNOWN]);
	json_t *o = json_pack("{s:i, s:i, s:i, s:i, s:I, s:i}", "exit_io_in", 0, "exit_io_out", 0,
			      "exit_mmio_read", 0, "exit_mmio_write", 0, "failures",
			      (json_int_t)delta(w, "vcpu.failures", failures), "kvmclock_ctrl_fails", 0);
	json_object_set_new(o, "exit_io_in_agg", latency_agg());
	json_object_set_new(o, "exit_io_out_agg", latency_agg());
	json_object_set_new(o, "exit_mmio_read_agg", latency_agg());
	json_object_set_new(o, "exit_mmio_write_agg", latency_agg());
	return o;
}

static json_t *vigil_group(struct fc_metrics *w, struct vm *vm)
{
	json_t *vcpus = json_array(), *devs = json_array();
	char key[160];
	for (unsigned c = 0; vm && c < vm->ncpus; c++) {
		const struct vcpu_stats *s = &vm->stats[c];
		json_t *ex = json_object();
		for (int r = 0; r < VEXIT__COUNT; r++) {
			snprintf(key, sizeof(key), "vigil.vcpu.%u.%s", c, vexit_reason_name(r));
			set(ex, vexit_reason_name(r), delta(w, key, mon_get(&s->reasons[r])));
		}
		json_t *v = json_object();
		set(v, "id", c);
		json_object_set_new(v, "exits", ex);
		snprintf(key, sizeof(key), "vigil.vcpu.%u.accesses", c);
		set(v, "accesses", delta(w, key, mon_get(&s->accesses)));
		snprintf(key, sizeof(key), "vigil.vcpu.%u.denied", c);
		set(v, "denied", delta(w, key, mon_get(&s->denied)));
		json_array_append_new(vcpus, v);
	}
	static const char *const fields[] = {"requests", "bytes", "errors", "denied"};
	for (unsigned i = 0; vm && i < vm->nr_devs; i++) {
		const struct dev_stats *s = &vm->devs[i].stats;
		const _Atomic uint64_t *vals[] = {&s->requests, &s->bytes, &s->errors, &s->denied};
		json_t *d = json_pack("{s:s, s:s}", "id", vm->devs[i].id, "kind",
				      vm->devs[i].kind ? vm->devs[i].kind : "");
		for (int k = 0; k < 4; k++) {
			snprintf(key, sizeof(key), "vigil.dev.%s.%s", vm->devs[i].id, fields[k]);
			set(d, fields[k], delta(w, key, mon_get(vals[k])));
		}
		json_array_append_new(devs, d);
	}
	return json_pack("{s:o, s:o}", "vcpus", vcpus, "devices", devs);
}

static const char *const block_fields[] = {"activate_fails",
					   "cfg_fails",
					   "no_avail_buffer",
					   "event_fails",
					   "execute_fails",
					   "invalid_reqs_count",
					   "flush_count",
					   "queue_event_count",
					   "rate_limiter_event_count",
					   "update_count",
					   "update_fails",
					   "read_bytes",
					   "write_bytes",
					   "read_count",
					   "write_count",
					   "rate_limiter_throttled_events",
					   NULL};
static const char *const net_fields[] = {"activate_fails",
					 "cfg_fails",
					 "event_fails",
					 "rx_queue_event_count",
					 "rx_bytes_count",
					 "rx_packets_count",
					 "rx_fails",
					 "tx_bytes_count",
					 "tx_packets_count",
					 "tx_fails",
					 "tx_queue_event_count",
					 "tx_spoofed_mac_count",
					 "tx_rate_limiter_throttled",
					 NULL};
static const char *const vsock_fields[] = {"activate_fails",
					   "cfg_fails",
					   "rx_queue_event_fails",
					   "tx_queue_event_fails",
					   "ev_queue_event_fails",
					   "muxer_event_fails",
					   "conn_event_fails",
					   "rx_bytes_count",
					   "tx_bytes_count",
					   "rx_packets_count",
					   "tx_packets_count",
					   "conns_added",
					   "conns_killed",
					   "conns_removed",
					   NULL};
static const char *const uart_fields[] = {
    "error_count", "flush_count", "missed_read_count", "missed_write_count", "read_count",
    "write_count", NULL};
static const char *const i8042_fields[] = {"error_count", "missed_read_count", "missed_write_count",
					   "read_count",  "reset_count",       "write_count",
					   NULL};
static const char *const latency_fields[] = {"full_create_snapshot",
					     "diff_create_snapshot",
					     "load_snapshot",
					     "pause_vm",
					     "resume_vm",
					     "vmm_full_create_snapshot",
					     "vmm_diff_create_snapshot",
					     "vmm_load_snapshot",
					     "vmm_pause_vm",
					     "vmm_resume_vm",
					     NULL};
static const char *const signal_fields[] = {"sigbus",  "sigsegv", "sigxfsz", "sigxcpu",
					    "sigpipe", "sighup",  "sigill",  NULL};
static const char *const mmds_fields[] = {"rx_accepted",
					  "rx_accepted_err",
					  "rx_accepted_unusual",
					  "rx_bad_eth",
					  "rx_count",
					  "tx_bytes",
					  "tx_count",
					  "tx_errors",
					  "tx_frames",
					  "connections_created",
					  "connections_destroyed",
					  NULL};

/* The whole line, as a JSON object; NULL when out of memory. */
static json_t *fc_line(struct fc_metrics *w, struct vmm *m)
{
	struct vm *vm = vmm_vm(m);
	struct api_count api[METRICS_API_MAX];
	unsigned n = metrics_api_snapshot(api, METRICS_API_MAX);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);

	json_t *o = json_object();
	set(o, "utc_timestamp_ms", (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
	json_object_set_new(
	    o, "api_server",
	    json_pack("{s:i, s:i}", "process_startup_time_us", 0, "process_startup_time_cpu_us", 0));
	json_object_set_new(o, "block", zeros(block_fields));
	json_object_set_new(o, "deprecated_api", json_pack("{s:i}", "deprecated_http_api_calls", 0));
	json_object_set_new(o, "get_api_requests", api_group(w, "GET", get_groups, api, n, true));
	json_object_set_new(o, "i8042", zeros(i8042_fields));
	json_t *lat = zeros(latency_fields);
	/* The last snapshot calls' durations (Firecracker's are the same
	 * last-value figures). */
	set(lat, vmm_snapshot_last_diff(m) ? "diff_create_snapshot" : "full_create_snapshot",
	    vmm_snapshot_last_us(m, false));
	set(lat, "load_snapshot", vmm_snapshot_last_us(m, true));
	json_object_set_new(o, "latencies_us", lat);
	json_object_set_new(o, "logger",
			    json_pack("{s:I, s:i, s:i}", "missed_metrics_count",
				      (json_int_t)(w->missed - w->missed_flushed), "metrics_fails", 0,
				      "missed_log_count", 0));
	w->missed_flushed = w->missed;
	json_object_set_new(o, "mmds", zeros(mmds_fields));
	json_object_set_new(o, "net", zeros(net_fields));
	json_object_set_new(o, "patch_api_requests", api_group(w, "PATCH", patch_groups, api, n, false));
	json_object_set_new(o, "put_api_requests", api_group(w, "PUT", put_groups, api, n, false));
	json_object_set_new(o, "seccomp", json_pack("{s:i}", "num_faults", 0));
	json_object_set_new(o, "vcpu", vcpu_group(w, vm));
	json_object_set_new(o, "vmm", json_pack("{s:i}", "panic_count", 0));
	json_object_set_new(o, "uart", zeros(uart_fields));
	json_object_set_new(o, "signals", zeros(signal_fields));
	json_object_set_new(o, "vsock", zeros(vsock_fields));
	json_object_set_new(o, "interrupts", json_pack("{s:i, s:i}", "triggers", 0, "config_updates", 0));
	/* FC also writes one group per drive and per interface, named by id. */
	for (unsigned i = 0; vm && i < vm->nr_devs; i++) {
		const char *kind = vm->devs[i].kind ? vm->devs[i].kind : "";
		bool blk = strcmp(kind, "virtio-blk") == 0, net = strcmp(kind, "virtio-net") == 0;
		if (!blk && !net)
			continue;
		char name[VDEV_ID_MAX + 8];
		snprintf(name, sizeof(name), "%s_%s", blk ? "block" : "net", vm->devs[i].id);
		json_object_set_new(o, name, zeros(blk ? block_fields : net_fields));
	}
	json_object_set_new(o, "vigil", vigil_group(w, vm));
	return o;
}

struct fc_metrics *fc_metrics_open(const char *path, char *err, size_t errlen)
{
	/* As Firecracker's open_file_nonblock: read+write and O_NONBLOCK, so a
	 * FIFO opens without a reader and a full one drops a line instead of
	 * stalling the control thread; O_APPEND so a file grows. */
	int fd = open(path, O_RDWR | O_NONBLOCK | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "Cannot open the metrics file %s: %s", path, strerror(errno));
		return NULL;
	}
	struct fc_metrics *w = calloc(1, sizeof(*w));
	if (!w) {
		close(fd);
		snprintf(err, errlen, "Cannot open the metrics file %s: %s", path, strerror(ENOMEM));
		return NULL;
	}
	w->fd = fd;
	return w;
}

int fc_metrics_flush(struct fc_metrics *w, struct vmm *m)
{
	if (!w)
		return 0;
	json_t *o = fc_line(w, m);
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (!s)
		return -1;
	size_t len = strlen(s);
	s[len] = '\n'; /* json_dumps's NUL becomes the line's end: one write(2) */
	ssize_t n = write(w->fd, s, len + 1);
	free(s);
	if (n != (ssize_t)(len + 1)) {
		w->missed++;
		return -1;
	}
	return 0;
}

void fc_metrics_close(struct fc_metrics *w)
{
	if (!w)
		return;
	close(w->fd);
	for (unsigned i = 0; i < LAST_SLOTS; i++)
		free(w->last[i].key);
	free(w);
}
