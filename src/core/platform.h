/* platform — what device transports need from the backend beyond port and
 * MMIO exits: MSI vectors delivered through eventfds (irqfd), and guest
 * writes to an address turned into eventfd signals (ioeventfd), so neither
 * an interrupt nor a queue notification waits on a vCPU thread.
 * The KVM backend fills it (src/kvm/kvm_irq.c); tests fill it with fakes. */
#ifndef VIGIL_CORE_PLATFORM_H
#define VIGIL_CORE_PLATFORM_H

#include <stdbool.h>
#include <stdint.h>

struct platform_ops {
	/* A new MSI vector: returns an eventfd whose every write raises the
	 * vector's message, or -errno. *handle names it for msi_set. */
	int (*msi_alloc)(void *ctx, unsigned *handle);
	/* Points the vector at a message (address/data from the guest's MSI-X
	 * table). 0 or -errno. */
	int (*msi_set)(void *ctx, unsigned handle, uint64_t addr, uint32_t data);
	/* Makes guest writes of `len` bytes to `gpa` signal `fd` instead of
	 * exiting (assign), or stops that. 0 or -errno. */
	int (*ioeventfd)(void *ctx, uint64_t gpa, uint32_t len, int fd, bool assign);
	void *ctx;
};

#endif
