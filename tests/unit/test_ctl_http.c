/* Unit tests for cli/ctl_http.c, the response side of `vigil ctl`: status
 * line, headers, Content-Length, chunked bodies, bodies ended by the close,
 * partial input, malformed input, and fault_message extraction. */

/* cmocka needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdlib.h>
#include <string.h>

#include "cli/ctl_http.h"

static int parse(const char *s, bool eof, struct http_resp *r)
{
	return http_parse_response(s, strlen(s), eof, r);
}

static void content_length(void **state)
{
	struct http_resp r;
	const char *s = "HTTP/1.1 200 OK\r\nServer: Firecracker API\r\ncontent-length: 5\r\n\r\nhelloEXTRA";
	assert_int_equal(parse(s, false, &r), 1);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.reason, "OK");
	assert_int_equal(r.content_length, 5);
	assert_false(r.chunked);
	assert_int_equal(r.body_len, 5);
	assert_string_equal(r.body, "hello");
	http_resp_free(&r);
}

static void partial_input_needs_more(void **state)
{
	struct http_resp r;
	const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
	size_t n = strlen(s);
	/* Every proper prefix is incomplete, never an error or a short body. */
	for (size_t i = 0; i < n; i++)
		assert_int_equal(http_parse_response(s, i, false, &r), 0);
	assert_int_equal(http_parse_response(s, n, false, &r), 1);
	assert_string_equal(r.body, "0123456789");
	http_resp_free(&r);
	/* The connection closed before the body was whole: an error. */
	assert_int_equal(http_parse_response(s, n - 3, true, &r), -1);
}

static void chunked(void **state)
{
	struct http_resp r;
	const char *s =
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n";
	assert_int_equal(parse(s, false, &r), 1);
	assert_true(r.chunked);
	assert_string_equal(r.body, "Wikipedia in \r\n\r\nchunks.");
	assert_int_equal(r.body_len, 24);
	http_resp_free(&r);
	size_t n = strlen(s);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(http_parse_response(s, i, false, &r), 0);
	const char *bad = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n";
	assert_int_equal(parse(bad, false, &r), -1);
	const char *overrun = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n";
	assert_int_equal(parse(overrun, false, &r), -1);
}

static void no_content(void **state)
{
	struct http_resp r;
	assert_int_equal(parse("HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n", false, &r), 1);
	assert_int_equal(r.status, 204);
	assert_string_equal(r.reason, "No Content");
	assert_int_equal(r.body_len, 0);
	http_resp_free(&r);
}

static void body_until_close(void **state)
{
	struct http_resp r;
	const char *s = "HTTP/1.0 200 OK\r\n\r\nall of it";
	assert_int_equal(parse(s, false, &r), 0);
	assert_int_equal(parse(s, true, &r), 1);
	assert_string_equal(r.body, "all of it");
	http_resp_free(&r);
}

static void malformed(void **state)
{
	struct http_resp r;
	assert_int_equal(parse("SSH-2.0-OpenSSH\r\n\r\n", false, &r), -1);
	assert_int_equal(parse("HTTP/1.1 2x0 OK\r\n\r\n", false, &r), -1);
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: -4\r\n\r\n", false, &r), -1);
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n", true, &r), -1);
	assert_int_equal(parse("", true, &r), -1);
}

static void fault_message(void **state)
{
	const char *b =
	    "{\"fault_message\": \"The requested operation is not supported after starting the microVM.\"}";
	char *m = http_fault_message(b, strlen(b));
	assert_non_null(m);
	assert_string_equal(m, "The requested operation is not supported after starting the microVM.");
	free(m);
	assert_null(http_fault_message("not json", 8));
	assert_null(http_fault_message("{\"error\": \"x\"}", 14));
	assert_null(http_fault_message("{\"fault_message\": 3}", 20));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(content_length),	cmocka_unit_test(partial_input_needs_more),
	    cmocka_unit_test(chunked),		cmocka_unit_test(no_content),
	    cmocka_unit_test(body_until_close), cmocka_unit_test(malformed),
	    cmocka_unit_test(fault_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
