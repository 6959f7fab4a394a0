/* routes — Firecracker's API as a pure function: (method, path, body) →
 * (status, body), run on the control thread. The HTTP server (api/http.c)
 * calls api_handle() inside vmm_call(); the unit tests and the fuzz target
 * call it directly with a fake VMM. */
#ifndef VIGIL_API_ROUTES_H
#define VIGIL_API_ROUTES_H

#include <stddef.h>

struct vmm;

#define API_MAX_BODY 51200 /* Firecracker's default --http-api-max-payload-size */

struct api_response {
	int status;		  /* 200, 204 or 400 */
	char *body;		  /* malloc'd, NUL-terminated; NULL for 204 */
	size_t len;		  /* body bytes when binary (not NUL-terminated); 0: strlen(body) */
	const char *content_type; /* static */
	const char *group;	  /* metrics group ("drive", "actions", ...) for metrics_count_api */
};

/* Handles one request; path may carry a query ("/vigil/memory?gpa=0x1000&len=16").
 * body may be NULL when len is 0. Always fills *out;
 * the caller frees out->body with api_response_free(). */
void api_handle(struct vmm *m, const char *method, const char *path, const char *body, size_t len,
		struct api_response *out);

void api_response_free(struct api_response *r);

/* Sets *out to 400 {"fault_message": msg}: for errors found before routing. */
void api_fault(struct api_response *out, const char *msg);

#endif
