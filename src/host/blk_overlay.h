/* blk_overlay — the copy-on-write overlay of a disk image, where the policy's
 * disk redirect sends a drive's writes (docs/POLICY.md, resource "disk").
 *
 * The overlay is a sparse file the size of the base image. A block
 * (BLK_OVERLAY_BLOCK bytes) the overlay holds is a data extent of the file,
 * a block it does not hold is a hole: the file alone says what was written,
 * so an overlay persists across runs by construction (reopened, its extents
 * are scanned with SEEK_DATA/SEEK_HOLE). Every data extent is a whole valid
 * block: a redirected write that covers only part of a block not yet held
 * first copies the base block in. Reads are split into runs served from the
 * overlay (blocks it holds) or the base; a write that is not redirected goes
 * to the overlay for blocks it holds (they are the drive's content now) and
 * to the base for the others. The base is never written through a
 * redirected write. The filesystem under the overlay must keep holes at a
 * granularity of at most 4 KiB (ext4, xfs, btrfs, tmpfs do); one that keeps
 * none is refused when the overlay is created.
 *
 * Used by blk_file.c only. Threading: ovl_io and ovl_flush from the
 * backend's workers (writes are serialised by the overlay's lock, reads take
 * no lock: a block is marked held only after its data is written);
 * ovl_set_path from the device context. */
#ifndef VIGIL_HOST_BLK_OVERLAY_H
#define VIGIL_HOST_BLK_OVERLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "devices/blk_backend.h"

#define BLK_OVERLAY_BLOCK 4096u

struct blk_overlay;

/* An overlay of a base of `size` bytes, not yet opened (path unknown). NULL
 * on ENOMEM. */
struct blk_overlay *ovl_new(uint64_t size);
void ovl_free(struct blk_overlay *o);

/* Names the overlay file; the first name given stays for the life of the
 * backend (a later different one is ignored: the blocks already redirected
 * live in the first). 0 or -ENOMEM. */
int ovl_set_path(struct blk_overlay *o, const char *path);

/* Names the overlay `path` (unless it has a name already, which stays) and
 * opens it now, creating it if missing; 0, or -1 with a one-line reason in
 * err, and then a name it gave is taken back: a policy refused for it
 * leaves the drive as it was. */
int ovl_open_path(struct blk_overlay *o, const char *path, char *err, size_t errlen);

/* Whether an I/O must go through ovl_io: it is a write (serialised with
 * the redirected writes that copy base blocks in), it is redirected, or the
 * overlay holds blocks. */
bool ovl_wanted(const struct blk_overlay *o, const struct blk_io *io);

/* Carries out a read or write against base_fd and the overlay (opened on
 * the first redirected write). 0 or -errno. */
int ovl_io(struct blk_overlay *o, int base_fd, struct blk_io *io);

/* fdatasync of the overlay if open. 0 or -errno. */
int ovl_flush(struct blk_overlay *o);

/* How many blocks the overlay holds (tests, reports). */
uint64_t ovl_blocks_held(const struct blk_overlay *o);

/* In blk_file.c: the whole transfer at `off` (consumes iov), or -errno. */
int blk_rw_full(int fd, struct iovec *iov, unsigned n, off_t off, bool write);

#endif
