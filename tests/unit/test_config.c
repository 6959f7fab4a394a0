/* The configuration's setters: each check, its message, and that a refused
 * value leaves the configuration as it was. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/config.h"

static char dir[64];
static char kernel[128], empty[128], image[128];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/vigil-config-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(kernel, sizeof(kernel), "%s/kernel", dir);
	snprintf(empty, sizeof(empty), "%s/empty", dir);
	snprintf(image, sizeof(image), "%s/disk.img", dir);
	FILE *f = fopen(kernel, "w");
	fputs("not really a kernel", f);
	fclose(f);
	fclose(fopen(empty, "w"));
	f = fopen(image, "w");
	assert_int_equal(ftruncate(fileno(f), 1 << 20), 0);
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(kernel);
	unlink(empty);
	unlink(image);
	rmdir(dir);
	return 0;
}

static void test_defaults(void **state)
{
	(void)state;
	struct vm_config c;
	vmcfg_init(&c);
	assert_string_equal(c.id, "anonymous-instance");
	assert_int_equal(c.machine.vcpu_count, 1);
	assert_int_equal(c.machine.mem_size_mib, 128);
	assert_false(c.machine.smt);
	assert_string_equal(c.machine.huge_pages, "None");
	assert_false(c.has_boot);
	char err[256];
	assert_int_equal(vmcfg_check_startable(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "Cannot start microvm without kernel configuration.");
}

static void test_ids(void **state)
{
	(void)state;
	assert_true(vmcfg_id_ok("rootfs"));
	assert_true(vmcfg_id_ok("net_1"));
	assert_false(vmcfg_id_ok(""));
	assert_false(vmcfg_id_ok("bad-id"));
	assert_false(vmcfg_id_ok("a/b"));
	assert_false(vmcfg_id_ok("sp ace"));
	char longid[VMCFG_ID_MAX + 2];
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	assert_false(vmcfg_id_ok(longid));
	longid[VMCFG_ID_MAX] = '\0';
	assert_true(vmcfg_id_ok(longid));
}

static void test_machine(void **state)
{
	(void)state;
	struct vm_config c;
	char err[256];
	vmcfg_init(&c);
	struct vmcfg_machine m = { .vcpu_count = 2, .mem_size_mib = 1024 };
	assert_int_equal(vmcfg_set_machine(&c, &m, err, sizeof(err)), 0);
	assert_int_equal(c.machine.vcpu_count, 2);
	assert_string_equal(c.machine.huge_pages, "None");

	m.vcpu_count = 0;
	assert_int_equal(vmcfg_set_machine(&c, &m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "vcpu_count"));
	assert_int_equal(c.machine.vcpu_count, 2); /* unchanged */
	m.vcpu_count = VMCFG_MAX_CPUS + 1;
	assert_int_equal(vmcfg_set_machine(&c, &m, err, sizeof(err)), -1);
	m.vcpu_count = 3;
	m.smt = true;
	assert_int_equal(vmcfg_set_machine(&c, &m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "smt"));
	m.smt = false;
	m.mem_size_mib = 16;
	assert_int_equal(vmcfg_set_machine(&c, &m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "mem_size_mib"));
	m.mem_size_mib = 256;
	strcpy(m.huge_pages, "2M");
	assert_int_equal(vmcfg_set_machine(&c, &m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "huge_pages"));
	strcpy(m.huge_pages, "None");
	strcpy(m.cpu_template, "T2");
	assert_int_equal(vmcfg_set_machine(&c, &m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cpu_template"));
	assert_int_equal(c.machine.mem_size_mib, 1024);
}

static void test_boot(void **state)
{
	(void)state;
	struct vm_config c;
	char err[512];
	vmcfg_init(&c);
	struct vmcfg_boot b = { 0 };
	strcpy(b.kernel_image_path, "/nonexistent/vmlinux");
	assert_int_equal(vmcfg_set_boot(&c, &b, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "No such file"));
	assert_false(c.has_boot);
	strcpy(b.kernel_image_path, dir);
	assert_int_equal(vmcfg_set_boot(&c, &b, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is a directory"));
	strcpy(b.kernel_image_path, empty);
	assert_int_equal(vmcfg_set_boot(&c, &b, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is empty"));
	strcpy(b.kernel_image_path, kernel);
	strcpy(b.initrd_path, "/nonexistent/initrd");
	assert_int_equal(vmcfg_set_boot(&c, &b, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "initrd_path"));
	b.initrd_path[0] = '\0';
	assert_int_equal(vmcfg_set_boot(&c, &b, err, sizeof(err)), 0);
	assert_true(c.has_boot);
	assert_int_equal(vmcfg_check_startable(&c, err, sizeof(err)), 0);
}

static void test_cmdline(void **state)
{
	(void)state;
	struct vm_config c;
	char err[512], line[VMCFG_CMDLINE_MAX];
	vmcfg_init(&c);
	struct vmcfg_boot b = { 0 };
	strcpy(b.kernel_image_path, kernel);
	assert_int_equal(vmcfg_set_boot(&c, &b, err, sizeof(err)), 0);
	assert_int_equal(vmcfg_cmdline(&c, line, sizeof(line)), 0);
	assert_string_equal(line, "console=ttyS0 panic=-1");

	/* The CLI appends; the API's boot_args is the whole line. */
	strcpy(b.boot_args, "quiet");
	b.append = true;
	assert_int_equal(vmcfg_set_boot(&c, &b, err, sizeof(err)), 0);
	assert_int_equal(vmcfg_cmdline(&c, line, sizeof(line)), 0);
	assert_string_equal(line, "console=ttyS0 panic=-1 quiet");
	b.append = false;
	b.has_boot_args = true;
	strcpy(b.boot_args, "console=ttyS0 reboot=k panic=1");
	assert_int_equal(vmcfg_set_boot(&c, &b, err, sizeof(err)), 0);

	/* A root drive adds root= as Firecracker does, and goes first. */
	struct vmcfg_drive d = { 0 };
	strcpy(d.drive_id, "scratch");
	strcpy(d.path_on_host, image);
	assert_int_equal(vmcfg_put_drive(&c, &d, err, sizeof(err)), 0);
	strcpy(d.drive_id, "rootfs");
	d.is_root_device = true;
	d.is_read_only = true;
	assert_int_equal(vmcfg_put_drive(&c, &d, err, sizeof(err)), 0);
	assert_int_equal(vmcfg_cmdline(&c, line, sizeof(line)), 0);
	assert_string_equal(line, "console=ttyS0 reboot=k panic=1 root=/dev/vda ro");
	unsigned order[VMCFG_MAX_DRIVES];
	assert_int_equal(vmcfg_drive_order(&c, order), 2);
	assert_string_equal(c.drives[order[0]].drive_id, "rootfs");
	assert_string_equal(c.drives[order[1]].drive_id, "scratch");
	strcpy(c.drives[order[0]].partuuid, "0eaa91a0-01");
	assert_int_equal(vmcfg_cmdline(&c, line, sizeof(line)), 0);
	assert_string_equal(line, "console=ttyS0 reboot=k panic=1 root=PARTUUID=0eaa91a0-01 ro");
	/* A line that cannot fit is refused, not cut. */
	assert_int_equal(vmcfg_cmdline(&c, line, 20), -1);
}

static void test_drives(void **state)
{
	(void)state;
	struct vm_config c;
	char err[512];
	vmcfg_init(&c);
	struct vmcfg_drive d = { 0 };
	strcpy(d.drive_id, "bad-id");
	strcpy(d.path_on_host, image);
	assert_int_equal(vmcfg_put_drive(&c, &d, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "drive_id"));
	strcpy(d.drive_id, "rootfs");
	strcpy(d.path_on_host, "/nonexistent.img");
	assert_int_equal(vmcfg_put_drive(&c, &d, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "path_on_host"));
	assert_int_equal(c.nr_drives, 0);
	strcpy(d.path_on_host, image);
	d.is_root_device = true;
	assert_int_equal(vmcfg_put_drive(&c, &d, err, sizeof(err)), 0);
	assert_string_equal(c.drives[0].cache_type, "Writeback"); /* vigil's default: a flush syncs */
	assert_string_equal(c.drives[0].io_engine, "Sync");
	/* The same id again replaces it (Firecracker's PUT semantics). */
	d.is_read_only = true;
	assert_int_equal(vmcfg_put_drive(&c, &d, err, sizeof(err)), 0);
	assert_int_equal(c.nr_drives, 1);
	assert_true(c.drives[0].is_read_only);
	assert_ptr_equal(vmcfg_find_drive(&c, "rootfs"), &c.drives[0]);
	assert_null(vmcfg_find_drive(&c, "other"));
	/* A second root device is refused. */
	strcpy(d.drive_id, "other");
	assert_int_equal(vmcfg_put_drive(&c, &d, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "root device"));
	d.is_root_device = false;
	strcpy(d.cache_type, "Sometimes");
	assert_int_equal(vmcfg_put_drive(&c, &d, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cache_type"));
	strcpy(d.cache_type, "Writeback");
	strcpy(d.io_engine, "Warp");
	assert_int_equal(vmcfg_put_drive(&c, &d, err, sizeof(err)), -1);
	strcpy(d.io_engine, "Async");
	assert_int_equal(vmcfg_put_drive(&c, &d, err, sizeof(err)), 0);
	for (unsigned i = c.nr_drives; i < VMCFG_MAX_DRIVES; i++) {
		snprintf(d.drive_id, sizeof(d.drive_id), "d%u", i);
		assert_int_equal(vmcfg_put_drive(&c, &d, err, sizeof(err)), 0);
	}
	strcpy(d.drive_id, "onetoomany");
	assert_int_equal(vmcfg_put_drive(&c, &d, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "at most"));
}

static void test_nets(void **state)
{
	(void)state;
	struct vm_config c;
	char err[512];
	vmcfg_init(&c);
	struct vmcfg_net n = { 0 };
	strcpy(n.iface_id, "net1");
	assert_int_equal(vmcfg_put_net(&c, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "host_dev_name"));
	strcpy(n.host_dev_name, "tap0");
	n.has_mac = true;
	memcpy(n.guest_mac, "\x06\x00\xac\x10\x00\x02", 6);
	assert_int_equal(vmcfg_put_net(&c, &n, err, sizeof(err)), 0);
	strcpy(n.iface_id, "net2");
	assert_int_equal(vmcfg_put_net(&c, &n, err, sizeof(err)), -1); /* same TAP */
	assert_non_null(strstr(err, "tap0"));
	strcpy(n.host_dev_name, "tap1");
	assert_int_equal(vmcfg_put_net(&c, &n, err, sizeof(err)), -1); /* same MAC */
	assert_non_null(strstr(err, "guest_mac"));
	n.guest_mac[5] = 3;
	assert_int_equal(vmcfg_put_net(&c, &n, err, sizeof(err)), 0);
	n.guest_mac[0] = 1; /* multicast */
	strcpy(n.iface_id, "net3");
	strcpy(n.host_dev_name, "tap3");
	assert_int_equal(vmcfg_put_net(&c, &n, err, sizeof(err)), -1);
	assert_int_equal(c.nr_nets, 2);
	assert_ptr_equal(vmcfg_find_net(&c, "net2"), &c.nets[1]);
	assert_null(vmcfg_find_net(&c, "net3"));
	struct vmcfg_net u = { 0 };
	strcpy(u.iface_id, "user0");
	u.vigil_user = true;
	assert_int_equal(vmcfg_put_net(&c, &u, err, sizeof(err)), 0);
	strcpy(u.host_dev_name, "tap9");
	assert_int_equal(vmcfg_put_net(&c, &u, err, sizeof(err)), -1);
}

static void test_vsock_logger_metrics_console(void **state)
{
	(void)state;
	struct vm_config c;
	char err[512], path[160];
	vmcfg_init(&c);
	struct vmcfg_vsock v = { .guest_cid = 2 };
	strcpy(v.uds_path, "/tmp/v.sock");
	assert_int_equal(vmcfg_set_vsock(&c, &v, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "guest_cid"));
	v.guest_cid = 3;
	assert_int_equal(vmcfg_set_vsock(&c, &v, err, sizeof(err)), 0);
	assert_true(c.has_vsock);

	struct vmcfg_logger l = { .level = LOG_DEBUG };
	strcpy(l.log_path, "/nonexistent/dir/log");
	assert_int_equal(vmcfg_set_logger(&c, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "log_path"));
	snprintf(path, sizeof(path), "%s/log", dir);
	strcpy(l.log_path, path);
	assert_int_equal(vmcfg_set_logger(&c, &l, err, sizeof(err)), 0);
	unlink(path);
	assert_int_equal(vmcfg_log_level_parse("warning"), LOG_WARN);
	assert_int_equal(vmcfg_log_level_parse("Trace"), LOG_TRACE);
	assert_int_equal(vmcfg_log_level_parse("loud"), -1);
	assert_string_equal(vmcfg_log_level_name(LOG_WARN), "Warning");

	struct vmcfg_metrics m = { 0 };
	assert_int_equal(vmcfg_set_metrics(&c, &m, err, sizeof(err)), -1);
	snprintf(m.metrics_path, sizeof(m.metrics_path), "%s/metrics", dir);
	assert_int_equal(vmcfg_set_metrics(&c, &m, err, sizeof(err)), 0);
	unlink(m.metrics_path);

	struct vmcfg_console con = { .out = CONSOLE_FILE };
	assert_int_equal(vmcfg_set_console(&c, &con, err, sizeof(err)), -1);
	strcpy(con.path, "/tmp/x");
	assert_int_equal(vmcfg_set_console(&c, &con, err, sizeof(err)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_machine),
		cmocka_unit_test(test_boot),
		cmocka_unit_test(test_cmdline),
		cmocka_unit_test(test_drives),
		cmocka_unit_test(test_nets),
		cmocka_unit_test(test_vsock_logger_metrics_console),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
