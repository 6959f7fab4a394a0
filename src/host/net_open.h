/* net_open — builds a virtio-net device over the host backend a --net
 * option asks for (a TAP interface or a user-mode libslirp network); the
 * device model itself (devices/virtio_net.c) never opens anything. Used by
 * the builder (src/cli/run_devices.c) and tests. Threading: call before
 * the event loop runs the device, or on it. */
#ifndef VIGIL_HOST_NET_OPEN_H
#define VIGIL_HOST_NET_OPEN_H

#include "devices/virtio_net.h"
#include "host/evloop.h"

/* Opens the backend cfg asks for and returns a device ready for a
 * transport. `loop` is the VM's event thread, where the backend's fds and
 * timers are watched. NULL with a one-line reason in err ("tap vtap0:
 * Operation not permitted"). cfg is not kept. */
struct virtio_dev *host_net_new(const struct virtio_net_config *cfg, const struct gmem *mem,
				struct dev_gate gate, struct evloop *loop, char *err, size_t errlen);

#endif
