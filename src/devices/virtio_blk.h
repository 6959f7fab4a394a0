/* virtio_blk — a virtio 1.x block device (device ID 2) over a blk_backend
 * (devices/blk_backend.h), with one request queue or several
 * (VIRTIO_BLK_F_MQ: the builder gives one per vCPU). Portable device model.
 * Used by the board/CLI: virtio_blk_parse() reads a --disk option value,
 * host_blk_new() (src/host/blk_file.h) opens the image as a backend and
 * calls virtio_blk_new_backend(), which returns a `struct virtio_dev` for a
 * transport (virtio_pci); virtio_blk_free() after the transport let go.
 * The device decodes requests on the event thread; every request goes
 * through dev_request() (counting, policy), and a read-only disk's writes
 * are denied by the policy gate. The backend serves the I/O off the event
 * thread, several requests in flight. */
#ifndef VIGIL_DEVICES_VIRTIO_BLK_H
#define VIGIL_DEVICES_VIRTIO_BLK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/devreq.h"
#include "devices/blk_backend.h"
#include "core/gmem.h"

struct virtio_dev;
struct exec;

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
#define VIRTIO_BLK_F_MQ       12

#define VIRTIO_BLK_SECTOR      512u
#define VIRTIO_BLK_ID_BYTES    20u  /* GET_ID answer, zero-padded */
/* Without indirect descriptors a 128 KiB request takes 34 entries, so a
 * ring of 256 holds only 7 of them: 1024 keeps 30 in flight per queue. */
#define VIRTIO_BLK_QUEUE_MAX   1024u
#define VIRTIO_BLK_SEG_MAX     62u  /* VIRTQ_MAX_CHAIN minus header and status */
#define VIRTIO_BLK_WORKERS     4u
#define VIRTIO_BLK_CONFIG_LEN  60u  /* through write_zeroes_may_unmap + padding */
#define VIRTIO_BLK_SPEC_MAX    4096u

struct virtio_blk_config {
	const char *path;
	bool read_only;
	const char *id; /* <= 20 bytes, answered to GET_ID; NULL: the file name */
	/* The policy's copy-on-write overlay at build (NULL: none yet); with
	 * overlay_only every write goes there, so the image opens read-only. */
	const char *overlay;
	bool overlay_only;
	enum blk_engine engine; /* io=threads|uring (devices/blk_backend.h) */
	enum blk_cache cache;   /* cache=writeback|unsafe */
	bool buffered;          /* direct=off: the io_uring engine keeps the page cache */
	/* Request queues (VIRTIO_BLK_F_MQ when > 1), 1..VIRTIO_MAX_QUEUES;
	 * 0: one. The builder gives one per vCPU, as Linux's blk-mq wants. */
	unsigned queues;
	/* The device context's executor: a backend may complete there
	 * (src/host/blk_file.h), and the device looks at its queues again
	 * from it after completions (virtio_blk.c). NULL: the backend's own
	 * threads, and every empty ring armed at once. Copied, not kept. */
	const struct exec *ex;
	/* Storage for path and id when they come from virtio_blk_parse(): the
	 * pointers above point in here, so do not copy a parsed config by value
	 * and keep using the copy's pointers after the original is gone. */
	char buf[VIRTIO_BLK_SPEC_MAX];
};

/* Parses "path=FILE[,ro][,id=NAME][,io=threads|uring][,cache=writeback|unsafe]
 * [,direct=on|off]" (the --disk option's value) into *cfg.
 * 0, or -1 with a one-line reason in err (unknown key, missing or empty
 * path, id longer than 20 bytes, a key given twice, ...). */
int virtio_blk_parse(const char *spec, struct virtio_blk_config *cfg, char *err, size_t errlen);

/* A device over `be`, which it owns from here on (freed with ops->free,
 * also on failure). cfg gives read_only and the GET_ID answer (cfg->id, else
 * the file name of cfg->path); NULL is fine. Read-only when the backend, cfg
 * or the gate says so. NULL with a one-line reason in err. cfg is not kept. */
struct virtio_dev *virtio_blk_new_backend(struct blk_backend *be, const struct virtio_blk_config *cfg,
					  const struct gmem *mem, struct dev_gate gate, char *err,
					  size_t errlen);

/* Frees the backend (after the requests in flight: it drains), then the
 * device. NULL is fine. */
void virtio_blk_free(struct virtio_dev *d);

/* Firecracker's PATCH /drives (a new image, or the same one resized), in
 * two steps so that an image can be reopened after its old lock is gone:
 * detach drains and frees the backend; attach takes `be` (in every case),
 * updates the capacity and tells the driver of a configuration change; -1 +
 * err when the drive cannot take it (a read-only image under a read-write
 * drive). Both in the device context with the device quiesced (the VM
 * paused), and nothing is served between the two. */
struct blk_backend;
void virtio_blk_detach(struct virtio_dev *d);
int virtio_blk_attach(struct virtio_dev *d, struct blk_backend *be, char *err, size_t errlen);

/* Opens (or creates) the copy-on-write overlay a policy about to be
 * swapped in names for this drive, so that its first redirected write
 * finds it open. On the control thread, which also runs attach/detach;
 * the device may be running. 0 or -1 + err. */
int virtio_blk_open_overlay(struct virtio_dev *d, const char *path, char *err, size_t errlen);

/* Disk size in 512-byte sectors (what config space reports). */
uint64_t virtio_blk_capacity(const struct virtio_dev *d);

/* What the device did, counted since it was made (tests, benchmarks):
 * chains taken, chains pushed back, queue notifications served (kicks and
 * re-looks), interrupts raised, the backend's ends of batch, requests
 * merged into the one before them, merged runs that failed and were
 * retried one request at a time. */
struct virtio_blk_stats {
	_Atomic uint64_t requests, completions, notifies, interrupts, batches, merged, retried, looks;
};
struct virtio_blk_stat_values {
	uint64_t requests, completions, notifies, interrupts, batches, merged, retried, looks;
};
void virtio_blk_get_stats(const struct virtio_dev *d, struct virtio_blk_stat_values *out);

#endif
