#include "cli/run_devices.h"

#include <stdio.h>
#include <string.h>

#include "devices/virtio_console.h"
#include "devices/virtio_rng.h"
#include "host/blk_file.h"
#include "host/entropy.h"
#include "host/net_open.h"
#include "host/vsock_uds.h"

int run_devices_parse(struct run_devices *r, enum run_dev_opt opt, const char *arg, char *err, size_t errlen)
{
	switch (opt) {
	case RUN_DEV_DISK:
		if (r->nr_disks == RUN_MAX_DISKS) {
			snprintf(err, errlen, "--disk: at most %d disks", RUN_MAX_DISKS);
			return -1;
		}
		return virtio_blk_parse(arg, &r->disk[r->nr_disks++], err, errlen);
	case RUN_DEV_NET:
		if (r->nr_nets == RUN_MAX_NETS) {
			snprintf(err, errlen, "--net: at most %d network devices", RUN_MAX_NETS);
			return -1;
		}
		return virtio_net_parse(arg, &r->net[r->nr_nets++], err, errlen);
	case RUN_DEV_VSOCK:
		if (r->has_vsock) {
			snprintf(err, errlen, "--vsock: only one vsock device");
			return -1;
		}
		r->has_vsock = true;
		return virtio_vsock_parse(arg, &r->vsock, err, errlen);
	case RUN_DEV_RNG:
		r->rng = true;
		return 0;
	case RUN_DEV_CONSOLE:
		if (strcmp(arg, "serial") == 0 || strcmp(arg, "virtio") == 0) {
			r->virtio_console = strcmp(arg, "virtio") == 0;
			return 0;
		}
		snprintf(err, errlen, "--console-device '%s': expected serial or virtio", arg);
		return -1;
	}
	return -1;
}

/* Hands a new device to the board, or frees it; names it for --stats. */
static int attach(struct run_attached *a, struct pc_board *pc, struct pc_config *cfg, struct virtio_dev *d,
		  void (*free_fn)(struct virtio_dev *), char *err, size_t errlen)
{
	if (!d)
		return -1;
	if (pc_add_virtio(pc, cfg, d, err, errlen) < 0) {
		free_fn(d);
		return -1;
	}
	a->dev[a->n] = d;
	a->free[a->n] = free_fn;
	a->n++;
	return 0;
}

/* Registers the device under a generated id ("drive0", "net1", ...). */
static struct dev_gate gate(struct vm *vm, const char *prefix, unsigned i, const char *kind, bool ro)
{
	char id[VDEV_ID_MAX + 1];
	snprintf(id, sizeof(id), "%s%u", prefix, i);
	struct vdev *d = vm_dev_add(vm, id, kind, NULL, NULL);
	if (!d)
		return (struct dev_gate){ .policy = &vm->policy, .read_only = ro };
	return vm_dev_gate(vm, d, ro);
}

int run_devices_attach(const struct run_devices *r, struct vm *vm, struct pc_board *pc, struct pc_config *cfg,
		       struct evloop *loop, struct run_attached *a, char *err, size_t errlen)
{
	for (unsigned i = 0; i < r->nr_disks; i++) {
		struct dev_gate g = gate(vm, "drive", i, "virtio-blk", r->disk[i].read_only);
		if (attach(a, pc, cfg, host_blk_new(&r->disk[i], &vm->mem, g, err, errlen), virtio_blk_free, err,
			   errlen) < 0)
			return -1;
	}
	for (unsigned i = 0; i < r->nr_nets; i++) {
		struct dev_gate g = gate(vm, "net", i, "virtio-net", false);
		if (attach(a, pc, cfg, host_net_new(&r->net[i], &vm->mem, g, loop, err, errlen),
			   virtio_net_free, err, errlen) < 0)
			return -1;
	}
	if (r->has_vsock) {
		struct dev_gate g = gate(vm, "vsock", 0, "virtio-vsock", false);
		if (attach(a, pc, cfg, host_vsock_new(&r->vsock, &vm->mem, g, loop, err, errlen),
			   virtio_vsock_free, err, errlen) < 0)
			return -1;
	}
	if (r->rng) {
		struct dev_gate g = gate(vm, "rng", 0, "virtio-rng", false);
		struct entropy ent = host_entropy();
		struct virtio_dev *d = virtio_rng_new(&vm->mem, g, &ent);
		if (!d)
			snprintf(err, errlen, "out of memory creating virtio-rng");
		if (attach(a, pc, cfg, d, virtio_rng_free, err, errlen) < 0)
			return -1;
	}
	if (r->virtio_console) {
		struct dev_gate g = gate(vm, "console", 0, "virtio-console", false);
		struct virtio_dev *d = virtio_console_new(&vm->mem, g, cfg->console, &cfg->clock);
		if (!d)
			snprintf(err, errlen, "out of memory creating virtio-console");
		if (attach(a, pc, cfg, d, virtio_console_free, err, errlen) < 0)
			return -1;
		a->console = d;
	}
	return 0;
}

void run_devices_free(struct run_attached *a)
{
	for (unsigned i = 0; i < a->n; i++)
		a->free[i](a->dev[i]);
	a->n = 0;
	a->console = NULL;
}
