/* ramdisk — a virtio-blk backend (devices/blk_backend.h) over a multiboot
 * module: the disk image the loader put in RAM. Writes go to that RAM and
 * stay there: nothing reaches the machine's own disks, and the guest's
 * changes are gone when the machine powers off. Completions are handed
 * back from the poll loop, as a host backend's from its worker thread. */
#ifndef VIGIL_METAL_RAMDISK_H
#define VIGIL_METAL_RAMDISK_H

#include <stddef.h>
#include <stdint.h>

struct blk_backend;

/* NULL with a reason when the image is not a whole number of 512-byte
 * sectors or out of memory. */
struct blk_backend *metal_ramdisk_new(uint8_t *data, size_t len, char *err, size_t errlen);
/* Runs the completions of every RAM disk (metal_poll). */
void metal_ramdisk_poll(void);

#endif
