/* Unit tests for vmm/metrics_*.c: GET /vigil/stats's JSON, GET /metrics's
 * Prometheus text, and Firecracker's metrics file (deltas, groups, FIFOs),
 * against a real `struct vm` (vm_init, vm_dev_add, bus_add) and a fake of
 * the vmm.h accessors (fake_vmm_metrics.h). */

/* cmocka needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/monitor.h"
#include "fake_vmm_metrics.h"
#include "vmm/metrics.h"

static void nop_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write) {}

struct fx {
	struct vm vm;
	struct vmm m;
	struct vdev *blk;
	char dir[64];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_int_equal(vm_init(&f->vm, 2), 0);
	assert_int_equal(bus_add(&f->vm.pio, 0x3f8, 8, "com1", nop_io, NULL), 0);
	assert_int_equal(bus_add(&f->vm.pio, 0x60, 1, "we\"ird\\na\nme", nop_io, NULL), 0);
	assert_non_null(vm_dev_add(&f->vm, "com1", "uart-16550", NULL, NULL));
	f->blk = vm_dev_add(&f->vm, "rootfs", "virtio-blk", NULL, NULL);
	assert_non_null(f->blk);
	f->m =
	    (struct vmm){.vm = &f->vm, .state = VMM_RUNNING, .uptime_ns = 1500000000ULL, .api_requests = 7};
	strcpy(f->dir, "/tmp/vigil-metrics-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	vm_fini(&f->vm);
	free(f);
	return 0;
}

static void some_traffic(struct fx *f)
{
	struct vcpu_stats *s = &f->vm.stats[0];
	for (int i = 0; i < 12; i++)
		mon_count_exit(s, VEXIT_IO);
	mon_count_exit(s, VEXIT_HLT);
	for (int i = 0; i < 10; i++)
		mon_count_access(s, POLICY_PIO, 0x3f8, false);
	mon_count_access(s, POLICY_PIO, 0x3f8, true);
	mon_count_access(s, POLICY_MMIO, 0xfee00000, true);
	mon_count_exit(&f->vm.stats[1], VEXIT_MMIO);
	struct dev_gate g = vm_dev_gate(&f->vm, f->blk, false);
	dev_request(&g, REQ_READ, 4096);
	dev_request(&g, REQ_READ, 512);
	dev_request_error(&g);
}

static void stats_before_start(void **state)
{
	struct vmm m = {.vm = NULL, .state = VMM_NOT_STARTED};
	char *s = metrics_stats_json(&m);
	assert_non_null(s);
	json_t *j = json_loads(s, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "state")), "Not started");
	assert_int_equal(json_array_size(json_object_get(j, "vcpus")), 0);
	assert_int_equal(json_array_size(json_object_get(j, "devices")), 0);
	json_decref(j);
	free(s);
}

static json_t *find_addr(json_t *addrs, const char *addr)
{
	size_t i;
	json_t *a;
	json_array_foreach(addrs, i,
			   a) if (strcmp(json_string_value(json_object_get(a, "addr")), addr) == 0) return a;
	return NULL;
}

static void stats_while_running(void **state)
{
	struct fx *f = *state;
	some_traffic(f);
	char *s = metrics_stats_json(&f->m);
	json_t *j = json_loads(s, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "state")), "Running");
	assert_int_equal(json_integer_value(json_object_get(j, "uptime_ns")), 1500000000LL);
	json_t *v0 = json_array_get(json_object_get(j, "vcpus"), 0);
	assert_int_equal(json_integer_value(json_object_get(v0, "id")), 0);
	json_t *ex = json_object_get(v0, "exits");
	assert_int_equal(json_integer_value(json_object_get(ex, "io")), 12);
	assert_int_equal(json_integer_value(json_object_get(ex, "hlt")), 1);
	assert_int_equal(json_integer_value(json_object_get(v0, "accesses")), 12);
	assert_int_equal(json_integer_value(json_object_get(v0, "denied")), 2);
	json_t *com = find_addr(json_object_get(v0, "addresses"), "0x3f8");
	assert_non_null(com);
	assert_string_equal(json_string_value(json_object_get(com, "space")), "pio");
	assert_string_equal(json_string_value(json_object_get(com, "device")), "com1");
	assert_int_equal(json_integer_value(json_object_get(com, "count")), 11);
	assert_int_equal(json_integer_value(json_object_get(com, "denied")), 1);
	json_t *apic = find_addr(json_object_get(v0, "addresses"), "0xfee00000");
	assert_non_null(apic);
	assert_string_equal(json_string_value(json_object_get(apic, "space")), "mmio");
	assert_true(json_is_null(json_object_get(apic, "device")));
	json_t *v1 = json_array_get(json_object_get(j, "vcpus"), 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(v1, "exits"), "mmio")), 1);
	json_t *blk = json_array_get(json_object_get(j, "devices"), 1);
	assert_string_equal(json_string_value(json_object_get(blk, "id")), "rootfs");
	assert_string_equal(json_string_value(json_object_get(blk, "kind")), "virtio-blk");
	assert_int_equal(json_integer_value(json_object_get(blk, "requests")), 2);
	assert_int_equal(json_integer_value(json_object_get(blk, "bytes")), 4608);
	assert_int_equal(json_integer_value(json_object_get(blk, "errors")), 1);
	json_t *tot = json_object_get(j, "totals");
	assert_int_equal(json_integer_value(json_object_get(tot, "exits")), 14);
	assert_int_equal(json_integer_value(json_object_get(tot, "denied")), 2);
	json_decref(j);
	free(s);
}

/* Every sample's family was announced by # HELP and # TYPE just before its
 * first sample, once, and no family is split. */
static void check_exposition(const char *text)
{
	char fam[128] = "", seen[4096] = " ";
	const char *p = text;
	bool typed = false;
	while (*p) {
		const char *nl = strchr(p, '\n');
		assert_non_null(nl); /* every line ends with \n */
		char line[512];
		size_t n = (size_t)(nl - p);
		assert_true(n < sizeof(line));
		memcpy(line, p, n);
		line[n] = 0;
		if (strncmp(line, "# HELP ", 7) == 0) {
			sscanf(line + 7, "%127s", fam);
			char key[132];
			snprintf(key, sizeof(key), " %s ", fam);
			assert_null(strstr(seen, key));
			strncat(seen, key + 1, sizeof(seen) - strlen(seen) - 1);
			typed = false;
		} else if (strncmp(line, "# TYPE ", 7) == 0) {
			char name[128], type[16];
			assert_int_equal(sscanf(line + 7, "%127s %15s", name, type), 2);
			assert_string_equal(name, fam);
			assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0);
			typed = true;
		} else {
			assert_true(typed);
			size_t fl = strlen(fam);
			assert_memory_equal(line, fam, fl);
			assert_true(line[fl] == '{' || line[fl] == ' ');
			if (strstr(fam, "_total"))
				assert_true(strlen(fam) > 6 && strcmp(fam + strlen(fam) - 6, "_total") == 0);
		}
		p = nl + 1;
	}
}

static void prometheus_text(void **state)
{
	struct fx *f = *state;
	some_traffic(f);
	mon_count_access(&f->vm.stats[0], POLICY_PIO, 0x60, false);
	char *s = metrics_prometheus(&f->m);
	assert_non_null(s);
	check_exposition(s);
	assert_non_null(strstr(s, "# TYPE vigil_vcpu_exits_total counter\n"));
	assert_non_null(strstr(s, "\nvigil_vcpu_exits_total{vcpu=\"0\",reason=\"io\"} 12\n"));
	assert_non_null(strstr(s, "\nvigil_vcpu_exits_total{vcpu=\"1\",reason=\"mmio\"} 1\n"));
	assert_non_null(strstr(
	    s, "\nvigil_vcpu_accesses_total{vcpu=\"0\",space=\"pio\",addr=\"0x3f8\",device=\"com1\"} 11\n"));
	assert_non_null(strstr(
	    s,
	    "\nvigil_vcpu_access_denied_total{vcpu=\"0\",space=\"pio\",addr=\"0x3f8\",device=\"com1\"} 1\n"));
	assert_non_null(strstr(
	    s, "\nvigil_vcpu_accesses_total{vcpu=\"0\",space=\"mmio\",addr=\"0xfee00000\",device=\"\"} 1\n"));
	/* A label value with a quote, a backslash and a newline, escaped. */
	assert_non_null(strstr(s, "addr=\"0x60\",device=\"we\\\"ird\\\\na\\nme\"} 1\n"));
	assert_non_null(strstr(s, "\nvigil_vcpu_denied_total{vcpu=\"0\"} 2\n"));
	assert_non_null(
	    strstr(s, "\nvigil_device_requests_total{device=\"rootfs\",kind=\"virtio-blk\"} 2\n"));
	assert_non_null(
	    strstr(s, "\nvigil_device_bytes_total{device=\"rootfs\",kind=\"virtio-blk\"} 4608\n"));
	assert_non_null(strstr(s, "\nvigil_device_errors_total{device=\"rootfs\",kind=\"virtio-blk\"} 1\n"));
	assert_non_null(strstr(s, "\nvigil_device_denied_total{device=\"com1\",kind=\"uart-16550\"} 0\n"));
	assert_non_null(strstr(s, "\nvigil_uptime_seconds 1.500000000\n"));
	assert_non_null(strstr(s, "\nvigil_api_requests_total 7\n"));
	assert_non_null(strstr(s, "\nvigil_vm_state{state=\"Running\"} 1\n"));
	assert_non_null(strstr(s, "\nvigil_vm_state{state=\"Paused\"} 0\n"));
	/* The process figures are read from /proc: a live process has both. */
	const char *rss = strstr(s, "\nvigil_process_resident_memory_bytes ");
	assert_non_null(rss);
	assert_true(strtoull(rss + 37, NULL, 10) > 4096);
	const char *thr = strstr(s, "\nvigil_process_threads ");
	assert_non_null(thr);
	assert_true(strtoull(thr + 23, NULL, 10) >= 1);
	free(s);
}

/* Per-rule hit counts: in /vigil/stats and in /metrics (ids escaped). */
static void policy_hits(void **state)
{
	struct fx *f = *state;
	struct policy_range r1 = {0x1234, 0x1234}, r2 = {0x80, 0x80};
	struct policy_rule rules[2] = {
	    {.id = "deny-1234", .resource = POL_RES_PIO, .verdict = POLICY_DENY, .nranges = 1, .ranges = &r1},
	    {.id = "p80", .resource = POL_RES_PIO, .verdict = POLICY_PROVIDE, .nranges = 1, .ranges = &r2},
	};
	struct policy_spec spec = {.mode = POLICY_PERMISSIVE, .nrules = 2, .rules = rules};
	char err[256];
	struct policy *p = policy_compile(&spec, err, sizeof(err));
	assert_non_null(p);
	policy_free(policy_swap(&f->vm.policy, p));
	struct policy_decision d;
	for (int i = 0; i < 3; i++)
		policy_decide_access(p, POLICY_PIO, 0x1234, 1, false, false, &d);
	char *s = metrics_prometheus(&f->m);
	check_exposition(s);
	assert_non_null(strstr(s, "# TYPE vigil_policy_rule_hits_total counter\n"));
	assert_non_null(strstr(s, "\nvigil_policy_rule_hits_total{rule=\"deny-1234\",resource=\"pio\",verdict=\"deny\"} 3\n"));
	assert_non_null(strstr(s, "\nvigil_policy_rule_hits_total{rule=\"p80\",resource=\"pio\",verdict=\"provide\"} 0\n"));
	free(s);
	s = metrics_stats_json(&f->m);
	json_t *j = json_loads(s, 0, NULL);
	json_t *pol = json_object_get(j, "policy");
	assert_string_equal(json_string_value(json_object_get(pol, "mode")), "permissive");
	json_t *r0 = json_array_get(json_object_get(pol, "rules"), 0);
	assert_string_equal(json_string_value(json_object_get(r0, "id")), "deny-1234");
	assert_string_equal(json_string_value(json_object_get(r0, "verdict")), "deny");
	assert_int_equal(json_integer_value(json_object_get(r0, "hits")), 3);
	assert_int_equal(json_array_size(json_object_get(pol, "rules")), 2);
	json_decref(j);
	free(s);
}

static void prometheus_before_start(void **state)
{
	struct vmm m = {.vm = NULL, .state = VMM_NOT_STARTED};
	char *s = metrics_prometheus(&m);
	assert_non_null(s);
	check_exposition(s);
	assert_null(strstr(s, "vigil_vcpu_exits_total{"));
	assert_non_null(strstr(s, "\nvigil_vm_state{state=\"Not started\"} 1\n"));
	free(s);
}

static json_t *read_line(FILE *in)
{
	char buf[16384];
	assert_non_null(fgets(buf, sizeof(buf), in));
	assert_int_equal(buf[strlen(buf) - 1], '\n');
	json_error_t e;
	json_t *j = json_loads(buf, 0, &e);
	assert_non_null(j);
	return j;
}

static json_int_t at(json_t *j, const char *group, const char *field)
{
	json_t *g = json_object_get(j, group);
	assert_non_null(g);
	json_t *v = json_object_get(g, field);
	assert_non_null(v);
	return json_integer_value(v);
}

static void fc_file_deltas(void **state)
{
	struct fx *f = *state;
	char path[128], err[256];
	snprintf(path, sizeof(path), "%s/metrics.json", f->dir);
	struct fc_metrics *w = fc_metrics_open(path, err, sizeof(err));
	assert_non_null(w);

	some_traffic(f);
	metrics_count_api("PUT", "actions", true);
	metrics_count_api("PUT", "actions", false);
	metrics_count_api("GET", "instance_info", true);
	assert_int_equal(fc_metrics_flush(w, &f->m), 0);
	/* Between the lines: 3 more io exits, one more PUT /actions. */
	for (int i = 0; i < 3; i++)
		mon_count_exit(&f->vm.stats[0], VEXIT_IO);
	metrics_count_api("PUT", "actions", true);
	assert_int_equal(fc_metrics_flush(w, &f->m), 0);
	assert_int_equal(fc_metrics_flush(w, &f->m), 0);
	fc_metrics_close(w);

	FILE *in = fopen(path, "r");
	assert_non_null(in);
	json_t *l1 = read_line(in), *l2 = read_line(in), *l3 = read_line(in);
	char extra[8];
	assert_null(fgets(extra, sizeof(extra), in)); /* one line per flush */
	fclose(in);

	/* Firecracker's groups are all there, with its field names. */
	const char *groups[] = {"utc_timestamp_ms",
				"api_server",
				"block",
				"deprecated_api",
				"get_api_requests",
				"i8042",
				"latencies_us",
				"logger",
				"mmds",
				"net",
				"patch_api_requests",
				"put_api_requests",
				"seccomp",
				"vcpu",
				"vmm",
				"uart",
				"signals",
				"vsock",
				"vigil"};
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		assert_non_null(json_object_get(l1, groups[i]));
	assert_true(json_integer_value(json_object_get(l1, "utc_timestamp_ms")) > 1600000000000LL);
	/* One group per drive, by id; none for the UART. */
	assert_non_null(json_object_get(json_object_get(l1, "block_rootfs"), "read_bytes"));
	assert_null(json_object_get(l1, "block_com1"));
	assert_non_null(json_object_get(json_object_get(l1, "vcpu"), "exit_io_in_agg"));
	assert_null(json_object_get(json_object_get(l1, "get_api_requests"), "instance_info_fails"));

	assert_int_equal(at(l1, "put_api_requests", "actions_count"), 2);
	assert_int_equal(at(l1, "put_api_requests", "actions_fails"), 1);
	assert_int_equal(at(l1, "get_api_requests", "instance_info_count"), 1);
	assert_int_equal(at(l2, "put_api_requests", "actions_count"), 1);
	assert_int_equal(at(l2, "put_api_requests", "actions_fails"), 0);
	assert_int_equal(at(l2, "get_api_requests", "instance_info_count"), 0);
	assert_int_equal(at(l3, "put_api_requests", "actions_count"), 0);

	json_t *v1 = json_array_get(json_object_get(json_object_get(l1, "vigil"), "vcpus"), 0);
	json_t *v2 = json_array_get(json_object_get(json_object_get(l2, "vigil"), "vcpus"), 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(v1, "exits"), "io")), 12);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(v2, "exits"), "io")), 3);
	assert_int_equal(json_integer_value(json_object_get(v1, "denied")), 2);
	assert_int_equal(json_integer_value(json_object_get(v2, "denied")), 0);
	json_t *d1 = json_array_get(json_object_get(json_object_get(l1, "vigil"), "devices"), 1);
	json_t *d2 = json_array_get(json_object_get(json_object_get(l2, "vigil"), "devices"), 1);
	assert_string_equal(json_string_value(json_object_get(d1, "id")), "rootfs");
	assert_int_equal(json_integer_value(json_object_get(d1, "bytes")), 4608);
	assert_int_equal(json_integer_value(json_object_get(d2, "bytes")), 0);
	json_decref(l1);
	json_decref(l2);
	json_decref(l3);
}

static void fc_file_appends(void **state)
{
	struct fx *f = *state;
	char path[128], err[256];
	snprintf(path, sizeof(path), "%s/old.json", f->dir);
	FILE *o = fopen(path, "w");
	fputs("previous\n", o);
	fclose(o);
	struct fc_metrics *w = fc_metrics_open(path, err, sizeof(err));
	assert_non_null(w);
	assert_int_equal(fc_metrics_flush(w, &f->m), 0);
	fc_metrics_close(w);
	FILE *in = fopen(path, "r");
	char buf[64];
	assert_non_null(fgets(buf, sizeof(buf), in));
	assert_string_equal(buf, "previous\n");
	fclose(in);
}

static void fc_fifo_without_reader(void **state)
{
	struct fx *f = *state;
	char path[128], err[256];
	snprintf(path, sizeof(path), "%s/metrics.fifo", f->dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	/* Opening and flushing must not block with nobody reading yet. */
	struct fc_metrics *w = fc_metrics_open(path, err, sizeof(err));
	assert_non_null(w);
	assert_int_equal(fc_metrics_flush(w, &f->m), 0);
	int rd = open(path, O_RDONLY | O_NONBLOCK);
	assert_true(rd >= 0);
	char buf[32];
	assert_int_equal(read(rd, buf, 19), 19);
	assert_memory_equal(buf, "{\"utc_timestamp_ms\"", 19);
	close(rd);
	fc_metrics_close(w);
}

static void fc_open_error(void **state)
{
	char err[256] = "";
	assert_null(fc_metrics_open("/nonexistent-dir/m.json", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent-dir/m.json"));
	assert_non_null(strstr(err, "No such file or directory"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(stats_before_start),
	    cmocka_unit_test_setup_teardown(stats_while_running, setup, teardown),
	    cmocka_unit_test_setup_teardown(prometheus_text, setup, teardown),
	    cmocka_unit_test(prometheus_before_start),
	    cmocka_unit_test_setup_teardown(policy_hits, setup, teardown),
	    cmocka_unit_test_setup_teardown(fc_file_deltas, setup, teardown),
	    cmocka_unit_test_setup_teardown(fc_file_appends, setup, teardown),
	    cmocka_unit_test_setup_teardown(fc_fifo_without_reader, setup, teardown),
	    cmocka_unit_test(fc_open_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
