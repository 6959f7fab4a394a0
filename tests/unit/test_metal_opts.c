/* vigil-metal's command line (src/metal/options.c) on the host: vigil run's
 * options, syntax and messages, quoting as a bootloader passes the line,
 * and the loader's own first word (the image's path) skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/metal/options.c"

static struct metal_opts o;
static char err[256];

static int parse(const char *line)
{
	err[0] = 0;
	return metal_opts_parse(line, &o, err, sizeof(err));
}

static void defaults(void **state)
{
	(void)state;
	assert_int_equal(parse("/boot/vigil-metal"), 0);
	assert_int_equal(o.mem, 256ull << 20);
	assert_int_equal(o.cpus, 1);
	assert_string_equal(o.cmdline, "console=ttyS0 panic=-1");
	assert_false(o.stats);
	assert_false(o.trace);
	assert_false(o.virtio_console);
	assert_int_equal(parse(""), 0);
}

static void options(void **state)
{
	(void)state;
	assert_int_equal(parse("build/vigil-metal --mem 1G --cpus 1 --stats --trace - --console-device virtio"), 0);
	assert_int_equal(o.mem, 1ull << 30);
	assert_true(o.stats);
	assert_true(o.trace);
	assert_true(o.virtio_console);
	assert_string_equal(o.cmdline, "console=hvc0 panic=-1");
	/* No file name first (GRUB passes options only when there is none). */
	assert_int_equal(parse("--mem 100M"), 0);
	assert_int_equal(o.mem, 100ull << 20);
	/* Rounded up to the 2 MiB pages guest RAM is mapped with. */
	assert_int_equal(parse("x --mem 65M"), 0);
	assert_int_equal(o.mem, 66ull << 20);
}

static void quoting(void **state)
{
	(void)state;
	assert_int_equal(parse("img --cmdline \"quiet loglevel=3\" --stats"), 0);
	assert_string_equal(o.cmdline, "console=ttyS0 panic=-1 quiet loglevel=3");
	assert_true(o.stats);
	assert_int_equal(parse("img --cmdline 'a \"b\"'"), 0);
	assert_string_equal(o.cmdline, "console=ttyS0 panic=-1 a \"b\"");
	assert_int_equal(parse("img --cmdline \"open"), -1);
	assert_non_null(strstr(err, "unterminated quote"));
}

static void mistakes(void **state)
{
	(void)state;
	assert_int_equal(parse("img --mem lots"), -1);
	assert_string_equal(err, "--mem 'lots': expected a size such as 256M or 2G");
	assert_int_equal(parse("img --mem 16M"), -1);
	assert_string_equal(err, "--mem 16M is below the minimum of 64M");
	assert_int_equal(parse("img --cpus 0"), -1);
	assert_string_equal(err, "--cpus '0': expected a number from 1 to 64");
	assert_int_equal(parse("img --cpus 65"), -1);
	assert_int_equal(parse("img --mem"), -1);
	assert_string_equal(err, "option '--mem' requires an argument");
	assert_int_equal(parse("img --memory 64M"), -1);
	assert_non_null(strstr(err, "unknown option '--memory'"));
	assert_int_equal(parse("img --trace /tmp/t.json"), -1);
	assert_non_null(strstr(err, "no files"));
	assert_int_equal(parse("img --console-device vga"), -1);
	assert_string_equal(err, "--console-device 'vga': expected serial or virtio");
	assert_int_equal(parse("img --selftest nothing"), -1);
	/* A stray word after the image's path is an unknown option too. */
	assert_int_equal(parse("img stray"), -1);
}

static void too_long(void **state)
{
	(void)state;
	static char line[4 * METAL_CMDLINE_MAX];
	strcpy(line, "img --cmdline ");
	memset(line + strlen(line), 'a', METAL_CMDLINE_MAX);
	assert_int_equal(parse(line), -1);
	static char many[8192];
	many[0] = 0;
	for (int i = 0; i < 100; i++)
		strcat(many, "--stats ");
	assert_int_equal(parse(many), -1); /* more words than it takes */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults), cmocka_unit_test(options), cmocka_unit_test(quoting),
		cmocka_unit_test(mistakes), cmocka_unit_test(too_long),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
