/* routes_int — what routes.c shares with the files that hold some of its
 * handlers (routes_introspect.c): the request context and the response
 * setters. Used by src/api/routes*.c only. */
#ifndef VIGIL_API_ROUTES_INT_H
#define VIGIL_API_ROUTES_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "api/routes.h"

struct ctx {
	struct vmm *m;
	const char *id;	   /* the path's {id}, NUL-terminated copy */
	const char *query; /* what follows '?' in the URL, "" if nothing */
	json_t *body;	   /* NULL for GET */
	struct api_response *out;
	char err[512];
};

/* Sets 200 (or status) with the JSON object o (consumed). */
void api_set_json(struct api_response *out, int status, json_t *o);
/* "0x..." as a JSON string, the form registers and addresses take. */
json_t *api_hex(uint64_t v);
/* The body has this one string field and no other; -1 + x->err. */
int api_only_field(struct ctx *x, const char *what, const char *field);

/* vigil's introspection (routes_introspect.c). */
int api_get_memory(struct ctx *x);
int api_get_translate(struct ctx *x);
int api_put_dump(struct ctx *x);

/* Firecracker's snapshot calls (routes_snapshot.c). */
int api_put_snapshot_create(struct ctx *x);
int api_put_snapshot_load(struct ctx *x);

#endif
