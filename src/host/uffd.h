/* uffd — guest RAM served by a userfaultfd page server (Firecracker's
 * "Uffd" memory backend of PUT /snapshot/load; protocol in docs/SNAPSHOT.md).
 * Used by the snapshot restore path on the control thread, after the VM's
 * RAM is mapped anonymous and untouched (KVM_RAM_UFFD) and before any vCPU
 * or device touches it, and before the seccomp filters are installed.
 *
 * The page server owns the memory file: vigil hands it a userfaultfd on
 * which every guest RAM region is registered for missing-page faults, and
 * from then on each first touch of a page (by a vCPU through KVM, by a
 * device thread, by the kernel copying for vigil) waits until the server
 * fills it with UFFDIO_COPY or UFFDIO_ZEROPAGE. */
#ifndef VIGIL_HOST_UFFD_H
#define VIGIL_HOST_UFFD_H

#include <stddef.h>

#include "core/gmem.h"

/* Connects to the page server listening on the Unix socket `sock_path`,
 * creates a userfaultfd (kernel-mode faults allowed: KVM faults guest pages
 * in from the kernel), registers every region of `m` with it for missing
 * pages, and sends the server one message: the JSON array of region
 * mappings with the userfaultfd attached (SCM_RIGHTS). The connection is
 * closed after the message, as Firecracker does.
 * Region i's contents live in the memory file at the sum of the sizes of
 * regions 0..i-1 (regions laid end to end, as the snapshot's memory file
 * is written). Returns the userfaultfd (keep it open for the VM's life) or
 * -1 with one line in err; on failure nothing stays registered. */
int uffd_attach(const struct gmem *m, const char *sock_path, char *err, size_t errlen);

/* Closes the userfaultfd (after the VM's RAM is unmapped, or before: the
 * regions then fall back to plain anonymous memory). fd < 0: no-op. */
void uffd_detach(int fd);

#endif
