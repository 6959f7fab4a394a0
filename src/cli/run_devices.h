/* run_devices — the virtio devices `vigil run` attaches: the --disk, --net,
 * --vsock, --rng and --console-device options, parsed up front (so a bad
 * spec fails before /dev/kvm is touched), then created and put on the
 * board's PCI bus. */
#ifndef VIGIL_CLI_RUN_DEVICES_H
#define VIGIL_CLI_RUN_DEVICES_H

#include <stdbool.h>
#include <stddef.h>

#include "arch/x86/pc.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_net.h"
#include "devices/virtio_vsock.h"
#include "host/evloop.h"

#define RUN_MAX_DISKS 8
#define RUN_MAX_NETS 4
#define RUN_MAX_VIRTIO (RUN_MAX_DISKS + RUN_MAX_NETS + 3)

enum run_dev_opt { RUN_DEV_DISK, RUN_DEV_NET, RUN_DEV_VSOCK, RUN_DEV_RNG, RUN_DEV_CONSOLE };

struct run_devices {
	struct virtio_blk_config disk[RUN_MAX_DISKS];
	unsigned nr_disks;
	struct virtio_net_config net[RUN_MAX_NETS];
	unsigned nr_nets;
	struct virtio_vsock_config vsock;
	bool has_vsock;
	bool rng;
	bool virtio_console; /* the terminal is on hvc0 rather than COM1 */
};

/* One option's value; 0 or -1 with a one-line reason in err. */
int run_devices_parse(struct run_devices *r, enum run_dev_opt opt, const char *arg, char *err, size_t errlen);

/* Devices created for one VM, freed after the transports and the event loop. */
struct run_attached {
	unsigned n;
	struct virtio_dev *dev[RUN_MAX_VIRTIO];
	void (*free[RUN_MAX_VIRTIO])(struct virtio_dev *d);
	struct virtio_dev *console; /* the virtio console, if the terminal is on it */
};

/* `loop` is where host backends (TAP, slirp, vsock sockets) watch their fds. */
int run_devices_attach(const struct run_devices *r, struct vm *vm, struct pc_board *pc, struct pc_config *cfg,
		       struct evloop *loop, struct run_attached *a, char *err, size_t errlen);
void run_devices_free(struct run_attached *a);

#endif
