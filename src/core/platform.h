/* platform — what device transports need from the backend beyond port and
 * MMIO exits: MSI vectors as handles that fire from any thread, and guest
 * writes to an address turned into doorbell rings, so neither an interrupt
 * nor a queue notification waits on a vCPU thread. Nothing here names a
 * file descriptor. The KVM backend fills it (src/kvm/kvm_irq.c: irqfd and
 * ioeventfd underneath); tests fill it with fakes. Used by virtio_pci.
 * Threading: msi_fire from any thread; the rest from the thread that owns
 * the transport's configuration (vCPU or builder), serialized by it. */
#ifndef VIGIL_CORE_PLATFORM_H
#define VIGIL_CORE_PLATFORM_H

#include <stdbool.h>
#include <stdint.h>

struct msi;
struct doorbell;

struct platform_ops {
	/* A new MSI vector in *out. 0 or -errno. */
	int (*msi_alloc)(void *ctx, struct msi **out);
	/* Points the vector at a message (address/data from the guest's MSI-X
	 * table). 0 or -errno. */
	int (*msi_set)(void *ctx, struct msi *m, uint64_t addr, uint32_t data);
	/* Raises the vector's message; never blocks. */
	void (*msi_fire)(void *ctx, struct msi *m);
	void (*msi_free)(void *ctx, struct msi *m);
	/* Makes guest writes of `len` bytes to `gpa` ring `db` instead of
	 * exiting (assign), or stops that. 0 or -errno. Optional: without it
	 * the write exits and the transport rings the doorbell itself. */
	int (*doorbell)(void *ctx, uint64_t gpa, uint32_t len, struct doorbell *db, bool assign);
	void *ctx;
	/* Such a write, as the transport takes it from db: the policy's
	 * answer (exit_judge_doorbell; gpa is where the policy judges it).
	 * Optional: without it, taken. */
	bool (*doorbell_taken)(void *ctx, uint64_t gpa, uint32_t len);
};

#endif
