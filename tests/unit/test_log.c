/* Unit tests for vmm/log.c, Firecracker's logger: the line format (time,
 * instance id, thread, level, origin), the level filter, log_path files and
 * FIFOs, and whole lines from many threads at once. */
#define _GNU_SOURCE

/* cmocka needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/log.h"

static char dir[64];

static int setup(void **state)
{
	strcpy(dir, "/tmp/vigil-log-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	vlog_close();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void configure(const char *name, enum vmcfg_log_level level, bool show_level, bool origin, char *path)
{
	struct vmcfg_logger l = {.level = level, .show_level = show_level, .show_log_origin = origin};
	char err[256];
	sprintf(path, "%s/%s", dir, name);
	snprintf(l.log_path, sizeof(l.log_path), "%s", path);
	assert_int_equal(vlog_configure(&l, "my-vm", err, sizeof(err)), 0);
}

static char *slurp(const char *path)
{
	static char buf[1 << 20];
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

static void assert_matches(const char *text, const char *re)
{
	regex_t r;
	assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NEWLINE), 0);
	int rc = regexec(&r, text, 0, NULL, 0);
	regfree(&r);
	if (rc != 0)
		fail_msg("no line matches %s in:\n%s", re, text);
}

#define STAMP "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{9} "

static void line_with_level_and_origin(void **state)
{
	char path[128], re[256];
	configure("a.log", LOG_INFO, true, true, path);
	int line = __LINE__ + 1;
	VLOG_WARN("disk %s is %d%% full", "rootfs", 90);
	snprintf(re, sizeof(re),
		 STAMP "\\[my-vm:main:WARN:tests/unit/test_log.c:%d\\] disk rootfs is 90%% full$", line);
	assert_matches(slurp(path), re);
}

static void plain_line(void **state)
{
	char path[128];
	configure("b.log", LOG_INFO, false, false, path);
	VLOG_INFO("hello");
	assert_matches(slurp(path), STAMP "\\[my-vm:main\\] hello$");
}

static void level_filter(void **state)
{
	char path[128];
	configure("c.log", LOG_WARN, true, false, path);
	VLOG_ERROR("e");
	VLOG_WARN("w");
	VLOG_INFO("i");
	VLOG_DEBUG("d");
	const char *t = slurp(path);
	assert_matches(t, "\\[my-vm:main:ERROR\\] e$");
	assert_matches(t, "\\[my-vm:main:WARN\\] w$");
	assert_null(strstr(t, "] i\n"));
	assert_null(strstr(t, "] d\n"));

	configure("d.log", LOG_OFF, true, false, path);
	VLOG_ERROR("nothing");
	assert_string_equal(slurp(path), "");

	configure("e.log", LOG_TRACE, true, false, path);
	vlog(LOG_TRACE, __FILE__, __LINE__, "t");
	assert_matches(slurp(path), "\\[my-vm:main:TRACE\\] t$");
}

static void *named(void *arg)
{
	pthread_setname_np(pthread_self(), "fc_api");
	VLOG_INFO("from the api");
	return NULL;
}

static void *unnamed_lines(void *arg)
{
	for (int i = 0; i < 500; i++)
		VLOG_INFO("thread %ld line %d %s", (long)(intptr_t)arg, i,
			  "padding padding padding padding padding padding padding padding");
	return NULL;
}

static void thread_names(void **state)
{
	char path[128];
	pthread_t t;
	configure("f.log", LOG_INFO, false, false, path);
	pthread_create(&t, NULL, named, NULL);
	pthread_join(t, NULL);
	assert_matches(slurp(path), "\\[my-vm:fc_api\\] from the api$");
}

static void lines_never_mix(void **state)
{
	char path[128];
	pthread_t t[4];
	configure("g.log", LOG_INFO, true, true, path);
	for (long i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, unnamed_lines, (void *)(intptr_t)i);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	char *text = slurp(path);
	regex_t r;
	assert_int_equal(regcomp(&r,
				 STAMP
				 "\\[my-vm:[^:]+:INFO:tests/unit/test_log.c:[0-9]+\\] thread [0-3] line "
				 "[0-9]+ (padding ?){8}$",
				 REG_EXTENDED | REG_NOSUB),
			 0);
	unsigned lines = 0;
	for (char *save, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (regexec(&r, l, 0, NULL, 0) != 0)
			fail_msg("torn line: %s", l);
		lines++;
	}
	regfree(&r);
	assert_int_equal(lines, 2000);
}

static void appends_to_existing_file(void **state)
{
	char path[128];
	sprintf(path, "%s/h.log", dir);
	FILE *f = fopen(path, "w");
	fputs("old line\n", f);
	fclose(f);
	struct vmcfg_logger l = {.level = LOG_INFO};
	char err[256];
	snprintf(l.log_path, sizeof(l.log_path), "%s", path);
	assert_int_equal(vlog_configure(&l, "my-vm", err, sizeof(err)), 0);
	VLOG_INFO("new line");
	const char *t = slurp(path);
	assert_memory_equal(t, "old line\n", 9);
	assert_matches(t, "\\] new line$");
}

static void fifo_without_reader(void **state)
{
	char path[128], err[256], buf[256];
	sprintf(path, "%s/log.fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	struct vmcfg_logger l = {.level = LOG_INFO};
	snprintf(l.log_path, sizeof(l.log_path), "%s", path);
	assert_int_equal(vlog_configure(&l, "my-vm", err, sizeof(err)), 0); /* must not block */
	VLOG_INFO("into the pipe");
	int rd = open(path, O_RDONLY | O_NONBLOCK);
	assert_true(rd >= 0);
	ssize_t n = read(rd, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = 0;
	close(rd);
	assert_matches(buf, "\\[my-vm:main\\] into the pipe$");
}

static void unopenable_path(void **state)
{
	struct vmcfg_logger l = {.level = LOG_INFO};
	char err[256] = "";
	snprintf(l.log_path, sizeof(l.log_path), "/nonexistent-dir/x.log");
	assert_int_equal(vlog_configure(&l, "my-vm", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent-dir/x.log"));
	assert_non_null(strstr(err, "No such file or directory"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(line_with_level_and_origin, setup, teardown),
	    cmocka_unit_test_setup_teardown(plain_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(level_filter, setup, teardown),
	    cmocka_unit_test_setup_teardown(thread_names, setup, teardown),
	    cmocka_unit_test_setup_teardown(lines_never_mix, setup, teardown),
	    cmocka_unit_test_setup_teardown(appends_to_existing_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(fifo_without_reader, setup, teardown),
	    cmocka_unit_test(unopenable_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
