/* ctl_http — parsing HTTP/1.1 responses for `vigil ctl` (see ctl_http.h). */
#include "cli/ctl_http.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The end of the line starting at p (its "\r\n"), or NULL if not there yet. */
static const char *line_end(const char *p, const char *end)
{
	for (; p + 1 < end; p++)
		if (p[0] == '\r' && p[1] == '\n')
			return p;
	return NULL;
}

static bool header_is(const char *p, const char *eol, const char *name, const char **value)
{
	size_t n = strlen(name);
	if ((size_t)(eol - p) <= n || strncasecmp(p, name, n) != 0 || p[n] != ':')
		return false;
	p += n + 1;
	while (p < eol && (*p == ' ' || *p == '\t'))
		p++;
	*value = p;
	return true;
}

static int parse_head(const char *buf, const char *end, struct http_resp *r, const char **body)
{
	const char *eol = line_end(buf, end);
	if (!eol)
		return 0;
	/* "HTTP/1.1 204 No Content" */
	if (eol - buf < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)buf[7]) ||
	    buf[8] != ' ')
		return -1;
	const char *p = buf + 9;
	if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]) ||
	    (p + 3 < eol && p[3] != ' '))
		return -1;
	r->status = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	p += 3;
	if (p < eol)
		p++;
	size_t rl = (size_t)(eol - p) < sizeof(r->reason) - 1 ? (size_t)(eol - p) : sizeof(r->reason) - 1;
	memcpy(r->reason, p, rl);
	r->reason[rl] = 0;
	r->content_length = -1;
	r->chunked = false;

	for (p = eol + 2;; p = eol + 2) {
		eol = line_end(p, end);
		if (!eol)
			return 0;
		if (eol == p) {
			*body = eol + 2;
			return 1;
		}
		const char *v;
		if (header_is(p, eol, "Content-Length", &v)) {
			char *e;
			long n = strtol(v, &e, 10);
			if (e == v || n < 0)
				return -1;
			r->content_length = n;
		} else if (header_is(p, eol, "Transfer-Encoding", &v)) {
			/* chunked must be the last coding; vigil's servers send only it. */
			size_t vl = (size_t)(eol - v);
			while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			r->chunked = vl >= 7 && strncasecmp(v + vl - 7, "chunked", 7) == 0;
		}
	}
}

static int set_body(struct http_resp *r, const char *p, size_t n)
{
	r->body = malloc(n + 1);
	if (!r->body)
		return -1;
	memcpy(r->body, p, n);
	r->body[n] = 0;
	r->body_len = n;
	return 1;
}

static int parse_chunked(const char *p, const char *end, struct http_resp *r)
{
	/* Two passes over what is there: first check it is whole, then copy. */
	size_t total = 0;
	const char *q = p;
	for (;;) {
		const char *eol = line_end(q, end);
		if (!eol)
			return 0;
		char *e;
		unsigned long n = strtoul(q, &e, 16);
		if (e == q || (e < eol && *e != ';' && *e != ' '))
			return -1;
		q = eol + 2;
		if (n == 0) {
			/* Trailers, then the empty line. */
			for (;;) {
				eol = line_end(q, end);
				if (!eol)
					return 0;
				if (eol == q)
					break;
				q = eol + 2;
			}
			break;
		}
		if ((size_t)(end - q) < n + 2)
			return 0;
		if (q[n] != '\r' || q[n + 1] != '\n')
			return -1;
		total += n;
		q += n + 2;
	}
	r->body = malloc(total + 1);
	if (!r->body)
		return -1;
	r->body_len = 0;
	for (q = p;;) {
		const char *eol = line_end(q, end);
		unsigned long n = strtoul(q, NULL, 16);
		q = eol + 2;
		if (n == 0)
			break;
		memcpy(r->body + r->body_len, q, n);
		r->body_len += n;
		q += n + 2;
	}
	r->body[r->body_len] = 0;
	return 1;
}

int http_parse_response(const char *buf, size_t len, bool eof, struct http_resp *r)
{
	const char *end = buf + len, *body = NULL;
	memset(r, 0, sizeof(*r));
	int h = parse_head(buf, end, r, &body);
	if (h <= 0)
		return h < 0 ? -1 : (eof ? -1 : 0);
	/* 1xx, 204 and 304 have no body whatever the headers say. */
	if (r->status < 200 || r->status == 204 || r->status == 304)
		return set_body(r, "", 0);
	if (r->chunked) {
		int c = parse_chunked(body, end, r);
		return c == 0 && eof ? -1 : c;
	}
	if (r->content_length >= 0) {
		if ((size_t)(end - body) < (size_t)r->content_length)
			return eof ? -1 : 0;
		return set_body(r, body, (size_t)r->content_length);
	}
	if (!eof)
		return 0;
	return set_body(r, body, (size_t)(end - body));
}

void http_resp_free(struct http_resp *r)
{
	free(r->body);
	r->body = NULL;
}

char *http_fault_message(const char *body, size_t len)
{
	json_t *j = json_loadb(body, len, 0, NULL);
	const char *m = json_string_value(json_object_get(j, "fault_message"));
	char *out = m ? strdup(m) : NULL;
	json_decref(j);
	return out;
}
