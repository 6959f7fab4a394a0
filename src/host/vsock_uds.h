/* vsock_uds — the vsock backend on Unix domain sockets, Firecracker's
 * convention: host clients connect to the listener at PATH (and write
 * "CONNECT <port>\n", which the device parses); a guest connection to host
 * port P goes to PATH_P. host_vsock_new() puts a virtio-vsock device over
 * it. Used by the builder (src/cli/run_devices.c) and tests.
 * Threading: as devices/vsock_backend.h; streams are watched by `loop`. */
#ifndef VIGIL_HOST_VSOCK_UDS_H
#define VIGIL_HOST_VSOCK_UDS_H

#include <stddef.h>

#include "devices/virtio_vsock.h"
#include "devices/vsock_backend.h"
#include "host/evloop.h"

/* Listens on `path` (a stale socket file there is removed first; anything
 * else there, or a missing directory, is an error); host clients are taken
 * from start() on. NULL with a one-line reason in err. */
struct vsock_backend *vsock_uds_new(const char *path, struct evloop *loop, char *err, size_t errlen);

/* The device over a vsock_uds backend, its timers and clock on `loop` and
 * the host clock. NULL with a one-line reason in err. */
struct virtio_dev *host_vsock_new(const struct virtio_vsock_config *cfg, const struct gmem *mem,
				  struct dev_gate gate, struct evloop *loop, char *err, size_t errlen);

#endif
