/* mhd — libmicrohttpd, loaded when the API server first starts (dlopen)
 * rather than at exec: it brings GnuTLS and ten more shared libraries with
 * it, which a `vigil run` without --api-sock should neither pay for at
 * start-up nor carry in its address space. The table has the functions
 * http.c calls, typed from <microhttpd.h> itself. Used by api/http.c only. */
#ifndef VIGIL_API_MHD_H
#define VIGIL_API_MHD_H

#include <stddef.h>

#include <microhttpd.h>

struct mhd_lib {
	__typeof__(MHD_start_daemon) *start_daemon;
	__typeof__(MHD_stop_daemon) *stop_daemon;
	__typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
	__typeof__(MHD_add_response_header) *add_response_header;
	__typeof__(MHD_queue_response) *queue_response;
	__typeof__(MHD_destroy_response) *destroy_response;
	__typeof__(MHD_lookup_connection_value) *lookup_connection_value;
	__typeof__(MHD_get_connection_values) *get_connection_values;
};

extern struct mhd_lib mhd;

/* Loads the library once (later calls return at once). 0, or -1 with a
 * one-line reason in err ("libmicrohttpd.so.12: cannot open ..."). */
int mhd_load(char *err, size_t errlen);

#endif
