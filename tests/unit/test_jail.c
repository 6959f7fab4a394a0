/* Unit tests for the jailer's input checks (cli/jail.c): the VM id as
 * Firecracker's jailer takes it, and the paths it brings into a jail. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "cli/jail.h"
#include "vmm/config.h"

static void test_id(void **state)
{
	(void)state;
	char id[80];
	assert_true(vmcfg_instance_id_ok("a"));
	assert_true(vmcfg_instance_id_ok("551e7604-e35c-42b3-b825-416853441234"));
	assert_true(vmcfg_instance_id_ok("VM-1"));
	memset(id, 'a', 64);
	id[64] = '\0';
	assert_true(vmcfg_instance_id_ok(id));
	id[64] = 'a';
	id[65] = '\0';
	assert_false(vmcfg_instance_id_ok(id)); /* 65 characters */
	assert_false(vmcfg_instance_id_ok(""));
	assert_false(vmcfg_instance_id_ok("vm_1"));
	assert_false(vmcfg_instance_id_ok("vm/1"));
	assert_false(vmcfg_instance_id_ok(".."));
	assert_false(vmcfg_instance_id_ok("vm 1"));
	assert_false(vmcfg_instance_id_ok("vm\n"));
	assert_false(vmcfg_instance_id_ok("v\xc3\xa9"));
}

static void test_path(void **state)
{
	(void)state;
	assert_true(jail_path_ok("/images/vmlinux"));
	assert_true(jail_path_ok("rel/disk.img"));
	assert_true(jail_path_ok("/a/..b/c"));
	assert_true(jail_path_ok("/a/b../c"));
	assert_true(jail_path_ok("//a//b"));
	assert_false(jail_path_ok(""));
	assert_false(jail_path_ok(".."));
	assert_false(jail_path_ok("/.."));
	assert_false(jail_path_ok("/a/../etc/shadow"));
	assert_false(jail_path_ok("a/.."));
	assert_false(jail_path_ok("a//..//b"));
	char longp[5000];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	assert_false(jail_path_ok(longp));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id),
		cmocka_unit_test(test_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
