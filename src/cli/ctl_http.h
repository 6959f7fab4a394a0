/* ctl_http — the HTTP/1.1 response side of `vigil ctl` (cli/ctl.c): parses
 * a status line, headers and a body framed by Content-Length, chunked
 * transfer coding or the end of the connection; and pulls Firecracker's
 * {"fault_message": ...} out of an error body. No I/O: unit-tested. */
#ifndef VIGIL_CLI_CTL_HTTP_H
#define VIGIL_CLI_CTL_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct http_resp {
	int status; /* 200, 204, 400, ... */
	char reason[64];
	long content_length; /* -1: not given */
	bool chunked;
	char *body; /* malloc'd, NUL-terminated (decoded when chunked) */
	size_t body_len;
};

/* Parses buf[0..len): 1 = a whole response (r->body set; free it with
 * http_resp_free), 0 = need more bytes, -1 = not a valid response. `eof`
 * tells that no more bytes will come (a body framed by the close). */
int http_parse_response(const char *buf, size_t len, bool eof, struct http_resp *r);
void http_resp_free(struct http_resp *r);

/* The fault_message of a Firecracker error body, malloc'd; NULL if the body
 * is not JSON with a string fault_message. */
char *http_fault_message(const char *body, size_t len);

#endif
