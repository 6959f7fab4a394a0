/* virtio_pci — the virtio 1.x PCI transport ("modern" only): one PCI
 * function per device with the virtio vendor capabilities (common config,
 * notifications, ISR, device config) and MSI-X in BAR0. Queue
 * notifications arrive as doorbell rings on the device executor (bound to
 * the notify address by the platform, or rung from an MMIO exit when it
 * cannot); interrupts leave as MSI-X vectors through the platform's MSI
 * handles, or as INTx with the ISR when the driver has not enabled MSI-X.
 * Portable: no file descriptors, no host calls. */
#ifndef VIGIL_VIRTIO_PCI_H
#define VIGIL_VIRTIO_PCI_H

#include "core/dev.h"
#include "core/exec.h"
#include "core/irq.h"
#include "core/platform.h"
#include "devices/pci.h"
#include "virtio/virtio_dev.h"

struct virtio_pci;

/* Wraps `dev` in a PCI function and puts it on `host`; queues are served and
 * lifecycle steps run on `ex` (copied). The INTx line is
 * made from `intx` (called with the GSI pci_host_add picked). NULL with a
 * one-line reason in err. */
struct virtio_pci *virtio_pci_new(struct virtio_dev *dev, struct pci_host *host, const struct exec *ex,
				  const struct platform_ops *plat,
				  struct irq_line (*intx)(void *ctx, uint32_t gsi), void *intx_ctx, char *err,
				  size_t errlen);
void virtio_pci_free(struct virtio_pci *vp);

/* The device behind the transport (a registry entry's impl is the
 * transport): for the loader's overrides, e.g. virtio_net_set_mac or
 * virtio_vsock_set_cid before the restore. */
struct virtio_dev *virtio_pci_device(const struct virtio_pci *vp);

/* The device's lifecycle in the VM's registry (core/dev.h), `impl` being
 * the struct virtio_pci: quiesce and resume go to the device model (called
 * with the vCPUs parked and the executor paused); reset is the driver's
 * reset done from the host side (on the executor: not while paused). */
/* save/restore: the transport's section (features, status, generation,
 * selectors, the MSI-X table and PBA, ISR, each queue's size, vector,
 * rings and indices), then the device's own part (virtio_dev_ops.save).
 * A chain the device popped and still held at the save (a receive buffer
 * waiting for a frame) is handed back to the ring (the saved last_avail is
 * the used index). Restore runs after the PCI host's (BAR0 and MSI-X
 * enable are there, and the BAR move already rebound the doorbells), with
 * the vCPUs stopped and the event loop not started or paused (the device
 * is activated on the calling thread): it checks every field against this device (queue
 * sizes against queue_max, rings through guest memory as the driver's
 * enable does, vectors against the table), enables the queues through the
 * same path a driver write takes and then sets their indices, points each
 * MSI-X vector through the platform (msi_set), and activates a device
 * whose status has DRIVER_OK without resetting its queues. */
extern const struct vdev_ops virtio_pci_vdev_ops;

#endif
