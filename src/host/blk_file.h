/* blk_file — a raw disk image (regular file or block device) as a
 * blk_backend: opened O_RDWR or O_RDONLY with an advisory flock (writers
 * exclusive, readers shared), served by VIRTIO_BLK_WORKERS threads with
 * preadv/pwritev/fdatasync. host_blk_new() puts a virtio-blk device over
 * one. Used by the builder (src/cli/run_devices.c) and tests.
 * Threading: as devices/blk_backend.h. */
#ifndef VIGIL_HOST_BLK_FILE_H
#define VIGIL_HOST_BLK_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "devices/blk_backend.h"
#include "devices/virtio_blk.h"

/* Refuses a missing file, a directory, anything but a regular file or block
 * device, an empty image and a size not a multiple of 512; the workers are
 * started. NULL with a one-line reason in err ("disk PATH: ..."). */
struct blk_backend *blk_file_open(const char *path, bool read_only, char *err, size_t errlen);

/* The same, with the disk policy's copy-on-write overlay (host/blk_overlay.h)
 * at `overlay` opened (created if missing) now; `base_ro`: every write is
 * redirected, so the image itself is opened read-only (the drive stays
 * writable to the guest). overlay NULL: blk_file_open. */
struct blk_backend *blk_file_open_overlay(const char *path, bool read_only, const char *overlay, bool base_ro,
					  char *err, size_t errlen);

/* How a drive is opened (blk_file_open_opts). */
struct blk_file_opts {
	bool read_only;
	const char *overlay; /* as blk_file_open_overlay */
	bool base_ro;
	/* THREADS: VIRTIO_BLK_WORKERS threads with preadv/pwritev through the
	 * page cache. URING: host/blk_uring.h, the image opened O_DIRECT where
	 * the file system takes it (EINVAL: buffered, said once at debug
	 * level) unless `buffered`; what the ring cannot carry (an I/O whose
	 * buffers or offset are not aligned for O_DIRECT, anything that goes
	 * through the overlay) is served by two worker threads through the
	 * page cache, which the kernel keeps coherent with direct I/O. If no
	 * ring can be had (io_uring disabled, old kernel, seccomp of a
	 * container), the threads serve everything. DEFAULT: BLK_FILE_ENGINE. */
	enum blk_engine engine;
	bool buffered;
	enum blk_cache cache; /* UNSAFE: a FLUSH is acknowledged at once */
	/* The device's request queues (0: one): the ring has room for all
	 * of them full at once. */
	unsigned queues;
	/* The device context's executor (evloop_exec): the ring's
	 * completions are taken there (host/blk_uring.h). NULL: by a thread. */
	const struct exec *ex;
};

/* The engine a drive gets when none is asked for (--disk without io=):
 * io_uring, O_DIRECT — the page cache is the guest's to keep, not the
 * host's, and the threads stay a fall-back. Drives from the API or a
 * config file say their engine (Firecracker's io_engine, "Sync" unless
 * given) and do not get this. */
#define BLK_FILE_ENGINE BLK_ENGINE_URING

struct blk_backend *blk_file_open_opts(const char *path, const struct blk_file_opts *o, char *err,
				       size_t errlen);

/* The engine an open backend runs on (tests, reports): URING only when a
 * ring was set up; `direct` whether the ring's fd is O_DIRECT. */
enum blk_engine blk_file_engine(const struct blk_backend *be, bool *direct);

/* How many I/Os the ring has taken so far (the rest went to the workers). */
uint64_t blk_file_ring_ios(const struct blk_backend *be);

/* Opens cfg->path (read-only when cfg or the gate says so) and returns a
 * device ready for a transport. NULL with a one-line reason in err. `gate`
 * comes from the VM: vm_dev_gate(vm, name, cfg->read_only). cfg is not kept. */
struct virtio_dev *host_blk_new(const struct virtio_blk_config *cfg, const struct gmem *mem,
				struct dev_gate gate, char *err, size_t errlen);

#endif
