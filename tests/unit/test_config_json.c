/* Unit tests for the JSON configuration layer (vmm/config_json.c,
 * config_file.c, config_json_out.c): Firecracker's --config-file document,
 * vigil's keys, the refusals, all-or-nothing loading and the round trip
 * through GET /vm/config's encoder. */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fake_vmm_api.h"
#include "vmm/config_json.h"

static char kernel[] = "/tmp/vigil-cj-kernel-XXXXXX";
static char disk[] = "/tmp/vigil-cj-disk-XXXXXX";
static char cfgfile[] = "/tmp/vigil-cj-cfg-XXXXXX";
static char doc[8192], err[512];
static struct vm_config c;

static void mkfile(char *tmpl)
{
	int fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "data", 4), 4);
	close(fd);
}

static int setup(void **state)
{
	vmcfg_fini(&c); /* a policy the test before loaded */
	vmcfg_init(&c);
	err[0] = 0;
	return 0;
}

static int load(const char *text)
{
	err[0] = 0;
	return vmcfg_load_json(&c, text, strlen(text), err, sizeof(err));
}

static void refused(const char *text, const char *want)
{
	struct vm_config before = c;
	if (load(text) != -1)
		fail_msg("accepted: %s", text);
	if (!strstr(err, want))
		fail_msg("message \"%s\" lacks \"%s\" for %s", err, want, text);
	if (memcmp(&before, &c, sizeof(c)))
		fail_msg("a refused document changed the configuration: %s", text);
}

/* Firecracker's own test config (tests/framework/vm_config.json), nulls and all. */
static void test_firecracker_document(void **state)
{
	snprintf(
	    doc, sizeof(doc),
	    "{\"boot-source\":{\"kernel_image_path\":\"%s\",\"boot_args\":\"console=ttyS0 reboot=k panic=1\","
	    "\"initrd_path\":null},"
	    "\"drives\":[{\"drive_id\":\"rootfs\",\"partuuid\":null,\"is_root_device\":true,\"cache_type\":"
	    "\"Unsafe\","
	    "\"is_read_only\":false,\"path_on_host\":\"%s\",\"io_engine\":\"Sync\",\"rate_limiter\":null,"
	    "\"socket\":null}],"
	    "\"machine-config\":{\"vcpu_count\":2,\"mem_size_mib\":1024,\"smt\":false,\"track_dirty_pages\":"
	    "false,"
	    "\"huge_pages\":\"None\"},"
	    "\"cpu-config\":null,\"balloon\":null,\"network-interfaces\":[{\"iface_id\":\"eth0\",\"host_dev_"
	    "name\":"
	    "\"tap0\",\"guest_mac\":\"06:00:c0:a8:00:02\",\"rx_rate_limiter\":null,\"tx_rate_limiter\":null}]"
	    ","
	    "\"vsock\":null,\"logger\":null,\"metrics\":null,\"mmds-config\":null,\"entropy\":null,\"pmem\":["
	    "],"
	    "\"memory-hotplug\":null}",
	    kernel, disk);
	if (load(doc) < 0)
		fail_msg("refused: %s", err);
	assert_true(c.has_boot);
	assert_string_equal(c.boot.boot_args, "console=ttyS0 reboot=k panic=1");
	assert_int_equal(c.nr_drives, 1);
	assert_string_equal(c.drives[0].path_on_host, disk);
	assert_int_equal(c.machine.vcpu_count, 2);
	assert_int_equal(c.machine.mem_size_mib, 1024);
	assert_int_equal(c.nr_nets, 1);
	assert_int_equal(c.nets[0].guest_mac[5], 2);
	assert_false(c.has_vsock);
	assert_false(c.entropy);
}

/* vigil's "gdb" and "gdb_wait" keys: the --gdb and --gdb-wait checks. */
static void test_gdb_keys(void **state)
{
	snprintf(doc, sizeof(doc),
		 "{\"boot-source\":{\"kernel_image_path\":\"%s\"},\"gdb\":\"tcp:127.0.0.1:1234\",\"gdb_wait\":true}",
		 kernel);
	if (load(doc) < 0)
		fail_msg("refused: %s", err);
	assert_string_equal(c.gdb, "tcp:127.0.0.1:1234");
	assert_true(c.gdb_wait);
	vmcfg_init(&c);
	const char *bad[][2] = {
		{ "\"gdb\":5", "gdb: must be a string" },
		{ "\"gdb\":\"serial:x\"", "expected unix:PATH or tcp:ADDRESS:PORT" },
		{ "\"gdb\":\"tcp:127.0.0.1:0\"", "port 1-65535" },
		{ "\"gdb\":\"tcp:localhost:1234\"", "an IPv4 address" },
		{ "\"gdb\":\"unix:\"", "needs a path" },
		{ "\"gdb_wait\":1,\"gdb\":\"unix:/tmp/g\"", "gdb_wait: must be a boolean" },
		{ "\"gdb_wait\":true", "gdb_wait: needs a gdb socket" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(doc, sizeof(doc), "{\"boot-source\":{\"kernel_image_path\":\"%s\"},%s}", kernel, bad[i][0]);
		refused(doc, bad[i][1]);
	}
}

static void test_vigil_keys(void **state)
{
	snprintf(
	    doc, sizeof(doc),
	    "{\"boot-source\":{\"kernel_image_path\":\"%s\"},\"console\":{\"output\":\"file:/tmp/con.log\","
	    "\"device\":\"virtio\"},\"stats\":true,\"trace\":\"-\",\"entropy\":{},"
	    "\"vsock\":{\"guest_cid\":7,\"uds_path\":\"/tmp/v.sock\"},"
	    "\"network-interfaces\":[{\"iface_id\":\"u\",\"vigil_user\":{\"hostfwd\":[\"tcp::2222-:22\"]}}]}",
	    kernel);
	if (load(doc) < 0)
		fail_msg("refused: %s", err);
	assert_int_equal(c.console.out, CONSOLE_FILE);
	assert_string_equal(c.console.path, "/tmp/con.log");
	assert_true(c.console.virtio);
	assert_true(c.stats);
	assert_string_equal(c.trace, "-");
	assert_true(c.entropy);
	assert_int_equal(c.vsock.guest_cid, 7);
	assert_true(c.nets[0].vigil_user);
	assert_int_equal(c.nets[0].fwd[0].host_port, 2222);
	assert_int_equal(c.nets[0].fwd[0].host_addr, 0x7f000001); /* empty address = 127.0.0.1 */
	snprintf(doc, sizeof(doc),
		 "{\"boot-source\":{\"kernel_image_path\":\"%s\"},\"console\":{\"output\":\"none\"}}",
		 kernel);
	assert_int_equal(load(doc), 0);
	assert_int_equal(c.console.out, CONSOLE_NONE);
}

static void test_refusals(void **state)
{
	char k[600];
	snprintf(k, sizeof(k), "\"boot-source\":{\"kernel_image_path\":\"%s\"}", kernel);
	refused("{}", "missing key `boot-source`");
	refused("[]", "must be a JSON object");
	refused("{\"boot-source\":", "Invalid JSON");
	snprintf(doc, sizeof(doc), "{%s,\"bogus\":1}", k);
	refused(doc, "unknown key `bogus`");
	snprintf(doc, sizeof(doc), "{%s,\"balloon\":{\"amount_mib\":1,\"deflate_on_oom\":true}}", k);
	refused(doc, "balloon: vigil does not support");
	snprintf(doc, sizeof(doc), "{%s,\"mmds-config\":{\"network_interfaces\":[]}}", k);
	refused(doc, "mmds-config: vigil does not support");
	snprintf(doc, sizeof(doc), "{%s,\"cpu-config\":\"/x.json\"}", k);
	refused(doc, "cpu-config: /x.json: not a regular file");
	snprintf(doc, sizeof(doc), "{%s,\"pmem\":[{\"id\":\"p\"}]}", k);
	refused(doc, "pmem");
	snprintf(doc, sizeof(doc), "{%s,\"drives\":{}}", k);
	refused(doc, "drives: must be an array");
	/* a bad drive after a good machine-config: nothing is applied */
	snprintf(
	    doc, sizeof(doc),
	    "{%s,\"machine-config\":{\"vcpu_count\":3,\"mem_size_mib\":256},\"drives\":[{\"drive_id\":\"a\","
	    "\"is_root_device\":false,\"path_on_host\":\"/nonexistent\"}]}",
	    k);
	refused(doc, "drives[0]: path_on_host");
	assert_int_equal(c.machine.vcpu_count, 1);
	snprintf(doc, sizeof(doc), "{%s,\"drives\":[{\"drive_id\":\"a\",\"is_root_device\":\"yes\"}]}", k);
	refused(doc, "field `is_root_device` must be a boolean");
	snprintf(doc, sizeof(doc), "{%s,\"machine-config\":{\"vcpu_count\":1}}", k);
	refused(doc, "missing field `mem_size_mib`");
	snprintf(doc, sizeof(doc), "{%s,\"console\":{\"output\":\"tty\"}}", k);
	refused(doc, "console: output must be");
	snprintf(doc, sizeof(doc), "{%s,\"console\":{\"device\":\"usb\"}}", k);
	refused(doc, "console: device must be");
	snprintf(doc, sizeof(doc), "{%s,\"stats\":\"yes\"}", k);
	refused(doc, "stats: must be a boolean");
	snprintf(doc, sizeof(doc), "{%s,\"trace\":5}", k);
	refused(doc, "trace: must be a string");
	snprintf(doc, sizeof(doc), "{%s,\"logger\":{\"level\":\"Info\",\"colour\":true}}", k);
	refused(doc, "logger: unknown field `colour`");
	snprintf(doc, sizeof(doc), "{%s,\"metrics\":{\"metrics_path\":7}}", k);
	refused(doc, "field `metrics_path` must be a string");
	refused("{\"boot-source\":{\"kernel_image_path\":\"/nonexistent/k\"}}", "kernel_image_path");
	/* a path longer than PATH_MAX is refused, not truncated */
	static char big[PATH_MAX + 200];
	memset(big, 'a', PATH_MAX + 10);
	big[PATH_MAX + 10] = 0;
	snprintf(doc, sizeof(doc), "{\"boot-source\":{\"kernel_image_path\":\"/%.4200s\"}}", big);
	refused(doc, "too long");
}

static void test_round_trip(void **state)
{
	snprintf(
	    doc, sizeof(doc),
	    "{\"boot-source\":{\"kernel_image_path\":\"%s\",\"boot_args\":\"console=ttyS0\"},"
	    "\"drives\":[{\"drive_id\":\"data\",\"is_root_device\":false,\"path_on_host\":\"%s\",\"is_read_"
	    "only\":true},"
	    "{\"drive_id\":\"root\",\"is_root_device\":true,\"path_on_host\":\"%s\",\"cache_type\":"
	    "\"Writeback\"}],"
	    "\"machine-config\":{\"vcpu_count\":2,\"mem_size_mib\":300,\"track_dirty_pages\":true},"
	    "\"network-interfaces\":[{\"iface_id\":\"u\",\"guest_mac\":\"06:00:00:00:00:01\",\"vigil_user\":"
	    "{\"hostfwd\":[\"udp:10.1.2.3:5353-:53\"]}},{\"iface_id\":\"t\",\"host_dev_name\":\"tap9\"}],"
	    "\"vsock\":{\"guest_cid\":9,\"uds_path\":\"/tmp/vs\"},\"entropy\":{},\"stats\":true,"
	    "\"policy\":{\"mode\":\"permissive\",\"rules\":[{\"id\":\"p\",\"resource\":\"pio\",\"ports\":\"0x80\",\"verdict\":\"deny\"}]},"
	    "\"cpu-config\":{\"cpuid_modifiers\":[{\"leaf\":\"0x1\",\"modifiers\":[{\"register\":\"eax\",\"bitmap\":"
	    "\"0b1xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}]}]}}",
	    kernel, disk, disk);
	if (load(doc) < 0)
		fail_msg("refused: %s", err);
	assert_true(c.has_policy);
	assert_int_equal(c.policy.nrules, 2);
	assert_string_equal(c.policy.rules[0].id, "cpu-config.cpuid.0");
	json_t *o = vmcfg_to_json(&c);
	assert_non_null(o);
	/* the root drive comes first, as the guest sees it */
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(json_object_get(o, "drives"), 0), "drive_id")),
	    "root");
	char *text = json_dumps(o, 0);
	json_decref(o);
	struct vm_config first = c;
	vmcfg_init(&c);
	if (load(text) < 0)
		fail_msg("GET /vm/config output refused as a config file: %s\n%s", err, text);
	free(text);
	assert_int_equal(c.machine.mem_size_mib, 300);
	assert_true(c.machine.track_dirty_pages);
	assert_int_equal(c.policy.nrules, 2);
	assert_int_equal(c.policy.mode, POLICY_PERMISSIVE);
	assert_string_equal(c.policy.rules[1].id, "p");
	vmcfg_fini(&first);
	assert_int_equal(c.nr_drives, 2);
	assert_int_equal(c.nr_nets, 2);
	assert_memory_equal(&c.nets[0], &first.nets[0], sizeof(c.nets[0]));
	assert_memory_equal(&c.nets[1], &first.nets[1], sizeof(c.nets[1]));
	assert_memory_equal(&c.vsock, &first.vsock, sizeof(c.vsock));
	assert_memory_equal(&c.machine, &first.machine, sizeof(c.machine));
	assert_string_equal(c.boot.boot_args, first.boot.boot_args);
	assert_true(c.entropy);
	assert_true(c.stats);
}

static void test_load_file(void **state)
{
	FILE *f = fopen(cfgfile, "w");
	assert_non_null(f);
	fprintf(f,
		"{\"boot-source\":{\"kernel_image_path\":\"%s\"},\"machine-config\":{\"vcpu_count\":4,"
		"\"mem_size_mib\":512}}",
		kernel);
	fclose(f);
	assert_int_equal(vmcfg_load_file(&c, cfgfile, err, sizeof(err)), 0);
	assert_int_equal(c.machine.vcpu_count, 4);
	assert_int_equal(vmcfg_load_file(&c, "/nonexistent.json", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent.json"));
	assert_int_equal(vmcfg_load_file(&c, "/tmp", err, sizeof(err)), -1);
	f = fopen(cfgfile, "w");
	fprintf(f, "{\"boot-source\": 1}");
	fclose(f);
	assert_int_equal(vmcfg_load_file(&c, cfgfile, err, sizeof(err)), -1);
	assert_non_null(strstr(err, cfgfile)); /* the message names the file */
	assert_non_null(strstr(err, "expected a JSON object"));
}

int main(void)
{
	mkfile(kernel);
	mkfile(disk);
	mkfile(cfgfile);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_firecracker_document, setup),
	    cmocka_unit_test_setup(test_vigil_keys, setup),
	    cmocka_unit_test_setup(test_gdb_keys, setup),
	    cmocka_unit_test_setup(test_refusals, setup),
	    cmocka_unit_test_setup(test_round_trip, setup),
	    cmocka_unit_test_setup(test_load_file, setup),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(kernel), unlink(disk), unlink(cfgfile);
	return rc;
}
