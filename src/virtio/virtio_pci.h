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

/* The device's lifecycle in the VM's registry (core/dev.h), `impl` being
 * the struct virtio_pci: quiesce and resume go to the device model (called
 * with the vCPUs parked and the executor paused); reset is the driver's
 * reset done from the host side (on the executor: not while paused). */
extern const struct vdev_ops virtio_pci_vdev_ops;

#endif
