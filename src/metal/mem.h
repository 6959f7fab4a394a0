/* mem — the machine's RAM as vigil-metal sees it (metal.h has the
 * allocator's interface). */
#ifndef VIGIL_METAL_MEM_H
#define VIGIL_METAL_MEM_H

#include "metal/multiboot.h"

/* The boot page tables map [0, 4 GiB) 1:1 (src/metal/boot.S). */
#define METAL_MAPPED_END (4ull << 30)

void metal_mem_init(const struct mb_info *mb);

#endif
