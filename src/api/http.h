/* http — the API's HTTP/1.1 server on a Unix socket (libmicrohttpd, one
 * internal epoll/poll thread). It collects each request's body (at most
 * API_MAX_BODY bytes) and runs the router (api/routes.c) on the control
 * thread through vmm_call(). Started by `vigil run --api-sock` and by the
 * test server (tests/unit/api_fake_server.c). One server per process. */
#ifndef VIGIL_API_HTTP_H
#define VIGIL_API_HTTP_H

#include <stddef.h>

struct vmm;

/* Listens on path (mode 0600). A stale socket file (no listener) is
 * replaced; a live socket or any other file there is an error.
 * 0, or -1 + err. */
int api_server_start(const char *path, struct vmm *m, char *err, size_t errlen);

/* Stops the server and removes the socket file. Safe if not started. */
void api_server_stop(void);

#endif
