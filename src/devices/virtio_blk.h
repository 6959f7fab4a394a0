/* virtio_blk — a virtio 1.x block device (device ID 2) backed by a raw disk
 * image file (or block device), with one request queue.
 * Used by the board/CLI: virtio_blk_parse() reads a --disk option value,
 * virtio_blk_new() opens the image and returns a `struct virtio_dev` for a
 * transport (virtio_pci), virtio_blk_free() after the transport let go.
 * Requests are served off the event thread by a small pool of worker
 * threads (preadv/pwritev/fdatasync), several in flight; every request goes
 * through dev_request() (counting, policy), and a read-only disk is opened
 * O_RDONLY and its writes are denied by the policy gate. */
#ifndef VIGIL_DEVICES_VIRTIO_BLK_H
#define VIGIL_DEVICES_VIRTIO_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/devreq.h"
#include "core/gmem.h"

struct virtio_dev;

/* Request types and status values (virtio 1.x 5.2.6). */
#define VIRTIO_BLK_T_IN     0
#define VIRTIO_BLK_T_OUT    1
#define VIRTIO_BLK_T_FLUSH  4
#define VIRTIO_BLK_T_GET_ID 8

#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

/* Feature bits we may offer. */
#define VIRTIO_BLK_F_SEG_MAX  2
#define VIRTIO_BLK_F_RO       5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH    9

#define VIRTIO_BLK_SECTOR      512u
#define VIRTIO_BLK_ID_BYTES    20u  /* GET_ID answer, zero-padded */
#define VIRTIO_BLK_QUEUE_MAX   256u
#define VIRTIO_BLK_SEG_MAX     62u  /* VIRTQ_MAX_CHAIN minus header and status */
#define VIRTIO_BLK_WORKERS     4u
#define VIRTIO_BLK_CONFIG_LEN  60u  /* through write_zeroes_may_unmap + padding */
#define VIRTIO_BLK_SPEC_MAX    4096u

struct virtio_blk_config {
	const char *path;
	bool read_only;
	const char *id; /* <= 20 bytes, answered to GET_ID; NULL: the file name */
	/* Storage for path and id when they come from virtio_blk_parse(): the
	 * pointers above point in here, so do not copy a parsed config by value
	 * and keep using the copy's pointers after the original is gone. */
	char buf[VIRTIO_BLK_SPEC_MAX];
};

/* Parses "path=FILE[,ro][,id=NAME]" (the --disk option's value) into *cfg.
 * 0, or -1 with a one-line reason in err (unknown key, missing or empty
 * path, id longer than 20 bytes, a key given twice, ...). */
int virtio_blk_parse(const char *spec, struct virtio_blk_config *cfg, char *err, size_t errlen);

/* Opens the image (O_RDWR, or O_RDONLY when read-only; an advisory flock,
 * exclusive or shared, keeps two writers apart) and returns a device ready for a
 * transport, its worker threads started. Refuses a missing file, a
 * directory, anything but a regular file or block device, an empty image and
 * a size not a multiple of 512. NULL with a one-line reason in err. `gate`
 * comes from the VM: vm_dev_gate(vm, name, cfg->read_only). cfg is not kept. */
struct virtio_dev *virtio_blk_new(const struct virtio_blk_config *cfg, const struct gmem *mem,
				  struct dev_gate gate, char *err, size_t errlen);

/* Stops the workers (after the requests in flight), closes the image, frees.
 * NULL is fine. */
void virtio_blk_free(struct virtio_dev *d);

/* Disk size in 512-byte sectors (what config space reports). */
uint64_t virtio_blk_capacity(const struct virtio_dev *d);

#endif
