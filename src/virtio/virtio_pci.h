/* virtio_pci — the virtio 1.x PCI transport ("modern" only): one PCI
 * function per device with the virtio vendor capabilities (common config,
 * notifications, ISR, device config) and MSI-X in BAR0. Queue
 * notifications arrive as eventfd signals on the VM's event thread (through
 * ioeventfd, or forwarded from an MMIO exit when there is none); interrupts
 * leave as MSI-X vectors through irqfds, or as INTx with the ISR when the
 * driver has not enabled MSI-X. */
#ifndef VIGIL_VIRTIO_PCI_H
#define VIGIL_VIRTIO_PCI_H

#include "core/irq.h"
#include "core/platform.h"
#include "devices/pci.h"
#include "host/evloop.h"
#include "virtio/virtio_dev.h"

struct virtio_pci;

/* Wraps `dev` in a PCI function and puts it on `host`. The INTx line is
 * made from `intx` (called with the GSI pci_host_add picked). NULL with a
 * one-line reason in err. */
struct virtio_pci *virtio_pci_new(struct virtio_dev *dev, struct pci_host *host, struct evloop *loop,
				  const struct platform_ops *plat,
				  struct irq_line (*intx)(void *ctx, uint32_t gsi), void *intx_ctx, char *err,
				  size_t errlen);
void virtio_pci_free(struct virtio_pci *vp);

#endif
